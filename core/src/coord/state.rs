//! Distributed state: small JSON values shared between processes, with versions (etags),
//! compare-and-swap, counters and optional expiry.
//!
//! One object per key, `plugin=state/namespace=<ns>/<key>.json`, content type
//! `application/json`, body `{"value": <any JSON>, "updatedAt": "<ISO>"}` plus
//! `"_expiresAt": <ms since the epoch>` when the entry has a ttl (s3db.js's expiry field).
//! An expired entry reads as absent and is deleted conditionally on its etag, so a fresh
//! write racing with the cleanup is never lost.
//!
//! Every read-modify-write (`update`, counters) is a GET plus a PUT conditional on the etag
//! read (`If-None-Match: *` when absent), retried on 412/409 with jitter: 2 requests when
//! uncontended. `set` and `delete` are one blind request.

use std::time::Duration;

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Value};

use crate::coord::attempts::Contradictions;
use crate::coord::jitter;
use crate::coord::Context;
use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::iso_now;
use crate::format::ids::validate_name;
use crate::storage::{now_millis, PutRequest, StoreError, WriteCondition};

const MAX_CAS_ATTEMPTS: usize = 1000;

/// A live entry: its value, its version (the object's etag) and its expiry if any.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateEntry {
    pub value: Value,
    pub version: String,
    /// Milliseconds since the epoch.
    pub expires_at: Option<i64>,
}

/// Outcome of [`StateStore::compare_and_swap`]: when not swapped, what is there now
/// (`None`/`None` when the key is absent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CasResult {
    pub swapped: bool,
    pub current_value: Option<Value>,
    pub current_version: Option<String>,
}

/// The keys of one namespace. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateStore {
    db: Arc<Context>,
    namespace: String,
    prefix: String,
}

/// What a GET found: the live entry, and the etag of the object even when it expired
/// (a write then replaces it with `If-Match` instead of `If-None-Match`).
struct Slot {
    live: Option<StateEntry>,
    etag: Option<String>,
}

impl Slot {
    fn condition(&self) -> WriteCondition {
        match &self.etag {
            Some(etag) => WriteCondition::IfMatch(etag.clone()),
            None => WriteCondition::IfNoneMatch,
        }
    }
}

fn expires_in(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| now_millis() + t.as_millis() as i64)
}

impl StateStore {
    /// The distributed state of `namespace` (`plugin=state/namespace=<ns>/`).
    pub fn new(ctx: Arc<Context>, namespace: &str) -> Result<StateStore> {
        validate_name("state namespace", namespace)?;
        Ok(StateStore {
            db: ctx,
            namespace: namespace.to_string(),
            prefix: format!("plugin=state/namespace={namespace}/"),
        })
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn key(&self, key: &str) -> Result<String> {
        validate_name("state key", key)?;
        Ok(format!("{}{key}.json", self.prefix))
    }

    fn contention(&self, key: &str) -> Error {
        Error::new(
            ErrorKind::Conflict,
            format!("state {}/{key}: too much contention", self.namespace),
        )
    }

    async fn load(&self, full: &str, key: &str) -> Result<Slot> {
        let obj = match self.db.store.get(full).await {
            Ok(obj) => obj,
            Err(StoreError::NotFound) => {
                return Ok(Slot {
                    live: None,
                    etag: None,
                })
            }
            Err(e) => return Err(e.at(full)),
        };
        let body: Value = serde_json::from_slice(&obj.body)
            .map_err(|e| Error::corrupt(format!("state {}/{key}: {e}", self.namespace)))?;
        let Some(value) = body.get("value") else {
            return Err(Error::corrupt(format!(
                "state {}/{key} has no value field",
                self.namespace
            )));
        };
        let expires_at = body.get("_expiresAt").and_then(Value::as_i64);
        let live = match expires_at {
            Some(t) if t <= now_millis() => None,
            _ => Some(StateEntry {
                value: value.clone(),
                version: obj.head.etag.clone(),
                expires_at,
            }),
        };
        Ok(Slot {
            live,
            etag: Some(obj.head.etag),
        })
    }

    async fn write(
        &self,
        full: &str,
        value: &Value,
        expires_at: Option<i64>,
        condition: WriteCondition,
    ) -> Result<String, StoreError> {
        let mut body = json!({"value": value, "updatedAt": iso_now()});
        if let Some(t) = expires_at {
            body["_expiresAt"] = json!(t);
        }
        let req = PutRequest {
            body: Bytes::from(serde_json::to_vec(&body).expect("json")),
            content_type: Some("application/json".into()),
            condition,
            ..Default::default()
        };
        self.db.store.put(full, req).await
    }

    /// The live entry, or `None` when absent or expired (an expired object is then deleted,
    /// conditionally on its etag). One GET.
    pub async fn get(&self, key: &str) -> Result<Option<StateEntry>> {
        let full = self.key(key)?;
        let slot = self.load(&full, key).await?;
        if slot.live.is_none() {
            if let Some(etag) = &slot.etag {
                match self.db.store.delete(&full, Some(etag)).await {
                    Ok(()) | Err(StoreError::NotFound) | Err(StoreError::PreconditionFailed) => {}
                    Err(e) => tracing::debug!(key = %full, error = %e, "expired state not deleted"),
                }
            }
        }
        Ok(slot.live)
    }

    /// Stores `value` (last writer wins), expiring after `ttl` if given. Returns the new
    /// version. One PUT.
    pub async fn set(&self, key: &str, value: Value, ttl: Option<Duration>) -> Result<String> {
        let full = self.key(key)?;
        self.write(&full, &value, expires_in(ttl), WriteCondition::None)
            .await
            .map_err(|e| e.at(&full))
    }

    /// Read-modify-write by compare-and-swap: `f` gets the current value (`None` when absent
    /// or expired) and returns the new one; it runs again when another writer got there
    /// first. An error from `f` aborts. The entry keeps its expiry. Returns what was written.
    pub async fn update<F>(&self, key: &str, mut f: F) -> Result<StateEntry>
    where
        F: FnMut(Option<Value>) -> Result<Value>,
    {
        let full = self.key(key)?;
        let mut contradictions = Contradictions::new(format!("state {}/{key}", self.namespace));
        for _ in 0..MAX_CAS_ATTEMPTS {
            let slot = self.load(&full, key).await?;
            let expires_at = slot.live.as_ref().and_then(|e| e.expires_at);
            let value = f(slot.live.as_ref().map(|e| e.value.clone()))?;
            let created = slot.etag.is_none();
            match self
                .write(&full, &value, expires_at, slot.condition())
                .await
            {
                Ok(version) => {
                    return Ok(StateEntry {
                        value,
                        version,
                        expires_at,
                    })
                }
                Err(e @ StoreError::PreconditionFailed)
                | Err(e @ StoreError::Conflict)
                | Err(e @ StoreError::NotFound) => {
                    contradictions
                        .lost_write(created && matches!(e, StoreError::PreconditionFailed))?;
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(e.at(&full)),
            }
        }
        Err(self.contention(key))
    }

    /// Writes `value` only if the entry is still at `expected_version` (`None`: only if the
    /// key is absent or expired). Never retries: a lost race returns `swapped: false` with the
    /// current value and version. One PUT when it swaps; one more GET when it does not.
    pub async fn compare_and_swap(
        &self,
        key: &str,
        expected_version: Option<&str>,
        value: Value,
    ) -> Result<CasResult> {
        let full = self.key(key)?;
        let mut condition = match expected_version {
            Some(v) => WriteCondition::IfMatch(v.to_string()),
            None => WriteCondition::IfNoneMatch,
        };
        for _ in 0..MAX_CAS_ATTEMPTS {
            match self.write(&full, &value, None, condition.clone()).await {
                Ok(version) => {
                    return Ok(CasResult {
                        swapped: true,
                        current_value: Some(value),
                        current_version: Some(version),
                    })
                }
                Err(StoreError::PreconditionFailed)
                | Err(StoreError::Conflict)
                | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e.at(&full)),
            }
            let slot = self.load(&full, key).await?;
            match (&slot.live, expected_version, &slot.etag) {
                // "absent" was expected and the object there has expired: replace it, unless
                // that very object was what the last attempt already failed against.
                (None, None, Some(etag)) if condition != WriteCondition::IfMatch(etag.clone()) => {
                    condition = WriteCondition::IfMatch(etag.clone());
                }
                // Absent now although the write failed (deleted meanwhile): try again.
                (None, None, None) => condition = WriteCondition::IfNoneMatch,
                _ => {
                    return Ok(CasResult {
                        swapped: false,
                        current_value: slot.live.as_ref().map(|e| e.value.clone()),
                        current_version: slot.live.map(|e| e.version),
                    })
                }
            }
        }
        Err(self.contention(key))
    }

    /// Deletes the entry (one DELETE; deleting an absent key succeeds).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let full = self.key(key)?;
        self.db
            .store
            .delete(&full, None)
            .await
            .map_err(|e| e.at(&full))
    }

    /// Adds `by` to the counter (absent: 0) by compare-and-swap; returns the new value.
    pub async fn increment(&self, key: &str, by: i64) -> Result<i64> {
        let mut out = 0;
        self.update(key, |cur| {
            let n = counter_value(&self.namespace, key, cur.as_ref())?;
            out = n.checked_add(by).ok_or_else(|| {
                Error::invalid(format!(
                    "counter {}/{key} would overflow 64 bits",
                    self.namespace
                ))
            })?;
            Ok(json!(out))
        })
        .await?;
        Ok(out)
    }

    /// Subtracts `by` from the counter; returns the new value.
    pub async fn decrement(&self, key: &str, by: i64) -> Result<i64> {
        let by = by
            .checked_neg()
            .ok_or_else(|| Error::invalid("decrement out of range"))?;
        self.increment(key, by).await
    }

    /// The counter's value (0 when absent or expired). One GET.
    pub async fn counter(&self, key: &str) -> Result<i64> {
        let entry = self.get(key).await?;
        counter_value(&self.namespace, key, entry.as_ref().map(|e| &e.value))
    }

    /// Sets the counter back to 0 (deletes it). One DELETE.
    pub async fn reset(&self, key: &str) -> Result<()> {
        self.delete(key).await
    }

    /// Keys of this namespace in byte order, expired ones included (one LIST per 1,000).
    pub async fn keys(&self) -> Result<Vec<String>> {
        let keys = self
            .db
            .store
            .list_all(&self.prefix)
            .await
            .map_err(|e| e.at(&self.prefix))?;
        Ok(keys
            .iter()
            .filter_map(|k| k.strip_prefix(&self.prefix)?.strip_suffix(".json"))
            .map(str::to_string)
            .collect())
    }
}

fn counter_value(namespace: &str, key: &str, v: Option<&Value>) -> Result<i64> {
    match v {
        None => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| {
            Error::validation(format!(
                "state {namespace}/{key} holds {v}, not an integer counter"
            ))
        }),
    }
}
