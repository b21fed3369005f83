//! On remote backends catalog writes hold s3db.js's catalog mutex (docs/format.md §12.3, vector
//! `metadata-lock`), so an s3db.js writer cannot overwrite them; the write itself stays a
//! compare-and-swap.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use s3db::storage::{
    ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest, Store,
    StoreError, StoreResult, WriteCondition,
};
use s3db::{Database, ErrorKind};
use serde_json::{json, Value};

const MUTEX: &str = "plugin=s3db-core/locks/namespace=metadata/s3db-metadata.json";

/// A memory store that logs every request: (op, key, condition).
#[derive(Debug)]
struct Recorder {
    inner: MemoryStore,
    log: Mutex<Vec<(String, String, String)>>,
    /// Bodies PUT to the mutex key.
    mutex_bodies: Mutex<Vec<Bytes>>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            inner: MemoryStore::isolated(),
            log: Mutex::default(),
            mutex_bodies: Mutex::default(),
        })
    }
    fn note(&self, op: &str, key: &str, cond: String) {
        self.log.lock().unwrap().push((op.into(), key.into(), cond));
    }
    fn take(&self) -> Vec<(String, String, String)> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn cond(c: &WriteCondition) -> String {
    match c {
        WriteCondition::None => "".into(),
        WriteCondition::IfNoneMatch => "If-None-Match".into(),
        WriteCondition::IfMatch(_) => "If-Match".into(),
    }
}

#[async_trait]
impl ObjectStore for Recorder {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.note("GET", key, String::new());
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.note("HEAD", key, String::new());
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        self.note("PUT", key, cond(&req.condition));
        if key == MUTEX {
            self.mutex_bodies.lock().unwrap().push(req.body.clone());
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
        self.note("COPY", d, cond(&w));
        self.inner.copy(s, d, m, c, w).await
    }
    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let c = if if_match.is_some() { "If-Match" } else { "" };
        self.note("DELETE", key, c.into());
        self.inner.delete(key, if_match).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.note("DELETE_MANY", &keys.join(","), String::new());
        self.inner.delete_many(keys).await
    }
    async fn list(&self, p: &str, c: Option<&str>, m: usize) -> StoreResult<ListPage> {
        self.note("LIST", p, String::new());
        self.inner.list(p, c, m).await
    }
}

async fn remote(rec: &Arc<Recorder>) -> Database {
    let store = Store::new(rec.clone(), "").with_catalog_mutex(true);
    let db = Database::with_store(store).await.unwrap();
    rec.take();
    db
}

fn ops(log: &[(String, String, String)]) -> Vec<(&str, &str, &str)> {
    log.iter()
        .map(|(o, k, c)| (o.as_str(), k.as_str(), c.as_str()))
        .collect()
}

fn vector(name: &str) -> Value {
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap()).unwrap()
}

async fn put_mutex(rec: &Recorder, body: &str) -> String {
    rec.inner
        .put(
            MUTEX,
            PutRequest {
                body: Bytes::from(body.to_string()),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The scenario of vector `metadata-lock`: the mutex object as s3db.js writes it, held
/// around the catalog write and released; 3 requests instead of s3db.js's 6.
#[tokio::test]
async fn catalog_writes_hold_the_mutex_like_s3db_js() {
    let rec = Recorder::new();
    let db = remote(&rec).await;
    db.create_resource("locked", &json!({"name": "string"}))
        .await
        .unwrap();
    let log = rec.take();
    assert_eq!(
        ops(&log),
        [
            ("PUT", MUTEX, "If-None-Match"),
            ("PUT", "s3db.json", "If-Match"),
            ("DELETE", MUTEX, "If-Match"),
        ]
    );
    assert!(matches!(
        rec.inner.get(MUTEX).await,
        Err(StoreError::NotFound)
    ));

    let theirs = vector("metadata-lock.json");
    assert_eq!(theirs["operations"][0]["key"], MUTEX);
    let recorded: Value =
        serde_json::from_str(theirs["operations"][0]["body"].as_str().unwrap()).unwrap();
    let mine: Value = serde_json::from_slice(&rec.mutex_bodies.lock().unwrap()[0]).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&mine), keys(&recorded));
    let acquired = mine["acquiredAt"].as_i64().unwrap();
    assert_eq!(mine["expiresAt"].as_i64().unwrap(), acquired + 30_000);
    assert_eq!(mine["_expiresAt"].as_i64().unwrap(), acquired + 90_000);
    let holder = mine["holderId"].as_str().unwrap();
    assert!(holder.starts_with("holder-"), "{holder}");
    let lock_id = mine["lockId"].as_str().unwrap();
    let rest = lock_id
        .strip_prefix(&format!("lock-{holder}-{acquired}-"))
        .unwrap_or_else(|| panic!("{lock_id}"));
    assert_eq!(rest.len(), 8);
    assert!(rest
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()));
}

/// A live mutex (an s3db.js writer mid-write) is waited for, never overwritten.
#[tokio::test]
async fn a_live_holder_is_waited_for() {
    let rec = Recorder::new();
    let db = remote(&rec).await;
    let now = now_ms();
    let body = json!({"lockId": "lock-holder-js-1-abcdefgh", "holderId": "holder-js",
        "acquiredAt": now, "expiresAt": now + 30_000, "_expiresAt": now + 90_000});
    put_mutex(&rec, &body.to_string()).await;
    let releaser = rec.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        releaser.inner.delete(MUTEX, None).await.unwrap();
    });
    let t0 = Instant::now();
    db.create_resource("waited", &json!({"a": "string"}))
        .await
        .unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(600));
    let log = rec.take();
    assert!(
        !log.iter()
            .any(|(o, k, c)| o == "PUT" && k == MUTEX && c == "If-Match"),
        "a live mutex was taken over: {log:?}"
    );
    assert!(db.resource("waited").await.is_ok());
}

/// An expired mutex (a crashed holder) is taken over by compare-and-swap on its etag.
#[tokio::test]
async fn an_expired_mutex_is_taken_over_by_cas() {
    let rec = Recorder::new();
    let db = remote(&rec).await;
    let old = now_ms() - 120_000;
    let body = json!({"lockId": "lock-holder-js-1-abcdefgh", "holderId": "holder-js",
        "acquiredAt": old, "expiresAt": old + 30_000, "_expiresAt": old + 90_000});
    put_mutex(&rec, &body.to_string()).await;
    db.create_resource("taken", &json!({"a": "string"}))
        .await
        .unwrap();
    assert_eq!(
        ops(&rec.take()),
        [
            ("PUT", MUTEX, "If-None-Match"),
            ("GET", MUTEX, ""),
            ("PUT", MUTEX, "If-Match"),
            ("PUT", "s3db.json", "If-Match"),
            ("DELETE", MUTEX, "If-Match"),
        ]
    );
}

/// A mutex object that is not s3db.js's JSON is a CORRUPT error; nothing is written.
#[tokio::test]
async fn a_corrupt_mutex_is_a_typed_error_and_nothing_is_written() {
    let rec = Recorder::new();
    let db = remote(&rec).await;
    let before = rec.inner.get("s3db.json").await.unwrap();
    for garbage in ["not json", "{\"lockId\": 1}"] {
        put_mutex(&rec, garbage).await;
        let err = db
            .create_resource("never", &json!({"a": "string"}))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
        assert!(err.message().contains("s3db-metadata.json"), "{err}");
        assert_eq!(
            rec.inner.get(MUTEX).await.unwrap().body,
            Bytes::from(garbage)
        );
        let after = rec.inner.get("s3db.json").await.unwrap();
        assert_eq!(after.body, before.body);
    }
}

/// memory:// and file:// (s3db.js's own clients take no mutex there) write the catalog alone;
/// S3 connection strings turn the mutex on.
#[tokio::test]
async fn only_remote_backends_take_the_mutex() {
    let rec = Recorder::new();
    let db = Database::with_store(Store::new(rec.clone(), ""))
        .await
        .unwrap();
    rec.take();
    db.create_resource("plain", &json!({"a": "string"}))
        .await
        .unwrap();
    assert_eq!(ops(&rec.take()), [("PUT", "s3db.json", "If-Match")]);

    for (url, remote) in [
        ("memory://b", false),
        ("http://k:s@127.0.0.1:9/bucket", true),
        ("s3://k:s@bucket?region=us-east-1", true),
    ] {
        assert_eq!(
            Store::open(url).await.unwrap().catalog_mutex(),
            remote,
            "{url}"
        );
    }
}
