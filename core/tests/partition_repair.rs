//! Partition references after damage: what a crash can leave (a record that registered
//! stale keys, references that never landed) is repaired by the record's next write; damage
//! no writer knows of (references removed or added by hand, references of records that do
//! not exist) by `repair`, which reports what it fixed. A failed reference request after the
//! record was written does not fail the write.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{backends, connect, keeps_underscored_metadata};
use s3db::storage::{
    ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest, Store,
    StoreError, StoreResult, WriteCondition,
};
use s3db::{Database, ErrorKind, PartitionRepair, Resource, ResourceConfig};
use serde_json::{json, Value};

const BASE: &str = "resource=orders/partition=";

fn orders_config() -> ResourceConfig {
    ResourceConfig::from_json(&json!({
        "attributes": {
            "status": "string", "region": "string", "kind": "string", "touch": "number|optional"
        },
        "partitions": {
            "byStatus": {"fields": {"status": "string"}},
            "byRegionStatus": {"fields": {"status": "string", "region": "string"}},
            "byKind": {"fields": {"kind": "string"}}
        }
    }))
    .unwrap()
}

fn wanted(r: &Value) -> BTreeSet<String> {
    let id = r["id"].as_str().unwrap();
    let (s, g, k) = (
        r["status"].as_str().unwrap(),
        r["region"].as_str().unwrap(),
        r["kind"].as_str().unwrap(),
    );
    [
        format!("{BASE}byStatus/status={s}/id={id}"),
        format!("{BASE}byRegionStatus/region={g}/status={s}/id={id}"),
        format!("{BASE}byKind/kind={k}/id={id}"),
    ]
    .into_iter()
    .collect()
}

async fn all_refs(db: &Database) -> BTreeSet<String> {
    db.store()
        .list_all(BASE)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn all_wanted(res: &Resource) -> BTreeSet<String> {
    res.list().await.unwrap().iter().flat_map(wanted).collect()
}

async fn put_ref(db: &Database, key: &str) {
    let mut metadata = Metadata::new();
    metadata.insert("_v".into(), "v1".into());
    let req = PutRequest {
        metadata,
        ..Default::default()
    };
    db.store().put(key, req).await.unwrap();
}

/// Rewrites a record's `_refs` marker (`None`: removes it), as a crash would leave it.
async fn set_marker(db: &Database, id: &str, marker: Option<&str>) {
    let key = format!("resource=orders/data/id={id}");
    let obj = db.store().get(&key).await.unwrap();
    let mut metadata = obj.head.metadata.clone();
    match marker {
        Some(m) => metadata.insert("_refs".into(), m.into()),
        None => metadata.remove("_refs"),
    };
    let req = PutRequest {
        body: obj.body.clone(),
        metadata,
        content_type: obj.head.content_type.clone(),
        condition: WriteCondition::None,
    };
    db.store().put(&key, req).await.unwrap();
}

async fn marker(db: &Database, id: &str) -> Option<String> {
    let obj = db
        .store()
        .get(&format!("resource=orders/data/id={id}"))
        .await
        .unwrap();
    obj.head.metadata.get("_refs").cloned()
}

/// The state a kill right after the compare-and-swap of `id`'s move from `from` to its
/// current status leaves: old keys still there (and registered), new keys never written.
async fn crash_after_swap(db: &Database, res: &Resource, id: &str, from: &str) {
    let r = res.get(id).await.unwrap();
    let (to, region) = (r["status"].as_str().unwrap(), r["region"].as_str().unwrap());
    let old = [
        format!("byStatus/status={from}"),
        format!("byRegionStatus/region={region}/status={from}"),
    ];
    for k in &old {
        put_ref(db, &format!("{BASE}{k}/id={id}")).await;
    }
    for k in [
        format!("{BASE}byStatus/status={to}/id={id}"),
        format!("{BASE}byRegionStatus/region={region}/status={to}/id={id}"),
    ] {
        db.store().delete(&k, None).await.unwrap();
    }
    set_marker(db, id, Some(&serde_json::to_string(&old).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn repair_fixes_a_store_damaged_by_hand() {
    for url in backends() {
        let db = connect(&url).await;
        let orders = db
            .create_resource_with("orders", orders_config())
            .await
            .unwrap();
        // A store that drops `_`-prefixed metadata (moto) keeps no marker.
        let keeps = keeps_underscored_metadata(&db).await;
        for (id, status) in [("a", "new"), ("b", "new"), ("c", "new"), ("d", "paid")] {
            orders
                .insert(json!({"id": id, "status": status, "region": "eu", "kind": "k1"}))
                .await
                .unwrap();
        }
        for id in ["a", "b", "c"] {
            orders.update(id, json!({"status": "paid"})).await.unwrap();
            if keeps {
                assert_eq!(marker(&db, id).await.as_deref(), Some("[]"), "{url} {id}");
            }
        }
        assert_eq!(marker(&db, "d").await, None, "inserted: no marker");
        assert_eq!(all_refs(&db).await, all_wanted(&orders).await, "{url}");

        // a (clean): a reference of an unchanged field removed by hand.
        db.store()
            .delete(&format!("{BASE}byKind/kind=k1/id=a"), None)
            .await
            .unwrap();
        // b (clean): a stale reference added by hand.
        put_ref(&db, &format!("{BASE}byStatus/status=done/id=b")).await;
        // References of a record that does not exist.
        put_ref(&db, &format!("{BASE}byStatus/status=new/id=ghost")).await;
        put_ref(&db, &format!("{BASE}byKind/kind=k1/id=ghost")).await;
        // c: killed right after the compare-and-swap of its move new → paid.
        crash_after_swap(&db, &orders, "c", "new").await;
        // d: inserted, one reference never landed.
        db.store()
            .delete(&format!("{BASE}byStatus/status=paid/id=d"), None)
            .await
            .unwrap();

        let report = orders.repair().await.unwrap();
        eprintln!("{url}: {report:?}");
        let p = |created, deleted| PartitionRepair { created, deleted };
        assert_eq!(report.records, 4, "{url}");
        assert_eq!(report.partitions["byKind"], p(1, 1), "{url}: a, ghost");
        assert_eq!(
            report.partitions["byStatus"],
            p(2, 3),
            "{url}: c and d written; b's, ghost's and c's old deleted"
        );
        assert_eq!(report.partitions["byRegionStatus"], p(1, 1), "{url}: c");
        assert_eq!(report.markers_cleared, u64::from(keeps), "{url}: c");
        assert_eq!((report.created(), report.deleted()), (4, 5));
        if keeps {
            assert_eq!(marker(&db, "c").await.as_deref(), Some("[]"), "{url}");
        }
        assert_eq!(all_refs(&db).await, all_wanted(&orders).await, "{url}");
        // Nothing left behind.
        let again = orders.repair().await.unwrap();
        assert!(again.is_clean(), "{url}: {again:?}");
        assert_eq!(orders.reindex(None).await.unwrap(), (0, 0));
        // Every listing agrees with the records.
        for s in ["new", "paid", "done"] {
            let v = json!({"status": s}).as_object().unwrap().clone();
            let listed = orders.list_in(Some(("byStatus", &v))).await.unwrap();
            assert!(listed.iter().all(|r| r["status"] == json!(s)), "{url} {s}");
            let n = orders
                .list()
                .await
                .unwrap()
                .iter()
                .filter(|r| r["status"] == json!(s))
                .count();
            assert_eq!(listed.len(), n, "{url} {s}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_write_repairs_what_a_crash_left() {
    for url in backends() {
        let db = connect(&url).await;
        if !keeps_underscored_metadata(&db).await {
            // The marker cannot be kept there: what a crash leaves is for repair().
            eprintln!("{url}: drops `_` metadata, skipped");
            continue;
        }
        let orders = db
            .create_resource_with("orders", orders_config())
            .await
            .unwrap();
        for id in ["c", "d", "e", "f"] {
            orders
                .insert(json!({"id": id, "status": "new", "region": "eu", "kind": "k1"}))
                .await
                .unwrap();
        }
        // c: killed after its compare-and-swap; the next write does not even move it.
        orders.update("c", json!({"status": "paid"})).await.unwrap();
        crash_after_swap(&db, &orders, "c", "new").await;
        orders.update("c", json!({"touch": 1})).await.unwrap();
        // d: killed while inserting (record in, references not); the next write moves it.
        for k in wanted(&orders.get("d").await.unwrap()) {
            db.store().delete(&k, None).await.unwrap();
        }
        orders.update("d", json!({"region": "us"})).await.unwrap();
        // e: killed after moving its references, before clearing its marker.
        orders.update("e", json!({"status": "paid"})).await.unwrap();
        set_marker(
            &db,
            "e",
            Some(r#"["byStatus/status=new","byRegionStatus/region=eu/status=new"]"#),
        )
        .await;
        orders.update("e", json!({"status": "new"})).await.unwrap();
        // f: killed after its compare-and-swap, then deleted: its registered keys go too.
        orders.update("f", json!({"status": "paid"})).await.unwrap();
        crash_after_swap(&db, &orders, "f", "new").await;
        orders.delete("f").await.unwrap();

        assert_eq!(all_refs(&db).await, all_wanted(&orders).await, "{url}");
        for id in ["c", "d", "e"] {
            assert_eq!(marker(&db, id).await.as_deref(), Some("[]"), "{url} {id}");
        }
        assert!(orders.repair().await.unwrap().is_clean(), "{url}");
    }
}

#[tokio::test]
async fn insert_conflict_leaves_no_foreign_references() {
    for url in backends() {
        let db = connect(&url).await;
        let orders = db
            .create_resource_with("orders", orders_config())
            .await
            .unwrap();
        orders
            .insert(json!({"id": "x", "status": "new", "region": "eu", "kind": "k1"}))
            .await
            .unwrap();
        let e = orders
            .insert(json!({"id": "x", "status": "paid", "region": "us", "kind": "k1"}))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(all_refs(&db).await, all_wanted(&orders).await, "{url}");
        assert_eq!(orders.get("x").await.unwrap()["status"], "new");
        // upsert of an existing record: references after the record, none to take back.
        let unknown = u64::from(!keeps_underscored_metadata(&db).await);
        let s = db.stats();
        orders
            .upsert(json!({"id": "x", "status": "done", "region": "eu", "kind": "k1"}))
            .await
            .unwrap();
        let d = db.stats();
        assert_eq!(
            (d.put - s.put, d.delete - s.delete),
            (1 + 1 + 2 + unknown + 1, 1),
            "{url}: failed create; record, 2 new references, marker clear (the conflicting insert above left x clean)"
        );
        assert_eq!(all_refs(&db).await, all_wanted(&orders).await, "{url}");
    }
}

/// A memory store that can fail reference requests or the marker clear, and that records
/// how many PUTs were in flight at once.
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    fail_ref_puts: AtomicBool,
    fail_ref_deletes: AtomicBool,
    fail_clear: AtomicBool,
    put_delay_ms: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Faulty {
    fn new() -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: MemoryStore::isolated(),
            fail_ref_puts: AtomicBool::new(false),
            fail_ref_deletes: AtomicBool::new(false),
            fail_clear: AtomicBool::new(false),
            put_delay_ms: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }
}

fn is_ref(key: &str) -> bool {
    key.contains("/partition=")
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        if is_ref(key) && self.fail_ref_puts.load(Ordering::SeqCst) {
            return Err(StoreError::Conflict);
        }
        if key.contains("/data/")
            && req.metadata.get("_refs").map(String::as_str) == Some("[]")
            && self.fail_clear.load(Ordering::SeqCst)
        {
            return Err(StoreError::Fatal("injected".into()));
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let delay = self.put_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay as u64)).await;
        }
        let r = self.inner.put(key, req).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        r
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
        if is_ref(key) && self.fail_ref_deletes.load(Ordering::SeqCst) {
            return Err(StoreError::Fatal("injected".into()));
        }
        self.inner.delete(key, if_match).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        if keys.iter().any(|k| is_ref(k)) && self.fail_ref_deletes.load(Ordering::SeqCst) {
            return Err(StoreError::Fatal("injected".into()));
        }
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

#[tokio::test]
async fn failed_reference_requests_do_not_fail_a_write_that_took_effect() {
    let faulty = Faulty::new();
    let db = Database::with_store(Store::new(faulty.clone(), ""))
        .await
        .unwrap();
    let orders = db
        .create_resource_with("orders", orders_config())
        .await
        .unwrap();
    let set = |flag: &AtomicBool, on: bool| flag.store(on, Ordering::SeqCst);

    // Insert: the record is in, its references are not; the insert succeeds.
    set(&faulty.fail_ref_puts, true);
    orders
        .insert(json!({"id": "a", "status": "new", "region": "eu", "kind": "k1"}))
        .await
        .unwrap();
    assert!(all_refs(&db).await.is_empty());
    // An update whose reference PUTs fail (ConflictError on a reference, as seen on S3):
    // the record changed, so the update reports success and leaves the keys registered.
    orders.update("a", json!({"status": "paid"})).await.unwrap();
    assert_eq!(orders.get("a").await.unwrap()["status"], "paid");
    assert_ne!(marker(&db, "a").await.as_deref(), Some("[]"));
    set(&faulty.fail_ref_puts, false);
    orders.update("a", json!({"touch": 1})).await.unwrap();
    assert_eq!(all_refs(&db).await, all_wanted(&orders).await);
    assert_eq!(marker(&db, "a").await.as_deref(), Some("[]"));

    // Deletes of stale references fail: same.
    set(&faulty.fail_ref_deletes, true);
    orders.update("a", json!({"status": "done"})).await.unwrap();
    assert_eq!(orders.get("a").await.unwrap()["status"], "done");
    set(&faulty.fail_ref_deletes, false);
    orders.update("a", json!({"touch": 2})).await.unwrap();
    assert_eq!(all_refs(&db).await, all_wanted(&orders).await);

    // The marker clear fails: the move is done, the marker stays for the next writer.
    set(&faulty.fail_clear, true);
    orders.update("a", json!({"status": "new"})).await.unwrap();
    assert_eq!(all_refs(&db).await, all_wanted(&orders).await);
    assert_ne!(marker(&db, "a").await.as_deref(), Some("[]"));
    set(&faulty.fail_clear, false);
    orders.update("a", json!({"touch": 3})).await.unwrap();
    assert_eq!(marker(&db, "a").await.as_deref(), Some("[]"));
    assert_eq!(all_refs(&db).await, all_wanted(&orders).await);

    // A delete whose reference deletes fail: deleted; repair removes what is left.
    set(&faulty.fail_ref_deletes, true);
    orders.delete("a").await.unwrap();
    set(&faulty.fail_ref_deletes, false);
    assert_eq!(all_refs(&db).await.len(), 3);
    let report = orders.repair().await.unwrap();
    assert_eq!(report.deleted(), 3);
    assert!(all_refs(&db).await.is_empty());
}

#[tokio::test]
async fn insert_writes_references_beside_the_record() {
    let faulty = Faulty::new();
    let db = Database::with_store(Store::new(faulty.clone(), ""))
        .await
        .unwrap();
    let orders = db
        .create_resource_with("orders", orders_config())
        .await
        .unwrap();
    faulty.put_delay_ms.store(50, Ordering::SeqCst);
    faulty.max_in_flight.store(0, Ordering::SeqCst);
    db.reset_stats();
    orders
        .insert(json!({"id": "a", "status": "new", "region": "eu", "kind": "k1"}))
        .await
        .unwrap();
    assert_eq!(db.stats().put, 4, "record + 3 references");
    assert_eq!(
        faulty.max_in_flight.load(Ordering::SeqCst),
        4,
        "one round trip: the record and its references at once"
    );
    // insert_many: every item the same way.
    faulty.max_in_flight.store(0, Ordering::SeqCst);
    let items: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("m{i}"), "status": "new", "region": "eu", "kind": "k1"}))
        .collect();
    assert!(orders
        .insert_many(items)
        .await
        .iter()
        .all(|i| i.error.is_none()));
    assert_eq!(faulty.max_in_flight.load(Ordering::SeqCst), 12);
    assert_eq!(all_refs(&db).await, all_wanted(&orders).await);
}
