//! Partition references: writing, removing, converging and rebuilding them.
//!
//! A record's references are derived data; the record object is the truth. Because the
//! references cannot be written atomically with the record, every write of a record of a
//! partitioned resource says in the record itself (metadata key `_refs`, ignored by the
//! readers of s3db and s3db.js) where its references stand:
//!
//! * no `_refs`: unknown: the references the values call for may be missing (a record just
//!   inserted, with its references written beside it, or written by s3db.js); no stale ones
//!   are known;
//! * `_refs: []`: clean: the references are exactly the ones the values call for;
//! * `_refs: ["byStatus/status=paid", …]`: pending: wanted references may be missing and
//!   these may exist although the values no longer call for them.
//!
//! A reference is PUT before the compare-and-swap of the version that wants it (readers
//! verify records against the partition asked, so it is harmless until then) and deleted only
//! after a compare-and-swap that registered it. The next writer, which reads the record
//! anyway, learns what may be stale or missing and
//! fixes it. See docs/reliability.md ("Partition references").

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::*;
use crate::coord::jitter;
use crate::error::{Error, ErrorKind, Result};
use crate::format::schema::codec::{decode_value, encode_header_value};
use crate::storage::{Metadata, Object, PutRequest, StoreError, WriteCondition};

/// Metadata key of the reference state (format.md §6.4: `_`-keys are not record fields).
pub(super) const REFS_KEY: &str = "_refs";
const CLEAN: &str = "[]";
/// Rounds of re-checking after this writer's reference requests may have landed after a
/// later writer's.
const SETTLE_ATTEMPTS: usize = 8;

/// Where the references of a record stand, as its `_refs` metadata says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RefState {
    Unknown,
    Clean,
    /// Full keys that may exist stale.
    Pending(BTreeSet<String>),
}

/// A record as read for a write: decoded, the object as stored, and its reference state.
pub(super) struct Current {
    pub(super) stored: Stored,
    pub(super) raw: Object,
    pub(super) state: RefState,
}

/// The object of a new version of a record, without the reference marker.
#[derive(Clone)]
pub(super) struct Version {
    pub(super) metadata: Metadata,
    pub(super) body: Bytes,
    pub(super) content_type: Option<String>,
}

impl Version {
    fn of(obj: &Object) -> Version {
        let mut metadata = obj.head.metadata.clone();
        metadata.remove(REFS_KEY);
        Version {
            metadata,
            body: obj.body.clone(),
            content_type: obj.head.content_type.clone(),
        }
    }
}

/// What a write of a record did once its compare-and-swap succeeded.
pub(super) enum Written {
    /// The references are settled (or left registered for the next writer); `etag` is the
    /// record's version tag now.
    Done { etag: String },
    /// A later writer came between this write and the clearing of its marker: this writer's
    /// reference requests may have landed after that writer's and must be checked against
    /// the record as it is now ([`Resource::settle`]).
    Superseded {
        etag: String,
        put: BTreeSet<String>,
        deleted: BTreeSet<String>,
    },
}

/// A write whose compare-and-swap did not succeed (the record is as it was), and the
/// references it had written beforehand (keys the version it read wanted).
pub(super) struct Failed {
    pub(super) error: Error,
    pub(super) put: BTreeSet<String>,
}

/// What [`Resource::repair`] found and fixed.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RepairReport {
    /// Records read.
    pub records: u64,
    /// Per partition: missing references written, stale ones deleted.
    pub partitions: BTreeMap<String, PartitionRepair>,
    /// Records whose pending-references marker was cleared.
    pub markers_cleared: u64,
    /// Records another writer changed while the repair ran, checked again afterwards.
    pub rechecked: u64,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct PartitionRepair {
    /// Missing references written.
    pub created: u64,
    /// Stale references deleted (values the record no longer has, or no record at all).
    pub deleted: u64,
}

impl RepairReport {
    pub fn created(&self) -> u64 {
        self.partitions.values().map(|p| p.created).sum()
    }

    pub fn deleted(&self) -> u64 {
        self.partitions.values().map(|p| p.deleted).sum()
    }

    /// Nothing was out of place.
    pub fn is_clean(&self) -> bool {
        self.created() == 0 && self.deleted() == 0 && self.markers_cleared == 0
    }
}

impl Resource {
    /// The reference keys of a record's values; an error for values that cannot be part of a
    /// key (checked before anything is written).
    pub(super) fn reference_keys(
        &self,
        record: &Map<String, Value>,
        id: &str,
    ) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for p in self.partitions.iter() {
            if let Some(k) = p.key(&self.def().name, record, id)? {
                keys.push(k);
            }
        }
        Ok(keys)
    }

    /// The reference keys of a stored record, skipping partitions whose values cannot form a
    /// key (records written by s3db.js may hold such values).
    pub(super) fn reference_set(&self, record: &Map<String, Value>, id: &str) -> BTreeSet<String> {
        let name = self.def().name.clone();
        self.partitions
            .iter()
            .filter_map(|p| p.key(&name, record, id).ok().flatten())
            .collect()
    }

    fn partition_base(&self) -> String {
        format!("resource={}/partition=", self.def().name)
    }

    pub(super) fn ref_state(&self, metadata: &Metadata, id: &str) -> RefState {
        let Some(raw) = metadata.get(REFS_KEY) else {
            return RefState::Unknown;
        };
        let parsed: Option<Vec<String>> =
            decode_value(raw).and_then(|text| serde_json::from_str(&text).ok());
        let Some(suffixes) = parsed else {
            // Unreadable: assume the worst we can act on.
            return RefState::Unknown;
        };
        if suffixes.is_empty() {
            return RefState::Clean;
        }
        let base = self.partition_base();
        let keys = suffixes
            .into_iter()
            .filter(|s| {
                !s.is_empty()
                    && !s
                        .split('/')
                        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
            })
            .map(|s| format!("{base}{s}/id={id}"))
            .collect::<BTreeSet<_>>();
        if keys.is_empty() {
            RefState::Unknown
        } else {
            RefState::Pending(keys)
        }
    }

    /// The metadata value of a state (`None`: no key, i.e. unknown).
    fn marker_value(&self, state: &RefState, id: &str) -> Option<String> {
        match state {
            RefState::Unknown => None,
            RefState::Clean => Some(CLEAN.to_string()),
            RefState::Pending(keys) => {
                let base = self.partition_base();
                let tail = format!("/id={id}");
                let suffixes: Vec<&str> = keys
                    .iter()
                    .filter_map(|k| k.strip_prefix(&base)?.strip_suffix(&tail))
                    .collect();
                Some(encode_header_value(
                    &serde_json::to_string(&suffixes).expect("json"),
                ))
            }
        }
    }

    fn metadata_max(&self) -> usize {
        behavior::S3_METADATA_MAX.max(self.db.ctx.store.metadata_limit() + 1)
    }

    /// `version` carrying `state`; `None` when the marker does not fit in the metadata S3
    /// accepts.
    fn marked(&self, version: &Version, state: &RefState, id: &str) -> Option<Version> {
        let mut v = version.clone();
        v.metadata.remove(REFS_KEY);
        if let Some(value) = self.marker_value(state, id) {
            v.metadata.insert(REFS_KEY.into(), value);
        }
        (behavior::sent_size(&v.metadata) <= self.metadata_max()).then_some(v)
    }

    /// The record stored in the object body, so that a marker fits beside it: what `layout`
    /// does when the encoded metadata is over S3's limit (behaviors that may use the body).
    fn slim(&self, record: &Map<String, Value>) -> Option<Version> {
        let def = self.def();
        if !matches!(
            def.behavior.as_str(),
            "user-managed" | "body-overflow" | "body-only"
        ) {
            return None;
        }
        let schema = def.schema();
        let mut slim = Map::new();
        slim.insert("_v".into(), json!(schema.version));
        if let Some(map) = schema.plugin_map_json() {
            slim.insert(behavior::PLUGIN_MAP.into(), json!(map));
        }
        slim.insert("$overflow".into(), json!("true"));
        let body = serde_json::to_vec(&crate::format::schema::js_key_order(
            schema.to_mapped(record),
        ))
        .expect("json");
        Some(Version {
            metadata: Schema::metadata_of(&slim),
            body: Bytes::from(body),
            content_type: Some("application/json".into()),
        })
    }

    /// Reads a record for a write: decoded, as stored, and its reference state.
    pub(super) async fn fetch_current(&self, id: &str) -> Result<Current> {
        let key = self.key(id)?;
        let obj = self
            .db
            .ctx
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        Ok(Current {
            state: self.ref_state(&obj.head.metadata, id),
            stored: Stored {
                record: self.decode(&obj),
                content: content_of(&obj),
                etag: obj.head.etag.clone(),
            },
            raw: obj,
        })
    }

    /// Keeps the reference marker of `from` in metadata rewritten from its record
    /// (`set_content`: the values, hence the references, do not change).
    pub(super) fn keep_marker(&self, metadata: &mut Metadata, from: &Object) {
        if let Some(v) = from.head.metadata.get(REFS_KEY) {
            metadata.insert(REFS_KEY.into(), v.clone());
        }
    }

    async fn put_version(
        &self,
        key: &str,
        v: Version,
        condition: WriteCondition,
    ) -> std::result::Result<String, StoreError> {
        let req = PutRequest {
            body: v.body,
            metadata: v.metadata,
            content_type: v.content_type,
            condition,
        };
        self.db.ctx.store.put(key, req).await
    }

    /// Writes a new version of a record over `cur` (If-Match its etag) and brings its
    /// references to `want`, the keys of the new values:
    ///
    /// 1. PUT the references the new version wants and that may be missing (its new keys, or
    ///    all of them unless `cur` is clean), before the record: a reader that verifies
    ///    records skips a reference whose record does not have its values yet, and a record
    ///    is never absent from the listing of its values;
    /// 2. the compare-and-swap, whose marker registers every key that may be stale (`cur`'s
    ///    pending keys, its old keys and `extra_stale`, less `want`), or says clean when there
    ///    are none (and step 1 succeeded);
    /// 3. only if keys were registered: delete them, then clear the marker by a second
    ///    compare-and-swap on the etag just written. If that one finds the record changed, a
    ///    later writer came in between: the result says so, for [`Resource::settle`].
    ///
    /// An error means the record was not written (`Failed::put`: what step 1 wrote). After the
    /// compare-and-swap every failure is logged and left registered for the next writer.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn converge_write(
        &self,
        id: &str,
        key: &str,
        cur: &Current,
        want: &BTreeSet<String>,
        version: Version,
        record: Option<&Map<String, Value>>,
        extra_stale: &BTreeSet<String>,
        extra_put: &BTreeSet<String>,
    ) -> std::result::Result<Written, Failed> {
        let old = self.reference_set(&cur.stored.record, id);
        let clean = cur.state == RefState::Clean;
        let mut stale: BTreeSet<String> = match &cur.state {
            RefState::Pending(keys) => keys.clone(),
            _ => BTreeSet::new(),
        };
        stale.extend(old.iter().cloned());
        stale.extend(extra_stale.iter().cloned());
        stale.retain(|k| !want.contains(k));
        let mut puts: BTreeSet<String> = if clean {
            want.difference(&old).cloned().collect()
        } else {
            want.clone()
        };
        puts.extend(extra_put.intersection(want).cloned());
        let cas = WriteCondition::IfMatch(cur.stored.etag.clone());
        let cas_failed = |e: StoreError| match e {
            StoreError::PreconditionFailed | StoreError::Conflict => Error::new(
                ErrorKind::PreconditionFailed,
                format!("{key} changed meanwhile"),
            ),
            StoreError::NotFound => self.missing(StoreError::NotFound, id, key),
            e => e.at(key),
        };

        // 1. The references the new version wants, before it.
        let put_keys: Vec<String> = puts.iter().cloned().collect();
        let mut in_place = true;
        if let Err(e) = self.put_references(&put_keys).await {
            tracing::warn!(error = %e, "{key}: references not written; left to the next writer");
            in_place = false;
        }

        // 2. The record, registering what may be stale. The marker falls back to the record
        // in the body when it does not fit beside the metadata, and to no marker at all.
        let state = if !stale.is_empty() {
            RefState::Pending(stale.clone())
        } else if in_place {
            RefState::Clean
        } else {
            RefState::Unknown
        };
        let (v, registered) = match self.marked(&version, &state, id) {
            Some(v) => (v, true),
            None => match record
                .and_then(|r| self.slim(r))
                .and_then(|slim| self.marked(&slim, &state, id))
            {
                Some(v) => (v, true),
                None => {
                    let mut v = version.clone();
                    v.metadata.remove(REFS_KEY);
                    (v, false)
                }
            },
        };
        if !registered && !stale.is_empty() {
            tracing::warn!(
                "{key}: no room in the metadata for the reference marker; a kill before the stale references are deleted leaves them to repair()"
            );
        }
        let etag = match self.put_version(key, v.clone(), cas).await {
            Ok(etag) => etag,
            Err(e) => {
                return Err(Failed {
                    error: cas_failed(e),
                    put: puts,
                })
            }
        };
        if stale.is_empty() {
            return Ok(Written::Done { etag });
        }

        // 3. Delete what was registered, then say so.
        let stale_keys: Vec<String> = stale.iter().cloned().collect();
        if let Err(e) = self.delete_keys(&stale_keys).await {
            tracing::warn!(error = %e, "{key}: stale references left registered for the next writer");
            return Ok(Written::Done { etag });
        }
        if !registered || !in_place {
            return Ok(Written::Done { etag });
        }
        let mut cleared = v;
        cleared.metadata.insert(REFS_KEY.into(), CLEAN.into());
        if behavior::sent_size(&cleared.metadata) > self.metadata_max() {
            return Ok(Written::Done { etag });
        }
        match self
            .put_version(key, cleared, WriteCondition::IfMatch(etag.clone()))
            .await
        {
            Ok(etag) => Ok(Written::Done { etag }),
            Err(StoreError::PreconditionFailed)
            | Err(StoreError::Conflict)
            | Err(StoreError::NotFound) => Ok(Written::Superseded {
                etag,
                put: puts,
                deleted: stale,
            }),
            Err(e) => {
                tracing::warn!(error = %e, "{key}: marker not cleared; the next writer will");
                Ok(Written::Done { etag })
            }
        }
    }

    /// After this writer PUT `put` and deleted `deleted` while the record may have been
    /// written by others: any of those requests may have landed after another writer's. Checks
    /// them against the record as it is now and, if one disagrees, rewrites the record (values
    /// unchanged) registering the disagreement, as any writer would. Never fails: what it
    /// cannot fix stays registered in the record, or is left to `repair`.
    pub(super) async fn settle(
        &self,
        id: &str,
        mut put: BTreeSet<String>,
        mut deleted: BTreeSet<String>,
    ) {
        let Ok(key) = self.key(id) else { return };
        for _ in 0..SETTLE_ATTEMPTS {
            if put.is_empty() && deleted.is_empty() {
                return;
            }
            let cur = match self.fetch_current(id).await {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    // Deleted meanwhile: its delete removed what it knew of; ours may have
                    // landed after.
                    let keys: Vec<String> = put.into_iter().collect();
                    if let Err(e) = self.delete_keys(&keys).await {
                        tracing::warn!(error = %e, "{key}: references of a deleted record left to repair()");
                    }
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{key}: references not re-checked; left to repair()");
                    return;
                }
            };
            let want = self.reference_set(&cur.stored.record, id);
            // Candidates; this writer's requests have all returned, so what the store holds
            // now says whether one of them was the last to land. (A later writer's requests
            // land after its compare-and-swap, which follows the read above: its keys are its
            // own to settle.)
            let stray = self
                .existing(put.difference(&want).cloned().collect(), true)
                .await;
            let lost = self
                .existing(deleted.intersection(&want).cloned().collect(), false)
                .await;
            let (Ok(stray), Ok(lost)) = (stray, lost) else {
                tracing::warn!("{key}: references not re-checked; left to repair()");
                return;
            };
            if stray.is_empty() && lost.is_empty() {
                return;
            }
            let version = Version::of(&cur.raw);
            match self
                .converge_write(id, &key, &cur, &want, version, None, &stray, &lost)
                .await
            {
                Ok(Written::Done { .. }) => return,
                Ok(Written::Superseded {
                    put: p, deleted: d, ..
                }) => {
                    put = p;
                    deleted = d;
                }
                Err(f) if f.error.kind() == ErrorKind::PreconditionFailed => {
                    put.extend(f.put);
                    tokio::time::sleep(jitter()).await;
                }
                Err(f) => {
                    tracing::warn!(error = %f.error, "{key}: references not re-checked; left to repair()");
                    return;
                }
            }
        }
        tracing::warn!("{key}: references still contended; left to the next writer or repair()");
    }

    /// The keys of `keys` that exist (`present`) or do not, one HEAD each.
    async fn existing(&self, keys: Vec<String>, present: bool) -> Result<BTreeSet<String>> {
        stream::iter(keys)
            .map(|k| async move {
                match self.db.ctx.store.head(&k).await {
                    Ok(_) => Ok((present).then_some(k)),
                    Err(StoreError::NotFound) => Ok((!present).then_some(k)),
                    Err(e) => Err(e.at(&k)),
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_filter_map(|k| async move { Ok(k) })
            .try_collect()
            .await
    }

    pub(super) async fn put_references(&self, keys: &[String]) -> Result<()> {
        let version = self.def().schema().version.clone();
        stream::iter(keys.iter().cloned())
            .map(|k| {
                let version = version.clone();
                async move {
                    let mut metadata = Metadata::new();
                    metadata.insert("_v".into(), version);
                    let req = PutRequest {
                        metadata,
                        ..Default::default()
                    };
                    self.db
                        .ctx
                        .store
                        .put(&k, req)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.at(&k))
                }
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<()> {
        match keys.len() {
            0 => Ok(()),
            1 => self
                .db
                .ctx
                .store
                .delete(&keys[0], None)
                .await
                .map_err(|e| e.at(&keys[0])),
            _ => {
                let failed = self
                    .db
                    .ctx
                    .store
                    .delete_many(keys)
                    .await
                    .map_err(|e| e.at(&self.data_prefix))?;
                match failed.into_iter().next() {
                    Some((k, e)) => Err(e.at(&k)),
                    None => Ok(()),
                }
            }
        }
    }

    /// Rebuilds the references of one partition (or all) from the records: writes the
    /// missing ones, deletes the stale ones. Returns (written, deleted). With no partition
    /// named this is [`Resource::repair`].
    pub async fn reindex(&self, partition: Option<&str>) -> Result<(u64, u64)> {
        let report = match partition {
            Some(name) => {
                let p = self.partition(name)?.clone();
                self.rebuild(Some(&p)).await?
            }
            None => self.repair().await?,
        };
        Ok((report.created(), report.deleted()))
    }

    /// Makes every partition reference agree with the records: writes the missing ones,
    /// deletes the stale ones (including references of records that do not exist), and clears
    /// the pending-references markers of the records it checked. Safe beside live writers:
    /// a record written while the repair ran is checked again afterwards. Costs a LIST of the
    /// records and of each partition, a GET per record, and a request per fix.
    pub async fn repair(&self) -> Result<RepairReport> {
        self.rebuild(None).await
    }

    async fn rebuild(&self, only: Option<&Partition>) -> Result<RepairReport> {
        let targets: Vec<Partition> = match only {
            Some(p) => vec![p.clone()],
            None => self.partitions.iter().cloned().collect(),
        };
        let ids = self.list_ids_in(None).await?;
        let currents: Vec<(String, Current)> = stream::iter(ids)
            .map(|id| async move {
                match self.fetch_current(&id).await {
                    Ok(c) => Ok(Some((id, c))),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await?;
        let mut report = RepairReport {
            records: currents.len() as u64,
            ..Default::default()
        };
        let name = self.def().name.clone();
        // Per id: what this repair wrote and deleted, to re-check if the record moved.
        let mut touched: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
        for p in &targets {
            let mut want = BTreeSet::new();
            for (id, c) in &currents {
                if let Ok(Some(k)) = p.key(&name, &c.stored.record, id) {
                    want.insert(k);
                }
            }
            let prefix = format!("resource={name}/partition={}/", p.name);
            let have: BTreeSet<String> = self
                .db
                .ctx
                .store
                .list_all(&prefix)
                .await
                .map_err(|e| e.at(&prefix))?
                .into_iter()
                .collect();
            let missing: Vec<String> = want.difference(&have).cloned().collect();
            let stale: Vec<String> = have.difference(&want).cloned().collect();
            self.put_references(&missing).await?;
            self.delete_keys(&stale).await?;
            for k in &missing {
                if let Some(id) = id_of(k) {
                    touched.entry(id).or_default().0.insert(k.clone());
                }
            }
            for k in &stale {
                if let Some(id) = id_of(k) {
                    touched.entry(id).or_default().1.insert(k.clone());
                }
            }
            report.partitions.insert(
                p.name.clone(),
                PartitionRepair {
                    created: missing.len() as u64,
                    deleted: stale.len() as u64,
                },
            );
        }
        let read_etags: BTreeMap<&str, &str> = currents
            .iter()
            .map(|(id, c)| (id.as_str(), c.stored.etag.as_str()))
            .collect();
        if only.is_none() {
            // Every partition was checked: a pending marker has nothing left to say. Cleared
            // on the version read; a record written since is re-checked below.
            for (id, c) in &currents {
                let RefState::Pending(keys) = &c.state else {
                    continue;
                };
                // Registered keys outside the partitions defined now (a changed definition).
                let leftover: Vec<String> = keys
                    .iter()
                    .filter(|k| {
                        !targets.iter().any(|p| {
                            k.starts_with(&format!("resource={name}/partition={}/", p.name))
                        })
                    })
                    .cloned()
                    .collect();
                if let Err(e) = self.delete_keys(&leftover).await {
                    tracing::warn!(error = %e, "{id}: registered references not deleted");
                    continue;
                }
                let Ok(key) = self.key(id) else { continue };
                let Some(v) = self.marked(&Version::of(&c.raw), &RefState::Clean, id) else {
                    continue;
                };
                match self
                    .put_version(&key, v, WriteCondition::IfMatch(c.stored.etag.clone()))
                    .await
                {
                    Ok(_) => report.markers_cleared += 1,
                    Err(StoreError::PreconditionFailed)
                    | Err(StoreError::Conflict)
                    | Err(StoreError::NotFound) => {
                        touched.entry(id.clone()).or_default();
                    }
                    Err(e) => return Err(e.at(&key)),
                }
            }
        }
        // Writers that ran meanwhile may disagree with what this repair did.
        for (id, (put, deleted)) in touched {
            let Ok(key) = self.key(&id) else { continue };
            let now = match self.db.ctx.store.head(&key).await {
                Ok(h) => Some(h.etag),
                Err(StoreError::NotFound) => None,
                Err(e) => return Err(e.at(&key)),
            };
            let unchanged = match (read_etags.get(id.as_str()), &now) {
                (Some(read), Some(now)) => crate::storage::etags_equal(read, now),
                (None, None) => true,
                _ => false,
            };
            if !unchanged {
                report.rechecked += 1;
                self.settle(&id, put, deleted).await;
            }
        }
        Ok(report)
    }
}
