//! Racing writers of one record's partitioned fields end with references that match the
//! record: several connections update the same record at once, every update that returns
//! Ok took effect and none that took effect returned an error, and afterwards the raw
//! reference keys are exactly the ones the record's values call for.

mod common;

use std::collections::BTreeSet;

use common::{backends, connect};
use s3db::{Database, ResourceConfig};
use serde_json::{json, Value};

const WRITERS: usize = 4;
const UPDATES: usize = 12;
const ROUNDS: usize = 20;
const STATUSES: &[&str] = &["new", "paid", "shipped", "done"];
const REGIONS: &[&str] = &["eu", "us", "ap"];

fn orders_config() -> ResourceConfig {
    let mut attributes = json!({
        "status": "string", "region": "string", "kind": "string", "touch": "number|optional"
    });
    for w in 0..WRITERS {
        attributes[format!("w{w}")] = json!("number|optional");
    }
    ResourceConfig::from_json(&json!({
        "attributes": attributes,
        "partitions": {
            "byStatus": {"fields": {"status": "string"}},
            "byRegionStatus": {"fields": {"status": "string", "region": "string"}},
            "byKind": {"fields": {"kind": "string"}}
        }
    }))
    .unwrap()
}

/// The reference keys a record's values call for.
fn wanted(r: &Value) -> BTreeSet<String> {
    let id = r["id"].as_str().unwrap();
    let (s, g, k) = (
        r["status"].as_str().unwrap(),
        r["region"].as_str().unwrap(),
        r["kind"].as_str().unwrap(),
    );
    [
        format!("resource=orders/partition=byStatus/status={s}/id={id}"),
        format!("resource=orders/partition=byRegionStatus/region={g}/status={s}/id={id}"),
        format!("resource=orders/partition=byKind/kind={k}/id={id}"),
    ]
    .into_iter()
    .collect()
}

async fn raw_refs(db: &Database, id: &str) -> BTreeSet<String> {
    db.store()
        .list_all("resource=orders/partition=")
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with(&format!("/id={id}")))
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    updates_ok: usize,
    errors: Vec<String>,
    stale_at_rest: usize,
    missing_at_rest: usize,
    disagreeing_listings: usize,
    stale_after_write: usize,
    missing_after_write: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_partition_updates_converge() {
    for url in backends() {
        let db = connect(&url).await;
        let orders = db
            .create_resource_with("orders", orders_config())
            .await
            .unwrap();
        let mut tally = Tally::default();
        for round in 0..ROUNDS {
            let id = format!("r{round}");
            orders
                .insert(json!({"id": id, "status": "new", "region": "eu", "kind": "k1"}))
                .await
                .unwrap();
            let writers: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (url, id) = (url.clone(), id.clone());
                    tokio::spawn(async move {
                        // Each writer on its own connection.
                        let db = connect(&url).await;
                        let res = db.resource("orders").await.unwrap();
                        let (mut ok, mut errors) = (0, Vec::new());
                        for i in 1..=UPDATES {
                            let change = json!({
                                "status": STATUSES[rand::random_range(0..STATUSES.len())],
                                "region": REGIONS[rand::random_range(0..REGIONS.len())],
                                format!("w{w}"): i,
                            });
                            match res.update(&id, change).await {
                                Ok(_) => ok += 1,
                                Err(e) => errors.push(format!("writer {w} update {i}: {e}")),
                            }
                        }
                        (ok, errors)
                    })
                })
                .collect();
            for h in writers {
                let (ok, errors) = h.await.unwrap();
                tally.updates_ok += ok;
                tally.errors.extend(errors);
            }
            // Every acknowledged change is there (each writer's own counter is its last).
            let record = orders.get(&id).await.unwrap();
            for w in 0..WRITERS {
                assert_eq!(
                    record[format!("w{w}")],
                    json!(UPDATES),
                    "{url} round {round}: writer {w}'s last update is missing: {record}"
                );
            }
            // At rest, with no further write.
            let want = wanted(&record);
            let have = raw_refs(&db, &id).await;
            tally.stale_at_rest += have.difference(&want).count();
            tally.missing_at_rest += want.difference(&have).count();
            for s in STATUSES {
                let values = json!({"status": s}).as_object().unwrap().clone();
                let listed = orders.list_in(Some(("byStatus", &values))).await.unwrap();
                let here = listed.iter().filter(|r| r["id"] == json!(id)).count();
                let agrees = record["status"] == json!(s);
                if (here > 0) != agrees {
                    tally.disagreeing_listings += 1;
                }
            }
            // One more write (no partition change) converges whatever is left.
            orders.update(&id, json!({"touch": round})).await.unwrap();
            let have = raw_refs(&db, &id).await;
            tally.stale_after_write += have.difference(&want).count();
            tally.missing_after_write += want.difference(&have).count();
        }
        eprintln!("{url}: {tally:?}");
        assert!(tally.errors.is_empty(), "{url}: {:?}", tally.errors);
        assert_eq!(tally.updates_ok, ROUNDS * WRITERS * UPDATES);
        assert_eq!(
            (tally.stale_after_write, tally.missing_after_write),
            (0, 0),
            "{url}: references after one more write: {tally:?}"
        );
        assert_eq!(
            (
                tally.stale_at_rest,
                tally.missing_at_rest,
                tally.disagreeing_listings
            ),
            (0, 0, 0),
            "{url}: references once the writers are done: {tally:?}"
        );
        // A full repair finds nothing left to do.
        let (written, deleted) = orders.reindex(None).await.unwrap();
        assert_eq!((written, deleted), (0, 0), "{url}");
    }
}
