//! PluginStorage: the s3db.js 21.6.2 vector `plugin-storage.json` replayed byte for byte and
//! read back, then the behaviour (limits, TTL expiry under a racing writer, conditions,
//! request counts, sequences, locks) on every backend.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::backends;
use s3db::storage::{
    ConnectionString, Endpoint, FileStore, ListPage, MemoryStore, Metadata, Object, ObjectHead,
    ObjectStore, PutRequest, S3Store, Store, StoreError, StoreResult, WriteCondition,
};
use s3db::{
    Clock, Database, ErrorKind, PluginBehavior, PluginLockOptions, PluginSequenceOptions,
    SetOptions, Stats,
};
use serde_json::{json, Map, Value};

/// 2024-01-15T12:00:00.000Z, the vector's fake clock.
const T0: i64 = 1_705_320_000_000;
const SLUG: &str = "my-plugin";

fn vectors_dir() -> String {
    std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string())
}

fn vector() -> Value {
    let path = format!("{}/plugin-storage.json", vectors_dir());
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn step<'a>(v: &'a Value, label: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"].as_str().unwrap().starts_with(label))
        .unwrap_or_else(|| panic!("no step {label:?}"))
}

fn object<'a>(v: &'a Value, key: &str) -> &'a Value {
    v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == key)
        .unwrap_or_else(|| panic!("no object {key}"))
}

fn metadata_of(v: &Value) -> Metadata {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn mem_store() -> (MemoryStore, Store) {
    let mem = MemoryStore::isolated();
    let store = Store::new(Arc::new(mem.clone()), "");
    (mem, store)
}

/// A clock the test moves by hand.
fn manual_clock(start: i64) -> (Arc<AtomicI64>, Clock) {
    let now = Arc::new(AtomicI64::new(start));
    let c = now.clone();
    (now, Clock::from_fn(move || c.load(Ordering::SeqCst)))
}

fn no_requests() -> Stats {
    Stats::default()
}

/// Replaces the random lock token of a lock body by `<token>`.
fn without_token(body: &[u8]) -> String {
    let mut v: Map<String, Value> = serde_json::from_slice(body).unwrap();
    v.insert("token".into(), json!("<token>"));
    serde_json::to_string(&v).unwrap()
}

/// Every PluginStorage step of the vector, replayed on a memory store with the vector's
/// clock; each resulting object equals the recorded one byte for byte (metadata as stored,
/// content type, body), intermediate sequence bodies equal the recorded PUTs, and every
/// recorded result is reproduced.
#[tokio::test]
async fn vector_replay_reproduces_every_plugin_object() {
    let v = vector();
    let (mem, store) = mem_store();
    let db = Database::with_store(store).await.unwrap();
    let ps = db
        .plugin_storage(SLUG)
        .unwrap()
        .with_clock(Clock::fixed(T0));
    let mut replayed = 0;

    // getPluginKey examples
    let keys = &step(&v, "getPluginKey examples")["result"];
    assert_eq!(ps.key(None, &["config"]).unwrap(), keys["global"]);
    assert_eq!(
        ps.key(Some("users"), &["cache", "abc.json"]).unwrap(),
        keys["perResource"]
    );
    assert_eq!(
        ps.key(None, &["sequence=counter", "value"]).unwrap(),
        keys["seqGlobal"]
    );
    assert_eq!(
        ps.key(Some("users"), &["sequence=counter", "lock"])
            .unwrap(),
        keys["seqResource"]
    );
    replayed += 1;

    // Inputs, as the recorded PUTs show them before encoding.
    let ops = v["operations"].as_array().unwrap();
    let put_of = |key: &str| {
        ops.iter()
            .find(|o| o["op"] == "putObject" && o["key"] == key)
            .unwrap()
    };
    let big_put = put_of("plugin=my-plugin/big");
    let big_body: Value = serde_json::from_str(big_put["body"].as_str().unwrap()).unwrap();
    let big = json!({
        "small": big_put["metadata"]["small"],
        "large": big_body["large"],
        "mid": big_put["metadata"]["mid"],
    });
    let config = json!({"a": 1, "name": "x", "flag": true, "list": [1, 2], "nested": {"b": 2}, "text": "héllo"});
    let opts = |behavior| SetOptions {
        behavior,
        ..Default::default()
    };
    ps.set(
        &ps.key(None, &["config"]).unwrap(),
        &config,
        &SetOptions::default(),
    )
    .await
    .unwrap();
    ps.set(
        &ps.key(None, &["big"]).unwrap(),
        &big,
        &SetOptions::default(),
    )
    .await
    .unwrap();
    ps.set(
        &ps.key(None, &["bodyonly"]).unwrap(),
        &json!({"a": 1, "b": "two"}),
        &opts(PluginBehavior::BodyOnly),
    )
    .await
    .unwrap();
    ps.set(
        &ps.key(None, &["enforced"]).unwrap(),
        &json!({"a": 1, "b": "two"}),
        &opts(PluginBehavior::EnforceLimits),
    )
    .await
    .unwrap();
    ps.set(
        &ps.key(Some("users"), &["cache", "abc.json"]).unwrap(),
        &json!({"value": 42}),
        &SetOptions {
            ttl: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    replayed += 5;

    assert_eq!(
        ps.get("plugin=my-plugin/config").await.unwrap().unwrap(),
        step(&v, "get config")["result"]
    );
    let got = ps.get("plugin=my-plugin/big").await.unwrap().unwrap();
    let want = &step(&v, "get big")["result"];
    assert_eq!(got["small"], want["small"]);
    assert_eq!(
        json!(got["large"].as_str().unwrap().len()),
        want["largeLength"]
    );
    assert_eq!(json!(got["mid"].as_str().unwrap().len()), want["midLength"]);
    assert_eq!(got.as_object().unwrap().len(), 3);
    assert_eq!(
        json!(ps.list(None).await.unwrap()),
        step(&v, "list()")["result"]
    );
    replayed += 3;

    // Sequences: results and every intermediate value body as recorded.
    let value_puts = |key: &str| -> Vec<String> {
        ops.iter()
            .filter(|o| o["op"] == "putObject" && o["key"] == key)
            .map(|o| o["body"].as_str().unwrap().to_string())
            .collect()
    };
    let counter_key = "plugin=my-plugin/sequence=counter/value";
    let recorded = value_puts(counter_key);
    assert_eq!(recorded.len(), 3);
    for (n, label) in ["#1", "#2", "#3"].iter().enumerate() {
        let got = ps
            .next_sequence("counter", &PluginSequenceOptions::default())
            .await
            .unwrap();
        assert_eq!(
            json!(got),
            step(&v, &format!("nextSequence counter {label}"))["result"]
        );
        let stored = mem.get(counter_key).await.unwrap();
        assert_eq!(
            String::from_utf8_lossy(&stored.body),
            recorded[n],
            "{label}"
        );
        replayed += 1;
    }
    let orders = PluginSequenceOptions {
        resource: Some("users".into()),
        initial_value: 100,
        ..Default::default()
    };
    assert_eq!(
        json!(ps.next_sequence("orders", &orders).await.unwrap()),
        step(&v, "nextSequence per-resource")["result"]
    );
    let orders_key = "resource=users/plugin=my-plugin/sequence=orders/value";
    assert_eq!(
        String::from_utf8_lossy(&mem.get(orders_key).await.unwrap().body),
        value_puts(orders_key)[0]
    );
    replayed += 1;

    // Lock job-1 (token random on both sides).
    let lock = ps
        .acquire_lock(
            "job-1",
            &PluginLockOptions {
                ttl: Duration::from_secs(30),
                worker_id: "worker-A".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    let want = &step(&v, "acquireLock job-1")["result"];
    assert_eq!(lock.name, want["name"]);
    assert_eq!(lock.key, want["key"]);
    assert_eq!(lock.worker_id, want["workerId"]);
    assert_eq!(json!(lock.expires_at), want["expiresAt"]);
    assert_eq!(lock.token.len(), 22);
    replayed += 1;

    // Every object the replay wrote equals the recorded one; nothing else was written.
    let ours: Vec<&Value> = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| {
            let k = o["key"].as_str().unwrap();
            (k.starts_with("plugin=my-plugin/")
                || k.starts_with("resource=users/plugin=my-plugin/"))
                && k != "plugin=my-plugin/sequence=global/value" // DistributedSequence, not PluginStorage
        })
        .collect();
    assert_eq!(ours.len(), 8);
    for o in &ours {
        let key = o["key"].as_str().unwrap();
        let got = mem.get(key).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(
            got.head.metadata,
            metadata_of(&o["metadata"]),
            "{key} metadata"
        );
        assert_eq!(
            got.head.content_type.as_deref(),
            o["contentType"].as_str(),
            "{key}"
        );
        let want = o["body"].as_str().unwrap().as_bytes();
        if key.contains("/locks/") {
            assert_eq!(without_token(&got.body), without_token(want), "{key} body");
        } else {
            assert_eq!(&got.body[..], want, "{key} body");
        }
        assert_eq!(got.head.size, o["size"].as_u64().unwrap(), "{key} size");
    }
    let mut stored = mem.list("", None, 1000).await.unwrap().keys;
    stored.retain(|k| k != "s3db.json");
    let mut expected: Vec<String> = ours
        .iter()
        .map(|o| o["key"].as_str().unwrap().into())
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    eprintln!(
        "plugin-storage vector: {replayed} PluginStorage steps replayed, {} objects compared byte for byte",
        ours.len()
    );
    assert_eq!(replayed, 14);
    // The other steps are not PluginStorage (S3Mutex, DistributedSequence).
    let others: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .filter(|l| l.starts_with("S3Mutex") || l.starts_with("DistributedSequence"))
        .collect();
    assert_eq!(others.len(), 4);
    assert_eq!(
        v["steps"].as_array().unwrap().len(),
        replayed + others.len()
    );
}

/// A store seeded with every recorded object, exactly as s3db.js left it.
async fn seeded(v: &Value) -> (MemoryStore, Database) {
    let (mem, store) = mem_store();
    for o in v["objects"].as_array().unwrap() {
        let req = PutRequest {
            body: Bytes::from(o["body"].as_str().unwrap().as_bytes().to_vec()),
            metadata: metadata_of(&o["metadata"]),
            content_type: o["contentType"].as_str().map(str::to_string),
            ..Default::default()
        };
        mem.put(o["key"].as_str().unwrap(), req).await.unwrap();
    }
    let db = Database::with_store(store).await.unwrap();
    (mem, db)
}

/// Every PluginStorage object s3db.js stored reads back as s3db.js returns it.
#[tokio::test]
async fn vector_objects_read_back_as_s3db_js_returns_them() {
    let v = vector();
    let (mem, db) = seeded(&v).await;
    let (now, clock) = manual_clock(T0);
    let ps = db.plugin_storage(SLUG).unwrap().with_clock(clock);
    let body = |key: &str| -> Value {
        serde_json::from_str(object(&v, key)["body"].as_str().unwrap()).unwrap()
    };

    // Recorded by s3db.js.
    assert_eq!(
        ps.get("plugin=my-plugin/config").await.unwrap().unwrap(),
        step(&v, "get config")["result"]
    );
    let big = ps.get("plugin=my-plugin/big").await.unwrap().unwrap();
    let want = &step(&v, "get big")["result"];
    assert_eq!(big["small"], want["small"]);
    assert_eq!(
        json!(big["large"].as_str().unwrap().len()),
        want["largeLength"]
    );
    assert_eq!(json!(big["mid"].as_str().unwrap().len()), want["midLength"]);
    // s3db.js's read rules (§13) applied to the other objects.
    let expect = [
        ("plugin=my-plugin/bodyonly", json!({"a": 1, "b": "two"})),
        ("plugin=my-plugin/enforced", json!({"a": 1, "b": "two"})),
        (
            "resource=users/plugin=my-plugin/cache/abc.json",
            json!({"value": 42}),
        ),
        (
            "plugin=my-plugin/sequence=counter/value",
            body("plugin=my-plugin/sequence=counter/value"),
        ),
        (
            "plugin=my-plugin/sequence=global/value",
            body("plugin=my-plugin/sequence=global/value"),
        ),
        (
            "resource=users/plugin=my-plugin/sequence=orders/value",
            body("resource=users/plugin=my-plugin/sequence=orders/value"),
        ),
    ];
    for (key, want) in &expect {
        assert_eq!(&ps.get(key).await.unwrap().unwrap(), want, "{key}");
    }
    let mut lock = body("plugin=my-plugin/locks/job-1");
    lock.as_object_mut().unwrap().remove("_expiresAt");
    assert_eq!(
        ps.get("plugin=my-plugin/locks/job-1")
            .await
            .unwrap()
            .unwrap(),
        lock
    );

    assert_eq!(ps.get_sequence("counter", None).await.unwrap(), Some(4));
    assert_eq!(ps.get_sequence("global", None).await.unwrap(), Some(2));
    assert_eq!(
        ps.get_sequence("orders", Some("users")).await.unwrap(),
        Some(101)
    );
    assert!(ps.is_locked("job-1").await.unwrap());
    assert_eq!(
        ps.list(None).await.unwrap(),
        [
            "plugin=my-plugin/big",
            "plugin=my-plugin/bodyonly",
            "plugin=my-plugin/config",
            "plugin=my-plugin/enforced",
            "plugin=my-plugin/locks/job-1",
            "plugin=my-plugin/sequence=counter/value",
            "plugin=my-plugin/sequence=global/value",
        ]
    );
    assert_eq!(
        ps.list_for_resource("users", None).await.unwrap(),
        [
            "resource=users/plugin=my-plugin/cache/abc.json",
            "resource=users/plugin=my-plugin/sequence=orders/value",
        ]
    );

    // Continuing s3db.js's sequence and taking over its lock once expired.
    assert_eq!(
        ps.next_sequence("counter", &PluginSequenceOptions::default())
            .await
            .unwrap(),
        4
    );
    now.store(T0 + 30_001, Ordering::SeqCst);
    assert!(!ps.is_locked("job-1").await.unwrap());
    let taken = ps
        .acquire_lock("job-1", &PluginLockOptions::default())
        .await
        .unwrap()
        .expect("expired s3db.js lock taken over");
    assert_eq!(taken.expires_at, T0 + 30_001 + 30_000);

    // s3db.js's TTL object expires after 60 s: deleted on read.
    now.store(T0 + 60_001, Ordering::SeqCst);
    let key = "resource=users/plugin=my-plugin/cache/abc.json";
    assert_eq!(ps.get(key).await.unwrap(), None);
    assert!(matches!(mem.get(key).await, Err(StoreError::NotFound)));
}

/// The backend a connection string names (to wrap it in [`Racing`]).
fn backend_of(url: &str) -> (Arc<dyn ObjectStore>, String) {
    let parsed = ConnectionString::parse(url).unwrap();
    let backend: Arc<dyn ObjectStore> = match &parsed.endpoint {
        Endpoint::Memory { .. } => Arc::new(MemoryStore::isolated()),
        Endpoint::File { root } => Arc::new(FileStore::open(Path::new(root)).unwrap()),
        Endpoint::S3 { .. } => Arc::new(S3Store::new(&parsed).unwrap()),
    };
    (backend, parsed.prefix.clone())
}

/// A backend where, once armed, a concurrent writer rewrites the key right after a GET
/// returned (between a reader's GET and its DELETE).
#[derive(Debug)]
struct Racing {
    inner: Arc<dyn ObjectStore>,
    armed: AtomicBool,
    fresh: std::sync::Mutex<Option<PutRequest>>,
}

#[async_trait]
impl ObjectStore for Racing {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        let got = self.inner.get(key).await;
        if self.armed.swap(false, Ordering::SeqCst) {
            let req = self.fresh.lock().unwrap().take().unwrap();
            self.inner.put(key, req).await.unwrap();
        }
        got
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        self.inner.put(key, req).await
    }
    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        self.inner
            .copy(src, dst, metadata, content_type, condition)
            .await
    }
    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        self.inner.delete(key, if_match).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.inner.delete_many(keys).await
    }
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        self.inner.list(prefix, continuation, max_keys).await
    }
}

async fn racing_db(url: &str) -> (Arc<Racing>, Database) {
    let (inner, prefix) = backend_of(url);
    let racing = Arc::new(Racing {
        inner,
        armed: AtomicBool::new(false),
        fresh: Default::default(),
    });
    let db = Database::with_store(Store::new(racing.clone(), &prefix))
        .await
        .unwrap();
    (racing, db)
}

/// An expired document reads as absent and is deleted exactly once; when another writer
/// rewrites it between the expired read and the delete, the fresh document survives.
#[tokio::test]
async fn ttl_expiry_deletes_once_and_never_a_fresh_write() {
    for url in backends() {
        let (racing, db) = racing_db(&url).await;
        let (now, clock) = manual_clock(T0);
        let ps = db.plugin_storage("ttl").unwrap().with_clock(clock);
        let key = ps.key(None, &["session"]).unwrap();
        let ttl = SetOptions {
            ttl: Some(Duration::from_secs(60)),
            behavior: PluginBehavior::BodyOverflow,
            ..Default::default()
        };
        ps.set(&key, &json!({"user": "ana"}), &ttl).await.unwrap();
        let stored = db.store().get(&key).await.unwrap();
        assert_eq!(
            stored.head.metadata.get("_expiresat"),
            Some(&(T0 + 60_000).to_string()),
            "{url}: {:?}",
            stored.head.metadata
        );
        assert_eq!(stored.head.metadata["user"], "ana");

        // Still valid at the exact expiry instant; `_expiresAt` is not returned.
        now.store(T0 + 60_000, Ordering::SeqCst);
        assert_eq!(
            ps.get(&key).await.unwrap(),
            Some(json!({"user": "ana"})),
            "{url}"
        );

        // On S3 the document's body is empty, so its etag (the MD5 of nothing) is every
        // version's etag: `If-Match` cannot single this version out, and it is left in place
        // for the next write instead of risking a fresh version written meanwhile.
        let s3 = url.starts_with("http");
        now.store(T0 + 60_001, Ordering::SeqCst);
        db.reset_stats();
        assert_eq!(ps.get(&key).await.unwrap(), None, "{url}");
        let s = db.stats();
        let deletes = if s3 { 0 } else { 1 };
        assert_eq!(
            (s.get, s.delete, s.total()),
            (1, deletes, 1 + deletes),
            "{url}"
        );
        assert_eq!(
            matches!(db.store().head(&key).await, Err(StoreError::NotFound)),
            !s3,
            "{url}"
        );
        db.reset_stats();
        assert_eq!(ps.get(&key).await.unwrap(), None);
        assert_eq!(
            db.stats(),
            Stats {
                get: 1,
                ..no_requests()
            },
            "{url}"
        );
        assert!(!ps.has(&key).await.unwrap());

        // Racing writer: expired object read, then rewritten before the reader's DELETE.
        now.store(T0, Ordering::SeqCst);
        ps.set(&key, &json!({"user": "old"}), &ttl).await.unwrap();
        now.store(T0 + 120_000, Ordering::SeqCst);
        let mut fresh_meta = Metadata::new();
        fresh_meta.insert("user".into(), "fresh".into());
        *racing.fresh.lock().unwrap() = Some(PutRequest {
            metadata: fresh_meta,
            content_type: Some("application/json".into()),
            ..Default::default()
        });
        racing.armed.store(true, Ordering::SeqCst);
        db.reset_stats();
        assert_eq!(
            ps.get(&key).await.unwrap(),
            None,
            "{url}: the read saw an expired object"
        );
        assert_eq!(
            db.stats().delete,
            deletes,
            "{url}: one conditional DELETE where the etag names the version"
        );
        assert_eq!(
            ps.get(&key).await.unwrap(),
            Some(json!({"user": "fresh"})),
            "{url}: the fresh write survived"
        );
    }
}

async fn stored(db: &Database, key: &str) -> (Metadata, Vec<u8>, Option<String>) {
    let o = db.store().get(key).await.unwrap();
    (o.head.metadata, o.body.to_vec(), o.head.content_type)
}

/// body-overflow at the exact 2044-byte boundary (key + encoded value bytes, running sum),
/// and enforce-limits' typed error naming the sizes, with nothing written.
#[tokio::test]
async fn metadata_limit_boundaries() {
    for url in backends() {
        let db = common::connect(&url).await;
        let ps = db.plugin_storage("limits").unwrap();
        let key = ps.key(None, &["doc"]).unwrap();

        // One field: 1 key byte + 2043 value bytes = 2044 stays in metadata.
        let fits = "x".repeat(2043);
        ps.set(&key, &json!({"k": fits}), &SetOptions::default())
            .await
            .unwrap();
        let (meta, body, ct) = stored(&db, &key).await;
        assert_eq!(meta.get("k"), Some(&fits), "{url}");
        assert!(body.is_empty());
        assert_eq!(ct.as_deref(), Some("application/json"));
        // One byte more spills to the body.
        let over = "x".repeat(2044);
        ps.set(&key, &json!({"k": over}), &SetOptions::default())
            .await
            .unwrap();
        let (meta, body, _) = stored(&db, &key).await;
        assert!(meta.is_empty(), "{url}");
        assert_eq!(body, format!("{{\"k\":\"{over}\"}}").into_bytes());
        assert_eq!(ps.get(&key).await.unwrap(), Some(json!({"k": over})));

        // Two fields: the running sum decides, smallest first; encoded bytes count
        // (`héllo` is stored as `u:h%C3%A9llo`: 1 + 12 = 13 bytes).
        let a = "héllo".to_string();
        let b = "y".repeat(2044 - 13 - 1);
        ps.set(&key, &json!({"b": b, "a": a}), &SetOptions::default())
            .await
            .unwrap();
        let (meta, body, _) = stored(&db, &key).await;
        assert_eq!(meta.get("a").map(String::as_str), Some("u:h%C3%A9llo"));
        assert_eq!(meta.get("b"), Some(&b), "{url}: 13 + 2031 = 2044 fits");
        assert!(body.is_empty());
        let b2 = format!("{b}y");
        ps.set(&key, &json!({"b": b2, "a": a}), &SetOptions::default())
            .await
            .unwrap();
        let (meta, body, _) = stored(&db, &key).await;
        assert_eq!(
            meta.keys().collect::<Vec<_>>(),
            ["a"],
            "{url}: 13 + 2032 spills b"
        );
        assert_eq!(body, format!("{{\"b\":\"{b2}\"}}").into_bytes());
        assert_eq!(ps.get(&key).await.unwrap(), Some(json!({"a": a, "b": b2})));

        // enforce-limits: 2044 is accepted, 2045 is a VALIDATION error naming the sizes.
        let enforce = SetOptions {
            behavior: PluginBehavior::EnforceLimits,
            ..Default::default()
        };
        let key2 = ps.key(None, &["enforced"]).unwrap();
        ps.set(&key2, &json!({"k": fits}), &enforce).await.unwrap();
        db.reset_stats();
        let err = ps
            .set(&key2, &json!({"k": over, "z": 1}), &enforce)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Validation, "{url}");
        assert!(
            err.message().contains("2045 bytes > 2044"),
            "{}",
            err.message()
        );
        assert!(err.message().contains("1 over"), "{}", err.message());
        let d = err.details().unwrap();
        assert_eq!(d["totalSize"], 2045);
        assert_eq!(d["effectiveLimit"], 2044);
        assert_eq!(d["absoluteLimit"], 2047);
        assert_eq!(d["excess"], 1);
        assert_eq!(db.stats(), no_requests(), "{url}: nothing sent");
        assert_eq!(ps.get(&key2).await.unwrap(), Some(json!({"k": fits})));

        // body-only: no metadata at all.
        let only = SetOptions {
            behavior: PluginBehavior::BodyOnly,
            content_type: Some("application/x-custom".into()),
            ..Default::default()
        };
        ps.set(&key2, &json!({"n": 1.0, "2": [true, null]}), &only)
            .await
            .unwrap();
        let (meta, body, ct) = stored(&db, &key2).await;
        assert!(meta.is_empty());
        assert_eq!(body, br#"{"2":[true,null],"n":1}"#);
        assert_eq!(ct.as_deref(), Some("application/x-custom"));
    }
}

/// If-None-Match on an existing key and If-Match with a stale etag are typed
/// PRECONDITION_FAILED errors, and nothing is overwritten.
#[tokio::test]
async fn conditional_writes() {
    for url in backends() {
        let db = common::connect(&url).await;
        let ps = db.plugin_storage("cond").unwrap();
        let key = ps.key(Some("orders"), &["state"]).unwrap();
        let create = SetOptions {
            condition: WriteCondition::IfNoneMatch,
            ..Default::default()
        };
        let e1 = ps.set(&key, &json!({"v": 1}), &create).await.unwrap();
        // The fields are in the body as well as in metadata: the etag changes per version
        // on S3, where etags hash only the body.
        let (meta, body, _) = stored(&db, &key).await;
        assert_eq!(body, br#"{"v":1}"#, "{url}");
        assert_eq!(meta.get("v").map(String::as_str), Some("1"), "{url}");
        let err = ps.set(&key, &json!({"v": 2}), &create).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{url}");
        let (data, etag) = ps.get_with_etag(&key).await.unwrap().unwrap();
        assert_eq!(data, json!({"v": 1}));
        assert_eq!(etag.trim_matches('"'), e1.trim_matches('"'));

        let cas = |etag: &str| SetOptions {
            condition: WriteCondition::IfMatch(etag.to_string()),
            ..Default::default()
        };
        let e2 = ps.set(&key, &json!({"v": 3}), &cas(&e1)).await.unwrap();
        assert_ne!(e1, e2);
        let err = ps.set(&key, &json!({"v": 4}), &cas(&e1)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{url}");
        assert_eq!(ps.get(&key).await.unwrap(), Some(json!({"v": 3})));
        ps.set(&key, &json!({"v": 5}), &cas(&e2)).await.unwrap();
        assert_eq!(ps.get(&key).await.unwrap(), Some(json!({"v": 5})));
    }
}

/// Slugs and keys that would be resolved or collapsed by s3db.js are refused.
#[tokio::test]
async fn bad_slugs_and_keys_are_rejected() {
    let (_, store) = mem_store();
    let db = Database::with_store(store).await.unwrap();
    for slug in ["", "a/b", "..", "a..b"] {
        let err = db.plugin_storage(slug).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{slug:?}");
    }
    let ps = db.plugin_storage("p").unwrap();
    for parts in [
        &["a", ".."][..],
        &["..", "x"],
        &["a", ""],
        &["a//b"],
        &["."],
        &[],
    ] {
        let err = ps.key(None, parts).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{parts:?}");
    }
    assert_eq!(
        ps.key(Some("a/b"), &["x"]).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    db.reset_stats();
    for key in ["plugin=p/../s3db.json", "plugin=p//x", "", "plugin=p/x/"] {
        let err = ps
            .set(key, &json!({"a": 1}), &SetOptions::default())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{key:?}");
        assert_eq!(
            ps.get(key).await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            ps.delete(key).await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    let err = ps
        .set("plugin=p/x", &json!([1]), &SetOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(db.stats(), no_requests());
}

/// Request counts: set = 1 PUT, get = 1 GET, delete = HEAD + DELETE (missing: 1 HEAD),
/// next_sequence = 1 GET + 1 PUT; plus list / list_for_resource / delete_all and the
/// sequence API.
#[tokio::test]
async fn request_counts_and_sequences() {
    for url in backends() {
        let db = common::connect(&url).await;
        let ps = db.plugin_storage("counts").unwrap();
        let key = ps.key(None, &["cfg"]).unwrap();
        let count = |s: Stats| (s.get, s.head, s.put, s.delete, s.list, s.total());

        db.reset_stats();
        ps.set(&key, &json!({"a": 1}), &SetOptions::default())
            .await
            .unwrap();
        assert_eq!(count(db.stats()), (0, 0, 1, 0, 0, 1), "{url}: set");
        db.reset_stats();
        assert_eq!(ps.get(&key).await.unwrap(), Some(json!({"a": 1})));
        assert_eq!(count(db.stats()), (1, 0, 0, 0, 0, 1), "{url}: get");

        let seq = PluginSequenceOptions::default();
        db.reset_stats();
        assert_eq!(ps.next_sequence("n", &seq).await.unwrap(), 1);
        assert_eq!(count(db.stats()), (1, 0, 1, 0, 0, 2), "{url}: first next");
        for want in [2, 3] {
            db.reset_stats();
            assert_eq!(ps.next_sequence("n", &seq).await.unwrap(), want);
            assert_eq!(count(db.stats()), (1, 0, 1, 0, 0, 2), "{url}: next");
        }
        assert_eq!(ps.get_sequence("n", None).await.unwrap(), Some(4));
        let body = db
            .store()
            .get("plugin=counts/sequence=n/value")
            .await
            .unwrap()
            .body;
        let body: Map<String, Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body.keys().collect::<Vec<_>>(),
            ["value", "name", "resourceName", "createdAt", "updatedAt"]
        );
        assert_eq!(body["resourceName"], Value::Null);
        ps.reset_sequence("n", 10, None).await.unwrap();
        assert_eq!(ps.next_sequence("n", &seq).await.unwrap(), 10);
        let by10 = PluginSequenceOptions {
            resource: Some("users".into()),
            initial_value: 0,
            increment: 10,
        };
        assert_eq!(ps.next_sequence("n", &by10).await.unwrap(), 0);
        assert_eq!(ps.next_sequence("n", &by10).await.unwrap(), 10);
        assert_eq!(ps.get_sequence("n", Some("users")).await.unwrap(), Some(20));
        ps.delete_sequence("n", None).await.unwrap();
        assert_eq!(ps.get_sequence("n", None).await.unwrap(), None);

        ps.set(
            &ps.key(Some("users"), &["cache", "x"]).unwrap(),
            &json!({"a": 1}),
            &SetOptions::default(),
        )
        .await
        .unwrap();
        ps.set(
            &ps.key(None, &["cache", "y"]).unwrap(),
            &json!({"a": 1}),
            &SetOptions::default(),
        )
        .await
        .unwrap();
        // Another plugin's data is never touched.
        let other = db.plugin_storage("counts-other").unwrap();
        other
            .set(
                &other.key(None, &["z"]).unwrap(),
                &json!({"a": 1}),
                &SetOptions::default(),
            )
            .await
            .unwrap();
        db.reset_stats();
        assert_eq!(
            ps.list(None).await.unwrap(),
            ["plugin=counts/cache/y", "plugin=counts/cfg"]
        );
        assert_eq!(
            ps.list(Some("cache/")).await.unwrap(),
            ["plugin=counts/cache/y"]
        );
        assert_eq!(db.stats().list, 2, "{url}");
        assert_eq!(
            ps.list_for_resource("users", None).await.unwrap(),
            [
                "resource=users/plugin=counts/cache/x",
                "resource=users/plugin=counts/sequence=n/value"
            ]
        );

        db.reset_stats();
        assert!(ps.delete(&key).await.unwrap());
        assert_eq!(count(db.stats()), (0, 1, 0, 1, 0, 2), "{url}: delete");
        db.reset_stats();
        assert!(!ps.delete(&key).await.unwrap());
        assert_eq!(
            count(db.stats()),
            (0, 1, 0, 0, 0, 1),
            "{url}: delete missing"
        );

        assert_eq!(ps.delete_all(Some("users")).await.unwrap(), 2);
        assert!(ps
            .list_for_resource("users", None)
            .await
            .unwrap()
            .is_empty());
        ps.set(
            &ps.key(Some("orders"), &["a"]).unwrap(),
            &json!({"a": 1}),
            &SetOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(ps.delete_all(None).await.unwrap(), 2, "{url}");
        assert!(ps.list(None).await.unwrap().is_empty());
        assert!(ps
            .list_for_resource("orders", None)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(other.list(None).await.unwrap(), ["plugin=counts-other/z"]);
    }
}

/// Plugin locks: create by If-None-Match, a held lock is refused, an expired one is taken
/// over by If-Match (3 requests), release checks the token and is conditional.
#[tokio::test]
async fn plugin_locks() {
    for url in backends() {
        let db = common::connect(&url).await;
        let (now, clock) = manual_clock(T0);
        let ps = db.plugin_storage("locks").unwrap().with_clock(clock);
        let a_opts = PluginLockOptions {
            ttl: Duration::from_secs(30),
            worker_id: "worker-A".into(),
            ..Default::default()
        };
        db.reset_stats();
        let a = ps.acquire_lock("job", &a_opts).await.unwrap().unwrap();
        assert_eq!(
            db.stats(),
            Stats {
                put: 1,
                ..no_requests()
            },
            "{url}"
        );
        assert_eq!(a.key, "plugin=locks/locks/job");
        let body = db.store().get(&a.key).await.unwrap().body;
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!(
                r#"{{"workerId":"worker-A","token":"{}","acquiredAt":{T0},"_expiresAt":{}}}"#,
                a.token,
                T0 + 30_000
            )
        );
        assert!(ps.is_locked("job").await.unwrap());

        let b_opts = PluginLockOptions {
            worker_id: "worker-B".into(),
            ..Default::default()
        };
        db.reset_stats();
        assert_eq!(
            ps.acquire_lock("job", &b_opts).await.unwrap(),
            None,
            "{url}"
        );
        assert_eq!(
            db.stats(),
            Stats {
                put: 1,
                get: 1,
                ..no_requests()
            }
        );

        now.store(T0 + 30_001, Ordering::SeqCst);
        assert!(!ps.is_locked("job").await.unwrap());
        db.reset_stats();
        let b = ps.acquire_lock("job", &b_opts).await.unwrap().unwrap();
        assert_eq!(
            db.stats(),
            Stats {
                put: 2,
                get: 1,
                ..no_requests()
            },
            "{url}: takeover"
        );
        assert_ne!(a.token, b.token);
        // A's release must not remove B's lock.
        assert!(!ps.release_lock(&a).await.unwrap());
        assert!(ps.is_locked("job").await.unwrap());
        db.reset_stats();
        assert!(ps.release_lock(&b).await.unwrap());
        assert_eq!(
            db.stats(),
            Stats {
                get: 1,
                delete: 1,
                ..no_requests()
            }
        );
        assert!(!ps.is_locked("job").await.unwrap());
        assert!(!ps.release_lock(&b).await.unwrap());
    }
}
