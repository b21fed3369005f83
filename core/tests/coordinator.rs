//! Leader election (capability 4): one leader among coordinators in one process and in
//! several OS processes, takeover after a crash or a stop, a stable epoch while the
//! leader lives, request counts per heartbeat, stepping down on failing storage, and the
//! s3db.js layout of the stored objects. Runs on memory, file and (with
//! `S3DB_TEST_S3_URL`) a real S3 server.

mod common;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use common::{backends, connect, random_name, tempdir};
use s3db::storage::{
    ConnectionString, Endpoint, FileStore, ListPage, MemoryStore, Metadata, Object, ObjectHead,
    ObjectStore, PutRequest, S3Store, Store, StoreError, StoreResult, WriteCondition,
};
use s3db::{Coordinator, CoordinatorEvent, CoordinatorOptions, Database, Stats};
use serde_json::Value;
use tokio::sync::broadcast;

const HEARTBEAT: Duration = Duration::from_millis(400);

/// Short intervals; the lease is 5 heartbeats (s3db.js: 3) so that a loaded 2-core test
/// machine does not make a healthy leader miss its renewals.
fn options() -> CoordinatorOptions {
    CoordinatorOptions {
        startup_jitter: Duration::ZERO,
        lease_timeout: HEARTBEAT * 5,
        worker_timeout: HEARTBEAT * 7,
        step_down_margin: HEARTBEAT / 2,
        ..CoordinatorOptions::with_heartbeat(HEARTBEAT)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn state_key(ns: &str) -> String {
    format!("plugin=coordinator/namespace={ns}/state.json")
}

async fn read_json(store: &Store, key: &str) -> Option<Value> {
    match store.get(key).await {
        Ok(obj) => Some(serde_json::from_slice(&obj.body).unwrap()),
        Err(StoreError::NotFound) => None,
        Err(e) => panic!("read {key}: {e}"),
    }
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(|k| k.as_str()).collect()
}

/// Polls until `f` is true or `limit` passes; returns the time it took.
async fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn leaders(cs: &[&Coordinator]) -> Vec<usize> {
    cs.iter()
        .enumerate()
        .filter(|(_, c)| c.is_leader())
        .map(|(i, _)| i)
        .collect()
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

#[tokio::test(flavor = "multi_thread")]
async fn stored_objects_have_the_s3db_js_layout() {
    for url in backends() {
        let db = connect(&url).await;
        let ns = random_name("ns");
        let opts = options();
        let c = db.coordinator(&ns, opts.clone()).unwrap();
        let before = db.stats();
        c.start().await.unwrap();
        let first = delta(before, db.stats());
        assert!(c.is_leader(), "{url}: a lone worker leads after start()");
        assert_eq!(c.fencing_token(), Some(1), "{url}");
        // metadata, heartbeat, state (create-only), checkpoint; state + checkpoint read;
        // the listing finds only this worker, which needs no GET.
        assert_eq!(
            (first.put, first.get, first.list, first.delete),
            (4, 2, 1, 0),
            "{url}: requests of the first round: {first:?}"
        );

        let base = format!("plugin=coordinator/namespace={ns}/");
        let store = db.store();
        let state = read_json(store, &format!("{base}state.json"))
            .await
            .unwrap();
        assert_eq!(
            keys_of(&state),
            [
                "leaderId",
                "leaderPod",
                "epoch",
                "leaseStart",
                "leaseEnd",
                "electedBy",
                "electedAt",
                "_expiresAt"
            ],
            "{url}"
        );
        assert_eq!(state["leaderId"], c.worker_id());
        assert_eq!(state["electedBy"], c.worker_id());
        assert_eq!(state["epoch"], 1);
        let lease = opts.lease_timeout.as_millis() as i64;
        let (start, end) = (
            state["leaseStart"].as_i64().unwrap(),
            state["leaseEnd"].as_i64().unwrap(),
        );
        assert_eq!(end - start, lease);
        assert_eq!(state["_expiresAt"].as_i64().unwrap(), end + 60_000);
        let leader = c.get_leader().unwrap();
        assert_eq!(
            (leader.leader_id.as_str(), leader.epoch),
            (c.worker_id(), 1)
        );

        let hb = read_json(
            store,
            &format!("{base}workers/worker={}.json", c.worker_id()),
        )
        .await
        .unwrap();
        assert_eq!(
            keys_of(&hb),
            [
                "workerId",
                "pluginName",
                "pod",
                "lastHeartbeat",
                "startTime",
                "namespace",
                "_expiresAt"
            ],
            "{url}"
        );
        assert_eq!(hb["workerId"], c.worker_id());
        assert_eq!(hb["pluginName"], "coordinator");
        assert_eq!(hb["namespace"], ns.as_str());
        assert_eq!(
            hb["_expiresAt"].as_i64().unwrap() - hb["lastHeartbeat"].as_i64().unwrap(),
            opts.worker_timeout.as_millis() as i64
        );

        let meta = read_json(store, &format!("{base}metadata.json"))
            .await
            .unwrap();
        assert_eq!(
            keys_of(&meta),
            [
                "namespace",
                "serviceId",
                "createdAt",
                "createdBy",
                "plugins",
                "_expiresAt"
            ]
        );
        assert_eq!(meta["createdBy"], c.worker_id());
        assert!(meta["serviceId"]
            .as_str()
            .unwrap()
            .starts_with("global-coordinator-"));
        assert_eq!(
            meta["_expiresAt"].as_i64().unwrap() - meta["createdAt"].as_i64().unwrap(),
            3_600_000
        );
        let cp = read_json(store, &format!("{base}checkpoint.json"))
            .await
            .unwrap();
        assert_eq!(
            keys_of(&cp),
            [
                "namespace",
                "leaderId",
                "epoch",
                "generatedAt",
                "updatedBy",
                "_expiresAt"
            ]
        );
        assert_eq!(
            (cp["leaderId"].as_str(), cp["epoch"].as_u64()),
            (Some(c.worker_id()), Some(1))
        );

        let workers = c.active_workers().await.unwrap();
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0].worker_id, c.worker_id());

        // stop(): the lease is released by CAS (ends now), the heartbeat deleted.
        let mut events = c.subscribe();
        c.stop().await.unwrap();
        assert!(!c.is_leader());
        assert_eq!(
            events.try_recv().unwrap(),
            CoordinatorEvent::LostLeadership { epoch: 1 }
        );
        let released = read_json(store, &format!("{base}state.json"))
            .await
            .unwrap();
        assert_eq!(released["epoch"], 1);
        assert!(released["leaseEnd"].as_i64().unwrap() <= now_ms());
        assert!(read_json(
            store,
            &format!("{base}workers/worker={}.json", c.worker_id())
        )
        .await
        .is_none());
        assert!(c.active_workers().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_coordinators_in_one_process_elect_one_leader_and_hand_over() {
    for url in backends() {
        let ns = random_name("ns");
        let (db_a, db_b) = (connect(&url).await, connect(&url).await);
        let a = db_a.coordinator(&ns, options()).unwrap();
        let b = db_b.coordinator(&ns, options()).unwrap();
        assert_ne!(a.worker_id(), b.worker_id());
        let mut events = [a.subscribe(), b.subscribe()];
        let (ra, rb) = tokio::join!(a.start(), b.start());
        ra.unwrap();
        rb.unwrap();
        let both = [&a, &b];
        wait_for(HEARTBEAT * 10, || leaders(&both).len() == 1)
            .await
            .unwrap_or_else(|| panic!("{url}: no leader"));

        // Over 10 intervals: exactly one leader at every sample, the same one, and the
        // epoch does not move while it renews its lease.
        let first = leaders(&both)[0];
        let state_before = read_json(db_a.store(), &state_key(&ns)).await.unwrap();
        let epoch = state_before["epoch"].as_u64().unwrap();
        let t = Instant::now();
        while t.elapsed() < HEARTBEAT * 10 {
            if leaders(&both) != vec![first] {
                let mut got = Vec::new();
                for rx in events.iter_mut() {
                    while let Ok(e) = rx.try_recv() {
                        got.push(e);
                    }
                }
                panic!(
                    "{url}: leaders {:?} after {:?}; events {got:?}; metrics {:?} {:?}",
                    leaders(&both),
                    t.elapsed(),
                    a.metrics(),
                    b.metrics()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let state_after = read_json(db_a.store(), &state_key(&ns)).await.unwrap();
        assert_eq!(state_after["epoch"].as_u64().unwrap(), epoch, "{url}");
        assert_eq!(state_after["leaderId"], both[first].worker_id());
        assert!(
            state_after["leaseEnd"].as_i64().unwrap()
                >= state_before["leaseEnd"].as_i64().unwrap() + 8 * HEARTBEAT.as_millis() as i64,
            "{url}: the lease was renewed"
        );
        assert!(both[first].metrics().renewals >= 8);
        let follower = both[1 - first];
        let seen = follower.get_leader().unwrap();
        assert_eq!(
            (seen.leader_id.as_str(), seen.epoch),
            (both[first].worker_id(), epoch)
        );
        assert_eq!(follower.active_workers().await.unwrap().len(), 2);

        // stop() releases the lease: the other takes over within about one interval.
        let t = Instant::now();
        both[first].stop().await.unwrap();
        let took = wait_for(HEARTBEAT * 3, || follower.is_leader())
            .await
            .unwrap_or_else(|| panic!("{url}: no takeover after stop"));
        eprintln!("{url}: takeover after stop() in {:?}", t.elapsed());
        assert!(took <= HEARTBEAT * 2, "{url}: {took:?}");
        assert_eq!(follower.fencing_token(), Some(epoch + 1), "{url}");
        // The follower's events: the first leader, then itself.
        let mut got = Vec::new();
        while let Ok(e) = events[1 - first].try_recv() {
            got.push(e);
        }
        assert_eq!(
            got,
            [
                CoordinatorEvent::LeaderChanged {
                    leader_id: both[first].worker_id().to_string(),
                    epoch
                },
                CoordinatorEvent::BecameLeader { epoch: epoch + 1 },
                CoordinatorEvent::LeaderChanged {
                    leader_id: follower.worker_id().to_string(),
                    epoch: epoch + 1
                }
            ],
            "{url}"
        );
        // The old leader's: itself, then losing it on stop().
        let mut got = Vec::new();
        while let Ok(e) = events[first].try_recv() {
            got.push(e);
        }
        assert_eq!(
            got,
            [
                CoordinatorEvent::BecameLeader { epoch },
                CoordinatorEvent::LeaderChanged {
                    leader_id: both[first].worker_id().to_string(),
                    epoch
                },
                CoordinatorEvent::LostLeadership { epoch }
            ],
            "{url}"
        );
        follower.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_leader_is_replaced_within_lease_plus_heartbeat() {
    for url in backends() {
        let ns = random_name("ns");
        let (db_a, db_b) = (connect(&url).await, connect(&url).await);
        let opts = options();
        let a = db_a.coordinator(&ns, opts.clone()).unwrap();
        a.start().await.unwrap();
        assert!(a.is_leader());
        let b = db_b.coordinator(&ns, opts.clone()).unwrap();
        b.start().await.unwrap();
        tokio::time::sleep(HEARTBEAT * 3).await;
        assert!(a.is_leader() && !b.is_leader(), "{url}");
        let epoch = a.fencing_token().unwrap();

        // Dropping the last handle without stop() ends its task like a crash: no release.
        let crashed = Instant::now();
        drop(a);
        let took = wait_for(opts.lease_timeout + HEARTBEAT * 3, || b.is_leader())
            .await
            .unwrap_or_else(|| panic!("{url}: no takeover after a crash"));
        eprintln!("{url}: takeover after a crash in {took:?}");
        assert!(
            took <= opts.lease_timeout + HEARTBEAT + Duration::from_millis(150),
            "{url}: {took:?}"
        );
        assert!(crashed.elapsed() >= opts.lease_timeout - HEARTBEAT * 2);
        assert_eq!(b.fencing_token(), Some(epoch + 1));
        let state = read_json(db_b.store(), &state_key(&ns)).await.unwrap();
        assert_eq!(state["leaderId"], b.worker_id());
        assert_eq!(state["epoch"].as_u64(), Some(epoch + 1));
        b.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_election_winner_does_not_block_the_election() {
    for url in backends() {
        let ns = random_name("ns");
        let opts = options();
        let mut dbs = Vec::new();
        let mut cs = Vec::new();
        for _ in 0..3 {
            let db = connect(&url).await;
            let c = db.coordinator(&ns, opts.clone()).unwrap();
            c.start().await.unwrap();
            // Distinct start times: a is the oldest, then b, then c.
            tokio::time::sleep(Duration::from_millis(20)).await;
            dbs.push(db);
            cs.push(c);
        }
        let c = cs.pop().unwrap();
        tokio::time::sleep(HEARTBEAT * 2).await;
        assert!(cs[0].is_leader() && !cs[1].is_leader() && !c.is_leader());
        let epoch = cs[0].fencing_token().unwrap();
        // The leader and the next in line (oldest) crash together: b's heartbeat stays
        // fresh for a while, so c must not wait for b forever.
        let t = Instant::now();
        cs.clear();
        let took = wait_for(opts.lease_timeout + HEARTBEAT * 6, || c.is_leader())
            .await
            .unwrap_or_else(|| panic!("{url}: no takeover"));
        eprintln!("{url}: takeover with a dead winner in {:?}", t.elapsed());
        assert!(
            took <= opts.lease_timeout + HEARTBEAT * 4,
            "{url}: {took:?}"
        );
        assert_eq!(c.fencing_token(), Some(epoch + 1));
        c.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_whose_worker_is_gone_is_replaced_before_its_lease_ends() {
    for url in backends() {
        let ns = random_name("ns");
        let (db_a, db_b) = (connect(&url).await, connect(&url).await);
        let opts = CoordinatorOptions {
            lease_timeout: HEARTBEAT * 15,
            worker_timeout: HEARTBEAT * 20,
            ..options()
        };
        let a = db_a.coordinator(&ns, opts.clone()).unwrap();
        a.start().await.unwrap();
        let b = db_b.coordinator(&ns, opts.clone()).unwrap();
        b.start().await.unwrap();
        tokio::time::sleep(HEARTBEAT * 2).await;
        let epoch = a.fencing_token().unwrap();
        let a_id = a.worker_id().to_string();
        // The leader crashes and its heartbeat disappears (s3db.js removes stale ones).
        drop(a);
        let t = Instant::now();
        db_b.store()
            .delete(
                &format!("plugin=coordinator/namespace={ns}/workers/worker={a_id}.json"),
                None,
            )
            .await
            .unwrap();
        let took = wait_for(opts.lease_timeout, || b.is_leader())
            .await
            .unwrap_or_else(|| panic!("{url}: no takeover before the lease ended"));
        eprintln!(
            "{url}: takeover of a gone leader in {took:?} (lease {:?})",
            opts.lease_timeout
        );
        assert!(took <= HEARTBEAT * 5, "{url}: {took:?}");
        assert!(t.elapsed() < opts.lease_timeout);
        assert_eq!(b.fencing_token(), Some(epoch + 1));
        b.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_requests_per_interval() {
    for url in backends() {
        let ns = random_name("ns");
        let (db_a, db_b) = (connect(&url).await, connect(&url).await);
        let a = db_a.coordinator(&ns, options()).unwrap();
        a.start().await.unwrap();
        let b = db_b.coordinator(&ns, options()).unwrap();
        b.start().await.unwrap();
        tokio::time::sleep(HEARTBEAT * 2).await;
        assert!(a.is_leader());

        // Snapshots taken between two rounds of each worker, so counts are exact.
        let (sa, ma, ta) = quiet_point(&a, &db_a).await;
        let (sb, mb, tb) = quiet_point(&b, &db_b).await;
        tokio::time::sleep(HEARTBEAT * 10).await;
        let (sa2, ma2, ta2) = quiet_point(&a, &db_a).await;
        let (sb2, mb2, tb2) = quiet_point(&b, &db_b).await;
        let (da, db) = (delta(sa, sa2), delta(sb, sb2));
        let (hb_a, hb_b) = (
            ma2.heartbeats - ma.heartbeats,
            mb2.heartbeats - mb.heartbeats,
        );
        eprintln!("{url}: {hb_a} intervals: leader {da:?}; {hb_b} intervals: follower {db:?}");
        for (hb, took) in [(hb_a, ta2 - ta), (hb_b, tb2 - tb)] {
            let intervals = (took.as_secs_f64() / HEARTBEAT.as_secs_f64()).round() as u64;
            // A loaded 2-core machine can delay a round by one more interval.
            assert!(
                hb.abs_diff(intervals) <= 2 && intervals >= 10,
                "{url}: {hb} heartbeats in {took:?}"
            );
        }
        // Leader: per interval one heartbeat PUT and one lease-renewal PUT, nothing else.
        assert_eq!(ma2.renewals - ma.renewals, hb_a, "{url}");
        assert_eq!(da.put, 2 * hb_a, "{url}: {da:?}");
        assert_eq!((da.get, da.list, da.delete, da.head), (0, 0, 0, 0), "{url}");
        // Follower: one heartbeat PUT and one GET of state.json; no listing.
        assert_eq!((db.put, db.get), (hb_b, hb_b), "{url}: {db:?}");
        assert_eq!((db.list, db.delete, db.head), (0, 0, 0), "{url}");
        assert_eq!(mb2.elections, mb.elections);
        assert_eq!(ma2.storage_failures, 0);
        assert!(ma2.heartbeat_p50_ms > 0.0 && ma2.heartbeat_p99_ms >= ma2.heartbeat_p50_ms);
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    }
}

/// Waits for the worker's next round to have finished: its requests and metrics agree.
async fn quiet_point(c: &Coordinator, db: &Database) -> (Stats, s3db::CoordinatorMetrics, Instant) {
    let n = c.metrics().heartbeats;
    wait_for(HEARTBEAT * 3, || c.metrics().heartbeats > n)
        .await
        .expect("a heartbeat");
    let at = Instant::now();
    tokio::time::sleep(HEARTBEAT / 2).await;
    (db.stats(), c.metrics(), at)
}

/// A backend whose requests all fail (transiently) while `failing` is set.
#[derive(Debug)]
struct Failing {
    inner: Arc<dyn ObjectStore>,
    failing: AtomicBool,
}

impl Failing {
    fn check(&self) -> StoreResult<()> {
        if self.failing.load(Ordering::SeqCst) {
            Err(StoreError::Transient("injected".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl ObjectStore for Failing {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.check()?;
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        self.check()?;
        self.inner.put(key, req).await
    }
    async fn copy(
        &self,
        s: &str,
        d: &str,
        m: Metadata,
        c: Option<String>,
        w: WriteCondition,
    ) -> StoreResult<String> {
        self.check()?;
        self.inner.copy(s, d, m, c, w).await
    }
    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        self.check()?;
        self.inner.delete(key, if_match).await
    }
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.check()?;
        self.inner.delete_many(keys).await
    }
    async fn list(&self, p: &str, c: Option<&str>, m: usize) -> StoreResult<ListPage> {
        self.check()?;
        self.inner.list(p, c, m).await
    }
}

fn backend_of(url: &str) -> (Arc<dyn ObjectStore>, String) {
    let conn = ConnectionString::parse(url).unwrap();
    let backend: Arc<dyn ObjectStore> = match &conn.endpoint {
        Endpoint::Memory { bucket } => Arc::new(MemoryStore::shared(bucket)),
        Endpoint::File { root } => Arc::new(FileStore::open(root).unwrap()),
        Endpoint::S3 { .. } => Arc::new(S3Store::new(&conn).unwrap()),
    };
    (backend, conn.prefix.clone())
}

async fn next_event(
    rx: &mut broadcast::Receiver<CoordinatorEvent>,
    limit: Duration,
    want: impl Fn(&CoordinatorEvent) -> bool,
) -> Option<(CoordinatorEvent, i64)> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if want(&e) => return Some((e, now_ms())),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("events: {e}"),
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_on_failing_storage_steps_down_before_its_lease_ends() {
    for url in backends() {
        let ns = random_name("ns");
        let (backend, prefix) = backend_of(&url);
        let failing = Arc::new(Failing {
            inner: backend,
            failing: AtomicBool::new(false),
        });
        let db_a = Database::with_store(Store::new(failing.clone(), &prefix))
            .await
            .unwrap();
        let db_b = connect(&url).await;
        let opts = CoordinatorOptions {
            circuit_breaker_threshold: 3,
            ..options()
        };
        let a = db_a.coordinator(&ns, opts.clone()).unwrap();
        a.start().await.unwrap();
        let b = db_b.coordinator(&ns, opts.clone()).unwrap();
        b.start().await.unwrap();
        tokio::time::sleep(HEARTBEAT * 3).await;
        assert!(a.is_leader() && !b.is_leader(), "{url}");
        let epoch = a.fencing_token().unwrap();
        let mut events = a.subscribe();
        // Wall-clock time of the last moment `a` said it led (taken before asking).
        let last_led = Arc::new(AtomicI64::new(0));
        let sampler = {
            let (a, last_led) = (a.clone(), last_led.clone());
            tokio::spawn(async move {
                loop {
                    let t = now_ms();
                    if a.is_leader() {
                        last_led.store(t, Ordering::SeqCst);
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
        };

        failing.failing.store(true, Ordering::SeqCst);
        next_event(&mut events, opts.lease_timeout * 2, |e| {
            *e == CoordinatorEvent::LostLeadership { epoch }
        })
        .await
        .unwrap_or_else(|| panic!("{url}: the leader never stepped down"));
        assert!(!a.is_leader());
        sampler.abort();
        let lost_at = last_led.load(Ordering::SeqCst);
        // The lease the others see is the last one the leader managed to write.
        let state = read_json(db_b.store(), &state_key(&ns)).await.unwrap();
        assert_eq!(state["leaderId"], a.worker_id(), "{url}");
        let lease_end = state["leaseEnd"].as_i64().unwrap();
        eprintln!(
            "{url}: last believed it led {} ms before the lease ended",
            lease_end - lost_at
        );
        assert!(
            lost_at < lease_end,
            "{url}: stepped down at {lost_at}, lease ended {lease_end}"
        );

        // The circuit opens after `threshold` consecutive failures, with an event.
        let (opened, _) = next_event(&mut events, opts.lease_timeout * 2, |e| {
            matches!(e, CoordinatorEvent::CircuitOpened { .. })
        })
        .await
        .unwrap_or_else(|| panic!("{url}: the circuit never opened"));
        assert!(
            matches!(opened, CoordinatorEvent::CircuitOpened { failures } if failures >= 3),
            "{opened:?}"
        );
        assert!(a.metrics().storage_failures >= 3);

        // The healthy worker takes over once the lease has ended, with the next epoch.
        wait_for(opts.lease_timeout * 2, || b.is_leader())
            .await
            .unwrap_or_else(|| panic!("{url}: no takeover"));
        assert_eq!(b.fencing_token(), Some(epoch + 1));
        let state = read_json(db_b.store(), &state_key(&ns)).await.unwrap();
        assert!(state["electedAt"].as_i64().unwrap() >= lease_end, "{url}");

        // Storage heals: after the cool-down the circuit closes and `a` follows `b`.
        failing.failing.store(false, Ordering::SeqCst);
        next_event(
            &mut events,
            opts.circuit_breaker_cooldown + HEARTBEAT * 5,
            |e| *e == CoordinatorEvent::CircuitClosed,
        )
        .await
        .unwrap_or_else(|| panic!("{url}: the circuit never closed"));
        wait_for(HEARTBEAT * 5, || {
            a.get_leader()
                .is_some_and(|l| l.leader_id == b.worker_id() && l.epoch == epoch + 1)
        })
        .await
        .unwrap_or_else(|| panic!("{url}: a does not see the new leader"));
        assert!(!a.is_leader() && b.is_leader());
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn options_are_validated() {
    let db = connect(&format!("memory://{}", random_name("b"))).await;
    let bad = CoordinatorOptions {
        lease_timeout: Duration::from_secs(5),
        ..CoordinatorOptions::default()
    };
    assert!(db.coordinator("ns", bad).is_err());
    assert!(db
        .coordinator("a/b", CoordinatorOptions::default())
        .is_err());
    assert!(db.coordinator("ns", CoordinatorOptions::default()).is_ok());
}

// ---------------------------------------------------------------------------------------
// Several OS processes: the test binary re-runs itself as children.

const CHILD_URL: &str = "S3DB_COORD_CHILD_URL";
const CHILD_DIR: &str = "S3DB_COORD_CHILD_DIR";
const CHILD_NS: &str = "S3DB_COORD_CHILD_NS";
const CHILD_MS: &str = "S3DB_COORD_CHILD_MS";

/// Child: runs a coordinator for `CHILD_MS`, writes its worker id at once and, at the end,
/// the wall-clock intervals during which it believed it led (sampled every 2 ms).
#[tokio::test(flavor = "multi_thread")]
async fn coordinator_child() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let dir = std::env::var(CHILD_DIR).unwrap();
    let ns = std::env::var(CHILD_NS).unwrap();
    let run = Duration::from_millis(std::env::var(CHILD_MS).unwrap().parse().unwrap());
    let db = connect(&url).await;
    let c = db.coordinator(&ns, options()).unwrap();
    let pid = std::process::id();
    std::fs::write(format!("{dir}/id-{pid}.txt"), c.worker_id()).unwrap();
    c.start().await.unwrap();
    let mut runs: Vec<(i64, i64, u64)> = Vec::new();
    let mut current: Option<(i64, u64)> = None;
    let start = Instant::now();
    while start.elapsed() < run {
        let now = now_ms();
        match (c.fencing_token(), current) {
            (Some(epoch), None) => current = Some((now, epoch)),
            (Some(epoch), Some((_, e))) if e != epoch => panic!("epoch moved while leading"),
            (None, Some((from, epoch))) => {
                runs.push((from, now, epoch));
                current = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    if let Some((from, epoch)) = current {
        runs.push((from, now_ms(), epoch));
    }
    c.stop().await.unwrap();
    let text: String = runs
        .iter()
        .map(|(a, b, e)| format!("{a} {b} {e}\n"))
        .collect();
    std::fs::write(format!("{dir}/runs-{pid}.txt"), text).unwrap();
}

fn spawn_child(url: &str, dir: &str, ns: &str, run: Duration) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "coordinator_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .env(CHILD_DIR, dir)
        .env(CHILD_NS, ns)
        .env(CHILD_MS, run.as_millis().to_string())
        .spawn()
        .unwrap()
}

/// Backends a second process can see: file and S3.
fn shared_backends() -> Vec<String> {
    backends()
        .into_iter()
        .filter(|u| !u.starts_with("memory://"))
        .collect()
}

async fn wait_for_file(path: &str) {
    let t = Instant::now();
    while std::fs::metadata(path).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{path} never appeared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn read_runs(dir: &str, pid: u32) -> Vec<(i64, i64, u64)> {
    std::fs::read_to_string(format!("{dir}/runs-{pid}.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            (
                v[0].parse().unwrap(),
                v[1].parse().unwrap(),
                v[2].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_never_lead_at_once() {
    if std::env::var(CHILD_URL).is_ok() {
        return;
    }
    for url in shared_backends() {
        let dir = tempdir();
        let ns = random_name("ns");
        // The first process leads, stops after 1.5 s and hands over to the second.
        let run = Duration::from_secs(3);
        let first = spawn_child(&url, &dir, &ns, run / 2);
        wait_for_file(&format!("{dir}/id-{}.txt", first.id())).await;
        tokio::time::sleep(HEARTBEAT * 2).await;
        let second = spawn_child(&url, &dir, &ns, run);
        let children = vec![first, second];
        let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
        for mut c in children {
            assert!(c.wait().unwrap().success(), "{url}: a child failed");
        }
        let runs: Vec<Vec<(i64, i64, u64)>> = pids.iter().map(|p| read_runs(&dir, *p)).collect();
        eprintln!("{url}: leadership runs per process: {runs:?}");
        // No instant at which both believed they led.
        for x in &runs[0] {
            for y in &runs[1] {
                assert!(
                    x.1 <= y.0 || y.1 <= x.0,
                    "{url}: overlapping leadership {x:?} and {y:?}"
                );
            }
        }
        // Both led, one after the other, with epochs 1 then 2; someone led nearly all the
        // time from the first election to the end.
        assert_eq!(
            runs.iter()
                .map(|r| r.iter().map(|x| x.2).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            [vec![1], vec![2]],
            "{url}"
        );
        let all: Vec<&(i64, i64, u64)> = runs.iter().flatten().collect();
        let span = all.iter().map(|r| r.1).max().unwrap() - all.iter().map(|r| r.0).min().unwrap();
        let led: i64 = all.iter().map(|r| r.1 - r.0).sum();
        assert!(
            led as f64 >= 0.9 * span as f64,
            "{url}: led only {led} ms of {span} ms"
        );
        for x in &runs[0] {
            for y in &runs[1] {
                assert_ne!(x.2, y.2, "{url}: two processes led with one epoch");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_leader_process_elects_another() {
    if std::env::var(CHILD_URL).is_ok() {
        return;
    }
    let opts = options();
    for url in shared_backends() {
        let dir = tempdir();
        let ns = random_name("ns");
        let db = connect(&url).await;
        let mut children: Vec<Child> = (0..2)
            .map(|_| spawn_child(&url, &dir, &ns, Duration::from_secs(30)))
            .collect();
        let guard = KillOnDrop(&mut children);
        // Wait for a leader in state.json with a valid lease and both workers' ids.
        let t = Instant::now();
        let (leader, epoch) = loop {
            assert!(t.elapsed() < Duration::from_secs(20), "{url}: no leader");
            let ids: Vec<String> = guard
                .0
                .iter()
                .filter_map(|c| std::fs::read_to_string(format!("{dir}/id-{}.txt", c.id())).ok())
                .collect();
            if ids.len() == 2 {
                if let Some(s) = read_json(db.store(), &state_key(&ns)).await {
                    if s["leaseEnd"].as_i64().unwrap() > now_ms() {
                        let leader = s["leaderId"].as_str().unwrap().to_string();
                        break (leader, s["epoch"].as_u64().unwrap());
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let idx = guard
            .0
            .iter()
            .position(|c| {
                std::fs::read_to_string(format!("{dir}/id-{}.txt", c.id())).unwrap() == leader
            })
            .unwrap();
        // Let the other worker settle as a follower, then SIGKILL the leader.
        tokio::time::sleep(HEARTBEAT * 3).await;
        let killed = Instant::now();
        guard.0[idx].kill().unwrap();
        guard.0[idx].wait().unwrap();
        let (new_leader, new_epoch) = loop {
            assert!(
                killed.elapsed() < opts.lease_timeout * 4,
                "{url}: no new leader"
            );
            let s = read_json(db.store(), &state_key(&ns)).await.unwrap();
            if s["leaderId"] != leader.as_str() {
                break (
                    s["leaderId"].as_str().unwrap().to_string(),
                    s["epoch"].as_u64().unwrap(),
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let took = killed.elapsed();
        eprintln!("{url}: new leader {took:?} after SIGKILL of the leader process");
        assert_ne!(new_leader, leader);
        assert_eq!(new_epoch, epoch + 1, "{url}");
        assert!(
            took <= opts.lease_timeout + HEARTBEAT + Duration::from_millis(200),
            "{url}: {took:?}"
        );
    }
}

struct KillOnDrop<'a>(&'a mut Vec<Child>);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        for c in self.0.iter_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
