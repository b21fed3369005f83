//! `export` → `import` between two `file://` stores (10,000 records, NDJSON and CSV), and
//! import's per-record failure reporting.

mod common;

use std::collections::BTreeMap;
use std::time::Instant;

use common::{rt, Store};
use serde_json::{json, Value};

const RECORDS: usize = 10_000;

const ITEMS: &str = r#"{
    "attributes": {
        "name": "string|required",
        "code": "string|optional",
        "note": "string|optional",
        "qty": "number|optional",
        "active": "boolean|optional",
        "tags": "array|items:string|optional",
        "meta": "json|optional",
        "address": {"city": "string|optional", "zip": "string|optional"}
    },
    "timestamps": true,
    "partitions": {"byCity": {"fields": {"address.city": "string"}}}
}"#;

/// Records with the awkward cases: numeric-looking strings, commas, quotes and newlines,
/// the empty string, nested objects, arrays, JSON values, absent fields.
fn record(i: usize) -> Value {
    let city = ["Paris", "Lima", "Oslo"][i % 3];
    let mut r = json!({
        "id": format!("item-{i:05}"),
        "name": format!("item {i}"),
        "qty": i as f64 / 4.0,
        "active": i.is_multiple_of(2),
        "address": {"city": city},
    });
    match i % 7 {
        0 => r["code"] = json!(format!("{i:05}")),
        1 => r["code"] = json!(i.to_string()),
        2 => r["code"] = json!("true"),
        3 => r["note"] = json!(format!("a, \"quoted\"\nline {i}")),
        4 => r["note"] = json!(""),
        5 => r["tags"] = json!(["x", format!("t{i}")]),
        _ => r["meta"] = json!({"k": i, "nested": {"ok": true}}),
    }
    if i.is_multiple_of(5) {
        r["address"]["zip"] = json!(format!("{:04}", i % 10_000));
    }
    r
}

fn by_id(records: Vec<Value>) -> BTreeMap<String, Value> {
    records
        .into_iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect()
}

fn all_records(store: &Store, resource: &str) -> BTreeMap<String, Value> {
    let rt = rt();
    let db = store.connect();
    let r = rt.block_on(db.resource(resource)).unwrap();
    by_id(rt.block_on(r.list()).unwrap())
}

fn source() -> Store {
    let store = Store::new();
    store.run(&["define", "items", ITEMS]).ok();
    let rt = rt();
    let db = store.connect();
    let items = rt.block_on(db.resource("items")).unwrap();
    let records: Vec<Value> = (0..RECORDS).map(record).collect();
    for chunk in records.chunks(1000) {
        for item in rt.block_on(items.insert_many(chunk.to_vec())) {
            assert!(item.error.is_none(), "{item:?}");
        }
    }
    store
}

fn round_trip(format: &str) {
    let t = Instant::now();
    let src = source();
    let expected = all_records(&src, "items");
    eprintln!(
        "{format}: source store of {RECORDS} records set up in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(expected.len(), RECORDS);

    // The definition travels too.
    let dst = Store::new();
    let def = src.run(&["describe", "items", "--json"]).ok().stdout();
    dst.run_stdin(&["define", "items", "-"], &def).ok();

    let dir = common::tempdir();
    let file = dir.path().join(format!("items.{format}"));
    let file = file.to_str().unwrap();

    let started = Instant::now();
    let exported = src.json(&[
        "export", "items", "--format", format, "--output", file, "--json",
    ]);
    let export_secs = started.elapsed().as_secs_f64();
    assert_eq!(exported["exported"], RECORDS);
    assert_eq!(exported["format"], format);

    let started = Instant::now();
    let imported = dst.json(&[
        "import", "items", "--format", format, "--input", file, "--json",
    ]);
    let import_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        imported,
        json!({"resource": "items", "format": format, "read": RECORDS, "imported": RECORDS,
               "failed": 0, "seconds": imported["seconds"]})
    );
    eprintln!(
        "{format}: exported {RECORDS} records in {export_secs:.2}s, imported in {import_secs:.2}s"
    );

    let t = Instant::now();
    let got = all_records(&dst, "items");
    let read_back = t.elapsed().as_secs_f64();
    eprintln!("{format}: target records read back in {read_back:.2}s");
    assert_eq!(got.len(), RECORDS);
    for (id, want) in &expected {
        assert_eq!(
            got.get(id),
            Some(want),
            "record {id} differs after the {format} round trip"
        );
    }
    // Partition references were written by the import.
    let paris = dst.json(&[
        "count",
        "items",
        "--partition",
        "byCity",
        "--value",
        "address.city=Paris",
        "--json",
    ]);
    assert_eq!(paris["count"], RECORDS.div_ceil(3));

    // Non-TTY stderr gets plain progress lines, never a bar.
    let r = src.run(&["export", "items", "--format", format, "--output", file]);
    r.ok();
    assert!(
        !r.stderr().contains('\u{1b}'),
        "escape codes on a non-terminal"
    );
    eprintln!("{format}: checks done at {:.2}s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    drop((src, dst, dir));
    eprintln!(
        "{format}: stores removed in {:.2}s",
        t.elapsed().as_secs_f64()
    );
}

#[test]
fn round_trip_10k_ndjson() {
    round_trip("ndjson");
}

#[test]
fn round_trip_10k_csv() {
    round_trip("csv");
}

#[test]
fn export_to_stdout_streams() {
    let store = Store::new();
    store.run(&["define", "items", ITEMS]).ok();
    let mut lines = String::new();
    for i in 0..25 {
        lines.push_str(&record(i).to_string());
        lines.push('\n');
    }
    store.run_stdin(&["import", "items", "-q"], &lines).ok();

    let r = store.run(&["export", "items", "--page-size", "7"]);
    r.ok();
    let out = r.stdout();
    assert_eq!(out.lines().count(), 25);
    for l in out.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        assert!(v["id"].as_str().unwrap().starts_with("item-"));
    }
    assert!(r.stderr().contains("exported 25 records"), "{}", r.stderr());

    let csv = store
        .run(&["export", "items", "--format", "csv", "-q"])
        .ok()
        .stdout();
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "id,name,code,note,qty,active,tags,meta,address.city,address.zip,createdAt,updatedAt"
    );
    // A numeric-looking string keeps its quotes; a number does not.
    assert!(
        csv.contains("item-00001,item 1,\"\"\"1\"\"\",,0.25,false"),
        "{csv}"
    );
}

#[test]
fn import_reports_each_failure_and_goes_on() {
    let store = Store::new();
    store.run(&["define", "items", ITEMS]).ok();
    store
        .run(&["insert", "items", r#"{"id": "taken", "name": "first"}"#])
        .ok();
    let input = [
        r#"{"id": "a", "name": "A"}"#,
        r#"{"id": "b", "qty": "lots"}"#,
        "{not json",
        "",
        r#"{"id": "taken", "name": "again"}"#,
        r#"{"id": "c", "name": "C"}"#,
        r#"{"id": "a", "name": "A twice"}"#,
    ]
    .join("\n");
    let r = store.run_stdin(&["import", "items", "--json", "--batch-size", "2"], &input);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    let summary = r.json();
    assert_eq!(summary["read"], 6);
    assert_eq!(summary["imported"], 2);
    assert_eq!(summary["failed"], 4);
    let err = r.stderr();
    assert!(
        err.contains("error[VALIDATION]: items line 2 (id \"b\")"),
        "{err}"
    );
    assert!(
        err.contains("error[INVALID_ARGUMENT]: items line 3: invalid JSON"),
        "{err}"
    );
    assert!(
        err.contains("error[ALREADY_EXISTS]: items line 5 (id \"taken\")"),
        "{err}"
    );
    assert!(
        err.contains("error[ALREADY_EXISTS]: items line 7 (id \"a\")"),
        "{err}"
    );
    assert!(
        err.contains("error[PARTIAL]: 4 of 6 records failed"),
        "{err}"
    );
    assert_eq!(store.json(&["count", "items", "--json"])["count"], 3);

    // CSV: a row with the wrong number of cells, a bad value; the rest goes in.
    let csv = "id,name,qty\nx,X,1\ny,Y\nz,Z,not-a-number\nw,W,2.5\n";
    let r = store.run_stdin(&["import", "items", "--format", "csv"], csv);
    assert_eq!(r.code(), 3, "{}", r.stderr());
    assert!(
        r.stdout().starts_with("imported 2 of 4 records into items"),
        "{}",
        r.stdout()
    );
    let err = r.stderr();
    assert!(
        err.contains("error[INVALID_ARGUMENT]: items row 3"),
        "{err}"
    );
    assert!(
        err.contains("error[VALIDATION]: items row 4 (id \"z\")"),
        "{err}"
    );
    assert_eq!(store.json(&["get", "items", "w", "--json"])["qty"], 2.5);
}
