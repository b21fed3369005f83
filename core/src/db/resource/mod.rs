//! Records of one resource: `resource=<R>/data/id=<ID>` plus partition references.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::db::inner::{object_of, DbInner};
use crate::error::{Error, ErrorKind, Result};
use crate::format::behavior::{self, Layout};
use crate::format::catalog::{iso_now, ResourceDef};
use crate::format::ids::{generate_id, validate_name};
use crate::format::partition::{partitions_of, Partition};
use crate::format::schema::Schema;
use crate::storage::{Metadata, Object, StoreError};

mod content;
use content::content_of;
mod partitions;
pub use partitions::{PartitionRepair, RepairReport};
mod query;
mod read;
mod stale;
mod write;
pub use stale::StaleReference;

pub(super) const FETCH_CONCURRENCY: usize = 16;
pub(super) const MAX_CAS_ATTEMPTS: usize = 64;

/// One item of a batch call.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchItem {
    pub index: usize,
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchError>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchError {
    pub code: &'static str,
    pub message: String,
}

impl BatchItem {
    fn of(index: usize, id: Option<String>, r: Result<Option<Value>>) -> BatchItem {
        match r {
            Ok(record) => BatchItem {
                index,
                id,
                record,
                error: None,
            },
            Err(e) => BatchItem {
                index,
                id,
                record: None,
                error: Some(BatchError {
                    code: e.kind().code(),
                    message: e.message().to_string(),
                }),
            },
        }
    }
}

/// One page of records and the cursor of the next (`None` on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub items: Vec<Value>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Resource {
    db: Arc<DbInner>,
    /// Shared by clones; replaced when a plugin adds or removes an attribute.
    def: Arc<std::sync::RwLock<Arc<ResourceDef>>>,
    name: Arc<str>,
    hooks: crate::db::hooks::Hooks,
    id_sequence: Option<crate::coord::sequence::Sequence>,
    partitions: Arc<Vec<Partition>>,
    data_prefix: String,
    /// Stale partition references met by this handle and its clones (see `stale.rs`).
    stale: Arc<stale::StaleLog>,
}

struct Stored {
    record: Map<String, Value>,
    etag: String,
    /// Binary content (`setContent`) and its type, kept across updates.
    content: Option<(Bytes, String)>,
}

impl Resource {
    pub(crate) fn new(db: Arc<DbInner>, def: ResourceDef) -> Self {
        let partitions = partitions_of(&def.partitions);
        let id_sequence = def.incremental.as_ref().and_then(|inc| {
            let options = crate::SequenceOptions {
                start: inc.start,
                increment: inc.increment,
                batch_size: inc.batch_size,
            };
            let key = format!("resource={}/sequence=id/value", def.name);
            crate::coord::sequence::Sequence::at_key(db.ctx.clone(), "id", key, options).ok()
        });
        Resource {
            id_sequence,
            data_prefix: format!("resource={}/data/", def.name),
            hooks: db.hooks_of(&def.name),
            db,
            name: def.name.as_str().into(),
            def: Arc::new(std::sync::RwLock::new(Arc::new(def))),
            partitions: Arc::new(partitions),
            stale: Default::default(),
        }
    }

    /// s3db.js `resource.addHook(event, fn)`: runs for every handle of this resource in this
    /// process (events: [`crate::db::hooks::HOOK_EVENTS`]).
    pub fn add_hook(&self, event: &str, hook: crate::db::hooks::Hook) -> Result<()> {
        self.hooks.add(event, hook)
    }

    pub fn hooks(&self) -> &crate::db::hooks::Hooks {
        &self.hooks
    }

    async fn after(&self, event: &str, value: Value) -> Result<Value> {
        if self.hooks.has(event) {
            self.hooks.run(event, value).await
        } else {
            Ok(value)
        }
    }

    /// Runs a record hook on `record` with its id; the hook may not change the id.
    async fn before_write(
        &self,
        event: &str,
        id: &str,
        record: Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        if !self.hooks.has(event) {
            return Ok(record);
        }
        let mut with_id = Map::with_capacity(record.len() + 1);
        with_id.insert("id".into(), json!(id));
        with_id.extend(record);
        let mut out = self.hooks.run_record(event, with_id).await?;
        match out.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(other) => {
                return Err(Error::validation(format!(
                    "{event} hook changed the id {id:?} to {other}"
                )))
            }
        }
        Ok(out)
    }

    /// s3db.js `addPluginAttribute(name, definition, pluginName)`: a plugin-owned attribute
    /// stored under a `p…` key (format.md §6.3). Persists a new catalog version (none when the
    /// attribute is already there with the same definition) and updates this handle and its
    /// clones. Returns the plugin map: attribute → key.
    pub async fn add_plugin_attribute(
        &self,
        name: &str,
        definition: &Value,
        plugin: &str,
    ) -> Result<Map<String, Value>> {
        let resource = self.name.clone();
        let now_ms = crate::storage::now_millis();
        let catalog = self
            .db
            .change_catalog(|c, now| {
                crate::format::catalog::add_plugin_attribute(
                    c, &resource, name, definition, plugin, now, now_ms,
                )
            })
            .await?;
        self.reload(&catalog)?;
        Ok(self.plugin_map())
    }

    /// s3db.js `removePluginAttribute(name, pluginName)`: a new version without it; records
    /// that carry its key still read. `false` when the resource has no such plugin attribute.
    pub async fn remove_plugin_attribute(&self, name: &str, plugin: &str) -> Result<bool> {
        let resource = self.name.clone();
        let mut removed = false;
        let catalog = self
            .db
            .change_catalog(|c, now| {
                removed = crate::format::catalog::remove_plugin_attribute(
                    c, &resource, name, plugin, now,
                )?;
                Ok(removed)
            })
            .await?;
        self.reload(&catalog)?;
        Ok(removed)
    }

    /// Plugin-owned attributes and their metadata keys.
    pub fn plugin_map(&self) -> Map<String, Value> {
        self.def()
            .schema()
            .plugin_map_json()
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default()
    }

    fn reload(&self, catalog: &Value) -> Result<()> {
        let name = self.name.clone();
        let def = crate::format::catalog::resource_def(
            catalog,
            &name,
            self.db.passphrase_of(&name).expose(),
        )?
        .ok_or_else(|| Error::not_found(format!("resource {name}")))?;
        *self.def.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(def);
        Ok(())
    }

    fn def(&self) -> Arc<ResourceDef> {
        self.def.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema of the current version.
    pub fn schema(&self) -> Schema {
        self.def().schema().clone()
    }

    pub fn behavior(&self) -> String {
        self.def().behavior.clone()
    }

    pub fn partition_names(&self) -> Vec<String> {
        self.partitions.iter().map(|p| p.name.clone()).collect()
    }

    fn key(&self, id: &str) -> Result<String> {
        validate_name("id", id)?;
        Ok(format!("{}id={id}", self.data_prefix))
    }

    fn partition(&self, name: &str) -> Result<&Partition> {
        self.partitions
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| Error::not_found(format!("partition {name:?} of {}", self.def().name)))
    }

    fn take_id(&self, record: &mut Map<String, Value>) -> Result<String> {
        match record.shift_remove("id") {
            Some(Value::String(s)) => Ok(s),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Null) | None => Ok(generate_id(self.def().id_size)),
            Some(other) => Err(Error::validation(format!(
                "id: expected string, got {}",
                crate::format::schema::type_name(&other)
            ))),
        }
    }

    fn layout(
        &self,
        record: &Map<String, Value>,
        update_id: Option<&str>,
    ) -> Result<(Metadata, Bytes, Option<String>)> {
        let def = self.def();
        let schema = def.schema();
        let mapped = schema.to_mapped(record);
        let Layout { metadata, body } = behavior::layout(behavior::Input {
            behavior: &self.def().behavior,
            schema,
            mapped: mapped.clone(),
            record,
            timestamps: self.def().timestamps,
            update_id,
            limit: self.db.ctx.store.metadata_limit(),
        })?;
        let sent_max = behavior::S3_METADATA_MAX.max(self.db.ctx.store.metadata_limit() + 1);
        let mut metadata = metadata;
        let mut meta = Schema::metadata_of(&metadata);
        let mut body = body;
        // truncate-data: header encoding (u:/b:) can grow values past what S3 accepts; cut the
        // longest value to the longest prefix that fits as sent (without trailing whitespace,
        // which would force the larger u: form).
        while self.def().behavior == "truncate-data" && behavior::sent_size(&meta) > sent_max {
            let longest = metadata
                .iter()
                .filter(|(k, _)| !k.starts_with('_') && !k.starts_with('$'))
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .max_by_key(|(_, s)| s.len());
            let Some((key, text)) = longest.filter(|(_, s)| !s.is_empty()) else {
                break;
            };
            metadata.insert("$truncated".into(), json!("true"));
            let cut = longest_fitting_prefix(&text, sent_max, |prefix| {
                metadata.insert(key.clone(), json!(prefix));
                behavior::sent_size(&Schema::metadata_of(&metadata))
            });
            metadata.insert(key, json!(cut));
            meta = Schema::metadata_of(&metadata);
            if !body.is_empty() {
                body = serde_json::to_vec(&crate::format::schema::js_key_order(metadata.clone()))
                    .expect("json");
            }
        }
        // Header encoding can grow values past what S3 accepts: keep the data in the body.
        if behavior::sent_size(&meta) > sent_max {
            if self.def().behavior == "enforce-limits" || self.def().behavior == "truncate-data" {
                return Err(Error::new(
                    ErrorKind::Validation,
                    format!(
                        "metadata limit: the encoded metadata is {} bytes, over S3's {}",
                        behavior::sent_size(&meta),
                        sent_max
                    ),
                ));
            }
            let mut slim = Map::new();
            slim.insert("_v".into(), json!(schema.version));
            if let Some(map) = schema.plugin_map_json() {
                slim.insert(behavior::PLUGIN_MAP.into(), json!(map));
            }
            slim.insert("$overflow".into(), json!("true"));
            meta = Schema::metadata_of(&slim);
            body = serde_json::to_vec(&crate::format::schema::js_key_order(mapped)).expect("json");
        }
        let content_type = (!body.is_empty()).then(|| "application/json".to_string());
        Ok((meta, Bytes::from(body), content_type))
    }

    fn decode(&self, obj: &Object) -> Map<String, Value> {
        let version = obj.head.metadata.get("_v").map(String::as_str);
        let body: &[u8] = if content_of(obj).is_some() {
            &[]
        } else {
            &obj.body
        };
        self.def()
            .schema_for(version)
            .from_stored(&obj.head.metadata, body)
    }

    fn output(&self, record: Map<String, Value>, id: &str) -> Value {
        let mut out = Map::with_capacity(record.len() + 1);
        out.insert("id".into(), Value::String(id.to_string()));
        let def = self.def();
        let schema = def.schema();
        for (k, v) in record {
            let is_secret = schema
                .field(&k)
                .is_some_and(|f| f.rule.kind == crate::format::schema::types::Kind::Secret);
            let v = match (&v, is_secret) {
                (Value::String(s), true) => {
                    crate::format::crypto::decrypt(schema.passphrase.expose(), s)
                        .map(Value::String)
                        .unwrap_or(v)
                }
                _ => v,
            };
            out.insert(k, v);
        }
        Value::Object(out)
    }

    /// Runs a hook that gets and returns a list of records.
    async fn after_many(&self, event: &str, records: Vec<Value>) -> Result<Vec<Value>> {
        if !self.hooks.has(event) {
            return Ok(records);
        }
        match self.hooks.run(event, Value::Array(records)).await? {
            Value::Array(a) => Ok(a),
            other => Err(Error::validation(format!(
                "{event} hook returned {}, not a list",
                crate::format::schema::type_name(&other)
            ))),
        }
    }

    fn missing(&self, e: StoreError, id: &str, key: &str) -> Error {
        match e {
            StoreError::NotFound => Error::not_found(format!("{} record {id:?}", self.def().name)),
            other => other.at(key),
        }
    }
}

/// The longest prefix of `text` (cut at a character, trailing whitespace dropped) whose
/// `sent_size` fits in `max`; empty when none does.
fn longest_fitting_prefix(
    text: &str,
    max: usize,
    mut sent_size: impl FnMut(&str) -> usize,
) -> String {
    let cuts: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    let mut fits = |i: usize| sent_size(text[..cuts[i]].trim_end()) <= max;
    let (mut lo, mut hi) = (0, cuts.len() - 1);
    if fits(hi) {
        return text.trim_end().to_string();
    }
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Sizes are not strictly monotonic in the prefix (the encoding can change form): step
    // down until the prefix really fits.
    while lo > 0 && !fits(lo) {
        lo -= 1;
    }
    text[..cuts[lo]].trim_end().to_string()
}

pub(super) fn set_dotted(record: &mut Map<String, Value>, path: &str, value: Value) {
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
    if value.is_null() {
        cur.shift_remove(last);
    } else {
        cur.insert(last.to_string(), value);
    }
}

pub(super) fn id_of(key: &str) -> Option<String> {
    key.split('/')
        .find_map(|seg| seg.strip_prefix("id="))
        .map(str::to_string)
}

pub(super) fn with_id(mut record: Map<String, Value>, id: &str) -> Value {
    let mut out = Map::with_capacity(record.len() + 1);
    out.insert("id".into(), Value::String(id.to_string()));
    out.append(&mut record);
    Value::Object(out)
}
