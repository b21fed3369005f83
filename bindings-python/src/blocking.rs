//! The blocking twin: same method names, values returned directly. Each call runs on the
//! shared tokio runtime with the GIL released, so other Python threads keep running.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::block;
use crate::convert::{
    as_partition, batch_json, json_to_py, many_json, page_json, partition_filter, records_json,
    reindex_json, resource_config, stats_dict, Bool, Int64, Object, ObjectList, PartitionsArg,
    Seconds, Size, Str, StrList,
};
use crate::errors::{engine_error, redact};

/// `s3db.connect_sync(url, passphrase=None)`: blocking connect.
#[pyfunction]
#[pyo3(signature = (url, passphrase = None))]
pub fn connect_sync(py: Python<'_>, url: Str, passphrase: Option<Str>) -> PyResult<SyncDatabase> {
    let url = url.0;
    let options = s3db::ConnectOptions {
        passphrase: passphrase.map(|p| p.0),
    };
    block(py, async move {
        s3db::Database::connect_with(&url, options)
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
    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    #[pyo3(signature = (name, attributes, *, behavior = None, timestamps = None, partitions = None, paranoid = None, id_size = None, passphrase = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_resource(
        &self,
        py: Python<'_>,
        name: Str,
        attributes: Object,
        behavior: Option<Str>,
        timestamps: Option<Bool>,
        partitions: Option<PartitionsArg>,
        paranoid: Option<Bool>,
        id_size: Option<Int64>,
        passphrase: Option<Str>,
    ) -> PyResult<SyncResource> {
        let db = self.db.clone();
        let config = resource_config(
            attributes, behavior, timestamps, partitions, paranoid, id_size, passphrase,
        );
        block(py, async move {
            db.create_resource_with(&name.0, config?).await
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

    #[pyo3(signature = (partition = None, values = None))]
    fn list_ids(
        &self,
        py: Python<'_>,
        partition: Option<Str>,
        values: Option<Object>,
    ) -> PyResult<Vec<String>> {
        let res = self.res.clone();
        let part = partition_filter(py, partition, values)?;
        block(
            py,
            async move { res.list_ids_in(as_partition(&part)).await },
        )
    }

    #[pyo3(signature = (partition = None, values = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        partition: Option<Str>,
        values: Option<Object>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let part = partition_filter(py, partition, values)?;
        let records = block(py, async move { res.list_in(as_partition(&part)).await })?;
        json_to_py(py, &records_json(records))
    }

    #[pyo3(signature = (partition = None, values = None))]
    fn count(
        &self,
        py: Python<'_>,
        partition: Option<Str>,
        values: Option<Object>,
    ) -> PyResult<u64> {
        let res = self.res.clone();
        let part = partition_filter(py, partition, values)?;
        block(py, async move { res.count_in(as_partition(&part)).await })
    }

    fn insert_many<'py>(
        &self,
        py: Python<'py>,
        records: ObjectList,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let items = block(py, async move { Ok(res.insert_many(records.0).await) })?;
        json_to_py(py, &batch_json(items))
    }

    fn get_many<'py>(&self, py: Python<'py>, ids: StrList) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let found = block(py, async move { res.get_many(&ids.0).await })?;
        json_to_py(py, &many_json(found))
    }

    fn replace<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        record: Object,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.replace(&id.0, record.0).await })?;
        json_to_py(py, &v)
    }

    fn upsert<'py>(&self, py: Python<'py>, record: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.upsert(record.0).await })?;
        json_to_py(py, &v)
    }

    fn patch<'py>(&self, py: Python<'py>, id: Str, changes: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(py, async move { res.patch(&id.0, changes.0).await })?;
        json_to_py(py, &v)
    }

    fn get_with_etag<'py>(
        &self,
        py: Python<'py>,
        id: Str,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let res = self.res.clone();
        let (record, etag) = block(py, async move { res.get_with_etag(&id.0).await })?;
        Ok((json_to_py(py, &record)?, etag))
    }

    fn update_if<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
        etag: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let v = block(
            py,
            async move { res.update_if(&id.0, changes.0, &etag.0).await },
        )?;
        json_to_py(py, &v)
    }

    fn delete_many<'py>(&self, py: Python<'py>, ids: StrList) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let items = block(py, async move { Ok(res.delete_many(&ids.0).await) })?;
        json_to_py(py, &batch_json(items))
    }

    fn delete_all(&self, py: Python<'_>) -> PyResult<u64> {
        let res = self.res.clone();
        block(py, async move { res.delete_all().await })
    }

    #[pyo3(signature = (size, cursor = None))]
    fn page<'py>(
        &self,
        py: Python<'py>,
        size: Size,
        cursor: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let page = block(py, async move {
            res.page(size.0, cursor.as_ref().map(|c| c.0.as_str()))
                .await
        })?;
        json_to_py(py, &page_json(page))
    }

    fn query<'py>(&self, py: Python<'py>, filter: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let records = block(py, async move { res.query(&filter.0).await })?;
        json_to_py(py, &records_json(records))
    }

    #[pyo3(signature = (partition = None))]
    fn reindex<'py>(&self, py: Python<'py>, partition: Option<Str>) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let counts = block(py, async move {
            res.reindex(partition.as_ref().map(|p| p.0.as_str())).await
        })?;
        json_to_py(py, &reindex_json(counts))
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
