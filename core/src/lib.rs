//! s3db: a document database whose only server is an S3-compatible object store.
//!
//! Layers, each importing only from those below it (checked by `tests/layers.rs`):
//! `error` → `storage` → `format` → `coord` → `db` → `api`.

pub mod api;
pub mod coord;
pub mod db;
pub mod error;
pub mod format;
pub mod storage;

pub use coord::election::{
    Coordinator, CoordinatorEvent, CoordinatorMetrics, CoordinatorOptions, ElectionStrategy,
    LeaderInfo, WorkerInfo,
};
pub use coord::lock::{Fenced, Lock, LockInfo, LockOptions};
pub use coord::sequence::{Sequence, SequenceOptions};
pub use coord::state::{CasResult, StateEntry, StateStore};
pub use coord::Clock;
pub use db::database::{ConnectOptions, Database};
pub use db::hooks::{self, Hook, Hooks};
pub use db::plugin_storage::{
    PluginBehavior, PluginLock, PluginLockOptions, PluginSequenceOptions, PluginStorage,
    SetOptions, PLUGIN_METADATA_LIMIT,
};
pub use db::resource::{BatchError, BatchItem, Page, PartitionRepair, RepairReport, Resource};
pub use error::{Error, ErrorKind, Result};
pub use format::catalog::ResourceConfig;
pub use format::{behavior, catalog, crypto, ids, partition, schema};
pub use storage::Stats;
