//! Conditional writes on `file://` hold across OS processes: this test re-runs its own
//! binary as several child processes racing on the same keys.

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use s3db::storage::{FileStore, PutRequest, Store, StoreError, WriteCondition};

const CHILD_ENV: &str = "S3DB_RACE_CHILD_DIR";
const PROCESSES: usize = 4;
const CREATE_KEYS: usize = 40;
const INCREMENTS: usize = 25;

fn store(dir: &str) -> Store {
    Store::new(Arc::new(FileStore::open(dir.as_ref()).unwrap()), "")
}

/// Child: prints `create <k>` for each create-only key it won and `cas <old>` for each
/// counter value it advanced by compare-and-swap.
#[tokio::test(flavor = "multi_thread")]
async fn race_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = store(&dir);
    let mut out = String::new();
    for k in 0..CREATE_KEYS {
        let req = PutRequest {
            body: Bytes::from(format!("{}", std::process::id())),
            condition: WriteCondition::IfNoneMatch,
            ..Default::default()
        };
        match store.put(&format!("race/create-{k}"), req).await {
            Ok(_) => out.push_str(&format!("create {k}\n")),
            Err(StoreError::PreconditionFailed) => {}
            Err(e) => panic!("create: {e}"),
        }
    }
    let mut done = 0;
    while done < INCREMENTS {
        let obj = store.get("race/counter").await.unwrap();
        let old: u64 = std::str::from_utf8(&obj.body).unwrap().parse().unwrap();
        let req = PutRequest {
            body: Bytes::from((old + 1).to_string()),
            condition: WriteCondition::IfMatch(obj.head.etag.clone()),
            ..Default::default()
        };
        match store.put("race/counter", req).await {
            Ok(_) => {
                out.push_str(&format!("cas {old}\n"));
                done += 1;
            }
            Err(StoreError::PreconditionFailed) => {}
            Err(e) => panic!("cas: {e}"),
        }
    }
    std::fs::write(format!("{dir}/out-{}.txt", std::process::id()), out).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_writes_hold_across_processes() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = common::tempdir();
    let s = store(&dir);
    s.put(
        "race/counter",
        PutRequest {
            body: Bytes::from("0"),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args(["race_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &dir)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a child process failed");
    }
    let mut creates = Vec::new();
    let mut olds = Vec::new();
    let mut outputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("out-")
        {
            continue;
        }
        outputs += 1;
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let (what, n) = line.split_once(' ').unwrap();
            let n: u64 = n.parse().unwrap();
            if what == "create" {
                creates.push(n)
            } else {
                olds.push(n)
            }
        }
    }
    assert_eq!(outputs, PROCESSES);
    // Every create-only key has exactly one winner.
    assert_eq!(creates.len(), CREATE_KEYS, "winners: {creates:?}");
    assert_eq!(creates.iter().collect::<HashSet<_>>().len(), CREATE_KEYS);
    // Every counter value was advanced by exactly one process: no lost update.
    let total = (PROCESSES * INCREMENTS) as u64;
    olds.sort();
    assert_eq!(olds, (0..total).collect::<Vec<_>>());
    let end = s.get("race/counter").await.unwrap();
    assert_eq!(std::str::from_utf8(&end.body).unwrap(), total.to_string());
}
