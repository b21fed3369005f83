//! `export` and `import`: whole resources streamed as NDJSON or CSV in bounded memory.
//!
//! Export pages through the records (`Resource::page`: one LIST + a GET per record per page)
//! and writes each page before reading the next. Import reads a batch of records, inserts it
//! with `Resource::insert_many` and reports each failed record without stopping.
//!
//! CSV layout (documented in cli/README.md):
//! - header: `id`, then every attribute path of every schema version of the resource (current
//!   version first), nested objects flattened with dotted names (`address.city`);
//! - a cell is the value's text when the value is a string that does not itself parse as JSON,
//!   else the value's JSON (`42`, `true`, `["a","b"]`, `{"k":1}`, `"007"` stays `007` but the
//!   string `"42"` is written `"42"` with its quotes); an absent field is an empty cell, the
//!   empty string is `""`;
//! - reading takes a cell that parses as JSON as that value, anything else as text; for text
//!   attributes (string, secret, uuid, ip, date/time, …) a bare number or boolean stays text;
//!   the `id` column is always text.
//!
//! Export then import gives back the same records.

use std::collections::{BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use crate::exit::Failure;
use crate::output::Out;
use crate::progress::{Progress, Unit};
use crate::{Ctx, Format};
use s3db::schema::types::Kind;
use s3db::schema::Schema;
use s3db::{Error, Resource};

type Res<T = ()> = Result<T, Failure>;

/// The CSV columns of a resource: `id`, then the attribute paths of every schema version.
pub async fn csv_columns(ctx: &Ctx, resource: &Resource) -> Res<Vec<String>> {
    let mut columns = vec!["id".to_string()];
    let mut seen: HashSet<String> = columns.iter().cloned().collect();
    let current = resource.schema();
    let mut schemas: Vec<Schema> = vec![current.clone()];
    // Older versions: records written with them may still carry their fields.
    let catalog = crate::commands::raw_catalog(ctx).await?;
    if let Some(def) = s3db::catalog::resource_def(&catalog, resource.name(), ctx.passphrase())? {
        let mut versions: Vec<(&String, &Schema)> = def
            .schemas
            .iter()
            .filter(|(v, _)| **v != current.version)
            .collect();
        versions.sort_by_key(|(v, _)| {
            std::cmp::Reverse(v.trim_start_matches('v').parse::<u64>().unwrap_or(0))
        });
        schemas.extend(versions.into_iter().map(|(_, s)| s.clone()));
    }
    for schema in &schemas {
        for field in &schema.fields {
            if seen.insert(field.path.clone()) {
                columns.push(field.path.clone());
            }
        }
    }
    Ok(columns)
}

fn lookup<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = record.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

fn set_path(record: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or(path);
    let mut cur = record;
    for p in parts {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry.as_object_mut().expect("object");
    }
    cur.insert(last.to_string(), value);
}

/// A value as a CSV cell (see the module documentation).
pub fn encode_cell(v: &Value) -> String {
    match v {
        Value::String(s) if !s.is_empty() && serde_json::from_str::<Value>(s).is_err() => s.clone(),
        other => other.to_string(),
    }
}

fn textual(kind: &Kind) -> bool {
    matches!(
        kind,
        Kind::String
            | Kind::Secret
            | Kind::Uuid
            | Kind::Ip4
            | Kind::Ip6
            | Kind::Mac
            | Kind::Cidr
            | Kind::Semver
            | Kind::Phone
            | Kind::Color
            | Kind::Ean
            | Kind::Datetime
            | Kind::Dateonly
            | Kind::Timeonly
    )
}

/// A CSV cell as a value; `None` for an empty cell (absent field).
pub fn decode_cell(cell: &str, kind: Option<&Kind>) -> Option<Value> {
    if cell.is_empty() {
        return None;
    }
    Some(match serde_json::from_str::<Value>(cell) {
        Ok(Value::Number(_) | Value::Bool(_)) if kind.is_some_and(textual) => {
            Value::String(cell.to_string())
        }
        Ok(v) => v,
        Err(_) => Value::String(cell.to_string()),
    })
}

/// Paths of `record` that no column holds (warned about once each).
fn uncovered(
    record: &Map<String, Value>,
    prefix: &str,
    columns: &HashSet<String>,
    parents: &HashSet<String>,
    found: &mut Vec<String>,
) {
    for (k, v) in record {
        let path = format!("{prefix}{k}");
        if columns.contains(&path) {
            continue;
        }
        match v {
            Value::Object(child) if parents.contains(&path) => {
                uncovered(child, &format!("{path}."), columns, parents, found)
            }
            _ => found.push(path),
        }
    }
}

enum Sink<'a> {
    Ndjson(&'a mut dyn Write),
    Csv {
        w: Box<csv::Writer<&'a mut dyn Write>>,
        columns: Vec<String>,
        column_set: HashSet<String>,
        parents: HashSet<String>,
        warned: BTreeSet<String>,
    },
}

impl Sink<'_> {
    fn write(&mut self, record: &Value, progress: &Progress) -> Res {
        match self {
            Sink::Ndjson(w) => {
                serde_json::to_writer(&mut **w, record).map_err(std::io::Error::from)?;
                w.write_all(b"\n")?;
            }
            Sink::Csv {
                w,
                columns,
                column_set,
                parents,
                warned,
            } => {
                let empty = Map::new();
                let map = record.as_object().unwrap_or(&empty);
                let cells = columns.iter().map(|c| match (c.as_str(), lookup(map, c)) {
                    ("id", Some(Value::String(id))) => id.clone(),
                    (_, Some(v)) => encode_cell(v),
                    (_, None) => String::new(),
                });
                w.write_record(cells).map_err(csv_error)?;
                let mut missing = Vec::new();
                uncovered(map, "", column_set, parents, &mut missing);
                for path in missing {
                    if warned.insert(path.clone()) {
                        progress.println(&format!(
                            "warning: field {path:?} is in no schema version, so it has no CSV column; it is left out"
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Res {
        match self {
            Sink::Ndjson(w) => w.flush()?,
            Sink::Csv { mut w, .. } => w.flush()?,
        }
        Ok(())
    }
}

fn csv_error(e: csv::Error) -> Failure {
    if e.is_io_error() {
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Failure::from(io),
            other => Failure::Local(format!("{other:?}")),
        }
    } else {
        Failure::Local(e.to_string())
    }
}

pub async fn export(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    format: Format,
    output: Option<PathBuf>,
    page_size: usize,
) -> Res {
    let resource = ctx.db().await?.resource(name).await?;
    // The total for the bar and the ETA: one LIST per 1,000 records.
    let total = if ctx.quiet {
        None
    } else {
        Some(resource.count().await?)
    };
    let mut file: Option<Out> = match &output {
        Some(path) => {
            let f = File::create(path)
                .map_err(|e| Failure::Local(format!("creating {}: {e}", path.display())))?;
            Some(Out::to(Box::new(f)))
        }
        None => None,
    };
    let mut progress = Progress::new(format!("export {name}"), total, Unit::Records, ctx.quiet);
    let n = {
        let target: &mut Out = match file.as_mut() {
            Some(f) => f,
            None => &mut *out,
        };
        let mut sink = match format {
            Format::Ndjson => Sink::Ndjson(target.writer()),
            Format::Csv => {
                let columns = csv_columns(ctx, &resource).await?;
                let mut parents = HashSet::new();
                for c in &columns {
                    let mut end = 0;
                    while let Some(i) = c[end..].find('.') {
                        end += i;
                        parents.insert(c[..end].to_string());
                        end += 1;
                    }
                }
                let mut w = csv::Writer::from_writer(target.writer());
                w.write_record(&columns).map_err(csv_error)?;
                Sink::Csv {
                    w: Box::new(w),
                    column_set: columns.iter().cloned().collect(),
                    columns,
                    parents,
                    warned: BTreeSet::new(),
                }
            }
        };
        let mut n = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let page = resource.page(page_size, cursor.as_deref()).await?;
            for record in &page.items {
                sink.write(record, &progress)?;
                n += 1;
            }
            progress.update(n, n);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        sink.finish()?;
        target.flush()?;
        n
    };
    let elapsed = progress.finish();
    let summary = json!({
        "resource": name,
        "format": format_name(format),
        "exported": n,
        "seconds": round3(elapsed.as_secs_f64()),
    });
    match (&output, ctx.json) {
        (Some(_), true) => out.json(&summary, true)?,
        (Some(path), false) => out.line(format!(
            "exported {n} records of {name} to {} in {:.1}s",
            path.display(),
            elapsed.as_secs_f64()
        ))?,
        // The records went to stdout: the summary goes to stderr.
        (None, _) if !ctx.quiet => eprintln!(
            "exported {n} records of {name} in {:.1}s",
            elapsed.as_secs_f64()
        ),
        (None, _) => {}
    }
    Ok(())
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Ndjson => "ndjson",
        Format::Csv => "csv",
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Counts of an import, the batch being read and the batches being inserted.
struct Importer<'a> {
    resource: Resource,
    name: &'a str,
    /// "line" (NDJSON) or "row" (CSV).
    unit: &'static str,
    batch_size: usize,
    /// Batches inserted at once (each `insert_many` runs 16 inserts at a time).
    parallel: usize,
    pending: Vec<(u64, Value)>,
    in_flight: tokio::task::JoinSet<(Vec<u64>, Vec<s3db::BatchItem>)>,
    read: u64,
    imported: u64,
    failed: u64,
}

impl Importer<'_> {
    fn fail(&mut self, progress: &Progress, at: u64, id: Option<&str>, code: &str, msg: &str) {
        self.failed += 1;
        let id = id.map(|i| format!(" (id {i:?})")).unwrap_or_default();
        progress.println(&format!(
            "error[{code}]: {} {} {at}{id}: {msg}",
            self.name, self.unit
        ));
    }

    /// Queues a record; a full batch is sent (waiting while `parallel` batches are in flight).
    /// Returns whether a batch completed.
    async fn push(&mut self, at: u64, record: Value, progress: &Progress) -> Res<bool> {
        self.read += 1;
        self.pending.push((at, record));
        if self.pending.len() < self.batch_size {
            return Ok(false);
        }
        self.send();
        let mut done = false;
        while self.in_flight.len() >= self.parallel {
            done |= self.collect_one(progress).await?;
        }
        Ok(done)
    }

    fn send(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let (places, records): (Vec<u64>, Vec<Value>) = batch.into_iter().unzip();
        let resource = self.resource.clone();
        self.in_flight
            .spawn(async move { (places, resource.insert_many(records).await) });
    }

    /// Waits for one batch and reports its failures; `false` when none was in flight.
    async fn collect_one(&mut self, progress: &Progress) -> Res<bool> {
        let Some(joined) = self.in_flight.join_next().await else {
            return Ok(false);
        };
        let (places, items) =
            joined.map_err(|e| Failure::Local(format!("an import batch failed: {e}")))?;
        for item in items {
            match &item.error {
                None => self.imported += 1,
                Some(e) => {
                    let at = places.get(item.index).copied().unwrap_or(0);
                    self.fail(progress, at, item.id.as_deref(), e.code, &e.message);
                }
            }
        }
        Ok(true)
    }

    /// Sends the last batch and waits for every batch.
    async fn finish(&mut self, progress: &Progress) -> Res {
        self.send();
        while self.collect_one(progress).await? {}
        Ok(())
    }
}

pub async fn import(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    format: Format,
    input: Option<PathBuf>,
    batch_size: usize,
    parallel: usize,
) -> Res {
    let resource = ctx.db().await?.resource(name).await?;
    let (mut reader, size): (Box<dyn BufRead>, Option<u64>) = match &input {
        Some(path) => {
            let f = File::open(path)
                .map_err(|e| Failure::Local(format!("opening {}: {e}", path.display())))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(BufReader::with_capacity(256 * 1024, f)), size)
        }
        None => (Box::new(BufReader::new(std::io::stdin())), None),
    };
    let unit = if size.is_some() {
        Unit::Bytes
    } else {
        Unit::Records
    };
    let mut progress = Progress::new(format!("import {name}"), size, unit, ctx.quiet);
    let mut imp = Importer {
        resource: resource.clone(),
        name,
        unit: match format {
            Format::Ndjson => "line",
            Format::Csv => "row",
        },
        batch_size,
        parallel,
        pending: Vec::with_capacity(batch_size),
        in_flight: tokio::task::JoinSet::new(),
        read: 0,
        imported: 0,
        failed: 0,
    };
    match format {
        Format::Ndjson => {
            let mut line = String::new();
            let (mut lineno, mut bytes) = (0u64, 0u64);
            loop {
                line.clear();
                let n = reader
                    .read_line(&mut line)
                    .map_err(|e| Failure::Local(format!("reading line {}: {e}", lineno + 1)))?;
                if n == 0 {
                    break;
                }
                lineno += 1;
                bytes += n as u64;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        if imp.push(lineno, v, &progress).await? {
                            progress.update(bytes, imp.imported + imp.failed);
                        }
                    }
                    Err(e) => {
                        imp.read += 1;
                        imp.fail(
                            &progress,
                            lineno,
                            None,
                            "INVALID_ARGUMENT",
                            &format!("invalid JSON: {e}"),
                        );
                    }
                }
            }
        }
        Format::Csv => {
            let schema = resource.schema();
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .from_reader(reader);
            let headers: Vec<String> = rdr
                .headers()
                .map_err(csv_error)?
                .iter()
                .map(str::to_string)
                .collect();
            if headers.iter().collect::<HashSet<_>>().len() != headers.len() {
                return Err(Failure::Engine(Error::invalid(
                    "CSV header names a column twice",
                )));
            }
            let kinds: Vec<Option<Kind>> = headers
                .iter()
                .map(|h| schema.field(h).map(|f| f.rule.kind.clone()))
                .collect();
            let mut row = csv::StringRecord::new();
            let mut rowno = 1u64; // the header is row 1
            loop {
                match rdr.read_record(&mut row) {
                    Ok(false) => break,
                    Ok(true) => {
                        rowno += 1;
                        if row.len() != headers.len() {
                            imp.read += 1;
                            imp.fail(
                                &progress,
                                rowno,
                                None,
                                "INVALID_ARGUMENT",
                                &format!("{} cells, the header has {}", row.len(), headers.len()),
                            );
                            continue;
                        }
                        let mut record = Map::new();
                        for ((h, kind), cell) in headers.iter().zip(&kinds).zip(row.iter()) {
                            if h == "id" {
                                if !cell.is_empty() {
                                    record.insert("id".into(), json!(cell));
                                }
                            } else if let Some(v) = decode_cell(cell, kind.as_ref()) {
                                set_path(&mut record, h, v);
                            }
                        }
                        if imp.push(rowno, Value::Object(record), &progress).await? {
                            let pos = row.position().map_or(0, |p| p.byte());
                            progress.update(pos, imp.imported + imp.failed);
                        }
                    }
                    Err(e) if e.is_io_error() => return Err(csv_error(e)),
                    Err(e) => {
                        rowno += 1;
                        imp.read += 1;
                        imp.fail(&progress, rowno, None, "INVALID_ARGUMENT", &e.to_string());
                    }
                }
            }
        }
    }
    imp.finish(&progress).await?;
    progress.update(size.unwrap_or(0), imp.imported + imp.failed);
    let elapsed = progress.finish();
    let (read, imported, failed) = (imp.read, imp.imported, imp.failed);
    if ctx.json {
        out.json(
            &json!({
                "resource": name,
                "format": format_name(format),
                "read": read,
                "imported": imported,
                "failed": failed,
                "seconds": round3(elapsed.as_secs_f64()),
            }),
            true,
        )?;
    } else {
        out.line(format!(
            "imported {imported} of {read} records into {name} in {:.1}s{}",
            elapsed.as_secs_f64(),
            if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            }
        ))?;
    }
    if failed > 0 {
        out.flush()?;
        return Err(Failure::Partial {
            failed,
            total: read,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_round_trip() {
        let values = [
            json!("plain text"),
            json!(""),
            json!("42"),
            json!("true"),
            json!("null"),
            json!("\"quoted\""),
            json!(" 7 "),
            json!("007"),
            json!("a,b\n\"c\""),
            json!(42),
            json!(-1.5),
            json!(true),
            json!(["a", 1]),
            json!({"k": {"n": 1}}),
        ];
        for v in values {
            let cell = encode_cell(&v);
            assert_eq!(decode_cell(&cell, None), Some(v.clone()), "cell {cell:?}");
            // A text attribute keeps a bare number or boolean as its text.
            let as_text = if v.is_number() || v.is_boolean() {
                Value::String(cell.clone())
            } else {
                v.clone()
            };
            assert_eq!(decode_cell(&cell, Some(&Kind::String)), Some(as_text));
        }
        assert_eq!(decode_cell("", None), None);
        assert_eq!(decode_cell("12", Some(&Kind::Number)), Some(json!(12)));
        assert_eq!(decode_cell("12", Some(&Kind::String)), Some(json!("12")));
    }
}
