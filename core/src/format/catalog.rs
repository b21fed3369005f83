//! The catalog object `s3db.json` (format.md §4).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};

use crate::format::schema::Schema;

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

/// How a resource is defined (s3db.js `createResource` options).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceConfig {
    pub attributes: Map<String, Value>,
    pub behavior: String,
    pub timestamps: bool,
    /// An object of `{name: {fields: {path: rule}}}` or an array of field names.
    pub partitions: Value,
    pub paranoid: bool,
    pub id_size: usize,
    /// s3db.js `idGenerator`: a size, `"incremental"`, `"incremental:1000"`,
    /// `"incremental:ORD-0001"`, `"incremental:fast"`, or `{type: "incremental", …}`.
    pub id_generator: Option<Value>,
    /// Passphrase of secret fields (s3db.js `security.passphrase`, default `"secret"`).
    #[serde(skip_serializing)]
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for ResourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceConfig")
            .field("attributes", &self.attributes)
            .field("behavior", &self.behavior)
            .field("timestamps", &self.timestamps)
            .field("partitions", &self.partitions)
            .field("paranoid", &self.paranoid)
            .field("id_size", &self.id_size)
            .field("id_generator", &self.id_generator)
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Default for ResourceConfig {
    fn default() -> Self {
        ResourceConfig {
            attributes: Map::new(),
            behavior: "user-managed".into(),
            timestamps: false,
            partitions: json!({}),
            paranoid: true,
            id_size: crate::format::ids::DEFAULT_ID_SIZE,
            id_generator: None,
            passphrase: None,
        }
    }
}

pub const BEHAVIORS: [&str; 5] = [
    "user-managed",
    "enforce-limits",
    "truncate-data",
    "body-overflow",
    "body-only",
];

impl ResourceConfig {
    pub fn from_attributes(attributes: &Value) -> Result<ResourceConfig> {
        let attributes = attributes
            .as_object()
            .ok_or_else(|| Error::validation("attributes must be an object"))?
            .clone();
        Ok(ResourceConfig {
            attributes,
            ..Default::default()
        })
    }

    /// From a JSON object (`{attributes, behavior, timestamps, partitions, paranoid, idSize, passphrase}`).
    pub fn from_json(v: &Value) -> Result<ResourceConfig> {
        if !v.is_object() {
            return Err(Error::validation("resource options must be an object"));
        }
        serde_json::from_value(v.clone())
            .map_err(|e| Error::validation(format!("resource options: {e}")))
    }

    /// Attributes as stored: with timestamps, `createdAt`/`updatedAt` are appended.
    pub fn stored_attributes(&self) -> Map<String, Value> {
        let mut attrs = self.attributes.clone();
        if self.timestamps {
            for f in ["createdAt", "updatedAt"] {
                if !attrs.contains_key(f) {
                    attrs.insert(f.into(), json!("datetime|optional"));
                }
            }
        }
        attrs
    }

    /// Partitions in object form, timestamps' date partitions included.
    pub fn normalized_partitions(&self) -> Result<Map<String, Value>> {
        let attrs = self.stored_attributes();
        let mut out = Map::new();
        match &self.partitions {
            Value::Null => {}
            Value::Array(fields) => {
                for f in fields {
                    let field = f.as_str().ok_or_else(|| {
                        Error::validation("partition shorthand takes field names")
                    })?;
                    let rule = attrs.get(field).and_then(Value::as_str).ok_or_else(|| {
                        Error::validation(format!(
                            "partition field {field:?} is not a string-defined attribute"
                        ))
                    })?;
                    let base = rule.split('|').next().unwrap_or("string");
                    let mut name = String::from("by");
                    let mut chars = field.chars();
                    if let Some(c) = chars.next() {
                        name.extend(c.to_uppercase());
                        name.push_str(chars.as_str());
                    }
                    out.insert(name, json!({"fields": {field: base}}));
                }
            }
            Value::Object(m) => {
                for (name, def) in m {
                    crate::format::ids::validate_name("partition name", name)?;
                    let fields = def
                        .get("fields")
                        .and_then(Value::as_object)
                        .filter(|f| !f.is_empty())
                        .ok_or_else(|| {
                            Error::validation(format!("partition {name:?} needs {{fields: {{…}}}}"))
                        })?;
                    for (path, rule) in fields {
                        if !rule.is_string() {
                            return Err(Error::validation(format!(
                                "partition {name:?}: rule of {path:?} must be a string"
                            )));
                        }
                        if !has_path(&attrs, path) {
                            return Err(Error::validation(format!(
                                "partition {name:?}: {path:?} is not an attribute"
                            )));
                        }
                    }
                    out.insert(name.clone(), def.clone());
                }
            }
            _ => {
                return Err(Error::validation(
                    "partitions must be an object or an array of field names",
                ))
            }
        }
        if self.timestamps {
            out.entry("byCreatedDate")
                .or_insert_with(|| json!({"fields": {"createdAt": "date|maxlength:10"}}));
            out.entry("byUpdatedDate")
                .or_insert_with(|| json!({"fields": {"updatedAt": "date|maxlength:10"}}));
        }
        Ok(out)
    }

    pub fn check(&self) -> Result<()> {
        if !BEHAVIORS.contains(&self.behavior.as_str()) {
            return Err(Error::validation(format!(
                "behavior {:?} is not one of {}",
                self.behavior,
                BEHAVIORS.join(", ")
            )));
        }
        if !(1..=256).contains(&self.id_size) {
            return Err(Error::validation("idSize must be between 1 and 256"));
        }
        crate::format::schema::check_attributes(&self.stored_attributes())?;
        self.normalized_partitions()?;
        self.id_config()?;
        Ok(())
    }

    /// (id size, incremental configuration) from `idSize` and `idGenerator`.
    pub fn id_config(&self) -> Result<(usize, Option<Incremental>)> {
        match &self.id_generator {
            None => Ok((self.id_size, None)),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(size @ 1..=256) => Ok((size as usize, None)),
                _ => Err(Error::validation(
                    "idGenerator as a number is an id size between 1 and 256",
                )),
            },
            Some(Value::String(s)) if s == "default" => Ok((self.id_size, None)),
            Some(v) => Ok((self.id_size, Some(Incremental::parse(v)?))),
        }
    }
}

/// An incremental id generator (s3db.js `idGenerator: "incremental…"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incremental {
    pub start: i64,
    pub increment: i64,
    pub prefix: String,
    pub padding: usize,
    /// Values reserved per compare-and-swap (fast mode when above 1).
    pub batch_size: u32,
}

impl Incremental {
    pub fn parse(v: &Value) -> Result<Incremental> {
        let bad = |why: &str| Error::validation(format!("idGenerator {v}: {why}"));
        let mut inc = Incremental {
            start: 1,
            increment: 1,
            prefix: String::new(),
            padding: 0,
            batch_size: 1,
        };
        match v {
            Value::String(s) => {
                let rest = s
                    .strip_prefix("incremental")
                    .ok_or_else(|| bad("expected \"incremental[:…]\""))?;
                let mut rest = rest.strip_prefix(':').unwrap_or(rest);
                if rest.is_empty() && !s.ends_with("incremental") {
                    return Err(bad("nothing after ':'"));
                }
                if let Some(r) = rest.strip_prefix("fast") {
                    inc.batch_size = 100;
                    rest = r.strip_prefix(':').unwrap_or(r);
                }
                if !rest.is_empty() {
                    if let Ok(n) = rest.parse::<i64>() {
                        inc.start = n;
                    } else {
                        let digits_at = rest
                            .find(|c: char| c.is_ascii_digit())
                            .ok_or_else(|| bad("expected <int> or <PREFIX><digits>"))?;
                        let (prefix, digits) = rest.split_at(digits_at);
                        if prefix.is_empty()
                            || !prefix
                                .chars()
                                .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
                            || !digits.chars().all(|c| c.is_ascii_digit())
                        {
                            return Err(bad("expected <int> or <PREFIX><digits>"));
                        }
                        inc.prefix = prefix.to_string();
                        inc.padding = digits.len();
                        inc.start = digits.parse().map_err(|_| bad("start out of range"))?;
                    }
                }
            }
            Value::Object(o) => {
                if o.get("type").and_then(Value::as_str) != Some("incremental") {
                    return Err(bad("an object idGenerator needs type: \"incremental\""));
                }
                let int = |k: &str| {
                    o.get(k)
                        .map(|x| {
                            x.as_i64()
                                .ok_or_else(|| bad(&format!("{k} must be an integer")))
                        })
                        .transpose()
                };
                if let Some(n) = int("start")? {
                    inc.start = n;
                }
                if let Some(n) = int("increment")? {
                    inc.increment = n;
                }
                if let Some(n) = int("padding")? {
                    inc.padding = usize::try_from(n).map_err(|_| bad("padding must be >= 0"))?;
                }
                if let Some(p) = o.get("prefix") {
                    inc.prefix = p
                        .as_str()
                        .ok_or_else(|| bad("prefix must be a string"))?
                        .to_string();
                }
                match o.get("mode").and_then(Value::as_str) {
                    None | Some("standard") => {}
                    Some("fast") => inc.batch_size = 100,
                    Some(other) => return Err(bad(&format!("unknown mode {other:?}"))),
                }
                if let Some(n) = int("batchSize")? {
                    if inc.batch_size > 1 {
                        inc.batch_size = u32::try_from(n)
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| bad("batchSize must be >= 1"))?;
                    }
                }
            }
            _ => return Err(bad("expected a string or an object")),
        }
        if inc.increment == 0 {
            return Err(bad("increment must not be 0"));
        }
        crate::format::ids::validate_name("id prefix", &format!("{}0", inc.prefix))?;
        Ok(inc)
    }

    pub fn format(&self, value: i64) -> String {
        format!("{}{:0>width$}", self.prefix, value, width = self.padding)
    }
}

fn has_path(attrs: &Map<String, Value>, path: &str) -> bool {
    let mut cur = attrs;
    let mut parts = path.split('.').peekable();
    while let Some(p) = parts.next() {
        match cur.get(p) {
            Some(Value::Object(o)) if parts.peek().is_some() => cur = o,
            Some(_) if parts.peek().is_none() => return true,
            _ => return false,
        }
    }
    false
}

/// A resource as the catalog defines it, with the schema of every version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub name: String,
    pub behavior: String,
    pub timestamps: bool,
    pub paranoid: bool,
    pub id_size: usize,
    pub partitions: Map<String, Value>,
    /// Incremental ids, restored from the catalog (`incrementalConfig`).
    pub incremental: Option<Incremental>,
    pub current: String,
    pub schemas: std::collections::HashMap<String, Schema>,
}

impl ResourceDef {
    pub fn schema(&self) -> &Schema {
        &self.schemas[&self.current]
    }

    /// The schema a record was written with (`_v`), else the current one.
    pub fn schema_for(&self, version: Option<&str>) -> &Schema {
        version
            .map(|v| {
                if v.starts_with('v') {
                    v.to_string()
                } else {
                    format!("v{v}")
                }
            })
            .and_then(|v| self.schemas.get(&v))
            .unwrap_or_else(|| self.schema())
    }
}

/// The definition of a resource, or `None` if the catalog has none.
pub fn resource_def(catalog: &Value, name: &str, passphrase: &str) -> Result<Option<ResourceDef>> {
    let Some(res) = resources(catalog).and_then(|r| r.get(name)) else {
        return Ok(None);
    };
    let current = res
        .get("currentVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string();
    let versions = res
        .get("versions")
        .and_then(Value::as_object)
        .ok_or_else(|| Error::corrupt(format!("s3db.json: resource {name:?} has no versions")))?;
    let cur = versions.get(&current).ok_or_else(|| {
        Error::corrupt(format!(
            "s3db.json: resource {name:?} lacks its current version {current}"
        ))
    })?;
    let mut mapping = res
        .pointer("/schemaRegistry/mapping")
        .and_then(Value::as_object)
        .cloned();
    if let Some(m) = mapping.as_mut() {
        for b in res
            .pointer("/schemaRegistry/burned")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(attr), Some(idx)) =
                (b.get("attribute").and_then(Value::as_str), b.get("index"))
            {
                m.entry(attr.to_string()).or_insert(idx.clone());
            }
        }
    }
    let current_attrs = cur
        .get("attributes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let current_plugins = plugin_attributes(res, &current_attrs);
    let mut schemas = std::collections::HashMap::new();
    for (v, def) in versions {
        let Some(attrs) = def.get("attributes").and_then(Value::as_object) else {
            continue;
        };
        // Plugins register their attributes at start-up: records written under an older
        // version may carry the current plugin keys.
        let mut attrs = attrs.clone();
        for (attr, _) in &current_plugins {
            if !attrs.contains_key(attr) {
                if let Some(d) = current_attrs.get(attr) {
                    attrs.insert(attr.clone(), d.clone());
                }
            }
        }
        let plugins = plugin_attributes(res, &attrs);
        let mapping = mapping
            .clone()
            .unwrap_or_else(|| positional_mapping(&without(&attrs, &plugins)));
        match Schema::new(v.clone(), &attrs, &mapping, &plugins, passphrase) {
            Ok(s) => {
                schemas.insert(v.clone(), s);
            }
            Err(e) if v == &current => return Err(e),
            Err(_) => {}
        }
    }
    let partitions = res
        .get("partitions")
        .and_then(Value::as_object)
        .or_else(|| cur.get("partitions").and_then(Value::as_object))
        .cloned()
        .unwrap_or_default();
    Ok(Some(ResourceDef {
        name: name.to_string(),
        behavior: cur
            .get("behavior")
            .and_then(Value::as_str)
            .unwrap_or("user-managed")
            .to_string(),
        timestamps: cur
            .get("timestamps")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        paranoid: cur.get("paranoid").and_then(Value::as_bool).unwrap_or(true),
        id_size: cur.get("idSize").and_then(Value::as_u64).unwrap_or(22) as usize,
        incremental: match cur.get("incrementalConfig") {
            Some(c) => serde_json::from_value(c.clone()).ok(),
            None if cur.get("idGenerator").and_then(Value::as_str) == Some("incremental") => {
                Some(Incremental::parse(&json!("incremental"))?)
            }
            None => None,
        },
        partitions,
        current,
        schemas,
    }))
}

fn without(attrs: &Map<String, Value>, plugins: &[(String, String)]) -> Map<String, Value> {
    attrs
        .iter()
        .filter(|(a, _)| !plugins.iter().any(|(p, _)| p == *a))
        .map(|(a, d)| (a.clone(), d.clone()))
        .collect()
}

fn plugin_registry(res: &Value) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    res.get("pluginSchemaRegistry")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(plugin, reg)| Some((plugin.as_str(), reg.as_object()?)))
}

/// The plugin owning `attr`, and its key: from `pluginSchemaRegistry` (mapping, then burned).
fn registered_plugin_key(res: &Value, attr: &str) -> Option<(String, String)> {
    for (plugin, reg) in plugin_registry(res) {
        if let Some(key) = reg
            .get("mapping")
            .and_then(|m| m.get(attr))
            .and_then(Value::as_str)
        {
            return Some((plugin.to_string(), key.to_string()));
        }
    }
    for (plugin, reg) in plugin_registry(res) {
        for b in reg
            .get("burned")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if b.get("attribute").and_then(Value::as_str) == Some(attr) {
                if let Some(key) = b.get("key").and_then(Value::as_str) {
                    return Some((plugin.to_string(), key.to_string()));
                }
            }
        }
    }
    None
}

fn marker_plugin(def: &Value) -> Option<&str> {
    def.get("__plugin__").and_then(Value::as_str)
}

/// `p` + 3 base62 digits of the attribute's hash, with a counter on collision (§6.3).
fn unique_plugin_key(plugin: &str, attr: &str, taken: &[(String, String)]) -> String {
    let base = crate::format::schema::plugin_key(plugin, attr);
    let mut key = base.clone();
    let mut n = 1;
    while taken.iter().any(|(_, k)| *k == key) {
        key = format!("{base}{n}");
        n += 1;
    }
    key
}

/// Plugin-owned attributes among `attrs`, in definition order, with their keys: those in
/// `pluginSchemaRegistry`, and object definitions marked `__plugin__` (s3db.js 21.6 keeps
/// no registry entry for them).
pub fn plugin_attributes(res: &Value, attrs: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (attr, def) in attrs {
        if let Some((_, key)) = registered_plugin_key(res, attr) {
            out.push((attr.clone(), key));
        } else if let Some(plugin) = marker_plugin(def) {
            let key = unique_plugin_key(plugin, attr, &out);
            out.push((attr.clone(), key));
        }
    }
    out
}

fn definition_hash_of(version: &Map<String, Value>, attrs: &Map<String, Value>) -> String {
    let mut hashed = attrs.clone();
    if version.get("timestamps") == Some(&json!(true)) {
        hashed.shift_remove("createdAt");
        hashed.shift_remove("updatedAt");
    }
    let behavior = version
        .get("behavior")
        .and_then(Value::as_str)
        .unwrap_or("user-managed");
    let partitions = version.get("partitions").cloned().unwrap_or(json!({}));
    definition_hash(&Value::Object(hashed), behavior, &partitions)
}

fn strip_markers(def: &Value) -> Value {
    match def {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !k.starts_with("__plugin"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn resource_entry_mut<'a>(
    catalog: &'a mut Value,
    name: &str,
) -> Result<&'a mut Map<String, Value>> {
    catalog
        .get_mut("resources")
        .and_then(|r| r.get_mut(name))
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::not_found(format!("resource {name}")))
}

/// Adds a new version whose attributes are `attrs` (other settings as the current one).
fn push_version(res: &mut Map<String, Value>, attrs: Map<String, Value>, now: &str) -> Result<()> {
    let current = res
        .get("currentVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1")
        .to_string();
    let versions = res
        .get_mut("versions")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| Error::corrupt("s3db.json: a resource has no versions"))?;
    let mut version = versions
        .get(&current)
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            Error::corrupt(format!("s3db.json: current version {current} is missing"))
        })?;
    version.insert("hash".into(), json!(definition_hash_of(&version, &attrs)));
    version.insert("attributes".into(), Value::Object(attrs));
    version.insert("createdAt".into(), json!(now));
    let max = versions
        .keys()
        .filter_map(|k| k.strip_prefix('v')?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    let next = format!("v{}", max + 1);
    versions.insert(next.clone(), Value::Object(version));
    res.insert("currentVersion".into(), json!(next));
    Ok(())
}

fn current_attributes(res: &Map<String, Value>) -> Result<Map<String, Value>> {
    let current = res
        .get("currentVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    res.get("versions")
        .and_then(|v| v.get(current))
        .and_then(|v| v.get("attributes"))
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            Error::corrupt(format!(
                "s3db.json: current version {current} has no attributes"
            ))
        })
}

/// s3db.js `addPluginAttribute(name, definition, pluginName)`: a new catalog version with the
/// attribute (object definitions marked `__plugin__`/`__pluginCreated__`), its `p…` key kept in
/// `pluginSchemaRegistry`. Calling it again with the same definition changes nothing (plugins
/// call it at every start). Returns `false` when nothing changed.
pub fn add_plugin_attribute(
    catalog: &mut Value,
    resource: &str,
    name: &str,
    definition: &Value,
    plugin: &str,
    now: &str,
    now_ms: i64,
) -> Result<bool> {
    validate_plugin_names(name, plugin)?;
    crate::format::schema::check_attributes(&Map::from_iter([(
        name.to_string(),
        definition.clone(),
    )]))?;
    if definition.is_object() && definition.get("type").and_then(Value::as_str).is_none() {
        return Err(Error::validation(format!(
            "plugin attribute {name:?}: an object definition needs a \"type\""
        )));
    }
    let res = resource_entry_mut(catalog, resource)?;
    let mut attrs = current_attributes(res)?;
    let res_value = Value::Object(res.clone());
    let plugins = plugin_attributes(&res_value, &attrs);
    let owner = registered_plugin_key(&res_value, name)
        .map(|(p, _)| p)
        .or_else(|| attrs.get(name).and_then(marker_plugin).map(str::to_string));
    let user_owned = res_value
        .pointer("/schemaRegistry/mapping")
        .and_then(|m| m.get(name))
        .is_some();
    if user_owned && owner.is_none() {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("attribute {name:?} of {resource} is the resource's own, not a plugin's"),
        ));
    }
    if let Some(other) = owner.as_deref().filter(|o| *o != plugin) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("attribute {name:?} of {resource} belongs to plugin {other:?}"),
        ));
    }
    let same_definition = attrs
        .get(name)
        .is_some_and(|d| strip_markers(d) == strip_markers(definition));
    let registered = registered_plugin_key(&res_value, name).is_some()
        && plugin_registry(&res_value)
            .any(|(p, r)| p == plugin && r.get("mapping").and_then(|m| m.get(name)).is_some());
    if same_definition && registered {
        return Ok(false);
    }
    let key = plugins
        .iter()
        .find(|(a, _)| a == name)
        .map(|(_, k)| k.clone())
        .unwrap_or_else(|| unique_plugin_key(plugin, name, &plugins));
    if !same_definition {
        let stored = match definition {
            Value::Object(o) => {
                let mut o = o.clone();
                o.insert("__plugin__".into(), json!(plugin));
                o.insert("__pluginCreated__".into(), json!(now_ms));
                Value::Object(o)
            }
            other => other.clone(),
        };
        attrs.insert(name.to_string(), stored);
        push_version(res, attrs, now)?;
    }
    let registry = res
        .entry("pluginSchemaRegistry")
        .or_insert_with(|| json!({}));
    if !registry.is_object() {
        *registry = json!({});
    }
    let entry = registry
        .as_object_mut()
        .expect("object")
        .entry(plugin.to_string())
        .or_insert_with(|| json!({"mapping": {}, "burned": []}));
    if !entry.get("mapping").is_some_and(Value::is_object) {
        entry["mapping"] = json!({});
    }
    entry["mapping"][name] = json!(key);
    if let Some(burned) = entry.get_mut("burned").and_then(Value::as_array_mut) {
        burned.retain(|b| b.get("attribute").and_then(Value::as_str) != Some(name));
    } else {
        entry["burned"] = json!([]);
    }
    Ok(true)
}

/// s3db.js `removePluginAttribute(name, pluginName)`: a new version without the attribute;
/// its key is burned (records that carry it still decode). `false` if it was not there.
pub fn remove_plugin_attribute(
    catalog: &mut Value,
    resource: &str,
    name: &str,
    plugin: &str,
    now: &str,
) -> Result<bool> {
    validate_plugin_names(name, plugin)?;
    let res = resource_entry_mut(catalog, resource)?;
    let mut attrs = current_attributes(res)?;
    let res_value = Value::Object(res.clone());
    let Some((_, key)) = plugin_attributes(&res_value, &attrs)
        .into_iter()
        .find(|(a, _)| a == name)
    else {
        return Ok(false);
    };
    let owner = registered_plugin_key(&res_value, name)
        .map(|(p, _)| p)
        .or_else(|| attrs.get(name).and_then(marker_plugin).map(str::to_string));
    if owner.as_deref() != Some(plugin) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("attribute {name:?} of {resource} does not belong to plugin {plugin:?}"),
        ));
    }
    attrs.shift_remove(name);
    push_version(res, attrs, now)?;
    let registry = res
        .entry("pluginSchemaRegistry")
        .or_insert_with(|| json!({}));
    let entry = registry
        .as_object_mut()
        .ok_or_else(|| Error::corrupt("s3db.json: pluginSchemaRegistry is not an object"))?
        .entry(plugin.to_string())
        .or_insert_with(|| json!({"mapping": {}, "burned": []}));
    if let Some(m) = entry.get_mut("mapping").and_then(Value::as_object_mut) {
        m.shift_remove(name);
    }
    let burned = json!({"key": key, "attribute": name, "burnedAt": now, "reason": "removed"});
    match entry.get_mut("burned").and_then(Value::as_array_mut) {
        Some(b) => b.push(burned),
        None => entry["burned"] = json!([burned]),
    }
    Ok(true)
}

fn validate_plugin_names(name: &str, plugin: &str) -> Result<()> {
    crate::format::ids::validate_name("plugin name", plugin)?;
    if name.is_empty()
        || name.starts_with('_')
        || name.starts_with('$')
        || name.contains('.')
        || name == "id"
    {
        return Err(Error::validation(format!(
            "plugin attribute name {name:?} is reserved or empty"
        )));
    }
    Ok(())
}

fn positional_mapping(attributes: &Map<String, Value>) -> Map<String, Value> {
    crate::format::schema::mapping_order(attributes)
        .into_iter()
        .enumerate()
        .map(|(i, a)| (a, json!(i)))
        .collect()
}

/// Defines or redefines a resource. Returns `false` when the definition is unchanged.
pub fn define_resource(
    catalog: &mut Value,
    name: &str,
    config: &ResourceConfig,
    hooks_summary: &Value,
    now: &str,
) -> Result<bool> {
    config.check()?;
    let mut attributes = config.stored_attributes();
    // Attributes plugins added stay when the resource is redefined.
    let existing = catalog.pointer(&format!(
        "/resources/{}",
        name.replace('~', "~0").replace('/', "~1")
    ));
    let mut plugins = Vec::new();
    if let Some(res) = existing.and_then(Value::as_object) {
        if let Ok(current) = current_attributes(res) {
            let res_value = Value::Object(res.clone());
            plugins = plugin_attributes(&res_value, &current);
            for (attr, _) in &plugins {
                if !attributes.contains_key(attr) {
                    attributes.insert(attr.clone(), current[attr].clone());
                }
            }
        }
    }
    let partitions = Value::Object(config.normalized_partitions()?);
    let behavior = config.behavior.as_str();
    let mut hashed = attributes.clone();
    if config.timestamps {
        hashed.shift_remove("createdAt");
        hashed.shift_remove("updatedAt");
    }
    let hash = definition_hash(&Value::Object(hashed), behavior, &partitions);
    let (id_size, incremental) = config.id_config()?;

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
    let stored_incremental = versions
        .get(&current)
        .and_then(|v| v.get("incrementalConfig"))
        .cloned();
    let wanted_incremental = incremental
        .as_ref()
        .map(|i| serde_json::to_value(i).expect("json"));
    if versions
        .get(&current)
        .and_then(|v| v.get("hash"))
        .and_then(Value::as_str)
        == Some(hash.as_str())
    {
        // Same definition: only a changed id generator is written (kept in the current version).
        if stored_incremental == wanted_incremental || wanted_incremental.is_none() {
            return Ok(false);
        }
        let v = versions
            .get_mut(&current)
            .and_then(Value::as_object_mut)
            .expect("current version");
        v.insert("idGenerator".into(), json!("incremental"));
        v.insert(
            "incrementalConfig".into(),
            wanted_incremental.unwrap_or(Value::Null),
        );
        return Ok(true);
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
            "attributes": attributes,
            "behavior": behavior,
            "timestamps": config.timestamps,
            "partitions": partitions,
            "paranoid": config.paranoid,
            "allNestedObjectsOptional": true,
            "autoDecrypt": true,
            "cache": false,
            "hooks": hooks_summary,
            "idSize": id_size,
            "idGenerator": if incremental.is_some() { "incremental" } else { "default" },
            "createdAt": now,
        }),
    );
    if let Some(inc) = wanted_incremental {
        if let Some(v) = versions
            .get_mut(&next_version)
            .and_then(Value::as_object_mut)
        {
            v.insert("incrementalConfig".into(), inc);
        }
    }
    res.insert("currentVersion".into(), json!(next_version));
    res.insert("partitions".into(), partitions);
    update_registry(
        res,
        &crate::format::schema::mapping_order(&without(&attributes, &plugins)),
        now,
    );
    res.entry("pluginSchemaRegistry")
        .or_insert_with(|| json!({}));
    Ok(true)
}

/// Existing attributes keep their index; new ones take `nextIndex`; removed ones are burned.
fn update_registry(res: &mut Map<String, Value>, order: &[String], now: &str) {
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
        .filter(|k| !order.contains(k))
        .cloned()
        .collect();
    for attr in removed {
        if let Some(idx) = mapping.shift_remove(&attr) {
            burned.push(
                json!({"index": idx, "attribute": attr, "burnedAt": now, "reason": "removed"}),
            );
        }
    }
    for a in order {
        if !mapping.contains_key(a) {
            mapping.insert(a.clone(), json!(next));
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
        let a =
            ResourceConfig::from_attributes(&json!({"a": "string", "b": "string", "c": "string"}))
                .unwrap();
        assert!(define_resource(&mut cat, "r", &a, &json!({}), "t0").unwrap());
        assert!(!define_resource(&mut cat, "r", &a, &json!({}), "t1").unwrap());
        let b =
            ResourceConfig::from_attributes(&json!({"a": "string", "c": "string", "d": "string"}))
                .unwrap();
        assert!(define_resource(&mut cat, "r", &b, &json!({}), "t2").unwrap());
        let reg = &cat["resources"]["r"]["schemaRegistry"];
        assert_eq!(reg["mapping"], json!({"a": 0, "c": 2, "d": 3}));
        assert_eq!(reg["nextIndex"], json!(4));
        assert_eq!(reg["burned"][0]["index"], json!(1));
        assert_eq!(cat["resources"]["r"]["currentVersion"], json!("v2"));
    }
}
