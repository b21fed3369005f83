//! A connected database: the store, the cached catalog and the process's holder id.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::catalog::{self, ResourceConfig, CATALOG_KEY};
use crate::coordinator::{Coordinator, CoordinatorOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::ids::validate_name;
use crate::lock::{Lock, LockOptions};
use crate::resource::Resource;
use crate::sequence::{Sequence, SequenceOptions};
use crate::storage::{PutRequest, Stats, Store, StoreError, WriteCondition};

#[derive(Debug)]
pub(crate) struct Cached {
    pub catalog: Value,
    pub etag: String,
}

#[derive(Debug)]
pub(crate) struct DbInner {
    pub store: Store,
    pub catalog: Mutex<Cached>,
    pub holder_id: String,
    pub passphrase: crate::crypto::Passphrase,
    /// Per-resource passphrases given to `create_resource_with` (never stored).
    pub resource_passphrases:
        std::sync::Mutex<std::collections::HashMap<String, crate::crypto::Passphrase>>,
    /// What healing did to `s3db.json` on connect or the last refresh.
    pub healing_log: std::sync::Mutex<Vec<String>>,
    /// Hooks by resource name, shared by every handle of the resource.
    pub hooks: std::sync::Mutex<std::collections::HashMap<String, crate::hooks::Hooks>>,
}

impl DbInner {
    /// Applies `change` to the catalog and writes it by compare-and-swap; on a lost race the
    /// catalog is re-read and `change` applied again. `change` returns `false` when there is
    /// nothing to write. Returns the catalog as written (or as read, if unchanged).
    pub(crate) async fn change_catalog<F>(&self, mut change: F) -> Result<Value>
    where
        F: FnMut(&mut Value, &str) -> Result<bool>,
    {
        let mut cached = self.catalog.lock().await;
        let mut mutex: Option<String> = None;
        let written = loop {
            let mut next = cached.catalog.clone();
            let now = catalog::iso_now();
            match change(&mut next, &now) {
                Ok(true) => {}
                Ok(false) => break Ok(cached.catalog.clone()),
                Err(e) => break Err(e),
            }
            if self.store.catalog_mutex() && mutex.is_none() {
                match crate::catalog_mutex::acquire(&self.store).await {
                    Ok(etag) => mutex = Some(etag),
                    Err(e) => break Err(e),
                }
            }
            next["lastUpdated"] = Value::String(now);
            let req = PutRequest {
                body: Bytes::from(catalog::serialize(&next)),
                content_type: Some("application/json".into()),
                condition: WriteCondition::IfMatch(cached.etag.clone()),
                ..Default::default()
            };
            match self.store.put(CATALOG_KEY, req).await {
                Ok(etag) => {
                    *cached = Cached {
                        catalog: next.clone(),
                        etag,
                    };
                    break Ok(next);
                }
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    match load_or_create(&self.store).await {
                        Ok(fresh) => *cached = fresh,
                        Err(e) => break Err(e),
                    }
                }
                Err(e) => break Err(e.at(CATALOG_KEY)),
            }
        };
        if let Some(etag) = mutex {
            crate::catalog_mutex::release(&self.store, &etag).await;
        }
        written
    }

    pub(crate) fn hooks_of(&self, resource: &str) -> crate::hooks::Hooks {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(resource.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn passphrase_of(&self, name: &str) -> crate::crypto::Passphrase {
        self.resource_passphrases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.passphrase.clone())
    }
}

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
                store,
                catalog: Mutex::new(cached),
                holder_id: holder_id(),
                passphrase: crate::crypto::Passphrase::new(
                    options
                        .passphrase
                        .unwrap_or_else(|| crate::crypto::DEFAULT_PASSPHRASE.to_string()),
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
        &self.inner.store
    }

    /// Requests sent so far, by kind.
    pub fn stats(&self) -> Stats {
        self.inner.store.stats()
    }

    pub fn reset_stats(&self) {
        self.inner.store.reset_stats()
    }

    /// Unique per process: host, pid and a random part.
    pub fn holder_id(&self) -> &str {
        &self.inner.holder_id
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
        validate_name("resource name", name)?;
        config.check()?;
        if let Some(p) = &config.passphrase {
            self.inner
                .resource_passphrases
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(name.to_string(), crate::crypto::Passphrase::new(p.clone()));
        }
        if !config.hooks.is_empty() {
            self.inner.hooks_of(name).replace_with(&config.hooks);
        }
        let catalog = self
            .inner
            .change_catalog(|next, now| catalog::define_resource(next, name, &config, now))
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
        *cached = load_or_create(&self.inner.store).await?;
        self.resource_of(&cached.catalog, name)?
            .ok_or_else(|| Error::not_found(format!("resource {name}")))
    }

    /// Names of the resources in the catalog as last read.
    pub async fn list_resources(&self) -> Vec<String> {
        catalog::resource_names(&self.inner.catalog.lock().await.catalog)
    }

    /// Re-reads `s3db.json`.
    pub async fn refresh(&self) -> Result<()> {
        let (fresh, log) = load_or_heal(&self.inner.store).await?;
        *self.inner.catalog.lock().await = fresh;
        *self.inner.healing_log.lock().expect("healing log") = log;
        Ok(())
    }

    pub async fn lock(&self, name: &str, options: LockOptions) -> Result<Lock> {
        Lock::acquire(self.inner.clone(), name, options).await
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

    /// A worker in the leader election of `namespace` (not started: call `start()`).
    pub fn coordinator(&self, namespace: &str, options: CoordinatorOptions) -> Result<Coordinator> {
        Coordinator::new(self.inner.clone(), namespace, options)
    }

    pub fn sequence(&self, name: &str) -> Result<Sequence> {
        self.sequence_with(name, SequenceOptions::default())
    }

    pub fn sequence_with(&self, name: &str, options: SequenceOptions) -> Result<Sequence> {
        Sequence::new(self.inner.clone(), name, options)
    }
}

async fn load_or_create(store: &Store) -> Result<Cached> {
    Ok(load_or_heal(store).await?.0)
}

/// Reads `s3db.json` (creating it when absent, healing it when corrupt: see `healing`).
/// Returns the healing log, empty when nothing was healed by this call.
async fn load_or_heal(store: &Store) -> Result<(Cached, Vec<String>)> {
    loop {
        match store.get(CATALOG_KEY).await {
            Ok(obj) => {
                let (catalog, log) = match crate::healing::check(&obj.body)? {
                    crate::healing::Checked::Intact(catalog) => (catalog, Vec::new()),
                    crate::healing::Checked::Healed { catalog, log } => {
                        match crate::healing::write(store, &obj, &catalog, &log).await? {
                            Some(etag) => return Ok((Cached { catalog, etag }, log)),
                            // Changed meanwhile (another process healed it?): read again.
                            None => continue,
                        }
                    }
                };
                return Ok((
                    Cached {
                        catalog,
                        etag: obj.head.etag,
                    },
                    log,
                ));
            }
            Err(StoreError::NotFound) => {
                let catalog = catalog::empty(&catalog::iso_now());
                let req = PutRequest {
                    body: Bytes::from(catalog::serialize(&catalog)),
                    content_type: Some("application/json".into()),
                    condition: WriteCondition::IfNoneMatch,
                    ..Default::default()
                };
                match store.put(CATALOG_KEY, req).await {
                    Ok(etag) => return Ok((Cached { catalog, etag }, Vec::new())),
                    // Someone else created it first: read theirs.
                    Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.at(CATALOG_KEY)),
                }
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Storage,
                    format!(
                        "cannot read s3db.json (catalog left untouched): {}",
                        e.at(CATALOG_KEY)
                    ),
                ))
            }
        }
    }
}

fn holder_id() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        crate::ids::generate_id(8)
    )
}

pub(crate) fn object_of(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(Error::validation(format!(
            "a record must be an object, got {}",
            crate::schema::type_name(&other)
        ))),
    }
}
