//! Node.js binding of s3db (napi-rs). No logic lives here: values and errors are converted,
//! async is bridged (every I/O method is a napi `async fn`, i.e. a Promise).
//!
//! Errors: napi-rs drops custom statuses on the way out of `async fn`, so every engine error
//! is encoded as `[s3db:<CODE>] <message>` and the JS layer (`lib.js`) turns the prefix into
//! `err.code` / `err.name`. Argument conversions that napi itself rejects (wrong JS types)
//! arrive unprefixed with a napi status and are mapped to `INVALID_ARGUMENT` there.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use serde_json::Value;

/// Marks an engine error so that the JS layer can recover its kind.
fn to_js(e: s3db::Error) -> Error {
    Error::new(
        Status::GenericFailure,
        format!("[s3db:{}] {}", e.kind().code(), e.message()),
    )
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

#[napi(object)]
pub struct ResourceConfig {
    pub name: String,
    /// `{field: "rule|rule"}` (s3db.js syntax).
    pub attributes: Value,
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
    pub async fn connect(url: String) -> Result<Database> {
        let inner = s3db::Database::connect(&url).await.map_err(to_js)?;
        Ok(Database { inner })
    }

    #[napi]
    pub async fn create_resource(&self, config: ResourceConfig) -> Result<Resource> {
        let attributes = plain_object("attributes", config.attributes)?;
        let inner = self
            .inner
            .create_resource(&config.name, &attributes)
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
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        self.inner.list_ids().await.map_err(to_js)
    }

    #[napi]
    pub async fn list(&self) -> Result<Vec<Value>> {
        self.inner.list().await.map_err(to_js)
    }

    #[napi]
    pub async fn count(&self) -> Result<i64> {
        let n = self.inner.count().await.map_err(to_js)?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
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
