//! Resource hooks: order, value changes, failures that abort, the catalog summary.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::connect;
use s3db::{Database, Error, ErrorKind, Hook, ResourceConfig};
use serde_json::{json, Value};

fn sync_hook<F>(name: &str, f: F) -> Hook
where
    F: Fn(Value) -> s3db::Result<Value> + Send + Sync + 'static,
{
    Hook::sync(Some(name.to_string()), 1, f)
}

/// Records every value a hook saw, passing it on unchanged.
fn spy(seen: &Arc<Mutex<Vec<(String, Value)>>>, event: &str) -> Hook {
    let (seen, event) = (seen.clone(), event.to_string());
    sync_hook(&format!("spy_{event}"), move |v| {
        seen.lock().unwrap().push((event.clone(), v.clone()));
        Ok(v)
    })
}

async fn resource_with(db: &Database, name: &str, hooks: &[(&str, Hook)]) -> s3db::Resource {
    let config = ResourceConfig::from_json(&json!({
        "attributes": {"title": "string", "slug": "string|optional", "n": "number|optional"}
    }))
    .unwrap();
    let all = s3db::Hooks::default();
    for (event, hook) in hooks {
        all.add(event, hook.clone()).unwrap();
    }
    db.create_resource_with_hooks(name, config, all)
        .await
        .unwrap()
}

#[tokio::test]
async fn insert_hooks_change_the_record_in_order() {
    let db = connect("memory://").await;
    let slug = sync_hook("slugify", |mut v| {
        let title = v["title"].as_str().unwrap_or_default().to_lowercase();
        v["slug"] = json!(title.replace(' ', "-"));
        Ok(v)
    });
    let suffix = Hook::new(Some("suffix".into()), 1, |mut v: Value| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let s = format!("{}-1", v["slug"].as_str().unwrap_or_default());
            v["slug"] = json!(s);
            Ok(v)
        })
    });
    let stamp = sync_hook("stamp", |mut v| {
        v["seenByAfterInsert"] = json!(true);
        Ok(v)
    });
    let res = resource_with(
        &db,
        "posts",
        &[
            ("beforeInsert", slug),
            ("beforeInsert", suffix),
            ("afterInsert", stamp),
        ],
    )
    .await;
    let out = res
        .insert(json!({"id": "p1", "title": "Hello World"}))
        .await
        .unwrap();
    assert_eq!(out["slug"], "hello-world-1");
    assert_eq!(out["seenByAfterInsert"], true);
    let stored = res.get("p1").await.unwrap();
    assert_eq!(stored["slug"], "hello-world-1");
    assert!(stored.get("seenByAfterInsert").is_none());
}

#[tokio::test]
async fn a_failing_before_hook_aborts_and_writes_nothing() {
    let db = connect("memory://").await;
    let refuse = sync_hook("refuse", |v| {
        if v["title"] == "bad" {
            Err(Error::validation("titles may not be bad"))
        } else {
            Ok(v)
        }
    });
    let res = resource_with(&db, "guarded", &[("beforeInsert", refuse.clone())]).await;
    db.reset_stats();
    let err = res
        .insert(json!({"id": "x", "title": "bad"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(
        err.message(),
        "beforeInsert hook refuse: titles may not be bad"
    );
    assert_eq!(db.stats().put, 0);
    assert!(!res.exists("x").await.unwrap());

    // A hook that returns something else than a record is an error too.
    res.add_hook("beforeUpdate", sync_hook("broken", |_| Ok(json!(42))))
        .unwrap();
    res.insert(json!({"id": "y", "title": "ok"})).await.unwrap();
    let err = res.update("y", json!({"n": 1})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(res.get("y").await.unwrap().get("n"), None);
}

#[tokio::test]
async fn update_hooks_see_the_merged_record_and_cannot_change_the_id() {
    let db = connect("memory://").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let res = resource_with(
        &db,
        "upd",
        &[
            ("beforeUpdate", spy(&seen, "beforeUpdate")),
            ("afterUpdate", spy(&seen, "afterUpdate")),
        ],
    )
    .await;
    res.insert(json!({"id": "a", "title": "t", "n": 1}))
        .await
        .unwrap();
    res.update("a", json!({"n": 2})).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (
                "beforeUpdate".into(),
                json!({"id": "a", "title": "t", "n": 2})
            ),
            (
                "afterUpdate".into(),
                json!({"id": "a", "title": "t", "n": 2})
            ),
        ]
    );
    res.add_hook(
        "beforeUpdate",
        sync_hook("moveId", |mut v| {
            v["id"] = json!("b");
            Ok(v)
        }),
    )
    .unwrap();
    let err = res.update("a", json!({"n": 3})).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert_eq!(res.get("a").await.unwrap()["n"], 2);
}

#[tokio::test]
async fn delete_hooks_get_the_record_for_the_same_request_count() {
    let db = connect("memory://").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let res = resource_with(&db, "del", &[("afterDelete", spy(&seen, "afterDelete"))]).await;
    res.insert(json!({"id": "a", "title": "t"})).await.unwrap();
    db.reset_stats();
    res.delete("a").await.unwrap();
    let stats = db.stats();
    assert_eq!((stats.get, stats.head, stats.delete), (1, 0, 1));
    assert_eq!(
        seen.lock().unwrap().clone(),
        [("afterDelete".into(), json!({"id": "a", "title": "t"}))]
    );

    res.add_hook(
        "beforeDelete",
        sync_hook("keep", |_| Err(Error::new(ErrorKind::Conflict, "kept"))),
    )
    .unwrap();
    res.insert(json!({"id": "b", "title": "t"})).await.unwrap();
    let err = res.delete("b").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(res.exists("b").await.unwrap());
    let items = res.delete_many(&["b".to_string()]).await;
    assert_eq!(items[0].error.as_ref().unwrap().code, "CONFLICT");
}

#[tokio::test]
async fn read_hooks_change_what_reads_return() {
    let db = connect("memory://").await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upper = sync_hook("upper", |mut v| {
        let t = v["title"].as_str().unwrap_or_default().to_uppercase();
        v["title"] = json!(t);
        Ok(v)
    });
    let only_first = sync_hook("onlyFirst", |v| {
        Ok(Value::Array(
            v.as_array().unwrap().iter().take(1).cloned().collect(),
        ))
    });
    let res = resource_with(
        &db,
        "reads",
        &[
            ("beforeGet", spy(&seen, "beforeGet")),
            ("afterGet", upper),
            ("afterList", only_first.clone()),
            ("afterQuery", only_first),
            ("afterExists", spy(&seen, "afterExists")),
            ("afterCount", spy(&seen, "afterCount")),
        ],
    )
    .await;
    for id in ["a", "b"] {
        res.insert(json!({"id": id, "title": "low"})).await.unwrap();
    }
    assert_eq!(res.get("a").await.unwrap()["title"], "LOW");
    assert_eq!(res.list().await.unwrap().len(), 1);
    assert_eq!(res.list().await.unwrap()[0]["title"], "LOW");
    assert_eq!(res.query(&json!({"title": "low"})).await.unwrap().len(), 1);
    assert!(res.exists("a").await.unwrap());
    assert_eq!(res.count().await.unwrap(), 2);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], ("beforeGet".into(), json!({"id": "a"})));
    assert!(seen.contains(&("afterExists".into(), json!({"id": "a", "exists": true}))));
    assert!(seen.contains(&("afterCount".into(), json!({"count": 2}))));
}

#[tokio::test]
async fn hooks_belong_to_the_resource_not_the_handle() {
    let db = connect("memory://").await;
    let res = resource_with(
        &db,
        "shared",
        &[(
            "beforeInsert",
            sync_hook("tag", |mut v| {
                v["slug"] = json!("tagged");
                Ok(v)
            }),
        )],
    )
    .await;
    let other = db.resource("shared").await.unwrap();
    let out = other.insert(json!({"title": "t"})).await.unwrap();
    assert_eq!(out["slug"], "tagged");
    drop(res);

    let err = other
        .add_hook("beforeSave", sync_hook("x", Ok))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("beforeInsert"), "{err}");
}

/// The catalog summary has s3db.js's shape (vector `hooks-summary`).
#[tokio::test]
async fn the_catalog_summarises_hooks_like_s3db_js() {
    let db = connect("memory://").await;
    resource_with(
        &db,
        "hooked",
        &[
            ("beforeInsert", sync_hook("normalizeTitle", Ok)),
            ("beforeInsert", Hook::sync(None, 1, Ok)),
        ],
    )
    .await;
    let raw = db.store().get("s3db.json").await.unwrap();
    let ours: Value = serde_json::from_slice(&raw.body).unwrap();
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    let theirs: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/hooks-summary.s3db.json")).unwrap(),
    )
    .unwrap();
    let summary = &ours["resources"]["hooked"]["versions"]["v1"]["hooks"];
    assert_eq!(
        *summary,
        json!({"beforeInsert": {"count": 2, "handlers": [
            {"name": "normalizeTitle", "length": 1, "type": "function"},
            {"name": null, "length": 1, "type": "function"}]}})
    );
    // s3db.js names bound JS functions "bound <name>"; otherwise the same structure.
    let mut js = theirs["resources"]["hooked"]["versions"]["v1"]["hooks"].clone();
    for h in js["beforeInsert"]["handlers"].as_array_mut().unwrap() {
        let name = h["name"]
            .as_str()
            .unwrap()
            .trim_start_matches("bound ")
            .to_string();
        h["name"] = if name.is_empty() {
            Value::Null
        } else {
            json!(name)
        };
    }
    assert_eq!(*summary, js);
}
