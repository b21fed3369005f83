//! Reads: get, batches, listings, counts and pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};

use super::*;
use crate::error::{Error, ErrorKind, Result};
use crate::format::partition::PartitionFilter;
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

    /// The filter of a partition read, checked against the partition and the schema.
    pub(super) fn partition_filter(
        &self,
        name: &str,
        values: &Map<String, Value>,
    ) -> Result<PartitionFilter> {
        let def = self.def();
        let schema = def.schema();
        self.partition(name)?.filter(&def.name, values, |path| {
            schema.field(path).map(|f| f.rule.kind.clone())
        })
    }

    /// The references of a partition listing that have the asked values, grouped by id in
    /// listing order (an id listed twice has a stale reference).
    fn group_refs(f: &PartitionFilter, keys: Vec<String>) -> Vec<(String, Vec<String>)> {
        let mut order: Vec<(String, Vec<String>)> = Vec::new();
        let mut at: std::collections::HashMap<String, usize> = Default::default();
        for key in keys {
            let Some(id) = f.id_of_key(&key) else {
                continue;
            };
            match at.get(&id) {
                Some(&i) => order[i].1.push(key),
                None => {
                    at.insert(id.clone(), order.len());
                    order.push((id, vec![key]));
                }
            }
        }
        order
    }

    async fn partition_refs(&self, f: &PartitionFilter) -> Result<Vec<(String, Vec<String>)>> {
        let keys = self
            .db
            .ctx
            .store
            .list_all(f.prefix())
            .await
            .map_err(|e| e.at(f.prefix()))?;
        Ok(Self::group_refs(f, keys))
    }

    /// Every id (of a partition's matching references, if given), with no cap.
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        self.list_ids_in(None).await
    }

    /// Ids of every record, or of a partition's references that have the given values.
    ///
    /// `values` may name any subset of the partition's fields: the leading fields (in key
    /// order, [`crate::format::partition::Partition::fields`]) make the listing prefix, the
    /// others are matched against each key's segments. A field not in the partition, a
    /// `null` or a value of the wrong type is a `Validation` error. Answered from the
    /// references alone (no record is read): until `reindex` repairs it, a stale reference
    /// can add an id whose record no longer has these values; an id appears once.
    pub async fn list_ids_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<String>> {
        match partition {
            None => {
                let keys = self
                    .db
                    .ctx
                    .store
                    .list_all(&self.data_prefix)
                    .await
                    .map_err(|e| e.at(&self.data_prefix))?;
                Ok(keys.iter().filter_map(|k| id_of(k)).collect())
            }
            Some((name, values)) => {
                let f = self.partition_filter(name, values)?;
                Ok(self
                    .partition_refs(&f)
                    .await?
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect())
            }
        }
    }

    /// Reads the record of one id listed in a partition and keeps it only if it has the
    /// values asked for; references that disagree with the record are reported stale.
    /// `page`: the listing is one page of several, so a record met through a stale
    /// reference is kept only when its own reference is missing (one HEAD, stale case only).
    async fn fetch_verified(
        &self,
        f: &PartitionFilter,
        id: &str,
        keys: &[String],
        hooked: bool,
        page: bool,
    ) -> Result<Option<Value>> {
        if hooked && self.hooks.has("beforeGet") {
            self.hooks.notify("beforeGet", json!({"id": id})).await?;
        }
        let stored = match self.fetch(id).await {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                for key in keys {
                    self.note_stale(f, key, id, "record missing");
                }
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let own = f.key_of(&stored.record, id);
        for key in keys {
            if own.as_deref() != Some(key.as_str()) {
                self.note_stale(f, key, id, "values differ");
            }
        }
        if !f.record_matches(&stored.record) {
            return Ok(None);
        }
        // A page saw the record only through a stale reference whose values match too: it
        // belongs to the page of its own reference (listed too, unless it is missing).
        if let Some(own) = own.filter(|k| page && !keys.contains(k) && f.id_of_key(k).is_some()) {
            match self.db.ctx.store.head(&own).await {
                Ok(_) => return Ok(None),
                Err(StoreError::NotFound) => self.note_stale(f, &own, id, "reference missing"),
                Err(e) => return Err(e.at(&own)),
            }
        }
        let record = with_id(stored.record, id);
        if hooked {
            self.after("afterGet", record).await.map(Some)
        } else {
            Ok(Some(record))
        }
    }

    fn note_stale(&self, f: &PartitionFilter, key: &str, id: &str, reason: &'static str) {
        self.stale.note(
            &self.name,
            StaleReference {
                partition: f.partition().name.clone(),
                key: key.to_string(),
                id: id.to_string(),
                reason,
            },
        );
    }

    /// The records behind grouped references, verified, several at a time.
    pub(super) async fn fetch_refs(
        &self,
        f: &PartitionFilter,
        refs: Vec<(String, Vec<String>)>,
        hooked: bool,
        page: bool,
    ) -> Result<Vec<Value>> {
        stream::iter(refs)
            .map(|(id, keys)| async move { self.fetch_verified(f, &id, &keys, hooked, page).await })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await
    }

    /// The records of a partition filter (`hooked`: through the read hooks).
    pub(super) async fn list_partition(
        &self,
        f: &PartitionFilter,
        hooked: bool,
    ) -> Result<Vec<Value>> {
        let refs = self.partition_refs(f).await?;
        self.fetch_refs(f, refs, hooked, false).await
    }

    /// Stale partition references that reads of this handle (and its clones) skipped since
    /// the last [`Resource::take_stale_references`], one entry per reference key (at most
    /// 1,000 kept). Each was also logged with `tracing::warn!`; `reindex` repairs them.
    pub fn stale_references(&self) -> Vec<StaleReference> {
        self.stale.list()
    }

    /// As [`Resource::stale_references`], and forgets them.
    pub fn take_stale_references(&self) -> Vec<StaleReference> {
        self.stale.take()
    }

    /// How many times reads of this handle (and its clones) met a stale reference.
    pub fn stale_reference_count(&self) -> u64 {
        self.stale.count()
    }

    /// s3db.js `getFromPartition({id, partitionName, partitionValues})`: the record if it is
    /// in the partition with those values (any subset of its fields, checked as
    /// [`Resource::list_ids_in`] checks them) — its data has the values and its reference
    /// exists. One GET, then one HEAD of the reference when the data matches. Otherwise
    /// `NotFound` (a record whose reference is missing is reported as a stale reference).
    pub async fn get_from_partition(
        &self,
        id: &str,
        partition: &str,
        values: &Map<String, Value>,
    ) -> Result<Value> {
        let f = self.partition_filter(partition, values)?;
        if self.hooks.has("beforeGet") {
            self.hooks.notify("beforeGet", json!({"id": id})).await?;
        }
        let stored = self.fetch(id).await?;
        let not_here = || {
            Error::not_found(format!(
                "{} record {id:?} in partition {partition:?} with {}",
                self.def().name,
                Value::Object(values.clone())
            ))
        };
        if !f.record_matches(&stored.record) {
            return Err(not_here());
        }
        let Some(own) = f.key_of(&stored.record, id) else {
            return Err(not_here());
        };
        match self.db.ctx.store.head(&own).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                self.note_stale(&f, &own, id, "reference missing");
                return Err(not_here());
            }
            Err(e) => return Err(e.at(&own)),
        }
        self.after("afterGet", with_id(stored.record, id)).await
    }

    /// Every record (a GET per id, several at a time). Records deleted meanwhile are skipped.
    pub async fn list(&self) -> Result<Vec<Value>> {
        self.list_in(None).await
    }

    /// Every record, or the records of a partition filter: the keys as
    /// [`Resource::list_ids_in`] selects them (same errors), one GET per id, and only the
    /// records whose data has the values asked for. A reference whose record disagrees is
    /// stale: its record is skipped and the reference reported
    /// ([`Resource::stale_references`]).
    pub async fn list_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
    ) -> Result<Vec<Value>> {
        let filter = match partition {
            None => None,
            Some((name, values)) => Some(self.partition_filter(name, values)?),
        };
        if self.hooks.has("beforeList") {
            let context = match partition {
                Some((p, values)) => json!({"partition": p, "partitionValues": values}),
                None => json!({}),
            };
            self.hooks.notify("beforeList", context).await?;
        }
        let records = match &filter {
            None => {
                let ids = self.list_ids_in(None).await?;
                self.fetch_all(ids, true).await?
            }
            Some(f) => self.list_partition(f, true).await?,
        };
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
        let filter = match partition {
            None => None,
            Some((name, values)) => Some(self.partition_filter(name, values)?),
        };
        let prefix = filter
            .as_ref()
            .map_or(self.data_prefix.as_str(), |f| f.prefix());
        let mut total = 0u64;
        let mut ids = std::collections::HashSet::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .db
                .ctx
                .store
                .list_page(prefix, token.as_deref(), 1000)
                .await
                .map_err(|e| e.at(prefix))?;
            match &filter {
                None => total += page.keys.iter().filter(|k| id_of(k).is_some()).count() as u64,
                Some(f) => ids.extend(page.keys.iter().filter_map(|k| f.id_of_key(k))),
            }
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(total + ids.len() as u64),
            }
        }
    }

    /// One page of records: one LIST plus a GET per record. Pass the returned cursor back
    /// for the next page; it stays valid while records are added or removed.
    pub async fn page(&self, size: usize, cursor: Option<&str>) -> Result<Page> {
        self.page_in(None, size, cursor).await
    }

    /// A page of every record, or of a partition filter's records (filtered and verified as
    /// [`Resource::list_in`] does): one LIST of `size` keys plus a GET per matching key. A
    /// page can hold fewer than `size` records (keys of other values, stale references)
    /// and still have a next cursor; the listing ends when the cursor is `None`.
    pub async fn page_in(
        &self,
        partition: Option<(&str, &Map<String, Value>)>,
        size: usize,
        cursor: Option<&str>,
    ) -> Result<Page> {
        if size == 0 || size > 1000 {
            return Err(Error::invalid("page size must be between 1 and 1000"));
        }
        let filter = match partition {
            None => None,
            Some((name, values)) => Some(self.partition_filter(name, values)?),
        };
        let prefix = filter
            .as_ref()
            .map_or(self.data_prefix.as_str(), |f| f.prefix());
        let token = match cursor {
            None => None,
            Some(c) => {
                let raw = URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                let v: Value = serde_json::from_slice(&raw)
                    .map_err(|_| Error::invalid("invalid page cursor"))?;
                if v["prefix"].as_str() != Some(prefix) {
                    return Err(Error::invalid("this cursor belongs to another listing"));
                }
                v["token"].as_str().map(str::to_string)
            }
        };
        let page = self
            .db
            .ctx
            .store
            .list_page(prefix, token.as_deref(), size)
            .await
            .map_err(|e| e.at(prefix))?;
        let items = match &filter {
            None => {
                let ids: Vec<String> = page.keys.iter().filter_map(|k| id_of(k)).collect();
                self.fetch_all(ids, true).await?
            }
            Some(f) => {
                let refs = Self::group_refs(f, page.keys);
                self.fetch_refs(f, refs, true, true).await?
            }
        };
        let cursor = page.next.map(|t| {
            let c = json!({"v": 1, "prefix": prefix, "token": t, "pageSize": size});
            URL_SAFE_NO_PAD.encode(c.to_string())
        });
        Ok(Page { items, cursor })
    }
}
