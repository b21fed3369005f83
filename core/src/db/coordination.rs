//! The coordination primitives of a database: locks, fenced objects, sequences, state,
//! leader election, plugin storage — all over the database's coordination context.

use serde_json::Value;

use crate::coord::election::{Coordinator, CoordinatorOptions};
use crate::coord::lock::{self, Fenced, Lock, LockInfo, LockOptions};
use crate::coord::sequence::{self, Sequence, SequenceOptions};
use crate::coord::state::StateStore;
use crate::db::database::Database;
use crate::db::plugin_storage::PluginStorage;
use crate::error::Result;

impl Database {
    pub async fn lock(&self, name: &str, options: LockOptions) -> Result<Lock> {
        Lock::acquire(self.inner.ctx.clone(), name, options).await
    }

    /// Runs `f` holding the lock and always releases it.
    pub async fn with_lock<T, F, Fut>(&self, name: &str, options: LockOptions, f: F) -> Result<T>
    where
        F: FnOnce(Lock) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let lock = self.lock(name, options).await?;
        let out = f(lock.clone()).await;
        let released = lock.release().await;
        let value = out?;
        released?;
        Ok(value)
    }

    /// Whether a holder currently holds the lock (not released, not expired). One GET.
    pub async fn is_locked(&self, name: &str) -> Result<bool> {
        lock::is_locked(&self.inner.ctx, name).await
    }

    /// The current holder of the lock, `None` when it is free. One GET.
    pub async fn lock_info(&self, name: &str) -> Result<Option<LockInfo>> {
        lock::lock_info(&self.inner.ctx, name).await
    }

    /// Writes `value` to the fenced object `name` unless a higher token already wrote it
    /// (`LockLost`). Returns the new etag. GET + one conditional PUT when uncontended.
    pub async fn fenced_put(
        &self,
        name: &str,
        value: &Value,
        fencing_token: u64,
    ) -> Result<String> {
        lock::fenced_put(&self.inner.ctx, name, value, fencing_token).await
    }

    /// Reads a fenced object: its value and the highest token that wrote it.
    pub async fn fenced_get(&self, name: &str) -> Result<Option<Fenced>> {
        lock::fenced_get(&self.inner.ctx, name).await
    }

    /// A worker in the leader election of `namespace` (not started: call `start()`).
    pub fn coordinator(&self, namespace: &str, options: CoordinatorOptions) -> Result<Coordinator> {
        Coordinator::new(self.inner.ctx.clone(), namespace, options)
    }

    pub fn sequence(&self, name: &str) -> Result<Sequence> {
        self.sequence_with(name, SequenceOptions::default())
    }

    pub fn sequence_with(&self, name: &str, options: SequenceOptions) -> Result<Sequence> {
        Sequence::new(self.inner.ctx.clone(), name, options)
    }

    /// Names of the sequences stored under `sequences/<name>/value` (one LIST per 1,000 keys).
    pub async fn list_sequences(&self) -> Result<Vec<String>> {
        sequence::list_sequences(&self.inner.ctx).await
    }

    /// The distributed state of `namespace` (`plugin=state/namespace=<ns>/`).
    pub fn state(&self, namespace: &str) -> Result<StateStore> {
        StateStore::new(self.inner.ctx.clone(), namespace)
    }

    /// The PluginStorage of plugin `slug` (non-empty, no `/`, no `..`).
    pub fn plugin_storage(&self, slug: &str) -> Result<PluginStorage> {
        PluginStorage::new(self.inner.ctx.clone(), slug)
    }
}
