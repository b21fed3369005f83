//! A connected database: one bucket (and key prefix) holding `s3db.json` and the records.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Mutex;

use crate::coord::Context;
use crate::db::catalog_store::{load_or_create, load_or_heal};
use crate::db::hooks::Hooks;
use crate::db::inner::DbInner;
use crate::db::resource::Resource;
use crate::error::{Error, Result};
use crate::format::catalog::{self, ResourceConfig};
use crate::format::ids::validate_name;
use crate::storage::{Stats, Store};

/// Connection options beyond the connection string.
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Passphrase of secret fields (s3db.js `security.passphrase`; default `"secret"`).
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// A database: one bucket (and key prefix) holding `s3db.json` and the records.
#[derive(Debug, Clone)]
pub struct Database {
    pub(crate) inner: Arc<DbInner>,
}

impl Database {
    /// Connects to the store a connection string names (`memory://`, `file://`, `s3://`,
    /// `http(s)://`), creating `s3db.json` if the store has none.
    pub async fn connect(conn: &str) -> Result<Database> {
        let store = Store::open(conn).await?;
        Database::with_store(store).await
    }

    pub async fn connect_with(conn: &str, options: ConnectOptions) -> Result<Database> {
        let store = Store::open(conn).await?;
        Database::with_store_and(store, options).await
    }

    pub async fn with_store(store: Store) -> Result<Database> {
        Database::with_store_and(store, ConnectOptions::default()).await
    }

    pub async fn with_store_and(store: Store, options: ConnectOptions) -> Result<Database> {
        let (cached, healing_log) = load_or_heal(&store).await?;
        Ok(Database {
            inner: Arc::new(DbInner {
                ctx: Context::new(store),
                catalog: Mutex::new(cached),
                passphrase: crate::format::crypto::Passphrase::new(
                    options
                        .passphrase
                        .unwrap_or_else(|| crate::format::crypto::DEFAULT_PASSPHRASE.to_string()),
                ),
                resource_passphrases: Default::default(),
                healing_log: std::sync::Mutex::new(healing_log),
                hooks: Default::default(),
            }),
        })
    }

    fn resource_of(&self, catalog: &Value, name: &str) -> Result<Option<Resource>> {
        Ok(
            catalog::resource_def(catalog, name, self.inner.passphrase_of(name).expose())?
                .map(|def| Resource::new(self.inner.clone(), def)),
        )
    }

    pub fn store(&self) -> &Store {
        &self.inner.ctx.store
    }

    /// Requests sent so far, by kind.
    pub fn stats(&self) -> Stats {
        self.inner.ctx.store.stats()
    }

    pub fn reset_stats(&self) {
        self.inner.ctx.store.reset_stats()
    }

    /// Unique per process: host, pid and a random part.
    pub fn holder_id(&self) -> &str {
        &self.inner.ctx.holder_id
    }

    /// Defines a resource with string-rule attributes and default options.
    pub async fn create_resource(&self, name: &str, attributes: &Value) -> Result<Resource> {
        self.create_resource_with(name, ResourceConfig::from_attributes(attributes)?)
            .await
    }

    /// Defines a resource (or redefines it: a new catalog version). The catalog is written
    /// by compare-and-swap; a concurrent writer's change is re-read and kept.
    pub async fn create_resource_with(
        &self,
        name: &str,
        config: ResourceConfig,
    ) -> Result<Resource> {
        self.create_resource_with_hooks(name, config, Hooks::default())
            .await
    }

    /// As [`Database::create_resource_with`], with hooks that replace the resource's hooks
    /// in this process; the catalog keeps their summary.
    pub async fn create_resource_with_hooks(
        &self,
        name: &str,
        config: ResourceConfig,
        hooks: Hooks,
    ) -> Result<Resource> {
        validate_name("resource name", name)?;
        config.check()?;
        if let Some(p) = &config.passphrase {
            self.inner
                .resource_passphrases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(
                    name.to_string(),
                    crate::format::crypto::Passphrase::new(p.clone()),
                );
        }
        if !hooks.is_empty() {
            self.inner.hooks_of(name).replace_with(&hooks);
        }
        let summary = hooks.summary();
        let catalog = self
            .inner
            .change_catalog(|next, now| {
                catalog::define_resource(next, name, &config, &summary, now)
            })
            .await?;
        self.resource_of(&catalog, name)?
            .ok_or_else(|| Error::not_found(format!("resource {name}")))
    }

    /// A resource defined earlier (by this or another client).
    pub async fn resource(&self, name: &str) -> Result<Resource> {
        validate_name("resource name", name)?;
        let mut cached = self.inner.catalog.lock().await;
        if let Some(r) = self.resource_of(&cached.catalog, name)? {
            return Ok(r);
        }
        *cached = load_or_create(&self.inner.ctx.store).await?;
        self.resource_of(&cached.catalog, name)?
            .ok_or_else(|| Error::not_found(format!("resource {name}")))
    }

    /// Names of the resources in the catalog as last read.
    pub async fn list_resources(&self) -> Vec<String> {
        catalog::resource_names(&self.inner.catalog.lock().await.catalog)
    }

    /// Re-reads `s3db.json`.
    pub async fn refresh(&self) -> Result<()> {
        let (fresh, log) = load_or_heal(&self.inner.ctx.store).await?;
        *self.inner.catalog.lock().await = fresh;
        *self.inner.healing_log.lock().expect("healing log") = log;
        Ok(())
    }

    /// What healing did to `s3db.json` when this handle connected or last re-read it: one
    /// line per repair, empty when the catalog was intact.
    pub fn healing_log(&self) -> Vec<String> {
        self.inner.healing_log.lock().expect("healing log").clone()
    }
}
