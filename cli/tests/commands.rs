//! Every subcommand of `s3db` on a `file://` store, `--json` output parsed and checked.

mod common;

use std::time::Duration;

use common::{rt, run_with, Store};
use serde_json::{json, Value};

const USERS: &str = r#"{
    "attributes": {
        "name": "string|required",
        "email": "string|optional",
        "age": "number|optional",
        "address": {"city": "string|optional", "zip": "string|optional"}
    },
    "timestamps": true,
    "partitions": {"byCity": {"fields": {"address.city": "string"}}}
}"#;

fn users_store() -> Store {
    let store = Store::new();
    store.run(&["define", "users", USERS]).ok();
    store
}

#[test]
fn define_resources_describe() {
    let store = Store::new();
    let defined = store.json(&["--json", "define", "users", USERS]);
    assert_eq!(defined["name"], "users");
    assert_eq!(store.json(&["resources", "--json"]), json!(["users"]));
    assert_eq!(store.run(&["resources"]).ok().stdout(), "users\n");

    let d = store.json(&["describe", "users", "--json"]);
    assert_eq!(d, defined);
    assert_eq!(d["currentVersion"], "v1");
    assert_eq!(d["versions"], json!(["v1"]));
    assert_eq!(d["behavior"], "user-managed");
    assert_eq!(d["timestamps"], true);
    assert_eq!(d["attributes"]["name"], "string|required");
    assert_eq!(d["attributes"]["address"]["city"], "string|optional");
    assert_eq!(d["attributes"]["createdAt"], "datetime|optional");
    assert_eq!(
        d["partitions"]["byCity"],
        json!({"fields": {"address.city": "string"}})
    );
    assert!(d["partitions"]["byCreatedDate"].is_object());

    // Human output is the same document, indented.
    let human: Value = serde_json::from_str(&store.run(&["describe", "users"]).ok().stdout())
        .expect("describe prints JSON");
    assert_eq!(human, d);

    // A bare attribute map defines too; redefining makes a new version.
    store
        .run(&["define", "tags", r#"{"label": "string"}"#])
        .ok();
    let v2 = store.json(&[
        "define",
        "--json",
        "tags",
        r#"{"label": "string", "color": "string|optional"}"#,
    ]);
    assert_eq!(v2["currentVersion"], "v2");
    assert_eq!(v2["versions"], json!(["v1", "v2"]));
    let mut names: Vec<String> =
        serde_json::from_value(store.json(&["resources", "--json"])).unwrap();
    names.sort();
    assert_eq!(names, ["tags", "users"]);

    // `describe --json` output defines the same resource elsewhere.
    let other = Store::new();
    other
        .run_stdin(&["define", "users", "-"], &d.to_string())
        .ok();
    let copied = other.json(&["describe", "users", "--json"]);
    for field in [
        "attributes",
        "behavior",
        "timestamps",
        "partitions",
        "paranoid",
        "idSize",
    ] {
        assert_eq!(copied[field], d[field], "{field}");
    }
}

#[test]
fn incremental_ids_survive_describe_and_define() {
    let store = Store::new();
    store
        .run(&[
            "define",
            "orders",
            r#"{"attributes": {"total": "number"}, "idGenerator": "incremental:ORD-0001"}"#,
        ])
        .ok();
    assert_eq!(
        store.json(&["insert", "orders", r#"{"total": 1}"#, "--json"])["id"],
        "ORD-0001"
    );
    let d = store.json(&["describe", "orders", "--json"]);
    assert_eq!(d["idGenerator"]["prefix"], "ORD-");
    assert_eq!(d["idGenerator"]["padding"], 4);
    let other = Store::new();
    other
        .run_stdin(&["define", "orders", "-"], &d.to_string())
        .ok();
    assert_eq!(
        other.json(&["insert", "orders", r#"{"total": 2}"#, "--json"])["id"],
        "ORD-0001"
    );
}

#[test]
fn insert_get_update_delete() {
    let store = users_store();
    let ada = store.json(&[
        "insert",
        "--json",
        "users",
        r#"{"id": "ada", "name": "Ada", "age": 36, "address": {"city": "London"}}"#,
    ]);
    assert_eq!(ada["id"], "ada");
    assert_eq!(ada["age"], 36);
    assert!(ada["createdAt"].is_string());

    // From stdin, with a generated id.
    let bob = store
        .run_stdin(&["insert", "users", "-", "--json"], r#"{"name": "Bob"}"#)
        .ok()
        .json();
    let bob_id = bob["id"].as_str().expect("generated id").to_string();
    assert!(!bob_id.is_empty());

    let got = store.json(&["get", "users", "ada", "--json"]);
    assert_eq!(got["name"], "Ada");
    assert_eq!(got["address"]["city"], "London");
    // Human output: indented JSON.
    let human = store.run(&["get", "users", "ada"]).ok().stdout();
    assert!(human.contains("\n  \"name\": \"Ada\""), "{human}");
    assert_eq!(serde_json::from_str::<Value>(&human).unwrap(), got);

    let updated = store.json(&[
        "update",
        "users",
        "ada",
        r#"{"email": "ada@example.com", "address.zip": "N1"}"#,
        "--json",
    ]);
    assert_eq!(updated["email"], "ada@example.com");
    assert_eq!(updated["address"], json!({"city": "London", "zip": "N1"}));
    assert_eq!(
        store.json(&["get", "users", "ada", "--json"])["email"],
        "ada@example.com"
    );

    let deleted = store.json(&["delete", "users", "ada", "--json"]);
    assert_eq!(
        deleted,
        json!({"resource": "users", "id": "ada", "deleted": true})
    );
    store.run(&["get", "users", "ada"]).fails(11, "NOT_FOUND");
    assert_eq!(
        store.run(&["delete", "users", &bob_id]).ok().stdout(),
        format!("deleted users {bob_id}\n")
    );
}

fn seed(store: &Store) {
    let mut lines = String::new();
    for i in 0..30 {
        let city = if i % 3 == 0 { "Paris" } else { "Lima" };
        lines.push_str(
            &json!({"id": format!("u{i:02}"), "name": format!("user {i}"), "age": i, "address": {"city": city}})
                .to_string(),
        );
        lines.push('\n');
    }
    store
        .run_stdin(&["import", "users", "--quiet"], &lines)
        .ok();
}

#[test]
fn list_query_count_with_partitions() {
    let store = users_store();
    seed(&store);

    let all = store.json(&["list", "users", "--json"]);
    let all = all.as_array().expect("a JSON array");
    assert_eq!(all.len(), 30);
    let mut ids: Vec<&str> = all.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids[0], "u00");
    assert_eq!(ids[29], "u29");

    assert_eq!(
        store
            .json(&["list", "users", "--limit", "7", "--json"])
            .as_array()
            .unwrap()
            .len(),
        7
    );
    // Human: one compact JSON record per line.
    let lines = store.run(&["list", "users", "--limit", "3"]).ok().stdout();
    assert_eq!(lines.lines().count(), 3);
    for l in lines.lines() {
        assert!(serde_json::from_str::<Value>(l).unwrap()["id"].is_string());
    }

    let paris = store.json(&[
        "list",
        "users",
        "--partition",
        "byCity",
        "--value",
        "address.city=Paris",
        "--json",
    ]);
    let paris = paris.as_array().unwrap();
    assert_eq!(paris.len(), 10);
    assert!(paris.iter().all(|r| r["address"]["city"] == "Paris"));

    assert_eq!(
        store.json(&["count", "users", "--json"]),
        json!({"resource": "users", "count": 30})
    );
    assert_eq!(store.run(&["count", "users"]).ok().stdout(), "30\n");
    let lima = store.json(&[
        "count",
        "--json",
        "users",
        "--partition",
        "byCity",
        "--value",
        "address.city=Lima",
    ]);
    assert_eq!(lima["count"], 20);
    assert_eq!(lima["partition"], "byCity");

    let old = store.json(&["query", "users", r#"{"age": {"$gte": 25}}"#, "--json"]);
    let mut old: Vec<i64> = old
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["age"].as_i64().unwrap())
        .collect();
    old.sort();
    assert_eq!(old, vec![25, 26, 27, 28, 29]);

    let old_in_paris = store.json(&[
        "query",
        "users",
        r#"{"age": {"$gt": 20}}"#,
        "--partition",
        "byCity",
        "--value",
        "address.city=Paris",
        "--json",
    ]);
    let mut ages: Vec<i64> = old_in_paris
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["age"].as_i64().unwrap())
        .collect();
    ages.sort();
    assert_eq!(ages, vec![21, 24, 27]);
    let limited = store.json(&[
        "query",
        "users",
        r#"{"address.city": "Lima"}"#,
        "--limit",
        "4",
        "--json",
    ]);
    assert_eq!(limited.as_array().unwrap().len(), 4);
}

#[test]
fn lock_inspection() {
    let store = Store::new();
    assert_eq!(
        store.json(&["lock", "nightly", "--json"]),
        json!({"name": "nightly", "state": "free"})
    );
    assert_eq!(
        store.run(&["lock", "nightly"]).ok().stdout(),
        "nightly: free\n"
    );

    let rt = rt();
    let db = store.connect();
    let options = s3db::LockOptions {
        ttl: Duration::from_secs(120),
        timeout: Duration::from_secs(5),
    };
    let lock = rt.block_on(db.lock("nightly", options)).expect("lock");
    let held = store.json(&["lock", "nightly", "--json"]);
    assert_eq!(held["state"], "held");
    assert_eq!(held["holderId"], db.holder_id());
    assert_eq!(held["fencingToken"], lock.fencing_token());
    let expires = held["expiresAt"].as_str().unwrap();
    assert!(expires.ends_with('Z') && expires.len() == 24, "{expires}");
    let ms = held["expiresInMs"].as_i64().unwrap();
    assert!(ms > 60_000 && ms <= 120_000, "{ms}");
    let human = store.run(&["lock", "nightly"]).ok().stdout();
    assert!(
        human.starts_with(&format!(
            "nightly: held by {}, fencing token {}",
            db.holder_id(),
            lock.fencing_token()
        )),
        "{human}"
    );

    rt.block_on(lock.release()).expect("release");
    assert_eq!(store.json(&["lock", "nightly", "--json"])["state"], "free");
}

#[test]
fn sequences() {
    let store = Store::new();
    assert_eq!(store.json(&["sequences", "--json"]), json!([]));
    store.run(&["sequence", "invoices"]).fails(11, "NOT_FOUND");

    let rt = rt();
    let db = store.connect();
    let invoices = db.sequence("invoices").unwrap();
    let orders = db.sequence("orders").unwrap();
    for _ in 0..3 {
        rt.block_on(invoices.next()).unwrap();
    }
    rt.block_on(orders.next()).unwrap();
    let current = rt.block_on(invoices.current()).unwrap().unwrap();

    assert_eq!(
        store.json(&["sequence", "invoices", "--json"]),
        json!({"name": "invoices", "current": current})
    );
    assert_eq!(
        store.run(&["sequence", "invoices"]).ok().stdout(),
        format!("{current}\n")
    );
    let all = store.json(&["sequences", "--json"]);
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"invoices") && names.contains(&"orders"));
    let table = store.run(&["sequences"]).ok().stdout();
    assert!(table.starts_with("SEQUENCE"), "{table}");
    assert!(table.contains(&format!("invoices  {current}")), "{table}");
}

#[test]
fn heal_reports_the_log() {
    let store = users_store();
    assert_eq!(
        store.json(&["heal", "--json"]),
        json!({"healed": false, "log": []})
    );
    assert_eq!(
        store.run(&["heal"]).ok().stdout(),
        "catalog intact: nothing to heal\n"
    );

    // A trailing comma in s3db.json: the next connection heals it and says so.
    let rt = rt();
    let db = store.connect();
    let text = String::from_utf8(
        rt.block_on(db.store().get("s3db.json"))
            .unwrap()
            .body
            .to_vec(),
    )
    .unwrap();
    let corrupt = text.replacen("\"string|required\"", "\"string|required\",", 1);
    assert!(serde_json::from_str::<Value>(&corrupt).is_err());
    rt.block_on(db.store().put(
        "s3db.json",
        s3db::storage::PutRequest {
            body: bytes::Bytes::from(corrupt),
            content_type: Some("application/json".into()),
            ..Default::default()
        },
    ))
    .unwrap();
    let healed = store.json(&["heal", "--json"]);
    assert_eq!(healed["healed"], true, "{healed}");
    assert!(!healed["log"].as_array().unwrap().is_empty());
    // Healed for good.
    assert_eq!(store.json(&["heal", "--json"])["healed"], false);
    assert_eq!(store.json(&["resources", "--json"]), json!(["users"]));
}

#[test]
fn stats_command_and_flag() {
    let store = users_store();
    let s = store.json(&["stats", "--json"]);
    for k in ["get", "head", "put", "copy", "delete", "list", "total"] {
        assert!(s[k].is_u64(), "{k}: {s}");
    }
    assert!(
        s["total"].as_u64().unwrap() >= 1,
        "connecting reads s3db.json: {s}"
    );
    let table = store.run(&["stats"]).ok().stdout();
    assert!(table.starts_with("REQUEST"), "{table}");

    // --stats: the session's requests on stderr at exit, stdout untouched.
    let r = store.run(&["--stats", "insert", "users", r#"{"id": "x", "name": "X"}"#]);
    r.ok();
    assert_eq!(r.json()["id"], "x");
    let line = r.stderr();
    assert!(line.starts_with("requests: "), "{line}");
    assert!(line.contains("PUT "), "{line}");
    let r = store.run(&["--stats", "--json", "count", "users"]);
    let stats: Value = serde_json::from_str(r.ok().stderr().trim()).unwrap();
    assert!(stats["stats"]["list"].as_u64().unwrap() >= 1, "{stats}");
    // Also when the command fails.
    let r = store.run(&["get", "users", "missing", "--stats"]);
    r.fails(11, "NOT_FOUND");
    assert!(r.stderr().contains("requests: "), "{}", r.stderr());
}

#[test]
fn completions_for_bash() {
    // No store needed.
    let r = run_with(None, &["completions", "bash"], None);
    r.ok();
    let script = r.stdout();
    assert!(script.contains("_s3db()"), "{script}");
    assert!(script.contains("complete -F _s3db"), "{script}");
    for sub in ["export", "import", "sequences", "completions"] {
        assert!(script.contains(sub), "{sub}");
    }
    for shell in ["zsh", "fish"] {
        run_with(None, &["completions", shell], None).ok();
    }
}

#[test]
fn credentials_are_never_printed() {
    let secret = "SuperSecretKey123";
    let url = format!("http://AKIDEXAMPLE:{secret}@127.0.0.1:9/bucket/prefix");
    let r = run_with(Some(&url), &["resources"], None);
    assert_ne!(r.code(), 0);
    assert!(!r.stderr().contains(secret), "{}", r.stderr());
    assert!(!r.stdout().contains(secret));
    // Nor when a usage error quotes an argument.
    let r = run_with(None, &["get", "users", "x", &url], None);
    assert_eq!(r.code(), 2);
    assert!(!r.stderr().contains(secret), "{}", r.stderr());
    assert!(
        r.stderr().contains("http://***@127.0.0.1:9/bucket/prefix"),
        "{}",
        r.stderr()
    );
    // Not in --help either (the environment variable's value is hidden).
    let r = run_with(Some(&url), &["--help"], None);
    r.ok();
    assert!(!r.stdout().contains(secret));
}
