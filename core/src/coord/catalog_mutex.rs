//! s3db.js's catalog mutex (format.md §12.3): on remote backends s3db.js takes this object
//! before it reads and blindly rewrites `s3db.json`. Holding it while we write the catalog
//! (still by compare-and-swap) keeps an s3db.js writer from overwriting our change.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};

use crate::coord::attempts::Attempts;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{now_millis, PutRequest, Store, StoreError, WriteCondition};

pub(crate) const KEY: &str = "plugin=s3db-core/locks/namespace=metadata/s3db-metadata.json";
const LEASE_MS: i64 = 30_000;
const STORAGE_TTL_MS: i64 = LEASE_MS + 60_000;
/// Longer than one lease: a crashed holder's mutex expires before we give up.
const WAIT: Duration = Duration::from_secs(40);

fn random_base36(n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| DIGITS[rand::random_range(0..DIGITS.len())] as char)
        .collect()
}

fn body(holder: &str) -> Bytes {
    let now = now_millis();
    let lock_id = format!("lock-{holder}-{now}-{}", random_base36(8));
    Bytes::from(
        json!({
            "lockId": lock_id,
            "holderId": holder,
            "acquiredAt": now,
            "expiresAt": now + LEASE_MS,
            "_expiresAt": now + STORAGE_TTL_MS,
        })
        .to_string(),
    )
}

fn put(holder: &str, condition: WriteCondition) -> PutRequest {
    PutRequest {
        body: body(holder),
        content_type: Some("application/json".into()),
        condition,
        ..Default::default()
    }
}

/// Takes the mutex (create-only; an expired one is taken over by `If-Match`) and returns the
/// etag to release it with. Waits for a live holder up to one lease and a margin.
pub(crate) async fn acquire(store: &Store, holder_id: &str) -> Result<String> {
    let holder = format!("holder-{holder_id}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut attempt = 0u32;
    let mut vanished = Attempts::new("taking the catalog mutex", 10, WAIT);
    loop {
        match store
            .put(KEY, put(&holder, WriteCondition::IfNoneMatch))
            .await
        {
            Ok(etag) => return Ok(etag),
            Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {}
            Err(e) => return Err(e.at(KEY)),
        }
        match store.get(KEY).await {
            Ok(obj) => {
                let held: Value = serde_json::from_slice(&obj.body).map_err(|e| {
                    Error::corrupt(format!(
                        "{KEY}: the catalog mutex object is not JSON ({e}); delete it to write the catalog"
                    ))
                })?;
                let expires_at = held.get("expiresAt").and_then(Value::as_i64).ok_or_else(|| {
                    Error::corrupt(format!(
                        "{KEY}: the catalog mutex object has no expiresAt; delete it to write the catalog"
                    ))
                })?;
                let by = held.get("holderId").and_then(Value::as_str).unwrap_or("?");
                if expires_at <= now_millis() || holder_is_dead(by) {
                    match store
                        .put(KEY, put(&holder, WriteCondition::IfMatch(obj.head.etag)))
                        .await
                    {
                        Ok(etag) => return Ok(etag),
                        Err(StoreError::PreconditionFailed)
                        | Err(StoreError::Conflict)
                        | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e.at(KEY)),
                    }
                } else if tokio::time::Instant::now() >= deadline {
                    return Err(Error::new(
                        ErrorKind::LockNotAcquired,
                        format!("the catalog mutex is held by {by} until {expires_at} (epoch ms)"),
                    ));
                }
            }
            Err(StoreError::NotFound) => {
                vanished
                    .failed_because(
                        ErrorKind::Storage,
                        "the store refuses to create it (412) and says it is missing (404)",
                    )
                    .await?;
                continue;
            }
            Err(e) => return Err(e.at(KEY)),
        }
        let backoff = 100u64.saturating_mul(1 << attempt.min(4)).min(1000);
        tokio::time::sleep(Duration::from_millis(backoff + rand::random_range(0..50))).await;
        attempt += 1;
    }
}

/// A holder this process can prove dead: a process of this host (`holder-<host>-<pid>-<rand>`,
/// as written by [`crate::coord::process_holder_id`]) whose pid no longer runs. A restarted
/// writer then does not wait out its dead predecessor's lease.
fn holder_is_dead(holder: &str) -> bool {
    let Some(id) = holder.strip_prefix("holder-") else {
        return false;
    };
    let mut parts = id.rsplitn(3, '-');
    let (Some(_random), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    let ours = gethostname::gethostname().to_string_lossy().into_owned();
    host == ours
        && pid != std::process::id()
        && std::path::Path::new("/proc/self").exists()
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes the mutex if it is still ours (`If-Match`); an expired-and-taken-over one is left.
pub(crate) async fn release(store: &Store, etag: &str) {
    match store.delete(KEY, Some(etag)).await {
        Ok(()) | Err(StoreError::NotFound) | Err(StoreError::PreconditionFailed) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not release the catalog mutex; it expires in 30 s")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::holder_is_dead;

    #[test]
    fn only_a_local_process_that_is_gone_is_dead() {
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let me = std::process::id();
        assert!(!holder_is_dead(&format!("holder-{host}-{me}-abc123")));
        assert!(holder_is_dead(&format!("holder-{host}-4194999-abc123")));
        assert!(!holder_is_dead("holder-another-host-4194999-abc123"));
        assert!(
            !holder_is_dead("holder-web-1"),
            "s3db.js holder ids are never judged"
        );
        assert!(!holder_is_dead(&format!("holder-{host}")));
    }
}
