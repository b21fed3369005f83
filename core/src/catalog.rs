//! The catalog object `s3db.json` (format.md §4).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::schema::{Attribute, Schema};

pub const CATALOG_KEY: &str = "s3db.json";
pub const FORMAT_VERSION: &str = "1";
/// The s3db.js release whose format this engine writes.
pub const S3DB_JS_VERSION: &str = "21.6.2";

pub fn iso_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub fn empty(now: &str) -> Value {
    json!({
        "version": FORMAT_VERSION,
        "s3dbVersion": S3DB_JS_VERSION,
        "lastUpdated": now,
        "resources": {}
    })
}

/// Parses the stored catalog. Unparseable text is an error, never an empty catalog.
pub fn parse(body: &[u8]) -> Result<Value> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::corrupt(format!("s3db.json does not parse: {e}")))?;
    if !v.is_object() {
        return Err(Error::corrupt("s3db.json is not a JSON object"));
    }
    Ok(v)
}

pub fn serialize(catalog: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(catalog).expect("catalog serializes")
}

/// `json-stable-stringify`: keys sorted in UTF-16 order, compact.
pub fn stable_json(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), stable_json(&m[k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(stable_json).collect();
            format!("[{}]", parts.join(","))
        }
        other => other.to_string(),
    }
}

pub fn definition_hash(attributes: &Value, behavior: &str, partitions: &Value) -> String {
    let def = json!({ "attributes": attributes, "behavior": behavior, "partitions": partitions });
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(stable_json(&def).as_bytes()))
    )
}

fn resources(catalog: &Value) -> Option<&Map<String, Value>> {
    catalog.get("resources")?.as_object()
}

pub fn resource_names(catalog: &Value) -> Vec<String> {
    resources(catalog)
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default()
}

/// The schema of a resource at its current version, or `None` if it is not defined.
pub fn schema_of(catalog: &Value, name: &str) -> Result<Option<Schema>> {
    let Some(res) = resources(catalog).and_then(|r| r.get(name)) else {
        return Ok(None);
    };
    let current = res
        .get("currentVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    let attrs = res
        .pointer(&format!("/versions/{current}/attributes"))
        .and_then(Value::as_object)
        .ok_or_else(|| Error::corrupt(format!("s3db.json: resource {name:?} has no attributes")))?;
    let attributes = crate::schema::parse_attributes(attrs)?;
    let mapping = match res
        .pointer("/schemaRegistry/mapping")
        .and_then(Value::as_object)
    {
        Some(m) => m.clone(),
        None => positional_mapping(&attributes),
    };
    Ok(Some(Schema::new(current.to_string(), attributes, &mapping)))
}

fn positional_mapping(attributes: &[Attribute]) -> Map<String, Value> {
    attributes
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.clone(), json!(i)))
        .collect()
}

/// Defines or redefines a resource. Returns `false` when the definition is unchanged.
pub fn define_resource(
    catalog: &mut Value,
    name: &str,
    attributes: &Map<String, Value>,
    now: &str,
) -> Result<bool> {
    let parsed = crate::schema::parse_attributes(attributes)?;
    let partitions = json!({});
    let behavior = "user-managed";
    let attrs_value = Value::Object(attributes.clone());
    let hash = definition_hash(&attrs_value, behavior, &partitions);

    let root = catalog
        .as_object_mut()
        .ok_or_else(|| Error::corrupt("s3db.json is not a JSON object"))?;
    let resources = root
        .entry("resources")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::corrupt("s3db.json: resources is not an object"))?;
    let entry = resources.entry(name.to_string()).or_insert_with(|| {
        json!({
            "currentVersion": "v1",
            "partitions": {},
            "createdBy": "user",
            "versions": {},
        })
    });
    let res = entry
        .as_object_mut()
        .ok_or_else(|| Error::corrupt(format!("s3db.json: resource {name:?} is not an object")))?;

    let current = res
        .get("currentVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string();
    let versions = res
        .entry("versions")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .ok_or_else(|| Error::corrupt(format!("s3db.json: {name:?} versions is not an object")))?;
    if versions
        .get(&current)
        .and_then(|v| v.get("hash"))
        .and_then(Value::as_str)
        == Some(hash.as_str())
    {
        return Ok(false);
    }
    let next_version = if versions.is_empty() {
        "v1".to_string()
    } else {
        let max = versions
            .keys()
            .filter_map(|k| k.strip_prefix('v')?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("v{}", max + 1)
    };
    versions.insert(
        next_version.clone(),
        json!({
            "hash": hash,
            "attributes": attrs_value,
            "behavior": behavior,
            "timestamps": false,
            "partitions": partitions,
            "paranoid": true,
            "allNestedObjectsOptional": true,
            "autoDecrypt": true,
            "cache": false,
            "hooks": {},
            "idSize": 22,
            "idGenerator": "default",
            "createdAt": now,
        }),
    );
    res.insert("currentVersion".into(), json!(next_version));
    res.insert("partitions".into(), json!({}));
    update_registry(res, &parsed, now);
    res.entry("pluginSchemaRegistry")
        .or_insert_with(|| json!({}));
    Ok(true)
}

/// Existing attributes keep their index; new ones take `nextIndex`; removed ones are burned.
fn update_registry(res: &mut Map<String, Value>, attributes: &[Attribute], now: &str) {
    let registry = res
        .entry("schemaRegistry")
        .or_insert_with(|| json!({"nextIndex": 0, "mapping": {}, "burned": []}));
    let mut mapping = registry
        .get("mapping")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut burned = registry
        .get("burned")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut next = registry
        .get("nextIndex")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let used_max = mapping
        .values()
        .chain(burned.iter().filter_map(|b| b.get("index")))
        .filter_map(Value::as_u64)
        .max();
    if let Some(m) = used_max {
        next = next.max(m + 1);
    }
    let removed: Vec<String> = mapping
        .keys()
        .filter(|k| !attributes.iter().any(|a| &a.name == *k))
        .cloned()
        .collect();
    for attr in removed {
        if let Some(idx) = mapping.remove(&attr) {
            burned.push(
                json!({"index": idx, "attribute": attr, "burnedAt": now, "reason": "removed"}),
            );
        }
    }
    for a in attributes {
        if !mapping.contains_key(&a.name) {
            mapping.insert(a.name.clone(), json!(next));
            next += 1;
        }
    }
    *registry = json!({"nextIndex": next, "mapping": mapping, "burned": burned});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_json_sorts_and_compacts() {
        let v = json!({"b": 1, "a": {"d": "x", "c": [1, "é"]}});
        assert_eq!(stable_json(&v), r#"{"a":{"c":[1,"é"],"d":"x"},"b":1}"#);
    }

    #[test]
    fn registry_keeps_indexes_and_burns_removed() {
        let mut cat = empty("t0");
        let a: Map<String, Value> =
            serde_json::from_value(json!({"a": "string", "b": "string", "c": "string"})).unwrap();
        assert!(define_resource(&mut cat, "r", &a, "t0").unwrap());
        assert!(!define_resource(&mut cat, "r", &a, "t1").unwrap());
        let b: Map<String, Value> =
            serde_json::from_value(json!({"a": "string", "c": "string", "d": "string"})).unwrap();
        assert!(define_resource(&mut cat, "r", &b, "t2").unwrap());
        let reg = &cat["resources"]["r"]["schemaRegistry"];
        assert_eq!(reg["mapping"], json!({"a": 0, "c": 2, "d": 3}));
        assert_eq!(reg["nextIndex"], json!(4));
        assert_eq!(reg["burned"][0]["index"], json!(1));
        assert_eq!(cat["resources"]["r"]["currentVersion"], json!("v2"));
    }
}
