//! What every handle of one database shares: the coordination context, the cached catalog,
//! passphrases and hooks.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use std::time::Duration;

use crate::coord::attempts::Attempts;
use crate::coord::Context;
use crate::db::catalog_store::{load_or_create, Cached};
use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::{self, CATALOG_KEY};
use crate::storage::{PutRequest, StoreError, WriteCondition};

#[derive(Debug)]
pub(crate) struct DbInner {
    pub ctx: Arc<Context>,
    pub catalog: Mutex<Cached>,
    pub passphrase: crate::format::crypto::Passphrase,
    /// Per-resource passphrases given to `create_resource_with` (never stored).
    pub resource_passphrases:
        std::sync::Mutex<std::collections::HashMap<String, crate::format::crypto::Passphrase>>,
    /// What healing did to `s3db.json` on connect or the last refresh.
    pub healing_log: std::sync::Mutex<Vec<String>>,
    /// Hooks by resource name, shared by every handle of the resource.
    pub hooks: std::sync::Mutex<std::collections::HashMap<String, crate::db::hooks::Hooks>>,
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
        let mut attempts = Attempts::new("writing s3db.json", 64, Duration::from_secs(60));
        let written = loop {
            let mut next = cached.catalog.clone();
            let now = catalog::iso_now();
            match change(&mut next, &now) {
                Ok(true) => {}
                Ok(false) => break Ok(cached.catalog.clone()),
                Err(e) => break Err(e),
            }
            if self.ctx.store.catalog_mutex() && mutex.is_none() {
                match crate::coord::catalog_mutex::acquire(&self.ctx.store, &self.ctx.holder_id)
                    .await
                {
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
            match self.ctx.store.put(CATALOG_KEY, req).await {
                Ok(etag) => {
                    *cached = Cached {
                        catalog: next.clone(),
                        etag,
                    };
                    break Ok(next);
                }
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    if let Err(e) = attempts
                        .failed_because(ErrorKind::Conflict, "another writer changed it each time")
                        .await
                    {
                        break Err(e);
                    }
                    match load_or_create(&self.ctx.store).await {
                        Ok(fresh) => *cached = fresh,
                        Err(e) => break Err(e),
                    }
                }
                Err(e) => break Err(e.at(CATALOG_KEY)),
            }
        };
        if let Some(etag) = mutex {
            crate::coord::catalog_mutex::release(&self.ctx.store, &etag).await;
        }
        written
    }

    pub(crate) fn hooks_of(&self, resource: &str) -> crate::db::hooks::Hooks {
        self.hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(resource.to_string())
            .or_default()
            .clone()
    }

    pub(crate) fn passphrase_of(&self, name: &str) -> crate::format::crypto::Passphrase {
        self.resource_passphrases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.passphrase.clone())
    }
}

pub(crate) fn object_of(v: Value) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(Error::validation(format!(
            "a record must be an object, got {}",
            crate::format::schema::type_name(&other)
        ))),
    }
}
