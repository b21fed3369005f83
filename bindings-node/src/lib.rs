//! Node.js binding of s3db (napi-rs). No logic lives here: values and errors are converted,
//! async is bridged (every I/O method is a napi `async fn`, i.e. a Promise).
//!
//! Errors: napi-rs drops custom statuses on the way out of `async fn`, so every engine error
//! is encoded as `[s3db:<CODE>] <message>` and the JS layer (`lib.js`) turns the prefix into
//! `err.code` / `err.name`. An error with structured details (a validation error's issues) is
//! encoded as `[s3db:<CODE>;details] <message>\n<details as compact JSON>`: compact JSON never
//! holds a raw newline, so the last newline separates the two. Argument conversions that napi
//! itself rejects (wrong JS types) arrive unprefixed with a napi status and are mapped to
//! `INVALID_ARGUMENT` there.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::{Map, Value};

/// Marks an engine error so that the JS layer can recover its kind (and details).
fn to_js(e: s3db::Error) -> Error {
    let code = e.kind().code();
    let text = match e.details() {
        Some(details) => format!("[s3db:{code};details] {}\n{details}", e.message()),
        None => format!("[s3db:{code}] {}", e.message()),
    };
    Error::new(Status::GenericFailure, text)
}

fn invalid(message: impl Into<String>) -> Error {
    to_js(s3db::Error::invalid(message))
}

/// A JS object (not an array, not a primitive) converted to JSON.
fn plain_object(what: &str, v: Value) -> Result<Value> {
    match v {
        Value::Object(_) => Ok(v),
        Value::Array(_) => Err(invalid(format!("{what} must be an object, got an array"))),
        Value::Null => Err(invalid(format!("{what} must be an object, got null"))),
        other => Err(invalid(format!(
            "{what} must be an object, got {}",
            s3db::schema::type_name(&other)
        ))),
    }
}

/// Seconds from JS (finite, not negative) to a Duration.
fn seconds(what: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| {
        invalid(format!(
            "{what} must be a finite, non-negative number of seconds, got {v}"
        ))
    })
}

/// An integral JS number that a 64-bit integer holds exactly (|v| <= 2^53 - 1).
fn integer(what: &str, v: f64) -> Result<i64> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if v.fract() != 0.0 || !v.is_finite() || v.abs() > MAX_SAFE {
        return Err(invalid(format!("{what} must be a safe integer, got {v}")));
    }
    Ok(v as i64)
}

/// Request counters of the store, by kind.
#[napi(object)]
pub struct Stats {
    pub get: i64,
    pub head: i64,
    pub put: i64,
    pub copy: i64,
    pub delete: i64,
    pub list: i64,
}

impl From<s3db::Stats> for Stats {
    fn from(s: s3db::Stats) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Stats {
            get: n(s.get),
            head: n(s.head),
            put: n(s.put),
            copy: n(s.copy),
            delete: n(s.delete),
            list: n(s.list),
        }
    }
}

/// `createResource` options: s3db.js's, plus the resource name.
#[napi(object)]
pub struct ResourceOptions {
    pub name: String,
    /// `{field: "rule|rule", nested: {…}}` (s3db.js syntax).
    pub attributes: Value,
    /// `user-managed` (default), `enforce-limits`, `truncate-data`, `body-overflow`, `body-only`.
    pub behavior: Option<String>,
    /// Adds `createdAt`/`updatedAt` and their date partitions.
    pub timestamps: Option<bool>,
    /// `{name: {fields: {path: rule}}}` or an array of field names.
    pub partitions: Option<Value>,
    /// Refuses `deleteAll` (default true).
    pub paranoid: Option<bool>,
    /// Length of generated ids (default 22).
    pub id_size: Option<f64>,
    /// Passphrase of this resource's secret fields (never stored).
    pub passphrase: Option<String>,
}

impl ResourceOptions {
    fn into_config(self) -> Result<(String, s3db::ResourceConfig)> {
        let attributes = match plain_object("attributes", self.attributes)? {
            Value::Object(m) => m,
            _ => unreachable!("plain_object returns objects"),
        };
        let mut config = s3db::ResourceConfig {
            attributes,
            passphrase: self.passphrase,
            ..Default::default()
        };
        if let Some(b) = self.behavior {
            config.behavior = b;
        }
        if let Some(t) = self.timestamps {
            config.timestamps = t;
        }
        if let Some(p) = self.partitions {
            if !(p.is_object() || p.is_array()) {
                return Err(invalid(format!(
                    "partitions must be an object or an array of field names, got {}",
                    s3db::schema::type_name(&p)
                )));
            }
            config.partitions = p;
        }
        if let Some(p) = self.paranoid {
            config.paranoid = p;
        }
        if let Some(n) = self.id_size {
            let n = integer("idSize", n)?;
            config.id_size = usize::try_from(n)
                .map_err(|_| invalid(format!("idSize must not be negative, got {n}")))?;
        }
        Ok((self.name, config))
    }
}

#[napi(object)]
pub struct ConnectOptions {
    /// Passphrase of secret fields (s3db.js `security.passphrase`; default `"secret"`).
    pub passphrase: Option<String>,
}

/// Restricts `list`/`listIds`/`count` to a partition's references.
#[napi(object)]
pub struct PartitionOptions {
    pub partition: Option<String>,
    /// `{field: value}` for the partition's leading fields; missing ones match everything.
    pub partition_values: Option<Value>,
}

type PartitionArg = Option<(String, Map<String, Value>)>;

fn partition_arg(o: Option<PartitionOptions>) -> Result<PartitionArg> {
    let Some(o) = o else { return Ok(None) };
    match (o.partition, o.partition_values) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid("partitionValues needs a partition name")),
        (Some(name), values) => {
            let values = match values {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(m)) => m,
                Some(other) => {
                    return Err(invalid(format!(
                        "partitionValues must be an object, got {}",
                        s3db::schema::type_name(&other)
                    )))
                }
            };
            Ok(Some((name, values)))
        }
    }
}

fn partition_ref(p: &PartitionArg) -> Option<(&str, &Map<String, Value>)> {
    p.as_ref().map(|(name, values)| (name.as_str(), values))
}

#[napi(object)]
pub struct PageOptions {
    /// Records per page, 1 to 1000.
    pub size: f64,
    /// The `cursor` of the previous page; absent or null for the first.
    pub cursor: Option<String>,
}

#[napi(object)]
pub struct Page {
    pub items: Vec<Value>,
    /// `null` on the last page.
    pub cursor: Option<String>,
}

#[napi(object)]
pub struct GetManyResult {
    /// The records found, in the order asked.
    pub found: Vec<Value>,
    pub missing: Vec<String>,
}

#[napi(object)]
pub struct RecordWithEtag {
    pub record: Value,
    pub etag: String,
}

#[napi(object)]
pub struct ReindexResult {
    pub written: i64,
    pub deleted: i64,
}

fn count_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Batch results as `[{index, id, record?, error?: {code, message}}]`.
fn batch(items: Vec<s3db::BatchItem>) -> Result<Vec<Value>> {
    items
        .into_iter()
        .map(|i| {
            serde_json::to_value(i)
                .map_err(|e| to_js(s3db::Error::corrupt(format!("batch result: {e}"))))
        })
        .collect()
}

/// Seconds; defaults: ttl 30, timeout 0 (try once).
#[napi(object)]
pub struct LockOptions {
    pub ttl: Option<f64>,
    pub timeout: Option<f64>,
}

#[napi(object)]
pub struct SequenceOptions {
    pub start: Option<f64>,
    pub increment: Option<f64>,
}

fn lock_options(o: Option<LockOptions>) -> Result<s3db::LockOptions> {
    let mut out = s3db::LockOptions::default();
    if let Some(o) = o {
        if let Some(ttl) = o.ttl {
            out.ttl = seconds("ttl", ttl)?;
        }
        if let Some(timeout) = o.timeout {
            out.timeout = seconds("timeout", timeout)?;
        }
    }
    Ok(out)
}

#[napi(js_name = "NativeDatabase")]
pub struct Database {
    inner: s3db::Database,
}

#[napi]
impl Database {
    /// Connects to `memory://`, `file://`, `s3://` or `http(s)://` storage.
    #[napi]
    pub async fn connect(url: String, options: Option<ConnectOptions>) -> Result<Database> {
        let options = s3db::ConnectOptions {
            passphrase: options.and_then(|o| o.passphrase),
        };
        let inner = s3db::Database::connect_with(&url, options)
            .await
            .map_err(to_js)?;
        Ok(Database { inner })
    }

    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    #[napi]
    pub async fn create_resource(&self, options: ResourceOptions) -> Result<Resource> {
        let (name, config) = options.into_config()?;
        let inner = self
            .inner
            .create_resource_with(&name, config)
            .await
            .map_err(to_js)?;
        Ok(Resource { inner })
    }

    #[napi]
    pub async fn resource(&self, name: String) -> Result<Resource> {
        let inner = self.inner.resource(&name).await.map_err(to_js)?;
        Ok(Resource { inner })
    }

    #[napi]
    pub async fn list_resources(&self) -> Vec<String> {
        self.inner.list_resources().await
    }

    #[napi]
    pub fn stats(&self) -> Stats {
        self.inner.stats().into()
    }

    #[napi]
    pub fn reset_stats(&self) {
        self.inner.reset_stats()
    }

    #[napi(getter)]
    pub fn holder_id(&self) -> String {
        self.inner.holder_id().to_string()
    }

    #[napi]
    pub async fn lock(&self, name: String, options: Option<LockOptions>) -> Result<Lock> {
        let options = lock_options(options)?;
        let inner = self.inner.lock(&name, options).await.map_err(to_js)?;
        Ok(Lock { inner })
    }

    /// No I/O: the counter object is read on the first `next`/`current`.
    #[napi]
    pub fn sequence(&self, name: String, options: Option<SequenceOptions>) -> Result<Sequence> {
        let mut opts = s3db::SequenceOptions::default();
        if let Some(o) = options {
            if let Some(start) = o.start {
                opts.start = integer("start", start)?;
            }
            if let Some(increment) = o.increment {
                opts.increment = integer("increment", increment)?;
            }
        }
        let inner = self.inner.sequence_with(&name, opts).map_err(to_js)?;
        Ok(Sequence { inner })
    }
}

#[napi(js_name = "NativeResource")]
pub struct Resource {
    inner: s3db::Resource,
}

#[napi]
impl Resource {
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[napi]
    pub async fn insert(&self, data: Value) -> Result<Value> {
        let data = plain_object("record", data)?;
        self.inner.insert(data).await.map_err(to_js)
    }

    #[napi]
    pub async fn get(&self, id: String) -> Result<Value> {
        self.inner.get(&id).await.map_err(to_js)
    }

    #[napi]
    pub async fn get_or_null(&self, id: String) -> Result<Option<Value>> {
        self.inner.get_or_none(&id).await.map_err(to_js)
    }

    #[napi]
    pub async fn exists(&self, id: String) -> Result<bool> {
        self.inner.exists(&id).await.map_err(to_js)
    }

    #[napi]
    pub async fn update(&self, id: String, changes: Value) -> Result<Value> {
        let changes = plain_object("changes", changes)?;
        self.inner.update(&id, changes).await.map_err(to_js)
    }

    #[napi]
    pub async fn delete(&self, id: String) -> Result<()> {
        self.inner.delete(&id).await.map_err(to_js)
    }

    #[napi]
    pub async fn insert_many(&self, items: Vec<Value>) -> Result<Vec<Value>> {
        for (i, item) in items.iter().enumerate() {
            if !item.is_object() {
                return Err(invalid(format!(
                    "insertMany: item {i} must be an object, got {}",
                    s3db::schema::type_name(item)
                )));
            }
        }
        batch(self.inner.insert_many(items).await)
    }

    #[napi]
    pub async fn get_many(&self, ids: Vec<String>) -> Result<GetManyResult> {
        let (found, missing) = self.inner.get_many(&ids).await.map_err(to_js)?;
        Ok(GetManyResult { found, missing })
    }

    #[napi]
    pub async fn get_with_etag(&self, id: String) -> Result<RecordWithEtag> {
        let (record, etag) = self.inner.get_with_etag(&id).await.map_err(to_js)?;
        Ok(RecordWithEtag { record, etag })
    }

    #[napi]
    pub async fn update_if(&self, id: String, changes: Value, etag: String) -> Result<Value> {
        let changes = plain_object("changes", changes)?;
        self.inner
            .update_if(&id, changes, &etag)
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn replace(&self, id: String, data: Value) -> Result<Value> {
        let data = plain_object("record", data)?;
        self.inner.replace(&id, data).await.map_err(to_js)
    }

    #[napi]
    pub async fn upsert(&self, data: Value) -> Result<Value> {
        let data = plain_object("record", data)?;
        self.inner.upsert(data).await.map_err(to_js)
    }

    #[napi]
    pub async fn patch(&self, id: String, changes: Value) -> Result<Value> {
        let changes = plain_object("changes", changes)?;
        self.inner.patch(&id, changes).await.map_err(to_js)
    }

    #[napi]
    pub async fn delete_many(&self, ids: Vec<String>) -> Result<Vec<Value>> {
        batch(self.inner.delete_many(&ids).await)
    }

    /// Number of records deleted; refused for paranoid resources.
    #[napi]
    pub async fn delete_all(&self) -> Result<i64> {
        let n = self.inner.delete_all().await.map_err(to_js)?;
        Ok(count_of(n))
    }

    #[napi]
    pub async fn list_ids(&self, options: Option<PartitionOptions>) -> Result<Vec<String>> {
        let partition = partition_arg(options)?;
        self.inner
            .list_ids_in(partition_ref(&partition))
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn list(&self, options: Option<PartitionOptions>) -> Result<Vec<Value>> {
        let partition = partition_arg(options)?;
        self.inner
            .list_in(partition_ref(&partition))
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn count(&self, options: Option<PartitionOptions>) -> Result<i64> {
        let partition = partition_arg(options)?;
        let n = self
            .inner
            .count_in(partition_ref(&partition))
            .await
            .map_err(to_js)?;
        Ok(count_of(n))
    }

    #[napi]
    pub async fn page(&self, options: PageOptions) -> Result<Page> {
        let size = integer("page size", options.size)?;
        let size = usize::try_from(size)
            .map_err(|_| invalid(format!("page size must be between 1 and 1000, got {size}")))?;
        let page = self
            .inner
            .page(size, options.cursor.as_deref())
            .await
            .map_err(to_js)?;
        Ok(Page {
            items: page.items,
            cursor: page.cursor,
        })
    }

    /// Records matching a filter (`$eq $ne $gt $gte $lt $lte $in $nin $exists`, dotted paths).
    #[napi]
    pub async fn query(&self, filter: Value) -> Result<Vec<Value>> {
        let filter = plain_object("filter", filter)?;
        self.inner.query(&filter).await.map_err(to_js)
    }

    /// Rebuilds the references of one partition (or all).
    #[napi]
    pub async fn reindex(&self, partition: Option<String>) -> Result<ReindexResult> {
        let (written, deleted) = self
            .inner
            .reindex(partition.as_deref())
            .await
            .map_err(to_js)?;
        Ok(ReindexResult {
            written: count_of(written),
            deleted: count_of(deleted),
        })
    }
}

#[napi(js_name = "NativeLock")]
pub struct Lock {
    inner: s3db::Lock,
}

#[napi]
impl Lock {
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[napi(getter)]
    pub fn fencing_token(&self) -> i64 {
        i64::try_from(self.inner.fencing_token()).unwrap_or(i64::MAX)
    }

    #[napi(getter)]
    pub fn holder_id(&self) -> String {
        self.inner.holder_id().to_string()
    }

    /// Milliseconds since the epoch.
    #[napi]
    pub async fn expires_at(&self) -> i64 {
        self.inner.expires_at().await
    }

    /// Pushes the expiry to now + `ttl` seconds.
    #[napi]
    pub async fn extend(&self, ttl: f64) -> Result<()> {
        let ttl = seconds("ttl", ttl)?;
        self.inner.extend(ttl).await.map_err(to_js)
    }

    #[napi]
    pub async fn release(&self) -> Result<()> {
        self.inner.release().await.map_err(to_js)
    }
}

#[napi(js_name = "NativeSequence")]
pub struct Sequence {
    inner: s3db::Sequence,
}

#[napi]
impl Sequence {
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[napi]
    pub async fn next(&self) -> Result<i64> {
        self.inner.next().await.map_err(to_js)
    }

    /// The value the next `next()` returns; `null` before the first.
    #[napi]
    pub async fn current(&self) -> Result<Option<i64>> {
        self.inner.current().await.map_err(to_js)
    }

    /// Makes `value` the next value handed out.
    #[napi]
    pub async fn reset(&self, value: f64) -> Result<()> {
        let value = integer("value", value)?;
        self.inner.reset(value).await.map_err(to_js)
    }
}
