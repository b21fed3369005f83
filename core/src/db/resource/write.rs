//! Writes: insert, update/patch/replace/upsert by compare-and-swap, deletes.

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

use super::partitions::{Current, RefState, Version, Written};
use super::*;
use crate::coord::jitter;
use crate::error::{Error, ErrorKind, Result};
use crate::format::ids::validate_name;
use crate::storage::{PutRequest, StoreError, WriteCondition};

impl Resource {
    /// The id sequence of an incremental resource (s3db.js `getSequenceValue`).
    pub fn id_sequence(&self) -> Option<&crate::coord::sequence::Sequence> {
        self.id_sequence.as_ref()
    }

    pub(super) async fn prepare_insert(
        &self,
        data: Value,
        before: Option<&str>,
    ) -> Result<(String, Map<String, Value>)> {
        let mut record = object_of(data)?;
        let id = match (&self.id_sequence, record.get("id")) {
            (Some(seq), None | Some(Value::Null)) => {
                record.shift_remove("id");
                let def = self.def();
                let inc = def.incremental.as_ref().expect("incremental config");
                inc.format(seq.next().await?)
            }
            _ => self.take_id(&mut record)?,
        };
        validate_name("id", &id)?;
        if self.def().timestamps {
            let now = iso_now();
            record
                .entry("createdAt")
                .or_insert_with(|| json!(now.clone()));
            record.entry("updatedAt").or_insert_with(|| json!(now));
        }
        if let Some(event) = before {
            record = self.before_write(event, &id, record).await?;
        }
        let record = self.def().schema().validate(record)?;
        Ok((id, record))
    }

    /// Inserts a new record (create-only write). Its partition references are written in the
    /// same round trip, beside the record: a reference whose record does not exist (yet) is
    /// skipped by readers, and the record carries no reference marker, so its next write
    /// re-PUTs whatever a crash may have left out.
    pub async fn insert(&self, data: Value) -> Result<Value> {
        self.insert_inner(data, None).await
    }

    pub(super) async fn insert_inner(
        &self,
        data: Value,
        content: Option<(Bytes, &str)>,
    ) -> Result<Value> {
        self.insert_with(data, content, true).await
    }

    /// `beside`: references concurrently with the record; else after it succeeded (for
    /// `upsert`, whose insert is expected to fail when the record exists).
    async fn insert_with(
        &self,
        data: Value,
        content: Option<(Bytes, &str)>,
        beside: bool,
    ) -> Result<Value> {
        let (id, record) = self.prepare_insert(data, Some("beforeInsert")).await?;
        let key = self.key(&id)?;
        let refs = self.reference_keys(&record, &id)?;
        let (metadata, body, content_type) = match &content {
            Some((bytes, ct)) => self.with_content(&record, None, bytes, ct)?,
            None => self.layout(&record, None)?,
        };
        let req = PutRequest {
            body,
            metadata,
            content_type,
            condition: WriteCondition::IfNoneMatch,
        };
        let put_record = self.db.ctx.store.put(&key, req);
        let beside = beside && !refs.is_empty();
        let (written, refs_written) = if beside {
            let (w, r) = tokio::join!(put_record, self.put_references(&refs));
            (w, Some(r))
        } else {
            (put_record.await, None)
        };
        match written {
            Ok(_) => {}
            Err(StoreError::PreconditionFailed) => {
                if beside {
                    // Our references name a record that is not ours: keep those its values
                    // call for, remove the others.
                    self.settle(&id, refs.into_iter().collect(), Default::default())
                        .await;
                }
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "{}: a record with id {id:?} already exists",
                        self.def().name
                    ),
                ));
            }
            // References written beside a record that was not are skipped by readers and
            // removed by `repair`.
            Err(e) => return Err(e.at(&key)),
        }
        let refs_written = match refs_written {
            Some(r) => r,
            None => self.put_references(&refs).await,
        };
        if let Err(e) = refs_written {
            // The record is in; it has no marker, so its next write re-PUTs its references.
            tracing::warn!(error = %e, "{key}: inserted; references left to the next write");
        }
        self.after("afterInsert", self.output(record, &id)).await
    }

    /// Inserts each item; one failure does not stop the others. Items run concurrently,
    /// except that a repeated id waits for its earlier occurrence, so the first one wins.
    pub async fn insert_many(&self, items: Vec<Value>) -> Vec<BatchItem> {
        let mut seen = std::collections::HashSet::new();
        let (mut first, mut repeats) = (Vec::new(), Vec::new());
        for (i, item) in items.into_iter().enumerate() {
            let id = match item.get("id") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            match id {
                Some(id) if !seen.insert(id.clone()) => repeats.push((i, item)),
                _ => first.push((i, item)),
            }
        }
        let insert_one = |(i, item): (usize, Value)| async move {
            let id = item.get("id").and_then(Value::as_str).map(str::to_string);
            let r = self.insert(item).await;
            let id = r
                .as_ref()
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_string))
                .or(id);
            BatchItem::of(i, id, r.map(Some))
        };
        let mut out: Vec<BatchItem> = stream::iter(first)
            .map(insert_one)
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        for item in repeats {
            out.push(insert_one(item).await);
        }
        out.sort_by_key(|b| b.index);
        out
    }

    /// Merges `changes` into the stored record by compare-and-swap on its etag; a lost race
    /// re-reads and re-merges, so concurrent updates all survive. Dotted keys
    /// (`"address.city"`) change one nested field and keep its siblings; `null` removes.
    pub async fn update(&self, id: &str, changes: Value) -> Result<Value> {
        Ok(self.update_inner(id, changes, None).await?.0)
    }

    /// `update`, applied only if the record still has version tag `etag`.
    pub async fn update_if(&self, id: &str, changes: Value, etag: &str) -> Result<Value> {
        Ok(self.update_inner(id, changes, Some(etag)).await?.0)
    }

    /// s3db.js `updateConditional(id, changes, {ifMatch})`: `update_if` that also returns the
    /// record's new version tag, for the next conditional update.
    pub async fn update_conditional(
        &self,
        id: &str,
        changes: Value,
        if_match: &str,
    ) -> Result<(Value, String)> {
        self.update_inner(id, changes, Some(if_match)).await
    }

    /// s3db.js `patch`: the same compare-and-swap merge as `update`.
    pub async fn patch(&self, id: &str, changes: Value) -> Result<Value> {
        if self.hooks.has("beforePatch") {
            self.hooks
                .notify("beforePatch", json!({"id": id, "fields": changes}))
                .await?;
        }
        let record = self.update(id, changes).await?;
        self.after("afterPatch", record).await
    }

    pub(super) async fn update_inner(
        &self,
        id: &str,
        changes: Value,
        expected: Option<&str>,
    ) -> Result<(Value, String)> {
        // References written by attempts whose compare-and-swap then failed.
        let mut carry = BTreeSet::new();
        let r = self
            .update_attempts(id, changes, expected, &mut carry)
            .await;
        if r.is_err() && !carry.is_empty() {
            self.settle(id, carry, BTreeSet::new()).await;
        }
        r
    }

    async fn update_attempts(
        &self,
        id: &str,
        changes: Value,
        expected: Option<&str>,
        carry: &mut BTreeSet<String>,
    ) -> Result<(Value, String)> {
        let key = self.key(id)?;
        let mut changes = object_of(changes)?;
        match changes.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(Value::Number(n)) if n.to_string() == id => {}
            Some(_) => return Err(Error::validation("id: cannot be changed by update")),
        }
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch_current(id).await?;
            if let Some(want) = expected {
                if !crate::storage::etags_equal(want, &current.stored.etag) {
                    return Err(Error::new(
                        ErrorKind::PreconditionFailed,
                        format!(
                            "{}: record {id:?} changed since version {want}",
                            self.def().name
                        ),
                    ));
                }
            }
            let mut record = current.stored.record.clone();
            for (k, v) in &changes {
                set_dotted(&mut record, k, v.clone());
            }
            if self.def().timestamps {
                record.insert("updatedAt".into(), json!(iso_now()));
            }
            let record = self.before_write("beforeUpdate", id, record).await?;
            let record = self.def().schema().validate(record)?;
            match self.write_over(id, &key, &current, &record, carry).await {
                Ok(etag) => {
                    let out = self.after("afterUpdate", self.output(record, id)).await?;
                    return Ok((out, etag));
                }
                Err(e) if e.kind() == ErrorKind::PreconditionFailed && expected.is_none() => {
                    tokio::time::sleep(jitter()).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: update of {id:?} lost {MAX_CAS_ATTEMPTS} races in a row",
                self.def().name
            ),
        ))
    }

    /// Writes `record` over `current` (If-Match) and brings the partition references along
    /// (`converge_write`). An error means the record was not written; `carry` collects the
    /// references such a failed attempt wrote, for the next attempt to account for.
    pub(super) async fn write_over(
        &self,
        id: &str,
        key: &str,
        current: &Current,
        record: &Map<String, Value>,
        carry: &mut BTreeSet<String>,
    ) -> Result<String> {
        let want: BTreeSet<String> = self.reference_keys(record, id)?.into_iter().collect();
        let (metadata, body, content_type) = match &current.stored.content {
            Some((bytes, ct)) => self.with_content(record, Some(id), bytes, ct)?,
            None => self.layout(record, Some(id))?,
        };
        if self.partitions.is_empty() {
            let req = PutRequest {
                body,
                metadata,
                content_type,
                condition: WriteCondition::IfMatch(current.stored.etag.clone()),
            };
            return match self.db.ctx.store.put(key, req).await {
                Ok(etag) => Ok(etag),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => Err(Error::new(
                    ErrorKind::PreconditionFailed,
                    format!("{key} changed meanwhile"),
                )),
                Err(StoreError::NotFound) => Err(self.missing(StoreError::NotFound, id, key)),
                Err(e) => Err(e.at(key)),
            };
        }
        let version = Version {
            metadata,
            body,
            content_type,
        };
        let written = self
            .converge_write(
                id,
                key,
                current,
                &want,
                version,
                Some(record),
                carry,
                &BTreeSet::new(),
            )
            .await;
        match written {
            Ok(Written::Done { etag }) => {
                carry.clear();
                Ok(etag)
            }
            Ok(Written::Superseded { etag, put, deleted }) => {
                carry.clear();
                self.settle(id, put, deleted).await;
                Ok(etag)
            }
            Err(f) => {
                carry.extend(f.put);
                Err(f.error)
            }
        }
    }

    /// Replaces the whole record (it must exist), by compare-and-swap.
    pub async fn replace(&self, id: &str, data: Value) -> Result<Value> {
        let mut data = object_of(data)?;
        data.insert("id".into(), json!(id));
        if self.hooks.has("beforeReplace") {
            self.hooks
                .notify("beforeReplace", json!({"id": id, "fullData": data}))
                .await?;
        }
        let (_, record) = self.prepare_insert(Value::Object(data), None).await?;
        let mut carry = BTreeSet::new();
        let r = self.replace_attempts(id, record, &mut carry).await;
        if r.is_err() && !carry.is_empty() {
            self.settle(id, carry, BTreeSet::new()).await;
        }
        r
    }

    async fn replace_attempts(
        &self,
        id: &str,
        mut record: Map<String, Value>,
        carry: &mut BTreeSet<String>,
    ) -> Result<Value> {
        let key = self.key(id)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = self.fetch_current(id).await?;
            if self.def().timestamps {
                if let Some(c) = current.stored.record.get("createdAt") {
                    record.insert("createdAt".into(), c.clone());
                }
            }
            match self.write_over(id, &key, &current, &record, carry).await {
                Ok(_) => return self.after("afterReplace", self.output(record, id)).await,
                Err(e) if e.kind() == ErrorKind::PreconditionFailed => {
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: replace of {id:?} kept losing races", self.def().name),
        ))
    }

    /// Inserts, or merges into the existing record of that id.
    pub async fn upsert(&self, data: Value) -> Result<Value> {
        let id = match data.get("id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        // References after the record: this insert fails whenever the record exists.
        match self.insert_with(data.clone(), None, false).await {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.update(&id.unwrap_or_default(), data).await
            }
            // A partial record is only valid merged into an existing one.
            Err(e) if e.kind() == ErrorKind::Validation => match &id {
                Some(id) if self.exists(id).await? => self.update(id, data).await,
                _ => Err(e),
            },
            other => other,
        }
    }

    /// Deletes a record and its partition references. A missing id is `NOT_FOUND`.
    /// The delete is conditional on the version read, so a concurrent rewrite is not lost
    /// silently: it is retried against the new version.
    pub async fn delete(&self, id: &str) -> Result<()> {
        let key = self.key(id)?;
        let with_record = self.hooks.has("beforeDelete") || self.hooks.has("afterDelete");
        for _ in 0..MAX_CAS_ATTEMPTS {
            let mut deleted = Value::Null;
            let (etag, refs) = if self.partitions.is_empty() && !with_record {
                let head = self
                    .db
                    .ctx
                    .store
                    .head(&key)
                    .await
                    .map_err(|e| self.missing(e, id, &key))?;
                (head.etag, Vec::new())
            } else {
                let cur = self.fetch_current(id).await?;
                // Its references, and any registered as possibly stale.
                let mut refs = self.reference_set(&cur.stored.record, id);
                if let RefState::Pending(keys) = &cur.state {
                    refs.extend(keys.iter().cloned());
                }
                let refs: Vec<String> = refs.into_iter().collect();
                if with_record {
                    deleted = with_id(cur.stored.record, id);
                    self.hooks.notify("beforeDelete", deleted.clone()).await?;
                }
                (cur.stored.etag, refs)
            };
            match self.db.ctx.store.delete(&key, Some(&etag)).await {
                Ok(()) => {
                    if let Err(e) = self.delete_keys(&refs).await {
                        // The record is gone; readers skip references without one, and
                        // `repair` removes them.
                        tracing::warn!(error = %e, "{key}: deleted; references left to repair()");
                    }
                    if self.hooks.has("afterDelete") {
                        self.hooks.notify("afterDelete", deleted).await?;
                    }
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await
                }
                Err(StoreError::NotFound) => {
                    return Err(self.missing(StoreError::NotFound, id, &key))
                }
                Err(e) => return Err(e.at(&key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("{}: delete of {id:?} kept losing races", self.def().name),
        ))
    }

    /// Deletes each id; the result says which failed and why.
    pub async fn delete_many(&self, ids: &[String]) -> Vec<BatchItem> {
        if self.hooks.has("beforeDeleteMany") {
            if let Err(e) = self
                .hooks
                .notify("beforeDeleteMany", json!({"ids": ids}))
                .await
            {
                return ids
                    .iter()
                    .enumerate()
                    .map(|(i, id)| BatchItem::of(i, Some(id.clone()), Err(e.clone())))
                    .collect();
            }
        }
        let items: Vec<BatchItem> = stream::iter(ids.iter().cloned().enumerate())
            .map(|(i, id)| async move {
                let r = self.delete(&id).await;
                BatchItem::of(i, Some(id), r.map(|_| None))
            })
            .buffered(FETCH_CONCURRENCY)
            .collect()
            .await;
        if self.hooks.has("afterDeleteMany") {
            let deleted: Vec<&str> = items
                .iter()
                .filter(|i| i.error.is_none())
                .filter_map(|i| i.id.as_deref())
                .collect();
            let context = json!({"ids": ids, "deleted": deleted});
            if let Err(e) = self.hooks.notify("afterDeleteMany", context).await {
                tracing::warn!(error = %e, "afterDeleteMany hook failed after the deletes");
            }
        }
        items
    }

    /// Deletes every record and reference of the resource; refused for paranoid resources.
    pub async fn delete_all(&self) -> Result<u64> {
        if self.def().paranoid {
            return Err(Error::invalid(format!(
                "{} is paranoid: delete_all is refused (define it with paranoid: false)",
                self.def().name
            )));
        }
        let prefix = format!("resource={}/", self.def().name);
        let keys: Vec<String> = self
            .db
            .ctx
            .store
            .list_all(&prefix)
            .await
            .map_err(|e| e.at(&prefix))?
            .into_iter()
            .filter(|k| k.contains("/data/") || k.contains("/partition="))
            .collect();
        let records = keys
            .iter()
            .filter(|k| k.starts_with(&self.data_prefix))
            .count() as u64;
        let failed = self
            .db
            .ctx
            .store
            .delete_many(&keys)
            .await
            .map_err(|e| e.at(&prefix))?;
        if let Some((k, e)) = failed.into_iter().next() {
            return Err(e.at(&k));
        }
        Ok(records)
    }
}
