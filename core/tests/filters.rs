//! Partition filters are exact: any subset of a partition's fields, checked values, verified
//! records, stale references reported; the request counts of the prefix and non-prefix cases.

mod common;

use common::{backends, connect};
use s3db::storage::{Metadata, PutRequest};
use s3db::{ErrorKind, Resource, ResourceConfig, Stats};
use serde_json::{json, Map, Value};

const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const STATUSES: [&str; 2] = ["active", "idle"];
const TIERS: [i64; 2] = [1, 2];

fn delta(before: Stats, after: Stats) -> Stats {
    Stats {
        get: after.get - before.get,
        head: after.head - before.head,
        put: after.put - before.put,
        copy: after.copy - before.copy,
        delete: after.delete - before.delete,
        list: after.list - before.list,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ids(records: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `items` with a 3-field partition given in a scrambled order: s3db.js keys sort the fields
/// (`region`, `status`, `tier`).
async fn items(db: &s3db::Database) -> Resource {
    db.create_resource_with(
        "items",
        ResourceConfig::from_json(&json!({
            "attributes": {
                "region": "string", "status": "string", "tier": "number", "n": "number",
                "tags": "array|items:string|optional"
            },
            "partitions": {
                "byAll": {"fields": {"tier": "number", "status": "string", "region": "string"}},
                "byStatus": {"fields": {"status": "string"}}
            }
        }))
        .unwrap(),
    )
    .await
    .unwrap()
}

fn record(i: usize) -> Value {
    json!({
        "id": format!("r{i:02}"),
        "region": REGIONS[i % 3],
        "status": STATUSES[(i / 3) % 2],
        "tier": TIERS[(i / 6) % 2],
        "n": i,
        "tags": [format!("t{}", i % 4)],
    })
}

/// The 8 subsets of the partition's fields, each with the values of record `of`.
fn subsets(of: &Value) -> Vec<Map<String, Value>> {
    let fields = ["region", "status", "tier"];
    (0..8u32)
        .map(|mask| {
            fields
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, f)| (f.to_string(), of[*f].clone()))
                .collect()
        })
        .collect()
}

fn expected(all: &[Value], values: &Map<String, Value>) -> Vec<String> {
    let hits: Vec<Value> = all
        .iter()
        .filter(|r| values.iter().all(|(k, v)| &r[k] == v))
        .cloned()
        .collect();
    ids(&hits)
}

async fn paged(res: &Resource, values: &Map<String, Value>, size: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = res
            .page_in(Some(("byAll", values)), size, cursor.as_deref())
            .await
            .unwrap();
        assert!(page.items.len() <= size);
        out.extend(ids(&page.items));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.sort();
    let mut dedup = out.clone();
    dedup.dedup();
    assert_eq!(dedup, out, "no record on two pages");
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_subset_of_partition_fields_matches_a_full_scan() {
    for url in backends() {
        let db = connect(&url).await;
        let res = items(&db).await;
        for i in 0..30 {
            res.insert(record(i)).await.unwrap();
        }
        let all = res.list().await.unwrap();
        assert_eq!(all.len(), 30);
        let mut checked = 0;
        for of in [record(0), record(10), record(29)] {
            for values in subsets(&of) {
                let want = expected(&all, &values);
                let by = Some(("byAll", &values));
                assert_eq!(
                    ids(&res.list_in(by).await.unwrap()),
                    want,
                    "{url} list {values:?}"
                );
                assert_eq!(
                    sorted(res.list_ids_in(by).await.unwrap()),
                    want,
                    "{url} list_ids {values:?}"
                );
                assert_eq!(
                    res.count_in(by).await.unwrap(),
                    want.len() as u64,
                    "{url} count {values:?}"
                );
                assert_eq!(paged(&res, &values, 4).await, want, "{url} page {values:?}");
                let filter = Value::Object(values.clone());
                assert_eq!(
                    ids(&res.query(&filter).await.unwrap()),
                    want,
                    "{url} query {values:?}"
                );
                assert_eq!(
                    ids(&res.query_in(&json!({}), by).await.unwrap()),
                    want,
                    "{url} query_in {values:?}"
                );
                for r in &all {
                    let id = r["id"].as_str().unwrap();
                    match res.get_from_partition(id, "byAll", &values).await {
                        Ok(got) => {
                            assert!(want.contains(&id.to_string()), "{url} {id} {values:?}");
                            assert_eq!(&got, r);
                        }
                        Err(e) => {
                            assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
                            assert!(!want.contains(&id.to_string()), "{url} {id} {values:?}");
                        }
                    }
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 24);
        // The s3db.js vector case: only the second field of a two-field order.
        let active = obj(json!({"status": "active"}));
        assert_eq!(res.count_in(Some(("byAll", &active))).await.unwrap(), 15);
        // A value no record has, and values given as text are converted like records.
        let none = obj(json!({"region": "zz", "tier": 1}));
        assert_eq!(res.count_in(Some(("byAll", &none))).await.unwrap(), 0);
        let text = obj(json!({"tier": "2", "status": "idle"}));
        let numeric = obj(json!({"tier": 2, "status": "idle"}));
        assert_eq!(
            ids(&res.list_in(Some(("byAll", &text))).await.unwrap()),
            expected(&all, &numeric)
        );
        // The query planner and the in-memory filter together.
        let q = json!({"status": "idle", "tier": 2, "n": {"$gte": 20}});
        let want: Vec<Value> = all
            .iter()
            .filter(|r| r["status"] == "idle" && r["tier"] == 2 && r["n"].as_i64() >= Some(20))
            .cloned()
            .collect();
        assert_eq!(ids(&res.query(&q).await.unwrap()), ids(&want));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_fields_and_wrong_types_are_refused_by_every_read() {
    for url in backends() {
        let db = connect(&url).await;
        let res = items(&db).await;
        res.insert(record(0)).await.unwrap();
        for (values, field) in [
            (json!({"color": "red"}), "color"),
            (json!({"stauts": "active"}), "stauts"),
            (json!({"region": "eu", "n": 1}), "n"),
            (json!({"tier": "abc"}), "tier"),
            (json!({"tier": true}), "tier"),
            (json!({"region": 5}), "region"),
            (json!({"status": null}), "status"),
            (json!({"region": ["eu"]}), "region"),
            (json!({"address": {"region": "eu"}}), "address"),
        ] {
            let values = obj(values);
            let by = Some(("byAll", &values));
            let check = |r: Result<(), s3db::Error>, what: &str| {
                let e = r.unwrap_err();
                assert_eq!(
                    e.kind(),
                    ErrorKind::Validation,
                    "{url} {what} {values:?}: {e}"
                );
                assert!(e.message().contains(field), "{what}: {e}");
                let details = e.details().unwrap().as_array().unwrap();
                assert!(details.iter().any(|d| d["field"] == field), "{details:?}");
            };
            check(res.list_in(by).await.map(|_| ()), "list");
            check(res.list_ids_in(by).await.map(|_| ()), "list_ids");
            check(res.count_in(by).await.map(|_| ()), "count");
            check(res.page_in(by, 10, None).await.map(|_| ()), "page");
            check(res.query_in(&json!({}), by).await.map(|_| ()), "query");
            check(
                res.get_from_partition("r00", "byAll", &values)
                    .await
                    .map(|_| ()),
                "getFromPartition",
            );
        }
        let values = obj(json!({"region": "eu"}));
        assert_eq!(
            res.list_in(Some(("nope", &values)))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        // A value that would reshape the key is refused as before.
        let slash = obj(json!({"region": "e/u"}));
        assert_eq!(
            res.count_in(Some(("byAll", &slash)))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
    }
}

fn put_ref(key: &str) -> (String, PutRequest) {
    let mut metadata = Metadata::new();
    metadata.insert("_v".into(), "v1".into());
    (
        key.to_string(),
        PutRequest {
            metadata,
            ..Default::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_references_are_skipped_and_reported() {
    for url in backends() {
        let db = connect(&url).await;
        let res = items(&db).await;
        for i in 0..12 {
            res.insert(record(i)).await.unwrap();
        }
        let all = res.list().await.unwrap();
        // r01 is in `us`: a reference claiming `eu`, as a crashed mover would leave it, and
        // one to a record that no longer exists.
        assert_eq!(all[1]["region"], "us");
        let stale = "resource=items/partition=byAll/region=eu/status=active/tier=1/id=r01";
        let orphan = "resource=items/partition=byAll/region=eu/status=active/tier=1/id=gone";
        for key in [stale, orphan] {
            let (k, req) = put_ref(key);
            db.store().put(&k, req).await.unwrap();
        }
        let eu = obj(json!({"region": "eu"}));
        let active = obj(json!({"status": "active"}));
        let want_eu = expected(&all, &eu);
        let want_active = expected(&all, &active);
        for values in [&eu, &active] {
            let want = expected(&all, values);
            let by = Some(("byAll", values));
            assert_eq!(ids(&res.list_in(by).await.unwrap()), want, "{url} list");
            assert_eq!(paged(&res, values, 3).await, want, "{url} page");
            assert_eq!(
                ids(&res.query_in(&json!({}), by).await.unwrap()),
                want,
                "{url} query_in"
            );
        }
        assert_eq!(
            ids(&res
                .query(&json!({"region": "eu", "tier": 1}))
                .await
                .unwrap()),
            expected(&all, &obj(json!({"region": "eu", "tier": 1}))),
            "{url} planned query"
        );
        assert!(res
            .get_from_partition("r01", "byAll", &eu)
            .await
            .is_err_and(|e| e.kind() == ErrorKind::NotFound));
        let reported = res.stale_references();
        assert_eq!(reported.len(), 2, "{reported:?}");
        let by_key = |k: &str| reported.iter().find(|r| r.key == k).unwrap().clone();
        assert_eq!(
            (by_key(stale).id.as_str(), by_key(stale).reason),
            ("r01", "values differ")
        );
        assert_eq!(
            (by_key(orphan).id.as_str(), by_key(orphan).reason),
            ("gone", "record missing")
        );
        assert_eq!(by_key(stale).partition, "byAll");
        assert!(res.stale_reference_count() >= 2);
        // Ids and counts come from the references alone: until repaired they include them.
        assert_eq!(
            res.count_in(Some(("byAll", &eu))).await.unwrap(),
            want_eu.len() as u64 + 2
        );
        assert_eq!(
            res.list_ids_in(Some(("byAll", &active)))
                .await
                .unwrap()
                .len(),
            want_active.len() + 1,
            "r01 is listed once although it has two matching references"
        );
        assert_eq!(res.take_stale_references().len(), 2);
        assert!(res.stale_references().is_empty());
        assert_eq!(res.reindex(Some("byAll")).await.unwrap(), (0, 2));
        assert_eq!(
            sorted(res.list_ids_in(Some(("byAll", &eu))).await.unwrap()),
            want_eu
        );
        res.list_in(Some(("byAll", &eu))).await.unwrap();
        assert!(res.stale_references().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn request_counts_of_prefix_and_non_prefix_filters() {
    let url = format!("memory://{}", common::random_name("counts-"));
    let db = connect(&url).await;
    let res = items(&db).await;
    // 2,050 references under region=eu, 50 under us.
    let rows: Vec<Value> = (0..2100)
        .map(|i| {
            json!({"id": format!("r{i:04}"), "region": if i < 2050 { "eu" } else { "us" },
                   "status": if i % 100 == 7 { "idle" } else { "active" }, "tier": 1, "n": i})
        })
        .collect();
    assert!(res
        .insert_many(rows)
        .await
        .iter()
        .all(|r| r.error.is_none()));

    // Prefix: 1 LIST per 1,000 references under the prefix + 1 GET per returned record.
    let eu = obj(json!({"region": "eu"}));
    let s = db.stats();
    assert_eq!(res.list_in(Some(("byAll", &eu))).await.unwrap().len(), 2050);
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get, d.head), (3, 2050, 0), "{d:?}");
    let s = db.stats();
    assert_eq!(res.count_in(Some(("byAll", &eu))).await.unwrap(), 2050);
    assert_eq!(
        res.list_ids_in(Some(("byAll", &eu))).await.unwrap().len(),
        2050
    );
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (6, 0), "{d:?}");
    let us_active = obj(json!({"region": "us", "status": "active"}));
    let s = db.stats();
    assert_eq!(
        res.list_in(Some(("byAll", &us_active)))
            .await
            .unwrap()
            .len(),
        50
    );
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (1, 50), "{d:?}");

    // Not a prefix: the partition's references are listed, no GET for a non-matching id.
    let idle = obj(json!({"status": "idle"}));
    let s = db.stats();
    let found = res.list_in(Some(("byAll", &idle))).await.unwrap();
    assert_eq!(found.len(), 21);
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (3, 21), "{d:?}");
    let s = db.stats();
    assert_eq!(res.count_in(Some(("byAll", &idle))).await.unwrap(), 21);
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (3, 0), "{d:?}");
    let eu_tier = obj(json!({"region": "eu", "tier": 1, "status": "idle"}));
    let s = db.stats();
    assert_eq!(
        res.list_in(Some(("byAll", &eu_tier))).await.unwrap().len(),
        21
    );
    let d = delta(s, db.stats());
    assert_eq!(
        (d.list, d.get),
        (1, 21),
        "every field given: one exact prefix {d:?}"
    );
    let eu_t1 = obj(json!({"region": "eu", "tier": 1}));
    let s = db.stats();
    assert_eq!(res.count_in(Some(("byAll", &eu_t1))).await.unwrap(), 2050);
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (3, 0), "{d:?}");

    // A page: one LIST of `size` keys, GETs for the matching ones only.
    let s = db.stats();
    let page = res
        .page_in(Some(("byAll", &idle)), 1000, None)
        .await
        .unwrap();
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (1, page.items.len() as u64), "{d:?}");
    assert!(page.cursor.is_some());

    // Query picks byStatus (a leading field, where byAll's is not): one LIST, 21 GETs.
    let s = db.stats();
    assert_eq!(
        res.query(&json!({"status": "idle", "n": {"$lt": 1000}}))
            .await
            .unwrap()
            .len(),
        10
    );
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get), (1, 21), "{d:?}");
    // getFromPartition: one GET, one HEAD of the reference.
    let s = db.stats();
    res.get_from_partition("r0007", "byAll", &idle)
        .await
        .unwrap();
    let d = delta(s, db.stats());
    assert_eq!((d.list, d.get, d.head), (0, 1, 1), "{d:?}");
}
