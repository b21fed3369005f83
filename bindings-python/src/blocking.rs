//! The blocking twin: same method names, values returned directly. Each call runs on the
//! shared tokio runtime with the GIL released, so other Python threads keep running.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::block;
use crate::convert::{json_to_py, stats_dict, Int64, Object, Seconds, Str};
use crate::errors::{engine_error, redact};

/// `s3db.connect_sync(url)`: blocking connect.
#[pyfunction]
pub fn connect_sync(py: Python<'_>, url: Str) -> PyResult<SyncDatabase> {
    let url = url.0;
    block(py, async move {
        s3db::Database::connect(&url)
            .await
            .map_err(|e| redact(e, &url))
    })
    .map(|db| SyncDatabase { db })
}

/// A connected database (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncDatabase {
    db: s3db::Database,
}

#[pymethods]
impl SyncDatabase {
    fn create_resource(
        &self,
        py: Python<'_>,
        name: Str,
        attributes: Object,
    ) -> PyResult<SyncResource> {
        let db = self.db.clone();
        block(py, async move {
            db.create_resource(&name.0, &attributes.0).await
        })
        .map(|res| SyncResource { res })
    }

    fn resource(&self, py: Python<'_>, name: Str) -> PyResult<SyncResource> {
        let db = self.db.clone();
        block(py, async move { db.resource(&name.0).await }).map(|res| SyncResource { res })
    }

    fn list_resources(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let db = self.db.clone();
        block(py, async move { Ok(db.list_resources().await) })
    }

    /// Requests sent so far, by kind: get, head, put, copy, delete, list.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, self.db.stats())
    }

    fn reset_stats(&self) {
        self.db.reset_stats()
    }

    /// Acquires the lock (waiting up to `timeout` seconds); `with db.lock(name):` releases it.
    #[pyo3(signature = (name, ttl = Seconds(std::time::Duration::from_secs(30)), timeout = Seconds(std::time::Duration::ZERO)))]
    #[pyo3(text_signature = "($self, name, ttl=30.0, timeout=0.0)")]
    fn lock(
        &self,
        py: Python<'_>,
        name: Str,
        ttl: Seconds,
        timeout: Seconds,
    ) -> PyResult<SyncLock> {
        let db = self.db.clone();
        let opts = s3db::LockOptions {
            ttl: ttl.0,
            timeout: timeout.0,
        };
        block(py, async move { db.lock(&name.0, opts).await }).map(|lock| SyncLock { lock })
    }

    #[pyo3(signature = (name, start = Int64(1), increment = Int64(1)))]
    #[pyo3(text_signature = "($self, name, start=1, increment=1)")]
    fn sequence(
        &self,
        py: Python<'_>,
        name: Str,
        start: Int64,
        increment: Int64,
    ) -> PyResult<SyncSequence> {
        let opts = s3db::SequenceOptions {
            start: start.0,
            increment: increment.0,
            ..Default::default()
        };
        self.db
            .sequence_with(&name.0, opts)
            .map(|seq| SyncSequence { seq })
            .map_err(|e| engine_error(py, &e))
    }

    fn __repr__(&self) -> String {
        "<s3db.SyncDatabase>".to_string()
    }
}

/// The records of one resource (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncResource {
    res: s3db::Resource,
}

#[pymethods]
impl SyncResource {
    #[getter]
    fn name(&self) -> &str {
        self.res.name()
    }

    fn insert<'py>(&self, py: Python<'py>, record: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.insert(record.0).await })?;
        json_to_py(py, &v)
    }

    fn get<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.get(&id.0).await })?;
        json_to_py(py, &v)
    }

    fn get_or_none<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let res = self.res.clone();
        match block(py, async move { res.get_or_none(&id.0).await })? {
            Some(v) => json_to_py(py, &v).map(Some),
            None => Ok(None),
        }
    }

    fn exists(&self, py: Python<'_>, id: Str) -> PyResult<bool> {
        let res = self.res.clone();
        block(py, async move { res.exists(&id.0).await })
    }

    fn update<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.update(&id.0, changes.0).await })?;
        json_to_py(py, &v)
    }

    fn delete(&self, py: Python<'_>, id: Str) -> PyResult<()> {
        let res = self.res.clone();
        block(py, async move { res.delete(&id.0).await })
    }

    fn list_ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let res = self.res.clone();
        block(py, async move { res.list_ids().await })
    }

    fn list<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let res = self.res.clone();
        let records = block(py, async move { res.list().await })?;
        records.iter().map(|v| json_to_py(py, v)).collect()
    }

    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        let res = self.res.clone();
        block(py, async move { res.count().await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.SyncResource {:?}>", self.res.name())
    }
}

/// A held lock (blocking API). `with lock:` releases it on exit.
#[pyclass(frozen, module = "s3db")]
pub struct SyncLock {
    lock: s3db::Lock,
}

#[pymethods]
impl SyncLock {
    #[getter]
    fn name(&self) -> &str {
        self.lock.name()
    }

    /// Strictly increasing across all holders of this lock name.
    #[getter]
    fn fencing_token(&self) -> u64 {
        self.lock.fencing_token()
    }

    #[getter]
    fn holder_id(&self) -> &str {
        self.lock.holder_id()
    }

    fn extend(&self, py: Python<'_>, ttl: Seconds) -> PyResult<()> {
        let lock = self.lock.clone();
        block(py, async move { lock.extend(ttl.0).await })
    }

    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let lock = self.lock.clone();
        block(py, async move { lock.release().await })
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Releases the lock. A release failure is raised only when the block itself succeeded.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: &Bound<'_, PyAny>,
        exc_value: &Bound<'_, PyAny>,
        traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        let _ = (exc_value, traceback);
        let lock = self.lock.clone();
        let released = block(py, async move { lock.release().await });
        if exc_type.is_none() {
            released?;
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!(
            "<s3db.SyncLock {:?} fencing_token={}>",
            self.lock.name(),
            self.lock.fencing_token()
        )
    }
}

/// A named 64-bit counter (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncSequence {
    seq: s3db::Sequence,
}

#[pymethods]
impl SyncSequence {
    #[getter]
    fn name(&self) -> &str {
        self.seq.name()
    }

    fn next(&self, py: Python<'_>) -> PyResult<i64> {
        let seq = self.seq.clone();
        block(py, async move { seq.next().await })
    }

    /// The value the next `next()` returns; None before the first.
    fn current(&self, py: Python<'_>) -> PyResult<Option<i64>> {
        let seq = self.seq.clone();
        block(py, async move { seq.current().await })
    }

    fn reset(&self, py: Python<'_>, value: Int64) -> PyResult<()> {
        let seq = self.seq.clone();
        block(py, async move { seq.reset(value.0).await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.SyncSequence {:?}>", self.seq.name())
    }
}
