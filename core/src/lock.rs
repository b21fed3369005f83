//! Distributed locks with fencing tokens.
//!
//! One object per lock name, `plugin=s3db/locks/<name>`, never deleted on release: it
//! keeps the last fencing token, so the next holder writes token + 1 by compare-and-swap.
//! Acquire is a GET plus one conditional PUT; release and extend are one conditional PUT.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::database::DbInner;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{generate_id, validate_name};
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

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LockBody {
    worker_id: String,
    token: String,
    acquired_at: i64,
    #[serde(rename = "_expiresAt")]
    expires_at: i64,
    fencing_token: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    released: bool,
}

#[derive(Debug)]
struct State {
    etag: String,
    expires_at: i64,
    released: bool,
}

/// A held lock. Cloning shares the handle.
#[derive(Debug, Clone)]
pub struct Lock {
    db: Arc<DbInner>,
    name: String,
    key: String,
    token: String,
    fencing_token: u64,
    acquired_at: i64,
    state: Arc<Mutex<State>>,
}

pub(crate) fn lock_key(name: &str) -> String {
    format!("plugin=s3db/locks/{name}")
}

impl Lock {
    pub(crate) async fn acquire(db: Arc<DbInner>, name: &str, opts: LockOptions) -> Result<Lock> {
        validate_name("lock name", name)?;
        let key = lock_key(name);
        let deadline = Instant::now() + opts.timeout;
        let mut waits = 0u32;
        loop {
            let (condition, last_token) = match db.store.get(&key).await {
                Err(StoreError::NotFound) => (WriteCondition::IfNoneMatch, 0),
                Err(e) => return Err(e.at(&key)),
                Ok(obj) => match serde_json::from_slice::<LockBody>(&obj.body) {
                    Ok(cur) if !cur.released && cur.expires_at > now_millis() => {
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
                        db,
                        name: name.to_string(),
                        key,
                        token: body.token,
                        fencing_token: body.fencing_token,
                        acquired_at: now,
                        state: Arc::new(Mutex::new(State {
                            etag,
                            expires_at: body.expires_at,
                            released: false,
                        })),
                    })
                }
                // Lost the race to another contender: look again.
                Err(StoreError::PreconditionFailed)
                | Err(StoreError::Conflict)
                | Err(StoreError::NotFound) => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::LockNotAcquired,
                            format!("lock {name:?} was taken by another holder"),
                        ));
                    }
                }
                Err(e) => return Err(e.at(&key)),
            }
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Strictly increasing across all holders of this lock name.
    pub fn fencing_token(&self) -> u64 {
        self.fencing_token
    }

    pub fn holder_id(&self) -> &str {
        &self.db.holder_id
    }

    /// Milliseconds since the epoch.
    pub async fn expires_at(&self) -> i64 {
        self.state.lock().await.expires_at
    }

    /// Pushes the expiry to now + `ttl`. Fails with `LockLost` if another holder took it.
    pub async fn extend(&self, ttl: Duration) -> Result<()> {
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

    /// Releases the lock. Releasing twice is a no-op; a lock taken over meanwhile is `LockLost`.
    pub async fn release(&self) -> Result<()> {
        let mut st = self.state.lock().await;
        if st.released {
            return Ok(());
        }
        let body = self.body(now_millis(), true);
        let res = put_lock(
            &self.db,
            &self.key,
            &body,
            WriteCondition::IfMatch(st.etag.clone()),
        )
        .await;
        st.released = true;
        match res {
            Ok(_) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(self.lost(e)),
        }
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
                Error::new(
                    ErrorKind::LockLost,
                    format!(
                        "lock {:?} (token {}) is no longer held by this handle",
                        self.name, self.fencing_token
                    ),
                )
            }
            other => other.at(&self.key),
        }
    }
}

async fn put_lock(
    db: &DbInner,
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
