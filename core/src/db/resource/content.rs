//! Binary content of a record: a non-JSON body beside the metadata fields.

use bytes::Bytes;
use serde_json::{Map, Value};

use super::*;
use crate::coord::jitter;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{Metadata, Object, PutRequest, StoreError, WriteCondition};

impl Resource {
    /// Metadata and body of a record that carries binary content (s3db.js `setContent`).
    pub(super) fn with_content(
        &self,
        record: &Map<String, Value>,
        id: Option<&str>,
        content: &Bytes,
        content_type: &str,
    ) -> Result<(Metadata, Bytes, Option<String>)> {
        if content_type == "application/json" {
            return Err(Error::invalid(
                "content of type application/json is not supported: s3db.js reads JSON bodies as record fields",
            ));
        }
        let (mut meta, body, _) = self.layout(record, None)?;
        if !body.is_empty() {
            return Err(Error::invalid(format!(
                "{}: this record is stored in the object body ({} behavior), so it cannot carry binary content",
                self.def().name, self.def().behavior
            )));
        }
        if let Some(id) = id {
            meta.insert(
                "id".into(),
                crate::format::schema::codec::encode_header_value(id),
            );
        }
        meta.insert(HAS_CONTENT.into(), "true".into());
        meta.insert(
            "_mimetype".into(),
            crate::format::schema::codec::encode_header_value(content_type),
        );
        meta.insert("_contentlength".into(), content.len().to_string());
        Ok((meta, content.clone(), Some(content_type.to_string())))
    }

    /// Inserts a record whose object body is binary content (s3db.js `insert(data, {content})`).
    pub async fn insert_with_content(
        &self,
        data: Value,
        content: Bytes,
        content_type: &str,
    ) -> Result<Value> {
        self.insert_inner(data, Some((content, content_type))).await
    }

    /// Sets (`Some`) or removes (`None`) a record's binary content, by compare-and-swap.
    pub async fn set_content(&self, id: &str, content: Option<(Bytes, &str)>) -> Result<()> {
        let key = self.key(id)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch_current(id).await?;
            let (mut metadata, body, content_type) = match &content {
                Some((bytes, ct)) => {
                    self.with_content(&current.stored.record, Some(id), bytes, ct)?
                }
                None => self.layout(&current.stored.record, Some(id))?,
            };
            // The values do not change, nor does where their partition references stand.
            self.keep_marker(&mut metadata, &current.raw);
            let req = PutRequest {
                body,
                metadata,
                content_type,
                condition: WriteCondition::IfMatch(current.stored.etag),
            };
            match self.db.ctx.store.put(&key, req).await {
                Ok(_) => return Ok(()),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(self.missing(e, id, &key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: set_content of {id:?} kept losing races",
                self.def().name
            ),
        ))
    }

    /// The binary content of a record and its type; NOT_FOUND when it has none.
    pub async fn content(&self, id: &str) -> Result<(Bytes, String)> {
        let key = self.key(id)?;
        let obj = self
            .db
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        content_of(&obj).ok_or_else(|| {
            Error::not_found(format!("{} record {id:?} has no content", self.def().name))
        })
    }
}

pub(super) const HAS_CONTENT: &str = "_hascontent";

/// Binary content: a non-empty body that is not JSON, flagged `_hascontent` or typed as
/// something else than JSON. (s3db.js updates copy the flag onto records whose JSON body holds
/// fields, and some S3 front ends drop `_`-prefixed metadata, so neither alone decides.)
pub(super) fn content_of(obj: &Object) -> Option<(Bytes, String)> {
    if obj.body.is_empty() {
        return None;
    }
    let flagged = obj.head.metadata.get(HAS_CONTENT).map(String::as_str) == Some("true");
    let ct = obj
        .head
        .metadata
        .get("_mimetype")
        .and_then(|m| crate::format::schema::codec::decode_value(m))
        .or_else(|| obj.head.content_type.clone())?;
    let json =
        ct == "application/json" || obj.head.content_type.as_deref() == Some("application/json");
    (!json && (flagged || !ct.is_empty())).then(|| (obj.body.clone(), ct))
}
