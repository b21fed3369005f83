//! Reading, creating and healing `s3db.json`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::coord::attempts::Attempts;
use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::{self, iso_now, CATALOG_KEY};
use crate::format::catalog_heal::{backup_key, check, Checked};
use crate::storage::{Object, PutRequest, Store, StoreError, WriteCondition};

#[derive(Debug)]
pub(crate) struct Cached {
    pub catalog: Value,
    pub etag: String,
}

pub(crate) async fn load_or_create(store: &Store) -> Result<Cached> {
    Ok(load_or_heal(store).await?.0)
}

/// How often a connect re-reads or re-creates the catalog before it gives up.
const CATALOG_ATTEMPTS: u32 = 10;
const CATALOG_PATIENCE: Duration = Duration::from_secs(30);

/// Reads `s3db.json` (creating it when absent, healing it when corrupt: see
/// `format::catalog_heal`). Returns the healing log, empty when nothing was healed by this call.
///
/// A catalog that reads as corrupt is acted on only when a second read returns the same etag
/// and the same bytes: a bad read (a body cut short, flipped bits) is never taken for a bad
/// object, and nothing is written on its account.
pub(crate) async fn load_or_heal(store: &Store) -> Result<(Cached, Vec<String>)> {
    let mut attempts = Attempts::new("reading s3db.json", CATALOG_ATTEMPTS, CATALOG_PATIENCE);
    loop {
        let obj = match store.get(CATALOG_KEY).await {
            Ok(obj) => obj,
            Err(StoreError::NotFound) => match create(store).await? {
                Some(created) => return Ok((created, Vec::new())),
                None => {
                    attempts
                        .failed_because(
                            ErrorKind::Storage,
                            "the store answers 404 to a GET of s3db.json and 412 to creating it",
                        )
                        .await?;
                    continue;
                }
            },
            Err(e) => return Err(unreadable(e)),
        };
        let checked = check(&obj.body);
        if let Ok(Checked::Intact(catalog)) = checked {
            let etag = obj.head.etag;
            return Ok((Cached { catalog, etag }, Vec::new()));
        }
        if !read_twice_alike(store, &obj).await? {
            attempts
                .failed_because(ErrorKind::Storage, "reads of s3db.json disagree")
                .await?;
            continue;
        }
        let Checked::Healed { catalog, log } = checked? else {
            unreachable!("an intact catalog returned above")
        };
        match write_healed(store, &obj, &catalog, &log).await? {
            Some(etag) => return Ok((Cached { catalog, etag }, log)),
            None => {
                attempts
                    .failed_because(ErrorKind::Conflict, "s3db.json changed while it was healed")
                    .await?
            }
        }
    }
}

/// Whether a second GET returns the same etag and bytes, and a HEAD the same size, as `first`.
async fn read_twice_alike(store: &Store, first: &Object) -> Result<bool> {
    let again = match store.get(CATALOG_KEY).await {
        Ok(again) => again,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(unreadable(e)),
    };
    let head = match store.head(CATALOG_KEY).await {
        Ok(head) => head,
        Err(StoreError::NotFound) => return Ok(false),
        Err(e) => return Err(unreadable(e)),
    };
    Ok(again.head.etag == first.head.etag
        && again.body == first.body
        && head.etag == first.head.etag
        && head.size == first.body.len() as u64)
}

/// Whether the object at `key` holds `body`.
async fn holds(store: &Store, key: &str, body: &[u8]) -> Result<bool> {
    match store.get(key).await {
        Ok(obj) => Ok(obj.body == body),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.at(key)),
    }
}

/// Creates an empty catalog; `None` when one exists already.
async fn create(store: &Store) -> Result<Option<Cached>> {
    let catalog = catalog::empty(&catalog::iso_now());
    let req = PutRequest {
        body: Bytes::from(catalog::serialize(&catalog)),
        content_type: Some("application/json".into()),
        condition: WriteCondition::IfNoneMatch,
        ..Default::default()
    };
    match store.put(CATALOG_KEY, req).await {
        Ok(etag) => Ok(Some(Cached { catalog, etag })),
        Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => Ok(None),
        Err(e) => Err(e.at(CATALOG_KEY)),
    }
}

fn unreadable(e: StoreError) -> Error {
    Error::new(
        ErrorKind::Storage,
        format!(
            "cannot read s3db.json (catalog left untouched): {}",
            e.at(CATALOG_KEY)
        ),
    )
}

/// Copies the corrupt object aside on the server, then writes the healed catalog
/// conditionally on its etag. `None`: the catalog changed since it was read (nothing
/// overwritten; read it again).
async fn write_healed(
    store: &Store,
    corrupt: &Object,
    catalog: &Value,
    log: &[String],
) -> Result<Option<String>> {
    let mut attempts = 0;
    let backup = loop {
        let backup = backup_key(&iso_now());
        let copied = store
            .copy(
                CATALOG_KEY,
                &backup,
                corrupt.head.metadata.clone(),
                corrupt.head.content_type.clone(),
                WriteCondition::IfNoneMatch,
            )
            .await;
        match copied {
            // The copy holds the bytes that were judged corrupt, or the catalog changed.
            Ok(etag) if crate::storage::etags_equal(&etag, &corrupt.head.etag) => break backup,
            // Another etag scheme (a file store's sidecar written elsewhere): compare bytes.
            Ok(_) if holds(store, &backup, &corrupt.body).await? => break backup,
            Ok(_) | Err(StoreError::NotFound) => return Ok(None),
            // A backup of that same millisecond exists: never overwrite one, take the next.
            Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) if attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
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
