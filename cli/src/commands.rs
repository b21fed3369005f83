//! The small commands: one engine call (or a few) and its output.

use serde_json::{json, Map, Value};

use crate::exit::Failure;
use crate::output::{self, iso_millis, now_millis, table, JsonArray, Out};
use crate::{json_arg, Ctx, PartitionArgs};
use s3db::{Error, ErrorKind, Resource};

/// Records are fetched this many ids at a time when listing through a partition.
const FETCH_CHUNK: usize = 100;

type Res<T = ()> = Result<T, Failure>;

pub async fn resources(ctx: &Ctx, out: &mut Out) -> Res {
    let names = ctx.db().await?.list_resources().await;
    if ctx.json {
        out.json(&json!(names), true)?;
    } else {
        for n in names {
            out.line(n)?;
        }
    }
    Ok(())
}

/// The catalog as stored (`s3db.json`), read again: one GET.
pub async fn raw_catalog(ctx: &Ctx) -> Res<Value> {
    let db = ctx.db().await?;
    let key = s3db::catalog::CATALOG_KEY;
    let obj = db.store().get(key).await.map_err(|e| e.at(key))?;
    Ok(s3db::catalog::parse(&obj.body)?)
}

/// The definition of a resource: what `define` takes back, plus versions and partitions
/// as stored.
pub async fn definition(ctx: &Ctx, resource: &Resource) -> Res<Value> {
    let catalog = raw_catalog(ctx).await?;
    let name = resource.name();
    let def = s3db::catalog::resource_def(&catalog, name, ctx.passphrase())?
        .ok_or_else(|| Error::not_found(format!("resource {name}")))?;
    let raw = catalog
        .pointer(&format!("/resources/{}", pointer_escape(name)))
        .cloned()
        .unwrap_or(Value::Null);
    let current = raw
        .pointer(&format!("/versions/{}", pointer_escape(&def.current)))
        .cloned()
        .unwrap_or(Value::Null);
    let mut versions: Vec<String> = def.schemas.keys().cloned().collect();
    versions.sort_by_key(|v| {
        (
            v.trim_start_matches('v').parse::<u64>().unwrap_or(u64::MAX),
            v.clone(),
        )
    });
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    out.insert("currentVersion".into(), json!(def.current));
    out.insert("versions".into(), json!(versions));
    out.insert(
        "attributes".into(),
        Value::Object(def.schema().attributes().clone()),
    );
    out.insert("behavior".into(), json!(def.behavior));
    out.insert("timestamps".into(), json!(def.timestamps));
    out.insert("partitions".into(), Value::Object(def.partitions.clone()));
    out.insert("paranoid".into(), json!(def.paranoid));
    out.insert("idSize".into(), json!(def.id_size));
    if let Some(inc) = &def.incremental {
        // The object form carries everything (prefix, padding, mode), so `define` restores
        // the same generator.
        let mut generator = json!({
            "type": "incremental",
            "start": inc.start,
            "increment": inc.increment,
            "prefix": inc.prefix,
            "padding": inc.padding,
        });
        if inc.batch_size > 1 {
            generator["mode"] = json!("fast");
            generator["batchSize"] = json!(inc.batch_size);
        }
        out.insert("idGenerator".into(), generator);
    }
    let plugins = resource.plugin_map();
    if !plugins.is_empty() {
        out.insert("pluginAttributes".into(), Value::Object(plugins));
    }
    if let Some(hooks) = current.get("hooks").filter(|h| !is_empty(h)) {
        out.insert("hooks".into(), hooks.clone());
    }
    if let Some(hash) = current.get("hash") {
        out.insert("hash".into(), hash.clone());
    }
    Ok(Value::Object(out))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn pointer_escape(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

pub async fn describe(ctx: &Ctx, out: &mut Out, name: &str) -> Res {
    let resource = ctx.db().await?.resource(name).await?;
    let def = definition(ctx, &resource).await?;
    out.json(&def, ctx.json)?;
    Ok(())
}

pub async fn define(ctx: &Ctx, out: &mut Out, name: &str, text: &str) -> Res {
    let v = json_arg("definition", text)?;
    let config = if v.get("attributes").is_some_and(Value::is_object) {
        s3db::ResourceConfig::from_json(&v)?
    } else {
        s3db::ResourceConfig::from_attributes(&v)?
    };
    let resource = ctx.db().await?.create_resource_with(name, config).await?;
    let def = definition(ctx, &resource).await?;
    if ctx.json {
        out.json(&def, true)?;
    } else {
        out.line(format!(
            "defined {name} ({}, {} attributes)",
            def["currentVersion"].as_str().unwrap_or("?"),
            def["attributes"].as_object().map_or(0, Map::len)
        ))?;
    }
    Ok(())
}

pub async fn get(ctx: &Ctx, out: &mut Out, name: &str, id: &str) -> Res {
    let resource = ctx.db().await?.resource(name).await?;
    let record = resource.get(id).await?;
    out.json(&record, ctx.json)?;
    Ok(())
}

pub async fn insert(ctx: &Ctx, out: &mut Out, name: &str, text: &str) -> Res {
    let data = json_arg("record", text)?;
    let resource = ctx.db().await?.resource(name).await?;
    let record = resource.insert(data).await?;
    out.json(&record, ctx.json)?;
    Ok(())
}

pub async fn update(ctx: &Ctx, out: &mut Out, name: &str, id: &str, text: &str) -> Res {
    let changes = json_arg("changes", text)?;
    let resource = ctx.db().await?.resource(name).await?;
    let record = resource.update(id, changes).await?;
    out.json(&record, ctx.json)?;
    Ok(())
}

pub async fn delete(ctx: &Ctx, out: &mut Out, name: &str, id: &str) -> Res {
    let resource = ctx.db().await?.resource(name).await?;
    resource.delete(id).await?;
    if ctx.json {
        out.json(&json!({"resource": name, "id": id, "deleted": true}), true)?;
    } else {
        out.line(format!("deleted {name} {id}"))?;
    }
    Ok(())
}

/// `--partition P --value f=v ...` as the engine takes it.
pub fn partition_of(p: &PartitionArgs) -> Res<Option<(String, Map<String, Value>)>> {
    let Some(name) = &p.partition else {
        return Ok(None);
    };
    let mut values = Map::new();
    for kv in &p.values {
        let (field, value) = kv
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--value takes FIELD=VALUE, got {kv:?}")))?;
        if field.is_empty() {
            return Err(Failure::Usage(format!(
                "--value takes FIELD=VALUE, got {kv:?}"
            )));
        }
        values.insert(field.to_string(), Value::String(value.to_string()));
    }
    Ok(Some((name.clone(), values)))
}

/// Prints records as they come: a JSON array (`--json`) or one compact JSON line each.
struct RecordSink {
    json: Option<JsonArray>,
    n: usize,
}

impl RecordSink {
    fn start(ctx: &Ctx, out: &mut Out) -> Res<RecordSink> {
        let json = if ctx.json {
            Some(JsonArray::start(out)?)
        } else {
            None
        };
        Ok(RecordSink { json, n: 0 })
    }

    fn push(&mut self, out: &mut Out, record: &Value) -> Res {
        self.n += 1;
        match &mut self.json {
            Some(a) => a.push(out, record)?,
            None => out.line(record)?,
        }
        Ok(())
    }

    fn end(self, out: &mut Out) -> Res {
        if let Some(a) = self.json {
            a.end(out)?;
        }
        Ok(())
    }
}

pub async fn list(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    p: &PartitionArgs,
    limit: Option<usize>,
) -> Res {
    let partition = partition_of(p)?;
    let resource = ctx.db().await?.resource(name).await?;
    let limit = limit.unwrap_or(usize::MAX);
    let mut sink = RecordSink::start(ctx, out)?;
    match &partition {
        None => {
            // Page through the records: one LIST + a GET per record per page.
            let mut cursor: Option<String> = None;
            while sink.n < limit {
                let size = (limit - sink.n).min(500);
                let page = resource.page(size, cursor.as_deref()).await?;
                for r in page.items.iter().take(limit - sink.n) {
                    sink.push(out, r)?;
                }
                match page.cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Some((pname, values)) => {
            let mut ids = resource.list_ids_in(Some((pname, values))).await?;
            ids.truncate(limit);
            for chunk in ids.chunks(FETCH_CHUNK) {
                let (records, _missing) = resource.get_many(chunk).await?;
                for r in &records {
                    sink.push(out, r)?;
                }
            }
        }
    }
    sink.end(out)
}

pub async fn query(
    ctx: &Ctx,
    out: &mut Out,
    name: &str,
    filter_text: &str,
    p: &PartitionArgs,
    limit: Option<usize>,
) -> Res {
    let filter = json_arg("filter", filter_text)?;
    let partition = partition_of(p)?;
    let resource = ctx.db().await?.resource(name).await?;
    let limit = limit.unwrap_or(usize::MAX);
    let mut sink = RecordSink::start(ctx, out)?;
    match &partition {
        None => {
            for r in resource.query(&filter).await?.iter().take(limit) {
                sink.push(out, r)?;
            }
        }
        Some((pname, values)) => {
            // The engine's query picks a partition itself; this one is named: list its ids
            // and filter the records with the engine's own matcher.
            let conditions = filter
                .as_object()
                .ok_or_else(|| Error::invalid("a query filter must be an object"))?;
            for cond in conditions.values() {
                s3db::format::query::check_condition(cond)?;
            }
            let ids = resource.list_ids_in(Some((pname, values))).await?;
            'chunks: for chunk in ids.chunks(FETCH_CHUNK) {
                let (records, _missing) = resource.get_many(chunk).await?;
                for r in &records {
                    if sink.n >= limit {
                        break 'chunks;
                    }
                    if s3db::format::query::record_matches(r, conditions) {
                        sink.push(out, r)?;
                    }
                }
            }
        }
    }
    sink.end(out)
}

pub async fn count(ctx: &Ctx, out: &mut Out, name: &str, p: &PartitionArgs) -> Res {
    let partition = partition_of(p)?;
    let resource = ctx.db().await?.resource(name).await?;
    let n = resource
        .count_in(partition.as_ref().map(|(p, v)| (p.as_str(), v)))
        .await?;
    if ctx.json {
        let mut doc = json!({"resource": name, "count": n});
        if let Some((p, v)) = &partition {
            doc["partition"] = json!(p);
            doc["values"] = Value::Object(v.clone());
        }
        out.json(&doc, true)?;
    } else {
        out.line(n)?;
    }
    Ok(())
}

pub async fn lock(ctx: &Ctx, out: &mut Out, name: &str) -> Res {
    let info = ctx.db().await?.lock_info(name).await?;
    let now = now_millis();
    match info {
        None => {
            if ctx.json {
                out.json(&json!({"name": name, "state": "free"}), true)?;
            } else {
                out.line(format!("{name}: free"))?;
            }
        }
        Some(i) => {
            if ctx.json {
                out.json(
                    &json!({
                        "name": name,
                        "state": "held",
                        "holderId": i.holder_id,
                        "fencingToken": i.fencing_token,
                        "acquiredAt": iso_millis(i.acquired_at),
                        "expiresAt": iso_millis(i.expires_at),
                        "expiresInMs": (i.expires_at - now).max(0),
                    }),
                    true,
                )?;
            } else {
                out.line(format!(
                    "{name}: held by {}, fencing token {}, acquired {}, expires {} (in {:.1}s)",
                    i.holder_id,
                    i.fencing_token,
                    iso_millis(i.acquired_at),
                    iso_millis(i.expires_at),
                    (i.expires_at - now).max(0) as f64 / 1000.0
                ))?;
            }
        }
    }
    Ok(())
}

async fn sequence_value(ctx: &Ctx, name: &str) -> Res<Option<i64>> {
    Ok(ctx.db().await?.sequence(name)?.current().await?)
}

pub async fn sequence(ctx: &Ctx, out: &mut Out, name: &str) -> Res {
    let value = sequence_value(ctx, name)
        .await?
        .ok_or_else(|| Error::new(ErrorKind::NotFound, format!("not found: sequence {name}")))?;
    if ctx.json {
        out.json(&json!({"name": name, "current": value}), true)?;
    } else {
        out.line(value)?;
    }
    Ok(())
}

pub async fn sequences(ctx: &Ctx, out: &mut Out) -> Res {
    let names = ctx.db().await?.list_sequences().await?;
    let mut rows = Vec::with_capacity(names.len());
    for n in names {
        let v = sequence_value(ctx, &n).await?;
        rows.push((n, v));
    }
    if ctx.json {
        let docs: Vec<Value> = rows
            .iter()
            .map(|(n, v)| json!({"name": n, "current": v}))
            .collect();
        out.json(&json!(docs), true)?;
    } else {
        let cells: Vec<Vec<String>> = rows
            .into_iter()
            .map(|(n, v)| vec![n, v.map_or_else(|| "-".to_string(), |v| v.to_string())])
            .collect();
        table(out, &["SEQUENCE", "CURRENT"], &cells)?;
    }
    Ok(())
}

pub async fn heal(ctx: &Ctx, out: &mut Out) -> Res {
    // Connecting heals the catalog if it needs it; the log says what was repaired.
    let log = ctx.db().await?.healing_log();
    if ctx.json {
        out.json(&json!({"healed": !log.is_empty(), "log": log}), true)?;
    } else if log.is_empty() {
        out.line("catalog intact: nothing to heal")?;
    } else {
        for line in log {
            out.line(line)?;
        }
    }
    Ok(())
}

pub async fn stats(ctx: &Ctx, out: &mut Out) -> Res {
    let stats = ctx.db().await?.stats();
    if ctx.json {
        out.json(&output::stats_json(&stats), true)?;
    } else {
        let rows = vec![
            vec!["GET".to_string(), stats.get.to_string()],
            vec!["HEAD".to_string(), stats.head.to_string()],
            vec!["PUT".to_string(), stats.put.to_string()],
            vec!["COPY".to_string(), stats.copy.to_string()],
            vec!["DELETE".to_string(), stats.delete.to_string()],
            vec!["LIST".to_string(), stats.list.to_string()],
            vec!["total".to_string(), stats.total().to_string()],
        ];
        table(out, &["REQUEST", "COUNT"], &rows)?;
    }
    Ok(())
}
