//! A fault-injection and latency proxy for S3-compatible servers on loopback.
//!
//! It sits between an S3 client (path-style, SigV4) and a server on 127.0.0.1 and forwards
//! every request unchanged (the `Host` header as received, so signatures stay valid), over
//! HTTP/1.1 keep-alive, one upstream connection per client connection, connections in parallel.
//! [`Rule`]s inject faults; a global latency and a token-bucket rate limit shape all traffic.
//! Control it in-process through [`FaultProxy`], or over HTTP under [`CONTROL_PREFIX`] on the
//! proxy's own port (endpoints: `src/main.rs`, JSON examples: `README.md`).

mod control;
mod rules;
mod server;

pub use rules::{Action, Rule, RuleId, When};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Path prefix of the control API; S3 never sees it (a bucket name cannot start with `_`).
pub const CONTROL_PREFIX: &str = "/__faultproxy/";

/// Counters since start or the last reset. Control API requests are not counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStats {
    /// Requests received (faulted or not).
    pub total: u64,
    /// Requests by method (`"GET"`, `"PUT"`, ...).
    pub by_method: BTreeMap<String, u64>,
    /// Faults applied, by [`Action::name`], plus `"rate_limited"` for the rate limiter's 503s.
    pub by_action: BTreeMap<String, u64>,
    /// Requests being handled now.
    pub in_flight: u64,
    /// The most requests handled at once.
    pub max_in_flight: u64,
}

/// A running proxy on 127.0.0.1, with its own small tokio runtime (so it works from sync
/// tests and from any runtime). Dropping it stops it and closes every connection.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl FaultProxy {
    /// Start on an ephemeral port of 127.0.0.1, forwarding to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), upstream)
    }

    /// Start on `listen`, which must be a loopback address (port 0 = any free port).
    pub fn start_on(listen: SocketAddr, upstream: SocketAddr) -> io::Result<FaultProxy> {
        if !listen.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "listen address must be loopback",
            ));
        }
        let listener = std::net::TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("s3db-faultproxy")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::new(upstream));
        runtime.spawn(server::serve(listener, shared.clone()));
        Ok(FaultProxy {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// The address clients connect to (use it as the S3 endpoint, path-style).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }
    /// Install a rule after the existing ones. Fails on a bad regex, `p` or status.
    pub fn add_rule(&self, rule: Rule) -> io::Result<RuleId> {
        lock(&self.shared.rules).add(rule)
    }
    /// Remove one rule; false if it was not installed.
    pub fn remove_rule(&self, id: RuleId) -> bool {
        lock(&self.shared.rules).remove(id)
    }
    pub fn clear_rules(&self) {
        lock(&self.shared.rules).clear()
    }
    pub fn rules(&self) -> Vec<(RuleId, Rule)> {
        lock(&self.shared.rules).list()
    }
    /// Delay every proxied request by `latency` before it is forwarded (requests wait in
    /// parallel). Zero turns it off.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.set_latency(latency)
    }
    pub fn latency(&self) -> Duration {
        self.shared.latency()
    }
    /// Answer `503 SlowDown` to requests beyond `rps` per second (token bucket holding up to
    /// `max(rps, 1)` tokens, full at start); `None` turns it off.
    pub fn set_rate_limit(&self, rps: Option<f64>) {
        self.shared.set_rate_limit(rps)
    }
    pub fn stats(&self) -> ProxyStats {
        lock(&self.shared.stats).clone()
    }
    /// Zero the counters (`max_in_flight` restarts from the requests in flight now).
    pub fn reset_stats(&self) {
        self.shared.reset_stats()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// State shared by the connections and the control surfaces.
pub(crate) struct Shared {
    upstream: SocketAddr,
    rules: Mutex<rules::RuleSet>,
    latency_us: AtomicU64,
    bucket: Mutex<Option<Bucket>>,
    stats: Mutex<ProxyStats>,
}

struct Bucket {
    rps: f64,
    tokens: f64,
    at: Instant,
}

/// Ends an in-flight request when dropped.
pub(crate) struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut s = lock(&self.0.stats);
        s.in_flight = s.in_flight.saturating_sub(1);
    }
}

impl Shared {
    fn new(upstream: SocketAddr) -> Shared {
        Shared {
            upstream,
            rules: Mutex::default(),
            latency_us: AtomicU64::new(0),
            bucket: Mutex::new(None),
            stats: Mutex::default(),
        }
    }

    fn set_latency(&self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.store(us, Ordering::Relaxed);
    }

    fn latency(&self) -> Duration {
        Duration::from_micros(self.latency_us.load(Ordering::Relaxed))
    }

    fn set_rate_limit(&self, rps: Option<f64>) {
        *lock(&self.bucket) = rps.filter(|r| r.is_finite() && *r > 0.0).map(|rps| Bucket {
            rps,
            tokens: rps.max(1.0),
            at: Instant::now(),
        });
    }

    fn rate_limit(&self) -> Option<f64> {
        lock(&self.bucket).as_ref().map(|b| b.rps)
    }

    /// Takes a token; true when the request is over the limit.
    fn rate_limited(&self) -> bool {
        let mut guard = lock(&self.bucket);
        let Some(b) = guard.as_mut() else {
            return false;
        };
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * b.rps).min(b.rps.max(1.0));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            false
        } else {
            true
        }
    }

    fn begin(&self, method: &str) -> InFlight<'_> {
        let mut s = lock(&self.stats);
        s.total += 1;
        *s.by_method.entry(method.to_string()).or_default() += 1;
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        InFlight(self)
    }

    fn count_action(&self, name: &str) {
        *lock(&self.stats)
            .by_action
            .entry(name.to_string())
            .or_default() += 1;
    }

    fn reset_stats(&self) {
        let mut s = lock(&self.stats);
        let in_flight = s.in_flight;
        *s = ProxyStats {
            in_flight,
            max_in_flight: in_flight,
            ..ProxyStats::default()
        };
    }
}

/// A poisoned lock only means another connection task panicked; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
