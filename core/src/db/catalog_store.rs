//! Reading, creating and healing `s3db.json`.

use bytes::Bytes;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::{self, iso_now, CATALOG_KEY};
use crate::format::catalog_heal::backup_key;
use crate::storage::{Object, PutRequest, Store, StoreError, WriteCondition};

#[derive(Debug)]
pub(crate) struct Cached {
    pub catalog: Value,
    pub etag: String,
}

pub(crate) async fn load_or_create(store: &Store) -> Result<Cached> {
    Ok(load_or_heal(store).await?.0)
}

/// Reads `s3db.json` (creating it when absent, healing it when corrupt: see `healing`).
/// Returns the healing log, empty when nothing was healed by this call.
pub(crate) async fn load_or_heal(store: &Store) -> Result<(Cached, Vec<String>)> {
    loop {
        match store.get(CATALOG_KEY).await {
            Ok(obj) => {
                let (catalog, log) = match crate::format::catalog_heal::check(&obj.body)? {
                    crate::format::catalog_heal::Checked::Intact(catalog) => (catalog, Vec::new()),
                    crate::format::catalog_heal::Checked::Healed { catalog, log } => {
                        match write_healed(store, &obj, &catalog, &log).await? {
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

/// Backs up the corrupt object, then writes the healed catalog conditionally on its etag.
/// `None`: the catalog changed since it was read (nothing overwritten; read it again).
async fn write_healed(
    store: &Store,
    corrupt: &Object,
    catalog: &Value,
    log: &[String],
) -> Result<Option<String>> {
    let mut attempts = 0;
    let backup = loop {
        let backup = backup_key(&iso_now());
        let req = PutRequest {
            body: corrupt.body.clone(),
            condition: WriteCondition::IfNoneMatch,
            ..Default::default()
        };
        match store.put(&backup, req).await {
            Ok(_) => break backup,
            // A backup of that same millisecond exists: never overwrite one, take the next.
            Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            Err(e) => return Err(e.at(&backup)),
        }
    };
    let req = PutRequest {
        body: Bytes::from(crate::format::catalog::serialize(catalog)),
        content_type: Some("application/json".into()),
        condition: WriteCondition::IfMatch(corrupt.head.etag.clone()),
        ..Default::default()
    };
    match store.put(CATALOG_KEY, req).await {
        Ok(etag) => {
            tracing::warn!(backup = %backup, repairs = ?log, "healed a corrupt s3db.json");
            Ok(Some(etag))
        }
        Err(StoreError::PreconditionFailed)
        | Err(StoreError::Conflict)
        | Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.at(CATALOG_KEY)),
    }
}
