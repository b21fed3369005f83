//! Stale partition references found by reads, kept for the caller to repair.
//!
//! A partition reference is stale when the record it points at no longer has the values its
//! key encodes (a writer crashed or lost a race between writing the record and moving its
//! references) or no longer exists. Reads that return records check every record against
//! the values asked for, drop the ones that disagree, log a `tracing::warn!` and note the
//! reference here. `Resource::reindex` repairs them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

/// At most this many distinct references are kept between two `take_stale_references`.
pub const STALE_KEEP: usize = 1000;

/// One stale reference a read came across.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StaleReference {
    pub partition: String,
    /// The reference object's key.
    pub key: String,
    pub id: String,
    /// `"values differ"`: the record's values are not the key's; `"record missing"`: the
    /// record does not exist; `"reference missing"`: `key` is the record's own reference,
    /// which does not exist (the record was only found through a stale one, or not at all).
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub(super) struct StaleLog {
    seen: AtomicU64,
    keys: Mutex<BTreeMap<String, StaleReference>>,
}

impl StaleLog {
    pub(super) fn note(&self, resource: &str, r: StaleReference) {
        tracing::warn!(
            resource,
            partition = %r.partition,
            key = %r.key,
            id = %r.id,
            reason = r.reason,
            "stale partition reference skipped; Resource::reindex repairs it"
        );
        self.seen.fetch_add(1, Ordering::Relaxed);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() < STALE_KEEP || keys.contains_key(&r.key) {
            keys.insert(r.key.clone(), r);
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.seen.load(Ordering::Relaxed)
    }

    pub(super) fn list(&self) -> Vec<StaleReference> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        keys.values().cloned().collect()
    }

    pub(super) fn take(&self) -> Vec<StaleReference> {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *keys).into_values().collect()
    }
}
