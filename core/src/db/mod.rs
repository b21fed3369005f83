//! The database: its catalog, resources (records, partitions, content, hooks) and the
//! coordination primitives bound to it.

mod catalog_store;
mod coordination;
pub mod database;
pub mod hooks;
pub(crate) mod inner;
pub mod plugin_storage;
pub mod resource;
