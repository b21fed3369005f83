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

/// Requests sent to the backend, by kind (retries count as requests).
#[derive(Debug, Default)]
pub struct RequestStats {
    counters: [AtomicU64; 6],
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

impl RequestStats {
    pub fn count(&self, kind: RequestKind) {
        self.counters[kind as usize].fetch_add(1, Ordering::Relaxed);
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

    pub fn reset(&self) {
        for c in &self.counters {
            c.store(0, Ordering::Relaxed);
        }
    }
}
