//! s3db: a document database whose only server is an S3-compatible object store.

pub mod catalog;
mod database;
pub mod error;
pub mod ids;
mod lock;
mod resource;
pub mod schema;
mod sequence;
pub mod storage;

pub use database::Database;
pub use error::{Error, ErrorKind, Result};
pub use lock::{Lock, LockOptions};
pub use resource::Resource;
pub use sequence::{Sequence, SequenceOptions};
pub use storage::Stats;
