//! `file://` writes are atomic for readers and survive writers killed at any moment: this
//! test re-runs its own binary as child processes that rewrite records until SIGKILLed.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use s3db::storage::{FileStore, Metadata, PutRequest, Store, StoreError, WriteCondition};
use serde_json::{json, Value};

const CHILD_ENV: &str = "S3DB_KILL_CHILD_DIR";
const KEYS: [&str; 6] = [
    "resource=r/data/id=a",
    "resource=r/data/id=b",
    "resource=r/data/id=c",
    "resource=r/data/id=d",
    "plugin=p/x",
    "top",
];
const ROUNDS: usize = 12;

fn md5(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(body))
}

/// Body and metadata that name each other: `gen` in both, the body's MD5 in the metadata.
fn record(key: &str, gen: u64, condition: WriteCondition) -> PutRequest {
    let pad = "x".repeat((gen % 7) as usize * 700);
    let body = json!({"key": key, "gen": gen, "pad": pad}).to_string();
    let mut metadata = Metadata::new();
    metadata.insert("gen".into(), gen.to_string());
    metadata.insert("md5".into(), md5(body.as_bytes()));
    PutRequest {
        body: Bytes::from(body),
        metadata,
        content_type: Some("application/json".into()),
        condition,
    }
}

/// Child: rewrites the keys (blind puts, compare-and-swap, deletes) until killed.
#[tokio::test(flavor = "multi_thread")]
async fn rewrite_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = Store::new(Arc::new(FileStore::open(dir.as_ref()).unwrap()), "");
    let mut gen = u64::from(std::process::id()) * 1_000_000;
    loop {
        for key in KEYS {
            gen += 1;
            let res = match gen % 5 {
                0 => match store.head(key).await {
                    Ok(h) => store.delete(key, Some(&h.etag)).await.map(|_| ()),
                    Err(e) => Err(e),
                },
                1 | 2 => {
                    let condition = match store.get(key).await {
                        Ok(o) => WriteCondition::IfMatch(o.head.etag),
                        Err(StoreError::NotFound) => WriteCondition::IfNoneMatch,
                        Err(e) => panic!("{key}: {e}"),
                    };
                    store
                        .put(key, record(key, gen, condition))
                        .await
                        .map(|_| ())
                }
                _ => store
                    .put(key, record(key, gen, WriteCondition::None))
                    .await
                    .map(|_| ()),
            };
            match res {
                Ok(()) | Err(StoreError::NotFound) | Err(StoreError::PreconditionFailed) => {}
                Err(e) => panic!("{key}: {e}"),
            }
        }
    }
}

fn spawn(dir: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "rewrite_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .spawn()
        .unwrap()
}

/// Files of the store's own state (`.s3db/`) other than lock files.
fn leftovers(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(Path::new(dir).join(".s3db"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}

/// Every file under `dir`, relative, except `.s3db/` and the children's output.
fn files(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let rel = path
            .strip_prefix(base)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        if path.is_dir() {
            if rel != ".s3db" {
                files(&path, base, out);
            }
        } else {
            out.insert(rel);
        }
    }
}

async fn check_records(store: &Store) -> usize {
    let listed = store.list_all("").await.unwrap();
    for key in &listed {
        assert!(KEYS.contains(&key.as_str()), "listed {key}");
    }
    let mut present = 0;
    for key in KEYS {
        let obj = match store.get(key).await {
            Ok(o) => o,
            Err(StoreError::NotFound) => {
                assert!(!listed.iter().any(|k| k == key), "{key} listed, not found");
                continue;
            }
            Err(e) => panic!("{key}: {e}"),
        };
        present += 1;
        let body: Value = serde_json::from_slice(&obj.body).unwrap();
        assert_eq!(body["key"], key);
        let gen = body["gen"].as_u64().unwrap().to_string();
        assert_eq!(
            obj.head.metadata["gen"], gen,
            "{key}: body and metadata differ"
        );
        assert_eq!(obj.head.metadata["md5"], md5(&obj.body), "{key}");
    }
    present
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_writers_never_leave_a_torn_record() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = common::tempdir();
    let fs = FileStore::open(dir.as_ref()).unwrap();
    let store = Store::new(Arc::new(fs.clone()), "");
    let (mut interrupted, mut committed) = (0, 0);
    let mut present = 0;
    for _ in 0..ROUNDS {
        let mut children = [spawn(&dir), spawn(&dir)];
        let (first, second) = {
            let mut rng = rand::rng();
            (rng.random_range(40..160), rng.random_range(0..40))
        };
        tokio::time::sleep(Duration::from_millis(first)).await;
        children[0].kill().unwrap();
        tokio::time::sleep(Duration::from_millis(second)).await;
        children[1].kill().unwrap();
        for c in children.iter_mut() {
            let status = c.wait().unwrap();
            assert!(status.code().is_none(), "a child failed: {status}");
        }
        let left = leftovers(&dir);
        interrupted += usize::from(!left.is_empty());
        committed += usize::from(left.iter().any(|n| n.ends_with(".journal")));
        present += check_records(&store).await;
    }
    eprintln!(
        "{interrupted} of {ROUNDS} rounds left a write in flight ({committed} past its commit \
         point); {present} records read"
    );
    assert!(present > 0);
    assert_eq!(store.fault_stats().verification_failures, 0);

    // The next write and a cleanup leave nothing behind.
    store
        .put("top", record("top", 1, WriteCondition::None))
        .await
        .unwrap();
    fs.recover().unwrap();
    assert_eq!(leftovers(&dir), Vec::<String>::new());
    check_records(&store).await;
    let mut all = BTreeSet::new();
    files(Path::new(&dir), Path::new(&dir), &mut all);
    for f in &all {
        let key = f.strip_suffix(".meta.json").unwrap_or(f);
        assert!(KEYS.contains(&key), "stray file {f}");
        assert!(
            all.contains(key) && all.contains(&format!("{key}.meta.json")),
            "{f}"
        );
    }
}

/// Readers take no lock: while other processes rewrite the records, every read is one whole
/// write (or absent).
#[tokio::test(flavor = "multi_thread")]
async fn reads_racing_writers_of_other_processes_see_whole_records() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = common::tempdir();
    let store = Store::new(Arc::new(FileStore::open(dir.as_ref()).unwrap()), "");
    let mut children = [spawn(&dir), spawn(&dir)];
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let mut reads = 0;
    while std::time::Instant::now() < deadline {
        for key in KEYS {
            let head = store.head(key).await;
            match store.get(key).await {
                Ok(obj) => {
                    let body: Value = serde_json::from_slice(&obj.body).unwrap();
                    let gen = body["gen"].as_u64().unwrap().to_string();
                    assert_eq!(obj.head.metadata["gen"], gen, "{key}");
                    assert_eq!(obj.head.metadata["md5"], md5(&obj.body), "{key}");
                    reads += 1;
                }
                Err(StoreError::NotFound) => {}
                Err(e) => panic!("{key}: {e}"),
            }
            match head {
                Ok(h) => assert!(h.metadata.contains_key("md5"), "{key}"),
                Err(StoreError::NotFound) => {}
                Err(e) => panic!("{key}: {e}"),
            }
        }
    }
    for c in children.iter_mut() {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    eprintln!("{reads} whole records read while two processes rewrote them");
    assert!(reads > 50, "{reads}");
    // Not even a torn read that a retry would have hidden.
    assert_eq!(store.fault_stats().verification_failures, 0);
}
