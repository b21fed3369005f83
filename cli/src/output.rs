//! stdout (buffered; a closed pipe ends the command quietly), tables and small formatters.

use std::io::{self, BufWriter, Write};

use serde_json::{json, Value};

pub struct Out {
    w: BufWriter<Box<dyn Write>>,
}

impl Out {
    pub fn stdout() -> Out {
        Out::to(Box::new(io::stdout()))
    }

    pub fn to(w: Box<dyn Write>) -> Out {
        Out {
            w: BufWriter::with_capacity(64 * 1024, w),
        }
    }

    pub fn line(&mut self, text: impl std::fmt::Display) -> io::Result<()> {
        writeln!(self.w, "{text}")
    }

    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.w.write_all(b)
    }

    /// Compact JSON on one line (`--json`), or indented for people.
    pub fn json(&mut self, v: &Value, compact: bool) -> io::Result<()> {
        if compact {
            serde_json::to_writer(&mut self.w, v)?;
        } else {
            serde_json::to_writer_pretty(&mut self.w, v)?;
        }
        self.w.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.w.flush()
    }

    pub fn writer(&mut self) -> &mut dyn Write {
        &mut self.w
    }
}

/// Writes a JSON array one element at a time (one document, bounded memory).
pub struct JsonArray {
    first: bool,
}

impl JsonArray {
    pub fn start(out: &mut Out) -> io::Result<JsonArray> {
        out.bytes(b"[")?;
        Ok(JsonArray { first: true })
    }

    pub fn push(&mut self, out: &mut Out, v: &Value) -> io::Result<()> {
        if !self.first {
            out.bytes(b",")?;
        }
        self.first = false;
        serde_json::to_writer(out.writer(), v)?;
        Ok(())
    }

    pub fn end(self, out: &mut Out) -> io::Result<()> {
        out.bytes(b"]\n")
    }
}

/// A plain text table: a header row, then aligned columns.
pub fn table(out: &mut Out, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let render = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        line
    };
    out.line(render(header.to_vec()))?;
    for row in rows {
        out.line(render(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

pub fn stats_json(s: &s3db::Stats) -> Value {
    json!({
        "get": s.get,
        "head": s.head,
        "put": s.put,
        "copy": s.copy,
        "delete": s.delete,
        "list": s.list,
        "total": s.total(),
    })
}

pub fn stats_line(s: &s3db::Stats) -> String {
    format!(
        "requests: {} (GET {}, HEAD {}, PUT {}, COPY {}, DELETE {}, LIST {})",
        s.total(),
        s.get,
        s.head,
        s.put,
        s.copy,
        s.delete,
        s.list
    )
}

/// `--stats`: the session's requests, on stderr, as JSON with `--json`.
pub fn print_stats_stderr(s: &s3db::Stats, json: bool) {
    if json {
        eprintln!("{}", json!({ "stats": stats_json(s) }));
    } else {
        eprintln!("{}", stats_line(s));
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC time (`2026-12-05T01:40:00.000Z`).
pub fn iso_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_times() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_millis(1_796_434_200_000), "2026-12-05T01:30:00.000Z");
    }
}
