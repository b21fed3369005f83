mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use s3db::catalog;
use s3db::storage::{
    ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest, Store,
    StoreError, StoreResult, WriteCondition,
};
use s3db::{Database, ErrorKind};
use serde_json::{json, Value};

/// A memory store whose GETs can be made to fail transiently.
#[derive(Debug)]
struct Flaky {
    inner: MemoryStore,
    fail_gets: AtomicBool,
}

#[async_trait]
impl ObjectStore for Flaky {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        if self.fail_gets.load(Ordering::SeqCst) {
            return Err(StoreError::Transient("injected".into()));
        }
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
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
async fn a_failed_catalog_read_never_rewrites_it() {
    let flaky = Arc::new(Flaky {
        inner: MemoryStore::isolated(),
        fail_gets: AtomicBool::new(false),
    });
    let store = Store::new(flaky.clone(), "");
    let db = Database::with_store(store.clone()).await.unwrap();
    db.create_resource("keep", &json!({"a": "string"}))
        .await
        .unwrap();
    let before = flaky.inner.get("s3db.json").await.unwrap();

    flaky.fail_gets.store(true, Ordering::SeqCst);
    let e = Database::with_store(store.clone()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(e.message().contains("left untouched"), "{}", e.message());
    let stats = store.stats();
    assert_eq!(
        stats.get,
        1 + 4,
        "the transient failure is retried (4 attempts), nothing else"
    );
    flaky.fail_gets.store(false, Ordering::SeqCst);

    let after = flaky.inner.get("s3db.json").await.unwrap();
    assert_eq!(before.body, after.body);
    assert_eq!(before.head.etag, after.head.etag);
}

#[tokio::test]
async fn a_garbled_catalog_is_healed_and_backed_up() {
    let mem = MemoryStore::isolated();
    let garbage = Bytes::from_static(b"{\"version\": \"1\", \"resources\": {,}");
    let etag = mem
        .put(
            "s3db.json",
            PutRequest {
                body: garbage.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let db = Database::with_store(Store::new(Arc::new(mem.clone()), ""))
        .await
        .unwrap();
    let log = db.healing_log();
    assert!(log.iter().any(|l| l.contains("stray comma")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("ends early")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("s3dbVersion")), "{log:?}");

    let healed: Value = serde_json::from_slice(&mem.get("s3db.json").await.unwrap().body).unwrap();
    assert_eq!(healed["version"], "1");
    assert_eq!(healed["s3dbVersion"], catalog::S3DB_JS_VERSION);
    assert!(healed["lastUpdated"].is_string());
    assert_eq!(healed["resources"], json!({}));
    let backups: Vec<String> = mem
        .list("s3db.json.corrupted.", None, 1000)
        .await
        .unwrap()
        .keys;
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert!(backups[0].ends_with(".backup") && !backups[0].contains(':'));
    assert_eq!(mem.get(&backups[0]).await.unwrap().body, garbage);
    assert_ne!(mem.get("s3db.json").await.unwrap().head.etag, etag);

    // Connecting again finds an intact catalog: nothing more to heal.
    let again = Database::with_store(Store::new(Arc::new(mem.clone()), ""))
        .await
        .unwrap();
    assert!(again.healing_log().is_empty());
}

#[tokio::test]
async fn an_unhealable_catalog_is_an_error_and_left_as_is() {
    for garbage in [
        &b"{\"version\": \"1\", \"resources\": {} ]]] garbage"[..],
        b"not json at all",
        b"[\"an\", \"array\"]",
    ] {
        let mem = MemoryStore::isolated();
        let garbage = Bytes::copy_from_slice(garbage);
        mem.put(
            "s3db.json",
            PutRequest {
                body: garbage.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let store = Store::new(Arc::new(mem.clone()), "");
        let e = Database::with_store(store.clone()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert_eq!(mem.get("s3db.json").await.unwrap().body, garbage);
        assert_eq!(store.stats().put, 0, "nothing written");
        assert_eq!(mem.list("", None, 1000).await.unwrap().keys, ["s3db.json"]);
    }
}

#[tokio::test]
async fn concurrent_catalog_writers_merge_instead_of_clobbering() {
    let url = format!("memory://{}", common::random_name("cat-"));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let url = url.clone();
        tasks.spawn(async move {
            let db = Database::connect(&url).await.unwrap();
            db.create_resource(&format!("r{i}"), &json!({"a": "string"}))
                .await
                .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let db = Database::connect(&url).await.unwrap();
    let mut names = db.list_resources().await;
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("r{i}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn catalog_layout_matches_s3db_js() {
    let mem = MemoryStore::isolated();
    let db = Database::with_store(Store::new(Arc::new(mem.clone()), "app/prod"))
        .await
        .unwrap();
    db.create_resource("things", &json!({"name": "string"}))
        .await
        .unwrap();
    let res = db.resource("things").await.unwrap();
    res.insert(json!({"id": "k1", "name": "one"}))
        .await
        .unwrap();

    let obj = mem
        .get("app/prod/resource=things/data/id=k1")
        .await
        .unwrap();
    let want: Metadata = [("0", "one"), ("_v", "v1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(obj.head.metadata, want);
    assert!(obj.body.is_empty());

    // Same structure and hash as the catalog s3db.js wrote in vector fs-keyprefix.
    let ours: Value =
        serde_json::from_slice(&mem.get("app/prod/s3db.json").await.unwrap().body).unwrap();
    let theirs: Value = serde_json::from_str(&vector("fs-keyprefix.s3db.json")).unwrap();
    let strip = |mut v: Value| {
        v["lastUpdated"] = json!(null);
        v["resources"]["things"]["versions"]["v1"]["createdAt"] = json!(null);
        v
    };
    assert_eq!(strip(ours), strip(theirs));
}

fn vector(name: &str) -> String {
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    std::fs::read_to_string(format!("{dir}/{name}")).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"))
}

/// Every catalog s3db.js wrote: each version's hash is reproduced from its definition.
#[test]
fn definition_hashes_match_every_vector() {
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".s3db.json") {
            continue;
        }
        let cat: Value = serde_json::from_str(&vector(&name)).unwrap();
        for (_, res) in cat["resources"].as_object().unwrap() {
            for (_, ver) in res["versions"].as_object().unwrap() {
                let mut attrs = ver["attributes"].clone();
                if ver["timestamps"] == json!(true) {
                    let m = attrs.as_object_mut().unwrap();
                    m.remove("createdAt");
                    m.remove("updatedAt");
                }
                let behavior = ver["behavior"].as_str().unwrap_or("user-managed");
                let partitions = if ver["partitions"].is_null() {
                    json!({})
                } else {
                    ver["partitions"].clone()
                };
                assert_eq!(
                    catalog::definition_hash(&attrs, behavior, &partitions),
                    ver["hash"].as_str().unwrap(),
                    "{name}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 40, "only {checked} versions checked");
}
