//! Partition reference objects (format.md §15): exact keys from the record, exact prefixes
//! for queries.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::schema::num::js_number;

#[derive(Debug, Clone)]
pub struct Partition {
    pub name: String,
    /// (field path, rule), sorted as s3db.js sorts them (`localeCompare`).
    pub fields: Vec<(String, String)>,
}

fn locale_cmp(a: &str, b: &str) -> Ordering {
    a.to_lowercase()
        .cmp(&b.to_lowercase())
        .then_with(|| b.cmp(a))
}

pub fn partitions_of(defs: &Map<String, Value>) -> Vec<Partition> {
    let mut out: Vec<Partition> = defs
        .iter()
        .filter_map(|(name, def)| {
            let fields = def.get("fields")?.as_object()?;
            let mut fields: Vec<(String, String)> = fields
                .iter()
                .map(|(p, r)| (p.clone(), r.as_str().unwrap_or("string").to_string()))
                .collect();
            fields.sort_by(|a, b| locale_cmp(&a.0, &b.0));
            Some(Partition {
                name: name.clone(),
                fields,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn lookup<'a>(record: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = record.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    (!cur.is_null()).then_some(cur)
}

/// The key segment value of a field (`None`: the record has no value there).
pub fn segment_value(rule: &str, v: &Value) -> Option<String> {
    let mut text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => js_number(n.as_f64()?),
        Value::Bool(b) => b.to_string(),
        Value::Null => return None,
        other => other.to_string(),
    };
    if rule.contains("date") {
        if text.contains('T') && text.contains('Z') {
            text = text.split('T').next().unwrap_or("").to_string();
        } else if let Ok(d) = chrono::DateTime::parse_from_rfc3339(&text) {
            text = d.with_timezone(&chrono::Utc).format("%Y-%m-%d").to_string();
        }
    }
    if let Some(n) = rule
        .split('|')
        .find_map(|p| p.trim().strip_prefix("maxlength:")?.parse::<usize>().ok())
    {
        if v.is_string() || rule.contains("date") {
            let units: Vec<u16> = text.encode_utf16().take(n).collect();
            text = String::from_utf16_lossy(&units);
        }
    }
    Some(text)
}

/// Values that would change the shape of the key are refused, not written.
fn check_value(partition: &str, field: &str, value: &str) -> Result<()> {
    if value.contains('/') || value == "." || value == ".." || value.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "partition {partition:?}: value {value:?} of {field:?} cannot be part of a key ('/', '.', '..' and control characters are refused)"
        )));
    }
    Ok(())
}

impl Partition {
    fn base(&self, resource: &str) -> String {
        format!("resource={resource}/partition={}/", self.name)
    }

    /// The reference key of a record, or `None` when a field has no value.
    pub fn key(
        &self,
        resource: &str,
        record: &Map<String, Value>,
        id: &str,
    ) -> Result<Option<String>> {
        let mut key = self.base(resource);
        for (path, rule) in &self.fields {
            let Some(v) = lookup(record, path).and_then(|v| segment_value(rule, v)) else {
                return Ok(None);
            };
            check_value(&self.name, path, &v)?;
            key.push_str(&format!("{path}={v}/"));
        }
        key.push_str(&format!("id={id}"));
        Ok(Some(key))
    }

    /// The listing prefix for some field values: the leading fields that have a value,
    /// ending in `/` so that `status=act` never matches `status=active`.
    pub fn prefix(&self, resource: &str, values: &Map<String, Value>) -> Result<String> {
        let mut prefix = self.base(resource);
        for (path, rule) in &self.fields {
            let Some(v) = values.get(path).and_then(|v| segment_value(rule, v)) else {
                break;
            };
            check_value(&self.name, path, &v)?;
            prefix.push_str(&format!("{path}={v}/"));
        }
        Ok(prefix)
    }

    /// How many of this partition's fields a filter fixes, as a leading run.
    pub fn coverage(&self, fixed: &Map<String, Value>) -> usize {
        self.fields
            .iter()
            .take_while(|(p, _)| fixed.contains_key(p))
            .count()
    }
}
