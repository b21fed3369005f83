//! Coordination (docs/bindings.md, "Coordination"): lock inspection, auto-renewal and fencing;
//! batched sequences; distributed state; the leader-election coordinator; catalog healing;
//! binary content.
//!
//! Callbacks into C never outlive the call that turns them off: `s3db_lock_stop_renewing`,
//! `s3db_lock_release`, `s3db_lock_free` (on-lost callbacks) and `s3db_coordinator_stop`,
//! `s3db_coordinator_free`, `s3db_coordinator_on_event(…, NULL, …)` (event callbacks) wait for a
//! callback running on another thread, so `user_data` may be freed as soon as they return.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar};
use std::thread::ThreadId;

use s3db::{
    CasResult, CoordinatorEvent, CoordinatorMetrics, CoordinatorOptions, Fenced, LeaderInfo,
    LockInfo, StateEntry, StateStore, WorkerInfo,
};
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};

use super::*;

/// The C library's `free`, for the strings an `s3db_update_fn` returns.
/// cbindgen:ignore
pub(crate) mod libc {
    extern "C" {
        pub fn free(p: *mut std::ffi::c_void);
    }
}

// ---------------------------------------------------------------------------------------------
// Handles and callback types
// ---------------------------------------------------------------------------------------------

/// The keys of one namespace of distributed state (`s3db_state`). Free with `s3db_state_free`.
pub struct s3db_state_t {
    state: StateStore,
}

/// A worker taking part in the leader election of one namespace (`s3db_coordinator`). Free with
/// `s3db_coordinator_free`.
pub struct s3db_coordinator_t {
    coord: s3db::Coordinator,
    listeners: Mutex<Vec<Listener>>,
}

/// Called once when an auto-renewed lock is lost (`s3db_lock_auto_renew`), from a thread of the
/// library's runtime, before the lease ends. `message` says why; it is valid only during the
/// call.
pub type s3db_lost_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, message: *const c_char)>;

/// Receives each coordinator event as JSON text (`s3db_coordinator_on_event`), from a thread of
/// the library's runtime, one event at a time and in order. `event_json` is valid only during
/// the call.
pub type s3db_event_callback =
    Option<unsafe extern "C" fn(user_data: *mut c_void, event_json: *const c_char)>;

/// The function of `s3db_state_update`: gets the current value as JSON text (NULL when the key
/// is absent or expired; valid only during the call) and returns the new value as JSON text in
/// memory from `malloc` (the library frees it with `free`), or NULL to abort the update.
pub type s3db_update_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, current_json: *const c_char) -> *mut c_char,
>;

// ---------------------------------------------------------------------------------------------
// The on-lost callback of an auto-renewed lock
// ---------------------------------------------------------------------------------------------

type LostFn = unsafe extern "C" fn(*mut c_void, *const c_char);

/// An on-lost callback that can be disarmed: once `disarm` returns, the callback is not running
/// (unless on the calling thread, i.e. `disarm` was called from inside it) and never will be.
pub(crate) struct LostSlot {
    state: Mutex<LostState>,
    idle: Condvar,
}

struct LostState {
    callback: Option<(LostFn, UserData)>,
    running: Option<ThreadId>,
}

impl LostSlot {
    fn new(callback: Option<(LostFn, UserData)>) -> Self {
        LostSlot {
            state: Mutex::new(LostState {
                callback,
                running: None,
            }),
            idle: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LostState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the callback, at most once over the slot's life.
    fn fire(&self, message: &str) {
        let taken = {
            let mut st = self.lock();
            let taken = st.callback.take();
            if taken.is_some() {
                st.running = Some(std::thread::current().id());
            }
            taken
        };
        let Some((callback, user_data)) = taken else {
            return;
        };
        let message = c_string(message.to_string());
        unsafe { callback(user_data.get(), message.as_ptr()) };
        self.lock().running = None;
        self.idle.notify_all();
    }

    pub(crate) fn disarm(&self) {
        let me = std::thread::current().id();
        let mut st = self.lock();
        st.callback = None;
        while st.running.is_some_and(|t| t != me) {
            st = self.idle.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl s3db_lock_t {
    pub(crate) fn new(lock: Lock) -> Self {
        s3db_lock_t {
            lock,
            on_lost: Mutex::new(None),
        }
    }

    /// Turns the on-lost callback off (see `LostSlot::disarm`).
    pub(crate) fn disarm(&self) {
        let slot = self
            .on_lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(slot) = slot {
            slot.disarm();
        }
    }
}

impl Drop for s3db_lock_t {
    fn drop(&mut self) {
        self.disarm();
    }
}

// ---------------------------------------------------------------------------------------------
// JSON shapes (camelCase, as the other bindings)
// ---------------------------------------------------------------------------------------------

fn lock_info_json(info: &LockInfo) -> Value {
    json!({
        "holderId": info.holder_id,
        "fencingToken": info.fencing_token,
        "acquiredAt": info.acquired_at,
        "expiresAt": info.expires_at,
    })
}

fn fenced_json(f: &Fenced) -> Value {
    json!({"value": f.value, "fencingToken": f.fencing_token, "version": f.version})
}

fn entry_json(e: &StateEntry) -> Value {
    json!({"value": e.value, "version": e.version, "expiresAt": e.expires_at})
}

fn cas_json(c: &CasResult) -> Value {
    json!({
        "swapped": c.swapped,
        "currentValue": c.current_value,
        "currentVersion": c.current_version,
    })
}

fn leader_json(l: &LeaderInfo) -> Value {
    json!({"leaderId": l.leader_id, "epoch": l.epoch, "leaseEnd": l.lease_end})
}

fn worker_json(w: &WorkerInfo) -> Value {
    json!({
        "workerId": w.worker_id,
        "pod": w.pod,
        "startTime": w.start_time,
        "lastHeartbeat": w.last_heartbeat,
    })
}

fn metrics_json(m: &CoordinatorMetrics) -> Value {
    json!({
        "heartbeats": m.heartbeats,
        "renewals": m.renewals,
        "elections": m.elections,
        "leaderChanges": m.leader_changes,
        "storageFailures": m.storage_failures,
        "heartbeatP50Ms": m.heartbeat_p50_ms,
        "heartbeatP99Ms": m.heartbeat_p99_ms,
    })
}

fn event_json(e: &CoordinatorEvent) -> Value {
    match e {
        CoordinatorEvent::LeaderChanged { leader_id, epoch } => {
            json!({"type": "leaderChanged", "leaderId": leader_id, "epoch": epoch})
        }
        CoordinatorEvent::BecameLeader { epoch } => json!({"type": "becameLeader", "epoch": epoch}),
        CoordinatorEvent::LostLeadership { epoch } => {
            json!({"type": "lostLeadership", "epoch": epoch})
        }
        CoordinatorEvent::CircuitOpened { failures } => {
            json!({"type": "circuitOpened", "failures": failures})
        }
        CoordinatorEvent::CircuitClosed => json!({"type": "circuitClosed"}),
    }
}

/// `null` or the value.
fn give_opt<T>(
    out: &mut *mut c_char,
    v: Option<T>,
    to_json: impl FnOnce(&T) -> Value,
) -> FfiResult {
    give_json(out, &v.as_ref().map(to_json).unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Locks: inspection, auto-renewal, fencing
// ---------------------------------------------------------------------------------------------

/// Whether someone holds the named lock now (not released, not expired). One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_is_locked(
    db: *const s3db_database_t,
    name: *const c_char,
    out: *mut bool,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        let db = &arg_ref(db, "db")?.db;
        let name = arg_str(name, "name")?;
        *out = run(db.is_locked(name))?;
        Ok(())
    })
}

/// The current holder of the named lock as JSON
/// `{"holderId":"…","fencingToken":3,"acquiredAt":ms,"expiresAt":ms}` (milliseconds since the
/// Unix epoch), or `null` when it is free (absent, released, expired or unreadable). One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_lock_info(
    db: *const s3db_database_t,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let db = &arg_ref(db, "db")?.db;
        let name = arg_str(name, "name")?;
        give_opt(out, run(db.lock_info(name))?, lock_info_json)
    })
}

/// Renews the lock in the background every ttl/3 (by the ttl it was acquired with) until it is
/// released, `s3db_lock_stop_renewing` is called or the handle is freed. When renewal fails for
/// good (the lock was taken over, or storage kept failing until the lease was about to end)
/// the handle is marked lost (`s3db_lock_is_lost`) and `on_lost(user_data, message)` runs once,
/// on a runtime thread, before the lease ends. `on_lost` may be NULL. Calling it again
/// replaces the previous renewal and callback. `user_data` must stay valid until the callback
/// ran or one of release, stop_renewing, free or another auto_renew returned: they wait for a
/// callback in progress, and after them it is never called.
#[no_mangle]
pub unsafe extern "C" fn s3db_lock_auto_renew(
    lock: *const s3db_lock_t,
    on_lost: s3db_lost_callback,
    user_data: *mut c_void,
) -> c_int {
    ffi(|| {
        let handle = arg_ref(lock, "lock")?;
        let slot = Arc::new(LostSlot::new(on_lost.map(|f| (f, UserData(user_data)))));
        let fire = slot.clone();
        let _ctx = runtime()?.enter();
        handle
            .lock
            .auto_renew(move |e: Error| fire.fire(e.message()))?;
        let old = handle
            .on_lost
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(slot);
        if let Some(old) = old {
            old.disarm();
        }
        Ok(())
    })
}

/// Stops the auto-renewal (the lock stays held until it expires or is released); the on-lost
/// callback is not called after this returns. No-op without auto-renewal.
#[no_mangle]
pub unsafe extern "C" fn s3db_lock_stop_renewing(lock: *const s3db_lock_t) -> c_int {
    ffi(|| {
        let handle = arg_ref(lock, "lock")?;
        handle.lock.stop_renewing();
        handle.disarm();
        Ok(())
    })
}

/// Whether this handle learnt that it no longer holds the lock (a failed extend, release or
/// auto-renewal). `false` is no proof of holding it: protect data with the fencing token
/// (`s3db_lock_guarded_put`).
#[no_mangle]
pub unsafe extern "C" fn s3db_lock_is_lost(lock: *const s3db_lock_t, out: *mut bool) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        *out = arg_ref(lock, "lock")?.lock.is_lost();
        Ok(())
    })
}

/// Writes `value_json` (any JSON) to the fenced object `name` under this lock's fencing token
/// (`s3db_fenced_put`). `S3DB_ERR_LOCK_LOST` without a request when the handle is released or
/// known lost, or when a holder with a higher token already wrote the object. `out_version`
/// receives the object's new version (etag); it may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_lock_guarded_put(
    lock: *const s3db_lock_t,
    name: *const c_char,
    value_json: *const c_char,
    out_version: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_version);
        let lock = &arg_ref(lock, "lock")?.lock;
        let name = arg_str(name, "name")?;
        let value = arg_json(value_json, "value_json")?;
        let version = run(lock.guarded_put(name, &value))?;
        if let Some(out) = out {
            *out = give_string(version);
        }
        Ok(())
    })
}

/// Writes `value_json` (any JSON) to the fenced object `name` (`plugin=s3db/fenced/<name>`)
/// unless a higher fencing token already wrote it (`S3DB_ERR_LOCK_LOST`; equal tokens may
/// write again). GET + one conditional PUT when uncontended. `out_version` receives the new
/// version (etag); it may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_fenced_put(
    db: *const s3db_database_t,
    name: *const c_char,
    value_json: *const c_char,
    fencing_token: u64,
    out_version: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_version);
        let db = &arg_ref(db, "db")?.db;
        let name = arg_str(name, "name")?;
        let value = arg_json(value_json, "value_json")?;
        let version = run(db.fenced_put(name, &value, fencing_token))?;
        if let Some(out) = out {
            *out = give_string(version);
        }
        Ok(())
    })
}

/// The fenced object `name` as JSON `{"value":…,"fencingToken":n,"version":"…"}` (the highest
/// token that wrote it and its etag), or `null` when it does not exist. One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_fenced_get(
    db: *const s3db_database_t,
    name: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let db = &arg_ref(db, "db")?.db;
        let name = arg_str(name, "name")?;
        give_opt(out, run(db.fenced_get(name))?, fenced_json)
    })
}

// ---------------------------------------------------------------------------------------------
// Sequences: fast mode, delete, list
// ---------------------------------------------------------------------------------------------

/// `s3db_sequence` with a batch size: 0 or 1 is the standard mode (one GET + one conditional
/// PUT per value, no gaps); more reserves `batch_size` values per GET + PUT and hands them out
/// from the handle (no duplicates; the unused rest of a batch is a gap when the handle goes).
#[no_mangle]
pub unsafe extern "C" fn s3db_sequence_with(
    db: *const s3db_database_t,
    name: *const c_char,
    start: i64,
    increment: i64,
    batch_size: u32,
    out_seq: *mut *mut s3db_sequence_t,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_seq, "out_seq")?;
        let db = &arg_ref(db, "db")?.db;
        let name = arg_str(name, "name")?;
        let options = SequenceOptions {
            start,
            increment,
            batch_size,
        };
        let seq = db.sequence_with(name, options)?;
        give_handle(out, s3db_sequence_t { seq });
        Ok(())
    })
}

/// Deletes the stored counter (one DELETE) and drops the handle's reserved batch: the next
/// `s3db_sequence_next` starts again at `start`.
#[no_mangle]
pub unsafe extern "C" fn s3db_sequence_delete(seq: *const s3db_sequence_t) -> c_int {
    ffi(|| {
        let seq = &arg_ref(seq, "seq")?.seq;
        run(seq.delete())
    })
}

/// The names of the stored sequences, as a JSON array of strings in key order (one LIST per
/// 1,000).
#[no_mangle]
pub unsafe extern "C" fn s3db_list_sequences(
    db: *const s3db_database_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let db = &arg_ref(db, "db")?.db;
        give_json(out, &run(db.list_sequences())?)
    })
}

// ---------------------------------------------------------------------------------------------
// Distributed state
// ---------------------------------------------------------------------------------------------

/// The distributed state of `namespace` (`plugin=state/namespace=<ns>/`; no request is sent).
/// Values are any JSON; each entry has a version (its etag) for compare-and-swap. On success
/// `*out_state` is a new handle.
#[no_mangle]
pub unsafe extern "C" fn s3db_state(
    db: *const s3db_database_t,
    namespace: *const c_char,
    out_state: *mut *mut s3db_state_t,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_state, "out_state")?;
        let db = &arg_ref(db, "db")?.db;
        let namespace = arg_str(namespace, "namespace")?;
        let state = db.state(namespace)?;
        give_handle(out, s3db_state_t { state });
        Ok(())
    })
}

/// Frees a state handle. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_free(state: *mut s3db_state_t) {
    free_handle(state)
}

/// The live entry as JSON `{"value":…,"version":"…","expiresAt":ms or null}`, or `null` when
/// the key is absent or expired (an expired entry is then deleted). One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_get(
    state: *const s3db_state_t,
    key: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        give_opt(out, run(state.get(key))?, entry_json)
    })
}

/// Stores `value_json` (any JSON; last writer wins), expiring after `ttl_ms` milliseconds (0:
/// never). One PUT. `out_version` receives the new version; it may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_set(
    state: *const s3db_state_t,
    key: *const c_char,
    value_json: *const c_char,
    ttl_ms: u64,
    out_version: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_version);
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        let value = arg_json(value_json, "value_json")?;
        let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms));
        let version = run(state.set(key, value, ttl))?;
        if let Some(out) = out {
            *out = give_string(version);
        }
        Ok(())
    })
}

/// Writes `value_json` only if the entry is still at `expected_version` (NULL: only if the key
/// is absent or expired); never retries. `out_json` receives
/// `{"swapped":true|false,"currentValue":…,"currentVersion":"…"}`: the value and version now
/// stored (those written when swapped; null/null when the key is absent). A lost race is
/// `S3DB_OK` with `"swapped":false`.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_compare_and_swap(
    state: *const s3db_state_t,
    key: *const c_char,
    expected_version: *const c_char,
    value_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        let expected = arg_opt_str(expected_version, "expected_version")?;
        let value = arg_json(value_json, "value_json")?;
        let result = run(state.compare_and_swap(key, expected, value))?;
        give_json(out, &cas_json(&result))
    })
}

/// Deletes the entry (one DELETE; deleting an absent key succeeds).
#[no_mangle]
pub unsafe extern "C" fn s3db_state_delete(
    state: *const s3db_state_t,
    key: *const c_char,
) -> c_int {
    ffi(|| {
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        run(state.delete(key))
    })
}

/// Adds `by` to the integer counter `key` (absent: 0) by compare-and-swap and sets `*out` to
/// the new value. A value that is not an integer is `S3DB_ERR_VALIDATION`.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_increment(
    state: *const s3db_state_t,
    key: *const c_char,
    by: i64,
    out: *mut i64,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        *out = run(state.increment(key, by))?;
        Ok(())
    })
}

/// Subtracts `by` from the counter `key`; `*out` is the new value.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_decrement(
    state: *const s3db_state_t,
    key: *const c_char,
    by: i64,
    out: *mut i64,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        *out = run(state.decrement(key, by))?;
        Ok(())
    })
}

/// The counter's value (0 when absent or expired). One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_counter(
    state: *const s3db_state_t,
    key: *const c_char,
    out: *mut i64,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        *out = run(state.counter(key))?;
        Ok(())
    })
}

/// Sets the counter back to 0 (deletes it). One DELETE.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_reset(state: *const s3db_state_t, key: *const c_char) -> c_int {
    ffi(|| {
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        run(state.reset(key))
    })
}

/// The keys of the namespace as a JSON array of strings in byte order, expired ones included.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_keys(
    state: *const s3db_state_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let state = &arg_ref(state, "state")?.state;
        give_json(out, &run(state.keys())?)
    })
}

/// One call of an `s3db_update_fn`.
fn call_update(
    func: unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_char,
    user_data: &UserData,
    current: Option<Value>,
) -> s3db::Result<Value> {
    let current = current.map(|v| c_string(v.to_string()));
    let arg = current.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    let returned = unsafe { func(user_data.get(), arg) };
    if returned.is_null() {
        return Err(Error::invalid(
            "the update function returned NULL: update aborted, nothing written",
        ));
    }
    let parsed = match unsafe { CStr::from_ptr(returned) }.to_str() {
        Ok(text) => serde_json::from_str(text).map_err(|e| {
            Error::invalid(format!(
                "the update function returned invalid JSON ({e}): nothing written"
            ))
        }),
        Err(e) => Err(Error::invalid(format!(
            "the update function returned text that is not UTF-8 ({e}): nothing written"
        ))),
    };
    unsafe { libc::free(returned.cast()) };
    parsed
}

/// Read-modify-write by compare-and-swap: `func(user_data, current_json)` gets the current value
/// (NULL when absent or expired) and returns the new one (see `s3db_update_fn`); it runs on the
/// calling thread, once more each time another writer got there first, and may call s3db
/// functions. NULL or invalid JSON from it aborts with `S3DB_ERR_INVALID_ARGUMENT` and nothing
/// is written. The entry keeps its expiry. `out_json` receives the entry written,
/// `{"value":…,"version":"…","expiresAt":…}`; it may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_state_update(
    state: *const s3db_state_t,
    key: *const c_char,
    func: s3db_update_fn,
    user_data: *mut c_void,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_json);
        let state = &arg_ref(state, "state")?.state;
        let key = arg_str(key, "key")?;
        let func = func.ok_or_else(|| Fail::invalid("func is NULL"))?;
        let user_data = UserData(user_data);
        let entry = run(state.update(key, |current| call_update(func, &user_data, current)))?;
        give_opt_json(out, &entry_json(&entry))
    })
}

// ---------------------------------------------------------------------------------------------
// Coordinator
// ---------------------------------------------------------------------------------------------

const LISTEN: u8 = 0;
/// Deliver what is queued, then end.
const DRAIN: u8 = 1;
/// End after the current callback.
const EXIT: u8 = 2;

static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// The listener whose callback this thread is running (0: none).
    static IN_LISTENER: Cell<u64> = const { Cell::new(0) };
}

#[derive(Default)]
struct ListenerControl {
    mode: AtomicU8,
    wake: tokio::sync::Notify,
}

struct Listener {
    id: u64,
    control: Arc<ListenerControl>,
    task: tokio::task::JoinHandle<()>,
}

fn deliver(
    id: u64,
    callback: unsafe extern "C" fn(*mut c_void, *const c_char),
    ud: &UserData,
    event: &Value,
) {
    let text = c_string(event.to_string());
    IN_LISTENER.with(|l| l.set(id));
    unsafe { callback(ud.get(), text.as_ptr()) };
    IN_LISTENER.with(|l| l.set(0));
}

fn lagged(missed: u64) -> Value {
    json!({"type": "lagged", "missed": missed})
}

async fn listen(
    mut rx: broadcast::Receiver<CoordinatorEvent>,
    id: u64,
    control: Arc<ListenerControl>,
    callback: unsafe extern "C" fn(*mut c_void, *const c_char),
    user_data: UserData,
) {
    loop {
        match control.mode.load(Ordering::SeqCst) {
            LISTEN => {}
            DRAIN => {
                while control.mode.load(Ordering::SeqCst) == DRAIN {
                    match rx.try_recv() {
                        Ok(ev) => deliver(id, callback, &user_data, &event_json(&ev)),
                        Err(TryRecvError::Lagged(n)) => {
                            deliver(id, callback, &user_data, &lagged(n))
                        }
                        Err(_) => return,
                    }
                }
                return;
            }
            _ => return,
        }
        tokio::select! {
            biased;
            _ = control.wake.notified() => {}
            received = rx.recv() => match received {
                Ok(ev) => deliver(id, callback, &user_data, &event_json(&ev)),
                Err(RecvError::Lagged(n)) => deliver(id, callback, &user_data, &lagged(n)),
                Err(RecvError::Closed) => return,
            },
        }
    }
}

impl s3db_coordinator_t {
    /// Ends every event listener: each delivers what is queued, then stops; waits for them,
    /// except the one whose callback is running on this thread (it stops when it returns).
    fn end_listeners(&self) -> FfiResult {
        let listeners =
            std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        let me = IN_LISTENER.with(Cell::get);
        let mut tasks = Vec::new();
        for l in listeners {
            let mode = if l.id == me { EXIT } else { DRAIN };
            l.control.mode.store(mode, Ordering::SeqCst);
            l.control.wake.notify_one();
            if l.id != me {
                tasks.push(l.task);
            }
        }
        if !tasks.is_empty() {
            block_on(async {
                for t in tasks {
                    let _ = t.await;
                }
            })?;
        }
        Ok(())
    }
}

/// Coordinator options from JSON (all optional): `heartbeatIntervalMs` (5000; the other
/// defaults scale with it: lease 3×, worker timeout 4×, startup jitter and step-down margin
/// 1/5, circuit cool-down 2×), `leaseTimeoutMs`, `workerTimeoutMs`, `startupJitterMs`,
/// `stepDownMarginMs`, `circuitBreakerThreshold`, `circuitBreakerCooldownMs`, `strategy`
/// ("timestamp" or "alphabetical"), `pod`.
fn coordinator_options(options: Option<Value>) -> FfiResult<CoordinatorOptions> {
    let map = match options {
        None | Some(Value::Null) => return Ok(CoordinatorOptions::default()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Fail::invalid("options_json must be a JSON object")),
    };
    let millis = |key: &str, v: &Value| -> FfiResult<Duration> {
        v.as_u64().map(Duration::from_millis).ok_or_else(|| {
            Fail::invalid(format!(
                "options_json: {key} must be a non-negative integer (milliseconds)"
            ))
        })
    };
    let mut out = match map.get("heartbeatIntervalMs") {
        Some(v) => CoordinatorOptions::with_heartbeat(millis("heartbeatIntervalMs", v)?),
        None => CoordinatorOptions::default(),
    };
    for (key, value) in &map {
        match key.as_str() {
            "heartbeatIntervalMs" => {}
            "leaseTimeoutMs" => out.lease_timeout = millis(key, value)?,
            "workerTimeoutMs" => out.worker_timeout = millis(key, value)?,
            "startupJitterMs" => out.startup_jitter = millis(key, value)?,
            "stepDownMarginMs" => out.step_down_margin = millis(key, value)?,
            "circuitBreakerCooldownMs" => out.circuit_breaker_cooldown = millis(key, value)?,
            "circuitBreakerThreshold" => {
                out.circuit_breaker_threshold = value
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                    Fail::invalid("options_json: circuitBreakerThreshold must be an integer")
                })?
            }
            "strategy" => {
                let s = value
                    .as_str()
                    .ok_or_else(|| Fail::invalid("options_json: strategy must be a string"))?;
                out.strategy = s.parse()?;
            }
            "pod" => match value {
                Value::String(p) => out.pod = Some(p.clone()),
                Value::Null => out.pod = None,
                _ => return Err(Fail::invalid("options_json: pod must be a string")),
            },
            other => {
                return Err(Fail::invalid(format!(
                    "options_json: unknown option {other:?} (known: heartbeatIntervalMs, \
                     leaseTimeoutMs, workerTimeoutMs, startupJitterMs, stepDownMarginMs, \
                     circuitBreakerThreshold, circuitBreakerCooldownMs, strategy, pod)"
                )))
            }
        }
    }
    Ok(out)
}

/// A worker of the leader election of `namespace` (objects under
/// `plugin=coordinator/namespace=<ns>/`, as s3db.js writes them); no request is sent until
/// `s3db_coordinator_start`. `options_json` is NULL for the defaults or a JSON object, all keys
/// optional: `{"heartbeatIntervalMs":5000,"leaseTimeoutMs":15000,"workerTimeoutMs":20000,
/// "startupJitterMs":1000,"stepDownMarginMs":1000,"circuitBreakerThreshold":5,
/// "circuitBreakerCooldownMs":10000,"strategy":"timestamp"|"alphabetical","pod":"…"}`; with only
/// `heartbeatIntervalMs` the others scale with it (lease 3×, worker timeout 4×, jitter and
/// margin 1/5, cool-down 2×). Unknown or inconsistent options are
/// `S3DB_ERR_INVALID_ARGUMENT`. On success `*out_coord` is a new handle.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator(
    db: *const s3db_database_t,
    namespace: *const c_char,
    options_json: *const c_char,
    out_coord: *mut *mut s3db_coordinator_t,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_coord, "out_coord")?;
        let db = &arg_ref(db, "db")?.db;
        let namespace = arg_str(namespace, "namespace")?;
        let options = if options_json.is_null() {
            None
        } else {
            Some(arg_json(options_json, "options_json")?)
        };
        let coord = db.coordinator(namespace, coordinator_options(options)?)?;
        give_handle(
            out,
            s3db_coordinator_t {
                coord,
                listeners: Mutex::new(Vec::new()),
            },
        );
        Ok(())
    })
}

/// Frees a coordinator handle; NULL is ignored. Event callbacks end first (as in
/// `s3db_coordinator_stop`). Without `s3db_coordinator_stop` before, the worker just vanishes,
/// as if it crashed: its lease, if it leads, runs out after `leaseTimeoutMs`.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_free(coord: *mut s3db_coordinator_t) {
    if let Some(handle) = coord.as_ref() {
        let _ = catch_unwind(AssertUnwindSafe(|| handle.end_listeners()));
    }
    free_handle(coord)
}

/// Joins the election: waits a random time up to `startupJitterMs`, runs a first round
/// (heartbeat, and an election if no valid lease exists) and keeps going in the background.
/// Starting a running coordinator does nothing.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_start(coord: *const s3db_coordinator_t) -> c_int {
    ffi(|| {
        let coord = &arg_ref(coord, "coord")?.coord;
        run(coord.start())
    })
}

/// Leaves the election: ends the background work, gives the lease up if this worker leads (a
/// successor takes over at once; a `lostLeadership` event is emitted) and deletes its
/// heartbeat. Then every event callback ends, after the events already emitted are delivered:
/// none runs once this returns. Stopping a stopped coordinator does nothing.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_stop(coord: *const s3db_coordinator_t) -> c_int {
    ffi(|| {
        let handle = arg_ref(coord, "coord")?;
        let stopped = run(handle.coord.stop());
        handle.end_listeners()?;
        stopped
    })
}

/// Whether this worker leads now: it holds a lease it renewed less than `leaseTimeoutMs −
/// stepDownMarginMs` ago.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_is_leader(
    coord: *const s3db_coordinator_t,
    out: *mut bool,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        *out = arg_ref(coord, "coord")?.coord.is_leader();
        Ok(())
    })
}

/// While this worker leads, `*out` is the epoch of its lease (a fencing token for writes only
/// the leader may make) and `*leading` true; otherwise 0 and false.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_fencing_token(
    coord: *const s3db_coordinator_t,
    out: *mut u64,
    leading: *mut bool,
) -> c_int {
    ffi(|| {
        let out = arg_out(out, "out")?;
        let leading = arg_out(leading, "leading")?;
        let token = arg_ref(coord, "coord")?.coord.fencing_token();
        *leading = token.is_some();
        *out = token.unwrap_or(0);
        Ok(())
    })
}

/// The leader as JSON `{"leaderId":"…","epoch":n,"leaseEnd":ms}`: this worker while it leads,
/// otherwise the holder of the valid lease last read; `null` when none is known. No request.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_get_leader(
    coord: *const s3db_coordinator_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let coord = &arg_ref(coord, "coord")?.coord;
        give_opt(out, coord.get_leader(), leader_json)
    })
}

/// This worker's id, `gcs-<holder id>-<n>`, unique also within one process.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_worker_id(
    coord: *const s3db_coordinator_t,
    out: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out, "out")?;
        *out = give_string(arg_ref(coord, "coord")?.coord.worker_id().to_string());
        Ok(())
    })
}

/// The workers whose heartbeat is younger than `workerTimeoutMs`, as a JSON array of
/// `{"workerId":"…","pod":"…","startTime":ms,"lastHeartbeat":ms}` (1 LIST + 1 GET per worker).
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_active_workers(
    coord: *const s3db_coordinator_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let coord = &arg_ref(coord, "coord")?.coord;
        let workers: Vec<Value> = run(coord.active_workers())?
            .iter()
            .map(worker_json)
            .collect();
        give_json(out, &workers)
    })
}

/// Counters of this worker as JSON `{"heartbeats":n,"renewals":n,"elections":n,
/// "leaderChanges":n,"storageFailures":n,"heartbeatP50Ms":x,"heartbeatP99Ms":x}`.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_metrics(
    coord: *const s3db_coordinator_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let coord = &arg_ref(coord, "coord")?.coord;
        give_json(out, &metrics_json(&coord.metrics()))
    })
}

/// Calls `callback(user_data, event_json)` for every event from now on, one at a time, in
/// order, from a runtime thread: `{"type":"leaderChanged","leaderId":"…","epoch":n}`,
/// `{"type":"becameLeader","epoch":n}`, `{"type":"lostLeadership","epoch":n}`,
/// `{"type":"circuitOpened","failures":n}`, `{"type":"circuitClosed"}`, and
/// `{"type":"lagged","missed":n}` when a slow callback made it miss events. Register before
/// `s3db_coordinator_start` to see the first election. Several callbacks may be registered;
/// they all end at `s3db_coordinator_stop` (after delivering the events already emitted, such
/// as `lostLeadership`), at `s3db_coordinator_free`, or when this is called with a NULL
/// `callback`, and none runs after those return (called from inside a callback, that callback
/// just gets no further event). `user_data` must stay valid until then. Callbacks may call
/// s3db functions, but should return promptly.
#[no_mangle]
pub unsafe extern "C" fn s3db_coordinator_on_event(
    coord: *const s3db_coordinator_t,
    callback: s3db_event_callback,
    user_data: *mut c_void,
) -> c_int {
    ffi(|| {
        let handle = arg_ref(coord, "coord")?;
        let Some(callback) = callback else {
            return handle.end_listeners();
        };
        let rx = handle.coord.subscribe();
        let id = NEXT_LISTENER.fetch_add(1, Ordering::Relaxed);
        let control = Arc::new(ListenerControl::default());
        let task = runtime()?.spawn(listen(
            rx,
            id,
            control.clone(),
            callback,
            UserData(user_data),
        ));
        handle
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Listener { id, control, task });
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// Catalog healing
// ---------------------------------------------------------------------------------------------

/// What healing did to s3db.json when this handle connected (or last re-read it), as a JSON
/// array of strings, one per repair; `[]` when the catalog was intact. No request.
#[no_mangle]
pub unsafe extern "C" fn s3db_healing_log(
    db: *const s3db_database_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        give_json(out, &arg_ref(db, "db")?.db.healing_log())
    })
}

// ---------------------------------------------------------------------------------------------
// Binary content
// ---------------------------------------------------------------------------------------------

unsafe fn arg_bytes<'a>(p: *const u8, len: usize, what: &str) -> FfiResult<&'a [u8]> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(Fail::invalid(format!("{what} is NULL but len is {len}")))
        };
    }
    Ok(std::slice::from_raw_parts(p, len))
}

const OCTET_STREAM: &str = "application/octet-stream";

/// Inserts a record (as `s3db_insert`) whose object body is the `len` bytes at `bytes` (NULL
/// when `len` is 0; empty content is no content), of type `content_type` (NULL: "application/octet-stream";
/// "application/json" is refused): s3db.js `insert(data, {content})`. The record's fields
/// must fit in the metadata (behaviors user-managed, enforce-limits, truncate-data). One PUT.
/// `out_json` receives the stored record; it may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_insert_with_content(
    res: *const s3db_resource_t,
    json: *const c_char,
    bytes: *const u8,
    len: usize,
    content_type: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_json);
        let res = &arg_ref(res, "res")?.res;
        let record = arg_json(json, "json")?;
        let content = arg_bytes(bytes, len, "bytes")?.to_vec();
        let content_type = arg_opt_str(content_type, "content_type")?.unwrap_or(OCTET_STREAM);
        let stored = run(res.insert_with_content(record, content.into(), content_type))?;
        give_opt_json(out, &stored)
    })
}

/// Sets the binary content of record `id` to the `len` bytes at `bytes`, of type
/// `content_type` (NULL: "application/octet-stream"), or removes it when `bytes` is NULL (and
/// `len` 0). Compare-and-swap: one GET + one conditional PUT when uncontended. A missing record
/// is `S3DB_ERR_NOT_FOUND`.
#[no_mangle]
pub unsafe extern "C" fn s3db_set_content(
    res: *const s3db_resource_t,
    id: *const c_char,
    bytes: *const u8,
    len: usize,
    content_type: *const c_char,
) -> c_int {
    ffi(|| {
        let res = &arg_ref(res, "res")?.res;
        let id = arg_str(id, "id")?;
        let content_type = arg_opt_str(content_type, "content_type")?.unwrap_or(OCTET_STREAM);
        let content = if bytes.is_null() {
            arg_bytes(bytes, len, "bytes")?;
            None
        } else {
            let data = arg_bytes(bytes, len, "bytes")?.to_vec();
            Some((data.into(), content_type))
        };
        run(res.set_content(id, content))
    })
}

/// The binary content of record `id`: `*out_bytes` receives a buffer of `*out_len` bytes,
/// freed with `s3db_bytes_free(*out_bytes, *out_len)`; `*out_content_type` its type (free with
/// `s3db_string_free`; the pointer may be NULL if not wanted). A missing record, or one without
/// content (empty content is none), is `S3DB_ERR_NOT_FOUND`. One GET.
#[no_mangle]
pub unsafe extern "C" fn s3db_content(
    res: *const s3db_resource_t,
    id: *const c_char,
    out_bytes: *mut *mut u8,
    out_len: *mut usize,
    out_content_type: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out_bytes = arg_out_ptr(out_bytes, "out_bytes")?;
        let out_len = arg_out(out_len, "out_len")?;
        *out_len = 0;
        let out_type = arg_opt_out_ptr(out_content_type);
        let res = &arg_ref(res, "res")?.res;
        let id = arg_str(id, "id")?;
        let (content, content_type) = run(res.content(id))?;
        if !content.is_empty() {
            let boxed: Box<[u8]> = content.to_vec().into_boxed_slice();
            *out_len = boxed.len();
            *out_bytes = Box::into_raw(boxed).cast::<u8>();
        }
        if let Some(out) = out_type {
            *out = give_string(content_type);
        }
        Ok(())
    })
}

/// Frees a buffer returned by `s3db_content`, with the length returned with it. NULL is
/// ignored.
#[no_mangle]
pub unsafe extern "C" fn s3db_bytes_free(bytes: *mut u8, len: usize) {
    if !bytes.is_null() && len > 0 {
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            bytes, len,
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinator_options_from_json() {
        let o = coordinator_options(None).unwrap();
        assert_eq!(o.heartbeat_interval, Duration::from_secs(5));
        let o = coordinator_options(Some(json!({"heartbeatIntervalMs": 200}))).unwrap();
        assert_eq!(o.lease_timeout, Duration::from_millis(600));
        assert_eq!(o.startup_jitter, Duration::from_millis(40));
        let o = coordinator_options(Some(json!({
            "heartbeatIntervalMs": 100, "leaseTimeoutMs": 1000, "workerTimeoutMs": 2000,
            "startupJitterMs": 0, "strategy": "alphabetical", "pod": "p1",
            "circuitBreakerThreshold": 3, "circuitBreakerCooldownMs": 50, "stepDownMarginMs": 10
        })))
        .unwrap();
        assert_eq!(o.lease_timeout, Duration::from_millis(1000));
        assert_eq!(o.startup_jitter, Duration::ZERO);
        assert_eq!(o.pod.as_deref(), Some("p1"));
        assert_eq!(o.circuit_breaker_threshold, 3);
        for bad in [
            json!([]),
            json!({"heartbeatIntervalMs": -1}),
            json!({"heartbeatIntervalMs": "5"}),
            json!({"strategy": "random"}),
            json!({"nope": 1}),
        ] {
            let fail = coordinator_options(Some(bad)).err().unwrap();
            assert_eq!(fail.status, S3DB_ERR_INVALID_ARGUMENT);
        }
    }

    #[test]
    fn events_as_json() {
        let e = event_json(&CoordinatorEvent::LeaderChanged {
            leader_id: "w".into(),
            epoch: 2,
        });
        assert_eq!(
            e.to_string(),
            r#"{"type":"leaderChanged","leaderId":"w","epoch":2}"#
        );
        assert_eq!(
            event_json(&CoordinatorEvent::CircuitClosed).to_string(),
            r#"{"type":"circuitClosed"}"#
        );
    }

    #[test]
    fn a_disarmed_slot_never_fires() {
        static CALLS: AtomicU64 = AtomicU64::new(0);
        unsafe extern "C" fn count(_: *mut c_void, _: *const c_char) {
            CALLS.fetch_add(1, Ordering::SeqCst);
        }
        let slot = LostSlot::new(Some((count, UserData(std::ptr::null_mut()))));
        slot.fire("lost");
        slot.fire("again");
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        let slot = LostSlot::new(Some((count, UserData(std::ptr::null_mut()))));
        slot.disarm();
        slot.fire("lost");
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    }
}
