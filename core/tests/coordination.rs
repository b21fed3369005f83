//! Locks (info, auto-renew, fencing, races) and sequences (fast mode, delete, list), on
//! memory, file and S3 (when `S3DB_TEST_S3_URL` is set).

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{backends, connect};
use s3db::storage::{
    ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest, Store,
    StoreError, StoreResult, WriteCondition,
};
use s3db::{Database, ErrorKind, LockOptions, SequenceOptions, Stats};
use serde_json::{json, Value};

fn delta(before: Stats, after: Stats) -> (u64, u64, u64) {
    let d = |a: u64, b: u64| b - a;
    assert_eq!(
        d(before.head, after.head) + d(before.copy, after.copy) + d(before.list, after.list),
        0
    );
    (
        d(before.get, after.get),
        d(before.put, after.put),
        d(before.delete, after.delete),
    )
}

fn opts(ttl_ms: u64, timeout_ms: u64) -> LockOptions {
    LockOptions {
        ttl: Duration::from_millis(ttl_ms),
        timeout: Duration::from_millis(timeout_ms),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lock_request_counts_and_info() {
    for url in backends() {
        let db = connect(&url).await;
        let other = connect(&url).await;

        // First acquisition (object absent) and a later one (object present): 1 GET + 2 PUT.
        for round in 0..2 {
            let s = db.stats();
            let lock = db.lock("counted", LockOptions::default()).await.unwrap();
            lock.release().await.unwrap();
            assert_eq!(delta(s, db.stats()), (1, 2, 0), "round {round} on {url}");
        }

        let s = db.stats();
        assert!(!db.is_locked("info").await.unwrap());
        assert_eq!(db.lock_info("info").await.unwrap(), None);
        assert_eq!(
            delta(s, db.stats()),
            (2, 0, 0),
            "is_locked/lock_info: 1 GET each"
        );

        let lock = db.lock("info", LockOptions::default()).await.unwrap();
        assert!(other.is_locked("info").await.unwrap(), "{url}");
        let info = other.lock_info("info").await.unwrap().unwrap();
        assert_eq!(info.holder_id, db.holder_id());
        assert_eq!(info.fencing_token, lock.fencing_token());
        assert_eq!(info.expires_at, lock.expires_at().await);
        assert!(info.acquired_at <= info.expires_at);
        lock.release().await.unwrap();
        assert!(!other.is_locked("info").await.unwrap());
        assert_eq!(other.lock_info("info").await.unwrap(), None);

        // Expired counts as free.
        let short = db.lock("info", opts(200, 0)).await.unwrap();
        assert!(other.is_locked("info").await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!other.is_locked("info").await.unwrap());
        // Timeout 0 still takes over an expired lock, with a higher token.
        let taken = other.lock("info", opts(30_000, 0)).await.unwrap();
        assert!(taken.fencing_token() > short.fencing_token());
        assert_eq!(
            short.release().await.unwrap_err().kind(),
            ErrorKind::LockLost
        );
        assert!(short.is_lost());
        taken.release().await.unwrap();

        assert_eq!(
            db.is_locked("a/b").await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupt_and_foreign_lock_objects_are_handled() {
    for url in backends() {
        let db = connect(&url).await;
        let lock = db.lock("odd", LockOptions::default()).await.unwrap();
        let before = lock.fencing_token();
        lock.release().await.unwrap();

        // A corrupt lock object is free and taken over with a still higher token.
        put_raw(db.store(), "plugin=s3db/locks/odd", b"{not json").await;
        assert!(!db.is_locked("odd").await.unwrap());
        let lock = db.lock("odd", LockOptions::default()).await.unwrap();
        assert!(lock.fencing_token() > before, "{url}");
        lock.release().await.unwrap();

        // A live lock written by s3db.js (no fencingToken, no released flag) is respected.
        let now = chrono_ms();
        let js = json!({"workerId": "js-worker", "token": "abc", "acquiredAt": now,
                        "_expiresAt": now + 60_000});
        put_raw(
            db.store(),
            "plugin=s3db/locks/js",
            js.to_string().as_bytes(),
        )
        .await;
        assert!(db.is_locked("js").await.unwrap());
        assert_eq!(
            db.lock_info("js").await.unwrap().unwrap().holder_id,
            "js-worker"
        );
        assert_eq!(
            db.lock("js", LockOptions::default())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::LockNotAcquired,
            "{url}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_renew_keeps_a_lock_past_its_ttl_and_stops() {
    for url in backends() {
        let db = connect(&url).await;
        let other = connect(&url).await;
        // Generous ttl: the renewer must keep up on a loaded 2-core CI machine too.
        let lock = db.lock("renewed", opts(1500, 0)).await.unwrap();
        lock.auto_renew(|e| panic!("renewal failed: {e}")).unwrap();
        let first_expiry = lock.expires_at().await;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(lock.expires_at().await > first_expiry, "renewed on {url}");
        assert_eq!(
            other
                .lock("renewed", opts(1500, 0))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::LockNotAcquired,
            "still held past its ttl on {url}"
        );
        assert!(!lock.is_lost());
        lock.release().await.unwrap();
        // Released: the renewer stops (no more requests).
        let s = db.stats();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(delta(s, db.stats()), (0, 0, 0), "renewer stopped on {url}");
        other.lock("renewed", opts(600, 0)).await.unwrap();

        // Dropping every handle stops it too: the lock then expires.
        let dropped = db.lock("dropped", opts(400, 0)).await.unwrap();
        dropped.auto_renew(|_| {}).unwrap();
        drop(dropped);
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(!other.is_locked("dropped").await.unwrap(), "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_renew_reports_a_lost_lock() {
    for url in backends() {
        let db = connect(&url).await;
        let lock = db.lock("stolen", opts(600, 0)).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        lock.auto_renew(move |e| {
            let _ = tx.send(e.kind());
        })
        .unwrap();
        // Someone overwrites the lock object (the etag changes): renewal gets 412.
        put_raw(
            db.store(),
            "plugin=s3db/locks/stolen",
            b"{\"stolen\": true}",
        )
        .await;
        let kind = tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .expect("callback within the lease")
            .unwrap();
        assert_eq!(kind, ErrorKind::LockLost, "{url}");
        assert!(lock.is_lost());
        assert_eq!(
            lock.guarded_put("x", &json!(1)).await.unwrap_err().kind(),
            ErrorKind::LockLost
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_holder_cannot_write_fenced_data() {
    for url in backends() {
        let a_db = connect(&url).await;
        let b_db = connect(&url).await;
        let a = a_db.lock("account", opts(300, 0)).await.unwrap();

        let s = a_db.stats();
        a.guarded_put("balance", &json!({"amount": 100}))
            .await
            .unwrap();
        assert_eq!(delta(s, a_db.stats()), (1, 1, 0), "fenced put: GET + PUT");

        // A stalls past its ttl; B takes over and writes.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let b = b_db.lock("account", opts(30_000, 0)).await.unwrap();
        assert!(b.fencing_token() > a.fencing_token());
        b.guarded_put("balance", &json!({"amount": 50}))
            .await
            .unwrap();

        // A wakes up and writes late: rejected by the token, the data is B's.
        let e = a
            .guarded_put("balance", &json!({"amount": 999}))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LockLost, "{url}: {e}");
        let e = a_db
            .fenced_put("balance", &json!({"amount": 999}), a.fencing_token())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LockLost);
        let stored = a_db.fenced_get("balance").await.unwrap().unwrap();
        assert_eq!(stored.value, json!({"amount": 50}));
        assert_eq!(stored.fencing_token, b.fencing_token());
        assert_eq!(
            a.extend(Duration::from_secs(1)).await.unwrap_err().kind(),
            ErrorKind::LockLost
        );

        // The same token may write again; a higher one too.
        b.guarded_put("balance", &json!({"amount": 40}))
            .await
            .unwrap();
        b.release().await.unwrap();
        assert_eq!(
            b.guarded_put("balance", &json!(0))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::LockLost,
            "a released handle is refused"
        );
        let c = a_db.lock("account", LockOptions::default()).await.unwrap();
        c.guarded_put("balance", &json!({"amount": 41}))
            .await
            .unwrap();
        assert_eq!(
            a_db.fenced_get("balance")
                .await
                .unwrap()
                .unwrap()
                .fencing_token,
            c.fencing_token()
        );
        assert_eq!(a_db.fenced_get("nothing").await.unwrap(), None);
    }
}

/// A memory store whose next conditional PUTs fail with a chosen error.
#[derive(Debug)]
struct Racy {
    inner: MemoryStore,
    conflicts: AtomicU32,
    lost_races: AtomicU32,
}

#[async_trait]
impl ObjectStore for Racy {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        if req.condition != WriteCondition::None {
            let take = |n: &AtomicU32| {
                n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
                    .is_ok()
            };
            if take(&self.conflicts) {
                return Err(StoreError::Conflict);
            }
            if take(&self.lost_races) {
                return Err(StoreError::PreconditionFailed);
            }
        }
        self.inner.put(key, req).await
    }
    async fn copy(
        &self,
        s: &str,
        d: &str,
        m: Metadata,
        c: Option<String>,
        w: WriteCondition,
    ) -> StoreResult<String> {
        self.inner.copy(s, d, m, c, w).await
    }
    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        self.inner.delete(key, if_match).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.inner.delete_many(keys).await
    }
    async fn list(&self, p: &str, c: Option<&str>, m: usize) -> StoreResult<ListPage> {
        self.inner.list(p, c, m).await
    }
}

#[tokio::test]
async fn acquire_retries_409_and_lost_races_even_with_timeout_zero() {
    let racy = Arc::new(Racy {
        inner: MemoryStore::isolated(),
        conflicts: AtomicU32::new(0),
        lost_races: AtomicU32::new(0),
    });
    let store = Store::new(racy.clone(), "");
    let db = Database::with_store(store.clone()).await.unwrap();

    racy.conflicts.store(3, Ordering::SeqCst);
    let s = store.stats();
    let lock = db.lock("racy", LockOptions::default()).await.unwrap();
    assert_eq!(delta(s, store.stats()), (4, 4, 0), "3 × 409 then a win");
    lock.release().await.unwrap();

    racy.lost_races.store(2, Ordering::SeqCst);
    let lock = db.lock("racy", LockOptions::default()).await.unwrap();
    assert_eq!(lock.fencing_token(), 2);
    lock.release().await.unwrap();

    // 409/412 are never retried blindly by the storage layer: one request each.
    racy.conflicts.store(1, Ordering::SeqCst);
    let req = PutRequest {
        body: Bytes::from_static(b"x"),
        condition: WriteCondition::IfNoneMatch,
        ..Default::default()
    };
    let s = store.stats();
    assert_eq!(store.put("k", req).await.unwrap_err(), StoreError::Conflict);
    assert_eq!(delta(s, store.stats()), (0, 1, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sequence_fast_mode_delete_and_list() {
    for url in backends() {
        let db = connect(&url).await;
        let seq = db.sequence("std").unwrap();
        seq.next().await.unwrap();
        let s = db.stats();
        assert_eq!(seq.next().await.unwrap(), 2);
        assert_eq!(delta(s, db.stats()), (1, 1, 0), "next: GET + PUT on {url}");

        let fast = db
            .sequence_with(
                "fast",
                SequenceOptions {
                    batch_size: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        let s = db.stats();
        let mut got = Vec::new();
        for _ in 0..10 {
            got.push(fast.next().await.unwrap());
        }
        assert_eq!(got, (1..=10).collect::<Vec<i64>>());
        assert_eq!(
            delta(s, db.stats()),
            (1, 1, 0),
            "a batch of 10: 1 GET + 1 PUT on {url}"
        );
        assert_eq!(fast.current().await.unwrap(), Some(11));
        assert_eq!(fast.next().await.unwrap(), 11);
        assert_eq!(fast.current().await.unwrap(), Some(12), "local batch");
        // Another handle reserves the next batch: no overlap.
        let other = connect(&url).await;
        let fast2 = other
            .sequence_with(
                "fast",
                SequenceOptions {
                    batch_size: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(fast2.next().await.unwrap(), 21);

        // The stored object keeps s3db.js's format.
        let raw: Value =
            serde_json::from_slice(&db.store().get("sequences/fast/value").await.unwrap().body)
                .unwrap();
        assert_eq!(raw["value"], 31);
        assert_eq!(raw["name"], "fast");
        assert!(raw["createdAt"].as_str().unwrap().ends_with('Z'));
        assert!(raw["updatedAt"].as_str().unwrap().ends_with('Z'));

        // Increment applies inside a batch.
        let fives = db
            .sequence_with(
                "fives",
                SequenceOptions {
                    start: 0,
                    increment: 5,
                    batch_size: 3,
                },
            )
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(fives.next().await.unwrap());
        }
        assert_eq!(got, [0, 5, 10, 15]);

        // reset drops the local batch and writes resetAt.
        fast.reset(100).await.unwrap();
        assert_eq!(fast.next().await.unwrap(), 100);
        let raw: Value =
            serde_json::from_slice(&db.store().get("sequences/fast/value").await.unwrap().body)
                .unwrap();
        assert!(raw["resetAt"].is_string());
        assert_eq!(raw["value"], 110);

        assert_eq!(
            db.list_sequences().await.unwrap(),
            ["fast", "fives", "std"],
            "{url}"
        );
        let s = db.stats();
        seq.delete().await.unwrap();
        assert_eq!(delta(s, db.stats()), (0, 0, 1));
        assert_eq!(seq.current().await.unwrap(), None);
        assert_eq!(db.list_sequences().await.unwrap(), ["fast", "fives"]);
        assert_eq!(seq.next().await.unwrap(), 1, "starts again after delete");
        fast.delete().await.unwrap();
        assert_eq!(fast.next().await.unwrap(), 1);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fast_mode_is_unique_under_concurrency() {
    for url in backends() {
        let _catalog = connect(&url).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let db = connect(&url).await;
            let seq = db
                .sequence_with(
                    "ids",
                    SequenceOptions {
                        batch_size: 7,
                        ..Default::default()
                    },
                )
                .unwrap();
            // Several tasks share one handle (and its batch), in each of 3 clients.
            for _ in 0..4 {
                let seq = seq.clone();
                tasks.spawn(async move {
                    let mut got = Vec::new();
                    for _ in 0..10 {
                        got.push(seq.next().await.unwrap());
                    }
                    got
                });
            }
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "duplicates on {url}");
        assert_eq!(n, 120);
    }
}

async fn put_raw(store: &Store, key: &str, body: &[u8]) {
    store
        .put(
            key,
            PutRequest {
                body: Bytes::copy_from_slice(body),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
