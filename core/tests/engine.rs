mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{backends, connect, random_name, s3_secret};
use s3db::{Database, ErrorKind, LockOptions, SequenceOptions, Stats};
use serde_json::json;

fn users() -> serde_json::Value {
    json!({"name": "string|required", "email": "string|optional", "city": "string|optional|trim:false"})
}

fn delta(before: Stats, after: Stats) -> Stats {
    Stats {
        get: after.get - before.get,
        head: after.head - before.head,
        put: after.put - before.put,
        copy: after.copy - before.copy,
        delete: after.delete - before.delete,
        list: after.list - before.list,
    }
}

fn only(get: u64, put: u64, delete: u64, head: u64) -> Stats {
    Stats {
        get,
        head,
        put,
        copy: 0,
        delete,
        list: 0,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crud_and_typed_errors_on_every_backend() {
    for url in backends() {
        let db = connect(&url).await;
        let users = db.create_resource("users", &users()).await.unwrap();
        let inserted = users
            .insert(json!({"id": "u1", "name": "Ada", "email": "ada@example.com"}))
            .await
            .unwrap();
        assert_eq!(
            inserted,
            json!({"id": "u1", "name": "Ada", "email": "ada@example.com"}),
            "{url}"
        );
        assert_eq!(users.get("u1").await.unwrap()["name"], "Ada");
        assert!(users.exists("u1").await.unwrap());
        assert!(!users.exists("nope").await.unwrap());

        let dup = users
            .insert(json!({"id": "u1", "name": "Other"}))
            .await
            .unwrap_err();
        assert_eq!(dup.kind(), ErrorKind::AlreadyExists, "{url}");
        assert_eq!(
            users.get("u1").await.unwrap()["name"],
            "Ada",
            "duplicate must not overwrite"
        );

        let updated = users.update("u1", json!({"city": "London"})).await.unwrap();
        assert_eq!(
            updated,
            json!({"id": "u1", "name": "Ada", "email": "ada@example.com", "city": "London"})
        );
        assert_eq!(users.get("u1").await.unwrap(), updated);

        for text in [
            " lead and trail ",
            "  ",
            "tab\t",
            "Zoë, São Paulo ✓",
            "d:looks-encoded",
            "",
        ] {
            let rec = users
                .insert(json!({"name": "edge", "city": text}))
                .await
                .unwrap();
            let id = rec["id"].as_str().unwrap();
            assert_eq!(
                users.get(id).await.unwrap()["city"],
                json!(text),
                "{url}: {text:?}"
            );
            users.delete(id).await.unwrap();
        }

        let trimmed = users.insert(json!({"name": "  Trim Me  "})).await.unwrap();
        assert_eq!(
            trimmed["name"], "Trim Me",
            "strings are trimmed unless trim:false"
        );
        users.delete(trimmed["id"].as_str().unwrap()).await.unwrap();

        let generated = users.insert(json!({"name": "Grace"})).await.unwrap();
        let gid = generated["id"].as_str().unwrap().to_string();
        assert_eq!(gid.len(), 22);
        assert_eq!(users.count().await.unwrap(), 2);
        let mut ids = users.list_ids().await.unwrap();
        ids.sort();
        let mut want = vec!["u1".to_string(), gid.clone()];
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(users.list().await.unwrap().len(), 2);

        users.delete(&gid).await.unwrap();
        assert_eq!(
            users.get(&gid).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            users
                .update(&gid, json!({"city": "x"}))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(users.get_or_none(&gid).await.unwrap(), None);
        assert_eq!(
            users.delete(&gid).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(users.count().await.unwrap(), 1);

        for bad in ["", "a/b", "a\\b", "a=b", "50%", ".."] {
            let e = users.get(bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
            let e = users
                .insert(json!({"id": bad, "name": "x"}))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
        let long = "x".repeat(1025);
        assert_eq!(
            users.get(&long).await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );

        let e = users.insert(json!({"email": "no name"})).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert!(e.message().contains("name: required"), "{}", e.message());
        let e = users
            .insert(json!({"name": 5, "zip": "x"}))
            .await
            .unwrap_err();
        assert!(
            e.message().contains("name: type (expected string")
                && e.message().contains("zip: unknown"),
            "{}",
            e.message()
        );
        let e = users
            .insert(json!(["not", "an", "object"]))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation);
        assert_eq!(
            users.count().await.unwrap(),
            1,
            "failed inserts write nothing"
        );

        // Another connection sees the resource and the data.
        let other = Database::connect(&url).await.unwrap();
        assert_eq!(other.list_resources().await, vec!["users".to_string()]);
        assert_eq!(
            other
                .resource("users")
                .await
                .unwrap()
                .get("u1")
                .await
                .unwrap(),
            updated
        );
        assert_eq!(
            other.resource("ghosts").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_bucket_is_a_storage_error() {
    let Ok(s3) = std::env::var("S3DB_TEST_S3_URL") else {
        return;
    };
    let (base, _bucket) = s3.trim_end_matches('/').rsplit_once('/').unwrap();
    // Lowercase: a valid bucket name that does not exist (versitygw checks names).
    let missing = random_name("nobucket-").to_lowercase();
    let e = Database::connect(&format!("{base}/{missing}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert!(
        e.message().contains("bucket does not exist"),
        "{}",
        e.message()
    );
    assert!(
        !e.message().contains(&s3_secret(&s3)),
        "credentials leaked: {}",
        e.message()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_schemas_are_rejected_and_write_nothing() {
    let db = connect(&format!("memory://{}", random_name("b-"))).await;
    for (attrs, needle) in [
        (json!({}), "at least one attribute"),
        (json!({"a": 5}), "rule string or an object"),
        (json!({"a": "nosuchtype"}), "unknown type"),
        (json!({"a": "string|bogus"}), "unknown rule"),
        (json!({"_x": "string"}), "reserved"),
        (json!("nope"), "object"),
    ] {
        let e = db.create_resource("r", &attrs).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{attrs}");
        assert!(e.message().contains(needle), "{}: {}", attrs, e.message());
    }
    assert!(db.list_resources().await.is_empty());
    assert_eq!(
        db.create_resource("a/b", &users())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidArgument
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn request_counts_are_at_the_floor() {
    for url in backends() {
        let db = connect(&url).await;
        let users = db.create_resource("users", &users()).await.unwrap();
        let seq = db.sequence("orders").unwrap();

        let s = db.stats();
        users
            .insert(json!({"id": "c1", "name": "n"}))
            .await
            .unwrap();
        assert_eq!(delta(s, db.stats()), only(0, 1, 0, 0), "insert on {url}");

        let s = db.stats();
        users.get("c1").await.unwrap();
        assert_eq!(delta(s, db.stats()), only(1, 0, 0, 0), "get on {url}");

        let s = db.stats();
        users.exists("c1").await.unwrap();
        assert_eq!(delta(s, db.stats()), only(0, 0, 0, 1), "exists on {url}");

        let s = db.stats();
        users.update("c1", json!({"city": "Rome"})).await.unwrap();
        assert_eq!(delta(s, db.stats()), only(1, 1, 0, 0), "update on {url}");

        let s = db.stats();
        users.delete("c1").await.unwrap();
        assert_eq!(delta(s, db.stats()), only(0, 0, 1, 1), "delete on {url}");

        seq.next().await.unwrap();
        let s = db.stats();
        seq.next().await.unwrap();
        assert_eq!(
            delta(s, db.stats()),
            only(1, 1, 0, 0),
            "sequence next on {url}"
        );

        let s = db.stats();
        let lock = db.lock("jobs", LockOptions::default()).await.unwrap();
        lock.release().await.unwrap();
        assert_eq!(
            delta(s, db.stats()),
            only(1, 2, 0, 0),
            "lock acquire+release on {url}"
        );

        let s = db.stats();
        users.count().await.unwrap();
        assert_eq!(
            delta(s, db.stats()),
            Stats {
                list: 1,
                ..Default::default()
            }
        );

        db.reset_stats();
        assert_eq!(db.stats().total(), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_has_no_cap() {
    for url in backends() {
        let db = connect(&url).await;
        let items = db
            .create_resource("items", &json!({"n": "string"}))
            .await
            .unwrap();
        let n = 1500;
        let mut tasks = tokio::task::JoinSet::new();
        for w in 0..8 {
            let items = items.clone();
            tasks.spawn(async move {
                for i in (w..n).step_by(8) {
                    items
                        .insert(json!({"id": format!("i{i:05}"), "n": i.to_string()}))
                        .await
                        .unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        db.reset_stats();
        assert_eq!(items.count().await.unwrap(), n as u64, "{url}");
        assert_eq!(db.stats().list, 2, "1,500 keys are two pages of 1,000");
        let ids = items.list_ids().await.unwrap();
        assert_eq!(ids.len(), n);
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), n);
        assert_eq!(items.list().await.unwrap().len(), n);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_updates_of_different_fields_all_survive() {
    for url in backends() {
        let db = connect(&url).await;
        let fields: serde_json::Map<String, serde_json::Value> = (0..20)
            .map(|i| (format!("f{i}"), json!("string|optional")))
            .collect();
        let res = db
            .create_resource("wide", &serde_json::Value::Object(fields))
            .await
            .unwrap();
        res.insert(json!({"id": "w"})).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            // A separate connection per writer, as separate clients would be.
            let url = url.clone();
            tasks.spawn(async move {
                let db = Database::connect(&url).await.unwrap();
                let res = db.resource("wide").await.unwrap();
                res.update("w", json!({format!("f{i}"): format!("v{i}")}))
                    .await
                    .unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let rec = res.get("w").await.unwrap();
        for i in 0..20 {
            assert_eq!(
                rec[format!("f{i}")],
                json!(format!("v{i}")),
                "{url}: f{i} lost in {rec}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn locks_exclude_fence_and_expire_by_cas() {
    for url in backends() {
        let db = connect(&url).await;
        let other = Database::connect(&url).await.unwrap();
        assert_ne!(db.holder_id(), other.holder_id());
        let short = LockOptions {
            ttl: Duration::from_millis(400),
            timeout: Duration::ZERO,
        };

        let a = db.lock("m", short).await.unwrap();
        let e = other.lock("m", LockOptions::default()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LockNotAcquired, "{url}");

        // Waiting past the expiry takes the lock over, with a higher token.
        let b = other
            .lock(
                "m",
                LockOptions {
                    ttl: Duration::from_secs(30),
                    timeout: Duration::from_secs(5),
                },
            )
            .await
            .unwrap();
        assert!(b.fencing_token() > a.fencing_token());
        assert_eq!(
            a.extend(Duration::from_secs(5)).await.unwrap_err().kind(),
            ErrorKind::LockLost
        );
        assert_eq!(a.release().await.unwrap_err().kind(), ErrorKind::LockLost);
        b.extend(Duration::from_secs(60)).await.unwrap();
        b.release().await.unwrap();
        b.release().await.unwrap();

        let mut last = b.fencing_token();
        for _ in 0..3 {
            let token = db
                .with_lock("m", LockOptions::default(), |l| async move {
                    Ok(l.fencing_token())
                })
                .await
                .unwrap();
            assert!(token > last);
            last = token;
        }
        // with_lock releases even when the closure fails.
        let e = db
            .with_lock("m", LockOptions::default(), |_| async {
                Err::<(), _>(s3db::Error::invalid("boom"))
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        other
            .lock("m", LockOptions::default())
            .await
            .unwrap()
            .release()
            .await
            .unwrap();
        assert_eq!(
            db.lock("a/b", LockOptions::default())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidArgument
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn contended_lock_never_has_two_holders() {
    for url in backends() {
        let _catalog = connect(&url).await;
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tokens = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let db = Database::connect(&url).await.unwrap();
            let (inside, tokens) = (inside.clone(), tokens.clone());
            tasks.spawn(async move {
                for _ in 0..5 {
                    let opts = LockOptions {
                        ttl: Duration::from_secs(30),
                        timeout: Duration::from_secs(60),
                    };
                    let lock = db.lock("hot", opts).await.unwrap();
                    assert!(
                        !inside.swap(true, std::sync::atomic::Ordering::SeqCst),
                        "two holders"
                    );
                    tokens.lock().unwrap().push(lock.fencing_token());
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    inside.store(false, std::sync::atomic::Ordering::SeqCst);
                    lock.release().await.unwrap();
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let tokens = tokens.lock().unwrap().clone();
        assert_eq!(tokens.len(), 20);
        assert!(
            tokens.windows(2).all(|w| w[0] < w[1]),
            "{url}: tokens not increasing: {tokens:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sequences_are_gapless_and_unique_under_contention() {
    for url in backends() {
        let db = connect(&url).await;
        let seq = db.sequence("ids").unwrap();
        assert_eq!(seq.current().await.unwrap(), None);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let seq = Database::connect(&url)
                .await
                .unwrap()
                .sequence("ids")
                .unwrap();
            tasks.spawn(async move {
                let mut got = Vec::new();
                for _ in 0..10 {
                    got.push(seq.next().await.unwrap());
                }
                got
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        all.sort();
        assert_eq!(all, (1..=50).collect::<Vec<i64>>(), "{url}");
        assert_eq!(seq.current().await.unwrap(), Some(51));
        seq.reset(1000).await.unwrap();
        assert_eq!(seq.next().await.unwrap(), 1000);

        let big = db
            .sequence_with(
                "big",
                SequenceOptions {
                    start: i64::MAX - 1,
                    increment: 1,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(big.next().await.unwrap(), i64::MAX - 1);
        assert_eq!(
            big.next().await.unwrap_err().kind(),
            ErrorKind::InvalidArgument,
            "overflow"
        );
        let by10 = db
            .sequence_with(
                "tens",
                SequenceOptions {
                    start: 0,
                    increment: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(by10.next().await.unwrap(), 0);
        assert_eq!(by10.next().await.unwrap(), 10);
        assert!(db
            .sequence_with(
                "z",
                SequenceOptions {
                    start: 0,
                    increment: 0,
                    ..Default::default()
                }
            )
            .is_err());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_show_in_debug_or_errors() {
    let mut urls = vec![format!("memory://{}", random_name("dbg-"))];
    let mut secrets = vec!["pAsSpHrAsE".to_string(), "1234-SECRET-PIN".to_string()];
    if let Ok(s3) = std::env::var("S3DB_TEST_S3_URL") {
        secrets.push(s3_secret(&s3));
        urls.push(format!(
            "{}/{}",
            s3.trim_end_matches('/'),
            random_name("dbg-")
        ));
    }
    for url in urls {
        let db = Database::connect_with(
            &url,
            s3db::ConnectOptions {
                passphrase: Some("pAsSpHrAsE".into()),
            },
        )
        .await
        .unwrap();
        let res = db
            .create_resource("vault", &json!({"pin": "secret", "name": "string"}))
            .await
            .unwrap();
        res.insert(json!({"id": "v", "pin": "1234-SECRET-PIN", "name": "n"}))
            .await
            .unwrap();
        let e = res
            .insert(json!({"id": "v", "pin": "1234-SECRET-PIN", "name": "n"}))
            .await
            .unwrap_err();
        for text in [
            format!("{db:?}"),
            format!("{res:?}"),
            format!("{e:?}"),
            e.to_string(),
        ] {
            for secret in &secrets {
                assert!(!text.contains(secret.as_str()), "{secret} leaked in {text}");
            }
        }
    }
}
