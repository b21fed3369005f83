//! The engine through a fault-injecting proxy in front of the S3 test server
//! (`S3DB_TEST_S3_URL`): bodies cut short with a matching length, flipped bits, answers lost
//! after the server applied a write, and a store that contradicts itself. Nothing is changed
//! by a bad read, nothing hangs, and no write of ours is reported as someone else's.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use s3db::{Database, LockOptions, SetOptions};
use s3db_faultproxy::{Action, FaultProxy, Rule, When};
use serde_json::json;

/// The test server's URL with a fresh prefix, and its address.
fn server() -> Option<(String, SocketAddr)> {
    let Ok(url) = std::env::var("S3DB_TEST_S3_URL") else {
        eprintln!("faults: S3DB_TEST_S3_URL is not set; the S3 fault tests need the test server");
        return None;
    };
    let host_port = url.split('@').nth(1)?.split('/').next()?.to_string();
    let addr: SocketAddr = host_port.parse().ok()?;
    let url = format!(
        "{}/{}",
        url.trim_end_matches('/'),
        common::random_name("faults-")
    );
    Some((url, addr))
}

/// The same store, reached through `proxy`.
fn via(proxy: &FaultProxy, url: &str, upstream: SocketAddr) -> String {
    url.replace(&upstream.to_string(), &proxy.addr().to_string())
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: still running after 90 s"))
}

#[tokio::test]
async fn lost_insert_answers_are_not_reported_as_already_exists() {
    let Some((url, upstream)) = server() else {
        return;
    };
    let direct = common::connect(&url).await;
    direct
        .create_resource("users", &json!({"name": "string"}))
        .await
        .unwrap();
    let proxy = FaultProxy::start(upstream).unwrap();
    let db = common::connect(&via(&proxy, &url, upstream)).await;
    let users = db.resource("users").await.unwrap();
    proxy
        .add_rule(
            Rule::new(Action::ResetAfter)
                .method("PUT")
                .header("if-none-match")
                .path_contains("/data/id=")
                .when(When::Probability { p: 0.25, seed: 7 }),
        )
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..40 {
        let id = format!("u{n}");
        let rec = within(
            "insert",
            users.insert(json!({"id": id, "name": format!("n{n}")})),
        )
        .await
        .unwrap_or_else(|e| panic!("insert {id}: {} {e}", e.kind().code()));
        assert_eq!(rec["id"], json!(id));
        ids.push(id);
    }
    let lost = proxy
        .stats()
        .by_action
        .get("reset_after")
        .copied()
        .unwrap_or(0);
    assert!(lost > 0, "the proxy dropped no answer");
    println!("40 inserts, {lost} answers dropped after the server applied them: 0 errors");
    let stored = direct.resource("users").await.unwrap();
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            stored.get(id).await.unwrap()["name"],
            json!(format!("n{n}"))
        );
    }
    assert_eq!(stored.count().await.unwrap(), 40);
}

#[tokio::test]
async fn catalog_reads_cut_short_change_nothing() {
    let Some((url, upstream)) = server() else {
        return;
    };
    let direct = common::connect(&url).await;
    for name in ["users", "orders", "items"] {
        direct
            .create_resource(name, &json!({"name": "string"}))
            .await
            .unwrap();
    }
    let before = direct.store().get("s3db.json").await.unwrap();
    let proxy = FaultProxy::start(upstream).unwrap();
    let through = via(&proxy, &url, upstream);

    // One bad read: verified, read again, connected with the whole catalog.
    proxy
        .add_rule(
            Rule::new(Action::TruncateBody { keep: None })
                .method("GET")
                .path_contains("s3db.json")
                .when(When::FirstN(1)),
        )
        .unwrap();
    let db = within("connect", Database::connect(&through))
        .await
        .unwrap();
    let mut names = db.list_resources().await;
    names.sort();
    assert_eq!(names, ["items", "orders", "users"]);
    assert!(db.healing_log().is_empty());

    // Every read cut short, or flipped: a typed error, nothing written.
    for action in [Action::TruncateBody { keep: None }, Action::CorruptBody] {
        proxy.clear_rules();
        proxy
            .add_rule(Rule::new(action).method("GET").path_contains("s3db.json"))
            .unwrap();
        let e = within("connect", Database::connect(&through))
            .await
            .unwrap_err();
        println!(
            "connect with every catalog read damaged: {} {e}",
            e.kind().code()
        );
    }
    let after = direct.store().get("s3db.json").await.unwrap();
    assert_eq!(after.head.etag, before.head.etag);
    assert_eq!(after.body, before.body);
    assert!(direct
        .store()
        .list_all("s3db.json.corrupted.")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn damaged_record_and_document_reads_are_never_data() {
    let Some((url, upstream)) = server() else {
        return;
    };
    let direct = common::connect(&url).await;
    let config = s3db::ResourceConfig::from_json(&json!({
        "attributes": {"name": "string", "bio": "string"},
        "behavior": "body-overflow",
    }))
    .unwrap();
    let users = direct.create_resource_with("users", config).await.unwrap();
    let bio = "b".repeat(3000);
    users
        .insert(json!({"id": "ada", "name": "Ada", "bio": bio}))
        .await
        .unwrap();
    let docs = direct.plugin_storage("audit").unwrap();
    let key = docs.key(None, &["big"]).unwrap();
    docs.set(
        &key,
        &json!({"text": "t".repeat(4000)}),
        &SetOptions::default(),
    )
    .await
    .unwrap();

    let proxy = FaultProxy::start(upstream).unwrap();
    let db = common::connect(&via(&proxy, &url, upstream)).await;
    let users = db.resource("users").await.unwrap();
    let docs = db.plugin_storage("audit").unwrap();
    for action in [Action::TruncateBody { keep: None }, Action::CorruptBody] {
        proxy.clear_rules();
        proxy
            .add_rule(
                Rule::new(action.clone())
                    .method("GET")
                    .when(When::FirstN(2)),
            )
            .unwrap();
        let rec = within("get", users.get("ada")).await.unwrap();
        assert_eq!(rec["bio"], json!(bio), "{}", action.name());
        proxy.clear_rules();
        proxy
            .add_rule(
                Rule::new(action.clone())
                    .method("GET")
                    .when(When::FirstN(2)),
            )
            .unwrap();
        let doc = within("plugin get", docs.get(&key)).await.unwrap().unwrap();
        assert_eq!(doc["text"], json!("t".repeat(4000)), "{}", action.name());
    }
    assert!(db.store().fault_stats().verification_failures >= 4);
}

#[tokio::test]
async fn lost_answers_to_sequence_and_lock_writes_are_settled() {
    let Some((url, upstream)) = server() else {
        return;
    };
    let proxy = FaultProxy::start(upstream).unwrap();
    let db = common::connect(&via(&proxy, &url, upstream)).await;
    let seq = db.sequence("invoices").unwrap();
    proxy
        .add_rule(
            Rule::new(Action::ResetAfter)
                .method("PUT")
                .path_contains("sequences/")
                .when(When::Probability { p: 0.3, seed: 11 }),
        )
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        got.push(within("sequence next", seq.next()).await.unwrap());
    }
    assert_eq!(
        got,
        (1..=20).collect::<Vec<i64>>(),
        "each value once, in order"
    );
    proxy.clear_rules();
    proxy
        .add_rule(
            Rule::new(Action::ResetAfter)
                .method("PUT")
                .path_contains("locks/")
                .when(When::FirstN(1)),
        )
        .unwrap();
    let lock = within("lock", db.lock("nightly", LockOptions::default()))
        .await
        .unwrap();
    let info = db.lock_info("nightly").await.unwrap().unwrap();
    assert_eq!(info.holder_id, db.holder_id());
    assert_eq!(info.fencing_token, lock.fencing_token());
    lock.release().await.unwrap();
    assert!(!db.is_locked("nightly").await.unwrap());
    let resolved = db.store().fault_stats().outcomes_resolved;
    assert!(resolved > 0, "no lost answer was settled by reading back");
    println!("sequence and lock: {resolved} lost answers settled by reading back");
}

#[tokio::test]
async fn a_store_that_contradicts_itself_gets_a_typed_error_in_bounded_time() {
    let Some((url, upstream)) = server() else {
        return;
    };
    let proxy = FaultProxy::start(upstream).unwrap();
    let through = via(&proxy, &url, upstream);
    common::connect(&through).await;
    proxy
        .add_rule(
            Rule::new(Action::s3_error(404, "NoSuchKey"))
                .method("GET")
                .path_contains("s3db.json"),
        )
        .unwrap();
    let t0 = std::time::Instant::now();
    let e = within("connect", Database::connect(&through))
        .await
        .unwrap_err();
    println!(
        "404 to every catalog read, 412 to creating it: {} after {:?}: {e}",
        e.kind().code(),
        t0.elapsed()
    );
    assert!(
        e.message().contains("404") && e.message().contains("412"),
        "{e}"
    );
}
