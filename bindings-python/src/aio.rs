//! The asyncio API: every I/O method returns an `asyncio.Future` (started at once).

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::awaitable;
use crate::convert::{
    page_json, reindex_json, resource_config, stats_dict, Bool, Int64, Json, NoneValue, Object,
    PartitionsArg, Rule, Seconds, Size, Str,
};
use crate::coordination::{
    batch_size, callable, coordinator_options, forward_events, leader_json, next_event,
    opt_duration, split_id_generator, start_renewal, state_update, with_generated_id, workers_json,
    AnyJson, AsyncNext, BytesOut, Callback, Content, Events, IdGeneratorArg, IdGenerators, Renewal,
    Token, DEFAULT_CONTENT_TYPE,
};
use crate::errors::{engine_error, invalid, redact};
use crate::plugins::{
    lock_options as plugin_lock_options, opt, plugin_key, sequence_options, set_options, PluginLock,
};
use crate::to_json;

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
            .map(|db| Database {
                db,
                id_gens: IdGenerators::default(),
            })
            .map_err(|e| redact(e, &url))
    })
}

pub(crate) fn lock_options(ttl: Seconds, timeout: Seconds) -> s3db::LockOptions {
    s3db::LockOptions {
        ttl: ttl.0,
        timeout: timeout.0,
    }
}

/// A connected database (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Database {
    pub(crate) db: s3db::Database,
    id_gens: IdGenerators,
}

#[pymethods]
impl Database {
    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    /// `id_generator` is an s3db.js form (`"incremental[:…]"`, `{"type": "incremental", …}`,
    /// an id size) handed to the engine, or a callable returning an id, applied by the
    /// binding to records that have none.
    #[pyo3(signature = (name, attributes, *, behavior = None, timestamps = None, partitions = None, paranoid = None, id_size = None, id_generator = None, passphrase = None, hooks = None))]
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
        id_generator: Option<IdGeneratorArg>,
        passphrase: Option<Str>,
        hooks: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        let (engine_gen, custom) = split_id_generator(id_generator);
        let config = resource_config(
            attributes, behavior, timestamps, partitions, paranoid, id_size, engine_gen, passphrase,
        );
        let hooks = match &config {
            Ok(_) => crate::hooks::from_arg(py, hooks.as_ref())?,
            Err(_) => s3db::Hooks::default(),
        };
        let gens = self.id_gens.clone();
        awaitable(py, async move {
            let res = db
                .create_resource_with_hooks(&name.0, config?, hooks)
                .await?;
            gens.set(res.name(), custom.clone());
            Ok(Resource {
                res,
                id_gen: custom,
            })
        })
    }

    fn resource<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        let gens = self.id_gens.clone();
        awaitable(py, async move {
            let res = db.resource(&name.0).await?;
            let id_gen = gens.get(res.name());
            Ok(Resource { res, id_gen })
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
    /// on exit. Nothing is sent until the result is awaited or entered. `auto_renew=True`
    /// renews it every ttl/3 until release; `on_lost(message)` then runs once, from a
    /// runtime thread, if renewal fails for good.
    #[pyo3(signature = (name, ttl = Seconds(std::time::Duration::from_secs(30)), timeout = Seconds(std::time::Duration::ZERO), auto_renew = Bool(false), on_lost = None))]
    #[pyo3(text_signature = "($self, name, ttl=30.0, timeout=0.0, auto_renew=False, on_lost=None)")]
    fn lock(
        &self,
        py: Python<'_>,
        name: Str,
        ttl: Seconds,
        timeout: Seconds,
        auto_renew: Bool,
        on_lost: Option<Bound<'_, PyAny>>,
    ) -> PyResult<LockContext> {
        Ok(LockContext {
            db: self.db.clone(),
            name: name.0,
            options: lock_options(ttl, timeout),
            renewal: Renewal::new(py, auto_renew.0, on_lost.as_ref())?,
            held: Arc::new(Mutex::new(Held::Idle)),
        })
    }

    /// Whether someone holds the lock now (one GET).
    fn is_locked<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move { db.is_locked(&name.0).await })
    }

    /// `{"holder_id", "fencing_token", "acquired_at", "expires_at"}` (ms since the epoch)
    /// of the current holder, or None when the lock is free.
    fn lock_info<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move {
            db.lock_info(&name.0)
                .await
                .map(|i| i.map(|i| Json(to_json!(i))))
        })
    }

    /// Writes `value` to the fenced object `name` unless a higher token already wrote it
    /// (`LockLostError`). Returns the new version.
    fn fenced_put<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        value: AnyJson,
        token: Token,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move {
            db.fenced_put(&name.0, &value.0, token.0).await
        })
    }

    /// `{"value", "fencing_token", "version"}` of a fenced object, or None.
    fn fenced_get<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move {
            db.fenced_get(&name.0)
                .await
                .map(|f| f.map(|f| Json(to_json!(f))))
        })
    }

    /// `batch_size` above 1 reserves that many values per request (fast mode: values are
    /// handed out locally, unused ones become gaps).
    #[pyo3(signature = (name, start = Int64(1), increment = Int64(1), batch_size = Int64(1)))]
    #[pyo3(text_signature = "($self, name, start=1, increment=1, batch_size=1)")]
    fn sequence(
        &self,
        py: Python<'_>,
        name: Str,
        start: Int64,
        increment: Int64,
        batch_size: Int64,
    ) -> PyResult<Sequence> {
        let opts = s3db::SequenceOptions {
            start: start.0,
            increment: increment.0,
            batch_size: self::batch_size(py, batch_size)?,
        };
        self.db
            .sequence_with(&name.0, opts)
            .map(|seq| Sequence { seq })
            .map_err(|e| engine_error(py, &e))
    }

    /// Names of the stored sequences.
    fn list_sequences<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        awaitable(py, async move { db.list_sequences().await })
    }

    /// The distributed state of `namespace`.
    fn state(&self, py: Python<'_>, namespace: Str) -> PyResult<State> {
        self.db
            .state(&namespace.0)
            .map(|store| State { store })
            .map_err(|e| engine_error(py, &e))
    }

    /// A worker in the leader election of `namespace` (call `await start()`). Times are
    /// seconds; `heartbeat_interval` alone scales the others (lease 3x, worker timeout 4x,
    /// startup jitter and step-down margin 1/5, circuit cool-down 2x).
    #[pyo3(signature = (namespace, heartbeat_interval = Seconds(std::time::Duration::from_secs(5)), lease_timeout = None, worker_timeout = None, startup_jitter = None, *, step_down_margin = None, circuit_breaker_threshold = None, circuit_breaker_cooldown = None, strategy = None, pod = None))]
    #[pyo3(
        text_signature = "($self, namespace, heartbeat_interval=5.0, lease_timeout=None, worker_timeout=None, startup_jitter=None, *, step_down_margin=None, circuit_breaker_threshold=None, circuit_breaker_cooldown=None, strategy=None, pod=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn coordinator(
        &self,
        py: Python<'_>,
        namespace: Str,
        heartbeat_interval: Seconds,
        lease_timeout: Option<Seconds>,
        worker_timeout: Option<Seconds>,
        startup_jitter: Option<Seconds>,
        step_down_margin: Option<Seconds>,
        circuit_breaker_threshold: Option<Int64>,
        circuit_breaker_cooldown: Option<Seconds>,
        strategy: Option<Str>,
        pod: Option<Str>,
    ) -> PyResult<Coordinator> {
        coordinator_options(
            heartbeat_interval,
            lease_timeout,
            worker_timeout,
            startup_jitter,
            step_down_margin,
            circuit_breaker_threshold,
            circuit_breaker_cooldown,
            strategy,
            pod,
        )
        .and_then(|opts| self.db.coordinator(&namespace.0, opts))
        .map(|coord| Coordinator { coord })
        .map_err(|e| engine_error(py, &e))
    }

    /// What healing repaired in `s3db.json` when this handle connected (empty when intact).
    fn healing_log(&self) -> Vec<String> {
        self.db.healing_log()
    }

    /// s3db.js's PluginStorage of plugin `slug` (no I/O until a method is called).
    fn plugin_storage(&self, py: Python<'_>, slug: Str) -> PyResult<PluginStorage> {
        self.db
            .plugin_storage(&slug.0)
            .map(|store| PluginStorage { store })
            .map_err(|e| engine_error(py, &e))
    }

    fn __repr__(&self) -> String {
        "<s3db.Database>".to_string()
    }
}

/// The records of one resource (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Resource {
    pub(crate) res: s3db::Resource,
    pub(crate) id_gen: Option<Callback>,
}

#[pymethods]
impl Resource {
    #[getter]
    fn name(&self) -> &str {
        self.res.name()
    }

    /// Inserts a record whose object body is binary `content`.
    #[pyo3(signature = (data, content, content_type = None))]
    fn insert_with_content<'py>(
        &self,
        py: Python<'py>,
        data: Object,
        content: Content,
        content_type: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let data = with_generated_id(py, self.id_gen.as_ref(), data.0)?;
        let ct = content_type.map_or_else(|| DEFAULT_CONTENT_TYPE.to_string(), |c| c.0);
        awaitable(py, async move {
            res.insert_with_content(data, content.0.into(), &ct)
                .await
                .map(Json)
        })
    }

    /// Sets (bytes) or removes (None) the record's binary content.
    #[pyo3(signature = (id, content, content_type = None))]
    fn set_content<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        content: Option<Content>,
        content_type: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let ct = content_type.map_or_else(|| DEFAULT_CONTENT_TYPE.to_string(), |c| c.0);
        awaitable(py, async move {
            res.set_content(&id.0, content.map(|c| (c.0.into(), ct.as_str())))
                .await
                .map(|()| NoneValue)
        })
    }

    /// `(content, content_type)`; `NotFoundError` when the record has none.
    fn content<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.content(&id.0)
                .await
                .map(|(bytes, ct)| (BytesOut(bytes.to_vec()), ct))
        })
    }

    /// The sequence behind an incremental `id_generator`, or None.
    fn id_sequence(&self) -> Option<Sequence> {
        self.res.id_sequence().cloned().map(|seq| Sequence { seq })
    }

    fn get_or_none<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.get_or_none(&id.0).await.map(|o| o.map(Json))
        })
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

    /// s3db.js `updateConditional`: `update_if` that also returns the new version tag, as
    /// `(record, etag)`.
    fn update_conditional<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
        if_match: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.update_conditional(&id.0, changes.0, &if_match.0)
                .await
                .map(|(record, etag)| (Json(record), etag))
        })
    }

    /// s3db.js `addHook(event, fn)`: `fn(value)` returns the changed value (None keeps it);
    /// an exception it raises aborts the operation and reaches the caller.
    fn add_hook(&self, py: Python<'_>, event: Str, func: Bound<'_, PyAny>) -> PyResult<()> {
        let hook = crate::hooks::hook_of(&func)?;
        self.res
            .add_hook(&event.0, hook)
            .map_err(|e| crate::errors::engine_error(py, &e))
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

    #[pyo3(signature = (partition = None))]
    fn reindex<'py>(&self, py: Python<'py>, partition: Option<Str>) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.reindex(partition.as_ref().map(|p| p.0.as_str()))
                .await
                .map(|r| Json(reindex_json(r)))
        })
    }

    /// s3db.js `addPluginAttribute`: an attribute owned by `plugin`, stored under a `p…` key.
    /// Persists a catalog version unless it is already there; returns the plugin map.
    fn add_plugin_attribute<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        definition: Rule,
        plugin: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.add_plugin_attribute(&name.0, &definition.0, &plugin.0)
                .await
                .map(|m| Json(m.into()))
        })
    }

    /// s3db.js `removePluginAttribute`; False when there was no such plugin attribute.
    fn remove_plugin_attribute<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        plugin: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        awaitable(py, async move {
            res.remove_plugin_attribute(&name.0, &plugin.0).await
        })
    }

    /// Plugin-owned attributes and their keys: `{"auditedBy": "pkdv", ...}`.
    #[getter]
    fn plugin_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::json_to_py(py, &self.res.plugin_map().into())
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
    renewal: Renewal,
    held: Arc<Mutex<Held>>,
}

#[pymethods]
impl LockContext {
    fn __await__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (db, name, opts) = (self.db.clone(), self.name.clone(), self.options);
        let renewal = self.renewal.clone();
        let fut = awaitable(py, async move {
            let lock = db.lock(&name, opts).await?;
            renewal.apply(&lock).await?;
            Ok(Lock { lock })
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
        let renewal = self.renewal.clone();
        let held = self.held.clone();
        awaitable(py, async move {
            let res = match db.lock(&name, opts).await {
                Ok(lock) => renewal.apply(&lock).await.map(|()| lock),
                Err(e) => Err(e),
            };
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

    /// The ttl the lock was acquired with, in seconds.
    #[getter]
    fn ttl(&self) -> f64 {
        self.lock.ttl().as_secs_f64()
    }

    /// True once this handle learnt that it no longer holds the lock.
    #[getter]
    fn is_lost(&self) -> bool {
        self.lock.is_lost()
    }

    /// Milliseconds since the epoch.
    fn expires_at<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let lock = self.lock.clone();
        awaitable(py, async move { Ok(lock.expires_at().await) })
    }

    /// Renews the lock every ttl/3 until release; `on_lost(message)` runs once (from a
    /// runtime thread) when renewal fails for good.
    #[pyo3(signature = (on_lost = None))]
    fn auto_renew(&self, py: Python<'_>, on_lost: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        let cb = on_lost
            .filter(|o| !o.is_none())
            .map(|o| callable(py, "on_lost", &o))
            .transpose()?;
        start_renewal(&self.lock, cb).map_err(|e| engine_error(py, &e))
    }

    fn stop_renewing(&self) {
        self.lock.stop_renewing()
    }

    /// Writes `value` to the fenced object `name` under this lock's fencing token;
    /// `LockLostError` when the handle is lost or released or a higher token wrote it.
    fn guarded_put<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        value: AnyJson,
    ) -> PyResult<Bound<'py, PyAny>> {
        let lock = self.lock.clone();
        awaitable(py, async move { lock.guarded_put(&name.0, &value.0).await })
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

    /// Deletes the stored counter; the next `next()` starts again at `start`.
    fn delete<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let seq = self.seq.clone();
        awaitable(py, async move { seq.delete().await.map(|()| NoneValue) })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.Sequence {:?}>", self.seq.name())
    }
}

/// Distributed state of one namespace (async API): small JSON values with versions,
/// compare-and-swap, counters and optional expiry.
#[pyclass(frozen, module = "s3db")]
pub struct State {
    store: s3db::StateStore,
}

#[pymethods]
impl State {
    #[getter]
    fn namespace(&self) -> &str {
        self.store.namespace()
    }

    /// `{"value", "version", "expires_at"}`, or None when absent or expired.
    fn get<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store
                .get(&key.0)
                .await
                .map(|e| e.map(|e| Json(to_json!(e))))
        })
    }

    /// Stores `value` (last writer wins), expiring after `ttl` seconds if given; returns
    /// the new version.
    #[pyo3(signature = (key, value, ttl = None))]
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        value: AnyJson,
        ttl: Option<Seconds>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store.set(&key.0, value.0, opt_duration(ttl)).await
        })
    }

    /// Read-modify-write by compare-and-swap: `fn(old)` (None when absent) returns the new
    /// value; it runs again (on a runtime thread) when another writer got there first.
    /// Returns the entry written.
    fn update<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        r#fn: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = callable(py, "fn", &r#fn)?;
        let store = self.store.clone();
        awaitable(py, state_update(store, key.0, f))
    }

    /// Writes `value` only if the entry is still at `expected_version` (None: only if
    /// absent). `{"swapped", "current_value", "current_version"}`.
    fn compare_and_swap<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        expected_version: Option<Str>,
        value: AnyJson,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store
                .compare_and_swap(
                    &key.0,
                    expected_version.as_ref().map(|v| v.0.as_str()),
                    value.0,
                )
                .await
                .map(|r| Json(to_json!(r)))
        })
    }

    fn delete<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(
            py,
            async move { store.delete(&key.0).await.map(|()| NoneValue) },
        )
    }

    #[pyo3(signature = (key, by = Int64(1)))]
    #[pyo3(text_signature = "($self, key, by=1)")]
    fn increment<'py>(&self, py: Python<'py>, key: Str, by: Int64) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.increment(&key.0, by.0).await })
    }

    #[pyo3(signature = (key, by = Int64(1)))]
    #[pyo3(text_signature = "($self, key, by=1)")]
    fn decrement<'py>(&self, py: Python<'py>, key: Str, by: Int64) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.decrement(&key.0, by.0).await })
    }

    /// The counter's value (0 when absent).
    fn counter<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.counter(&key.0).await })
    }

    /// Sets the counter back to 0 (deletes it).
    fn reset<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(
            py,
            async move { store.reset(&key.0).await.map(|()| NoneValue) },
        )
    }

    /// Keys of the namespace (expired ones included).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.keys().await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.State {:?}>", self.store.namespace())
    }
}

/// A worker in the leader election of one namespace (async API).
#[pyclass(frozen, module = "s3db")]
pub struct Coordinator {
    coord: s3db::Coordinator,
}

#[pymethods]
impl Coordinator {
    #[getter]
    fn worker_id(&self) -> &str {
        self.coord.worker_id()
    }

    #[getter]
    fn namespace(&self) -> &str {
        self.coord.namespace()
    }

    /// Joins the election (the first round runs before the future resolves).
    fn start<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let coord = self.coord.clone();
        awaitable(py, async move { coord.start().await.map(|()| NoneValue) })
    }

    /// Leaves the election, releasing the lease if leading.
    fn stop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let coord = self.coord.clone();
        awaitable(py, async move { coord.stop().await.map(|()| NoneValue) })
    }

    fn is_running<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let coord = self.coord.clone();
        awaitable(py, async move { Ok(coord.is_running().await) })
    }

    /// True only while this worker holds a lease it renewed recently enough.
    #[getter]
    fn is_leader(&self) -> bool {
        self.coord.is_leader()
    }

    /// The epoch of this worker's lease while it leads, else None.
    #[getter]
    fn fencing_token(&self) -> Option<u64> {
        self.coord.fencing_token()
    }

    /// `{"leader_id", "epoch", "lease_end"}` of the leader last seen, or None.
    fn get_leader<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::json_to_py(py, &leader_json(self.coord.get_leader()))
    }

    /// Workers whose heartbeat is recent: `[{"worker_id", "pod", "start_time",
    /// "last_heartbeat"}]`.
    fn active_workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let coord = self.coord.clone();
        awaitable(py, async move {
            coord.active_workers().await.map(|w| Json(workers_json(w)))
        })
    }

    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::convert::json_to_py(py, &to_json!(self.coord.metrics()))
    }

    /// Events from now on: `async for ev in coordinator.events():` with `ev` a dict
    /// `{"type": "leader_changed" | "became_leader" | "lost_leadership" |
    /// "circuit_opened" | "circuit_closed", ...}`. Subscribe before `start()`.
    fn events(&self) -> CoordinatorEvents {
        CoordinatorEvents {
            rx: Arc::new(tokio::sync::Mutex::new(self.coord.subscribe())),
        }
    }

    /// Calls `callback(event)` for every event from now on, in order, from a runtime
    /// thread (with the GIL); use `loop.call_soon_threadsafe` to reach asyncio.
    fn on_event(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<()> {
        forward_events(&self.coord, callable(py, "callback", &callback)?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "<s3db.Coordinator {:?} worker={:?}>",
            self.coord.namespace(),
            self.coord.worker_id()
        )
    }
}

/// An async iterator over a coordinator's events (from `Coordinator.events()`).
#[pyclass(frozen, module = "s3db")]
pub struct CoordinatorEvents {
    rx: Events,
}

#[pymethods]
impl CoordinatorEvents {
    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rx = self.rx.clone();
        awaitable(py, async move { Ok(AsyncNext(next_event(rx).await)) })
    }
}

/// s3db.js's PluginStorage of one plugin (async API): documents, sequences and locks under
/// `plugin=<slug>/…` (or `resource=<R>/plugin=<slug>/…`).
#[pyclass(frozen, module = "s3db")]
pub struct PluginStorage {
    pub(crate) store: s3db::PluginStorage,
}

#[pymethods]
impl PluginStorage {
    #[getter]
    fn slug(&self) -> &str {
        self.store.slug()
    }

    /// `plugin=<slug>/<parts…>`, or `resource=<R>/plugin=<slug>/<parts…>` with `resource`.
    #[pyo3(signature = (*parts, resource = None))]
    fn key(
        &self,
        py: Python<'_>,
        parts: &Bound<'_, PyTuple>,
        resource: Option<Str>,
    ) -> PyResult<String> {
        plugin_key(py, &self.store, parts, resource)
    }

    /// s3db.js `getPluginKey(resource, ...parts)`.
    #[pyo3(signature = (resource, *parts))]
    fn get_plugin_key(
        &self,
        py: Python<'_>,
        resource: Option<Str>,
        parts: &Bound<'_, PyTuple>,
    ) -> PyResult<String> {
        plugin_key(py, &self.store, parts, resource)
    }

    /// Stores the dict `data` at `key` (one PUT); returns the new etag. `behavior`:
    /// `body-overflow` (default), `body-only` or `enforce-limits`; `ttl` in seconds;
    /// `if_match=etag` / `if_none_match=True` make it conditional (`PreconditionFailedError`).
    #[pyo3(signature = (key, data, *, behavior = None, ttl = None, content_type = None, if_match = None, if_none_match = Bool(false)))]
    #[pyo3(
        text_signature = "($self, key, data, *, behavior=None, ttl=None, content_type=None, if_match=None, if_none_match=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        data: Object,
        behavior: Option<Str>,
        ttl: Option<Seconds>,
        content_type: Option<Str>,
        if_match: Option<Str>,
        if_none_match: Bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opts = set_options(py, behavior, ttl, content_type, if_match, if_none_match)?;
        let store = self.store.clone();
        awaitable(py, async move { store.set(&key.0, &data.0, &opts).await })
    }

    /// The document at `key`, or None when absent or expired.
    fn get<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(
            py,
            async move { store.get(&key.0).await.map(|o| o.map(Json)) },
        )
    }

    /// `(document, etag)` or None; the etag is for `set(..., if_match=etag)`.
    fn get_with_etag<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store
                .get_with_etag(&key.0)
                .await
                .map(|o| o.map(|(v, etag)| (Json(v), etag)))
        })
    }

    fn has<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.has(&key.0).await })
    }

    /// False when there was nothing at `key`.
    fn delete<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.delete(&key.0).await })
    }

    /// Full keys under `plugin=<slug>/<prefix>` (resource-scoped ones not included).
    #[pyo3(signature = (prefix = None))]
    fn list<'py>(&self, py: Python<'py>, prefix: Option<Str>) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.list(opt(&prefix)).await })
    }

    #[pyo3(signature = (resource, sub_prefix = None))]
    fn list_for_resource<'py>(
        &self,
        py: Python<'py>,
        resource: Str,
        sub_prefix: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store.list_for_resource(&resource.0, opt(&sub_prefix)).await
        })
    }

    /// Deletes every object of the plugin (of one resource when given); returns how many.
    #[pyo3(signature = (resource = None))]
    fn delete_all<'py>(
        &self,
        py: Python<'py>,
        resource: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.delete_all(opt(&resource)).await })
    }

    #[pyo3(signature = (name, *, resource = None, initial_value = Int64(1), increment = Int64(1)))]
    #[pyo3(text_signature = "($self, name, *, resource=None, initial_value=1, increment=1)")]
    fn next_sequence<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        resource: Option<Str>,
        initial_value: Int64,
        increment: Int64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        let opts = sequence_options(resource, initial_value, increment);
        awaitable(py, async move { store.next_sequence(&name.0, &opts).await })
    }

    /// The value the next `next_sequence` returns; None before the first.
    #[pyo3(signature = (name, resource = None))]
    fn get_sequence<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        resource: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store.get_sequence(&name.0, opt(&resource)).await
        })
    }

    #[pyo3(signature = (name, value, resource = None))]
    fn reset_sequence<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        value: Int64,
        resource: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store
                .reset_sequence(&name.0, value.0, opt(&resource))
                .await
                .map(|()| NoneValue)
        })
    }

    #[pyo3(signature = (name, resource = None))]
    fn delete_sequence<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        resource: Option<Str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move {
            store
                .delete_sequence(&name.0, opt(&resource))
                .await
                .map(|()| NoneValue)
        })
    }

    /// A `PluginLock`, or None when another holder keeps it past `timeout` seconds.
    #[pyo3(signature = (name, *, ttl = Seconds(std::time::Duration::from_secs(30)), timeout = Seconds(std::time::Duration::ZERO), worker_id = Str("unknown".into())))]
    #[pyo3(text_signature = "($self, name, *, ttl=30.0, timeout=0.0, worker_id='unknown')")]
    fn acquire_lock<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        ttl: Seconds,
        timeout: Seconds,
        worker_id: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        let opts = plugin_lock_options(ttl, timeout, worker_id);
        awaitable(py, async move {
            store
                .acquire_lock(&name.0, &opts)
                .await
                .map(|l| l.map(|lock| PluginLock { lock }))
        })
    }

    /// False when the lock was taken over or is gone.
    fn release_lock<'py>(
        &self,
        py: Python<'py>,
        lock: Bound<'py, PluginLock>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        let lock = lock.get().lock.clone();
        awaitable(py, async move { store.release_lock(&lock).await })
    }

    fn is_locked<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        awaitable(py, async move { store.is_locked(&name.0).await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.PluginStorage {:?}>", self.store.slug())
    }
}
