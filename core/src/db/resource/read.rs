//! Reads: get, batches, listings, counts and pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use super::*;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::StoreError;

impl Resource {
    pub(super) async fn fetch(&self, id: &str) -> Result<Stored> {
        let key = self.key(id)?;
        let obj = self
            .db
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        Ok(Stored {
            record: self.decode(&obj),
            content: content_of(&obj),
            etag: obj.head.etag,
        })
    }

    pub async fn get(&self, id: &str) -> Result<Value> {
        if self.hooks.has("beforeGet") {
            self.hooks.notify("beforeGet", json!({"id": id})).await?;
        }
        let stored = self.fetch(id).await?;
        self.after("afterGet", with_id(stored.record, id)).await
    }

    /// The record and its version tag, for `update_if`.
    pub async fn get_with_etag(&self, id: &str) -> Result<(Value, String)> {
        let stored = self.fetch(id).await?;
        Ok((with_id(stored.record, id), stored.etag))
    }

    /// `None` when there is no such record.
    pub async fn get_or_none(&self, id: &str) -> Result<Option<Value>> {
        match self.get(id).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The records found (in the order asked) and the ids that do not exist.
    pub async fn get_many(&self, ids: &[String]) -> Result<(Vec<Value>, Vec<String>)> {
        if self.hooks.has("beforeGetMany") {
            self.hooks
                .notify("beforeGetMany", json!({"ids": ids}))
                .await?;
        }
        let found: Vec<(String, Option<Value>)> = stream::iter(ids.iter().cloned())
            .map(|id| async move { self.get_or_none(&id).await.map(|r| (id, r)) })
            .buffered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        let mut records = Vec::new();
        let mut missing = Vec::new();
        for (id, r) in found {
            match r {
                Some(v) => records.push(v),
                None => missing.push(id),
            }
        }
        let records = self.after_many("afterGetMany", records).await?;
        Ok((records, missing))
    }

    pub async fn exists(&self, id: &str) -> Result<bool> {
        let key = self.key(id)?;
        if self.hooks.has("beforeExists") {
            self.hooks.notify("beforeExists", json!({"id": id})).await?;
        }
        let exists = match self.db.ctx.store.head(&key).await {
            Ok(_) => true,
            Err(StoreError::NotFound) => false,
            Err(e) => return Err(e.at(&key)),
        };
        if self.hooks.has("afterExists") {
            self.hooks
                .notify("afterExists", json!({"id": id, "exists": exists}))
                .await?;
        }
        Ok(exists)
    }

    pub(super) fn list_prefix(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<String> {
        match partition {
            None => Ok(self.data_prefix.clone()),
            Some((name, values)) => self.partition(name)?.prefix(&self.def().name, values),
        }
    }

    /// Every id (of a partition's matching references, if given), with no cap.
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        self.list_ids_in(None).await
    }

    pub async fn list_ids_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<String>> {
        let prefix = self.list_prefix(partition)?;
        let keys = self
            .db
            .ctx
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| e.at(&prefix))?;
        Ok(keys.iter().filter_map(|k| id_of(k)).collect())
    }

    /// Every record (a GET per id, several at a time). Records deleted meanwhile are skipped.
    pub async fn list(&self) -> Result<Vec<Value>> {
        self.list_in(None).await
    }

    pub async fn list_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<Value>> {
        if self.hooks.has("beforeList") {
            let context = match partition {
                Some((p, values)) => json!({"partition": p, "partitionValues": values}),
                None => json!({}),
            };
            self.hooks.notify("beforeList", context).await?;
        }
        let ids = self.list_ids_in(partition).await?;
        let records = self.fetch_all(ids, true).await?;
        self.after_many("afterList", records).await
    }

    /// The records of `ids` that exist, through the read hooks if `hooked`.
    pub(super) async fn fetch_all(&self, ids: Vec<String>, hooked: bool) -> Result<Vec<Value>> {
        stream::iter(ids)
            .map(|id| async move {
                if hooked {
                    return self.get_or_none(&id).await;
                }
                match self.fetch(&id).await {
                    Ok(stored) => Ok(Some(with_id(stored.record, &id))),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await
    }

    pub async fn count(&self) -> Result<u64> {
        self.count_in(None).await
    }

    pub async fn count_in(&self, partition: Option<(&str, &Map<String, Value>)>) -> Result<u64> {
        let context = match partition {
            Some((p, values)) => json!({"partition": p, "partitionValues": values}),
            None => json!({}),
        };
        if self.hooks.has("beforeCount") {
            self.hooks.notify("beforeCount", context.clone()).await?;
        }
        let count = self.count_unhooked(partition).await?;
        if self.hooks.has("afterCount") {
            let mut context = context;
            context["count"] = json!(count);
            self.hooks.notify("afterCount", context).await?;
        }
        Ok(count)
    }

    pub(super) async fn count_unhooked(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<u64> {
        let prefix = self.list_prefix(partition)?;
        let mut total = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .db
                .ctx
                .store
                .list_page(&prefix, token.as_deref(), 1000)
                .await
                .map_err(|e| e.at(&prefix))?;
            total += page.keys.iter().filter(|k| id_of(k).is_some()).count() as u64;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(total),
            }
        }
    }

    /// One page of records: one LIST plus a GET per record. Pass the returned cursor back
    /// for the next page; it stays valid while records are added or removed.
    pub async fn page(&self, size: usize, cursor: Option<&str>) -> Result<Page> {
        if size == 0 || size > 1000 {
            return Err(Error::invalid("page size must be between 1 and 1000"));
        }
        let token = match cursor {
            None => None,
            Some(c) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                let v: Value = serde_json::from_slice(&raw)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                if v["prefix"].as_str() != Some(self.data_prefix.as_str()) {
                    return Err(Error::invalid("this cursor belongs to another listing"));
                }
                v["token"].as_str().map(str::to_string)
            }
        };
        let page = self
            .db
            .ctx
            .store
            .list_page(&self.data_prefix, token.as_deref(), size)
            .await
            .map_err(|e| e.at(&self.data_prefix))?;
        let ids: Vec<String> = page.keys.iter().filter_map(|k| id_of(k)).collect();
        let items = self.fetch_all(ids, true).await?;
        let cursor = page.next.map(|t| {
            let c = json!({"v": 1, "prefix": self.data_prefix, "token": t, "pageSize": size});
            URL_SAFE_NO_PAD.encode(c.to_string())
        });
        Ok(Page { items, cursor })
    }
}
