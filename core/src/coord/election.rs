//! Leader election: a global coordinator per namespace.
//!
//! Objects under `plugin=coordinator/namespace=<NS>/`, laid out as s3db.js 21.x does
//! (spec §12.4): `metadata.json` (created once), `workers/worker=<id>.json` (each worker's
//! heartbeat, rewritten every interval), `state.json` (the leader lease) and
//! `checkpoint.json` (leader and epoch, written on each election).
//!
//! The lease lives in `state.json`. It is created with `If-None-Match: *` and every change
//! is a compare-and-swap (`If-Match`) on the etag that was read, so the store alone decides
//! who leads. The leader renews its lease by CAS every heartbeat interval, keeping the epoch;
//! the epoch grows by one only when another worker takes over, so it can serve as a fencing
//! token. A leader believes it leads only until `lease_timeout` (minus a safety margin)
//! after it *sent* its last successful renewal, measured on its monotonic clock: when it
//! cannot renew in time it steps down before the lease others see has ended.
//!
//! Steady-state cost per heartbeat interval: a leader sends 2 PUTs (heartbeat, lease
//! renewal); a follower 1 PUT (heartbeat) and 1 GET (`state.json`). Workers are listed
//! (1 LIST + 1 GET per other worker) only when an election is needed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::coord::Context;
use crate::error::{Error, Result};
use crate::format::ids::validate_name;
use crate::storage::{now_millis, PutRequest, StoreError, StoreResult, WriteCondition};

/// How the winner is chosen among the active workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ElectionStrategy {
    /// The worker with the oldest `startTime` (ties: smallest id). s3db.js's `timestamp`.
    #[default]
    OldestStart,
    /// The smallest worker id. s3db.js's `alphabetical`.
    Alphabetical,
}

impl ElectionStrategy {
    /// s3db.js's name: `timestamp` or `alphabetical`.
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionStrategy::OldestStart => "timestamp",
            ElectionStrategy::Alphabetical => "alphabetical",
        }
    }
}

impl std::str::FromStr for ElectionStrategy {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "timestamp" | "oldest" => Ok(ElectionStrategy::OldestStart),
            "alphabetical" => Ok(ElectionStrategy::Alphabetical),
            other => Err(Error::invalid(format!(
                "unknown election strategy {other:?} (timestamp, alphabetical)"
            ))),
        }
    }
}

/// Timing and behaviour of a [`Coordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// How often a worker writes its heartbeat and the leader renews its lease (5 s).
    pub heartbeat_interval: Duration,
    /// Length of a lease from the moment the write was sent (15 s).
    pub lease_timeout: Duration,
    /// A worker whose heartbeat is older than this is gone (20 s).
    pub worker_timeout: Duration,
    /// `start()` first waits a random time up to this long (1 s; 0 disables).
    pub startup_jitter: Duration,
    /// A leader steps down this long before its lease would end, to absorb clock drift
    /// between workers (1 s).
    pub step_down_margin: Duration,
    /// Consecutive failed storage requests that open the circuit breaker (5).
    pub circuit_breaker_threshold: u32,
    /// How long an open circuit pauses all storage requests before one trial tick (10 s).
    pub circuit_breaker_cooldown: Duration,
    pub strategy: ElectionStrategy,
    /// Written as `pod`/`leaderPod`; default `$POD_NAME`, `$HOSTNAME` or the host name.
    pub pod: Option<String>,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            heartbeat_interval: Duration::from_secs(5),
            lease_timeout: Duration::from_secs(15),
            worker_timeout: Duration::from_secs(20),
            startup_jitter: Duration::from_secs(1),
            step_down_margin: Duration::from_secs(1),
            circuit_breaker_threshold: 5,
            circuit_breaker_cooldown: Duration::from_secs(10),
            strategy: ElectionStrategy::OldestStart,
            pod: None,
        }
    }
}

impl CoordinatorOptions {
    /// The defaults scaled to another heartbeat interval: lease 3×, worker timeout 4×,
    /// startup jitter and step-down margin 1/5, circuit cool-down 2×.
    pub fn with_heartbeat(interval: Duration) -> Self {
        CoordinatorOptions {
            heartbeat_interval: interval,
            lease_timeout: interval * 3,
            worker_timeout: interval * 4,
            startup_jitter: interval / 5,
            step_down_margin: interval / 5,
            circuit_breaker_cooldown: interval * 2,
            ..CoordinatorOptions::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        if self.heartbeat_interval.is_zero() {
            return Err(Error::invalid("heartbeat_interval must be positive"));
        }
        if self.heartbeat_interval + self.step_down_margin >= self.lease_timeout {
            return Err(Error::invalid(
                "lease_timeout must exceed heartbeat_interval + step_down_margin, \
                 or the leader could not renew before stepping down",
            ));
        }
        if self.heartbeat_interval + self.step_down_margin >= self.worker_timeout {
            return Err(Error::invalid(
                "worker_timeout must exceed heartbeat_interval + step_down_margin",
            ));
        }
        if self.circuit_breaker_threshold == 0 {
            return Err(Error::invalid(
                "circuit_breaker_threshold must be at least 1",
            ));
        }
        if let Some(pod) = &self.pod {
            validate_name("pod", pod)?;
        }
        Ok(())
    }
}

/// Delivered to every [`Coordinator::subscribe`] receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorEvent {
    /// A leader (or a new epoch) was observed, this worker included.
    LeaderChanged {
        leader_id: String,
        epoch: u64,
    },
    /// This worker now leads; `epoch` is its fencing token.
    BecameLeader {
        epoch: u64,
    },
    /// This worker stopped leading (lost the CAS, could not renew in time, circuit opened,
    /// or `stop()`).
    LostLeadership {
        epoch: u64,
    },
    /// `failures` consecutive storage requests failed: storage is paused for the cool-down.
    CircuitOpened {
        failures: u32,
    },
    CircuitClosed,
}

/// The leader as last seen in `state.json` (or this worker, while it leads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderInfo {
    pub leader_id: String,
    pub epoch: u64,
    /// Milliseconds since the epoch (the leader's wall clock when it sent the renewal,
    /// plus the lease).
    pub lease_end: i64,
}

/// One worker's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub worker_id: String,
    pub pod: Option<String>,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    /// Milliseconds since the epoch.
    pub last_heartbeat: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CoordinatorMetrics {
    /// Heartbeats written.
    pub heartbeats: u64,
    /// Lease renewals written while leading.
    pub renewals: u64,
    /// Election rounds run (each lists the workers).
    pub elections: u64,
    /// Changes of the observed leader or epoch.
    pub leader_changes: u64,
    /// Storage requests that failed (not counting 404/409/412, which are answers).
    pub storage_failures: u64,
    pub heartbeat_p50_ms: f64,
    pub heartbeat_p99_ms: f64,
}

// ---------------------------------------------------------------------------------------
// Stored objects (field names and order as s3db.js writes them).

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateBody {
    #[serde(default)]
    leader_id: Option<String>,
    #[serde(default)]
    leader_pod: Option<String>,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    lease_start: i64,
    #[serde(default)]
    lease_end: i64,
    #[serde(default)]
    elected_by: Option<String>,
    #[serde(default)]
    elected_at: i64,
    #[serde(rename = "_expiresAt", default)]
    expires_at: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeartbeatBody {
    worker_id: String,
    #[serde(default)]
    plugin_name: Option<String>,
    #[serde(default)]
    pod: Option<String>,
    last_heartbeat: i64,
    #[serde(default)]
    start_time: i64,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(rename = "_expiresAt", default)]
    expires_at: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MetadataBody<'a> {
    namespace: &'a str,
    service_id: String,
    created_at: i64,
    created_by: &'a str,
    plugins: [String; 0],
    #[serde(rename = "_expiresAt")]
    expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckpointBody {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    leader_id: Option<String>,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    generated_at: i64,
    #[serde(default)]
    updated_by: Option<String>,
    #[serde(rename = "_expiresAt", default)]
    expires_at: i64,
}

impl StateBody {
    fn lease(
        leader: &str,
        pod: &str,
        epoch: u64,
        now: i64,
        lease_end: i64,
        elected_by: &str,
        elected_at: i64,
    ) -> StateBody {
        StateBody {
            leader_id: Some(leader.to_string()),
            leader_pod: Some(pod.to_string()),
            epoch,
            lease_start: now,
            lease_end,
            elected_by: Some(elected_by.to_string()),
            elected_at,
            // s3db.js: storage TTL of the lease + 60 s.
            expires_at: lease_end + 60_000,
        }
    }
}

impl HeartbeatBody {
    fn new(
        worker_id: &str,
        pod: &str,
        namespace: &str,
        now: i64,
        start_time: i64,
        worker_timeout: Duration,
    ) -> HeartbeatBody {
        HeartbeatBody {
            worker_id: worker_id.to_string(),
            plugin_name: Some("coordinator".into()),
            pod: Some(pod.to_string()),
            last_heartbeat: now,
            start_time,
            namespace: Some(namespace.to_string()),
            expires_at: now + worker_timeout.as_millis() as i64,
        }
    }
}

impl<'a> MetadataBody<'a> {
    fn new(namespace: &'a str, service_id: String, now: i64, created_by: &'a str) -> Self {
        MetadataBody {
            namespace,
            service_id,
            created_at: now,
            created_by,
            plugins: [],
            expires_at: now + 3_600_000,
        }
    }
}

impl CheckpointBody {
    fn new(namespace: &str, leader: &str, epoch: u64, now: i64, lease: Duration) -> Self {
        CheckpointBody {
            namespace: Some(namespace.to_string()),
            leader_id: Some(leader.to_string()),
            epoch,
            generated_at: now,
            updated_by: Some(leader.to_string()),
            expires_at: now + lease.as_millis() as i64 + 60_000,
        }
    }
}

/// What `state.json` held when read.
#[derive(Debug, Clone)]
enum StateRead {
    Missing,
    /// Present but not a lease this engine can read; taken over by CAS on its etag.
    Corrupt {
        etag: String,
    },
    Present {
        body: StateBody,
        etag: String,
    },
}

// ---------------------------------------------------------------------------------------

static WORKER_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A worker taking part in the leader election of one namespace. Cloning shares the
/// worker; dropping the last clone without [`stop`](Coordinator::stop) ends the background
/// task like a crash would (the lease then simply expires).
#[derive(Debug, Clone)]
pub struct Coordinator {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    task: tokio::sync::Mutex<Option<Task>>,
}

#[derive(Debug)]
struct Task {
    join: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().take() {
            task.join.abort();
        }
    }
}

#[derive(Debug)]
struct Keys {
    state: String,
    metadata: String,
    checkpoint: String,
    workers: String,
    heartbeat: String,
}

#[derive(Debug)]
struct Shared {
    db: Arc<Context>,
    namespace: String,
    worker_id: String,
    pod: String,
    opts: CoordinatorOptions,
    keys: Keys,
    events: broadcast::Sender<CoordinatorEvent>,
    status: std::sync::Mutex<Status>,
}

#[derive(Debug, Clone)]
struct Leading {
    epoch: u64,
    etag: String,
    /// Monotonic: lease renewal sent + lease_timeout − margin.
    lease_valid_until: Instant,
    lease_end: i64,
    elected_by: String,
    elected_at: i64,
}

#[derive(Debug, Default)]
struct Circuit {
    failures: u32,
    open_until: Option<Instant>,
    half_open: bool,
}

#[derive(Debug)]
struct Status {
    start_time: i64,
    leading: Option<Leading>,
    /// Monotonic: last successful heartbeat sent + worker_timeout − margin. A leader whose
    /// heartbeat is older than that could be judged gone by the others.
    heartbeat_valid_until: Option<Instant>,
    /// The leader last read from `state.json` while following.
    observed: Option<LeaderInfo>,
    /// Etag of `state.json` when last read, and since when it has not changed.
    observed_etag: Option<(String, Instant)>,
    /// Last (leader, epoch) announced with `LeaderChanged`.
    announced: Option<(String, u64)>,
    /// Since when this worker has seen no valid lease.
    vacant_since: Option<Instant>,
    circuit: Circuit,
    metrics: CoordinatorMetrics,
    latencies: VecDeque<f64>,
}

const LATENCY_SAMPLES: usize = 1024;

impl Coordinator {
    pub(crate) fn new(
        db: Arc<Context>,
        namespace: &str,
        opts: CoordinatorOptions,
    ) -> Result<Coordinator> {
        validate_name("coordinator namespace", namespace)?;
        opts.validate()?;
        let n = WORKER_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        let worker_id = format!("gcs-{}-{n}", db.holder_id);
        let pod = opts.pod.clone().unwrap_or_else(default_pod);
        let base = format!("plugin=coordinator/namespace={namespace}/");
        let keys = Keys {
            state: format!("{base}state.json"),
            metadata: format!("{base}metadata.json"),
            checkpoint: format!("{base}checkpoint.json"),
            heartbeat: format!("{base}workers/worker={worker_id}.json"),
            workers: format!("{base}workers/"),
        };
        let (events, _) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            db,
            namespace: namespace.to_string(),
            worker_id,
            pod,
            opts,
            keys,
            events,
            status: std::sync::Mutex::new(Status {
                start_time: now_millis(),
                leading: None,
                heartbeat_valid_until: None,
                observed: None,
                observed_etag: None,
                announced: None,
                vacant_since: None,
                circuit: Circuit::default(),
                metrics: CoordinatorMetrics::default(),
                latencies: VecDeque::new(),
            }),
        });
        Ok(Coordinator {
            handle: Arc::new(Handle {
                shared,
                task: tokio::sync::Mutex::new(None),
            }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.handle.shared
    }

    /// `gcs-<holder id>-<counter>`: unique per coordinator, also within one process.
    pub fn worker_id(&self) -> &str {
        &self.shared().worker_id
    }

    pub fn namespace(&self) -> &str {
        &self.shared().namespace
    }

    pub fn options(&self) -> &CoordinatorOptions {
        &self.shared().opts
    }

    /// Joins the election: waits the startup jitter, creates `metadata.json` if absent,
    /// runs a first round (heartbeat, and an election if there is no valid lease) and then
    /// keeps going in a background tokio task. Starting a running coordinator does nothing.
    /// Fails only when storage cannot be written at all.
    pub async fn start(&self) -> Result<()> {
        let mut slot = self.handle.task.lock().await;
        if slot.is_some() {
            return Ok(());
        }
        let shared = self.shared().clone();
        let jitter = shared.opts.startup_jitter.as_millis() as u64;
        if jitter > 0 {
            tokio::time::sleep(Duration::from_millis(rand::random_range(0..=jitter))).await;
        }
        {
            let mut st = shared.status();
            st.start_time = now_millis();
            st.circuit = Circuit::default();
            st.vacant_since = None;
            st.observed_etag = None;
        }
        shared.write_metadata().await?;
        shared.tick().await;
        let (stop, stop_rx) = watch::channel(false);
        let join = tokio::spawn(run(shared, stop_rx));
        *slot = Some(Task { join, stop });
        Ok(())
    }

    /// Leaves the election: ends the background task, releases the lease by CAS if this
    /// worker leads (so a successor can take over at once) and deletes its heartbeat.
    pub async fn stop(&self) -> Result<()> {
        let Some(mut task) = self.handle.task.lock().await.take() else {
            return Ok(());
        };
        let shared = self.shared();
        let _ = task.stop.send(true);
        if tokio::time::timeout(shared.opts.lease_timeout, &mut task.join)
            .await
            .is_err()
        {
            task.join.abort();
        }
        let leading = {
            let mut st = shared.status();
            st.observed = None;
            st.announced = None;
            st.leading.take()
        };
        let mut result = Ok(());
        if let Some(lead) = leading {
            shared.emit(CoordinatorEvent::LostLeadership { epoch: lead.epoch });
            result = shared.release(&lead).await;
        }
        match shared.db.store.delete(&shared.keys.heartbeat, None).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => {
                if result.is_ok() {
                    result = Err(e.at(&shared.keys.heartbeat));
                }
            }
        }
        shared.status().heartbeat_valid_until = None;
        result
    }

    /// Whether the background task is running.
    pub async fn is_running(&self) -> bool {
        self.handle.task.lock().await.is_some()
    }

    /// Events from now on. A slow receiver loses the oldest (tokio broadcast semantics).
    pub fn subscribe(&self) -> broadcast::Receiver<CoordinatorEvent> {
        self.shared().events.subscribe()
    }

    /// True only while this worker holds a lease it renewed less than `lease_timeout −
    /// step_down_margin` ago (monotonic clock, from the moment the renewal was sent).
    pub fn is_leader(&self) -> bool {
        self.fencing_token().is_some()
    }

    /// The epoch of the lease this worker holds, while [`is_leader`](Self::is_leader).
    /// Stamp it on writes that only the leader may make.
    pub fn fencing_token(&self) -> Option<u64> {
        let st = self.shared().status();
        st.leading
            .as_ref()
            .filter(|l| valid(l, &st))
            .map(|l| l.epoch)
    }

    /// This worker while it leads; otherwise the leader of the valid lease last read
    /// from `state.json`, if any.
    pub fn get_leader(&self) -> Option<LeaderInfo> {
        let shared = self.shared();
        let st = shared.status();
        if let Some(l) = st.leading.as_ref().filter(|l| valid(l, &st)) {
            return Some(LeaderInfo {
                leader_id: shared.worker_id.clone(),
                epoch: l.epoch,
                lease_end: l.lease_end,
            });
        }
        st.observed
            .clone()
            .filter(|o| o.leader_id != shared.worker_id && o.lease_end > now_millis())
    }

    /// Workers whose heartbeat is younger than `worker_timeout` (1 LIST + 1 GET each).
    pub async fn active_workers(&self) -> Result<Vec<WorkerInfo>> {
        let shared = self.shared();
        let workers = shared
            .list_workers(false)
            .await
            .map_err(|e| e.at(&shared.keys.workers))?;
        let now = now_millis();
        let timeout = shared.opts.worker_timeout.as_millis() as i64;
        Ok(workers
            .into_iter()
            .filter(|w| now - w.last_heartbeat < timeout)
            .collect())
    }

    pub fn metrics(&self) -> CoordinatorMetrics {
        let st = self.shared().status();
        let mut m = st.metrics.clone();
        let mut lat: Vec<f64> = st.latencies.iter().copied().collect();
        lat.sort_by(|a, b| a.total_cmp(b));
        m.heartbeat_p50_ms = percentile(&lat, 0.50);
        m.heartbeat_p99_ms = percentile(&lat, 0.99);
        m
    }
}

/// The winner among the workers whose heartbeat is newer than `alive_after` (ms), `me`
/// always included and `exclude` (a leader whose lease ran out) left out. As in s3db.js,
/// plugin workers (ids not starting with `gcs-`) are preferred when there are any.
fn election_winner(
    workers: Vec<WorkerInfo>,
    me: WorkerInfo,
    exclude: Option<&str>,
    alive_after: i64,
    strategy: ElectionStrategy,
) -> Option<String> {
    let mut active: Vec<WorkerInfo> = workers
        .into_iter()
        .filter(|w| w.last_heartbeat > alive_after && w.worker_id != me.worker_id)
        .filter(|w| Some(w.worker_id.as_str()) != exclude)
        .collect();
    active.push(me);
    if active.iter().any(|w| !w.worker_id.starts_with("gcs-")) {
        active.retain(|w| !w.worker_id.starts_with("gcs-"));
    }
    let winner = match strategy {
        ElectionStrategy::OldestStart => active.iter().min_by(|a, b| {
            a.start_time
                .cmp(&b.start_time)
                .then_with(|| a.worker_id.cmp(&b.worker_id))
        }),
        ElectionStrategy::Alphabetical => {
            active.iter().min_by(|a, b| a.worker_id.cmp(&b.worker_id))
        }
    };
    winner.map(|w| w.worker_id.clone())
}

fn valid(l: &Leading, st: &Status) -> bool {
    let now = Instant::now();
    now < l.lease_valid_until && st.heartbeat_valid_until.is_some_and(|h| now < h)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn default_pod() -> String {
    std::env::var("POD_NAME")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| gethostname::gethostname().to_string_lossy().into_owned())
}

/// The background loop: one tick per heartbeat interval, waking up in between only to
/// step down when a lease runs out.
async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let interval = shared.opts.heartbeat_interval;
    let mut next = Instant::now() + interval;
    loop {
        let wake = match shared.step_down_at() {
            Some(d) if d < next => d,
            _ => next,
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(wake) => {}
        }
        if *stop.borrow() {
            return;
        }
        shared.check_lease();
        let now = Instant::now();
        if now >= next {
            next += interval;
            if next <= now {
                next = now + interval;
            }
            shared.tick().await;
        }
    }
}

/// Outcome of one storage request for the circuit breaker.
enum Outcome {
    Ok,
    Failed,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, event: CoordinatorEvent) {
        tracing::debug!(worker = %self.worker_id, ?event, "coordinator event");
        let _ = self.events.send(event);
    }

    fn step_down_at(&self) -> Option<Instant> {
        let st = self.status();
        let lead = st.leading.as_ref()?;
        Some(match st.heartbeat_valid_until {
            Some(h) if h < lead.lease_valid_until => h,
            Some(_) => lead.lease_valid_until,
            None => Instant::now(),
        })
    }

    /// Steps down if the lease (as this worker measures it) has run out.
    fn check_lease(&self) {
        let mut st = self.status();
        let expired = st.leading.as_ref().is_some_and(|l| !valid(l, &st));
        if expired {
            self.step_down(&mut st, "lease ran out before it could be renewed");
        }
    }

    fn step_down(&self, st: &mut Status, why: &str) {
        if let Some(l) = st.leading.take() {
            tracing::info!(worker = %self.worker_id, epoch = l.epoch, why, "stepping down");
            st.observed = None;
            self.emit(CoordinatorEvent::LostLeadership { epoch: l.epoch });
        }
    }

    /// Records the result of a storage request; returns false if the tick should stop
    /// (the circuit is open).
    fn record(&self, outcome: Outcome) -> bool {
        let mut st = self.status();
        if st.circuit.open_until.is_some() {
            // A request that was in flight when the circuit opened.
            if matches!(outcome, Outcome::Failed) {
                st.metrics.storage_failures += 1;
            }
            return false;
        }
        match outcome {
            Outcome::Ok => {
                st.circuit.failures = 0;
                if st.circuit.half_open {
                    st.circuit.half_open = false;
                    tracing::info!(worker = %self.worker_id, "coordinator circuit closed");
                    self.emit(CoordinatorEvent::CircuitClosed);
                }
                true
            }
            Outcome::Failed => {
                st.metrics.storage_failures += 1;
                st.circuit.failures += 1;
                if st.circuit.half_open
                    || st.circuit.failures >= self.opts.circuit_breaker_threshold
                {
                    st.circuit.half_open = false;
                    st.circuit.open_until =
                        Some(Instant::now() + self.opts.circuit_breaker_cooldown);
                    let failures = st.circuit.failures;
                    tracing::warn!(worker = %self.worker_id, failures, "coordinator circuit opened");
                    self.emit(CoordinatorEvent::CircuitOpened { failures });
                    self.step_down(&mut st, "circuit breaker opened");
                    return false;
                }
                true
            }
        }
    }

    fn store_outcome<T>(&self, res: &StoreResult<T>) -> bool {
        match res {
            Ok(_)
            | Err(StoreError::NotFound)
            | Err(StoreError::PreconditionFailed)
            | Err(StoreError::Conflict) => self.record(Outcome::Ok),
            Err(e) => {
                tracing::debug!(worker = %self.worker_id, error = %e, "coordinator storage failure");
                self.record(Outcome::Failed)
            }
        }
    }

    /// One round: heartbeat, then renew (leader) or watch the lease and elect (follower).
    async fn tick(&self) {
        {
            let mut st = self.status();
            if let Some(until) = st.circuit.open_until {
                if Instant::now() < until {
                    return;
                }
                st.circuit.open_until = None;
                st.circuit.half_open = true;
            }
        }
        self.check_lease();
        if let Some(deadline) = self.step_down_at() {
            let both = async { tokio::join!(self.heartbeat(), self.renew()) };
            if tokio::time::timeout_at(deadline, both).await.is_err() {
                self.check_lease();
                let mut st = self.status();
                self.step_down(&mut st, "renewal did not complete before the lease ran out");
            }
        } else if self.heartbeat().await {
            self.follow().await;
        }
    }

    async fn heartbeat(&self) -> bool {
        let start_time = self.status().start_time;
        let sent = Instant::now();
        let now = now_millis();
        let body = HeartbeatBody::new(
            &self.worker_id,
            &self.pod,
            &self.namespace,
            now,
            start_time,
            self.opts.worker_timeout,
        );
        let res = self
            .put_json(&self.keys.heartbeat, &body, WriteCondition::None)
            .await;
        let ok = res.is_ok();
        if ok {
            let mut st = self.status();
            st.metrics.heartbeats += 1;
            if st.latencies.len() == LATENCY_SAMPLES {
                st.latencies.pop_front();
            }
            st.latencies
                .push_back(sent.elapsed().as_secs_f64() * 1000.0);
            st.heartbeat_valid_until =
                Some(sent + self.opts.worker_timeout - self.opts.step_down_margin);
        }
        self.store_outcome(&res) && ok
    }

    fn lease_body(&self, epoch: u64, now: i64, lease_end: i64, by: &str, at: i64) -> StateBody {
        StateBody::lease(&self.worker_id, &self.pod, epoch, now, lease_end, by, at)
    }

    /// The leader's CAS renewal, keeping the epoch.
    async fn renew(&self) {
        let Some(lead) = self.status().leading.clone() else {
            return;
        };
        let sent = Instant::now();
        let now = now_millis();
        let lease_end = now + self.opts.lease_timeout.as_millis() as i64;
        let body = self.lease_body(
            lead.epoch,
            now,
            lease_end,
            &lead.elected_by,
            lead.elected_at,
        );
        let res = self
            .put_json(
                &self.keys.state,
                &body,
                WriteCondition::IfMatch(lead.etag.clone()),
            )
            .await;
        if !self.store_outcome(&res) {
            return;
        }
        let mut st = self.status();
        match res {
            Ok(etag) => {
                if let Some(l) = st.leading.as_mut().filter(|l| l.epoch == lead.epoch) {
                    l.etag = etag;
                    l.lease_valid_until =
                        sent + self.opts.lease_timeout - self.opts.step_down_margin;
                    l.lease_end = lease_end;
                    st.metrics.renewals += 1;
                }
            }
            Err(StoreError::PreconditionFailed) | Err(StoreError::NotFound) => {
                self.step_down(&mut st, "lease taken over (412)");
            }
            // Another conditional write was in flight: the next renewal tells who won.
            Err(_) => {}
        }
    }

    /// Follower: reads the lease, announces changes, elects when it is vacant.
    async fn follow(&self) {
        let read = match self.read_state().await {
            Some(r) => r,
            None => return,
        };
        let now = now_millis();
        let mono = Instant::now();
        let interval = self.opts.heartbeat_interval;
        if let StateRead::Present { body, etag } = &read {
            if let Some(leader) = body.leader_id.clone().filter(|_| body.lease_end > now) {
                let unchanged_for = {
                    let mut st = self.status();
                    st.vacant_since = None;
                    let since = match &st.observed_etag {
                        Some((e, since)) if e == etag => *since,
                        _ => mono,
                    };
                    st.observed_etag = Some((etag.clone(), since));
                    st.observed = Some(LeaderInfo {
                        leader_id: leader.clone(),
                        epoch: body.epoch,
                        lease_end: body.lease_end,
                    });
                    self.announce(&mut st, &leader, body.epoch);
                    mono - since
                };
                if leader == self.worker_id {
                    // Our own lease, from before we stepped down: resume it by CAS.
                    self.acquire(&read).await;
                } else if unchanged_for > interval * 2
                    && !self.leader_alive(&leader).await.unwrap_or(true)
                {
                    // The leader stopped renewing and its worker is gone.
                    self.elect(&read, Some(&leader)).await;
                }
                return;
            }
        }
        let expired_leader = match &read {
            StateRead::Present { body, .. } => body.leader_id.clone(),
            _ => None,
        };
        {
            let mut st = self.status();
            st.observed = None;
            st.observed_etag = None;
            st.vacant_since.get_or_insert(mono);
        }
        self.elect(&read, expired_leader.as_deref()).await;
    }

    fn announce(&self, st: &mut Status, leader: &str, epoch: u64) {
        let new = (leader.to_string(), epoch);
        if st.announced.as_ref() != Some(&new) {
            st.announced = Some(new);
            st.metrics.leader_changes += 1;
            self.emit(CoordinatorEvent::LeaderChanged {
                leader_id: leader.to_string(),
                epoch,
            });
        }
    }

    /// `None` on a storage failure.
    async fn read_state(&self) -> Option<StateRead> {
        let res = self.db.store.get(&self.keys.state).await;
        if !self.store_outcome(&res) {
            return None;
        }
        match res {
            Ok(obj) => Some(match serde_json::from_slice::<StateBody>(&obj.body) {
                Ok(body) => StateRead::Present {
                    body,
                    etag: obj.head.etag,
                },
                Err(_) => StateRead::Corrupt {
                    etag: obj.head.etag,
                },
            }),
            Err(StoreError::NotFound) => Some(StateRead::Missing),
            Err(_) => None,
        }
    }

    /// Whether the leader's heartbeat is present and fresh (`None`: storage failed).
    async fn leader_alive(&self, leader: &str) -> Option<bool> {
        let key = format!("{}worker={leader}.json", self.keys.workers);
        let res = self.db.store.get(&key).await;
        if !self.store_outcome(&res) {
            return None;
        }
        match res {
            Ok(obj) => Some(match serde_json::from_slice::<HeartbeatBody>(&obj.body) {
                Ok(hb) => {
                    now_millis() - hb.last_heartbeat < self.opts.worker_timeout.as_millis() as i64
                }
                Err(_) => false,
            }),
            Err(StoreError::NotFound) => Some(false),
            Err(_) => None,
        }
    }

    /// An election round: lists the active workers; the winner (or anyone, once the lease
    /// has been vacant for two intervals) tries to take the lease. The store decides.
    async fn elect(&self, read: &StateRead, exclude: Option<&str>) {
        let workers = match self.list_workers(true).await {
            Ok(w) => {
                self.record(Outcome::Ok);
                w
            }
            Err(_) => {
                self.record(Outcome::Failed);
                return;
            }
        };
        let now = now_millis();
        let timeout = self.opts.worker_timeout.as_millis() as i64;
        let start_time = self.status().start_time;
        let me = WorkerInfo {
            worker_id: self.worker_id.clone(),
            pod: Some(self.pod.clone()),
            start_time,
            last_heartbeat: now,
        };
        let winner = election_winner(workers, me, exclude, now - timeout, self.opts.strategy);
        let vacant_too_long = {
            let mut st = self.status();
            st.metrics.elections += 1;
            st.vacant_since
                .is_some_and(|s| s.elapsed() > self.opts.heartbeat_interval * 2)
        };
        if winner.as_deref() == Some(self.worker_id.as_str()) || vacant_too_long {
            self.acquire(read).await;
        }
    }

    /// Takes (or resumes) the lease by CAS. A new leader gets the previous epoch + 1.
    async fn acquire(&self, read: &StateRead) {
        let me = self.worker_id.as_str();
        let now = now_millis();
        let (condition, epoch, elected_by, elected_at) = match read {
            // Still (or again) this worker: no change of leader, the epoch stays.
            StateRead::Present { body, etag } if body.leader_id.as_deref() == Some(me) => (
                WriteCondition::IfMatch(etag.clone()),
                body.epoch.max(1),
                body.elected_by.clone().unwrap_or_else(|| me.to_string()),
                body.elected_at,
            ),
            StateRead::Present { body, etag } => (
                WriteCondition::IfMatch(etag.clone()),
                body.epoch + 1,
                me.to_string(),
                now,
            ),
            StateRead::Corrupt { etag } => {
                let Some(last) = self.checkpoint_epoch().await else {
                    return;
                };
                (
                    WriteCondition::IfMatch(etag.clone()),
                    last + 1,
                    me.to_string(),
                    now,
                )
            }
            StateRead::Missing => {
                let Some(last) = self.checkpoint_epoch().await else {
                    return;
                };
                (WriteCondition::IfNoneMatch, last + 1, me.to_string(), now)
            }
        };
        let sent = Instant::now();
        let now = now_millis();
        let lease_end = now + self.opts.lease_timeout.as_millis() as i64;
        let body = self.lease_body(epoch, now, lease_end, &elected_by, elected_at);
        let res = self.put_json(&self.keys.state, &body, condition).await;
        if !self.store_outcome(&res) {
            return;
        }
        let Ok(etag) = res else {
            // Lost the race: the next read shows the winner.
            return;
        };
        let new_epoch = !matches!(read, StateRead::Present { body, .. } if body.epoch == epoch);
        {
            let mut st = self.status();
            st.leading = Some(Leading {
                epoch,
                etag,
                lease_valid_until: sent + self.opts.lease_timeout - self.opts.step_down_margin,
                lease_end,
                elected_by,
                elected_at,
            });
            st.vacant_since = None;
            st.observed = None;
            st.observed_etag = None;
            tracing::info!(worker = %self.worker_id, epoch, "became leader");
            self.emit(CoordinatorEvent::BecameLeader { epoch });
            self.announce(&mut st, me, epoch);
        }
        if new_epoch {
            self.write_checkpoint(epoch).await;
        }
    }

    /// Gives the lease up by CAS (lease end = now), so a successor need not wait.
    async fn release(&self, lead: &Leading) -> Result<()> {
        let mut etag = lead.etag.clone();
        for _ in 0..2 {
            let now = now_millis();
            let body = self.lease_body(lead.epoch, now, now, &lead.elected_by, lead.elected_at);
            match self
                .put_json(&self.keys.state, &body, WriteCondition::IfMatch(etag))
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    // Our last renewal may have landed after all: release that one.
                    match self.read_state().await {
                        Some(StateRead::Present { body, etag: e })
                            if body.leader_id.as_deref() == Some(self.worker_id.as_str())
                                && body.epoch == lead.epoch =>
                        {
                            etag = e
                        }
                        _ => return Ok(()),
                    }
                }
                Err(StoreError::NotFound) => return Ok(()),
                Err(e) => return Err(e.at(&self.keys.state)),
            }
        }
        Ok(())
    }

    async fn checkpoint_epoch(&self) -> Option<u64> {
        let res = self.db.store.get(&self.keys.checkpoint).await;
        if !self.store_outcome(&res) {
            return None;
        }
        match res {
            Ok(obj) => Some(
                serde_json::from_slice::<CheckpointBody>(&obj.body)
                    .map(|c| c.epoch)
                    .unwrap_or(0),
            ),
            Err(StoreError::NotFound) => Some(0),
            Err(_) => None,
        }
    }

    /// Best effort: the checkpoint only seeds the epoch if `state.json` disappears.
    async fn write_checkpoint(&self, epoch: u64) {
        let now = now_millis();
        let body = CheckpointBody::new(
            &self.namespace,
            &self.worker_id,
            epoch,
            now,
            self.opts.lease_timeout,
        );
        let res = self
            .put_json(&self.keys.checkpoint, &body, WriteCondition::None)
            .await;
        self.store_outcome(&res);
    }

    async fn write_metadata(&self) -> Result<()> {
        static SERVICES: AtomicU64 = AtomicU64::new(0);
        let now = now_millis();
        let service_id = format!(
            "global-coordinator-{now}-{}",
            SERVICES.fetch_add(1, Ordering::Relaxed) + 1
        );
        let body = MetadataBody::new(&self.namespace, service_id, now, &self.worker_id);
        match self
            .put_json(&self.keys.metadata, &body, WriteCondition::IfNoneMatch)
            .await
        {
            Ok(_) | Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => Ok(()),
            Err(e) => Err(e.at(&self.keys.metadata)),
        }
    }

    /// Every heartbeat under `workers/` (1 LIST + 1 GET per other worker). With `cleanup`,
    /// heartbeats stale for longer than `worker_timeout + heartbeat_interval` are deleted
    /// (conditionally on the etag read).
    async fn list_workers(&self, cleanup: bool) -> StoreResult<Vec<WorkerInfo>> {
        let keys = self.db.store.list_all(&self.keys.workers).await?;
        let own = {
            let st = self.status();
            WorkerInfo {
                worker_id: self.worker_id.clone(),
                pod: Some(self.pod.clone()),
                start_time: st.start_time,
                last_heartbeat: 0,
            }
        };
        let reads = keys.iter().map(|key| async move {
            if *key == self.keys.heartbeat {
                return (key, None);
            }
            (key, Some(self.db.store.get(key).await))
        });
        let results = futures::future::join_all(reads).await;
        let now = now_millis();
        let stale_after =
            (self.opts.worker_timeout + self.opts.heartbeat_interval).as_millis() as i64;
        let mut workers = Vec::new();
        let mut stale = Vec::new();
        for (key, res) in results {
            match res {
                None => {
                    let fresh = self
                        .status()
                        .heartbeat_valid_until
                        .is_some_and(|h| Instant::now() < h);
                    if fresh {
                        workers.push(WorkerInfo {
                            last_heartbeat: now,
                            ..own.clone()
                        });
                    }
                }
                Some(Ok(obj)) => match serde_json::from_slice::<HeartbeatBody>(&obj.body) {
                    Ok(hb) => {
                        if cleanup && now - hb.last_heartbeat > stale_after {
                            stale.push((key.clone(), obj.head.etag));
                        }
                        workers.push(WorkerInfo {
                            worker_id: hb.worker_id,
                            pod: hb.pod,
                            start_time: hb.start_time,
                            last_heartbeat: hb.last_heartbeat,
                        });
                    }
                    Err(_) => tracing::debug!(%key, "unreadable worker heartbeat skipped"),
                },
                Some(Err(StoreError::NotFound)) => {}
                Some(Err(e)) => return Err(e),
            }
        }
        for (key, etag) in stale {
            match self.db.store.delete(&key, Some(&etag)).await {
                Ok(()) | Err(StoreError::NotFound) | Err(StoreError::PreconditionFailed) => {}
                Err(e) => tracing::debug!(%key, error = %e, "stale heartbeat not deleted"),
            }
        }
        Ok(workers)
    }

    async fn put_json<T: Serialize>(
        &self,
        key: &str,
        body: &T,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        let req = PutRequest {
            body: Bytes::from(serde_json::to_vec(body).expect("json")),
            content_type: Some("application/json".into()),
            condition,
            ..Default::default()
        };
        self.db.store.put(key, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector_bodies() -> Vec<(String, String)> {
        let dir = std::env::var("S3DB_VECTORS").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string()
        });
        let text = std::fs::read_to_string(format!("{dir}/coordinator.json"))
            .unwrap_or_else(|e| panic!("{dir}/coordinator.json: {e}"));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["key"].as_str().unwrap().to_string(),
                    o["body"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The bodies this engine writes are byte for byte those of s3db.js 21.6.2 for the
    /// same inputs (vector `coordinator.json`; heartbeat from its operations list).
    #[test]
    fn bodies_match_the_s3db_js_vector() {
        let objects = vector_bodies();
        let body = |suffix: &str| {
            objects
                .iter()
                .find(|(k, _)| k.ends_with(suffix))
                .unwrap_or_else(|| panic!("{suffix} in vector"))
                .1
                .clone()
        };
        let (id, pod, ns, now) = ("gcs-vector-host-2", "vector-host", "vec-ns", 1705320000000);
        let opts = CoordinatorOptions::default();
        let state = StateBody::lease(id, pod, 1, now, now + 15_000, id, now);
        assert_eq!(serde_json::to_string(&state).unwrap(), body("/state.json"));
        let meta = MetadataBody::new(ns, format!("global-coordinator-{now}-1"), now, id);
        assert_eq!(
            serde_json::to_string(&meta).unwrap(),
            body("/metadata.json")
        );
        let cp = CheckpointBody::new(ns, id, 1, now, opts.lease_timeout);
        assert_eq!(
            serde_json::to_string(&cp).unwrap(),
            body("/checkpoint.json")
        );
        let hb = HeartbeatBody::new(id, pod, ns, now, now, opts.worker_timeout);
        assert_eq!(
            serde_json::to_string(&hb).unwrap(),
            r#"{"workerId":"gcs-vector-host-2","pluginName":"coordinator","pod":"vector-host","lastHeartbeat":1705320000000,"startTime":1705320000000,"namespace":"vec-ns","_expiresAt":1705320020000}"#
        );
        // And they read back.
        let read: StateBody = serde_json::from_str(&body("/state.json")).unwrap();
        assert_eq!((read.leader_id.as_deref(), read.epoch), (Some(id), 1));
        let read: HeartbeatBody =
            serde_json::from_slice(&serde_json::to_vec(&hb).unwrap()).unwrap();
        assert_eq!(read.start_time, now);
    }

    #[test]
    fn options_validation() {
        assert!(CoordinatorOptions::default().validate().is_ok());
        assert!(
            CoordinatorOptions::with_heartbeat(Duration::from_millis(100))
                .validate()
                .is_ok()
        );
        let bad = CoordinatorOptions {
            lease_timeout: Duration::from_secs(5),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        let bad = CoordinatorOptions {
            circuit_breaker_threshold: 0,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }

    fn w(id: &str, start: i64, last: i64) -> WorkerInfo {
        WorkerInfo {
            worker_id: id.into(),
            pod: None,
            start_time: start,
            last_heartbeat: last,
        }
    }

    #[test]
    fn election_picks_the_oldest_active_worker() {
        use ElectionStrategy::*;
        let me = || w("gcs-me", 50, 1000);
        let others = || {
            vec![
                w("gcs-b", 10, 1000),
                w("gcs-a", 10, 1000),
                w("gcs-old", 1, 100),
            ]
        };
        // gcs-old's heartbeat is stale; a and b tie on start time: smallest id.
        assert_eq!(
            election_winner(others(), me(), None, 500, OldestStart).as_deref(),
            Some("gcs-a")
        );
        // The leader whose lease ran out is left out.
        assert_eq!(
            election_winner(others(), me(), Some("gcs-a"), 500, OldestStart).as_deref(),
            Some("gcs-b")
        );
        assert_eq!(
            election_winner(vec![], me(), None, 500, OldestStart).as_deref(),
            Some("gcs-me")
        );
        assert_eq!(
            election_winner(others(), w("gcs-0", 99, 0), None, 500, Alphabetical).as_deref(),
            Some("gcs-0")
        );
        // Plugin workers (not `gcs-`) are preferred, as in s3db.js.
        let mut with_plugin = others();
        with_plugin.push(w("plugin-x", 40, 1000));
        assert_eq!(
            election_winner(with_plugin, me(), None, 500, OldestStart).as_deref(),
            Some("plugin-x")
        );
    }

    #[test]
    fn percentiles() {
        assert_eq!(percentile(&[], 0.5), 0.0);
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
    }

    #[test]
    fn strategy_names() {
        assert_eq!(
            "timestamp".parse::<ElectionStrategy>().unwrap(),
            ElectionStrategy::OldestStart
        );
        assert_eq!(
            "alphabetical".parse::<ElectionStrategy>().unwrap(),
            ElectionStrategy::Alphabetical
        );
        assert!("random".parse::<ElectionStrategy>().is_err());
        assert_eq!(ElectionStrategy::OldestStart.as_str(), "timestamp");
    }
}
