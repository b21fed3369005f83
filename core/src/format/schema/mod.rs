//! Attribute definitions, validation and the record ⇄ stored-object mapping (format.md §5–§7).

pub mod codec;
pub mod num;
pub mod rules;
pub mod types;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::storage::Metadata;
pub use rules::{Issue, Rule};
use types::Kind;

pub const METADATA_LIMIT: usize = 2047;

/// A value-bearing attribute path and its rule.
#[derive(Debug, Clone)]
pub struct Field {
    pub path: String,
    pub rule: Rule,
}

/// A resource's schema at one catalog version.
#[derive(Debug, Clone)]
pub struct Schema {
    pub version: String,
    pub fields: Vec<Field>,
    field_of: HashMap<String, usize>,
    /// Nested object definitions: path → optional as its `$$type` says (`None`: it does not).
    nested: HashMap<String, Option<bool>>,
    attributes: Map<String, Value>,
    /// attribute path → short metadata key
    key_of: HashMap<String, String>,
    /// short metadata key → attribute path
    attr_of: HashMap<String, String>,
    /// Plugin-owned attributes (format.md §6.3), in the order they were added: path → key.
    plugin_keys: Vec<(String, String)>,
    pub passphrase: crate::format::crypto::Passphrase,
    pub all_nested_optional: bool,
}

fn reserved(name: &str) -> bool {
    name.is_empty()
        || name.starts_with('_')
        || name.starts_with('$')
        || name == "id"
        || name.contains('.')
}

/// Walks a definition: value-bearing fields and nested objects, listing every problem.
/// `lenient` (a definition read from storage): unknown rule properties are ignored with a
/// warning instead of refused.
fn walk(
    prefix: &str,
    defs: &Map<String, Value>,
    lenient: bool,
    fields: &mut Vec<Field>,
    nested: &mut HashMap<String, Option<bool>>,
    problems: &mut Vec<String>,
) {
    for (name, def) in defs {
        if name.contains("$$") {
            continue;
        }
        let path = format!("{prefix}{name}");
        if reserved(name) {
            problems.push(format!("attribute name {path:?} is reserved or empty"));
            continue;
        }
        let rule = match def {
            Value::String(rule) => Some(Rule::parse_as(rule, lenient)),
            Value::Object(o)
                if o.get("type").is_some_and(Value::is_string) && !o.contains_key("$$type") =>
            {
                Some(Rule::from_object_as(o, lenient))
            }
            Value::Object(o) => {
                let ty = o.get("$$type").and_then(Value::as_str).unwrap_or("");
                let optional = if ty.contains("required") {
                    Some(false)
                } else if ty.contains("optional") {
                    Some(true)
                } else {
                    None
                };
                nested.insert(path.clone(), optional);
                walk(&format!("{path}."), o, lenient, fields, nested, problems);
                None
            }
            other => {
                problems.push(format!(
                    "attribute {path:?}: definition must be a rule string or an object, got {}",
                    type_name(other)
                ));
                None
            }
        };
        match rule {
            None => {}
            Some(Ok(rule)) => {
                if !rule.ignored.is_empty() {
                    tracing::warn!(
                        attribute = %path,
                        ignored = ?rule.ignored,
                        "rule properties this engine does not know are not enforced"
                    );
                }
                fields.push(Field { path, rule })
            }
            Some(Err(e)) => problems.push(format!("attribute {path:?}: {e}")),
        }
    }
}

/// Checks a definition; the error lists every problem.
pub fn check_attributes(defs: &Map<String, Value>) -> Result<()> {
    if defs.is_empty() {
        return Err(Error::validation("a resource needs at least one attribute"));
    }
    let (mut fields, mut nested, mut problems) = (Vec::new(), HashMap::new(), Vec::new());
    walk("", defs, false, &mut fields, &mut nested, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::validation(format!(
            "invalid schema: {}",
            problems.join("; ")
        )))
    }
}

/// The metadata key s3db.js gives a plugin-owned attribute (format.md §6.3), before the
/// collision counter: `p` + 3 lower-cased base62 digits of a SHA-256 prefix.
pub fn plugin_key(plugin: &str, attribute: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{plugin}:{attribute}").as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let digits = format!("{:0>3}", num::base62_i128(n as i128));
    format!("p{}", digits[..3].to_lowercase())
}

/// s3db.js's positional order (§6.2): every definition leaf, then the object keys.
pub fn mapping_order(defs: &Map<String, Value>) -> Vec<String> {
    fn leaves(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, child) in o {
                    if !k.contains("$$") {
                        leaves(&format!("{prefix}{k}."), child, out);
                    }
                }
            }
            _ => out.push(prefix.trim_end_matches('.').to_string()),
        }
    }
    fn object_keys(prefix: &str, defs: &Map<String, Value>, out: &mut Vec<String>) {
        for (k, v) in defs {
            if let Value::Object(o) = v {
                let path = format!("{prefix}{k}");
                out.push(path.clone());
                if o.get("$$type").and_then(Value::as_str) == Some("object") {
                    object_keys(&format!("{path}."), o, out);
                }
            }
        }
    }
    let mut order = Vec::new();
    leaves("", &Value::Object(defs.clone()), &mut order);
    object_keys("", defs, &mut order);
    let mut seen = std::collections::HashSet::new();
    order.retain(|p| !p.is_empty() && seen.insert(p.clone()));
    order
}

impl Schema {
    /// `mapping`: attribute path → registry index (burned entries included, for old records).
    /// `plugins`: plugin-owned attribute path → its `p…` key.
    pub fn new(
        version: String,
        attributes: &Map<String, Value>,
        mapping: &Map<String, Value>,
        plugins: &[(String, String)],
        passphrase: &str,
    ) -> Result<Schema> {
        let (mut fields, mut nested, mut problems) = (Vec::new(), HashMap::new(), Vec::new());
        walk(
            "",
            attributes,
            true,
            &mut fields,
            &mut nested,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(Error::validation(format!(
                "invalid schema: {}",
                problems.join("; ")
            )));
        }
        let mut key_of = HashMap::new();
        let mut attr_of = HashMap::new();
        for (attr, idx) in mapping {
            if let Some(i) = idx.as_u64() {
                if plugins.iter().any(|(a, _)| a == attr) {
                    continue;
                }
                let key = codec::base36(i);
                key_of.insert(attr.clone(), key.clone());
                attr_of.insert(key, attr.clone());
            }
        }
        for (attr, key) in plugins {
            key_of.insert(attr.clone(), key.clone());
            attr_of.insert(key.clone(), attr.clone());
        }
        let field_of = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        Ok(Schema {
            version,
            fields,
            field_of,
            nested,
            attributes: attributes.clone(),
            key_of,
            attr_of,
            plugin_keys: plugins.to_vec(),
            passphrase: crate::format::crypto::Passphrase::new(passphrase),
            all_nested_optional: true,
        })
    }

    /// s3db.js `schema.map`: attribute path → short key, in registry order.
    pub fn map_json(&self) -> String {
        let mut pairs: Vec<(&String, &String)> = self
            .key_of
            .iter()
            .filter(|(a, _)| !self.is_plugin_attribute(a))
            .collect();
        pairs.sort_by_key(|(_, k)| u64::from_str_radix(k, 36).unwrap_or(u64::MAX));
        let map: Map<String, Value> = pairs
            .into_iter()
            .map(|(a, k)| (a.clone(), Value::String(k.clone())))
            .collect();
        Value::Object(map).to_string()
    }

    /// s3db.js `pluginMap` as stored in `_pluginmap` (`None` without plugin attributes).
    pub fn plugin_map_json(&self) -> Option<String> {
        if self.plugin_keys.is_empty() {
            return None;
        }
        let map: Map<String, Value> = self
            .plugin_keys
            .iter()
            .map(|(a, k)| (a.clone(), Value::String(k.clone())))
            .collect();
        Some(Value::Object(map).to_string())
    }

    pub fn is_plugin_attribute(&self, path: &str) -> bool {
        self.plugin_keys.iter().any(|(a, _)| a == path)
    }

    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    pub fn field(&self, path: &str) -> Option<&Field> {
        self.field_of.get(path).map(|&i| &self.fields[i])
    }

    pub fn short_key(&self, path: &str) -> Option<&str> {
        self.key_of.get(path).map(String::as_str)
    }

    /// Validates and normalizes a whole record (defaults, trimming, conversions, secrets
    /// encrypted). The error lists every failing field.
    pub fn validate(&self, record: Map<String, Value>) -> Result<Map<String, Value>> {
        let mut issues = Vec::new();
        let out = self.check_level("", &self.attributes.clone(), record, &mut issues);
        if issues.is_empty() {
            Ok(out)
        } else {
            Err(validation_error(issues))
        }
    }

    fn check_level(
        &self,
        prefix: &str,
        defs: &Map<String, Value>,
        mut record: Map<String, Value>,
        issues: &mut Vec<Issue>,
    ) -> Map<String, Value> {
        for key in record.keys() {
            let path = format!("{prefix}{key}");
            if !(defs.contains_key(key) || prefix.is_empty() && key == "id") {
                issues.push(Issue {
                    field: path,
                    rule: "unknown".into(),
                    expected: "a declared attribute".into(),
                    actual: "an undeclared field".into(),
                });
            }
        }
        for (name, def) in defs {
            if name.contains("$$") {
                continue;
            }
            let path = format!("{prefix}{name}");
            if let Some(field) = self.field(&path) {
                let rule = &field.rule;
                match record.get(name) {
                    None | Some(Value::Null) => {
                        record.shift_remove(name);
                        if let Some(d) = &rule.default {
                            record.insert(name.clone(), d.clone());
                        } else if !rule.optional {
                            issues.push(Issue {
                                field: path,
                                rule: "required".into(),
                                expected: "a value".into(),
                                actual: "nothing".into(),
                            });
                        }
                    }
                    Some(_) => {
                        let v = record.get(name).cloned().unwrap_or(Value::Null);
                        let mut v = rule.check(&path, v, issues);
                        if rule.kind == Kind::Secret && !v.is_null() {
                            let plain = match &v {
                                Value::String(s) => s.clone(),
                                other => other.to_string(),
                            };
                            if crate::format::crypto::decrypt(self.passphrase.expose(), &plain)
                                .is_err()
                            {
                                v = Value::String(crate::format::crypto::encrypt(
                                    self.passphrase.expose(),
                                    &plain,
                                ));
                            }
                        }
                        record.insert(name.clone(), v);
                    }
                }
            } else if let Value::Object(child_defs) = def {
                // s3db.js: `$$type: 'object|required'` is required, `…|optional` optional,
                // otherwise `allNestedObjectsOptional` decides.
                let optional = self
                    .nested
                    .get(&path)
                    .copied()
                    .flatten()
                    .unwrap_or(self.all_nested_optional);
                match record.shift_remove(name) {
                    Some(Value::Object(child)) => {
                        let checked =
                            self.check_level(&format!("{path}."), child_defs, child, issues);
                        record.insert(name.clone(), Value::Object(checked));
                    }
                    None | Some(Value::Null) => {
                        if !optional {
                            issues.push(Issue {
                                field: path,
                                rule: "required".into(),
                                expected: "an object".into(),
                                actual: "nothing".into(),
                            });
                        }
                    }
                    Some(other) => {
                        issues.push(Issue {
                            field: path,
                            rule: "type".into(),
                            expected: "object".into(),
                            actual: type_name(&other).into(),
                        });
                        record.insert(name.clone(), other);
                    }
                }
            }
        }
        record
    }

    /// The record under short keys as compact strings, `_v` first (s3db.js `mappedData`).
    pub fn to_mapped(&self, record: &Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert("_v".into(), Value::String(self.version.clone()));
        self.map_level("", record, &mut out);
        out
    }

    fn map_level(&self, prefix: &str, record: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (name, value) in record {
            if prefix.is_empty() && name == "id" {
                continue;
            }
            let path = format!("{prefix}{name}");
            let stored = if let Some(field) = self.field(&path) {
                if field.rule.as_plain_string && self.is_plugin_attribute(&path) {
                    // Object-notation plugin fields keep their JSON value (a number stays a
                    // number in bodies; metadata gets its text).
                    if !value.is_null() {
                        out.insert(self.key_of[&path].clone(), value.clone());
                    }
                    continue;
                }
                if field.rule.as_plain_string {
                    types::encode(&Kind::String, value)
                } else {
                    types::encode(&field.rule.kind, value)
                }
            } else if let Value::Object(child) = value {
                if !child.is_empty() {
                    self.map_level(&format!("{path}."), child, out);
                    continue;
                }
                Some("{}".to_string())
            } else {
                types::encode(&Kind::String, value)
            };
            let Some(stored) = stored else { continue };
            let key = self
                .key_of
                .get(&path)
                .cloned()
                .unwrap_or_else(|| codec::sanitize_key(&path));
            out.insert(key, Value::String(stored));
        }
    }

    /// Metadata for mapped data: keys sanitized, values encoded for headers.
    pub fn metadata_of(mapped: &Map<String, Value>) -> Metadata {
        mapped
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let value = if k == "_v" {
                    s
                } else {
                    codec::encode_header_value(&s)
                };
                (codec::sanitize_key(k), value)
            })
            .collect()
    }

    fn decode_path(&self, path: &str, stored: &str) -> Value {
        match self.field(path) {
            Some(f) if f.rule.as_plain_string => match f.rule.kind {
                Kind::Number | Kind::Integer => stored
                    .parse::<f64>()
                    .map(types::number_value)
                    .unwrap_or_else(|_| Value::String(stored.into())),
                Kind::Boolean => Value::Bool(stored == "true" || stored == "1"),
                // This engine writes an object-notation object as JSON text (s3db.js writes
                // `[object Object]`, which stays a string).
                Kind::Json if stored.starts_with('{') || stored.starts_with('[') => {
                    serde_json::from_str(stored).unwrap_or_else(|_| Value::String(stored.into()))
                }
                // `{type: 'enum', values: [1, true]}` stores `String(value)`: the allowed
                // value with that text is what was written.
                _ if f.rule.base == "enum" => f
                    .rule
                    .enum_values
                    .iter()
                    .flatten()
                    .find(|v| {
                        !v.is_string() && types::encode(&Kind::String, v).as_deref() == Some(stored)
                    })
                    .cloned()
                    .unwrap_or_else(|| Value::String(stored.into())),
                _ => Value::String(stored.into()),
            },
            Some(f) => {
                let v = types::decode(&f.rule.kind, stored);
                if f.rule.kind == Kind::Secret {
                    match crate::format::crypto::decrypt(self.passphrase.expose(), stored) {
                        Ok(plain) if plain == "null" || plain == "undefined" => Value::Null,
                        Ok(plain) if f.rule.base == "secretNumber" => plain
                            .parse::<f64>()
                            .map(types::number_value)
                            .unwrap_or(Value::String(plain)),
                        Ok(plain) => Value::String(plain),
                        Err(_) => v,
                    }
                } else {
                    v
                }
            }
            None if self.nested.contains_key(path) || stored.starts_with('{') => {
                serde_json::from_str(stored).unwrap_or_else(|_| Value::String(stored.into()))
            }
            None => Value::String(stored.into()),
        }
    }

    /// The record stored as metadata plus optional JSON body (metadata wins).
    pub fn from_stored(&self, meta: &Metadata, body: &[u8]) -> Map<String, Value> {
        let mut flat: Vec<(String, Value)> = Vec::new();
        let plugin_map: HashMap<String, String> = meta
            .get("_pluginmap")
            .and_then(|m| codec::decode_value(m))
            .and_then(|m| serde_json::from_str::<HashMap<String, String>>(&m).ok())
            .map(|m| m.into_iter().map(|(attr, key)| (key, attr)).collect())
            .unwrap_or_default();
        let attr_of = |k: &str| self.attr_of.get(k).or_else(|| plugin_map.get(k));
        let body_map: Option<HashMap<String, String>> = meta
            .get("_map")
            .and_then(|m| codec::decode_value(m))
            .and_then(|m| serde_json::from_str::<HashMap<String, String>>(&m).ok())
            .map(|m| m.into_iter().map(|(attr, key)| (key, attr)).collect());
        if !body.is_empty() {
            if let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) {
                for (k, v) in fields {
                    if k.starts_with('_') || k.starts_with('$') || v.is_null() {
                        continue;
                    }
                    let attr = body_map
                        .as_ref()
                        .and_then(|m| m.get(&k))
                        .or_else(|| attr_of(&k));
                    match (attr, v) {
                        (Some(path), Value::String(s)) => {
                            let decoded = self.decode_path(path, &s);
                            flat.push((path.clone(), decoded));
                        }
                        (Some(path), other) => flat.push((path.clone(), other)),
                        // An update body: attribute names and plain values.
                        (None, other) => {
                            flat.retain(|(p, _)| p != &k);
                            flat.push((k, other))
                        }
                    }
                }
            }
        }
        for (k, raw) in meta {
            if k.starts_with('_') {
                continue;
            }
            let Some(path) = attr_of(k) else {
                continue;
            };
            flat.retain(|(p, _)| p != path && !p.starts_with(&format!("{path}.")));
            if let Some(s) = codec::decode_value(raw) {
                let v = self.decode_path(path, &s);
                if !v.is_null() {
                    flat.push((path.clone(), v));
                }
            }
        }
        let mut record = Map::new();
        for (path, value) in flat {
            set_path(&mut record, &path, value);
        }
        self.order_like_definition(record)
    }

    fn order_like_definition(&self, mut record: Map<String, Value>) -> Map<String, Value> {
        let mut out = Map::new();
        for name in self.attributes.keys() {
            if let Some(v) = record.shift_remove(name) {
                out.insert(name.clone(), v);
            }
        }
        out.append(&mut record);
        out
    }
}

fn set_path(record: &mut Map<String, Value>, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut cur = record;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        cur = entry.as_object_mut().expect("object");
    }
}

pub fn validation_error(issues: Vec<Issue>) -> Error {
    let text: Vec<String> = issues
        .iter()
        .map(|i| {
            format!(
                "{}: {} (expected {}, got {})",
                i.field, i.rule, i.expected, i.actual
            )
        })
        .collect();
    Error::new(
        ErrorKind::Validation,
        format!("validation failed: {}", text.join("; ")),
    )
    .with_details(serde_json::to_value(&issues).unwrap_or(Value::Null))
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

#[cfg(test)]
mod tests {
    #[test]
    fn plugin_keys_match_the_vector() {
        assert_eq!(super::plugin_key("audit", "auditedBy"), "pkdv");
        assert_eq!(super::plugin_key("ranker", "score"), "p4sy");
    }
}
