//! Attribute rules and the record ⇄ metadata mapping.

pub mod codec;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::storage::Metadata;

pub const METADATA_LIMIT: usize = 2047;

/// One attribute: its rule string as given and what it asks for.
#[derive(Debug, Clone)]
pub struct Attribute {
    pub name: String,
    pub rule: String,
    pub required: bool,
}

/// A resource's schema at one catalog version.
#[derive(Debug, Clone)]
pub struct Schema {
    pub version: String,
    pub attributes: Vec<Attribute>,
    /// attribute → short metadata key
    key_of: HashMap<String, String>,
    /// short metadata key → attribute
    attr_of: HashMap<String, String>,
}

/// Parses attribute definitions. This first cut accepts string attributes only.
pub fn parse_attributes(defs: &Map<String, Value>) -> Result<Vec<Attribute>> {
    if defs.is_empty() {
        return Err(Error::validation("a resource needs at least one attribute"));
    }
    let mut out = Vec::with_capacity(defs.len());
    let mut problems = Vec::new();
    for (name, def) in defs {
        if name.is_empty() || name.starts_with('_') || name.starts_with('$') || name == "id" {
            problems.push(format!("attribute name {name:?} is reserved or empty"));
            continue;
        }
        let Some(rule) = def.as_str() else {
            problems.push(format!(
                "attribute {name:?}: definition must be a rule string"
            ));
            continue;
        };
        let mut parts = rule.split('|');
        let base = parts.next().unwrap_or("").trim();
        if base != "string" {
            problems.push(format!(
                "attribute {name:?}: type {base:?} is not supported (expected \"string\")"
            ));
            continue;
        }
        let mut required = false;
        for p in parts {
            match p.trim() {
                "required" => required = true,
                "optional" | "optional:true" => required = false,
                other => problems.push(format!("attribute {name:?}: unknown rule {other:?}")),
            }
        }
        out.push(Attribute {
            name: name.clone(),
            rule: rule.to_string(),
            required,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(Error::validation(format!(
            "invalid schema: {}",
            problems.join("; ")
        )))
    }
}

impl Schema {
    pub fn new(version: String, attributes: Vec<Attribute>, mapping: &Map<String, Value>) -> Self {
        let mut key_of = HashMap::new();
        let mut attr_of = HashMap::new();
        for (attr, idx) in mapping {
            if let Some(i) = idx.as_u64() {
                let key = codec::base36(i);
                key_of.insert(attr.clone(), key.clone());
                attr_of.insert(key, attr.clone());
            }
        }
        Schema {
            version,
            attributes,
            key_of,
            attr_of,
        }
    }

    /// Checks a whole record (`partial`: only the fields present). Lists every failure.
    pub fn validate(&self, record: &Map<String, Value>, partial: bool) -> Result<()> {
        let mut problems = Vec::new();
        for (field, value) in record {
            if field == "id" {
                continue;
            }
            match self.attributes.iter().find(|a| &a.name == field) {
                None => problems.push(format!("{field}: not an attribute of this resource")),
                Some(a) => match value {
                    Value::String(s) if codec::is_lossy_string(s) => problems.push(format!(
                        "{field}: the string {s:?} cannot be stored (s3db.js reads it as null)"
                    )),
                    Value::String(_) => {}
                    Value::Null if !a.required => {}
                    other => problems.push(format!(
                        "{field}: expected string, got {}",
                        type_name(other)
                    )),
                },
            }
        }
        if !partial {
            for a in &self.attributes {
                if a.required && !matches!(record.get(&a.name), Some(Value::String(_))) {
                    problems.push(format!("{}: required", a.name));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(format!(
                "validation failed: {}",
                problems.join("; ")
            )))
        }
    }

    /// The record under short keys, values not yet encoded for metadata (`_v` last).
    pub fn to_mapped(&self, record: &Map<String, Value>) -> Map<String, Value> {
        let mut mapped = Map::new();
        for (field, value) in record {
            if let Some(key) = self.key_of.get(field) {
                mapped.insert(key.clone(), value.clone());
            }
        }
        mapped.insert("_v".into(), Value::String(self.version.clone()));
        mapped
    }

    /// Metadata for a record (values encoded, `_v` included).
    pub fn to_metadata(&self, record: &Map<String, Value>) -> Metadata {
        self.to_mapped(record)
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::String(s) if k == "_v" => Some((k, s)),
                Value::String(s) => Some((k, codec::encode_header_value(&s))),
                _ => None,
            })
            .collect()
    }

    /// Record fields from stored metadata and an optional JSON body (metadata wins).
    pub fn from_stored(&self, meta: &Metadata, body: &[u8]) -> Map<String, Value> {
        let mut record = Map::new();
        if !body.is_empty() {
            if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) {
                for (k, v) in fields {
                    let name = self.attr_of.get(&k).cloned().unwrap_or(k);
                    if name.starts_with('_') || name.starts_with('$') || v.is_null() {
                        continue;
                    }
                    record.insert(name, v);
                }
            }
        }
        for (k, v) in meta {
            let Some(name) = self.attr_of.get(k) else {
                continue;
            };
            match codec::decode_value(v) {
                Some(s) => {
                    record.insert(name.clone(), Value::String(s));
                }
                None => {
                    record.shift_remove(name);
                }
            }
        }
        record
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// UTF-8 bytes of keys and values, as S3 counts user metadata.
pub fn metadata_size(meta: &Metadata) -> usize {
    meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// `JSON.stringify` key order: canonical array indexes first (ascending), then the rest.
pub fn js_key_order(map: Map<String, Value>) -> Map<String, Value> {
    let is_index = |k: &str| {
        !k.is_empty()
            && k.bytes().all(|b| b.is_ascii_digit())
            && (k == "0" || !k.starts_with('0'))
            && k.parse::<u64>().map(|n| n < 4_294_967_295).unwrap_or(false)
    };
    let (mut idx, rest): (Vec<_>, Vec<_>) = map.into_iter().partition(|(k, _)| is_index(k));
    idx.sort_by_key(|(k, _)| k.parse::<u64>().unwrap_or(0));
    idx.into_iter().chain(rest).collect()
}
