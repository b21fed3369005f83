//! Shared pieces of the coordination API (locks, state, coordinator, content, id generators)
//! used by both the asyncio classes and their blocking twins: argument types, result shapes
//! and the bridges that call Python back from the runtime (`on_lost`, `on_event`,
//! `State.update(fn)`, custom id generators).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyInt, PyMapping, PyMemoryView, PyString};
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::convert::{json_to_py, py_to_json, type_name, Int64, Seconds, Str};
use crate::errors::invalid;

/// A Python callable shared with the runtime (no GIL needed to clone or hold it).
pub type Callback = Arc<Py<PyAny>>;

/// A callable argument (`on_lost`, `on_event`, `State.update`'s `fn`).
pub fn callable(py: Python<'_>, what: &str, obj: &Bound<'_, PyAny>) -> PyResult<Callback> {
    if !obj.is_callable() {
        return Err(invalid(
            py,
            &format!("{what} must be callable, got {}", type_name(obj)),
        ));
    }
    Ok(Arc::new(obj.clone().unbind()))
}

/// Calls `cb(arg)` with the GIL. An exception is reported through `sys.unraisablehook`
/// (nobody awaits a callback). Nothing happens once the interpreter is shutting down.
fn invoke(cb: &Py<PyAny>, arg: &Value) {
    Python::try_attach(|py| {
        let res = json_to_py(py, arg).and_then(|a| cb.call1(py, (a,)));
        if let Err(e) = res {
            e.write_unraisable(py, Some(cb.bind(py)));
        }
    });
}

/// Runs `invoke` on the runtime's blocking pool (so no async worker waits for the GIL);
/// outside a runtime, right here.
fn invoke_off_runtime(cb: Callback, arg: Value) -> Option<tokio::task::JoinHandle<()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(h) => Some(h.spawn_blocking(move || invoke(&cb, &arg))),
        Err(_) => {
            invoke(&cb, &arg);
            None
        }
    }
}

/// `lock(..., auto_renew=True, on_lost=fn)` and `lock.auto_renew(on_lost)`: renews in the
/// background; `on_lost(message)` runs once (from a runtime thread, with the GIL) when
/// renewal fails for good.
pub fn start_renewal(lock: &s3db::Lock, on_lost: Option<Callback>) -> s3db::Result<()> {
    lock.auto_renew(move |err: s3db::Error| {
        if let Some(cb) = &on_lost {
            invoke_off_runtime(cb.clone(), Value::String(err.message().to_string()));
        }
    })
}

/// What `lock(...)` does after acquiring: start auto-renewal when asked (releasing the lock
/// again if that fails).
#[derive(Clone)]
pub enum Renewal {
    Off,
    On(Option<Callback>),
}

impl Renewal {
    pub fn new(
        py: Python<'_>,
        auto_renew: bool,
        on_lost: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Renewal> {
        let on_lost = on_lost
            .filter(|o| !o.is_none())
            .map(|o| callable(py, "on_lost", o))
            .transpose()?;
        match (auto_renew, on_lost) {
            (false, Some(_)) => Err(invalid(py, "on_lost needs auto_renew=True")),
            (false, None) => Ok(Renewal::Off),
            (true, cb) => Ok(Renewal::On(cb)),
        }
    }

    pub async fn apply(&self, lock: &s3db::Lock) -> s3db::Result<()> {
        if let Renewal::On(cb) = self {
            if let Err(e) = start_renewal(lock, cb.clone()) {
                let _ = lock.release().await;
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Any JSON value (state values, fenced values).
pub struct AnyJson(pub Value);

impl<'a, 'py> FromPyObject<'a, 'py> for AnyJson {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        py_to_json(&obj).map(AnyJson)
    }
}

/// A non-negative integer that fits 64 bits (fencing tokens).
#[derive(Clone, Copy)]
pub struct Token(pub u64);

impl<'a, 'py> FromPyObject<'a, 'py> for Token {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.cast::<PyBool>().is_ok() || obj.cast::<PyInt>().is_err() {
            return Err(invalid(
                obj.py(),
                &format!("expected int, got {}", type_name(&obj)),
            ));
        }
        obj.extract::<u64>()
            .map(Token)
            .map_err(|_| invalid(obj.py(), "expected an int between 0 and 2**64 - 1"))
    }
}

/// `batch_size` of a sequence (0 and 1 mean one request per value).
pub fn batch_size(py: Python<'_>, n: Int64) -> PyResult<u32> {
    u32::try_from(n.0).map_err(|_| invalid(py, "batch_size must be between 0 and 4294967295"))
}

/// Binary content: bytes, bytearray or memoryview (a str is refused: encode it first).
pub struct Content(pub Vec<u8>);

impl<'a, 'py> FromPyObject<'a, 'py> for Content {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(b) = obj.cast::<PyBytes>() {
            return Ok(Content(b.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.cast::<PyByteArray>() {
            return Ok(Content(b.to_vec()));
        }
        if obj.cast::<PyMemoryView>().is_ok() {
            let bytes = obj.py().get_type::<PyBytes>().call1((&*obj,))?;
            return Ok(Content(bytes.cast::<PyBytes>()?.as_bytes().to_vec()));
        }
        Err(invalid(
            obj.py(),
            &format!(
                "content must be bytes, bytearray or memoryview, got {}",
                type_name(&obj)
            ),
        ))
    }
}

pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// Content on its way to Python: `bytes`.
pub struct BytesOut(pub Vec<u8>);

impl<'py> IntoPyObject<'py> for BytesOut {
    type Target = PyBytes;
    type Output = Bound<'py, PyBytes>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        Ok(PyBytes::new(py, &self.0))
    }
}

// --- id generators ----------------------------------------------------------------------

/// `create_resource(id_generator=...)`: an s3db.js form handed to the engine, or a Python
/// callable the binding applies itself.
pub enum IdGeneratorArg {
    Engine(Value),
    Custom(Callback),
}

impl<'a, 'py> FromPyObject<'a, 'py> for IdGeneratorArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let is_int = obj.cast::<PyInt>().is_ok() && obj.cast::<PyBool>().is_err();
        if obj.cast::<PyString>().is_ok() || is_int {
            return py_to_json(&obj).map(IdGeneratorArg::Engine);
        }
        if obj.cast::<PyDict>().is_ok() || obj.cast::<PyMapping>().is_ok() {
            return py_to_json(&obj).map(IdGeneratorArg::Engine);
        }
        if obj.is_callable() {
            return Ok(IdGeneratorArg::Custom(Arc::new(obj.to_owned().unbind())));
        }
        Err(invalid(
            py,
            &format!(
                "id_generator: expected a str, an int, a dict or a callable, got {}",
                type_name(&obj)
            ),
        ))
    }
}

/// Splits `id_generator` into what the engine gets and the binding's own callable.
pub fn split_id_generator(arg: Option<IdGeneratorArg>) -> (Option<Value>, Option<Callback>) {
    match arg {
        None => (None, None),
        Some(IdGeneratorArg::Engine(v)) => (Some(v), None),
        Some(IdGeneratorArg::Custom(f)) => (None, Some(f)),
    }
}

/// The Python id generators of a database's resources, by resource name (they are not
/// stored in the catalog: `db.resource(name)` on the same handle finds them again).
#[derive(Clone, Default)]
pub struct IdGenerators(Arc<Mutex<HashMap<String, Callback>>>);

impl IdGenerators {
    pub fn set(&self, resource: &str, gen: Option<Callback>) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match gen {
            Some(g) => {
                map.insert(resource.to_string(), g);
            }
            None => {
                map.remove(resource);
            }
        }
    }

    pub fn get(&self, resource: &str) -> Option<Callback> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(resource).cloned()
    }
}

/// `record` with an `id` from the Python generator when it has none (or `id: None`).
pub fn with_generated_id(py: Python<'_>, gen: Option<&Callback>, record: Value) -> PyResult<Value> {
    let Some(gen) = gen else {
        return Ok(record);
    };
    let Value::Object(mut map) = record else {
        return Ok(record);
    };
    if !matches!(map.get("id"), None | Some(Value::Null)) {
        return Ok(Value::Object(map));
    }
    let out = gen.bind(py).call0()?;
    let id = if let Ok(s) = out.cast::<PyString>() {
        s.to_cow()?.into_owned()
    } else if out.cast::<PyInt>().is_ok() && out.cast::<PyBool>().is_err() {
        out.str()?.to_cow()?.into_owned()
    } else {
        return Err(invalid(
            py,
            &format!("id_generator must return a str, got {}", type_name(&out)),
        ));
    };
    map.insert("id".into(), Value::String(id));
    Ok(Value::Object(map))
}

pub fn with_generated_ids(
    py: Python<'_>,
    gen: Option<&Callback>,
    records: Vec<Value>,
) -> PyResult<Vec<Value>> {
    if gen.is_none() {
        return Ok(records);
    }
    records
        .into_iter()
        .map(|r| with_generated_id(py, gen, r))
        .collect()
}

// --- state ------------------------------------------------------------------------------

/// A serializable engine value (`LockInfo`, `Fenced`, `StateEntry`, `CasResult`,
/// `CoordinatorMetrics`: their field names are already snake_case) as JSON.
#[macro_export]
macro_rules! to_json {
    ($v:expr) => {
        serde_json::to_value(&$v).unwrap_or(serde_json::Value::Null)
    };
}

/// The result of `State.update`: the entry written, or the exception `fn` raised.
pub enum UpdateOut {
    Entry(Value),
    Raised(PyErr),
}

impl<'py> IntoPyObject<'py> for UpdateOut {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            UpdateOut::Entry(v) => json_to_py(py, &v),
            UpdateOut::Raised(e) => Err(e),
        }
    }
}

/// Runs the engine's compare-and-swap `update` with a Python function: `fn(old)` (None when
/// absent) runs with the GIL on the runtime thread doing the update, again after each lost
/// race. An exception from `fn` aborts the update and is raised as is.
pub async fn state_update(
    store: s3db::StateStore,
    key: String,
    f: Callback,
) -> s3db::Result<UpdateOut> {
    let raised: Arc<Mutex<Option<PyErr>>> = Arc::default();
    let stash = raised.clone();
    let step = move |old: Option<Value>| -> s3db::Result<Value> {
        let call = || {
            Python::attach(|py| -> PyResult<Value> {
                let arg = match &old {
                    Some(v) => json_to_py(py, v)?,
                    None => py.None().into_bound(py),
                };
                let out = f.bind(py).call1((arg,))?;
                if out.hasattr("__await__")? {
                    if out.hasattr("close")? {
                        let _ = out.call_method0("close");
                    }
                    return Err(invalid(
                        py,
                        "update: fn must return the new value (async functions are not supported)",
                    ));
                }
                py_to_json(&out)
            })
        };
        let res = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(call)
            }
            _ => call(),
        };
        res.map_err(|e| {
            *stash.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            s3db::Error::invalid("update: fn raised")
        })
    };
    let res = store.update(&key, step).await;
    let py_err = raised.lock().unwrap_or_else(|p| p.into_inner()).take();
    match (res, py_err) {
        (Ok(entry), _) => Ok(UpdateOut::Entry(crate::to_json!(entry))),
        (Err(_), Some(e)) => Ok(UpdateOut::Raised(e)),
        (Err(e), None) => Err(e),
    }
}

// --- coordinator ------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
pub fn coordinator_options(
    heartbeat_interval: Seconds,
    lease_timeout: Option<Seconds>,
    worker_timeout: Option<Seconds>,
    startup_jitter: Option<Seconds>,
    step_down_margin: Option<Seconds>,
    circuit_breaker_threshold: Option<Int64>,
    circuit_breaker_cooldown: Option<Seconds>,
    strategy: Option<Str>,
    pod: Option<Str>,
) -> s3db::Result<s3db::CoordinatorOptions> {
    let mut o = s3db::CoordinatorOptions::with_heartbeat(heartbeat_interval.0);
    if let Some(s) = lease_timeout {
        o.lease_timeout = s.0;
    }
    if let Some(s) = worker_timeout {
        o.worker_timeout = s.0;
    }
    if let Some(s) = startup_jitter {
        o.startup_jitter = s.0;
    }
    if let Some(s) = step_down_margin {
        o.step_down_margin = s.0;
    }
    if let Some(n) = circuit_breaker_threshold {
        o.circuit_breaker_threshold = u32::try_from(n.0).map_err(|_| {
            s3db::Error::invalid("circuit_breaker_threshold must be between 1 and 4294967295")
        })?;
    }
    if let Some(s) = circuit_breaker_cooldown {
        o.circuit_breaker_cooldown = s.0;
    }
    if let Some(s) = strategy {
        o.strategy = s.0.parse()?;
    }
    if let Some(p) = pod {
        o.pod = Some(p.0);
    }
    Ok(o)
}

pub fn event_json(ev: &s3db::CoordinatorEvent) -> Value {
    use s3db::CoordinatorEvent as E;
    match ev {
        E::LeaderChanged { leader_id, epoch } => {
            json!({"type": "leader_changed", "leader_id": leader_id, "epoch": epoch})
        }
        E::BecameLeader { epoch } => json!({"type": "became_leader", "epoch": epoch}),
        E::LostLeadership { epoch } => json!({"type": "lost_leadership", "epoch": epoch}),
        E::CircuitOpened { failures } => json!({"type": "circuit_opened", "failures": failures}),
        E::CircuitClosed => json!({"type": "circuit_closed"}),
    }
}

pub fn leader_json(l: Option<s3db::LeaderInfo>) -> Value {
    match l {
        Some(l) => json!({"leader_id": l.leader_id, "epoch": l.epoch, "lease_end": l.lease_end}),
        None => Value::Null,
    }
}

pub fn workers_json(workers: Vec<s3db::WorkerInfo>) -> Value {
    Value::Array(
        workers
            .into_iter()
            .map(|w| {
                json!({
                    "worker_id": w.worker_id,
                    "pod": w.pod,
                    "start_time": w.start_time,
                    "last_heartbeat": w.last_heartbeat,
                })
            })
            .collect(),
    )
}

/// A subscription to a coordinator's events, shared by the iterator's calls.
pub type Events = Arc<tokio::sync::Mutex<broadcast::Receiver<s3db::CoordinatorEvent>>>;

/// The next event; `None` once the coordinator is gone. A receiver that fell behind skips
/// the events it lost.
pub async fn next_event(rx: Events) -> Option<Value> {
    let mut rx = rx.lock().await;
    loop {
        match rx.recv().await {
            Ok(ev) => return Some(event_json(&ev)),
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// The next event as `__anext__` returns it (StopAsyncIteration at the end).
pub struct AsyncNext(pub Option<Value>);

impl<'py> IntoPyObject<'py> for AsyncNext {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.0 {
            Some(v) => json_to_py(py, &v),
            None => Err(PyStopAsyncIteration::new_err(())),
        }
    }
}

pub fn stop_iteration() -> PyErr {
    PyStopIteration::new_err(())
}

/// `on_event(callback)`: every event from now on, in order, as `callback(event)` from a
/// runtime thread (with the GIL). Ends when the coordinator is gone.
pub fn forward_events(coord: &s3db::Coordinator, cb: Callback) {
    let mut rx = coord.subscribe();
    crate::runtime().spawn(async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(done) = invoke_off_runtime(cb.clone(), event_json(&ev)) {
                        let _ = done.await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// Optional seconds → `Duration` (for `State.set(ttl=...)`).
pub fn opt_duration(s: Option<Seconds>) -> Option<Duration> {
    s.map(|s| s.0)
}
