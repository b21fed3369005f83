//! Partition references: writing, removing and rebuilding them.

use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use super::*;
use crate::error::Result;
use crate::storage::{Metadata, PutRequest};

impl Resource {
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
    /// missing ones, deletes the stale ones. Returns (written, deleted).
    pub async fn reindex(&self, partition: Option<&str>) -> Result<(u64, u64)> {
        let targets: Vec<&Partition> = match partition {
            Some(name) => vec![self.partition(name)?],
            None => self.partitions.iter().collect(),
        };
        let ids = self.list_ids_in(None).await?;
        let records = self.fetch_all(ids, false).await?;
        let (mut written, mut deleted) = (0, 0);
        for p in targets {
            let mut want = std::collections::BTreeSet::new();
            for r in &records {
                let Value::Object(m) = r else { continue };
                let id = m.get("id").and_then(Value::as_str).unwrap_or_default();
                if let Ok(Some(k)) = p.key(&self.def().name, m, id) {
                    want.insert(k);
                }
            }
            let prefix = format!("resource={}/partition={}/", self.def().name, p.name);
            let have: std::collections::BTreeSet<String> = self
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
            written += missing.len() as u64;
            deleted += stale.len() as u64;
        }
        Ok((written, deleted))
    }
}
