//! Coordination over the object store: locks with fencing tokens, sequences, state with
//! compare-and-swap, leader election. It sees only a [`Context`], never a database.

pub mod attempts;
pub(crate) mod catalog_mutex;
pub mod election;
pub mod lock;
pub mod sequence;
pub mod state;

use std::sync::Arc;

use crate::storage::{now_millis, Store};

/// What coordination needs from its surroundings.
#[derive(Debug)]
pub struct Context {
    pub store: Store,
    /// Unique per process: host, pid and a random part.
    pub holder_id: String,
}

impl Context {
    pub fn new(store: Store) -> Arc<Context> {
        Arc::new(Context {
            store,
            holder_id: process_holder_id(),
        })
    }
}

/// `<host>-<pid>-<random>`: tells apart every process, also two on one host.
pub fn process_holder_id() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!("{host}-{}-{}", std::process::id(), random_base36(8))
}

fn random_base36(n: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..n)
        .map(|_| DIGITS[rand::random_range(0..DIGITS.len())] as char)
        .collect()
}

/// A time source in milliseconds since the epoch (the system clock unless replaced, e.g. by
/// a fixed instant in tests).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    pub fn system() -> Clock {
        Clock(Arc::new(now_millis))
    }

    pub fn fixed(ms: i64) -> Clock {
        Clock(Arc::new(move || ms))
    }

    pub fn from_fn(f: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(f))
    }

    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }

    /// `new Date(now).toISOString()`.
    pub fn now_iso(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.now_ms())
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

/// A short random pause before retrying a lost compare-and-swap.
pub fn jitter() -> std::time::Duration {
    std::time::Duration::from_millis(rand::random_range(1..=20))
}
