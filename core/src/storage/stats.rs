use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Get,
    Head,
    Put,
    Copy,
    Delete,
    List,
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestKind::Get => "GET",
            RequestKind::Head => "HEAD",
            RequestKind::Put => "PUT",
            RequestKind::Copy => "COPY",
            RequestKind::Delete => "DELETE",
            RequestKind::List => "LIST",
        })
    }
}

/// Requests sent to the backend, by kind (retries count as requests), and what went wrong.
#[derive(Debug, Default)]
pub struct RequestStats {
    counters: [AtomicU64; 6],
    faults: [AtomicU64; 5],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub get: u64,
    pub head: u64,
    pub put: u64,
    pub copy: u64,
    pub delete: u64,
    pub list: u64,
}

impl Stats {
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.copy + self.delete + self.list
    }
}

/// What the store recovered from (or did not): all zero when nothing went wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultStats {
    /// Reads whose body failed the length or checksum check.
    pub verification_failures: u64,
    /// Requests sent again after a retryable failure.
    pub retries: u64,
    /// Attempts cut by the per-request timeout.
    pub timeouts: u64,
    /// Writes with a lost response settled by reading the object back.
    pub outcomes_resolved: u64,
    /// Writes reported as `OutcomeUnknown`.
    pub outcomes_unknown: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    VerificationFailure,
    Retry,
    Timeout,
    OutcomeResolved,
    OutcomeUnknown,
}

impl RequestStats {
    pub fn count(&self, kind: RequestKind) {
        self.counters[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn fault(&self, fault: Fault) {
        self.faults[fault as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let c = |k: RequestKind| self.counters[k as usize].load(Ordering::Relaxed);
        Stats {
            get: c(RequestKind::Get),
            head: c(RequestKind::Head),
            put: c(RequestKind::Put),
            copy: c(RequestKind::Copy),
            delete: c(RequestKind::Delete),
            list: c(RequestKind::List),
        }
    }

    pub fn faults(&self) -> FaultStats {
        let c = |f: Fault| self.faults[f as usize].load(Ordering::Relaxed);
        FaultStats {
            verification_failures: c(Fault::VerificationFailure),
            retries: c(Fault::Retry),
            timeouts: c(Fault::Timeout),
            outcomes_resolved: c(Fault::OutcomeResolved),
            outcomes_unknown: c(Fault::OutcomeUnknown),
        }
    }

    pub fn reset(&self) {
        for c in self.counters.iter().chain(&self.faults) {
            c.store(0, Ordering::Relaxed);
        }
    }
}
