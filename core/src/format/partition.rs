//! Partition reference objects (format.md §15): exact keys from the record, exact prefixes
//! for queries.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::schema::num::js_number;
use crate::format::schema::types::Kind;
use crate::format::schema::Issue;

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

    /// A filter on any subset of this partition's fields (`values`: field path → value).
    ///
    /// A field that is not in the partition, a `null`, or a value of the wrong type for the
    /// field (`kind_of` gives the record's type for a path, else the partition rule's is
    /// used) is a `Validation` error naming the field; a value that cannot be part of a key
    /// is `InvalidArgument`. Numbers given as numeric strings and booleans given as
    /// `"true"`/`"false"` are converted, as record validation converts them.
    pub fn filter(
        &self,
        resource: &str,
        values: &Map<String, Value>,
        kind_of: impl Fn(&str) -> Option<Kind>,
    ) -> Result<PartitionFilter> {
        let mut issues = Vec::new();
        for (field, value) in values {
            if !self.fields.iter().any(|(p, _)| p == field) {
                issues.push(Issue {
                    field: field.clone(),
                    rule: "partition".into(),
                    expected: format!(
                        "a field of partition {:?} ({})",
                        self.name,
                        self.fields
                            .iter()
                            .map(|(p, _)| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    actual: format!("{value}"),
                });
            }
        }
        let mut wanted = Vec::with_capacity(self.fields.len());
        for (path, rule) in &self.fields {
            let Some(value) = values.get(path) else {
                wanted.push(None);
                continue;
            };
            let kind = kind_of(path).unwrap_or_else(|| Kind::of(rule));
            match typed_value(&kind, value) {
                Ok(v) => {
                    let segment = segment_value(rule, &v).unwrap_or_default();
                    check_value(&self.name, path, &segment)?;
                    wanted.push(Some(segment));
                }
                Err(expected) => {
                    issues.push(Issue {
                        field: path.clone(),
                        rule: "type".into(),
                        expected,
                        actual: format!("{value}"),
                    });
                    wanted.push(None);
                }
            }
        }
        if !issues.is_empty() {
            let text: Vec<String> = issues
                .iter()
                .map(|i| {
                    format!(
                        "{}: {} (expected {}, got {})",
                        i.field, i.rule, i.expected, i.actual
                    )
                })
                .collect();
            return Err(Error::validation(format!(
                "partition {:?} filter: {}",
                self.name,
                text.join("; ")
            ))
            .with_details(serde_json::to_value(&issues).unwrap_or(Value::Null)));
        }
        let lead = wanted.iter().take_while(|w| w.is_some()).count();
        let mut prefix = self.base(resource);
        for ((path, _), w) in self.fields.iter().zip(&wanted).take(lead) {
            prefix.push_str(&format!("{path}={}/", w.as_deref().unwrap_or_default()));
        }
        Ok(PartitionFilter {
            partition: self.clone(),
            resource: resource.to_string(),
            prefix,
            wanted,
            lead,
        })
    }

    /// The field values and the id of one of this partition's reference keys (`None`: not a
    /// reference of this partition as defined now). A value may contain `/` (s3db.js does not
    /// escape them): it runs up to the next `/<field>=`.
    pub fn parse_key(&self, resource: &str, key: &str) -> Option<(Vec<String>, String)> {
        let base = self.base(resource);
        let (body, id) = key.strip_prefix(&base)?.rsplit_once("/id=")?;
        if id.is_empty() || id.contains('/') {
            return None;
        }
        let mut rest = body;
        let mut values = Vec::with_capacity(self.fields.len());
        for (i, (path, _)) in self.fields.iter().enumerate() {
            rest = rest.strip_prefix(path.as_str())?.strip_prefix('=')?;
            match self.fields.get(i + 1) {
                None => {
                    values.push(rest.to_string());
                    rest = "";
                }
                Some((next, _)) => {
                    let at = rest.find(&format!("/{next}="))?;
                    values.push(rest[..at].to_string());
                    rest = &rest[at + 1..];
                }
            }
        }
        rest.is_empty().then(|| (values, id.to_string()))
    }

    /// The key segment values of a record, field by field (`None` where it has no value).
    pub fn segments_of(&self, record: &Map<String, Value>) -> Vec<Option<String>> {
        self.fields
            .iter()
            .map(|(path, rule)| lookup(record, path).and_then(|v| segment_value(rule, v)))
            .collect()
    }

    /// How many of this partition's fields a filter fixes, as a leading run.
    pub fn coverage(&self, fixed: &Map<String, Value>) -> usize {
        self.fields
            .iter()
            .take_while(|(p, _)| fixed.contains_key(p))
            .count()
    }
}

/// The value a filter asks for, converted as record validation would convert it, or what
/// was expected instead.
fn typed_value(kind: &Kind, value: &Value) -> std::result::Result<Value, String> {
    let numeric = matches!(
        kind,
        Kind::Number
            | Kind::Integer
            | Kind::Money(_)
            | Kind::Decimal(_)
            | Kind::GeoLat(_)
            | Kind::GeoLon(_)
    );
    match (value, kind) {
        (Value::Null, _) => {
            Err("a value (a record without one has no reference in the partition)".into())
        }
        (Value::Array(_) | Value::Object(_), _) => Err("a single value".into()),
        (Value::Number(_), _) if numeric => Ok(value.clone()),
        (Value::String(s), _) if numeric => match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(crate::format::schema::types::number_value(n)),
            _ => Err("a number".into()),
        },
        (_, _) if numeric => Err("a number".into()),
        (Value::Bool(_), Kind::Boolean) => Ok(value.clone()),
        (Value::String(s), Kind::Boolean) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (_, Kind::Boolean) => Err("a boolean".into()),
        (Value::String(_), _) => Ok(value.clone()),
        (_, _) => Err("a string".into()),
    }
}

/// A filter on one partition's references: the listing prefix (the leading run of fields
/// that have a value) and the values every other asked field must have in the key.
#[derive(Debug, Clone)]
pub struct PartitionFilter {
    partition: Partition,
    resource: String,
    prefix: String,
    /// Per field of the partition, in key order: the segment value asked for.
    wanted: Vec<Option<String>>,
    lead: usize,
}

impl PartitionFilter {
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The listing prefix (ends in `/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the prefix alone decides (every asked field is in the leading run).
    pub fn prefix_only(&self) -> bool {
        self.wanted[self.lead..].iter().all(Option::is_none)
    }

    /// The id of a listed reference key if the key has the asked values (`None`: skip it).
    /// A key that does not parse under the current definition only passes when the prefix
    /// alone decides; its id is then its first `id=` segment, as s3db.js reads it.
    pub fn id_of_key(&self, key: &str) -> Option<String> {
        match self.partition.parse_key(&self.resource, key) {
            Some((values, id)) => self
                .wanted
                .iter()
                .zip(&values)
                .all(|(w, v)| w.as_ref().is_none_or(|w| w == v))
                .then_some(id),
            None if self.prefix_only() && key.starts_with(&self.prefix) => key
                .split('/')
                .find_map(|seg| seg.strip_prefix("id="))
                .map(str::to_string),
            None => None,
        }
    }

    /// Whether a record (as stored) has the asked values.
    pub fn record_matches(&self, record: &Map<String, Value>) -> bool {
        self.partition
            .segments_of(record)
            .iter()
            .zip(&self.wanted)
            .all(|(have, want)| want.is_none() || have == want)
    }

    /// The key the record's reference has (`None`: the record is not in this partition).
    pub fn key_of(&self, record: &Map<String, Value>, id: &str) -> Option<String> {
        self.partition
            .key(&self.resource, record, id)
            .ok()
            .flatten()
    }
}
