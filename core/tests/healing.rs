//! Catalog healing on connect, on memory, file and S3 (when `S3DB_TEST_S3_URL` is set):
//! each corruption healed with the original backed up, or refused with nothing written.

mod common;

use bytes::Bytes;
use common::{backends, connect};
use s3db::storage::{PutRequest, Store};
use s3db::{Database, ErrorKind};
use serde_json::{json, Value};

/// A fresh database with two resources (users redefined: v1 and v2) and one record each;
/// returns the catalog text.
async fn populated(url: &str) -> String {
    let db = connect(url).await;
    db.create_resource("users", &json!({"name": "string"}))
        .await
        .unwrap();
    let users = db
        .create_resource("users", &json!({"name": "string", "city": "string"}))
        .await
        .unwrap();
    users
        .insert(json!({"id": "u1", "name": "Ada", "city": "London"}))
        .await
        .unwrap();
    let orders = db
        .create_resource("orders", &json!({"total": "string"}))
        .await
        .unwrap();
    orders
        .insert(json!({"id": "o1", "total": "12.50"}))
        .await
        .unwrap();
    catalog_text(db.store()).await
}

async fn catalog_text(store: &Store) -> String {
    String::from_utf8(store.get("s3db.json").await.unwrap().body.to_vec()).unwrap()
}

async fn put_catalog(store: &Store, text: &str) {
    store
        .put(
            "s3db.json",
            PutRequest {
                body: Bytes::from(text.to_string()),
                content_type: Some("application/json".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
}

async fn backups(store: &Store) -> Vec<String> {
    store.list_all("s3db.json.corrupted.").await.unwrap()
}

/// Writes `corrupt` as the catalog, connects, and checks the heal: a non-empty log, the
/// original bytes in exactly one backup, a catalog that now parses and stays intact on the
/// next connect. Returns the healed database and catalog.
async fn heal(url: &str, corrupt: &str) -> (Database, Value) {
    let store = Store::open(url).await.unwrap();
    put_catalog(&store, corrupt).await;
    let before = backups(&store).await;
    let db = Database::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: not healed: {e}\n{corrupt}"));
    let log = db.healing_log();
    assert!(!log.is_empty(), "{url}: nothing in the healing log");
    let after = backups(&store).await;
    let new: Vec<&String> = after.iter().filter(|k| !before.contains(k)).collect();
    assert_eq!(new.len(), 1, "{url}: one new backup, got {after:?}");
    assert!(new[0].ends_with(".backup") && !new[0].contains(':'));
    let stamp = new[0]
        .strip_prefix("s3db.json.corrupted.")
        .unwrap()
        .strip_suffix(".backup")
        .unwrap();
    assert_eq!(stamp.len(), "2024-01-15T12-00-00-000Z".len(), "{stamp}");
    assert_eq!(
        store.get(new[0]).await.unwrap().body,
        Bytes::from(corrupt.to_string()),
        "{url}: the backup holds the original bytes"
    );
    let healed: Value = serde_json::from_str(&catalog_text(&store).await)
        .unwrap_or_else(|e| panic!("{url}: healed catalog does not parse: {e}"));
    for field in ["version", "s3dbVersion", "lastUpdated"] {
        assert!(healed[field].is_string(), "{url}: {field}");
    }
    assert!(healed["resources"].is_object());
    let again = Database::connect(url).await.unwrap();
    assert!(again.healing_log().is_empty(), "{url}: healed once");
    (db, healed)
}

async fn assert_records_readable(db: &Database) {
    let users = db.resource("users").await.unwrap();
    assert_eq!(users.get("u1").await.unwrap()["name"], "Ada");
    let orders = db.resource("orders").await.unwrap();
    assert_eq!(orders.get("o1").await.unwrap()["total"], "12.50");
}

#[tokio::test(flavor = "multi_thread")]
async fn trailing_commas_are_healed() {
    for url in backends() {
        let text = populated(&url).await;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for i in 1..lines.len() {
            let t = lines[i].trim_start();
            if t.starts_with('}') || t.starts_with(']') {
                lines[i - 1].push(',');
            }
        }
        let corrupt = lines.join("\n");
        assert!(serde_json::from_str::<Value>(&corrupt).is_err());
        let (db, healed) = heal(&url, &corrupt).await;
        assert_eq!(
            healed["resources"],
            serde_json::from_str::<Value>(&text).unwrap()["resources"]
        );
        assert_records_readable(&db).await;
        assert!(db
            .healing_log()
            .iter()
            .any(|l| l.contains("trailing comma")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn truncated_text_is_closed() {
    for url in backends() {
        let text = populated(&url).await;
        // Only closing brackets lost.
        let cut = text.trim_end_matches(['}', '\n', ' ']);
        let (db, healed) = heal(&url, cut).await;
        assert_eq!(
            healed["resources"],
            serde_json::from_str::<Value>(&text).unwrap()["resources"]
        );
        assert_records_readable(&db).await;

        // Cut inside the last resource, after its attributes (and inside a string).
        let at = text.find("\"total\": \"string\"").unwrap() + "\"total\": \"stri".len();
        let (_, healed) = heal(&url, &text[..at]).await;
        let orders = &healed["resources"]["orders"];
        assert_eq!(orders["currentVersion"], "v1", "{url}");
        assert_eq!(orders["versions"]["v1"]["attributes"]["total"], "stri");
        assert_eq!(
            healed["resources"]["users"],
            serde_json::from_str::<Value>(&text).unwrap()["resources"]["users"]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_structure_is_added() {
    for url in backends() {
        let text = populated(&url).await;
        let mut v: Value = serde_json::from_str(&text).unwrap();
        let resources = v["resources"].clone();
        for field in ["version", "s3dbVersion", "lastUpdated"] {
            v.as_object_mut().unwrap().remove(field);
        }
        let (db, healed) = heal(&url, &serde_json::to_string_pretty(&v).unwrap()).await;
        assert_eq!(healed["version"], "1");
        assert_eq!(healed["s3dbVersion"], s3db::catalog::S3DB_JS_VERSION);
        assert_eq!(healed["resources"], resources);
        assert_records_readable(&db).await;

        let (db, healed) = heal(&url, "{}").await;
        assert_eq!(healed["resources"], json!({}));
        assert!(db.list_resources().await.is_empty());
        let (_, healed) = heal(&url, r#"{"version": "1", "resources": null}"#).await;
        assert_eq!(healed["resources"], json!({}));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_version_references_and_null_hooks() {
    for url in backends() {
        let text = populated(&url).await;
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["resources"]["users"]["currentVersion"] = json!("v7");
        v["resources"]["orders"]["versions"]["v1"]["hooks"] = Value::Null;
        v["resources"]["ghost"] = json!({"currentVersion": "v1", "versions": {}});
        let (db, healed) = heal(&url, &serde_json::to_string_pretty(&v).unwrap()).await;
        assert_eq!(
            healed["resources"]["users"]["currentVersion"], "v2",
            "{url}"
        );
        assert_eq!(
            healed["resources"]["orders"]["versions"]["v1"]["hooks"],
            json!({})
        );
        assert!(
            healed["resources"].get("ghost").is_none(),
            "no version at all"
        );
        let log = db.healing_log();
        assert!(log.iter().any(|l| l.contains("\"v7\"")), "{log:?}");
        assert!(log.iter().any(|l| l.contains("ghost")), "{log:?}");
        assert!(log.iter().any(|l| l.contains("hooks")), "{log:?}");
        assert_records_readable(&db).await;
        assert_eq!(
            db.resource("users").await.unwrap().get("u1").await.unwrap()["city"],
            "London",
            "read with v2's schema"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unhealable_catalogs_are_refused_and_left_alone() {
    for url in backends() {
        let text = populated(&url).await;
        let store = Store::open(&url).await.unwrap();
        let garbled = text.replacen("\"users\"", "users", 1);
        for corrupt in [
            "this is not json",
            "[1, 2, 3]",
            "\"a string\"",
            r#"{"version": "1", "resources": [1]}"#,
            garbled.as_str(),
        ] {
            put_catalog(&store, corrupt).await;
            store.reset_stats();
            let e = Database::connect(&url).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{url}: {corrupt}");
            assert_eq!(catalog_text(&store).await, corrupt);
            assert!(backups(&store).await.is_empty(), "{url}: no backup");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_healers_agree() {
    for url in backends() {
        let text = populated(&url).await;
        let corrupt = text.replace("\"string\"\n", "\"string\",\n");
        assert_ne!(corrupt, text);
        let store = Store::open(&url).await.unwrap();
        put_catalog(&store, &corrupt).await;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let url = url.clone();
            tasks.spawn(async move {
                let db = Database::connect(&url).await.unwrap();
                let mut names = db.list_resources().await;
                names.sort();
                names
            });
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.unwrap(), ["orders", "users"], "{url}");
        }
        assert!(!backups(&store).await.is_empty());
        let healed: Value = serde_json::from_str(&catalog_text(&store).await).unwrap();
        assert_eq!(
            healed["resources"],
            serde_json::from_str::<Value>(&text).unwrap()["resources"]
        );
    }
}
