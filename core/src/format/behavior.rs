//! Where a record's fields go: metadata, body, or both (format.md §8–§9).

use serde_json::{json, Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::format::schema::{js_key_order, Schema};

const OVERFLOW_FLAG_COST: usize = 13;
const TRUNCATED_FLAG_COST: usize = 14;
/// Plugin keys → attribute names, for readers of a body (stored `_pluginmap`).
pub const PLUGIN_MAP: &str = "_pluginMap";
/// What S3 accepts for user metadata (keys and values as sent).
pub const S3_METADATA_MAX: usize = 2048;

pub struct Layout {
    /// Pre-encoding metadata (keys not yet sanitized, e.g. `$overflow`).
    pub metadata: Map<String, Value>,
    pub body: Vec<u8>,
}

impl Layout {
    pub fn content_type(&self) -> Option<String> {
        (!self.body.is_empty()).then(|| "application/json".to_string())
    }
}

pub struct Input<'a> {
    pub behavior: &'a str,
    pub schema: &'a Schema,
    /// `mappedData`: short keys → compact strings, `_v` included.
    pub mapped: Map<String, Value>,
    /// The validated record by attribute name (user-managed update body).
    pub record: &'a Map<String, Value>,
    pub timestamps: bool,
    pub update_id: Option<&'a str>,
    pub limit: usize,
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::Null => 0,
        Value::String(s) => s.len(),
        Value::Bool(_) => 1,
        other => other.to_string().len(),
    }
}

fn total_size(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn json_body(m: Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&js_key_order(m)).expect("json")
}

fn by_size(mapped: &Map<String, Value>) -> Vec<(String, Value, usize)> {
    let mut fields: Vec<(String, Value, usize)> = mapped
        .iter()
        .filter(|(k, _)| k.as_str() != "_v")
        .map(|(k, v)| (k.clone(), v.clone(), value_size(v)))
        .collect();
    fields.sort_by_key(|f| f.2);
    fields
}

fn truncate_utf8(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

pub fn layout(input: Input<'_>) -> Result<Layout> {
    let version = json!(input.schema.version);
    let overhead = total_size(&Map::from_iter([("_v".to_string(), version.clone())]))
        + if input.timestamps {
            2 * ("createdAt".len() + 24)
        } else {
            0
        };
    let id_overhead = input.update_id.map(|id| 2 + id.len()).unwrap_or(0);
    let limit = input.limit;
    let effective = limit.saturating_sub(overhead);
    let is_update = input.update_id.is_some();
    let mapped = input.mapped;
    let only_v = || Map::from_iter([("_v".to_string(), version.clone())]);

    let layout = match input.behavior {
        "enforce-limits" => {
            let eff = effective.saturating_sub(id_overhead);
            let size = total_size(&mapped);
            if size > eff {
                return Err(Error::new(
                    ErrorKind::Validation,
                    format!("metadata limit: the record needs {size} bytes of metadata, over the {eff}-byte limit (enforce-limits)"),
                ));
            }
            let body = if is_update {
                json_body(mapped.clone())
            } else {
                Vec::new()
            };
            Layout {
                metadata: mapped,
                body,
            }
        }
        "truncate-data" => {
            let mut result = only_v();
            let mut current = value_size(&version);
            let mut truncated = false;
            for (k, v, size) in by_size(&mapped) {
                let flag = if truncated { 0 } else { TRUNCATED_FLAG_COST };
                if current + size + flag <= effective {
                    result.insert(k, v);
                    current += size;
                } else {
                    let avail = effective as i64 - current as i64 - flag as i64;
                    let text = match &v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let cut = if avail > 0 {
                        truncate_utf8(&text, avail as usize)
                    } else {
                        String::new()
                    };
                    result.insert(k, Value::String(cut));
                    truncated = true;
                    break;
                }
            }
            loop {
                let flag = if truncated { TRUNCATED_FLAG_COST } else { 0 };
                if total_size(&result) + flag <= effective {
                    break;
                }
                let ordered = js_key_order(result.clone());
                let last = ordered
                    .iter()
                    .rev()
                    .find(|(k, v)| k.as_str() != "_v" && v.as_str() != Some(""))
                    .map(|(k, _)| k.clone());
                match last {
                    // s3db.js blanks the field; cutting it by the excess keeps what fits.
                    Some(k) => {
                        let excess = total_size(&result) + TRUNCATED_FLAG_COST - effective;
                        let text = result[&k].as_str().unwrap_or_default().to_string();
                        let kept = truncate_utf8(&text, text.len().saturating_sub(excess));
                        result.insert(k, json!(kept));
                        truncated = true;
                    }
                    None => {
                        return Err(Error::new(
                            ErrorKind::Validation,
                            "metadata limit: the attribute names alone exceed the limit (truncate-data)",
                        ))
                    }
                }
            }
            if truncated {
                result.insert("$truncated".into(), json!("true"));
            }
            let body = if is_update {
                json_body(result.clone())
            } else {
                Vec::new()
            };
            Layout {
                metadata: result,
                body,
            }
        }
        "body-overflow" => {
            let mut meta = only_v();
            let mut current = value_size(&version);
            if let Some(map) = input.schema.plugin_map_json() {
                current += PLUGIN_MAP.len() + map.len();
                meta.insert(PLUGIN_MAP.into(), json!(map));
            }
            let mut reserved = effective;
            let mut overflowing = false;
            let mut body = Map::new();
            for (k, v, size) in by_size(&mapped) {
                if !overflowing && current + size > effective {
                    reserved = reserved.saturating_sub(OVERFLOW_FLAG_COST);
                    overflowing = true;
                }
                if !overflowing && current + size <= reserved {
                    meta.insert(k, v);
                    current += size;
                } else {
                    body.insert(k, v);
                }
            }
            if overflowing {
                meta.insert("$overflow".into(), json!("true"));
                Layout {
                    metadata: meta,
                    body: json_body(body),
                }
            } else {
                let body = if is_update {
                    json_body(mapped.clone())
                } else {
                    Vec::new()
                };
                Layout {
                    metadata: meta,
                    body,
                }
            }
        }
        "body-only" => {
            let mut meta = only_v();
            meta.insert("_map".into(), json!(input.schema.map_json()));
            if let Some(map) = input.schema.plugin_map_json() {
                meta.insert(PLUGIN_MAP.into(), json!(map));
            }
            Layout {
                metadata: meta,
                body: json_body(mapped),
            }
        }
        _ => {
            // user-managed
            let eff = effective.saturating_sub(id_overhead);
            if total_size(&mapped) > eff {
                let mut meta = only_v();
                if let Some(map) = input.schema.plugin_map_json() {
                    meta.insert(PLUGIN_MAP.into(), json!(map));
                }
                Layout {
                    metadata: meta,
                    body: json_body(mapped),
                }
            } else if is_update {
                let body = serde_json::to_vec(&Value::Object(input.record.clone())).expect("json");
                Layout {
                    metadata: mapped,
                    body,
                }
            } else {
                Layout {
                    metadata: mapped,
                    body: Vec::new(),
                }
            }
        }
    };
    Ok(layout)
}

/// Bytes S3 counts for the metadata as sent.
pub fn sent_size(meta: &crate::storage::Metadata) -> usize {
    meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}
