//! The asyncio API: every I/O method returns an `asyncio.Future` (started at once).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::awaitable;
use crate::convert::{
    as_partition, batch_json, many_json, page_json, partition_filter, records_json, reindex_json,
    resource_config, stats_dict, Bool, Int64, Json, NoneValue, Object, ObjectList, PartitionsArg,
    Seconds, Size, Str, StrList,
};
use crate::errors::{invalid, redact};

/// `await s3db.connect(url, passphrase=None)`: connects to `memory://`, `file://`, `s3://`
/// or `http(s)://`. `passphrase` encrypts `secret` fields (s3db.js's default: "secret").
#[pyfunction]
#[pyo3(signature = (url, passphrase = None))]
pub fn connect<'py>(
    py: Python<'py>,
    url: Str,
    passphrase: Option<Str>,
) -> PyResult<Bound<'py, PyAny>> {
    let url = url.0;
    let options = s3db::ConnectOptions {
        passphrase: passphrase.map(|p| p.0),
    };
    awaitable(py, async move {
        s3db::Database::connect_with(&url, options)
            .await
            .map(|db| Database { db })
            .map_err(|e| redact(e, &url))
    })
}

fn lock_options(ttl: Seconds, timeout: Seconds) -> s3db::LockOptions {
    s3db::LockOptions {
        ttl: ttl.0,
        timeout: timeout.0,
    }
}

/// A connected database (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Database {
    pub(crate) db: s3db::Database,
}

#[pymethods]
impl Database {
    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    #[pyo3(signature = (name, attributes, *, behavior = None, timestamps = None, partitions = None, paranoid = None, id_size = None, passphrase = None))]
    #[allow(clippy::too_many_arguments)]
    fn create_resource<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        attributes: Object,
        behavior: Option<Str>,
        timestamps: Option<Bool>,
        partitions: Option<PartitionsArg>,
        paranoid: Option<Bool>,
        id_size: Option<Int64>,
        passphrase: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        let config = resource_config(
            attributes, behavior, timestamps, partitions, paranoid, id_size, passphrase,
        );
        awaitable(py, async move {
            db.create_resource_with(&name.0, config?)
                .await
                .map(|r| Resource { res: r })
        })
    }

    fn resource<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move {
            db.resource(&name.0).await.map(|r| Resource { res: r })
        })
    }

    fn list_resources<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move { Ok(db.list_resources().await) })
    }

    /// Requests sent so far, by kind: get, head, put, copy, delete, list.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, self.db.stats())
    }

    fn reset_stats(&self) {
        self.db.reset_stats()
    }

    /// `await db.lock(name)` returns a `Lock`; `async with db.lock(name) as lock:` releases it
    /// on exit. Nothing is sent until the result is awaited or entered.
    #[pyo3(signature = (name, ttl = Seconds(std::time::Duration::from_secs(30)), timeout = Seconds(std::time::Duration::ZERO)))]
    #[pyo3(text_signature = "($self, name, ttl=30.0, timeout=0.0)")]
    fn lock(&self, name: Str, ttl: Seconds, timeout: Seconds) -> LockContext {
        LockContext {
            db: self.db.clone(),
            name: name.0,
            options: lock_options(ttl, timeout),
            held: Arc::new(Mutex::new(Held::Idle)),
        }
    }

    #[pyo3(signature = (name, start = Int64(1), increment = Int64(1)))]
    #[pyo3(text_signature = "($self, name, start=1, increment=1)")]
    fn sequence(
        &self,
        py: Python<'_>,
        name: Str,
        start: Int64,
        increment: Int64,
    ) -> PyResult<Sequence> {
        let opts = s3db::SequenceOptions {
            start: start.0,
            increment: increment.0,
            ..Default::default()
        };
        self.db
            .sequence_with(&name.0, opts)
            .map(|seq| Sequence { seq })
            .map_err(|e| crate::errors::engine_error(py, &e))
    }

    fn __repr__(&self) -> String {
        "<s3db.Database>".to_string()
    }
}

/// The records of one resource (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Resource {
    res: s3db::Resource,
}

#[pymethods]
impl Resource {
    #[getter]
    fn name(&self) -> &str {
        self.res.name()
    }

    fn insert<'py>(&self, py: Python<'py>, record: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move { res.insert(record.0).await.map(Json) })
    }

    fn get<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move { res.get(&id.0).await.map(Json) })
    }

    fn get_or_none<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.get_or_none(&id.0).await.map(|o| o.map(Json))
        })
    }

    fn exists<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move { res.exists(&id.0).await })
    }

    fn update<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(
            py,
            async move { res.update(&id.0, changes.0).await.map(Json) },
        )
    }

    fn delete<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(
            py,
            async move { res.delete(&id.0).await.map(|()| NoneValue) },
        )
    }

    #[pyo3(signature = (partition = None, values = None))]
    fn list_ids<'py>(
        &self,
        py: Python<'py>,
        partition: Option<Str>,
        values: Option<Object>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let part = partition_filter(py, partition, values)?;
        awaitable(
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
        awaitable(py, async move {
            res.list_in(as_partition(&part))
                .await
                .map(|v| Json(records_json(v)))
        })
    }

    #[pyo3(signature = (partition = None, values = None))]
    fn count<'py>(
        &self,
        py: Python<'py>,
        partition: Option<Str>,
        values: Option<Object>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let part = partition_filter(py, partition, values)?;
        awaitable(py, async move { res.count_in(as_partition(&part)).await })
    }

    fn insert_many<'py>(
        &self,
        py: Python<'py>,
        records: ObjectList,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            Ok(Json(batch_json(res.insert_many(records.0).await)))
        })
    }

    fn get_many<'py>(&self, py: Python<'py>, ids: StrList) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.get_many(&ids.0).await.map(|m| Json(many_json(m)))
        })
    }

    fn replace<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        record: Object,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(
            py,
            async move { res.replace(&id.0, record.0).await.map(Json) },
        )
    }

    fn upsert<'py>(&self, py: Python<'py>, record: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move { res.upsert(record.0).await.map(Json) })
    }

    fn patch<'py>(&self, py: Python<'py>, id: Str, changes: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(
            py,
            async move { res.patch(&id.0, changes.0).await.map(Json) },
        )
    }

    fn get_with_etag<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.get_with_etag(&id.0)
                .await
                .map(|(record, etag)| (Json(record), etag))
        })
    }

    fn update_if<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
        etag: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.update_if(&id.0, changes.0, &etag.0).await.map(Json)
        })
    }

    fn delete_many<'py>(&self, py: Python<'py>, ids: StrList) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            Ok(Json(batch_json(res.delete_many(&ids.0).await)))
        })
    }

    fn delete_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move { res.delete_all().await })
    }

    #[pyo3(signature = (size, cursor = None))]
    fn page<'py>(
        &self,
        py: Python<'py>,
        size: Size,
        cursor: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.page(size.0, cursor.as_ref().map(|c| c.0.as_str()))
                .await
                .map(|p| Json(page_json(p)))
        })
    }

    fn query<'py>(&self, py: Python<'py>, filter: Object) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.query(&filter.0).await.map(|v| Json(records_json(v)))
        })
    }

    #[pyo3(signature = (partition = None))]
    fn reindex<'py>(&self, py: Python<'py>, partition: Option<Str>) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.reindex(partition.as_ref().map(|p| p.0.as_str()))
                .await
                .map(|r| Json(reindex_json(r)))
        })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.Resource {:?}>", self.res.name())
    }
}

/// Where a `LockContext` stands.
enum Held {
    Idle,
    Entering,
    Entered(s3db::Lock),
    Done,
}

/// What `Database.lock()` returns: awaitable (→ `Lock`) and an async context manager.
#[pyclass(frozen, module = "s3db")]
pub struct LockContext {
    db: s3db::Database,
    name: String,
    options: s3db::LockOptions,
    held: Arc<Mutex<Held>>,
}

#[pymethods]
impl LockContext {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (db, name, opts) = (self.db.clone(), self.name.clone(), self.options);
        let fut = awaitable(py, async move {
            db.lock(&name, opts).await.map(|lock| Lock { lock })
        })?;
        fut.call_method0("__await__")
    }

    fn __aenter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if !matches!(*held, Held::Idle) {
                return Err(invalid(py, "this lock context was already entered"));
            }
            *held = Held::Entering;
        }
        let (db, name, opts) = (self.db.clone(), self.name.clone(), self.options);
        let held = self.held.clone();
        awaitable(py, async move {
            let res = db.lock(&name, opts).await;
            let mut st = held.lock().unwrap_or_else(|p| p.into_inner());
            match res {
                Ok(lock) => {
                    *st = Held::Entered(lock.clone());
                    Ok(Lock { lock })
                }
                Err(e) => {
                    *st = Held::Done;
                    Err(e)
                }
            }
        })
    }

    /// Releases the lock. A release failure is raised only when the block itself succeeded.
    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: &Bound<'py, PyAny>,
        exc_value: &Bound<'py, PyAny>,
        traceback: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = (exc_value, traceback);
        let prev = std::mem::replace(
            &mut *self.held.lock().unwrap_or_else(|p| p.into_inner()),
            Held::Done,
        );
        let lock = match prev {
            Held::Entered(lock) => Some(lock),
            _ => None,
        };
        release_on_exit(py, lock, !exc_type.is_none())
    }

    fn __repr__(&self) -> String {
        format!("<s3db.LockContext {:?}>", self.name)
    }
}

fn release_on_exit<'py>(
    py: Python<'py>,
    lock: Option<s3db::Lock>,
    failed: bool,
) -> PyResult<Bound<'py, PyAny>> {
    awaitable(py, async move {
        if let Some(lock) = lock {
            let released = lock.release().await;
            if !failed {
                released?;
            }
        }
        Ok(false)
    })
}

/// A held lock (async API). `async with lock:` releases it on exit.
#[pyclass(frozen, module = "s3db")]
pub struct Lock {
    lock: s3db::Lock,
}

#[pymethods]
impl Lock {
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

    fn extend<'py>(&self, py: Python<'py>, ttl: Seconds) -> PyResult<Bound<'py, PyAny>> {
        let lock = self.lock.clone();
        awaitable(
            py,
            async move { lock.extend(ttl.0).await.map(|()| NoneValue) },
        )
    }

    fn release<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let lock = self.lock.clone();
        awaitable(py, async move { lock.release().await.map(|()| NoneValue) })
    }

    fn __aenter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let this = slf.unbind();
        awaitable(py, async move { Ok(this) })
    }

    fn __aexit__<'py>(
        &self,
        py: Python<'py>,
        exc_type: &Bound<'py, PyAny>,
        exc_value: &Bound<'py, PyAny>,
        traceback: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let _ = (exc_value, traceback);
        release_on_exit(py, Some(self.lock.clone()), !exc_type.is_none())
    }

    fn __repr__(&self) -> String {
        format!(
            "<s3db.Lock {:?} fencing_token={}>",
            self.lock.name(),
            self.lock.fencing_token()
        )
    }
}

/// A named 64-bit counter (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Sequence {
    seq: s3db::Sequence,
}

#[pymethods]
impl Sequence {
    #[getter]
    fn name(&self) -> &str {
        self.seq.name()
    }

    fn next<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let seq = self.seq.clone();
        awaitable(py, async move { seq.next().await })
    }

    /// The value the next `next()` returns; None before the first.
    fn current<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let seq = self.seq.clone();
        awaitable(py, async move { seq.current().await })
    }

    fn reset<'py>(&self, py: Python<'py>, value: Int64) -> PyResult<Bound<'py, PyAny>> {
        let seq = self.seq.clone();
        awaitable(
            py,
            async move { seq.reset(value.0).await.map(|()| NoneValue) },
        )
    }

    fn __repr__(&self) -> String {
        format!("<s3db.Sequence {:?}>", self.seq.name())
    }
}
