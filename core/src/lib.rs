//! s3db: a document database whose only server is an S3-compatible object store.

pub mod behavior;
pub mod catalog;
mod catalog_mutex;
mod coordinator;
pub mod crypto;
mod database;
pub mod error;
mod healing;
pub mod hooks;
pub mod ids;
mod lock;
pub mod partition;
mod plugin_storage;
mod resource;
pub mod schema;
mod sequence;
mod state;
pub mod storage;

pub use catalog::ResourceConfig;
pub use coordinator::{
    Coordinator, CoordinatorEvent, CoordinatorMetrics, CoordinatorOptions, ElectionStrategy,
    LeaderInfo, WorkerInfo,
};
pub use database::{ConnectOptions, Database};
pub use error::{Error, ErrorKind, Result};
pub use hooks::{Hook, Hooks};
pub use lock::{Fenced, Lock, LockInfo, LockOptions};
pub use plugin_storage::{
    Clock, PluginBehavior, PluginLock, PluginLockOptions, PluginSequenceOptions, PluginStorage,
    SetOptions, PLUGIN_METADATA_LIMIT,
};
pub use resource::{BatchError, BatchItem, Page, Resource};
pub use sequence::{Sequence, SequenceOptions};
pub use state::{CasResult, StateEntry, StateStore};
pub use storage::Stats;
