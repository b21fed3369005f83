//! Exit codes: usage, not found, validation, … and the table in `--help` and cli/README.md.

mod common;

use common::{run_with, Store};
use s3db::ErrorKind;

fn store_with_users() -> Store {
    let store = Store::new();
    store
        .run(&[
            "define",
            "users",
            r#"{"name": "string|required", "age": "number|optional"}"#,
        ])
        .ok();
    store
        .run(&["insert", "users", r#"{"id": "ada", "name": "Ada"}"#])
        .ok();
    store
}

#[test]
fn not_found() {
    let store = store_with_users();
    store
        .run(&["get", "users", "nobody"])
        .fails(11, "NOT_FOUND");
    store
        .run(&["delete", "users", "nobody"])
        .fails(11, "NOT_FOUND");
    store
        .run(&["update", "users", "nobody", r#"{"age": 1}"#])
        .fails(11, "NOT_FOUND");
    store.run(&["get", "nothing", "x"]).fails(11, "NOT_FOUND");
    store.run(&["describe", "nothing"]).fails(11, "NOT_FOUND");
    store.run(&["count", "nothing"]).fails(11, "NOT_FOUND");
    store
        .run(&[
            "list",
            "users",
            "--partition",
            "byNothing",
            "--value",
            "a=b",
        ])
        .fails(11, "NOT_FOUND");
    store.run(&["sequence", "nothing"]).fails(11, "NOT_FOUND");
    // stdout stays empty on failure.
    assert_eq!(
        store.run(&["get", "users", "nobody", "--json"]).stdout(),
        ""
    );
}

#[test]
fn validation_and_invalid_arguments() {
    let store = store_with_users();
    let r = store.run(&["insert", "users", r#"{"age": "old"}"#]);
    r.fails(15, "VALIDATION");
    // The details list each failing field.
    assert!(r.stderr().contains("details: "), "{}", r.stderr());
    store
        .run(&["update", "users", "ada", r#"{"age": "old"}"#])
        .fails(15, "VALIDATION");
    store
        .run(&["insert", "users", r#"["not", "an", "object"]"#])
        .fails(15, "VALIDATION");
    store
        .run(&["define", "bad", r#"{"x": "nosuchtype"}"#])
        .fails(15, "VALIDATION");
    store
        .run(&["insert", "users", r#"{"id": "ada", "name": "again"}"#])
        .fails(12, "ALREADY_EXISTS");
    store
        .run(&["insert", "users", "{oops"])
        .fails(16, "INVALID_ARGUMENT");
    store
        .run(&["query", "users", r#"{"age": {"$near": 1}}"#])
        .fails(16, "INVALID_ARGUMENT");
    store
        .run(&["query", "users", "[1]"])
        .fails(16, "INVALID_ARGUMENT");
}

#[test]
fn usage_errors_exit_2() {
    let store = store_with_users();
    for args in [
        vec!["frobnicate"],
        vec!["get", "users"],
        vec!["list", "users", "--limit", "many"],
        vec!["list", "users", "--value", "a=b"],
        vec!["export", "users", "--format", "xml"],
        vec!["completions", "tcsh"],
    ] {
        let r = store.run(&args);
        assert_eq!(r.code(), 2, "{args:?}: {}", r.stderr());
        assert!(
            r.stderr().starts_with("error: "),
            "{args:?}: {}",
            r.stderr()
        );
    }
    store
        .run(&["list", "users", "--partition", "p", "--value", "novalue"])
        .fails(2, "USAGE");
    // No connection string at all.
    run_with(None, &["resources"], None).fails(2, "USAGE");
    // --help and --version succeed.
    run_with(None, &["--help"], None).ok();
    run_with(None, &["--version"], None).ok();
}

#[test]
fn local_failures_exit_1() {
    let store = store_with_users();
    let dir = common::tempdir();
    let missing = dir.path().join("missing.ndjson");
    store
        .run(&["import", "users", "--input", missing.to_str().unwrap()])
        .fails(1, "LOCAL");
    let unwritable = dir.path().join("no/such/dir/out.ndjson");
    store
        .run(&["export", "users", "--output", unwritable.to_str().unwrap()])
        .fails(1, "LOCAL");
}

/// The table printed by `--help` and the one in cli/README.md list the same codes.
#[test]
fn exit_codes_are_documented() {
    let help = run_with(None, &["--help"], None).ok().stdout();
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("cli/README.md");
    let mut expected = vec![
        (0, "success".to_string()),
        (1, "local".to_string()),
        (2, "usage".to_string()),
        (3, "import".to_string()),
    ];
    for kind in ErrorKind::ALL {
        expected.push((10 + kind.status(), kind.code().to_string()));
    }
    for (code, word) in expected {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{code}  ")) && l.contains(&word)),
            "--help lacks exit code {code} ({word}):\n{help}"
        );
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with(&format!("| {code} |")) && l.contains(&word)),
            "cli/README.md lacks exit code {code} ({word})"
        );
    }
}
