//! Plugin-owned attributes (s3db.js `addPluginAttribute`, docs/format.md §6.3): keys, catalog
//! versions and registry, every behavior, reconnects, removal and errors.

mod common;

use std::sync::Arc;

use common::{backends, connect};
use s3db::storage::{MemoryStore, ObjectStore, Store};
use s3db::{catalog, Database, ErrorKind, ResourceConfig};
use serde_json::{json, Value};

fn vector(name: &str) -> Value {
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    let text = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config(attributes: Value, behavior: &str) -> ResourceConfig {
    ResourceConfig::from_json(&json!({"attributes": attributes, "behavior": behavior})).unwrap()
}

const BEHAVIORS: [&str; 3] = ["user-managed", "body-overflow", "body-only"];

/// The vector's resources, defined and extended as its steps did, give the catalog s3db.js
/// wrote: same versions, hashes, attributes and schema registry.
#[tokio::test]
async fn catalog_versions_like_s3db_js() {
    let theirs = vector("plugin-attributes.s3db.json");
    let mem = MemoryStore::isolated();
    let db = Database::with_store(Store::new(Arc::new(mem.clone()), ""))
        .await
        .unwrap();
    for behavior in BEHAVIORS {
        let name = format!("pa-{behavior}");
        let res = db
            .create_resource_with(
                &name,
                config(
                    json!({"title": "string", "body": "string|optional"}),
                    behavior,
                ),
            )
            .await
            .unwrap();
        let map = res
            .add_plugin_attribute("auditedBy", &json!("string|optional"), "audit")
            .await
            .unwrap();
        assert_eq!(Value::Object(map), json!({"auditedBy": "pkdv"}));
        let map = res
            .add_plugin_attribute(
                "score",
                &json!({"type": "number", "optional": true}),
                "ranker",
            )
            .await
            .unwrap();
        assert_eq!(
            Value::Object(map),
            json!({"auditedBy": "pkdv", "score": "p4sy"})
        );
    }
    let ours: Value = serde_json::from_slice(&mem.get("s3db.json").await.unwrap().body).unwrap();
    for behavior in BEHAVIORS {
        let name = format!("pa-{behavior}");
        let (o, t) = (&ours["resources"][&name], &theirs["resources"][&name]);
        // Each call persists a version (s3db.js writes one at its next catalog upload).
        assert_eq!(o["currentVersion"], "v3");
        assert_eq!(t["currentVersion"], "v2");
        assert_eq!(
            o["versions"]["v2"]["attributes"]["auditedBy"],
            "string|optional"
        );
        assert_eq!(o["schemaRegistry"], t["schemaRegistry"], "{name}");
        assert_eq!(o["versions"]["v1"], {
            let mut v1 = t["versions"]["v1"].clone();
            v1["createdAt"] = o["versions"]["v1"]["createdAt"].clone();
            v1
        });
        // `__pluginCreated__` is the time of the call; with s3db.js's, the hash is its hash.
        let mut attrs = o["versions"]["v3"]["attributes"].clone();
        assert!(attrs["score"]["__pluginCreated__"].as_i64().unwrap() > 1_700_000_000_000);
        attrs["score"]["__pluginCreated__"] =
            t["versions"]["v2"]["attributes"]["score"]["__pluginCreated__"].clone();
        assert_eq!(attrs, t["versions"]["v2"]["attributes"], "{name}");
        assert_eq!(
            catalog::definition_hash(&attrs, behavior, &json!({})),
            t["versions"]["v2"]["hash"].as_str().unwrap()
        );
        assert_eq!(
            o["versions"]["v3"]["hash"],
            json!(catalog::definition_hash(
                &o["versions"]["v3"]["attributes"],
                behavior,
                &json!({})
            ))
        );
        let mut v3 = o["versions"]["v3"].clone();
        let mut v2 = t["versions"]["v2"].clone();
        for v in [&mut v3, &mut v2] {
            for k in ["hash", "attributes", "createdAt"] {
                v.as_object_mut().unwrap().remove(k);
            }
        }
        assert_eq!(v3, v2, "{name}: the other settings");
        // Deliberate difference: the keys are kept in the registry (docs/compat.md).
        assert_eq!(
            o["pluginSchemaRegistry"],
            json!({"audit": {"mapping": {"auditedBy": "pkdv"}, "burned": []},
                   "ranker": {"mapping": {"score": "p4sy"}, "burned": []}})
        );
    }
}

/// A plugin calls addPluginAttribute at every start: the same call writes nothing.
#[tokio::test]
async fn adding_the_same_attribute_again_writes_nothing() {
    let db = connect("memory://").await;
    let res = db
        .create_resource("again", &json!({"title": "string"}))
        .await
        .unwrap();
    res.add_plugin_attribute("score", &json!({"type": "number"}), "ranker")
        .await
        .unwrap();
    let version = res.schema().version.clone();
    db.reset_stats();
    res.add_plugin_attribute("score", &json!({"type": "number"}), "ranker")
        .await
        .unwrap();
    assert_eq!(db.stats().put, 0);
    assert_eq!(res.schema().version, version);

    // Nor does redefining the resource with its own attributes: the plugin's stay.
    let again = db
        .create_resource("again", &json!({"title": "string"}))
        .await
        .unwrap();
    assert_eq!(db.stats().put, 0);
    assert_eq!(again.schema().version, version);
    assert_eq!(Value::Object(again.plugin_map()), json!({"score": "p4sy"}));
}

/// Every behavior, every backend: plugin fields land under their `p…` keys, `_pluginmap` is
/// written where a reader needs it, and a new connection reads them without the plugin.
#[tokio::test(flavor = "multi_thread")]
async fn plugin_fields_round_trip_on_every_backend() {
    let big = "x".repeat(2500);
    for url in backends() {
        for behavior in BEHAVIORS {
            let db = connect(&url).await;
            let name = format!("pa-{behavior}");
            let res = db
                .create_resource_with(
                    &name,
                    config(
                        json!({"title": "string", "body": "string|optional"}),
                        behavior,
                    ),
                )
                .await
                .unwrap();
            res.add_plugin_attribute("auditedBy", &json!("string|optional"), "audit")
                .await
                .unwrap();
            res.add_plugin_attribute(
                "score",
                &json!({"type": "number", "optional": true}),
                "ranker",
            )
            .await
            .unwrap();
            res.add_plugin_attribute("seen", &json!("number|optional"), "ranker")
                .await
                .unwrap();
            for (id, body) in [("small", None), ("big", Some(big.clone()))] {
                let mut rec = json!({"id": id, "title": "T", "auditedBy": "ålice", "score": 7.25, "seen": 62});
                if let Some(b) = &body {
                    rec["body"] = json!(b);
                }
                res.insert(rec.clone()).await.unwrap();
                let raw = db
                    .store()
                    .get(&format!("resource={name}/data/id={id}"))
                    .await
                    .unwrap();
                let meta = &raw.head.metadata;
                let in_body = String::from_utf8_lossy(&raw.body).to_string();
                let key_holds =
                    |k: &str| meta.contains_key(k) || in_body.contains(&format!("\"{k}\""));
                assert!(
                    key_holds("pkdv") && key_holds("p4sy"),
                    "{url} {name} {id}: {meta:?} {in_body}"
                );
                assert!(!meta.contains_key("auditedby") && !meta.contains_key("score"));
                let has_map = meta.contains_key("_pluginmap");
                let wants_map = behavior != "user-managed" || body.is_some();
                assert_eq!(has_map, wants_map, "{url} {name} {id}: {meta:?}");
                if let Some(map) = meta.get("_pluginmap") {
                    let map: Value = serde_json::from_str(map).unwrap();
                    assert_eq!(map["auditedBy"], "pkdv");
                    assert_eq!(map["score"], "p4sy");
                }
                assert_eq!(res.get(id).await.unwrap(), rec, "{url} {name} {id}");
            }
            // A new connection that never registered the plugin attributes.
            let fresh = connect(&url).await;
            let r = fresh.resource(&name).await.unwrap();
            assert_eq!(
                r.get("small").await.unwrap()["score"],
                json!(7.25),
                "{url} {name}"
            );
            assert_eq!(r.get("big").await.unwrap()["auditedBy"], json!("ålice"));
            let updated = r.update("small", json!({"score": 8})).await.unwrap();
            assert_eq!(updated["score"], json!(8));
            assert_eq!(res.get("small").await.unwrap()["score"], json!(8));
        }
    }
}

#[tokio::test]
async fn removed_plugin_attributes_burn_their_key_and_old_records_still_read() {
    let db = connect("memory://").await;
    let res = db
        .create_resource("burn", &json!({"title": "string"}))
        .await
        .unwrap();
    res.add_plugin_attribute("tag", &json!("string|optional"), "tagger")
        .await
        .unwrap();
    res.insert(json!({"id": "a", "title": "t", "tag": "old"}))
        .await
        .unwrap();
    assert!(res.remove_plugin_attribute("tag", "tagger").await.unwrap());
    assert!(!res.remove_plugin_attribute("tag", "tagger").await.unwrap());
    assert_eq!(res.schema().version, "v3");
    assert!(res.plugin_map().is_empty());
    assert_eq!(
        res.get("a").await.unwrap(),
        json!({"id": "a", "title": "t", "tag": "old"})
    );
    let err = res
        .insert(json!({"id": "b", "title": "t", "tag": "new"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);

    // Re-adding reuses the same key.
    res.add_plugin_attribute("tag", &json!("string|optional"), "tagger")
        .await
        .unwrap();
    assert_eq!(
        Value::Object(res.plugin_map()),
        json!({"tag": catalog_key("tagger", "tag")})
    );
}

fn catalog_key(plugin: &str, attr: &str) -> String {
    s3db::schema::plugin_key(plugin, attr)
}

#[tokio::test]
async fn plugin_attribute_errors_are_typed_and_change_nothing() {
    let db = connect("memory://").await;
    let res = db
        .create_resource("errs", &json!({"title": "string"}))
        .await
        .unwrap();
    res.add_plugin_attribute("score", &json!("number|optional"), "ranker")
        .await
        .unwrap();
    let version = res.schema().version.clone();
    db.reset_stats();
    let cases: [(&str, Value, &str, ErrorKind); 6] = [
        ("title", json!("string"), "p", ErrorKind::Conflict),
        ("score", json!("number"), "other", ErrorKind::Conflict),
        ("bad", json!("strng|optional"), "p", ErrorKind::Validation),
        ("_hidden", json!("string"), "p", ErrorKind::Validation),
        ("a.b", json!("string"), "p", ErrorKind::Validation),
        ("x", json!("string"), "../p", ErrorKind::InvalidArgument),
    ];
    for (name, def, plugin, kind) in cases {
        let err = res
            .add_plugin_attribute(name, &def, plugin)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{name} {plugin}: {err}");
    }
    let err = res
        .remove_plugin_attribute("score", "other")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(db.stats().put, 0);
    assert_eq!(res.schema().version, version);

    // Plugin fields are validated like any other.
    let err = res
        .insert(json!({"title": "t", "score": "high"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Validation);
    assert!(err.message().contains("score"), "{err}");
}

/// Two processes' plugins registering attributes at once: both land (catalog CAS).
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_plugins_register_without_losing_each_other() {
    let mem = MemoryStore::isolated();
    let open = || async {
        Database::with_store(Store::new(Arc::new(mem.clone()), ""))
            .await
            .unwrap()
    };
    let setup = open().await;
    setup
        .create_resource("shared", &json!({"title": "string"}))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let db = open().await;
        tasks.push(tokio::spawn(async move {
            let res = db.resource("shared").await.unwrap();
            res.add_plugin_attribute(
                &format!("f{i}"),
                &json!("string|optional"),
                &format!("plugin{i}"),
            )
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let db = open().await;
    let res = db.resource("shared").await.unwrap();
    let map = res.plugin_map();
    assert_eq!(map.len(), 6, "{map:?}");
    assert_eq!(res.schema().version, "v7");
}
