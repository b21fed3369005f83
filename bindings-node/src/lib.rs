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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use serde_json::{json, Map, Value};
use tokio::sync::broadcast;

mod generated;

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

/// Every item of a list argument of `op` is a JS object.
fn object_list(op: &str, items: &[Value]) -> Result<()> {
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(invalid(format!(
                "{op}: item {i} must be an object, got {}",
                s3db::schema::type_name(item)
            )));
        }
    }
    Ok(())
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
    /// s3db.js `idGenerator`: an id size, `"incremental[:…]"` or `{type: "incremental", …}`
    /// (a JS function is applied by the JS layer and never reaches this side).
    pub id_generator: Option<Value>,
    /// The resource's hooks; the JS layer keeps the functions and passes descriptors.
    pub hooks: Option<Vec<HookSpec>>,
}

/// One JS hook function, kept by the JS layer at `index` in its list for the resource.
#[napi(object)]
pub struct HookSpec {
    pub event: String,
    /// The function's name (`null` when anonymous), for the catalog summary.
    pub name: Option<String>,
    /// The function's arity (`fn.length`).
    pub length: u32,
    pub index: u32,
}

/// What the JS hook dispatcher gets: which function, and the value to pass it.
#[napi(object)]
pub struct HookCall {
    pub resource: String,
    pub index: u32,
    pub value: Value,
}

/// `({resource, index, value}) => Promise<value>`, weak: it never keeps the process alive.
type HookDispatcher = ThreadsafeFunction<HookCall, Promise<Value>, HookCall, Status, false, true>;

fn js_hook(dispatch: Arc<HookDispatcher>, resource: &str, spec: &HookSpec) -> s3db::Hook {
    let resource = resource.to_string();
    let index = spec.index;
    let name = spec.name.clone().filter(|n| !n.is_empty());
    s3db::Hook::new(name, spec.length, move |value| {
        let dispatch = dispatch.clone();
        let call = HookCall {
            resource: resource.clone(),
            index,
            value,
        };
        Box::pin(async move {
            let failed = |e: Error| s3db::Error::validation(e.reason.clone());
            let promise = dispatch.call_async(call).await.map_err(failed)?;
            promise.await.map_err(failed)
        })
    })
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
            id_generator: self.id_generator.filter(|v| !v.is_null()),
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

impl From<s3db::api::FoundMissing> for GetManyResult {
    fn from(m: s3db::api::FoundMissing) -> Self {
        GetManyResult {
            found: m.found,
            missing: m.missing,
        }
    }
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
    /// Values reserved per compare-and-swap (fast mode above 1; gaps possible).
    pub batch_size: Option<f64>,
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
    hooks: Arc<std::sync::Mutex<Option<Arc<HookDispatcher>>>>,
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
        Ok(Database {
            inner,
            hooks: Default::default(),
        })
    }

    /// The JS function every hook of this database's resources goes through.
    #[napi]
    pub fn set_hook_dispatcher(&self, dispatch: HookDispatcher) {
        *self.hooks.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(dispatch));
    }

    fn wrap(&self, inner: s3db::Resource) -> Resource {
        let hooks = self.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Resource { inner, hooks }
    }

    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    #[napi]
    pub async fn create_resource(&self, mut options: ResourceOptions) -> Result<Resource> {
        let specs = options.hooks.take().unwrap_or_default();
        let (name, config) = options.into_config()?;
        let hooks = s3db::Hooks::default();
        if !specs.is_empty() {
            let dispatch = self
                .hooks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .ok_or_else(|| invalid("this database has no hook dispatcher"))?;
            for spec in &specs {
                let hook = js_hook(dispatch.clone(), &name, spec);
                hooks.add(&spec.event, hook).map_err(to_js)?;
            }
        }
        let inner = self
            .inner
            .create_resource_with_hooks(&name, config, hooks)
            .await
            .map_err(to_js)?;
        Ok(self.wrap(inner))
    }

    #[napi]
    pub async fn resource(&self, name: String) -> Result<Resource> {
        let inner = self.inner.resource(&name).await.map_err(to_js)?;
        Ok(self.wrap(inner))
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
        let o_batch = options.as_ref().and_then(|o| o.batch_size);
        if let Some(o) = options {
            if let Some(start) = o.start {
                opts.start = integer("start", start)?;
            }
            if let Some(increment) = o.increment {
                opts.increment = integer("increment", increment)?;
            }
        }
        if let Some(b) = o_batch {
            opts.batch_size = u32::try_from(integer("batchSize", b)?).map_err(|_| {
                invalid(format!(
                    "batchSize must be between 0 and {}, got {b}",
                    u32::MAX
                ))
            })?;
        }
        let inner = self.inner.sequence_with(&name, opts).map_err(to_js)?;
        Ok(Sequence { inner })
    }

    /// Names of the stored sequences (`sequences/<name>/value`), in key order.
    #[napi]
    pub async fn list_sequences(&self) -> Result<Vec<String>> {
        self.inner.list_sequences().await.map_err(to_js)
    }

    /// Whether someone holds the lock now (not released, not expired). One GET.
    #[napi]
    pub async fn is_locked(&self, name: String) -> Result<bool> {
        self.inner.is_locked(&name).await.map_err(to_js)
    }

    /// The current holder of the lock; `null` when it is free. One GET.
    #[napi]
    pub async fn lock_info(&self, name: String) -> Result<Option<LockInfo>> {
        let info = self.inner.lock_info(&name).await.map_err(to_js)?;
        Ok(info.map(|i| LockInfo {
            holder_id: i.holder_id,
            fencing_token: token_of(i.fencing_token),
            acquired_at: i.acquired_at,
            expires_at: i.expires_at,
        }))
    }

    /// Writes `value` to the fenced object `name` unless a higher token already wrote it
    /// (LOCK_LOST). Returns the new version (etag).
    #[napi]
    pub async fn fenced_put(
        &self,
        name: String,
        value: Value,
        fencing_token: f64,
    ) -> Result<String> {
        let token = fencing_token_arg(fencing_token)?;
        self.inner
            .fenced_put(&name, &value, token)
            .await
            .map_err(to_js)
    }

    /// The fenced object `name`: its value and the highest token that wrote it.
    #[napi]
    pub async fn fenced_get(&self, name: String) -> Result<Option<Fenced>> {
        let f = self.inner.fenced_get(&name).await.map_err(to_js)?;
        Ok(f.map(Fenced::from))
    }

    /// s3db.js `PluginStorage` of plugin `slug` (no I/O).
    #[napi]
    pub fn plugin_storage(&self, slug: String) -> Result<PluginStorage> {
        let inner = self.inner.plugin_storage(&slug).map_err(to_js)?;
        Ok(PluginStorage { inner })
    }

    /// The distributed state of `namespace` (no I/O).
    #[napi]
    pub fn state(&self, namespace: String) -> Result<State> {
        let inner = self.inner.state(&namespace).map_err(to_js)?;
        Ok(State { inner })
    }

    /// A worker of the leader election of `namespace` (no I/O until `start`).
    #[napi]
    pub fn coordinator(
        &self,
        namespace: String,
        options: Option<CoordinatorOptions>,
    ) -> Result<Coordinator> {
        let options = coordinator_options(options)?;
        let inner = self.inner.coordinator(&namespace, options).map_err(to_js)?;
        // Subscribed before `start`, whose first round may already elect this worker.
        let events = inner.subscribe();
        Ok(Coordinator {
            inner,
            events: tokio::sync::Mutex::new(events),
            closed: AtomicBool::new(true),
            wake: tokio::sync::Notify::new(),
        })
    }

    /// What catalog healing repaired when this handle connected: one line per repair.
    #[napi]
    pub fn healing_log(&self) -> Vec<String> {
        self.inner.healing_log()
    }
}

#[napi(js_name = "NativeResource")]
pub struct Resource {
    inner: s3db::Resource,
    hooks: Option<Arc<HookDispatcher>>,
}

#[napi]
impl Resource {
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    #[napi]
    pub async fn get_or_null(&self, id: String) -> Result<Option<Value>> {
        self.inner.get_or_none(&id).await.map_err(to_js)
    }

    #[napi]
    pub async fn get_with_etag(&self, id: String) -> Result<RecordWithEtag> {
        let (record, etag) = self.inner.get_with_etag(&id).await.map_err(to_js)?;
        Ok(RecordWithEtag { record, etag })
    }

    /// s3db.js `addPluginAttribute(name, definition, pluginName)`: the plugin map after it.
    #[napi]
    pub async fn add_plugin_attribute(
        &self,
        name: String,
        definition: Value,
        plugin_name: String,
    ) -> Result<Value> {
        if !(definition.is_string() || definition.is_object()) {
            return Err(invalid(format!(
                "a plugin attribute definition is a rule string or an object, got {}",
                s3db::schema::type_name(&definition)
            )));
        }
        self.inner
            .add_plugin_attribute(&name, &definition, &plugin_name)
            .await
            .map(Value::Object)
            .map_err(to_js)
    }

    #[napi]
    pub async fn remove_plugin_attribute(&self, name: String, plugin_name: String) -> Result<bool> {
        self.inner
            .remove_plugin_attribute(&name, &plugin_name)
            .await
            .map_err(to_js)
    }

    /// Plugin-owned attributes and their metadata keys.
    #[napi(getter)]
    pub fn plugin_map(&self) -> Value {
        Value::Object(self.inner.plugin_map())
    }

    /// Registers the JS hook at `index` of the JS layer's list for this resource.
    #[napi]
    pub fn add_hook(&self, spec: HookSpec) -> Result<()> {
        let dispatch = self
            .hooks
            .clone()
            .ok_or_else(|| invalid("this database has no hook dispatcher"))?;
        let hook = js_hook(dispatch, self.inner.name(), &spec);
        self.inner.add_hook(&spec.event, hook).map_err(to_js)
    }

    /// s3db.js `updateConditional`: the updated record and its new etag.
    #[napi]
    pub async fn update_conditional(
        &self,
        id: String,
        changes: Value,
        if_match: String,
    ) -> Result<RecordWithEtag> {
        let changes = plain_object("changes", changes)?;
        let (record, etag) = self
            .inner
            .update_conditional(&id, changes, &if_match)
            .await
            .map_err(to_js)?;
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

    /// Inserts a record whose object body is binary `content` (s3db.js `insert(data, {content})`).
    #[napi]
    pub async fn insert_with_content(
        &self,
        data: Value,
        content: Buffer,
        content_type: Option<String>,
    ) -> Result<Value> {
        let data = plain_object("record", data)?;
        let content_type = content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        self.inner
            .insert_with_content(data, content.to_vec().into(), &content_type)
            .await
            .map_err(to_js)
    }

    /// Sets (`content` a Buffer) or removes (`null`) a record's binary content.
    #[napi]
    pub async fn set_content(
        &self,
        id: String,
        content: Option<Buffer>,
        content_type: Option<String>,
    ) -> Result<()> {
        let content_type = content_type.unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_string());
        let content = content.map(|c| (c.to_vec().into(), content_type.as_str()));
        self.inner.set_content(&id, content).await.map_err(to_js)
    }

    /// The record's binary content and its type; NOT_FOUND when it has none.
    #[napi]
    pub async fn content(&self, id: String) -> Result<Content> {
        let (bytes, content_type) = self.inner.content(&id).await.map_err(to_js)?;
        Ok(Content {
            content: bytes.to_vec().into(),
            content_type,
        })
    }

    /// The sequence behind an incremental `idGenerator`; `null` otherwise.
    #[napi]
    pub fn id_sequence(&self) -> Option<Sequence> {
        self.inner
            .id_sequence()
            .cloned()
            .map(|inner| Sequence { inner })
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

    /// The ttl the lock was acquired with, in seconds.
    #[napi(getter)]
    pub fn ttl(&self) -> f64 {
        self.inner.ttl().as_secs_f64()
    }

    /// True once this handle learnt that it no longer holds the lock.
    #[napi(getter)]
    pub fn is_lost(&self) -> bool {
        self.inner.is_lost()
    }

    /// Renews the lock every ttl/3 in the background. When renewal fails for good,
    /// `on_lost` gets the encoded error (`[s3db:CODE] message`). The callback does not keep
    /// the process alive.
    #[napi]
    pub fn auto_renew(&self, on_lost: Option<OnLostCallback>) -> Result<()> {
        let on_lost = on_lost.map(Arc::new);
        self.inner
            .auto_renew(move |e| {
                if let Some(cb) = &on_lost {
                    cb.call(to_js(e).reason, ThreadsafeFunctionCallMode::NonBlocking);
                }
            })
            .map_err(to_js)
    }

    #[napi]
    pub fn stop_renewing(&self) {
        self.inner.stop_renewing()
    }

    /// Writes protected data under this lock's fencing token; LOCK_LOST when the handle
    /// is released or lost, or a higher token already wrote it. Returns the new version.
    #[napi]
    pub async fn guarded_put(&self, name: String, value: Value) -> Result<String> {
        self.inner.guarded_put(&name, &value).await.map_err(to_js)
    }
}

/// `(encoded error) => void`, weak: it never keeps the process alive.
type OnLostCallback = ThreadsafeFunction<String, (), String, Status, false, true>;

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

    /// Deletes the stored counter; the next `next()` starts again at `start`.
    #[napi]
    pub async fn delete(&self) -> Result<()> {
        self.inner.delete().await.map_err(to_js)
    }
}

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A 64-bit token as a JS number (tokens never get near 2^53 in practice).
fn token_of(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn fencing_token_arg(v: f64) -> Result<u64> {
    let t = integer("fencingToken", v)?;
    u64::try_from(t).map_err(|_| invalid(format!("fencingToken must not be negative, got {t}")))
}

/// Who holds a lock (times in milliseconds since the epoch).
#[napi(object)]
pub struct LockInfo {
    pub holder_id: String,
    pub fencing_token: i64,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// A value written under a fencing token.
#[napi(object)]
pub struct Fenced {
    pub value: Value,
    /// The highest token that wrote this object.
    pub fencing_token: i64,
    /// The object's version (etag).
    pub version: String,
}

impl From<s3db::Fenced> for Fenced {
    fn from(f: s3db::Fenced) -> Self {
        Fenced {
            value: f.value,
            fencing_token: token_of(f.fencing_token),
            version: f.version,
        }
    }
}

/// A record's binary content.
#[napi(object)]
pub struct Content {
    pub content: Buffer,
    pub content_type: String,
}

// ---------------------------------------------------------------------------------------
// Distributed state

#[napi(object)]
pub struct StateEntry {
    pub value: Value,
    pub version: String,
    /// Milliseconds since the epoch; absent when the entry never expires.
    pub expires_at: Option<i64>,
}

impl From<s3db::StateEntry> for StateEntry {
    fn from(e: s3db::StateEntry) -> Self {
        StateEntry {
            value: e.value,
            version: e.version,
            expires_at: e.expires_at,
        }
    }
}

#[napi(object)]
pub struct CasResult {
    pub swapped: bool,
    /// What is stored now (the value written when swapped); absent when the key is absent.
    pub current_value: Option<Value>,
    pub current_version: Option<String>,
}

/// `(current value or null) => Promise<new value>` (the JS layer always passes an async
/// function).
type UpdateCallback = ThreadsafeFunction<Value, Promise<Value>, Value, Status, false>;

#[napi(js_name = "NativeState")]
pub struct State {
    inner: s3db::StateStore,
}

fn optional_ttl(ttl: Option<f64>) -> Result<Option<Duration>> {
    ttl.map(|t| seconds("ttl", t)).transpose()
}

fn counter_step(by: Option<f64>) -> Result<i64> {
    by.map(|b| integer("by", b))
        .transpose()
        .map(|b| b.unwrap_or(1))
}

#[napi]
impl State {
    #[napi(getter)]
    pub fn namespace(&self) -> String {
        self.inner.namespace().to_string()
    }

    /// The live entry; `null` when absent or expired. One GET.
    #[napi]
    pub async fn get(&self, key: String) -> Result<Option<StateEntry>> {
        let e = self.inner.get(&key).await.map_err(to_js)?;
        Ok(e.map(StateEntry::from))
    }

    /// Stores `value` (last writer wins), expiring after `ttl` seconds if given. Returns
    /// the new version.
    #[napi]
    pub async fn set(&self, key: String, value: Value, ttl: Option<f64>) -> Result<String> {
        let ttl = optional_ttl(ttl)?;
        self.inner.set(&key, value, ttl).await.map_err(to_js)
    }

    /// Read-modify-write by compare-and-swap: `f` runs again when another writer got there
    /// first; the entry keeps its expiry. Returns what was written.
    #[napi]
    pub async fn update(&self, key: String, f: UpdateCallback) -> Result<StateEntry> {
        let f = Arc::new(f);
        let entry = self
            .inner
            .update(&key, |current| {
                let arg = current.unwrap_or(Value::Null);
                let f = f.clone();
                // The engine's closure is synchronous: wait for the JS function on this
                // worker, handing the worker's other tasks to another thread meanwhile.
                let handle = tokio::runtime::Handle::current();
                tokio::task::block_in_place(move || {
                    handle.block_on(async move { f.call_async_catch(arg).await?.await })
                })
                .map_err(|e| {
                    s3db::Error::invalid(format!("state update function failed: {}", e.reason))
                })
            })
            .await
            .map_err(to_js)?;
        Ok(entry.into())
    }

    /// Writes `value` only if the entry is still at `expectedVersion` (`null`: only if the
    /// key is absent or expired). A lost race is `swapped: false` with what is there now.
    #[napi]
    pub async fn compare_and_swap(
        &self,
        key: String,
        expected_version: Option<String>,
        value: Value,
    ) -> Result<CasResult> {
        let r = self
            .inner
            .compare_and_swap(&key, expected_version.as_deref(), value)
            .await
            .map_err(to_js)?;
        Ok(CasResult {
            swapped: r.swapped,
            current_value: r.current_value,
            current_version: r.current_version,
        })
    }

    #[napi]
    pub async fn delete(&self, key: String) -> Result<()> {
        self.inner.delete(&key).await.map_err(to_js)
    }

    /// Adds `by` (default 1) to the counter; returns the new value.
    #[napi]
    pub async fn increment(&self, key: String, by: Option<f64>) -> Result<i64> {
        let by = counter_step(by)?;
        self.inner.increment(&key, by).await.map_err(to_js)
    }

    /// Subtracts `by` (default 1) from the counter; returns the new value.
    #[napi]
    pub async fn decrement(&self, key: String, by: Option<f64>) -> Result<i64> {
        let by = counter_step(by)?;
        self.inner.decrement(&key, by).await.map_err(to_js)
    }

    /// The counter's value (0 when absent or expired).
    #[napi]
    pub async fn counter(&self, key: String) -> Result<i64> {
        self.inner.counter(&key).await.map_err(to_js)
    }

    /// Sets the counter back to 0 (deletes it).
    #[napi]
    pub async fn reset(&self, key: String) -> Result<()> {
        self.inner.reset(&key).await.map_err(to_js)
    }

    /// Keys of this namespace in byte order (expired ones included).
    #[napi]
    pub async fn keys(&self) -> Result<Vec<String>> {
        self.inner.keys().await.map_err(to_js)
    }
}

// ---------------------------------------------------------------------------------------
// Coordinator

/// Seconds (like lock ttls). Setting `heartbeatInterval` scales the defaults of the others
/// to it (the engine's `CoordinatorOptions::with_heartbeat`); the others override.
#[napi(object)]
pub struct CoordinatorOptions {
    pub heartbeat_interval: Option<f64>,
    pub lease_timeout: Option<f64>,
    pub worker_timeout: Option<f64>,
    pub startup_jitter: Option<f64>,
    pub step_down_margin: Option<f64>,
    pub circuit_breaker_threshold: Option<f64>,
    pub circuit_breaker_cooldown: Option<f64>,
    /// `timestamp` (oldest start wins, the default) or `alphabetical`.
    pub strategy: Option<String>,
    pub pod: Option<String>,
}

fn coordinator_options(o: Option<CoordinatorOptions>) -> Result<s3db::CoordinatorOptions> {
    let Some(o) = o else {
        return Ok(s3db::CoordinatorOptions::default());
    };
    let mut out = match o.heartbeat_interval {
        Some(h) => s3db::CoordinatorOptions::with_heartbeat(seconds("heartbeatInterval", h)?),
        None => s3db::CoordinatorOptions::default(),
    };
    if let Some(v) = o.lease_timeout {
        out.lease_timeout = seconds("leaseTimeout", v)?;
    }
    if let Some(v) = o.worker_timeout {
        out.worker_timeout = seconds("workerTimeout", v)?;
    }
    if let Some(v) = o.startup_jitter {
        out.startup_jitter = seconds("startupJitter", v)?;
    }
    if let Some(v) = o.step_down_margin {
        out.step_down_margin = seconds("stepDownMargin", v)?;
    }
    if let Some(v) = o.circuit_breaker_cooldown {
        out.circuit_breaker_cooldown = seconds("circuitBreakerCooldown", v)?;
    }
    if let Some(v) = o.circuit_breaker_threshold {
        let n = integer("circuitBreakerThreshold", v)?;
        out.circuit_breaker_threshold = u32::try_from(n).map_err(|_| {
            invalid(format!(
                "circuitBreakerThreshold must be between 1 and {}, got {n}",
                u32::MAX
            ))
        })?;
    }
    if let Some(s) = o.strategy {
        out.strategy = s.parse().map_err(to_js)?;
    }
    out.pod = o.pod;
    Ok(out)
}

/// `{type, …payload}` with the JS event names.
fn event_json(ev: s3db::CoordinatorEvent) -> Value {
    use s3db::CoordinatorEvent as E;
    match ev {
        E::LeaderChanged { leader_id, epoch } => {
            json!({"type": "leaderChanged", "leaderId": leader_id, "epoch": epoch})
        }
        E::BecameLeader { epoch } => json!({"type": "becameLeader", "epoch": epoch}),
        E::LostLeadership { epoch } => json!({"type": "lostLeadership", "epoch": epoch}),
        E::CircuitOpened { failures } => json!({"type": "circuitOpened", "failures": failures}),
        E::CircuitClosed => json!({"type": "circuitClosed"}),
    }
}

#[napi(object)]
pub struct LeaderInfo {
    pub leader_id: String,
    pub epoch: i64,
    /// Milliseconds since the epoch.
    pub lease_end: i64,
}

#[napi(object)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub pod: Option<String>,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    /// Milliseconds since the epoch.
    pub last_heartbeat: i64,
}

#[napi(object)]
pub struct CoordinatorMetrics {
    pub heartbeats: i64,
    pub renewals: i64,
    pub elections: i64,
    pub leader_changes: i64,
    pub storage_failures: i64,
    pub heartbeat_p50_ms: f64,
    pub heartbeat_p99_ms: f64,
}

/// The election worker. Events reach JS through `nextEvent()`, which the JS layer polls
/// from `start()` to `stop()`; `closeEvents()` ends a pending poll so that nothing keeps
/// the process alive after `stop()`.
#[napi(js_name = "NativeCoordinator")]
pub struct Coordinator {
    inner: s3db::Coordinator,
    events: tokio::sync::Mutex<broadcast::Receiver<s3db::CoordinatorEvent>>,
    /// Set by `closeEvents`: `nextEvent` returns what is buffered, then `null`, never waits.
    closed: AtomicBool,
    wake: tokio::sync::Notify,
}

#[napi]
impl Coordinator {
    #[napi(getter)]
    pub fn worker_id(&self) -> String {
        self.inner.worker_id().to_string()
    }

    #[napi(getter)]
    pub fn namespace(&self) -> String {
        self.inner.namespace().to_string()
    }

    #[napi]
    pub async fn start(&self) -> Result<()> {
        self.inner.start().await.map_err(to_js)
    }

    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.inner.stop().await.map_err(to_js)
    }

    #[napi]
    pub async fn is_running(&self) -> bool {
        self.inner.is_running().await
    }

    #[napi]
    pub fn is_leader(&self) -> bool {
        self.inner.is_leader()
    }

    /// The epoch of the lease this worker holds, while it leads; else `null`.
    #[napi]
    pub fn fencing_token(&self) -> Option<i64> {
        self.inner.fencing_token().map(token_of)
    }

    #[napi]
    pub fn get_leader(&self) -> Option<LeaderInfo> {
        self.inner.get_leader().map(|l| LeaderInfo {
            leader_id: l.leader_id,
            epoch: token_of(l.epoch),
            lease_end: l.lease_end,
        })
    }

    #[napi]
    pub async fn active_workers(&self) -> Result<Vec<WorkerInfo>> {
        let workers = self.inner.active_workers().await.map_err(to_js)?;
        Ok(workers
            .into_iter()
            .map(|w| WorkerInfo {
                worker_id: w.worker_id,
                pod: w.pod,
                start_time: w.start_time,
                last_heartbeat: w.last_heartbeat,
            })
            .collect())
    }

    #[napi]
    pub fn metrics(&self) -> CoordinatorMetrics {
        let m = self.inner.metrics();
        CoordinatorMetrics {
            heartbeats: count_of(m.heartbeats),
            renewals: count_of(m.renewals),
            elections: count_of(m.elections),
            leader_changes: count_of(m.leader_changes),
            storage_failures: count_of(m.storage_failures),
            heartbeat_p50_ms: m.heartbeat_p50_ms,
            heartbeat_p99_ms: m.heartbeat_p99_ms,
        }
    }

    /// Lets `nextEvent` wait for events again.
    #[napi]
    pub fn open_events(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    /// Makes a pending and every later `nextEvent` return the buffered events, then `null`.
    #[napi]
    pub fn close_events(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    /// The next event (`{type, …}`); `null` once the events are closed and drained.
    #[napi]
    pub async fn next_event(&self) -> Option<Value> {
        let mut rx = self.events.lock().await;
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.closed.load(Ordering::SeqCst) {
                loop {
                    match rx.try_recv() {
                        Ok(ev) => return Some(event_json(ev)),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    }
                }
            }
            tokio::select! {
                biased;
                r = rx.recv() => match r {
                    Ok(ev) => return Some(event_json(ev)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = &mut notified => continue,
            }
        }
    }
}

/// `set` options (s3db.js `PluginStorage.set`).
#[napi(object)]
pub struct PluginSetOptions {
    /// `body-overflow` (default), `body-only` or `enforce-limits`.
    pub behavior: Option<String>,
    /// Seconds until the document expires.
    pub ttl: Option<f64>,
    pub content_type: Option<String>,
    /// Write only over this version (etag).
    pub if_match: Option<String>,
    /// Write only if the key is absent.
    pub if_none_match: Option<bool>,
}

#[napi(object)]
pub struct PluginDocument {
    pub data: Value,
    pub version: String,
}

/// A plugin lock as s3db.js's PluginStorage hands it out.
#[napi(object)]
pub struct PluginLockHandle {
    pub name: String,
    pub key: String,
    pub token: String,
    pub worker_id: String,
    /// Epoch milliseconds.
    pub expires_at: f64,
    pub etag: String,
}

impl From<s3db::PluginLock> for PluginLockHandle {
    fn from(l: s3db::PluginLock) -> Self {
        PluginLockHandle {
            name: l.name,
            key: l.key,
            token: l.token,
            worker_id: l.worker_id,
            expires_at: l.expires_at as f64,
            etag: l.etag,
        }
    }
}

#[napi(js_name = "NativePluginStorage")]
pub struct PluginStorage {
    inner: s3db::PluginStorage,
}

#[napi]
impl PluginStorage {
    #[napi(getter)]
    pub fn slug(&self) -> String {
        self.inner.slug().to_string()
    }

    /// s3db.js `getPluginKey(resourceName, ...parts)`.
    #[napi]
    pub fn key(&self, resource: Option<String>, parts: Vec<String>) -> Result<String> {
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        self.inner.key(resource.as_deref(), &parts).map_err(to_js)
    }

    /// Stores `data` (an object); returns the new version.
    #[napi]
    pub async fn set(
        &self,
        key: String,
        data: Value,
        options: Option<PluginSetOptions>,
    ) -> Result<String> {
        let data = plain_object("data", data)?;
        let mut opts = s3db::SetOptions::default();
        if let Some(o) = options {
            if let Some(b) = o.behavior {
                opts.behavior = s3db::PluginBehavior::parse(&b).map_err(to_js)?;
            }
            opts.ttl = o.ttl.map(|t| seconds("ttl", t)).transpose()?;
            opts.content_type = o.content_type;
            opts.condition = match (o.if_match, o.if_none_match.unwrap_or(false)) {
                (Some(_), true) => {
                    return Err(invalid("ifMatch and ifNoneMatch exclude each other"))
                }
                (Some(etag), false) => s3db::storage::WriteCondition::IfMatch(etag),
                (None, true) => s3db::storage::WriteCondition::IfNoneMatch,
                (None, false) => s3db::storage::WriteCondition::None,
            };
        }
        self.inner.set(&key, &data, &opts).await.map_err(to_js)
    }

    #[napi]
    pub async fn get(&self, key: String) -> Result<Option<Value>> {
        self.inner.get(&key).await.map_err(to_js)
    }

    #[napi]
    pub async fn get_with_version(&self, key: String) -> Result<Option<PluginDocument>> {
        let doc = self.inner.get_with_etag(&key).await.map_err(to_js)?;
        Ok(doc.map(|(data, version)| PluginDocument { data, version }))
    }

    #[napi]
    pub async fn has(&self, key: String) -> Result<bool> {
        self.inner.has(&key).await.map_err(to_js)
    }

    /// False when there was nothing to delete.
    #[napi]
    pub async fn delete(&self, key: String) -> Result<bool> {
        self.inner.delete(&key).await.map_err(to_js)
    }

    #[napi]
    pub async fn list(&self, prefix: Option<String>) -> Result<Vec<String>> {
        self.inner.list(prefix.as_deref()).await.map_err(to_js)
    }

    #[napi]
    pub async fn list_for_resource(
        &self,
        resource: String,
        sub_prefix: Option<String>,
    ) -> Result<Vec<String>> {
        self.inner
            .list_for_resource(&resource, sub_prefix.as_deref())
            .await
            .map_err(to_js)
    }

    /// Deletes the plugin's documents (of one resource, if given); returns how many.
    #[napi]
    pub async fn delete_all(&self, resource: Option<String>) -> Result<i64> {
        let n = self
            .inner
            .delete_all(resource.as_deref())
            .await
            .map_err(to_js)?;
        Ok(n as i64)
    }

    #[napi]
    pub async fn next_sequence(
        &self,
        name: String,
        resource: Option<String>,
        initial_value: Option<f64>,
        increment: Option<f64>,
    ) -> Result<i64> {
        let options = s3db::PluginSequenceOptions {
            resource,
            initial_value: initial_value
                .map(|v| integer("initialValue", v))
                .transpose()?
                .unwrap_or(1),
            increment: increment
                .map(|v| integer("increment", v))
                .transpose()?
                .unwrap_or(1),
        };
        self.inner
            .next_sequence(&name, &options)
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn get_sequence(
        &self,
        name: String,
        resource: Option<String>,
    ) -> Result<Option<i64>> {
        self.inner
            .get_sequence(&name, resource.as_deref())
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn reset_sequence(
        &self,
        name: String,
        value: f64,
        resource: Option<String>,
    ) -> Result<()> {
        let value = integer("value", value)?;
        self.inner
            .reset_sequence(&name, value, resource.as_deref())
            .await
            .map_err(to_js)
    }

    #[napi]
    pub async fn delete_sequence(&self, name: String, resource: Option<String>) -> Result<()> {
        self.inner
            .delete_sequence(&name, resource.as_deref())
            .await
            .map_err(to_js)
    }

    /// s3db.js `acquireLock(name, {ttl, timeout, workerId})`: `ttl` in seconds, `timeout` in
    /// milliseconds (as s3db.js); `null` when someone else holds it.
    #[napi]
    pub async fn acquire_lock(
        &self,
        name: String,
        ttl: Option<f64>,
        timeout_ms: Option<f64>,
        worker_id: Option<String>,
    ) -> Result<Option<PluginLockHandle>> {
        let mut options = s3db::PluginLockOptions::default();
        if let Some(t) = ttl {
            options.ttl = seconds("ttl", t)?;
        }
        if let Some(ms) = timeout_ms {
            options.timeout = seconds("timeout", ms / 1000.0)?;
        }
        if let Some(w) = worker_id {
            options.worker_id = w;
        }
        let lock = self
            .inner
            .acquire_lock(&name, &options)
            .await
            .map_err(to_js)?;
        Ok(lock.map(PluginLockHandle::from))
    }

    /// False when the lock was no longer this handle's.
    #[napi]
    pub async fn release_lock(&self, lock: PluginLockHandle) -> Result<bool> {
        let lock = s3db::PluginLock {
            name: lock.name,
            key: lock.key,
            token: lock.token,
            worker_id: lock.worker_id,
            expires_at: lock.expires_at as i64,
            etag: lock.etag,
        };
        self.inner.release_lock(&lock).await.map_err(to_js)
    }

    #[napi]
    pub async fn is_locked(&self, name: String) -> Result<bool> {
        self.inner.is_locked(&name).await.map_err(to_js)
    }
}
