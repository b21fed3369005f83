//! PluginStorage pieces shared by the asyncio and blocking classes: option builders and the
//! lock handle (which has no I/O of its own).

use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{Bool, Int64, Seconds, Str, StrList};
use crate::errors::{engine_error, invalid};

/// `set`'s keyword options as the engine's `SetOptions`.
pub fn set_options(
    py: Python<'_>,
    behavior: Option<Str>,
    ttl: Option<Seconds>,
    content_type: Option<Str>,
    if_match: Option<Str>,
    if_none_match: Bool,
) -> PyResult<s3db::SetOptions> {
    let behavior = match behavior {
        Some(b) => s3db::PluginBehavior::parse(&b.0).map_err(|e| engine_error(py, &e))?,
        None => s3db::PluginBehavior::default(),
    };
    let condition = match (if_match, if_none_match.0) {
        (Some(_), true) => {
            return Err(invalid(py, "if_match and if_none_match exclude each other"))
        }
        (Some(etag), false) => s3db::storage::WriteCondition::IfMatch(etag.0),
        (None, true) => s3db::storage::WriteCondition::IfNoneMatch,
        (None, false) => s3db::storage::WriteCondition::None,
    };
    Ok(s3db::SetOptions {
        behavior,
        ttl: ttl.map(|t| t.0),
        content_type: content_type.map(|c| c.0),
        condition,
    })
}

pub fn sequence_options(
    resource: Option<Str>,
    initial_value: Int64,
    increment: Int64,
) -> s3db::PluginSequenceOptions {
    s3db::PluginSequenceOptions {
        resource: resource.map(|r| r.0),
        initial_value: initial_value.0,
        increment: increment.0,
    }
}

pub fn lock_options(ttl: Seconds, timeout: Seconds, worker_id: Str) -> s3db::PluginLockOptions {
    s3db::PluginLockOptions {
        ttl: ttl.0,
        timeout: timeout.0,
        worker_id: worker_id.0,
    }
}

/// s3db.js `getPluginKey`: the `*parts` of `key(*parts, resource=None)`.
pub fn plugin_key(
    py: Python<'_>,
    store: &s3db::PluginStorage,
    parts: &Bound<'_, PyTuple>,
    resource: Option<Str>,
) -> PyResult<String> {
    let parts = parts.as_any().extract::<StrList>()?.0;
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    store
        .key(opt(&resource), &parts)
        .map_err(|e| engine_error(py, &e))
}

pub fn opt(s: &Option<Str>) -> Option<&str> {
    s.as_ref().map(|s| s.0.as_str())
}

/// A held plugin lock (s3db.js's `LockHandle`), from `acquire_lock`; give it back to
/// `release_lock`.
#[pyclass(frozen, module = "s3db")]
pub struct PluginLock {
    pub(crate) lock: s3db::PluginLock,
}

#[pymethods]
impl PluginLock {
    #[getter]
    fn name(&self) -> &str {
        &self.lock.name
    }

    #[getter]
    fn key(&self) -> &str {
        &self.lock.key
    }

    #[getter]
    fn token(&self) -> &str {
        &self.lock.token
    }

    #[getter]
    fn worker_id(&self) -> &str {
        &self.lock.worker_id
    }

    /// Milliseconds since the epoch.
    #[getter]
    fn expires_at(&self) -> i64 {
        self.lock.expires_at
    }

    #[getter]
    fn etag(&self) -> &str {
        &self.lock.etag
    }

    fn __repr__(&self) -> String {
        format!("<s3db.PluginLock {:?}>", self.lock.key)
    }
}
