//! Distributed locks with fencing tokens.
//!
//! One object per lock name, `plugin=s3db/locks/<name>`, never deleted on release: it
//! keeps the last fencing token, so the next holder writes token + 1 by compare-and-swap.
//!
//! * **Acquire** is a GET plus one conditional PUT: `If-None-Match: *` when the object does
//!   not exist, `If-Match: <etag>` when it is released, expired (taken over by CAS, never by a
//!   blind delete) or unreadable (a corrupt lock object is taken over; its token is replaced by
//!   the clock in milliseconds, which is above any counter reached by +1 steps). A 412 or 409
//!   means another contender won the race: look again. While the lock is held the caller waits
//!   with capped exponential backoff and jitter until `timeout`; a timeout of zero tries once,
//!   and still takes over an expired lock.
//! * **Release** and **extend** are one PUT conditional on the etag this handle wrote. A 412
//!   means the lock was taken over: the caller gets `LockLost`, never a silent success.
//! * **Auto-renew** ([`Lock::auto_renew`]): a background task extends the lock every ttl/3.
//!   When renewal fails for good (taken over, or storage failing until the lease is about to
//!   end) the handle is marked lost *before* the lease ends and the callback runs. The task
//!   stops on release and when the last clone of the handle is dropped.
//!
//! # Fencing
//!
//! A lease can end while its holder is paused (GC, SIGSTOP, a slow network), and the holder
//! cannot know it. Data protected by the lock must therefore check the **fencing token**, not
//! the holder's belief. [`Database::fenced_put`] (and [`Lock::guarded_put`]) store a JSON value
//! at `plugin=s3db/fenced/<name>` together with the highest token that ever wrote it:
//! `{"fencingToken": n, "value": …, "updatedAt": "<ISO>"}`. A write is a GET plus a PUT
//! conditional on the etag read (`If-None-Match: *` when absent); it is rejected with
//! `LockLost` when its token is lower than the recorded one, and a concurrent write between
//! the GET and the PUT makes the PUT fail (412) and the check run again. So once a new holder
//! has written with its higher token, a late write from the paused former holder can never
//! land. Equal tokens are allowed (the same holder writing twice).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::coord::attempts::{Attempts, Contradictions};
use crate::coord::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::iso_now;
use crate::format::ids::{generate_id, validate_name};
use crate::storage::{now_millis, PutRequest, StoreError, WriteCondition};

#[derive(Debug, Clone, Copy)]
pub struct LockOptions {
    /// How long the lock is held without renewal.
    pub ttl: Duration,
    /// How long to wait for a held lock; zero tries once (and still takes over an expired one).
    pub timeout: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions {
            ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(0),
        }
    }
}

/// Who holds a lock, as read from storage (times in milliseconds since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockInfo {
    pub holder_id: String,
    pub fencing_token: u64,
    pub acquired_at: i64,
    pub expires_at: i64,
}

/// A value written under a fencing token (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fenced {
    pub value: Value,
    /// The highest token that wrote this object.
    pub fencing_token: u64,
    /// The object's etag.
    pub version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockBody {
    #[serde(default)]
    worker_id: String,
    token: String,
    acquired_at: i64,
    #[serde(rename = "_expiresAt")]
    expires_at: i64,
    /// Absent in locks written by s3db.js.
    #[serde(default)]
    fencing_token: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    released: bool,
}

impl LockBody {
    fn held(&self) -> bool {
        !self.released && self.expires_at > now_millis()
    }
}

#[derive(Debug)]
struct State {
    etag: String,
    expires_at: i64,
    released: bool,
}

type OnLost = Arc<dyn Fn(Error) + Send + Sync>;

struct LockInner {
    db: Arc<Context>,
    name: String,
    key: String,
    token: String,
    fencing_token: u64,
    acquired_at: i64,
    ttl: Duration,
    runtime: Option<tokio::runtime::Handle>,
    state: Mutex<State>,
    lost: AtomicBool,
    renewer: std::sync::Mutex<Option<Renewer>>,
}

/// The renewal task: asked to stop through `stop`, which it only looks at between renewals,
/// so a renewal PUT in flight is never cut off (its new etag would be lost).
struct Renewer {
    task: tokio::task::AbortHandle,
    stop: Arc<tokio::sync::Notify>,
}

impl Renewer {
    fn stop(self) {
        self.stop.notify_one();
    }
}

impl Drop for LockInner {
    fn drop(&mut self) {
        // The task holds only a weak reference while it sleeps, so it is sleeping now.
        if let Some(r) = self.renewer.get_mut().ok().and_then(Option::take) {
            r.task.abort();
        }
    }
}

/// A held lock. Cloning shares the handle.
#[derive(Clone)]
pub struct Lock {
    inner: Arc<LockInner>,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("name", &self.inner.name)
            .field("fencing_token", &self.inner.fencing_token)
            .field("holder_id", &self.inner.db.holder_id)
            .field("lost", &self.is_lost())
            .finish()
    }
}

/// Lost races (412/409) after which a caller past its deadline gives up.
const MAX_RACES: u32 = 16;
const MAX_FENCED_ATTEMPTS: u32 = 100;

pub(crate) fn lock_key(name: &str) -> String {
    format!("plugin=s3db/locks/{name}")
}

fn fenced_key(name: &str) -> String {
    format!("plugin=s3db/fenced/{name}")
}

fn lost_error(name: &str, fencing_token: u64) -> Error {
    Error::new(
        ErrorKind::LockLost,
        format!("lock {name:?} (token {fencing_token}) is no longer held by this handle"),
    )
}

impl Lock {
    pub(crate) async fn acquire(db: Arc<Context>, name: &str, opts: LockOptions) -> Result<Lock> {
        validate_name("lock name", name)?;
        let key = lock_key(name);
        let deadline = Instant::now() + opts.timeout;
        let mut waits = 0u32;
        let mut races = 0u32;
        loop {
            let (condition, last_token) = match db.store.get(&key).await {
                Err(StoreError::NotFound) => (WriteCondition::IfNoneMatch, 0),
                Err(e) => return Err(e.at(&key)),
                Ok(obj) => match serde_json::from_slice::<LockBody>(&obj.body) {
                    Ok(cur) if cur.held() => {
                        if Instant::now() >= deadline {
                            return Err(Error::new(
                                ErrorKind::LockNotAcquired,
                                format!("lock {name:?} is held by {}", cur.worker_id),
                            ));
                        }
                        let wait = backoff(waits).min(deadline - Instant::now());
                        waits += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    Ok(cur) => (WriteCondition::IfMatch(obj.head.etag), cur.fencing_token),
                    // Unreadable lock objects are taken over; the clock keeps tokens rising.
                    Err(_) => (
                        WriteCondition::IfMatch(obj.head.etag),
                        now_millis().max(0) as u64,
                    ),
                },
            };
            let now = now_millis();
            let body = LockBody {
                worker_id: db.holder_id.clone(),
                token: generate_id(22),
                acquired_at: now,
                expires_at: now + opts.ttl.as_millis() as i64,
                fencing_token: last_token + 1,
                released: false,
            };
            match put_lock(&db, &key, &body, condition).await {
                Ok(etag) => {
                    return Ok(Lock {
                        inner: Arc::new(LockInner {
                            db,
                            name: name.to_string(),
                            key,
                            token: body.token,
                            fencing_token: body.fencing_token,
                            acquired_at: now,
                            ttl: opts.ttl,
                            runtime: tokio::runtime::Handle::try_current().ok(),
                            state: Mutex::new(State {
                                etag,
                                expires_at: body.expires_at,
                                released: false,
                            }),
                            lost: AtomicBool::new(false),
                            renewer: std::sync::Mutex::new(None),
                        }),
                    });
                }
                // 412: another contender won the race; 409: concurrent conditional writes
                // (retry the algorithm); 404: the object vanished. Look again: the GET says
                // whether someone holds it now (then the deadline decides), even with timeout 0.
                Err(StoreError::PreconditionFailed)
                | Err(StoreError::Conflict)
                | Err(StoreError::NotFound) => {
                    races += 1;
                    if races >= MAX_RACES && Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::LockNotAcquired,
                            format!("lock {name:?}: lost {races} races to other contenders"),
                        ));
                    }
                    if races > 1 {
                        tokio::time::sleep(backoff(races.min(4) - 1)).await;
                    }
                }
                Err(e) => return Err(e.at(&key)),
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Strictly increasing across all holders of this lock name.
    pub fn fencing_token(&self) -> u64 {
        self.inner.fencing_token
    }

    pub fn holder_id(&self) -> &str {
        &self.inner.db.holder_id
    }

    /// The ttl the lock was acquired with (auto-renew extends by it).
    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// Milliseconds since the epoch.
    pub async fn expires_at(&self) -> i64 {
        self.inner.state.lock().await.expires_at
    }

    /// True once this handle learnt that it no longer holds the lock (a failed extend,
    /// release or auto-renewal). A `false` is no proof of holding it: use the fencing token.
    pub fn is_lost(&self) -> bool {
        self.inner.lost.load(Ordering::SeqCst)
    }

    /// Pushes the expiry to now + `ttl`. Fails with `LockLost` if another holder took it.
    pub async fn extend(&self, ttl: Duration) -> Result<()> {
        self.inner.extend(ttl).await
    }

    /// Releases the lock. Releasing twice is a no-op; a lock taken over meanwhile is `LockLost`.
    pub async fn release(&self) -> Result<()> {
        self.stop_renewing();
        let inner = &self.inner;
        let mut st = inner.state.lock().await;
        if st.released {
            return Ok(());
        }
        let body = inner.body(now_millis(), true);
        let res = put_lock(
            &inner.db,
            &inner.key,
            &body,
            WriteCondition::IfMatch(st.etag.clone()),
        )
        .await;
        st.released = true;
        match res {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(inner.lost(e)),
        }
    }

    /// Renews the lock in the background every ttl/3 until it is released or every clone of
    /// this handle is dropped. When renewal fails for good (`LockLost`, or storage errors
    /// until less than one interval of the lease is left) the handle is marked lost and
    /// `on_lost` runs once, on the runtime, before the lease ends. Calling it again replaces
    /// the previous renewal task and callback.
    pub fn auto_renew<F>(&self, on_lost: F) -> Result<()>
    where
        F: Fn(Error) + Send + Sync + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .or_else(|| self.inner.runtime.clone())
            .ok_or_else(|| Error::invalid("auto_renew needs a tokio runtime"))?;
        let on_lost: OnLost = Arc::new(on_lost);
        let weak = Arc::downgrade(&self.inner);
        let interval = (self.inner.ttl / 3).max(Duration::from_millis(1));
        let stop = Arc::new(tokio::sync::Notify::new());
        let task = runtime.spawn(renew_loop(weak, interval, stop.clone(), on_lost));
        let renewer = Renewer {
            task: task.abort_handle(),
            stop,
        };
        if let Some(old) = self
            .inner
            .renewer
            .lock()
            .expect("renewer mutex")
            .replace(renewer)
        {
            old.stop();
        }
        Ok(())
    }

    /// Stops auto-renewal (the lock stays held until its expiry or release).
    pub fn stop_renewing(&self) {
        if let Some(r) = self.inner.renewer.lock().expect("renewer mutex").take() {
            r.stop();
        }
    }

    /// Writes protected data under this lock's fencing token ([`Database::fenced_put`]).
    /// A handle that was released or is known to be lost is refused without a request.
    pub async fn guarded_put(&self, name: &str, value: &Value) -> Result<String> {
        if self.is_lost() || self.inner.state.lock().await.released {
            return Err(lost_error(&self.inner.name, self.inner.fencing_token));
        }
        fenced_put(&self.inner.db, name, value, self.inner.fencing_token).await
    }
}

async fn renew_loop(
    weak: Weak<LockInner>,
    interval: Duration,
    stop: Arc<tokio::sync::Notify>,
    on_lost: OnLost,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.notified() => return,
        }
        let Some(inner) = weak.upgrade() else { return };
        let err = match inner.extend(inner.ttl).await {
            Ok(()) => continue,
            Err(e) => e,
        };
        let st = inner.state.lock().await;
        if st.released {
            return;
        }
        let give_up = err.kind() == ErrorKind::LockLost
            || st.expires_at - now_millis() <= interval.as_millis() as i64;
        drop(st);
        if give_up {
            inner.lost.store(true, Ordering::SeqCst);
            tracing::warn!(lock = %inner.name, error = %err, "lock renewal failed; handle lost");
            on_lost(err);
            return;
        }
        tracing::debug!(lock = %inner.name, error = %err, "lock renewal failed; retrying");
    }
}

impl LockInner {
    async fn extend(&self, ttl: Duration) -> Result<()> {
        let mut st = self.state.lock().await;
        if st.released {
            return Err(Error::new(
                ErrorKind::LockLost,
                format!("lock {:?} was released", self.name),
            ));
        }
        let body = self.body(now_millis() + ttl.as_millis() as i64, false);
        let etag = put_lock(
            &self.db,
            &self.key,
            &body,
            WriteCondition::IfMatch(st.etag.clone()),
        )
        .await
        .map_err(|e| self.lost(e))?;
        st.etag = etag;
        st.expires_at = body.expires_at;
        Ok(())
    }

    fn body(&self, expires_at: i64, released: bool) -> LockBody {
        LockBody {
            worker_id: self.db.holder_id.clone(),
            token: self.token.clone(),
            acquired_at: self.acquired_at,
            expires_at,
            fencing_token: self.fencing_token,
            released,
        }
    }

    fn lost(&self, e: StoreError) -> Error {
        match e {
            StoreError::PreconditionFailed | StoreError::NotFound | StoreError::Conflict => {
                self.lost.store(true, Ordering::SeqCst);
                lost_error(&self.name, self.fencing_token)
            }
            other => other.at(&self.key),
        }
    }
}

async fn put_lock(
    db: &Context,
    key: &str,
    body: &LockBody,
    condition: WriteCondition,
) -> Result<String, StoreError> {
    let req = PutRequest {
        body: Bytes::from(serde_json::to_vec(body).expect("json")),
        content_type: Some("application/json".into()),
        condition,
        ..Default::default()
    };
    db.store.put(key, req).await
}

fn backoff(attempt: u32) -> Duration {
    let ceiling = (25u64 << attempt.min(5)).min(500);
    Duration::from_millis(ceiling / 2 + rand::random_range(0..=ceiling / 2))
}

async fn read_lock(db: &Context, name: &str) -> Result<Option<LockBody>> {
    validate_name("lock name", name)?;
    let key = lock_key(name);
    match db.store.get(&key).await {
        // A corrupt lock object is not held by anyone: acquire takes it over.
        Ok(obj) => Ok(serde_json::from_slice::<LockBody>(&obj.body)
            .ok()
            .filter(LockBody::held)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.at(&key)),
    }
}

fn parse_fenced(name: &str, body: &[u8]) -> Result<(Value, u64)> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Error::corrupt(format!("fenced object {name:?}: {e}")))?;
    let token = v
        .get("fencingToken")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            Error::corrupt(format!(
                "fenced object {name:?} has no integer fencingToken"
            ))
        })?;
    Ok((v.get("value").cloned().unwrap_or(Value::Null), token))
}

pub async fn fenced_put(
    db: &Context,
    name: &str,
    value: &Value,
    fencing_token: u64,
) -> Result<String> {
    validate_name("fenced object name", name)?;
    let key = fenced_key(name);
    let mut contradictions = Contradictions::new(format!("fenced object {name:?}"));
    let mut attempts = Attempts::new(
        format!("fenced write to {name:?}"),
        MAX_FENCED_ATTEMPTS,
        Duration::from_secs(60),
    );
    loop {
        let condition = match db.store.get(&key).await {
            Err(StoreError::NotFound) => WriteCondition::IfNoneMatch,
            Err(e) => return Err(e.at(&key)),
            Ok(obj) => {
                let (_, recorded) = parse_fenced(name, &obj.body)?;
                if fencing_token < recorded {
                    return Err(Error::new(
                        ErrorKind::LockLost,
                        format!(
                            "fenced write to {name:?} rejected: token {fencing_token} is older \
                             than token {recorded} that already wrote it"
                        ),
                    ));
                }
                WriteCondition::IfMatch(obj.head.etag)
            }
        };
        let body = json!({"fencingToken": fencing_token, "value": value, "updatedAt": iso_now()});
        let req = PutRequest {
            body: Bytes::from(serde_json::to_vec(&body).expect("json")),
            content_type: Some("application/json".into()),
            condition,
            ..Default::default()
        };
        let created = req.condition == WriteCondition::IfNoneMatch;
        match db.store.put(&key, req).await {
            Ok(etag) => return Ok(etag),
            // Someone wrote in between: check their token again.
            Err(e @ StoreError::PreconditionFailed)
            | Err(e @ StoreError::Conflict)
            | Err(e @ StoreError::NotFound) => {
                contradictions
                    .lost_write(created && matches!(e, StoreError::PreconditionFailed))?;
                attempts
                    .failed_because(ErrorKind::Conflict, "another writer wrote it each time")
                    .await?
            }
            Err(e) => return Err(e.at(&key)),
        }
    }
}

/// Whether a holder currently holds the lock (not released, not expired). One GET.
pub async fn is_locked(ctx: &Context, name: &str) -> Result<bool> {
    Ok(read_lock(ctx, name).await?.is_some())
}

/// The current holder of the lock, `None` when it is free (absent, released, expired
/// or unreadable). One GET.
pub async fn lock_info(ctx: &Context, name: &str) -> Result<Option<LockInfo>> {
    Ok(read_lock(ctx, name).await?.map(|b| LockInfo {
        holder_id: b.worker_id,
        fencing_token: b.fencing_token,
        acquired_at: b.acquired_at,
        expires_at: b.expires_at,
    }))
}

/// Reads a fenced object: its value and the highest token that wrote it.
pub async fn fenced_get(ctx: &Context, name: &str) -> Result<Option<Fenced>> {
    validate_name("fenced object name", name)?;
    let key = fenced_key(name);
    match ctx.store.get(&key).await {
        Ok(obj) => {
            let (value, fencing_token) = parse_fenced(name, &obj.body)?;
            Ok(Some(Fenced {
                value,
                fencing_token,
                version: obj.head.etag,
            }))
        }
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.at(&key)),
    }
}
