//! s3db.js's PluginStorage: small JSON documents a plugin keeps under `plugin=<slug>/…`
//! (or `resource=<R>/plugin=<slug>/…`), plugin sequences and plugin locks, in the exact
//! format s3db.js 21.6.2 writes (format.md §13, §12.1, §12.2).
//!
//! * **Documents** ([`PluginStorage::set`] / [`PluginStorage::get`]): one PUT / one GET. The
//!   fields go to metadata (values encoded as §2.4, keys sanitised as §2.2) or to a JSON body
//!   according to the [`PluginBehavior`]. A TTL adds `_expiresAt` (epoch ms); an expired
//!   document is deleted on read by a DELETE conditional on the etag that was read, so a
//!   fresh concurrent write is never removed.
//! * **Sequences** ([`PluginStorage::next_sequence`]): the value object s3db.js writes
//!   (`{"value","name","resourceName","createdAt"[,"updatedAt"]}`), advanced by GET +
//!   conditional PUT (the engine's [`Sequence`]), without s3db.js's lock object.
//! * **Locks** ([`PluginStorage::acquire_lock`]): `plugin=<slug>/locks/<name>` holding
//!   `{"workerId","token","acquiredAt","_expiresAt"}`; created with `If-None-Match: *`, an
//!   expired or unreadable lock is taken over with `If-Match` on the etag read, release is a
//!   DELETE conditional on the etag read after checking the token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::coord::sequence::{Sequence, SequenceOptions};
use crate::coord::{jitter, Clock, Context};
use crate::error::{Error, ErrorKind, Result};
use crate::format::ids::{generate_id, validate_name, DEFAULT_ID_SIZE};
use crate::format::schema::codec::{decode_value, encode_header_value, sanitize_key};
use crate::format::schema::js_key_order;
use crate::format::schema::num::js_number;
use crate::storage::{etags_equal, Metadata, PutRequest, StoreError, WriteCondition};

/// s3db.js's metadata limit for plugin documents (2047) minus its 3-byte overhead.
pub const PLUGIN_METADATA_LIMIT: usize = 2044;
const ABSOLUTE_METADATA_LIMIT: usize = 2047;
const DEFAULT_CONTENT_TYPE: &str = "application/json";
/// S3's etag of an empty body.
const EMPTY_BODY_MD5: &str = "d41d8cd98f00b204e9800998ecf8427e";
const MAX_ATTEMPTS: usize = 1000;

/// Where [`PluginStorage::set`] puts the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PluginBehavior {
    /// Smallest fields (key + encoded value bytes) in metadata while they fit in 2044 bytes,
    /// the rest in a JSON body.
    #[default]
    BodyOverflow,
    /// Everything in a JSON body, no metadata.
    BodyOnly,
    /// Everything in metadata; a `VALIDATION` error when it does not fit.
    EnforceLimits,
}

impl PluginBehavior {
    /// s3db.js's name (`body-overflow`, `body-only`, `enforce-limits`).
    pub fn as_str(self) -> &'static str {
        match self {
            PluginBehavior::BodyOverflow => "body-overflow",
            PluginBehavior::BodyOnly => "body-only",
            PluginBehavior::EnforceLimits => "enforce-limits",
        }
    }

    pub fn parse(s: &str) -> Result<PluginBehavior> {
        match s {
            "body-overflow" => Ok(PluginBehavior::BodyOverflow),
            "body-only" => Ok(PluginBehavior::BodyOnly),
            "enforce-limits" => Ok(PluginBehavior::EnforceLimits),
            other => Err(Error::invalid(format!(
                "unknown plugin storage behavior {other:?} (body-overflow, body-only, enforce-limits)"
            ))),
        }
    }
}

/// Options of [`PluginStorage::set`].
#[derive(Debug, Clone, Default)]
pub struct SetOptions {
    pub behavior: PluginBehavior,
    /// Adds `_expiresAt` = now + ttl (epoch ms); expired documents read as absent.
    pub ttl: Option<Duration>,
    /// Default `application/json`.
    pub content_type: Option<String>,
    /// `IfNoneMatch`: create only; `IfMatch(etag)`: replace only that version. A failed
    /// condition is a `PRECONDITION_FAILED` error and nothing is written. A conditional
    /// write also stores every field in the JSON body (S3 etags hash only the body, so a
    /// metadata-only document would keep one etag across versions).
    pub condition: WriteCondition,
}

/// Options of [`PluginStorage::next_sequence`].
#[derive(Debug, Clone)]
pub struct PluginSequenceOptions {
    /// Scope the sequence to a resource: `resource=<R>/plugin=<slug>/sequence=<name>/value`.
    pub resource: Option<String>,
    /// The first value handed out (default 1).
    pub initial_value: i64,
    /// Step between values (default 1).
    pub increment: i64,
}

impl Default for PluginSequenceOptions {
    fn default() -> Self {
        PluginSequenceOptions {
            resource: None,
            initial_value: 1,
            increment: 1,
        }
    }
}

/// Options of [`PluginStorage::acquire_lock`].
#[derive(Debug, Clone)]
pub struct PluginLockOptions {
    /// Lease length (default 30 s).
    pub ttl: Duration,
    /// How long to wait while another holder has it; zero tries once (default).
    pub timeout: Duration,
    /// Stored as `workerId` (default `"unknown"`, as s3db.js).
    pub worker_id: String,
}

impl Default for PluginLockOptions {
    fn default() -> Self {
        PluginLockOptions {
            ttl: Duration::from_secs(30),
            timeout: Duration::ZERO,
            worker_id: "unknown".into(),
        }
    }
}

/// A held plugin lock (s3db.js's `LockHandle`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginLock {
    pub name: String,
    pub key: String,
    pub token: String,
    pub worker_id: String,
    /// Epoch milliseconds.
    pub expires_at: i64,
    /// Etag of the lock object this handle wrote.
    pub etag: String,
}

/// The storage of one plugin (`slug`), from [`Database::plugin_storage`].
#[derive(Debug, Clone)]
pub struct PluginStorage {
    db: Arc<Context>,
    slug: String,
    clock: Clock,
}

impl PluginStorage {
    /// The PluginStorage of plugin `slug` (non-empty, no `/`, no `..`).
    pub fn new(ctx: Arc<Context>, slug: &str) -> Result<PluginStorage> {
        if slug.is_empty() {
            return Err(Error::invalid("plugin slug must not be empty"));
        }
        if slug.contains('/') || slug.contains("..") {
            return Err(Error::invalid(format!(
                "plugin slug {slug:?} must not contain '/' or '..'"
            )));
        }
        Ok(PluginStorage {
            db: ctx,
            slug: slug.to_string(),
            clock: Clock::system(),
        })
    }
}

impl PluginStorage {
    pub fn slug(&self) -> &str {
        &self.slug
    }

    /// Uses `clock` for `_expiresAt`, expiry checks, sequence timestamps and lock times.
    pub fn with_clock(mut self, clock: Clock) -> PluginStorage {
        self.clock = clock;
        self
    }

    /// s3db.js `getPluginKey`: `plugin=<slug>/<parts joined by />`, or
    /// `resource=<R>/plugin=<slug>/…` when `resource` is given. Parts must not produce
    /// empty, `.` or `..` segments.
    pub fn key(&self, resource: Option<&str>, parts: &[&str]) -> Result<String> {
        let tail = parts.join("/");
        check_segments(&tail)?;
        Ok(match resource {
            Some(r) => {
                validate_name("resource name", r)?;
                format!("resource={r}/plugin={}/{tail}", self.slug)
            }
            None => format!("plugin={}/{tail}", self.slug),
        })
    }

    fn sequence_key(&self, resource: Option<&str>, name: &str) -> Result<String> {
        validate_name("sequence name", name)?;
        let seq = format!("sequence={name}");
        self.key(resource, &[seq.as_str(), "value"])
    }

    /// Stores `data` (a JSON object) at `key` with one PUT; returns the new etag.
    pub async fn set(&self, key: &str, data: &Value, options: &SetOptions) -> Result<String> {
        check_segments(key)?;
        let Value::Object(fields) = data else {
            return Err(Error::invalid(format!(
                "plugin data must be an object, got {}",
                crate::format::schema::type_name(data)
            )));
        };
        let mut fields = js_key_order(fields.clone());
        if let Some(ttl) = options.ttl.filter(|t| t.as_millis() > 0) {
            let expires = self.clock.now_ms() + ttl.as_millis() as i64;
            fields.insert("_expiresAt".into(), json!(expires));
        }
        let (metadata, mut body) = layout(&fields, options.behavior)?;
        if options.condition != WriteCondition::None {
            // S3 etags hash the body only: a conditional write carries every field in its
            // body too, so that each version has its own etag and If-Match can tell them
            // apart (readers merge the body over the metadata: same data).
            body = Some(js_json(&Value::Object(fields.clone())));
        }
        let req = PutRequest {
            body: body.map(Bytes::from).unwrap_or_default(),
            metadata,
            content_type: Some(
                options
                    .content_type
                    .clone()
                    .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.into()),
            ),
            condition: options.condition.clone(),
        };
        let conditional = options.condition != WriteCondition::None;
        match self.db.store.put(key, req).await {
            Ok(etag) => Ok(etag),
            Err(StoreError::PreconditionFailed) | Err(StoreError::NotFound) if conditional => {
                Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("{key}: the write condition does not hold, nothing was written"),
                ))
            }
            Err(e) => Err(e.at(key)),
        }
    }

    /// The document at `key` (metadata decoded as s3db.js does, the body merged on top,
    /// `_expiresAt` removed); `None` when absent or expired (an expired document is deleted,
    /// conditionally on the etag read). One GET (+ one DELETE when expired).
    pub async fn get(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.get_with_etag(key).await?.map(|(v, _)| v))
    }

    /// [`get`](Self::get) plus the etag, for a later `SetOptions::condition = IfMatch`.
    pub async fn get_with_etag(&self, key: &str) -> Result<Option<(Value, String)>> {
        check_segments(key)?;
        let obj = match self.db.store.get(key).await {
            Ok(o) => o,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.at(key)),
        };
        let mut data = decode_document(key, &obj.head.metadata, &obj.body)?;
        if let Some(expires) = expires_at(&data) {
            if self.clock.now_ms() as f64 > expires {
                // On S3 every empty-bodied version has the same etag (the MD5 of nothing), so
                // `If-Match` cannot tell this expired version from a fresh one written since:
                // such a document is left for the next write to replace.
                if etags_equal(&obj.head.etag, EMPTY_BODY_MD5) {
                    return Ok(None);
                }
                match self.db.store.delete(key, Some(&obj.head.etag)).await {
                    // Rewritten or deleted meanwhile: leave the newer version alone.
                    Ok(())
                    | Err(StoreError::PreconditionFailed)
                    | Err(StoreError::NotFound)
                    | Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e.at(key)),
                }
                return Ok(None);
            }
            data.shift_remove("_expiresat");
            data.shift_remove("_expiresAt");
        }
        Ok(Some((Value::Object(data), obj.head.etag)))
    }

    /// Whether a live (unexpired) document is at `key` (a `get`).
    pub async fn has(&self, key: &str) -> Result<bool> {
        Ok(self.get(key).await?.is_some())
    }

    /// Deletes the document at `key`: HEAD + DELETE `If-Match`; `false` when absent.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        check_segments(key)?;
        for _ in 0..MAX_ATTEMPTS {
            let etag = match self.db.store.head(key).await {
                Ok(h) => h.etag,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.at(key)),
            };
            match self.db.store.delete(key, Some(&etag)).await {
                Ok(()) => return Ok(true),
                Err(StoreError::NotFound) => return Ok(false),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(e.at(key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{key}: delete kept losing races"),
        ))
    }

    async fn list_under(&self, prefix: String) -> Result<Vec<String>> {
        self.db
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| e.at(&prefix))
    }

    /// Keys (full, e.g. `plugin=<slug>/config`) under `plugin=<slug>/<prefix>`; resource-
    /// scoped documents are not included (s3db.js `list`).
    pub async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        self.list_under(format!("plugin={}/{}", self.slug, prefix.unwrap_or("")))
            .await
    }

    /// Keys under `resource=<R>/plugin=<slug>/<sub_prefix>` (s3db.js `listForResource`).
    pub async fn list_for_resource(
        &self,
        resource: &str,
        sub_prefix: Option<&str>,
    ) -> Result<Vec<String>> {
        validate_name("resource name", resource)?;
        self.list_under(format!(
            "resource={resource}/plugin={}/{}",
            self.slug,
            sub_prefix.unwrap_or("")
        ))
        .await
    }

    /// Deletes every object of this plugin (of one resource when given); returns how many.
    /// Without a resource this lists the whole bucket, like s3db.js, to find the
    /// resource-scoped objects too.
    pub async fn delete_all(&self, resource: Option<&str>) -> Result<u64> {
        let keys = match resource {
            Some(r) => self.list_for_resource(r, None).await?,
            None => {
                let global = format!("plugin={}/", self.slug);
                let scoped = format!("/plugin={}/", self.slug);
                self.list_under(String::new())
                    .await?
                    .into_iter()
                    .filter(|k| {
                        k.starts_with(&global)
                            || k.strip_prefix("resource=").is_some_and(|rest| {
                                rest.find('/')
                                    .is_some_and(|at| rest[at..].starts_with(&scoped))
                            })
                    })
                    .collect()
            }
        };
        let failed = self
            .db
            .store
            .delete_many(&keys)
            .await
            .map_err(|e| e.at(&format!("plugin={}/", self.slug)))?;
        if let Some((key, err)) = failed.into_iter().next() {
            return Err(err.at(&key));
        }
        Ok(keys.len() as u64)
    }

    fn sequence(&self, name: &str, options: &PluginSequenceOptions) -> Result<Sequence> {
        let key = self.sequence_key(options.resource.as_deref(), name)?;
        let mut extra = Map::new();
        extra.insert(
            "resourceName".into(),
            options
                .resource
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        Ok(Sequence::at_key(
            self.db.clone(),
            name,
            key,
            SequenceOptions {
                start: options.initial_value,
                increment: options.increment,
                batch_size: 1,
            },
        )?
        .with_clock(self.clock.clone())
        .with_fields(extra))
    }

    /// The next value of plugin sequence `name` (s3db.js `nextSequence`): 1 GET + 1
    /// conditional PUT, no lock object.
    pub async fn next_sequence(&self, name: &str, options: &PluginSequenceOptions) -> Result<i64> {
        self.sequence(name, options)?.next().await
    }

    /// The value the next `next_sequence` returns; `None` before the first.
    pub async fn get_sequence(&self, name: &str, resource: Option<&str>) -> Result<Option<i64>> {
        let options = PluginSequenceOptions {
            resource: resource.map(str::to_string),
            ..Default::default()
        };
        self.sequence(name, &options)?.current().await
    }

    /// Makes `value` the next value handed out (writes `updatedAt` and `resetAt`).
    pub async fn reset_sequence(
        &self,
        name: &str,
        value: i64,
        resource: Option<&str>,
    ) -> Result<()> {
        let options = PluginSequenceOptions {
            resource: resource.map(str::to_string),
            ..Default::default()
        };
        self.sequence(name, &options)?.reset(value).await
    }

    /// Deletes the sequence's value object.
    pub async fn delete_sequence(&self, name: &str, resource: Option<&str>) -> Result<()> {
        let options = PluginSequenceOptions {
            resource: resource.map(str::to_string),
            ..Default::default()
        };
        self.sequence(name, &options)?.delete().await
    }

    fn lock_key(&self, name: &str) -> Result<String> {
        validate_name("lock name", name)?;
        self.key(None, &["locks", name])
    }

    /// Acquires plugin lock `name` at `plugin=<slug>/locks/<name>`; `None` when another
    /// holder keeps it past `timeout`. Create is `If-None-Match: *`; an expired or
    /// unreadable lock is taken over with `If-Match` on the etag read.
    pub async fn acquire_lock(
        &self,
        name: &str,
        options: &PluginLockOptions,
    ) -> Result<Option<PluginLock>> {
        let key = self.lock_key(name)?;
        let token = generate_id(DEFAULT_ID_SIZE);
        let started = Instant::now();
        let mut waits = 0u32;
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now_ms();
            let expires_at = now + options.ttl.as_millis() as i64;
            let mut payload = Map::new();
            payload.insert("workerId".into(), json!(options.worker_id));
            payload.insert("token".into(), json!(token));
            payload.insert("acquiredAt".into(), json!(now));
            payload.insert("_expiresAt".into(), json!(expires_at));
            let body = js_json(&Value::Object(payload));
            let put = |condition: WriteCondition| PutRequest {
                body: Bytes::from(body.clone()),
                content_type: Some(DEFAULT_CONTENT_TYPE.into()),
                condition,
                ..Default::default()
            };
            let handle = |etag: String| PluginLock {
                name: name.to_string(),
                key: key.clone(),
                token: token.clone(),
                worker_id: options.worker_id.clone(),
                expires_at,
                etag,
            };
            match self
                .db
                .store
                .put(&key, put(WriteCondition::IfNoneMatch))
                .await
            {
                Ok(etag) => return Ok(Some(handle(etag))),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {}
                Err(e) => return Err(e.at(&key)),
            }
            let current = match self.db.store.get(&key).await {
                Ok(o) => o,
                // Released meanwhile: try to create it again.
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e.at(&key)),
            };
            if lock_is_free(&current.body, self.clock.now_ms()) {
                let cond = WriteCondition::IfMatch(current.head.etag);
                match self.db.store.put(&key, put(cond)).await {
                    Ok(etag) => return Ok(Some(handle(etag))),
                    // Someone else took it over or released it: look again.
                    Err(StoreError::PreconditionFailed)
                    | Err(StoreError::Conflict)
                    | Err(StoreError::NotFound) => continue,
                    Err(e) => return Err(e.at(&key)),
                }
            }
            if started.elapsed() >= options.timeout {
                return Ok(None);
            }
            waits += 1;
            let backoff = (100u64 << waits.min(4).saturating_sub(1)).min(1000);
            tokio::time::sleep(Duration::from_millis(backoff) + jitter()).await;
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{key}: lock acquisition kept losing races"),
        ))
    }

    /// Releases `lock` if this handle still holds it: GET, then DELETE `If-Match` when the
    /// stored token is ours. `false` when it was taken over or is gone.
    pub async fn release_lock(&self, lock: &PluginLock) -> Result<bool> {
        for _ in 0..MAX_ATTEMPTS {
            let current = match self.db.store.get(&lock.key).await {
                Ok(o) => o,
                Err(StoreError::NotFound) => return Ok(false),
                Err(e) => return Err(e.at(&lock.key)),
            };
            let token = serde_json::from_slice::<Value>(&current.body)
                .ok()
                .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_string));
            if token.as_deref() != Some(lock.token.as_str()) {
                return Ok(false);
            }
            match self
                .db
                .store
                .delete(&lock.key, Some(&current.head.etag))
                .await
            {
                Ok(()) => return Ok(true),
                Err(StoreError::NotFound) => return Ok(false),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.at(&lock.key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: release kept losing races", lock.key),
        ))
    }

    /// Whether plugin lock `name` is held (valid and unexpired); one GET, never a write.
    pub async fn is_locked(&self, name: &str) -> Result<bool> {
        let key = self.lock_key(name)?;
        match self.db.store.get(&key).await {
            Ok(o) => Ok(!lock_is_free(&o.body, self.clock.now_ms())),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.at(&key)),
        }
    }
}

/// A lock object that is unreadable, invalid (s3db.js `isValidLockPayload`) or expired.
fn lock_is_free(body: &[u8], now: i64) -> bool {
    let Ok(Value::Object(lock)) = serde_json::from_slice::<Value>(body) else {
        return true;
    };
    let finite = |v: &Value| v.as_f64().is_some_and(f64::is_finite);
    let valid = lock.get("token").is_some_and(Value::is_string)
        && lock.get("acquiredAt").is_some_and(finite)
        && lock.get("_expiresAt").is_none_or(finite);
    let expired = lock
        .get("_expiresAt")
        .and_then(Value::as_f64)
        .is_some_and(|e| now as f64 > e);
    !valid || expired
}

/// Rejects keys with empty, `.` or `..` segments (s3db.js would resolve or collapse them).
fn check_segments(path: &str) -> Result<()> {
    if path.is_empty() {
        return Err(Error::invalid("plugin storage key must not be empty"));
    }
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(Error::invalid(format!(
                "plugin storage key {path:?} has an empty, '.' or '..' segment"
            )));
        }
        if seg.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "plugin storage key {path:?} contains a control character"
            )));
        }
    }
    Ok(())
}

/// The string s3db.js hands to the metadata encoder: objects, arrays and null as JSON,
/// numbers as `Number#toString`, booleans as `true`/`false`.
fn metadata_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => js_json(v),
        Value::Null | Value::Array(_) | Value::Object(_) => js_json(v),
    }
}

/// (metadata as stored, body) of a document (format.md §13).
fn layout(
    fields: &Map<String, Value>,
    behavior: PluginBehavior,
) -> Result<(Metadata, Option<String>)> {
    let mut metadata = Metadata::new();
    match behavior {
        PluginBehavior::BodyOnly => Ok((metadata, Some(js_json(&Value::Object(fields.clone()))))),
        PluginBehavior::BodyOverflow => {
            let mut sized: Vec<(usize, &String, &Value, String)> = fields
                .iter()
                .map(|(k, v)| {
                    let encoded = encode_header_value(&metadata_string(v));
                    (k.len() + encoded.len(), k, v, encoded)
                })
                .collect();
            // Stable, like Array#sort: equal sizes keep the object's order.
            sized.sort_by_key(|(size, ..)| *size);
            let mut used = 0usize;
            let mut body = Map::new();
            for (size, k, v, encoded) in sized {
                if used + size <= PLUGIN_METADATA_LIMIT {
                    metadata.insert(sanitize_key(k), encoded);
                    used += size;
                } else {
                    body.insert(k.clone(), v.clone());
                }
            }
            let body = (!body.is_empty()).then(|| js_json(&Value::Object(body)));
            Ok((metadata, body))
        }
        PluginBehavior::EnforceLimits => {
            let mut used = 0usize;
            for (k, v) in fields {
                let encoded = encode_header_value(&metadata_string(v));
                used += k.len() + encoded.len();
                if used > PLUGIN_METADATA_LIMIT {
                    let excess = used - PLUGIN_METADATA_LIMIT;
                    return Err(Error::validation(format!(
                        "plugin data exceeds the metadata limit with enforce-limits: \
                         {used} bytes > {PLUGIN_METADATA_LIMIT} (S3 limit {ABSOLUTE_METADATA_LIMIT}, \
                         {excess} over); use body-overflow or body-only"
                    ))
                    .with_details(json!({
                        "totalSize": used,
                        "effectiveLimit": PLUGIN_METADATA_LIMIT,
                        "absoluteLimit": ABSOLUTE_METADATA_LIMIT,
                        "excess": excess,
                        "field": k,
                    })));
                }
                metadata.insert(sanitize_key(k), encoded);
            }
            Ok((metadata, None))
        }
    }
}

/// s3db.js's read of a plugin document: each metadata value decoded (§2.4), then JSON-looking
/// values parsed, numeric strings made numbers, `true`/`false` booleans; a JSON body merged
/// on top.
fn decode_document(key: &str, metadata: &Metadata, body: &[u8]) -> Result<Map<String, Value>> {
    let mut data = Map::new();
    for (k, raw) in metadata {
        let value = match decode_value(raw) {
            None => Value::Null,
            Some(s) => parse_metadata_value(s),
        };
        data.insert(k.clone(), value);
    }
    let text = String::from_utf8_lossy(body);
    if !text.trim().is_empty() {
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(fields)) => data.extend(fields),
            Ok(_) => {
                return Err(Error::corrupt(format!(
                    "{key}: plugin document body is not a JSON object"
                )))
            }
            Err(e) => {
                return Err(Error::corrupt(format!(
                    "{key}: plugin document body is not JSON: {e}"
                )))
            }
        }
    }
    Ok(data)
}

fn parse_metadata_value(s: String) -> Value {
    if (s.starts_with('{') && s.ends_with('}')) || (s.starts_with('[') && s.ends_with(']')) {
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            return v;
        }
    }
    if !s.trim().is_empty() {
        if let Some(n) = js_number_parse(&s) {
            return n;
        }
    }
    match s.as_str() {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s),
    }
}

/// JS `Number(s)` for strings, as a JSON number; `None` for NaN and for ±Infinity (which
/// JSON cannot hold: such strings stay strings).
fn js_number_parse(s: &str) -> Option<Value> {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    let radix = |digits: &str, radix: u32| -> Option<f64> {
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        Some(digits.chars().fold(0f64, |acc, c| {
            acc * radix as f64 + c.to_digit(radix).unwrap_or(0) as f64
        }))
    };
    let lower = t.get(..2).map(str::to_ascii_lowercase);
    let n = match lower.as_deref() {
        Some("0x") => radix(&t[2..], 16)?,
        Some("0o") => radix(&t[2..], 8)?,
        Some("0b") => radix(&t[2..], 2)?,
        _ => {
            if t.is_empty() {
                0.0
            } else if !decimal_literal(t) {
                return None;
            } else {
                t.parse::<f64>().ok()?
            }
        }
    };
    if !n.is_finite() {
        return None;
    }
    if n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_992.0 {
        return Some(json!(n as i64));
    }
    serde_json::Number::from_f64(n).map(Value::Number)
}

/// `StrDecimalLiteral` without `Infinity`: `[+-] (digits [. digits?] | . digits) [e [+-] digits]`.
fn decimal_literal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut mantissa = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        mantissa += digits(&mut i);
    }
    if mantissa == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `_expiresat ?? _expiresAt` when it is a finite, non-zero number (s3db.js's test).
fn expires_at(data: &Map<String, Value>) -> Option<f64> {
    let candidate = match data.get("_expiresat") {
        Some(v) if !v.is_null() => v,
        _ => data.get("_expiresAt")?,
    };
    candidate.as_f64().filter(|e| e.is_finite() && *e != 0.0)
}

/// `JSON.stringify`: integer-like keys first, numbers as `Number#toString`.
pub(crate) fn js_json(v: &Value) -> String {
    let mut out = String::new();
    write_js_json(v, &mut out);
    out
}

fn write_js_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string())
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string())
            } else {
                match n.as_f64().filter(|f| f.is_finite()) {
                    Some(f) => out.push_str(&js_number(f)),
                    None => out.push_str("null"),
                }
            }
        }
        Value::String(s) => out.push_str(&serde_json::to_string(s).expect("json string")),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in js_key_order(map.clone()).iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).expect("json string"));
                out.push(':');
                write_js_json(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_number_parsing() {
        assert_eq!(js_number_parse("42"), Some(json!(42)));
        assert_eq!(js_number_parse(" 1.5 "), Some(json!(1.5)));
        assert_eq!(js_number_parse("0x1A"), Some(json!(26)));
        assert_eq!(js_number_parse("1e3"), Some(json!(1000)));
        assert_eq!(js_number_parse(".5"), Some(json!(0.5)));
        assert_eq!(js_number_parse("5."), Some(json!(5)));
        assert_eq!(js_number_parse("-0"), Some(json!(0)));
        for bad in [
            "abc", "1_0", "Infinity", "NaN", "e5", ".", "1e", "0x", "--1", "inf",
        ] {
            assert_eq!(js_number_parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn js_json_matches_json_stringify() {
        let v = json!({"b": 1.0, "2": [0.1, 1e21, null], "a": {"10": "x", "1": "\n"}});
        assert_eq!(
            js_json(&v),
            r#"{"2":[0.1,1e+21,null],"b":1,"a":{"1":"\n","10":"x"}}"#
        );
    }

    #[test]
    fn segments() {
        assert!(check_segments("plugin=x/a/b").is_ok());
        for bad in ["", "a//b", "a/../b", "./a", "a/", "/a"] {
            assert!(check_segments(bad).is_err(), "{bad}");
        }
    }
}
