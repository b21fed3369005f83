//! Every loop that waits on the store ends: against a store that contradicts itself forever
//! (404 to every read, 412 to every conditional write) each operation returns a typed error
//! in bounded time. And a bad read of the catalog is never taken for a bad catalog.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::tamper::Tampered;
use s3db::{Database, ErrorKind, LockOptions, SetOptions};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(90);

async fn bounded<T: std::fmt::Debug>(
    what: &str,
    op: impl std::future::Future<Output = s3db::Result<T>>,
) -> s3db::Error {
    match tokio::time::timeout(PATIENCE, op).await {
        Err(_) => panic!("{what}: still running after {PATIENCE:?}"),
        Ok(Ok(v)) => panic!("{what}: succeeded against a contradicting store: {v:?}"),
        Ok(Err(e)) => {
            println!("{what}: {} {}", e.kind().code(), e.message());
            e
        }
    }
}

#[tokio::test]
async fn a_store_that_contradicts_itself_forever_gets_typed_errors() {
    let t = Tampered::new();
    let db = Database::with_store(t.store().with_catalog_mutex(true))
        .await
        .unwrap();
    let users = db
        .create_resource("users", &json!({"name": "string"}))
        .await
        .unwrap();
    let ada = users.insert(json!({"name": "Ada"})).await.unwrap();
    let id = ada["id"].as_str().unwrap().to_string();
    let seq = db.sequence("orders").unwrap();
    seq.next().await.unwrap();
    let state = db.state("app").unwrap();
    state.set("k", json!(1), None).await.unwrap();
    let plugin = db.plugin_storage("audit").unwrap();
    t.contradict(true);

    let e = bounded("connect", Database::with_store(t.store())).await;
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(
        e.message().contains("404") && e.message().contains("412"),
        "{e}"
    );

    let e = bounded(
        "create_resource",
        db.create_resource("more", &json!({"x": "string"})),
    )
    .await;
    assert!(
        matches!(e.kind(), ErrorKind::Storage | ErrorKind::Conflict),
        "{e}"
    );

    bounded("insert", users.insert(json!({"name": "Bob"}))).await;
    bounded("update", users.update(&id, json!({"name": "Ada L."}))).await;
    bounded("delete", users.delete(&id)).await;
    bounded("get", users.get(&id)).await;
    bounded("sequence next", seq.next()).await;
    bounded(
        "state update",
        state.update("k", |v| {
            Ok(json!(v.and_then(|v| v.as_i64()).unwrap_or(0) + 1))
        }),
    )
    .await;
    bounded("state increment", state.increment("n", 1)).await;
    bounded("fenced put", db.fenced_put("f", &json!(1), 1)).await;
    let opts = LockOptions {
        timeout: Duration::from_secs(2),
        ..Default::default()
    };
    bounded("lock", db.lock("l", opts)).await;
    let set = SetOptions {
        condition: s3db::storage::WriteCondition::IfNoneMatch,
        ..Default::default()
    };
    bounded(
        "plugin set",
        plugin.set("plugin=audit/x", &json!({"a": 1}), &set),
    )
    .await;
    assert!(t.requests.load(Ordering::SeqCst) > 0);
}

#[tokio::test]
async fn a_catalog_read_cut_short_is_read_again_not_healed() {
    let t = Tampered::new();
    let db = Database::with_store(t.store()).await.unwrap();
    db.create_resource("users", &json!({"name": "string", "email": "string"}))
        .await
        .unwrap();
    db.create_resource("orders", &json!({"total": "number"}))
        .await
        .unwrap();
    let store = t.store();
    let stored = store.get("s3db.json").await.unwrap();

    t.truncate_next_gets("s3db.json", 1);
    let again = Database::with_store(t.store()).await.unwrap();
    assert!(again.healing_log().is_empty(), "{:?}", again.healing_log());
    let mut names = again.list_resources().await;
    names.sort();
    assert_eq!(names, ["orders", "users"]);
    assert_eq!(
        again.stats().put,
        0,
        "nothing written on account of a bad read"
    );
    let now = store.get("s3db.json").await.unwrap();
    assert_eq!(now.body, stored.body);
    assert!(store
        .list_all("s3db.json.corrupted.")
        .await
        .unwrap()
        .is_empty());

    // Every read cut short: connect gives up with a typed error and writes nothing.
    t.truncate_next_gets("s3db.json", u32::MAX);
    let e = bounded("connect", Database::with_store(t.store())).await;
    assert_eq!(e.kind(), ErrorKind::Storage);
    t.truncate_next_gets("s3db.json", 0);
    assert_eq!(store.get("s3db.json").await.unwrap().body, stored.body);
}

#[tokio::test]
async fn a_catalog_that_is_really_cut_short_is_backed_up_by_copy_and_healed() {
    let t = Tampered::new();
    let db = Database::with_store(t.store()).await.unwrap();
    db.create_resource("users", &json!({"name": "string"}))
        .await
        .unwrap();
    let store = t.store();
    let full = store.get("s3db.json").await.unwrap().body;
    let cut = full.slice(..full.len() - 3);
    store
        .put(
            "s3db.json",
            s3db::storage::PutRequest {
                body: cut.clone(),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let healed = Database::with_store(t.store()).await.unwrap();
    assert!(!healed.healing_log().is_empty());
    assert_eq!(healed.list_resources().await, ["users"]);
    assert_eq!(healed.stats().copy, 1, "the backup is a server-side copy");
    let backups = store.list_all("s3db.json.corrupted.").await.unwrap();
    assert_eq!(backups.len(), 1);
    let backup = store.get(&backups[0]).await.unwrap();
    assert_eq!(backup.body, cut, "the backup holds the stored bytes");
}

#[tokio::test]
async fn a_catalog_edited_behind_a_file_stores_back_is_healed() {
    let dir = common::tempdir();
    let url = format!("file://{dir}");
    let db = common::connect(&url).await;
    db.create_resource("notes", &json!({"text": "string"}))
        .await
        .unwrap()
        .insert(json!({"id": "n1", "text": "kept"}))
        .await
        .unwrap();
    // A trailing comma written straight into the file: its sidecar no longer matches.
    let path = std::path::Path::new(&dir).join("s3db.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.rfind('}').unwrap();
    let edited = format!("{},{}", &text[..at], &text[at..]);
    std::fs::write(&path, &edited).unwrap();

    let healed = Database::connect(&url).await.unwrap();
    let log = healed.healing_log();
    assert!(log.iter().any(|l| l.contains("trailing comma")), "{log:?}");
    let notes = healed.resource("notes").await.unwrap();
    assert_eq!(notes.get("n1").await.unwrap()["text"], "kept");
    let backups = healed
        .store()
        .list_all("s3db.json.corrupted.")
        .await
        .unwrap();
    assert_eq!(backups.len(), 1);
    let backup = healed.store().get(&backups[0]).await.unwrap();
    assert_eq!(backup.body, edited.as_bytes());
}
