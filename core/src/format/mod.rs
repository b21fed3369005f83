//! Pure s3db.js format: schema rules and codec, behaviors, partition keys, the catalog and
//! its healing, ids, secret-field crypto. No I/O, no async.

pub mod behavior;
pub mod catalog;
pub mod catalog_heal;
pub mod crypto;
pub mod ids;
pub mod partition;
pub mod query;
pub mod schema;
