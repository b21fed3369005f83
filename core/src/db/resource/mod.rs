//! Records of one resource: `resource=<R>/data/id=<ID>` plus partition references.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::coord::jitter;
use crate::db::inner::{object_of, DbInner};
use crate::error::{Error, ErrorKind, Result};
use crate::format::behavior::{self, Layout};
use crate::format::catalog::{iso_now, ResourceDef};
use crate::format::ids::{generate_id, validate_name};
use crate::format::partition::{partitions_of, Partition};
use crate::format::schema::Schema;
use crate::storage::{Metadata, Object, PutRequest, StoreError, WriteCondition};

const FETCH_CONCURRENCY: usize = 16;
const MAX_CAS_ATTEMPTS: usize = 64;

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
}

struct Stored {
    record: Map<String, Value>,
    etag: String,
    /// Binary content (`setContent`) and its type, kept across updates.
    content: Option<(Bytes, String)>,
}

const HAS_CONTENT: &str = "_hascontent";

/// Binary content: a non-empty body that is not JSON, flagged `_hascontent` or typed as
/// something else than JSON. (s3db.js updates copy the flag onto records whose JSON body holds
/// fields, and some S3 front ends drop `_`-prefixed metadata, so neither alone decides.)
fn content_of(obj: &Object) -> Option<(Bytes, String)> {
    if obj.body.is_empty() {
        return None;
    }
    let flagged = obj.head.metadata.get(HAS_CONTENT).map(String::as_str) == Some("true");
    let ct = obj
        .head
        .metadata
        .get("_mimetype")
        .and_then(|m| crate::format::schema::codec::decode_value(m))
        .or_else(|| obj.head.content_type.clone())?;
    let json =
        ct == "application/json" || obj.head.content_type.as_deref() == Some("application/json");
    (!json && (flagged || !ct.is_empty())).then(|| (obj.body.clone(), ct))
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
        // longest value further until the metadata as sent fits.
        while self.def().behavior == "truncate-data" && behavior::sent_size(&meta) > sent_max {
            let over = behavior::sent_size(&meta) - sent_max;
            let longest = metadata
                .iter()
                .filter(|(k, _)| !k.starts_with('_') && !k.starts_with('$'))
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .max_by_key(|(_, s)| s.len());
            let Some((key, text)) = longest.filter(|(_, s)| !s.is_empty()) else {
                break;
            };
            let mut end = text.len().saturating_sub(over.div_ceil(2).max(1));
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            metadata.insert(key, json!(text[..end]));
            metadata.insert("$truncated".into(), json!("true"));
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

    /// Metadata and body of a record that carries binary content (s3db.js `setContent`).
    fn with_content(
        &self,
        record: &Map<String, Value>,
        id: Option<&str>,
        content: &Bytes,
        content_type: &str,
    ) -> Result<(Metadata, Bytes, Option<String>)> {
        if content_type == "application/json" {
            return Err(Error::invalid(
                "content of type application/json is not supported: s3db.js reads JSON bodies as record fields",
            ));
        }
        let (mut meta, body, _) = self.layout(record, None)?;
        if !body.is_empty() {
            return Err(Error::invalid(format!(
                "{}: this record is stored in the object body ({} behavior), so it cannot carry binary content",
                self.def().name, self.def().behavior
            )));
        }
        if let Some(id) = id {
            meta.insert(
                "id".into(),
                crate::format::schema::codec::encode_header_value(id),
            );
        }
        meta.insert(HAS_CONTENT.into(), "true".into());
        meta.insert(
            "_mimetype".into(),
            crate::format::schema::codec::encode_header_value(content_type),
        );
        meta.insert("_contentlength".into(), content.len().to_string());
        Ok((meta, content.clone(), Some(content_type.to_string())))
    }

    /// Inserts a record whose object body is binary content (s3db.js `insert(data, {content})`).
    pub async fn insert_with_content(
        &self,
        data: Value,
        content: Bytes,
        content_type: &str,
    ) -> Result<Value> {
        self.insert_inner(data, Some((content, content_type))).await
    }

    /// Sets (`Some`) or removes (`None`) a record's binary content, by compare-and-swap.
    pub async fn set_content(&self, id: &str, content: Option<(Bytes, &str)>) -> Result<()> {
        let key = self.key(id)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch(id).await?;
            let (metadata, body, content_type) = match &content {
                Some((bytes, ct)) => self.with_content(&current.record, Some(id), bytes, ct)?,
                None => self.layout(&current.record, Some(id))?,
            };
            let req = PutRequest {
                body,
                metadata,
                content_type,
                condition: WriteCondition::IfMatch(current.etag),
            };
            match self.db.ctx.store.put(&key, req).await {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(self.missing(e, id, &key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: set_content of {id:?} kept losing races",
                self.def().name
            ),
        ))
    }

    /// The binary content of a record and its type; NOT_FOUND when it has none.
    pub async fn content(&self, id: &str) -> Result<(Bytes, String)> {
        let key = self.key(id)?;
        let obj = self
            .db
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        content_of(&obj).ok_or_else(|| {
            Error::not_found(format!("{} record {id:?} has no content", self.def().name))
        })
    }

    async fn fetch(&self, id: &str) -> Result<Stored> {
        let key = self.key(id)?;
        let obj = self
            .db
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        Ok(Stored {
            record: self.decode(&obj),
            content: content_of(&obj),
            etag: obj.head.etag,
        })
    }

    fn reference_keys(&self, record: &Map<String, Value>, id: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for p in self.partitions.iter() {
            if let Some(k) = p.key(&self.def().name, record, id)? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    async fn put_references(&self, keys: &[String]) -> Result<()> {
        let version = self.def().schema().version.clone();
        stream::iter(keys.iter().cloned())
            .map(|k| {
                let version = version.clone();
                async move {
                    let mut metadata = Metadata::new();
                    metadata.insert("_v".into(), version);
                    let req = PutRequest {
                        metadata,
                        ..Default::default()
                    };
                    self.db
                        .ctx
                        .store
                        .put(&k, req)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.at(&k))
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        match keys.len() {
            0 => Ok(()),
            1 => self
                .db
                .ctx
                .store
                .delete(&keys[0], None)
                .await
                .map_err(|e| e.at(&keys[0])),
            _ => {
                let failed = self
                    .db
                    .ctx
                    .store
                    .delete_many(keys)
                    .await
                    .map_err(|e| e.at(&self.data_prefix))?;
                match failed.into_iter().next() {
                    Some((k, e)) => Err(e.at(&k)),
                    None => Ok(()),
                }
            }
        }
    }

    /// The id sequence of an incremental resource (s3db.js `getSequenceValue`).
    pub fn id_sequence(&self) -> Option<&crate::coord::sequence::Sequence> {
        self.id_sequence.as_ref()
    }

    async fn prepare_insert(
        &self,
        data: Value,
        before: Option<&str>,
    ) -> Result<(String, Map<String, Value>)> {
        let mut record = object_of(data)?;
        let id = match (&self.id_sequence, record.get("id")) {
            (Some(seq), None | Some(Value::Null)) => {
                record.shift_remove("id");
                let def = self.def();
                let inc = def.incremental.as_ref().expect("incremental config");
                inc.format(seq.next().await?)
            }
            _ => self.take_id(&mut record)?,
        };
        validate_name("id", &id)?;
        if self.def().timestamps {
            let now = iso_now();
            record
                .entry("createdAt")
                .or_insert_with(|| json!(now.clone()));
            record.entry("updatedAt").or_insert_with(|| json!(now));
        }
        if let Some(event) = before {
            record = self.before_write(event, &id, record).await?;
        }
        let record = self.def().schema().validate(record)?;
        Ok((id, record))
    }

    /// Inserts a new record (create-only write), then its partition references.
    pub async fn insert(&self, data: Value) -> Result<Value> {
        self.insert_inner(data, None).await
    }

    async fn insert_inner(&self, data: Value, content: Option<(Bytes, &str)>) -> Result<Value> {
        let (id, record) = self.prepare_insert(data, Some("beforeInsert")).await?;
        let key = self.key(&id)?;
        let refs = self.reference_keys(&record, &id)?;
        let (metadata, body, content_type) = match &content {
            Some((bytes, ct)) => self.with_content(&record, None, bytes, ct)?,
            None => self.layout(&record, None)?,
        };
        let req = PutRequest {
            body,
            metadata,
            content_type,
            condition: WriteCondition::IfNoneMatch,
        };
        match self.db.ctx.store.put(&key, req).await {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{}: a record with id {id:?} already exists",
                        self.def().name
                    ),
                ))
            }
            Err(e) => return Err(e.at(&key)),
        }
        self.put_references(&refs).await?;
        self.after("afterInsert", self.output(record, &id)).await
    }

    /// Inserts each item; one failure does not stop the others. Items run concurrently,
    /// except that a repeated id waits for its earlier occurrence, so the first one wins.
    pub async fn insert_many(&self, items: Vec<Value>) -> Vec<BatchItem> {
        let mut seen = std::collections::HashSet::new();
        let (mut first, mut repeats) = (Vec::new(), Vec::new());
        for (i, item) in items.into_iter().enumerate() {
            let id = match item.get("id") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match id {
                Some(id) if !seen.insert(id.clone()) => repeats.push((i, item)),
                _ => first.push((i, item)),
            }
        }
        let insert_one = |(i, item): (usize, Value)| async move {
            let id = item.get("id").and_then(Value::as_str).map(str::to_string);
            let r = self.insert(item).await;
            let id = r
                .as_ref()
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .or(id);
            BatchItem::of(i, id, r.map(Some))
        };
        let mut out: Vec<BatchItem> = stream::iter(first)
            .map(insert_one)
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        for item in repeats {
            out.push(insert_one(item).await);
        }
        out.sort_by_key(|b| b.index);
        out
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

    pub async fn get(&self, id: &str) -> Result<Value> {
        if self.hooks.has("beforeGet") {
            self.hooks.notify("beforeGet", json!({"id": id})).await?;
        }
        let stored = self.fetch(id).await?;
        self.after("afterGet", with_id(stored.record, id)).await
    }

    /// The record and its version tag, for `update_if`.
    pub async fn get_with_etag(&self, id: &str) -> Result<(Value, String)> {
        let stored = self.fetch(id).await?;
        Ok((with_id(stored.record, id), stored.etag))
    }

    /// `None` when there is no such record.
    pub async fn get_or_none(&self, id: &str) -> Result<Option<Value>> {
        match self.get(id).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The records found (in the order asked) and the ids that do not exist.
    pub async fn get_many(&self, ids: &[String]) -> Result<(Vec<Value>, Vec<String>)> {
        if self.hooks.has("beforeGetMany") {
            self.hooks
                .notify("beforeGetMany", json!({"ids": ids}))
                .await?;
        }
        let found: Vec<(String, Option<Value>)> = stream::iter(ids.iter().cloned())
            .map(|id| async move { self.get_or_none(&id).await.map(|r| (id, r)) })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut records = Vec::new();
        let mut missing = Vec::new();
        for (id, r) in found {
            match r {
                Some(v) => records.push(v),
                None => missing.push(id),
            }
        }
        let records = self.after_many("afterGetMany", records).await?;
        Ok((records, missing))
    }

    pub async fn exists(&self, id: &str) -> Result<bool> {
        let key = self.key(id)?;
        if self.hooks.has("beforeExists") {
            self.hooks.notify("beforeExists", json!({"id": id})).await?;
        }
        let exists = match self.db.ctx.store.head(&key).await {
            Ok(_) => true,
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e.at(&key)),
        };
        if self.hooks.has("afterExists") {
            self.hooks
                .notify("afterExists", json!({"id": id, "exists": exists}))
                .await?;
        }
        Ok(exists)
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

    /// Merges `changes` into the stored record by compare-and-swap on its etag; a lost race
    /// re-reads and re-merges, so concurrent updates all survive. Dotted keys
    /// (`"address.city"`) change one nested field and keep its siblings; `null` removes.
    pub async fn update(&self, id: &str, changes: Value) -> Result<Value> {
        Ok(self.update_inner(id, changes, None).await?.0)
    }

    /// `update`, applied only if the record still has version tag `etag`.
    pub async fn update_if(&self, id: &str, changes: Value, etag: &str) -> Result<Value> {
        Ok(self.update_inner(id, changes, Some(etag)).await?.0)
    }

    /// s3db.js `updateConditional(id, changes, {ifMatch})`: `update_if` that also returns the
    /// record's new version tag, for the next conditional update.
    pub async fn update_conditional(
        &self,
        id: &str,
        changes: Value,
        if_match: &str,
    ) -> Result<(Value, String)> {
        self.update_inner(id, changes, Some(if_match)).await
    }

    /// s3db.js `patch`: the same compare-and-swap merge as `update`.
    pub async fn patch(&self, id: &str, changes: Value) -> Result<Value> {
        if self.hooks.has("beforePatch") {
            self.hooks
                .notify("beforePatch", json!({"id": id, "fields": changes}))
                .await?;
        }
        let record = self.update(id, changes).await?;
        self.after("afterPatch", record).await
    }

    async fn update_inner(
        &self,
        id: &str,
        changes: Value,
        expected: Option<&str>,
    ) -> Result<(Value, String)> {
        let key = self.key(id)?;
        let mut changes = object_of(changes)?;
        match changes.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(Value::Number(n)) if n.to_string() == id => {}
            Some(_) => return Err(Error::validation("id: cannot be changed by update")),
        }
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch(id).await?;
            if let Some(want) = expected {
                if !crate::storage::etags_equal(want, &current.etag) {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        format!(
                            "{}: record {id:?} changed since version {want}",
                            self.def().name
                        ),
                    ));
                }
            }
            let mut record = current.record.clone();
            for (k, v) in &changes {
                set_dotted(&mut record, k, v.clone());
            }
            if self.def().timestamps {
                record.insert("updatedAt".into(), json!(iso_now()));
            }
            let record = self.before_write("beforeUpdate", id, record).await?;
            let record = self.def().schema().validate(record)?;
            match self.write_over(id, &key, &current, &record).await {
                Ok(etag) => {
                    let out = self.after("afterUpdate", self.output(record, id)).await?;
                    return Ok((out, etag));
                }
                Err(e) if e.kind() == ErrorKind::PreconditionFailed && expected.is_none() => {
                    tokio::time::sleep(jitter()).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: update of {id:?} lost {MAX_CAS_ATTEMPTS} races in a row",
                self.def().name
            ),
        ))
    }

    /// Writes `record` over `current` (If-Match), then moves exactly the changed references.
    async fn write_over(
        &self,
        id: &str,
        key: &str,
        current: &Stored,
        record: &Map<String, Value>,
    ) -> Result<String> {
        let old_refs = self.reference_keys(&current.record, id).unwrap_or_default();
        let new_refs = self.reference_keys(record, id)?;
        let (metadata, body, content_type) = match &current.content {
            Some((bytes, ct)) => self.with_content(record, Some(id), bytes, ct)?,
            None => self.layout(record, Some(id))?,
        };
        let req = PutRequest {
            body,
            metadata,
            content_type,
            condition: WriteCondition::IfMatch(current.etag.clone()),
        };
        let etag = match self.db.ctx.store.put(key, req).await {
            Ok(etag) => etag,
            Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                return Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("{key} changed meanwhile"),
                ))
            }
            Err(StoreError::NotFound) => return Err(self.missing(StoreError::NotFound, id, key)),
            Err(e) => return Err(e.at(key)),
        };
        let stale: Vec<String> = old_refs
            .iter()
            .filter(|k| !new_refs.contains(k))
            .cloned()
            .collect();
        let fresh: Vec<String> = new_refs
            .iter()
            .filter(|k| !old_refs.contains(k))
            .cloned()
            .collect();
        self.delete_keys(&stale).await?;
        self.put_references(&fresh).await?;
        Ok(etag)
    }

    /// Replaces the whole record (it must exist), by compare-and-swap.
    pub async fn replace(&self, id: &str, data: Value) -> Result<Value> {
        let mut data = object_of(data)?;
        data.insert("id".into(), json!(id));
        if self.hooks.has("beforeReplace") {
            self.hooks
                .notify("beforeReplace", json!({"id": id, "fullData": data}))
                .await?;
        }
        let (_, mut record) = self.prepare_insert(Value::Object(data), None).await?;
        let key = self.key(id)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch(id).await?;
            if self.def().timestamps {
                if let Some(c) = current.record.get("createdAt") {
                    record.insert("createdAt".into(), c.clone());
                }
            }
            match self.write_over(id, &key, &current, &record).await {
                Ok(_) => return self.after("afterReplace", self.output(record, id)).await,
                Err(e) if e.kind() == ErrorKind::PreconditionFailed => {
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: replace of {id:?} kept losing races", self.def().name),
        ))
    }

    /// Inserts, or merges into the existing record of that id.
    pub async fn upsert(&self, data: Value) -> Result<Value> {
        let id = match data.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        match self.insert(data.clone()).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.update(&id.unwrap_or_default(), data).await
            }
            // A partial record is only valid merged into an existing one.
            Err(e) if e.kind() == ErrorKind::Validation => match &id {
                Some(id) if self.exists(id).await? => self.update(id, data).await,
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Deletes a record and its partition references. A missing id is `NOT_FOUND`.
    /// The delete is conditional on the version read, so a concurrent rewrite is not lost
    /// silently: it is retried against the new version.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let key = self.key(id)?;
        let with_record = self.hooks.has("beforeDelete") || self.hooks.has("afterDelete");
        for _ in 0..MAX_CAS_ATTEMPTS {
            let mut deleted = Value::Null;
            let (etag, refs) = if self.partitions.is_empty() && !with_record {
                let head = self
                    .db
                    .ctx
                    .store
                    .head(&key)
                    .await
                    .map_err(|e| self.missing(e, id, &key))?;
                (head.etag, Vec::new())
            } else {
                let stored = self.fetch(id).await?;
                let refs = self.reference_keys(&stored.record, id).unwrap_or_default();
                if with_record {
                    deleted = with_id(stored.record, id);
                    self.hooks.notify("beforeDelete", deleted.clone()).await?;
                }
                (stored.etag, refs)
            };
            match self.db.ctx.store.delete(&key, Some(&etag)).await {
                Ok(()) => {
                    self.delete_keys(&refs).await?;
                    if self.hooks.has("afterDelete") {
                        self.hooks.notify("afterDelete", deleted).await?;
                    }
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await
                }
                Err(StoreError::NotFound) => {
                    return Err(self.missing(StoreError::NotFound, id, &key))
                }
                Err(e) => return Err(e.at(&key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: delete of {id:?} kept losing races", self.def().name),
        ))
    }

    /// Deletes each id; the result says which failed and why.
    pub async fn delete_many(&self, ids: &[String]) -> Vec<BatchItem> {
        if self.hooks.has("beforeDeleteMany") {
            if let Err(e) = self
                .hooks
                .notify("beforeDeleteMany", json!({"ids": ids}))
                .await
            {
                return ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| BatchItem::of(i, Some(id.clone()), Err(e.clone())))
                    .collect();
            }
        }
        let items: Vec<BatchItem> = stream::iter(ids.iter().cloned().enumerate())
            .map(|(i, id)| async move {
                let r = self.delete(&id).await;
                BatchItem::of(i, Some(id), r.map(|_| None))
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        if self.hooks.has("afterDeleteMany") {
            let deleted: Vec<&str> = items
                .iter()
                .filter(|i| i.error.is_none())
                .filter_map(|i| i.id.as_deref())
                .collect();
            let context = json!({"ids": ids, "deleted": deleted});
            if let Err(e) = self.hooks.notify("afterDeleteMany", context).await {
                tracing::warn!(error = %e, "afterDeleteMany hook failed after the deletes");
            }
        }
        items
    }

    /// Deletes every record and reference of the resource; refused for paranoid resources.
    pub async fn delete_all(&self) -> Result<u64> {
        if self.def().paranoid {
            return Err(Error::invalid(format!(
                "{} is paranoid: delete_all is refused (define it with paranoid: false)",
                self.def().name
            )));
        }
        let prefix = format!("resource={}/", self.def().name);
        let keys: Vec<String> = self
            .db
            .ctx
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| e.at(&prefix))?
            .into_iter()
            .filter(|k| k.contains("/data/") || k.contains("/partition="))
            .collect();
        let records = keys
            .iter()
            .filter(|k| k.starts_with(&self.data_prefix))
            .count() as u64;
        let failed = self
            .db
            .ctx
            .store
            .delete_many(&keys)
            .await
            .map_err(|e| e.at(&prefix))?;
        if let Some((k, e)) = failed.into_iter().next() {
            return Err(e.at(&k));
        }
        Ok(records)
    }

    fn list_prefix(&self, partition: Option<(&str, &Map<String, Value>)>) -> Result<String> {
        match partition {
            None => Ok(self.data_prefix.clone()),
            Some((name, values)) => self.partition(name)?.prefix(&self.def().name, values),
        }
    }

    /// Every id (of a partition's matching references, if given), with no cap.
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        self.list_ids_in(None).await
    }

    pub async fn list_ids_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<String>> {
        let prefix = self.list_prefix(partition)?;
        let keys = self
            .db
            .ctx
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| e.at(&prefix))?;
        Ok(keys.iter().filter_map(|k| id_of(k)).collect())
    }

    /// Every record (a GET per id, several at a time). Records deleted meanwhile are skipped.
    pub async fn list(&self) -> Result<Vec<Value>> {
        self.list_in(None).await
    }

    pub async fn list_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<Value>> {
        if self.hooks.has("beforeList") {
            let context = match partition {
                Some((p, values)) => json!({"partition": p, "partitionValues": values}),
                None => json!({}),
            };
            self.hooks.notify("beforeList", context).await?;
        }
        let ids = self.list_ids_in(partition).await?;
        let records = self.fetch_all(ids, true).await?;
        self.after_many("afterList", records).await
    }

    /// The records of `ids` that exist, through the read hooks if `hooked`.
    async fn fetch_all(&self, ids: Vec<String>, hooked: bool) -> Result<Vec<Value>> {
        stream::iter(ids)
            .map(|id| async move {
                if hooked {
                    return self.get_or_none(&id).await;
                }
                match self.fetch(&id).await {
                    Ok(stored) => Ok(Some(with_id(stored.record, &id))),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await
    }

    pub async fn count(&self) -> Result<u64> {
        self.count_in(None).await
    }

    pub async fn count_in(&self, partition: Option<(&str, &Map<String, Value>)>) -> Result<u64> {
        let context = match partition {
            Some((p, values)) => json!({"partition": p, "partitionValues": values}),
            None => json!({}),
        };
        if self.hooks.has("beforeCount") {
            self.hooks.notify("beforeCount", context.clone()).await?;
        }
        let count = self.count_unhooked(partition).await?;
        if self.hooks.has("afterCount") {
            let mut context = context;
            context["count"] = json!(count);
            self.hooks.notify("afterCount", context).await?;
        }
        Ok(count)
    }

    async fn count_unhooked(&self, partition: Option<(&str, &Map<String, Value>)>) -> Result<u64> {
        let prefix = self.list_prefix(partition)?;
        let mut total = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .db
                .ctx
                .store
                .list_page(&prefix, token.as_deref(), 1000)
                .await
                .map_err(|e| e.at(&prefix))?;
            total += page.keys.iter().filter(|k| id_of(k).is_some()).count() as u64;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(total),
            }
        }
    }

    /// One page of records: one LIST plus a GET per record. Pass the returned cursor back
    /// for the next page; it stays valid while records are added or removed.
    pub async fn page(&self, size: usize, cursor: Option<&str>) -> Result<Page> {
        if size == 0 || size > 1000 {
            return Err(Error::invalid("page size must be between 1 and 1000"));
        }
        let token = match cursor {
            None => None,
            Some(c) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                let v: Value = serde_json::from_slice(&raw)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                if v["prefix"].as_str() != Some(self.data_prefix.as_str()) {
                    return Err(Error::invalid("this cursor belongs to another listing"));
                }
                v["token"].as_str().map(str::to_string)
            }
        };
        let page = self
            .db
            .ctx
            .store
            .list_page(&self.data_prefix, token.as_deref(), size)
            .await
            .map_err(|e| e.at(&self.data_prefix))?;
        let ids: Vec<String> = page.keys.iter().filter_map(|k| id_of(k)).collect();
        let items = self.fetch_all(ids, true).await?;
        let cursor = page.next.map(|t| {
            let c = json!({"v": 1, "prefix": self.data_prefix, "token": t, "pageSize": size});
            URL_SAFE_NO_PAD.encode(c.to_string())
        });
        Ok(Page { items, cursor })
    }

    /// Records matching a filter (`{"status": "paid", "amount": {"$gte": 10}}`; operators
    /// `$eq $ne $gt $gte $lt $lte $in $nin $exists`; dotted paths). Uses the partition that
    /// fixes the most leading fields with equalities, else lists every record.
    pub async fn query(&self, filter: &Value) -> Result<Vec<Value>> {
        if self.hooks.has("beforeQuery") {
            self.hooks
                .notify("beforeQuery", json!({"filter": filter}))
                .await?;
        }
        let records = self.query_unhooked(filter).await?;
        self.after_many("afterQuery", records).await
    }

    async fn query_unhooked(&self, filter: &Value) -> Result<Vec<Value>> {
        let filter = filter
            .as_object()
            .ok_or_else(|| Error::invalid("a query filter must be an object"))?;
        for cond in filter.values() {
            check_condition(cond)?;
        }
        let fixed: Map<String, Value> = filter
            .iter()
            .filter_map(|(k, c)| equality(c).map(|v| (k.clone(), v.clone())))
            .collect();
        let best = self
            .partitions
            .iter()
            .map(|p| (p.coverage(&fixed), p))
            .filter(|(c, _)| *c > 0)
            .max_by(|a, b| {
                a.0.cmp(&b.0)
                    .then_with(|| b.1.fields.len().cmp(&a.1.fields.len()))
            });
        let ids = match best {
            Some((_, p)) => self.list_ids_in(Some((&p.name, &fixed))).await?,
            None => self.list_ids_in(None).await?,
        };
        // Filters see what is stored; read hooks then run on the matches.
        let mut found = Vec::new();
        for r in self.fetch_all(ids, false).await? {
            if matches(&r, filter) {
                found.push(self.after("afterGet", r).await?);
            }
        }
        Ok(found)
    }

    /// Rebuilds the references of one partition (or all) from the records: writes the
    /// missing ones, deletes the stale ones. Returns (written, deleted).
    pub async fn reindex(&self, partition: Option<&str>) -> Result<(u64, u64)> {
        let targets: Vec<&Partition> = match partition {
            Some(name) => vec![self.partition(name)?],
            None => self.partitions.iter().collect(),
        };
        let ids = self.list_ids_in(None).await?;
        let records = self.fetch_all(ids, false).await?;
        let (mut written, mut deleted) = (0, 0);
        for p in targets {
            let mut want = std::collections::BTreeSet::new();
            for r in &records {
                let Value::Object(m) = r else { continue };
                let id = m.get("id").and_then(Value::as_str).unwrap_or_default();
                if let Ok(Some(k)) = p.key(&self.def().name, m, id) {
                    want.insert(k);
                }
            }
            let prefix = format!("resource={}/partition={}/", self.def().name, p.name);
            let have: std::collections::BTreeSet<String> = self
                .db
                .ctx
                .store
                .list_all(&prefix)
                .await
                .map_err(|e| e.at(&prefix))?
                .into_iter()
                .collect();
            let missing: Vec<String> = want.difference(&have).cloned().collect();
            let stale: Vec<String> = have.difference(&want).cloned().collect();
            self.put_references(&missing).await?;
            self.delete_keys(&stale).await?;
            written += missing.len() as u64;
            deleted += stale.len() as u64;
        }
        Ok((written, deleted))
    }

    fn missing(&self, e: StoreError, id: &str, key: &str) -> Error {
        match e {
            StoreError::NotFound => Error::not_found(format!("{} record {id:?}", self.def().name)),
            other => other.at(key),
        }
    }
}

fn set_dotted(record: &mut Map<String, Value>, path: &str, value: Value) {
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

const OPERATORS: [&str; 9] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
];

fn check_condition(cond: &Value) -> Result<()> {
    if let Value::Object(ops) = cond {
        for (op, arg) in ops {
            if !OPERATORS.contains(&op.as_str()) {
                if op.starts_with('$') {
                    return Err(Error::invalid(format!("unknown query operator {op:?}")));
                }
                continue;
            }
            if matches!(op.as_str(), "$in" | "$nin") && !arg.is_array() {
                return Err(Error::invalid(format!("{op} takes an array")));
            }
        }
    }
    Ok(())
}

fn equality(cond: &Value) -> Option<&Value> {
    match cond {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            ops.get("$eq").filter(|_| ops.len() == 1)
        }
        Value::Object(_) | Value::Array(_) | Value::Null => None,
        v => Some(v),
    }
}

fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(record, |cur, p| cur.get(p))
        .filter(|v| !v.is_null())
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    compare(a, b) == Some(std::cmp::Ordering::Equal) || a == b
}

fn matches(record: &Value, filter: &Map<String, Value>) -> bool {
    use std::cmp::Ordering::*;
    filter.iter().all(|(path, cond)| {
        let v = lookup(record, path);
        match cond {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                ops.iter().all(|(op, arg)| match op.as_str() {
                    "$eq" => v.is_some_and(|v| eq(v, arg)),
                    "$ne" => !v.is_some_and(|v| eq(v, arg)),
                    "$gt" => v.and_then(|v| compare(v, arg)) == Some(Greater),
                    "$gte" => matches!(v.and_then(|v| compare(v, arg)), Some(Greater | Equal)),
                    "$lt" => v.and_then(|v| compare(v, arg)) == Some(Less),
                    "$lte" => matches!(v.and_then(|v| compare(v, arg)), Some(Less | Equal)),
                    "$in" => v.is_some_and(|v| {
                        arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x)))
                    }),
                    "$nin" => !v.is_some_and(|v| {
                        arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x)))
                    }),
                    "$exists" => v.is_some() == arg.as_bool().unwrap_or(true),
                    _ => false,
                })
            }
            other => v.is_some_and(|v| eq(v, other)),
        }
    })
}

fn id_of(key: &str) -> Option<String> {
    key.split('/')
        .find_map(|seg| seg.strip_prefix("id="))
        .map(str::to_string)
}

fn with_id(mut record: Map<String, Value>, id: &str) -> Value {
    let mut out = Map::with_capacity(record.len() + 1);
    out.insert("id".into(), Value::String(id.to_string()));
    out.append(&mut record);
    Value::Object(out)
}
