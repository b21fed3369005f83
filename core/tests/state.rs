//! Distributed state on memory, file and S3 (when `S3DB_TEST_S3_URL` is set).

mod common;

use std::time::Duration;

use common::{backends, connect};
use s3db::{ErrorKind, Stats};
use serde_json::{json, Value};

fn delta(before: Stats, after: Stats) -> (u64, u64, u64) {
    (
        after.get - before.get,
        after.put - before.put,
        after.delete - before.delete,
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn get_set_delete_and_layout() {
    for url in backends() {
        let db = connect(&url).await;
        let st = db.state("app").unwrap();
        assert_eq!(st.namespace(), "app");
        assert_eq!(st.get("cfg").await.unwrap(), None);

        let s = db.stats();
        let v1 = st.set("cfg", json!({"mode": "on"}), None).await.unwrap();
        assert_eq!(delta(s, db.stats()), (0, 1, 0), "set: 1 PUT on {url}");
        let s = db.stats();
        let got = st.get("cfg").await.unwrap().unwrap();
        assert_eq!(delta(s, db.stats()), (1, 0, 0), "get: 1 GET on {url}");
        assert_eq!(got.value, json!({"mode": "on"}));
        assert_eq!(got.version, v1);
        assert_eq!(got.expires_at, None);

        let raw: Value = serde_json::from_slice(
            &db.store()
                .get("plugin=state/namespace=app/cfg.json")
                .await
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(raw["value"], json!({"mode": "on"}));
        assert!(raw["updatedAt"].is_string());

        let v2 = st.set("cfg", json!("plain"), None).await.unwrap();
        assert_ne!(v1, v2);
        st.set("other", json!(null), None).await.unwrap();
        assert_eq!(st.keys().await.unwrap(), ["cfg", "other"]);
        // Namespaces are separate.
        assert_eq!(db.state("else").unwrap().get("cfg").await.unwrap(), None);

        st.delete("cfg").await.unwrap();
        st.delete("cfg").await.unwrap();
        assert_eq!(st.get("cfg").await.unwrap(), None);
        assert_eq!(st.get("other").await.unwrap().unwrap().value, Value::Null);

        for bad in ["", "a/b", "x=y", ".."] {
            assert_eq!(
                st.get(bad).await.unwrap_err().kind(),
                ErrorKind::InvalidArgument,
                "{bad:?}"
            );
        }
        assert_eq!(
            db.state("a/b").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compare_and_swap_semantics() {
    for url in backends() {
        let db = connect(&url).await;
        let st = db.state("cas").unwrap();

        // Missing key with an expected version: not swapped, nothing there.
        let r = st
            .compare_and_swap("k", Some("\"nope\""), json!(1))
            .await
            .unwrap();
        assert!(!r.swapped);
        assert_eq!((r.current_value, r.current_version), (None, None));

        // Create-only.
        let s = db.stats();
        let r = st.compare_and_swap("k", None, json!(1)).await.unwrap();
        assert_eq!(delta(s, db.stats()), (0, 1, 0), "swap: 1 PUT on {url}");
        assert!(r.swapped);
        assert_eq!(r.current_value, Some(json!(1)));
        let v1 = r.current_version.unwrap();
        assert_eq!(st.get("k").await.unwrap().unwrap().version, v1);

        let r = st.compare_and_swap("k", None, json!(2)).await.unwrap();
        assert!(!r.swapped, "already exists");
        assert_eq!(r.current_value, Some(json!(1)));
        assert_eq!(r.current_version.as_deref(), Some(v1.as_str()));

        let r = st.compare_and_swap("k", Some(&v1), json!(3)).await.unwrap();
        assert!(r.swapped);
        let v3 = r.current_version.unwrap();

        // Stale version: not swapped, told what is there now.
        let r = st.compare_and_swap("k", Some(&v1), json!(4)).await.unwrap();
        assert!(!r.swapped);
        assert_eq!(r.current_value, Some(json!(3)));
        assert_eq!(r.current_version, Some(v3.clone()));
        assert_eq!(st.get("k").await.unwrap().unwrap().value, json!(3));

        // Exactly one of many concurrent swaps from the same version wins.
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let st = connect(&url).await.state("cas").unwrap();
            let v3 = v3.clone();
            tasks.spawn(async move {
                st.compare_and_swap("k", Some(&v3), json!(100 + i))
                    .await
                    .unwrap()
                    .swapped
            });
        }
        let mut wins = 0;
        while let Some(r) = tasks.join_next().await {
            wins += r.unwrap() as u32;
        }
        assert_eq!(wins, 1, "{url}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn update_is_a_cas_loop() {
    for url in backends() {
        let db = connect(&url).await;
        let st = db.state("upd").unwrap();
        let s = db.stats();
        let e = st
            .update("list", |cur| {
                assert_eq!(cur, None);
                Ok(json!(["first"]))
            })
            .await
            .unwrap();
        assert_eq!(
            delta(s, db.stats()),
            (1, 1, 0),
            "update: GET + PUT on {url}"
        );
        assert_eq!(e.value, json!(["first"]));

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..10 {
            let st = connect(&url).await.state("upd").unwrap();
            tasks.spawn(async move {
                st.update("list", |cur| {
                    let mut items = cur.unwrap().as_array().unwrap().clone();
                    items.push(json!(i));
                    Ok(Value::Array(items))
                })
                .await
                .unwrap()
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
        let list = st.get("list").await.unwrap().unwrap().value;
        assert_eq!(list.as_array().unwrap().len(), 11, "{url}: {list}");

        // An error from the closure aborts without writing.
        let before = st.get("list").await.unwrap().unwrap().version;
        let e = st
            .update("list", |_| Err(s3db::Error::invalid("no")))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(st.get("list").await.unwrap().unwrap().version, before);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_under_concurrency() {
    for url in backends() {
        let db = connect(&url).await;
        let st = db.state("counters").unwrap();
        assert_eq!(st.counter("hits").await.unwrap(), 0);

        let s = db.stats();
        assert_eq!(st.increment("hits", 1).await.unwrap(), 1);
        assert_eq!(
            delta(s, db.stats()),
            (1, 1, 0),
            "increment: GET + PUT on {url}"
        );

        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let st = connect(&url).await.state("counters").unwrap();
            tasks.spawn(async move { st.increment("hits", 1).await.unwrap() });
        }
        let mut seen = Vec::new();
        while let Some(r) = tasks.join_next().await {
            seen.push(r.unwrap());
        }
        seen.sort();
        assert_eq!(seen, (2..=21).collect::<Vec<i64>>(), "{url}");
        assert_eq!(st.counter("hits").await.unwrap(), 21);

        assert_eq!(st.decrement("hits", 5).await.unwrap(), 16);
        assert_eq!(st.increment("hits", -20).await.unwrap(), -4);
        st.reset("hits").await.unwrap();
        assert_eq!(st.counter("hits").await.unwrap(), 0);
        assert_eq!(st.increment("hits", 3).await.unwrap(), 3);

        st.set("text", json!("abc"), None).await.unwrap();
        assert_eq!(
            st.increment("text", 1).await.unwrap_err().kind(),
            ErrorKind::Validation
        );
        assert_eq!(
            st.counter("text").await.unwrap_err().kind(),
            ErrorKind::Validation
        );
        st.set("big", json!(i64::MAX), None).await.unwrap();
        assert_eq!(
            st.increment("big", 1).await.unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_expiry() {
    for url in backends() {
        let db = connect(&url).await;
        let st = db.state("ttl").unwrap();
        st.set(
            "session",
            json!({"user": "ada"}),
            Some(Duration::from_millis(400)),
        )
        .await
        .unwrap();
        let live = st.get("session").await.unwrap().unwrap();
        assert!(live.expires_at.is_some());
        let raw: Value = serde_json::from_slice(
            &db.store()
                .get("plugin=state/namespace=ttl/session.json")
                .await
                .unwrap()
                .body,
        )
        .unwrap();
        assert_eq!(raw["_expiresAt"], json!(live.expires_at.unwrap()));

        // Updates keep the expiry.
        let e = st
            .update("session", |_| Ok(json!({"user": "bob"})))
            .await
            .unwrap();
        assert_eq!(e.expires_at, live.expires_at);

        st.increment("hits", 5).await.unwrap();
        st.set("temp-counter", json!(7), Some(Duration::from_millis(400)))
            .await
            .unwrap();
        st.set("claim", json!("old"), Some(Duration::from_millis(400)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;

        // Expired: reads as absent and is deleted (conditionally).
        let s = db.stats();
        assert_eq!(st.get("session").await.unwrap(), None);
        assert_eq!(delta(s, db.stats()), (1, 0, 1), "{url}");
        assert!(!st.keys().await.unwrap().contains(&"session".to_string()));

        // Expired counters start again from 0; a create-only CAS takes an expired key.
        assert_eq!(st.increment("temp-counter", 1).await.unwrap(), 1);
        let r = st
            .compare_and_swap("claim", None, json!("new"))
            .await
            .unwrap();
        assert!(r.swapped, "{url}");
        assert_eq!(st.get("claim").await.unwrap().unwrap().value, json!("new"));
        assert_eq!(st.counter("hits").await.unwrap(), 5, "no ttl: still there");
    }
}
