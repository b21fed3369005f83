//! Replays the s3db.js 21.6.2 vectors (tests/vectors): every recorded record write is
//! reproduced byte for byte, and every stored record reads back as s3db.js returned it,
//! except the deliberate differences listed in docs/compat.md.

use std::sync::Arc;

use bytes::Bytes;
use s3db::storage::{MemoryStore, Metadata, ObjectStore, PutRequest, Store};
use s3db::{ConnectOptions, Database};
use serde_json::{Map, Value};

fn vectors_dir() -> String {
    std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string())
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{name}", vectors_dir())).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Scenarios whose records this engine reproduces, and the passphrase each used.
const SCENARIOS: &[&str] = &[
    "basic",
    "nested",
    "arrays",
    "unicode",
    "ip",
    "embedding",
    "types-extra",
    "behaviors",
    "partitions",
    "timestamps",
    "secret",
    "schema-evolution",
    "memory-keyprefix",
    "fs-keyprefix",
    "hooks-summary",
    "versioning",
    "metadata-lock",
    "content",
    "incremental",
    "plugin-attributes",
];

/// (scenario, record key, why) — records not compared, with the reason (docs/compat.md).
const SKIPPED_READS: &[(&str, &str, &str)] = &[
    (
        "basic",
        "resource=users/data/id=user-0002",
        "s3db.js stored the number 1e-7 as \"\" (data loss); it reads back as 0",
    ),
    (
        "types-extra",
        "resource=ty-buf/data/id=x",
        "buffer fields are stored per byte by 21.6.2 (unusable)",
    ),
    (
        "types-extra",
        "resource=ty-bits/data/id=x",
        "bits fields are stored per byte by 21.6.2 (unusable)",
    ),
];

/// Writes not compared byte for byte, with the reason.
const SKIPPED_WRITES: &[(&str, &str, &str)] = &[
    (
        "basic",
        "resource=users/data/id=user-0002",
        "s3db.js stores 1e-7 as \"\"; we store 0.0000001",
    ),
    (
        "types-extra",
        "resource=ty-buf/data/id=x",
        "buffer type is refused (21.6.2 cannot store it)",
    ),
    (
        "types-extra",
        "resource=ty-bits/data/id=x",
        "bits type is refused (21.6.2 cannot store it)",
    ),
    (
        "schema-evolution",
        "resource=evolve/data/id=old",
        "written under v1; the recorded catalog is v2 (the read test covers it)",
    ),
    (
        "behaviors",
        "resource=bh-truncate-data/data/id=big",
        "the recorded result is the truncated record; the original input is not in the vector",
    ),
];

fn strip_undefined(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !(v.is_null() || v.is_object() && v.get("$undefined").is_some()))
                .map(|(k, v)| (k.clone(), strip_undefined(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_undefined).collect()),
        other => other.clone(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fn metadata_of(v: &Value) -> Metadata {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn body_of(o: &Value) -> Vec<u8> {
    let body = o["body"].as_str().unwrap_or_default();
    if o["bodyEncoding"] == "base64" {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    } else {
        body.as_bytes().to_vec()
    }
}

fn passphrase(scenario: &str) -> Option<String> {
    (scenario == "secret").then(|| "vector-passphrase".to_string())
}

fn record_part(key: &str) -> Option<(String, String, String)> {
    let at = key.find("resource=")?;
    let prefix = key[..at].to_string();
    let rest = &key[at + "resource=".len()..];
    let (resource, tail) = rest.split_once("/data/id=")?;
    Some((prefix, resource.to_string(), tail.to_string()))
}

/// `addPluginAttribute('name', <definition>, 'plugin')` calls recorded in step labels, by the
/// label prefix naming the resource's behavior (`"body-only: addPluginAttribute(…)"`).
fn plugin_attribute_calls(steps: &[Value]) -> Vec<(String, String, Value, String)> {
    let mut out = Vec::new();
    for s in steps {
        let label = s["label"].as_str().unwrap_or_default();
        let Some((prefix, call)) = label.split_once(": addPluginAttribute(") else {
            continue;
        };
        let args = call.trim_end_matches(')');
        let quoted = |t: &str| t.trim().trim_matches('\'').to_string();
        let name = quoted(args.split(',').next().unwrap());
        let plugin = quoted(args.rsplit(',').next().unwrap());
        let middle = args[args.find(',').unwrap() + 1..args.rfind(',').unwrap()].trim();
        let definition = if middle.starts_with('\'') {
            Value::String(quoted(middle))
        } else {
            // A JS object literal: quote its keys and strings.
            let mut json = String::new();
            for part in middle.replace('\'', "\"").split_inclusive(['{', ',', ' ']) {
                json.push_str(part);
            }
            let mut fixed = String::new();
            let mut word = String::new();
            for c in json.chars() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    word.push(c);
                    continue;
                }
                if !word.is_empty() {
                    if c == ':' && !fixed.ends_with('"') {
                        fixed.push_str(&format!("\"{word}\""));
                    } else {
                        fixed.push_str(&word);
                    }
                    word.clear();
                }
                fixed.push(c);
            }
            fixed.push_str(&word);
            serde_json::from_str(&fixed).unwrap_or_else(|e| panic!("{middle}: {e}"))
        };
        out.push((prefix.to_string(), name, definition, plugin));
    }
    out
}

/// Registers the plugin attributes a scenario's plugins added to `resource` (a plugin does this
/// at every start) and returns the plugin map of the last call.
async fn register_plugin_attributes(
    db: &Database,
    steps: &[Value],
    resource: &str,
) -> Option<Value> {
    let res = db.resource(resource).await.ok()?;
    let mut last = None;
    for (prefix, name, definition, plugin) in plugin_attribute_calls(steps) {
        if resource.ends_with(&prefix) {
            let map = res
                .add_plugin_attribute(&name, &definition, &plugin)
                .await
                .unwrap();
            last = Some(Value::Object(map));
        }
    }
    last
}

/// A memory store holding the vector's catalog and one record object.
async fn store_with(scenario: &str, prefix: &str, objects: &[&Value]) -> (MemoryStore, Database) {
    let mem = MemoryStore::isolated();
    let catalog = std::fs::read(format!("{}/{scenario}.s3db.json", vectors_dir())).unwrap();
    mem.put(
        &format!("{prefix}s3db.json"),
        PutRequest {
            body: Bytes::from(catalog),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for o in objects {
        let req = PutRequest {
            body: Bytes::from(body_of(o)),
            metadata: metadata_of(&o["metadata"]),
            content_type: o["contentType"].as_str().map(str::to_string),
            ..Default::default()
        };
        mem.put(o["key"].as_str().unwrap(), req).await.unwrap();
    }
    let options = ConnectOptions {
        passphrase: passphrase(scenario),
    };
    let db = Database::with_store_and(Store::new(Arc::new(mem.clone()), prefix), options)
        .await
        .unwrap();
    (mem, db)
}

/// Steps with the resource each one acted on: a label prefix (`"uuid: insert x"`) is bound
/// to the resource created just before its first use.
fn steps_by_resource(steps: &[Value]) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut pending = false;
    let mut bound = std::collections::HashMap::new();
    for s in steps {
        let label = s["label"].as_str().unwrap_or_default();
        if label.contains("createResource") {
            current = s["input"]["name"].as_str().map(str::to_string).or(current);
            pending = true;
            continue;
        }
        let prefix = label
            .split_once(": ")
            .map(|p| p.0)
            .unwrap_or("")
            .to_string();
        if pending {
            bound.insert(prefix.clone(), current.clone());
            pending = false;
        }
        let resource = bound.get(&prefix).cloned().unwrap_or(current.clone());
        out.push((resource, s.clone()));
    }
    out
}

fn is_write(label: &str) -> bool {
    ["insert", "update", "replace", "patch"]
        .iter()
        .any(|w| label.contains(w))
}

/// The last value s3db.js returned for a record from a write.
fn last_written(steps: &[Value], resource: &str, id: &str) -> Option<Value> {
    steps_by_resource(steps)
        .into_iter()
        .rev()
        .find(|(r, s)| {
            r.as_deref().is_none_or(|r| r == resource)
                && is_write(s["label"].as_str().unwrap_or_default())
                && s["result"]["id"] == id
        })
        .map(|(_, s)| s["result"].clone())
}

/// Adjusts what s3db.js returned for what it cannot read back (docs/compat.md): the strings
/// "null"/"undefined" are lost, and a string field holding JSON text is returned parsed.
fn comparable(expected: &Value, ours: &Value) -> Value {
    let mut e = strip_undefined(expected);
    if let (Some(m), Some(o)) = (e.as_object_mut(), ours.as_object()) {
        m.retain(|k, v| {
            !k.starts_with('_') && !k.starts_with('$') && v != "null" && v != "undefined"
        });
        for (k, v) in m.iter_mut() {
            if let (Some(Value::String(ours)), Value::String(theirs)) = (o.get(k), &v) {
                // `date|convert:true` comes back quoted from s3db.js.
                if theirs.trim_matches('"') == ours {
                    *v = Value::String(ours.clone());
                }
            }
            if let Some(Value::String(s)) = o.get(k) {
                if (v.is_object() || v.is_array())
                    && serde_json::from_str::<Value>(s).ok().as_ref() == Some(v)
                {
                    *v = Value::String(s.clone());
                }
            }
        }
    }
    e
}

#[tokio::test]
async fn every_stored_record_reads_back_as_s3db_js_wrote_it() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let v = load(&format!("{scenario}.json"));
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        for o in v["objects"].as_array().unwrap() {
            let key = o["key"].as_str().unwrap();
            let Some((prefix, resource, id)) = record_part(key) else {
                continue;
            };
            if key.contains("/partition=")
                || SKIPPED_READS
                    .iter()
                    .any(|(s, k, _)| s == scenario && *k == key)
            {
                continue;
            }
            let Some(expected) = last_written(&steps, &resource, &id) else {
                continue;
            };
            let (_, db) = store_with(scenario, &prefix, &[o]).await;
            register_plugin_attributes(&db, &steps, &resource).await;
            let res = db.resource(&resource).await.unwrap();
            let ours = res.get(&id).await.unwrap();
            let expected = comparable(&expected, &ours);
            if same(&strip_undefined(&ours), &expected) {
                checked += 1;
            } else {
                failures.push(format!(
                    "{scenario} {key}:\n   ours   {ours}\n   s3db.js {expected}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 55, "only {checked} records checked");
    eprintln!("read back {checked} records");
}

#[tokio::test]
async fn every_recorded_insert_is_reproduced_byte_for_byte() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let v = load(&format!("{scenario}.json"));
        let steps = v["steps"].as_array().cloned().unwrap_or_default();
        let ops = v["operations"].as_array().cloned().unwrap_or_default();
        for op in &ops {
            if op["op"] != "putObject" || op["ifNoneMatch"] != "*" {
                continue;
            }
            let key = op["key"].as_str().unwrap();
            let Some((_, resource, id)) = record_part(key) else {
                continue;
            };
            let full_key = v["objects"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|o| o["key"].as_str())
                .find(|k| k.ends_with(key))
                .unwrap_or(key)
                .to_string();
            if SKIPPED_WRITES
                .iter()
                .any(|(s, k, _)| s == scenario && (*k == key || *k == full_key))
            {
                continue;
            }
            let prefix = full_key[..full_key.len() - key.len()].to_string();
            let Some(mut input) = steps_by_resource(&steps)
                .into_iter()
                .find(|(r, s)| {
                    r.as_deref().is_none_or(|r| r == resource)
                        && s["label"].as_str().is_some_and(|l| l.contains("insert"))
                        && s["result"]["id"] == id
                })
                .map(|(_, s)| strip_undefined(&s["result"]))
            else {
                continue;
            };
            let (mem, db) = store_with(scenario, &prefix, &[]).await;
            register_plugin_attributes(&db, &steps, &resource).await;
            let res = db.resource(&resource).await.unwrap();
            // The recorded result shows string fields holding JSON text parsed (a JS reader quirk),
            // bookkeeping flags, and strings s3db.js cannot read back (refused by this engine).
            if let Some(m) = input.as_object_mut() {
                m.retain(|k, v| !k.starts_with('$') && v != "null" && v != "undefined");
                for (k, v) in m.iter_mut() {
                    let is_string = res
                        .schema()
                        .field(k)
                        .is_some_and(|f| f.rule.kind == s3db::schema::types::Kind::String);
                    if is_string && (v.is_object() || v.is_array()) {
                        *v = Value::String(v.to_string());
                    }
                }
            }
            let content_type = op["contentType"].as_str().filter(|c| !c.contains("json"));
            let inserted = match content_type {
                Some(ct) => {
                    res.insert_with_content(input.clone(), Bytes::from(body_of(op)), ct)
                        .await
                }
                None => res.insert(input.clone()).await,
            };
            if let Err(e) = inserted {
                failures.push(format!("{scenario} {key}: insert failed: {e}"));
                continue;
            }
            let stored = mem.get(&full_key).await.unwrap();
            let mut want: Map<String, Value> =
                op["metadata"].as_object().cloned().unwrap_or_default();
            // s3db.js stores "undefined" for absent custom-typed optionals; we store nothing.
            want.retain(|_, v| {
                v != "undefined" && v != "null" && !(v.is_object() && v.get("$undefined").is_some())
            });
            let want = s3db::schema::Schema::metadata_of(&want);
            let mut ours = stored.head.metadata.clone();
            let secret_keys: Vec<String> = if *scenario == "secret" {
                want.iter()
                    .filter(|(_, v)| v.len() > 40 && !v.contains(' '))
                    .map(|(k, _)| k.clone())
                    .collect()
            } else {
                Vec::new()
            };
            for k in &secret_keys {
                ours.remove(k);
            }
            let mut want = want;
            for k in &secret_keys {
                want.remove(k);
            }
            let mut want_body = body_of(op);
            if *scenario == "plugin-attributes" {
                // s3db.js versions the catalog at its next upload, after these writes; this
                // engine at once, so the records carry the version with the plugin attributes.
                let current = res.schema().version.clone();
                want.insert("_v".into(), current.clone());
                want_body = String::from_utf8(want_body)
                    .unwrap()
                    .replace("\"_v\":\"v1\"", &format!("\"_v\":\"{current}\""))
                    .into_bytes();
            }
            if ours != want
                || (*scenario != "secret" && stored.body.as_ref() != want_body.as_slice())
            {
                failures.push(format!(
                    "{scenario} {key}:\n   ours    {ours:?} body {:?}\n   s3db.js {want:?} body {:?}",
                    String::from_utf8_lossy(&stored.body),
                    String::from_utf8_lossy(&want_body)
                ));
            } else {
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 50, "only {checked} writes checked");
    eprintln!("reproduced {checked} writes");
}

/// Connection strings parse as s3db.js parses them, except where docs/compat.md says why not:
/// `?region=` is honoured (s3db.js ignores it), credentials are required (no default AWS
/// chain is built in), and `file://` keeps the path as given (s3db.js resolves it).
#[test]
fn connection_strings_parse_like_s3db_js() {
    use s3db::storage::{ConnectionString, Endpoint};
    let v = load("connection-strings.json");
    let mut checked = 0;
    for case in v["parsed"].as_array().unwrap() {
        let input = case["input"].as_str().unwrap();
        let want = &case["parsed"];
        let parsed = ConnectionString::parse(input);
        match parsed {
            Err(e) => {
                assert_eq!(
                    want["accessKeyId"], "",
                    "{input}: only credential-less strings are refused ({e})"
                );
                assert_eq!(e.kind(), s3db::ErrorKind::InvalidArgument);
            }
            Ok(c) => {
                match &c.endpoint {
                    Endpoint::S3 {
                        endpoint,
                        bucket,
                        region,
                        access_key,
                        secret_key,
                        session_token,
                    } => {
                        assert_eq!(bucket, want["bucket"].as_str().unwrap(), "{input}");
                        assert_eq!(c.prefix, want["keyPrefix"].as_str().unwrap(), "{input}");
                        let ep = endpoint
                            .clone()
                            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                        assert_eq!(ep, want["endpoint"].as_str().unwrap(), "{input}");
                        assert_eq!(access_key, want["accessKeyId"].as_str().unwrap(), "{input}");
                        assert_eq!(
                            secret_key,
                            want["secretAccessKey"].as_str().unwrap(),
                            "{input}"
                        );
                        assert_eq!(
                            session_token.as_deref(),
                            want["sessionToken"].as_str(),
                            "{input}"
                        );
                        let limit = want["clientOptions"]["metadataLimit"].as_u64().unwrap_or(
                            if input.contains(".r2.cloudflarestorage.com") {
                                8192
                            } else {
                                2047
                            },
                        );
                        assert_eq!(c.metadata_limit as u64, limit, "{input}");
                    }
                    Endpoint::Memory { bucket } => {
                        let db = v["databaseMemoryClient"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|d| d["input"] == input)
                            .unwrap();
                        assert_eq!(bucket, db["clientBucket"].as_str().unwrap(), "{input}");
                        assert_eq!(c.prefix, db["clientKeyPrefix"].as_str().unwrap(), "{input}");
                    }
                    Endpoint::File { root } => {
                        let base = want["basePath"].as_str().unwrap();
                        if input.starts_with("file:///") {
                            assert_eq!(root.to_str().unwrap(), base, "{input}");
                        } else {
                            assert!(
                                base.ends_with(root.to_str().unwrap().trim_start_matches('.')),
                                "{input}"
                            );
                        }
                        assert_eq!(c.prefix, "");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "{checked}");
    for d in v["databaseMemoryClient"].as_array().unwrap() {
        let c = ConnectionString::parse(d["input"].as_str().unwrap()).unwrap();
        assert_eq!(c.prefix, d["clientKeyPrefix"].as_str().unwrap());
    }
}

/// Every scenario in the vector directory is replayed by some test; a new vector file cannot
/// be silently ignored.
#[test]
fn every_vector_scenario_is_covered() {
    const ELSEWHERE: &[(&str, &str)] = &[
        (
            "connection-strings",
            "connection_strings_parse_like_s3db_js (this file)",
        ),
        (
            "coordinator",
            "coordinator::tests::bodies_match_the_s3db_js_vector (core/src/coordinator.rs)",
        ),
        ("plugin-storage", "core/tests/plugin_storage.rs"),
    ];
    let mut names: Vec<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && !n.ends_with(".s3db.json"))
        .map(|n| n.trim_end_matches(".json").to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 23, "{names:?}");
    for name in &names {
        let covered =
            SCENARIOS.contains(&name.as_str()) || ELSEWHERE.iter().any(|(s, _)| s == name);
        assert!(covered, "vector {name} is replayed by no test");
    }
    for (name, test) in ELSEWHERE {
        if test.starts_with("core/tests/") {
            let path = format!("{}/../{test}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(
                text.contains(&format!("{name}.json")),
                "{test} does not load {name}.json"
            );
        }
    }
}

/// s3db.js summarises a resource's hooks in the catalog (vector `hooks-summary`); the summary
/// is read and kept: the same definition writes nothing, so it is never dropped.
#[tokio::test]
async fn hook_summaries_are_kept() {
    let (mem, db) = store_with("hooks-summary", "", &[]).await;
    let before = mem.get("s3db.json").await.unwrap().body;
    db.reset_stats();
    db.create_resource("hooked", &serde_json::json!({"title": "string"}))
        .await
        .unwrap();
    assert_eq!(db.stats().put, 0);
    let after = mem.get("s3db.json").await.unwrap().body;
    assert_eq!(after, before);
    let catalog: Value = serde_json::from_slice(&after).unwrap();
    assert_eq!(
        catalog["resources"]["hooked"]["versions"]["v1"]["hooks"]["beforeInsert"]["count"],
        2
    );
    // A redefinition adds a version and leaves v1, summary included, as it was.
    db.create_resource(
        "hooked",
        &serde_json::json!({"title": "string", "n": "number|optional"}),
    )
    .await
    .unwrap();
    let catalog: Value = serde_json::from_slice(&mem.get("s3db.json").await.unwrap().body).unwrap();
    let theirs: Value = serde_json::from_slice(&before).unwrap();
    assert_eq!(
        catalog["resources"]["hooked"]["versions"]["v1"],
        theirs["resources"]["hooked"]["versions"]["v1"]
    );
    assert_eq!(catalog["resources"]["hooked"]["currentVersion"], "v2");
}
