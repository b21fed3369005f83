//! s3db: a document database whose only server is an S3-compatible object store.

pub mod catalog;
mod database;
pub mod error;
mod healing;
pub mod ids;
mod lock;
mod resource;
pub mod schema;
mod sequence;
mod state;
pub mod storage;

pub use database::Database;
pub use error::{Error, ErrorKind, Result};
pub use lock::{Fenced, Lock, LockInfo, LockOptions};
pub use resource::Resource;
pub use sequence::{Sequence, SequenceOptions};
pub use state::{CasResult, StateEntry, StateStore};
pub use storage::Stats;
