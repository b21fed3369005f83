//! The blocking twin: same method names, values returned directly. Each call runs on the
//! shared tokio runtime with the GIL released, so other Python threads keep running.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use std::sync::Arc;

use pyo3::types::{PyBytes, PyTuple};

use crate::aio::lock_options;
use crate::block;
use crate::convert::{
    json_to_py, page_json, reindex_json, resource_config, stats_dict, Bool, Int64, Object,
    PartitionsArg, Rule, Seconds, Size, Str,
};
use crate::coordination::{
    batch_size, callable, coordinator_options, forward_events, leader_json, next_event,
    opt_duration, split_id_generator, start_renewal, state_update, stop_iteration,
    with_generated_id, workers_json, AnyJson, Callback, Content, Events, IdGeneratorArg,
    IdGenerators, Renewal, Token, DEFAULT_CONTENT_TYPE,
};
use crate::errors::{engine_error, redact};
use crate::plugins::{
    lock_options as plugin_lock_options, opt, plugin_key, sequence_options, set_options, PluginLock,
};
use crate::to_json;

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
    .map(|db| SyncDatabase {
        db,
        id_gens: IdGenerators::default(),
    })
}

/// A connected database (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncDatabase {
    db: s3db::Database,
    id_gens: IdGenerators,
}

#[pymethods]
impl SyncDatabase {
    /// Defines (or redefines) a resource with s3db.js's `createResource` options.
    /// `id_generator` is an s3db.js form (`"incremental[:…]"`, `{"type": "incremental", …}`,
    /// an id size) handed to the engine, or a callable returning an id, applied by the
    /// binding to records that have none.
    #[pyo3(signature = (name, attributes, *, behavior = None, timestamps = None, partitions = None, paranoid = None, id_size = None, id_generator = None, passphrase = None, hooks = None))]
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
        id_generator: Option<IdGeneratorArg>,
        passphrase: Option<Str>,
        hooks: Option<Bound<'_, PyAny>>,
    ) -> PyResult<SyncResource> {
        let db = self.db.clone();
        let (engine_gen, custom) = split_id_generator(id_generator);
        let config = resource_config(
            attributes, behavior, timestamps, partitions, paranoid, id_size, engine_gen, passphrase,
        );
        let hooks = match &config {
            Ok(_) => crate::hooks::from_arg(py, hooks.as_ref())?,
            Err(_) => s3db::Hooks::default(),
        };
        let res = block(py, async move {
            db.create_resource_with_hooks(&name.0, config?, hooks).await
        })?;
        self.id_gens.set(res.name(), custom.clone());
        Ok(SyncResource {
            res,
            id_gen: custom,
        })
    }

    fn resource(&self, py: Python<'_>, name: Str) -> PyResult<SyncResource> {
        let db = self.db.clone();
        let res = block(py, async move { db.resource(&name.0).await })?;
        let id_gen = self.id_gens.get(res.name());
        Ok(SyncResource { res, id_gen })
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
    /// `auto_renew=True` renews it every ttl/3 until release; `on_lost(message)` then runs
    /// once, from a runtime thread, if renewal fails for good.
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
    ) -> PyResult<SyncLock> {
        let db = self.db.clone();
        let opts = lock_options(ttl, timeout);
        let renewal = Renewal::new(py, auto_renew.0, on_lost.as_ref())?;
        block(py, async move {
            let lock = db.lock(&name.0, opts).await?;
            renewal.apply(&lock).await?;
            Ok(lock)
        })
        .map(|lock| SyncLock { lock })
    }

    /// Whether someone holds the lock now (one GET).
    fn is_locked(&self, py: Python<'_>, name: Str) -> PyResult<bool> {
        let db = self.db.clone();
        block(py, async move { db.is_locked(&name.0).await })
    }

    /// `{"holder_id", "fencing_token", "acquired_at", "expires_at"}` or None.
    fn lock_info<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        let info = block(py, async move { db.lock_info(&name.0).await })?;
        json_to_py(py, &info.map_or(serde_json::Value::Null, |i| to_json!(i)))
    }

    fn fenced_put(
        &self,
        py: Python<'_>,
        name: Str,
        value: AnyJson,
        token: Token,
    ) -> PyResult<String> {
        let db = self.db.clone();
        block(py, async move {
            db.fenced_put(&name.0, &value.0, token.0).await
        })
    }

    /// `{"value", "fencing_token", "version"}` of a fenced object, or None.
    fn fenced_get<'py>(&self, py: Python<'py>, name: Str) -> PyResult<Bound<'py, PyAny>> {
        let db = self.db.clone();
        let f = block(py, async move { db.fenced_get(&name.0).await })?;
        json_to_py(py, &f.map_or(serde_json::Value::Null, |f| to_json!(f)))
    }

    #[pyo3(signature = (name, start = Int64(1), increment = Int64(1), batch_size = Int64(1)))]
    #[pyo3(text_signature = "($self, name, start=1, increment=1, batch_size=1)")]
    fn sequence(
        &self,
        py: Python<'_>,
        name: Str,
        start: Int64,
        increment: Int64,
        batch_size: Int64,
    ) -> PyResult<SyncSequence> {
        let opts = s3db::SequenceOptions {
            start: start.0,
            increment: increment.0,
            batch_size: self::batch_size(py, batch_size)?,
        };
        self.db
            .sequence_with(&name.0, opts)
            .map(|seq| SyncSequence { seq })
            .map_err(|e| engine_error(py, &e))
    }

    fn list_sequences(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let db = self.db.clone();
        block(py, async move { db.list_sequences().await })
    }

    fn state(&self, py: Python<'_>, namespace: Str) -> PyResult<SyncState> {
        self.db
            .state(&namespace.0)
            .map(|store| SyncState { store })
            .map_err(|e| engine_error(py, &e))
    }

    /// A worker in the leader election of `namespace` (call `start()`); times in seconds.
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
    ) -> PyResult<SyncCoordinator> {
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
        .map(|coord| SyncCoordinator { coord })
        .map_err(|e| engine_error(py, &e))
    }

    fn healing_log(&self) -> Vec<String> {
        self.db.healing_log()
    }

    fn plugin_storage(&self, py: Python<'_>, slug: Str) -> PyResult<SyncPluginStorage> {
        self.db
            .plugin_storage(&slug.0)
            .map(|store| SyncPluginStorage { store })
            .map_err(|e| engine_error(py, &e))
    }

    fn __repr__(&self) -> String {
        "<s3db.SyncDatabase>".to_string()
    }
}

/// The records of one resource (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncResource {
    pub(crate) res: s3db::Resource,
    pub(crate) id_gen: Option<Callback>,
}

#[pymethods]
impl SyncResource {
    #[getter]
    fn name(&self) -> &str {
        self.res.name()
    }

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
        let v = block(py, async move {
            res.insert_with_content(data, content.0.into(), &ct).await
        })?;
        json_to_py(py, &v)
    }

    #[pyo3(signature = (id, content, content_type = None))]
    fn set_content(
        &self,
        py: Python<'_>,
        id: Str,
        content: Option<Content>,
        content_type: Option<Str>,
    ) -> PyResult<()> {
        let res = self.res.clone();
        let ct = content_type.map_or_else(|| DEFAULT_CONTENT_TYPE.to_string(), |c| c.0);
        block(py, async move {
            res.set_content(&id.0, content.map(|c| (c.0.into(), ct.as_str())))
                .await
        })
    }

    fn content<'py>(&self, py: Python<'py>, id: Str) -> PyResult<(Bound<'py, PyBytes>, String)> {
        let res = self.res.clone();
        let (bytes, ct) = block(py, async move { res.content(&id.0).await })?;
        Ok((PyBytes::new(py, &bytes), ct))
    }

    fn id_sequence(&self) -> Option<SyncSequence> {
        self.res
            .id_sequence()
            .cloned()
            .map(|seq| SyncSequence { seq })
    }

    fn get_or_none<'py>(&self, py: Python<'py>, id: Str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let res = self.res.clone();
        match block(py, async move { res.get_or_none(&id.0).await })? {
            Some(v) => json_to_py(py, &v).map(Some),
            None => Ok(None),
        }
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

    /// s3db.js `updateConditional`: `update_if` that also returns the new version tag, as
    /// `(record, etag)`.
    fn update_conditional<'py>(
        &self,
        py: Python<'py>,
        id: Str,
        changes: Object,
        if_match: Str,
    ) -> PyResult<(Bound<'py, PyAny>, String)> {
        let res = self.res.clone();
        let (record, etag) = block(py, async move {
            res.update_conditional(&id.0, changes.0, &if_match.0).await
        })?;
        Ok((json_to_py(py, &record)?, etag))
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
        let page = block(py, async move {
            res.page(size.0, cursor.as_ref().map(|c| c.0.as_str()))
                .await
        })?;
        json_to_py(py, &page_json(page))
    }

    #[pyo3(signature = (partition = None))]
    fn reindex<'py>(&self, py: Python<'py>, partition: Option<Str>) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let counts = block(py, async move {
            res.reindex(partition.as_ref().map(|p| p.0.as_str())).await
        })?;
        json_to_py(py, &reindex_json(counts))
    }

    fn add_plugin_attribute<'py>(
        &self,
        py: Python<'py>,
        name: Str,
        definition: Rule,
        plugin: Str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let res = self.res.clone();
        let map = block(py, async move {
            res.add_plugin_attribute(&name.0, &definition.0, &plugin.0)
                .await
        })?;
        json_to_py(py, &map.into())
    }

    fn remove_plugin_attribute(&self, py: Python<'_>, name: Str, plugin: Str) -> PyResult<bool> {
        let res = self.res.clone();
        block(py, async move {
            res.remove_plugin_attribute(&name.0, &plugin.0).await
        })
    }

    #[getter]
    fn plugin_map<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.res.plugin_map().into())
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
    fn expires_at(&self, py: Python<'_>) -> PyResult<i64> {
        let lock = self.lock.clone();
        block(py, async move { Ok(lock.expires_at().await) })
    }

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

    fn guarded_put(&self, py: Python<'_>, name: Str, value: AnyJson) -> PyResult<String> {
        let lock = self.lock.clone();
        block(py, async move { lock.guarded_put(&name.0, &value.0).await })
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

    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let seq = self.seq.clone();
        block(py, async move { seq.delete().await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.SyncSequence {:?}>", self.seq.name())
    }
}

/// Distributed state of one namespace (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncState {
    store: s3db::StateStore,
}

#[pymethods]
impl SyncState {
    #[getter]
    fn namespace(&self) -> &str {
        self.store.namespace()
    }

    fn get<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        let e = block(py, async move { store.get(&key.0).await })?;
        json_to_py(py, &e.map_or(serde_json::Value::Null, |e| to_json!(e)))
    }

    #[pyo3(signature = (key, value, ttl = None))]
    fn set(
        &self,
        py: Python<'_>,
        key: Str,
        value: AnyJson,
        ttl: Option<Seconds>,
    ) -> PyResult<String> {
        let store = self.store.clone();
        block(py, async move {
            store.set(&key.0, value.0, opt_duration(ttl)).await
        })
    }

    /// Read-modify-write by compare-and-swap: `fn(old)` returns the new value (it runs on a
    /// runtime thread, again after each lost race). Returns the entry written.
    fn update<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        r#fn: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let f = callable(py, "fn", &r#fn)?;
        let store = self.store.clone();
        let out = block(py, state_update(store, key.0, f))?;
        out.into_pyobject(py)
    }

    fn compare_and_swap<'py>(
        &self,
        py: Python<'py>,
        key: Str,
        expected_version: Option<Str>,
        value: AnyJson,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.store.clone();
        let r = block(py, async move {
            store
                .compare_and_swap(
                    &key.0,
                    expected_version.as_ref().map(|v| v.0.as_str()),
                    value.0,
                )
                .await
        })?;
        json_to_py(py, &to_json!(r))
    }

    fn delete(&self, py: Python<'_>, key: Str) -> PyResult<()> {
        let store = self.store.clone();
        block(py, async move { store.delete(&key.0).await })
    }

    #[pyo3(signature = (key, by = Int64(1)))]
    #[pyo3(text_signature = "($self, key, by=1)")]
    fn increment(&self, py: Python<'_>, key: Str, by: Int64) -> PyResult<i64> {
        let store = self.store.clone();
        block(py, async move { store.increment(&key.0, by.0).await })
    }

    #[pyo3(signature = (key, by = Int64(1)))]
    #[pyo3(text_signature = "($self, key, by=1)")]
    fn decrement(&self, py: Python<'_>, key: Str, by: Int64) -> PyResult<i64> {
        let store = self.store.clone();
        block(py, async move { store.decrement(&key.0, by.0).await })
    }

    fn counter(&self, py: Python<'_>, key: Str) -> PyResult<i64> {
        let store = self.store.clone();
        block(py, async move { store.counter(&key.0).await })
    }

    fn reset(&self, py: Python<'_>, key: Str) -> PyResult<()> {
        let store = self.store.clone();
        block(py, async move { store.reset(&key.0).await })
    }

    fn keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let store = self.store.clone();
        block(py, async move { store.keys().await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.SyncState {:?}>", self.store.namespace())
    }
}

/// A worker in the leader election of one namespace (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncCoordinator {
    coord: s3db::Coordinator,
}

#[pymethods]
impl SyncCoordinator {
    #[getter]
    fn worker_id(&self) -> &str {
        self.coord.worker_id()
    }

    #[getter]
    fn namespace(&self) -> &str {
        self.coord.namespace()
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let coord = self.coord.clone();
        block(py, async move { coord.start().await })
    }

    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let coord = self.coord.clone();
        block(py, async move { coord.stop().await })
    }

    fn is_running(&self, py: Python<'_>) -> PyResult<bool> {
        let coord = self.coord.clone();
        block(py, async move { Ok(coord.is_running().await) })
    }

    #[getter]
    fn is_leader(&self) -> bool {
        self.coord.is_leader()
    }

    #[getter]
    fn fencing_token(&self) -> Option<u64> {
        self.coord.fencing_token()
    }

    fn get_leader<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &leader_json(self.coord.get_leader()))
    }

    fn active_workers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let coord = self.coord.clone();
        let w = block(py, async move { coord.active_workers().await })?;
        json_to_py(py, &workers_json(w))
    }

    fn metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &to_json!(self.coord.metrics()))
    }

    /// Events from now on, as a blocking iterator (`for ev in coordinator.events():`);
    /// `wait(timeout)` returns the next one or None. Subscribe before `start()`.
    fn events(&self) -> SyncCoordinatorEvents {
        SyncCoordinatorEvents {
            rx: Arc::new(tokio::sync::Mutex::new(self.coord.subscribe())),
        }
    }

    /// Calls `callback(event)` for every event from now on, in order, from a runtime
    /// thread (with the GIL).
    fn on_event(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<()> {
        forward_events(&self.coord, callable(py, "callback", &callback)?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!(
            "<s3db.SyncCoordinator {:?} worker={:?}>",
            self.coord.namespace(),
            self.coord.worker_id()
        )
    }
}

/// A blocking iterator over a coordinator's events (from `SyncCoordinator.events()`).
#[pyclass(frozen, module = "s3db")]
pub struct SyncCoordinatorEvents {
    rx: Events,
}

#[pymethods]
impl SyncCoordinatorEvents {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rx = self.rx.clone();
        match block(py, async move { Ok(next_event(rx).await) })? {
            Some(ev) => json_to_py(py, &ev),
            None => Err(stop_iteration()),
        }
    }

    /// The next event, or None when none comes within `timeout` seconds.
    #[pyo3(signature = (timeout = None))]
    fn wait<'py>(&self, py: Python<'py>, timeout: Option<Seconds>) -> PyResult<Bound<'py, PyAny>> {
        let rx = self.rx.clone();
        let ev = block(py, async move {
            Ok(match timeout {
                Some(t) => tokio::time::timeout(t.0, next_event(rx))
                    .await
                    .ok()
                    .flatten(),
                None => next_event(rx).await,
            })
        })?;
        json_to_py(py, &ev.unwrap_or(serde_json::Value::Null))
    }
}

/// s3db.js's PluginStorage of one plugin (blocking API).
#[pyclass(frozen, module = "s3db")]
pub struct SyncPluginStorage {
    store: s3db::PluginStorage,
}

#[pymethods]
impl SyncPluginStorage {
    #[getter]
    fn slug(&self) -> &str {
        self.store.slug()
    }

    #[pyo3(signature = (*parts, resource = None))]
    fn key(
        &self,
        py: Python<'_>,
        parts: &Bound<'_, PyTuple>,
        resource: Option<Str>,
    ) -> PyResult<String> {
        plugin_key(py, &self.store, parts, resource)
    }

    #[pyo3(signature = (resource, *parts))]
    fn get_plugin_key(
        &self,
        py: Python<'_>,
        resource: Option<Str>,
        parts: &Bound<'_, PyTuple>,
    ) -> PyResult<String> {
        plugin_key(py, &self.store, parts, resource)
    }

    #[pyo3(signature = (key, data, *, behavior = None, ttl = None, content_type = None, if_match = None, if_none_match = Bool(false)))]
    #[pyo3(
        text_signature = "($self, key, data, *, behavior=None, ttl=None, content_type=None, if_match=None, if_none_match=False)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn set(
        &self,
        py: Python<'_>,
        key: Str,
        data: Object,
        behavior: Option<Str>,
        ttl: Option<Seconds>,
        content_type: Option<Str>,
        if_match: Option<Str>,
        if_none_match: Bool,
    ) -> PyResult<String> {
        let opts = set_options(py, behavior, ttl, content_type, if_match, if_none_match)?;
        let store = self.store.clone();
        block(py, async move { store.set(&key.0, &data.0, &opts).await })
    }

    fn get<'py>(&self, py: Python<'py>, key: Str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let store = self.store.clone();
        let v = block(py, async move { store.get(&key.0).await })?;
        v.map(|v| json_to_py(py, &v)).transpose()
    }

    fn get_with_etag<'py>(
        &self,
        py: Python<'py>,
        key: Str,
    ) -> PyResult<Option<(Bound<'py, PyAny>, String)>> {
        let store = self.store.clone();
        let v = block(py, async move { store.get_with_etag(&key.0).await })?;
        v.map(|(v, etag)| Ok((json_to_py(py, &v)?, etag)))
            .transpose()
    }

    fn has(&self, py: Python<'_>, key: Str) -> PyResult<bool> {
        let store = self.store.clone();
        block(py, async move { store.has(&key.0).await })
    }

    fn delete(&self, py: Python<'_>, key: Str) -> PyResult<bool> {
        let store = self.store.clone();
        block(py, async move { store.delete(&key.0).await })
    }

    #[pyo3(signature = (prefix = None))]
    fn list(&self, py: Python<'_>, prefix: Option<Str>) -> PyResult<Vec<String>> {
        let store = self.store.clone();
        block(py, async move { store.list(opt(&prefix)).await })
    }

    #[pyo3(signature = (resource, sub_prefix = None))]
    fn list_for_resource(
        &self,
        py: Python<'_>,
        resource: Str,
        sub_prefix: Option<Str>,
    ) -> PyResult<Vec<String>> {
        let store = self.store.clone();
        block(py, async move {
            store.list_for_resource(&resource.0, opt(&sub_prefix)).await
        })
    }

    #[pyo3(signature = (resource = None))]
    fn delete_all(&self, py: Python<'_>, resource: Option<Str>) -> PyResult<u64> {
        let store = self.store.clone();
        block(py, async move { store.delete_all(opt(&resource)).await })
    }

    #[pyo3(signature = (name, *, resource = None, initial_value = Int64(1), increment = Int64(1)))]
    #[pyo3(text_signature = "($self, name, *, resource=None, initial_value=1, increment=1)")]
    fn next_sequence(
        &self,
        py: Python<'_>,
        name: Str,
        resource: Option<Str>,
        initial_value: Int64,
        increment: Int64,
    ) -> PyResult<i64> {
        let store = self.store.clone();
        let opts = sequence_options(resource, initial_value, increment);
        block(py, async move { store.next_sequence(&name.0, &opts).await })
    }

    #[pyo3(signature = (name, resource = None))]
    fn get_sequence(
        &self,
        py: Python<'_>,
        name: Str,
        resource: Option<Str>,
    ) -> PyResult<Option<i64>> {
        let store = self.store.clone();
        block(py, async move {
            store.get_sequence(&name.0, opt(&resource)).await
        })
    }

    #[pyo3(signature = (name, value, resource = None))]
    fn reset_sequence(
        &self,
        py: Python<'_>,
        name: Str,
        value: Int64,
        resource: Option<Str>,
    ) -> PyResult<()> {
        let store = self.store.clone();
        block(py, async move {
            store.reset_sequence(&name.0, value.0, opt(&resource)).await
        })
    }

    #[pyo3(signature = (name, resource = None))]
    fn delete_sequence(&self, py: Python<'_>, name: Str, resource: Option<Str>) -> PyResult<()> {
        let store = self.store.clone();
        block(py, async move {
            store.delete_sequence(&name.0, opt(&resource)).await
        })
    }

    #[pyo3(signature = (name, *, ttl = Seconds(std::time::Duration::from_secs(30)), timeout = Seconds(std::time::Duration::ZERO), worker_id = Str("unknown".into())))]
    #[pyo3(text_signature = "($self, name, *, ttl=30.0, timeout=0.0, worker_id='unknown')")]
    fn acquire_lock(
        &self,
        py: Python<'_>,
        name: Str,
        ttl: Seconds,
        timeout: Seconds,
        worker_id: Str,
    ) -> PyResult<Option<PluginLock>> {
        let store = self.store.clone();
        let opts = plugin_lock_options(ttl, timeout, worker_id);
        let lock = block(py, async move { store.acquire_lock(&name.0, &opts).await })?;
        Ok(lock.map(|lock| PluginLock { lock }))
    }

    fn release_lock(&self, py: Python<'_>, lock: Bound<'_, PluginLock>) -> PyResult<bool> {
        let store = self.store.clone();
        let lock = lock.get().lock.clone();
        block(py, async move { store.release_lock(&lock).await })
    }

    fn is_locked(&self, py: Python<'_>, name: Str) -> PyResult<bool> {
        let store = self.store.clone();
        block(py, async move { store.is_locked(&name.0).await })
    }

    fn __repr__(&self) -> String {
        format!("<s3db.SyncPluginStorage {:?}>", self.store.slug())
    }
}
