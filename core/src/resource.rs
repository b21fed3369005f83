//! Records of one resource: `resource=<R>/data/id=<ID>`.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use serde_json::{Map, Value};

use crate::database::{object_of, DbInner};
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{generate_id, validate_name, DEFAULT_ID_SIZE};
use crate::schema::{js_key_order, metadata_size, Schema, METADATA_LIMIT};
use crate::storage::{Metadata, Object, PutRequest, StoreError, WriteCondition};

const FETCH_CONCURRENCY: usize = 16;
const MAX_CAS_ATTEMPTS: usize = 64;

#[derive(Debug, Clone)]
pub struct Resource {
    db: Arc<DbInner>,
    name: String,
    schema: Arc<Schema>,
    data_prefix: String,
}

impl Resource {
    pub(crate) fn new(db: Arc<DbInner>, name: &str, schema: Schema) -> Self {
        Resource {
            db,
            name: name.to_string(),
            schema: Arc::new(schema),
            data_prefix: format!("resource={name}/data/"),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    fn key(&self, id: &str) -> Result<String> {
        validate_name("id", id)?;
        Ok(format!("{}id={id}", self.data_prefix))
    }

    /// Inserts a new record (create-only write). The id is taken from `id` or generated.
    pub async fn insert(&self, data: Value) -> Result<Value> {
        let mut record = object_of(data)?;
        let id = match record.shift_remove("id") {
            Some(Value::String(s)) => s,
            Some(Value::Null) | None => generate_id(DEFAULT_ID_SIZE),
            Some(other) => {
                return Err(Error::validation(format!(
                    "id: expected string, got {}",
                    crate::schema::type_name(&other)
                )))
            }
        };
        let key = self.key(&id)?;
        record.retain(|_, v| !v.is_null());
        self.schema.validate(&record, false)?;
        let (metadata, body, content_type) = self.layout(&record, false);
        let req = PutRequest {
            body,
            metadata,
            content_type,
            condition: WriteCondition::IfNoneMatch,
        };
        match self.db.store.put(&key, req).await {
            Ok(_) => Ok(with_id(record, &id)),
            Err(StoreError::PreconditionFailed) => Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{}: a record with id {id:?} already exists", self.name),
            )),
            Err(e) => Err(e.at(&key)),
        }
    }

    pub async fn get(&self, id: &str) -> Result<Value> {
        let key = self.key(id)?;
        let obj = self
            .db
            .store
            .get(&key)
            .await
            .map_err(|e| self.missing(e, id, &key))?;
        Ok(with_id(self.decode(&obj), id))
    }

    /// `None` when there is no such record.
    pub async fn get_or_none(&self, id: &str) -> Result<Option<Value>> {
        match self.get(id).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn exists(&self, id: &str) -> Result<bool> {
        let key = self.key(id)?;
        match self.db.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e.at(&key)),
        }
    }

    /// Merges `changes` into the stored record: read, merge, write on the etag read; on a
    /// lost race the record is read and merged again, so concurrent updates all survive.
    pub async fn update(&self, id: &str, changes: Value) -> Result<Value> {
        let key = self.key(id)?;
        let mut changes = object_of(changes)?;
        match changes.shift_remove("id") {
            None => {}
            Some(Value::String(s)) if s == id => {}
            Some(_) => return Err(Error::validation("id: cannot be changed by update")),
        }
        self.schema.validate(&changes, true)?;
        for _ in 0..MAX_CAS_ATTEMPTS {
            let obj = self
                .db
                .store
                .get(&key)
                .await
                .map_err(|e| self.missing(e, id, &key))?;
            let mut record = self.decode(&obj);
            for (k, v) in &changes {
                if v.is_null() {
                    record.shift_remove(k);
                } else {
                    record.insert(k.clone(), v.clone());
                }
            }
            self.schema.validate(&record, false)?;
            let (metadata, body, content_type) = self.layout(&record, true);
            let req = PutRequest {
                body,
                metadata,
                content_type,
                condition: WriteCondition::IfMatch(obj.head.etag.clone()),
            };
            match self.db.store.put(&key, req).await {
                Ok(_) => return Ok(with_id(record, id)),
                Err(StoreError::PreconditionFailed) | Err(StoreError::Conflict) => {
                    tokio::time::sleep(jitter()).await;
                }
                Err(StoreError::NotFound) => {
                    return Err(self.missing(StoreError::NotFound, id, &key))
                }
                Err(e) => return Err(e.at(&key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: update of {id:?} lost {MAX_CAS_ATTEMPTS} races in a row",
                self.name
            ),
        ))
    }

    /// Deletes a record (one DELETE; deleting a missing id succeeds).
    pub async fn delete(&self, id: &str) -> Result<()> {
        let key = self.key(id)?;
        self.db
            .store
            .delete(&key, None)
            .await
            .map_err(|e| e.at(&key))
    }

    /// Every id, paging through the listing with no cap.
    pub async fn list_ids(&self) -> Result<Vec<String>> {
        let keys = self
            .db
            .store
            .list_all(&self.data_prefix)
            .await
            .map_err(|e| e.at(&self.data_prefix))?;
        Ok(keys.iter().filter_map(|k| id_of(k)).collect())
    }

    /// Every record (a GET per id, several at a time). Records deleted meanwhile are skipped.
    pub async fn list(&self) -> Result<Vec<Value>> {
        let ids = self.list_ids().await?;
        stream::iter(ids)
            .map(|id| async move { self.get_or_none(&id).await })
            .buffered(FETCH_CONCURRENCY)
            .try_filter_map(|r| async move { Ok(r) })
            .try_collect()
            .await
    }

    pub async fn count(&self) -> Result<u64> {
        let mut total = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .db
                .store
                .list_page(&self.data_prefix, token.as_deref(), 1000)
                .await
                .map_err(|e| e.at(&self.data_prefix))?;
            total += page.keys.iter().filter(|k| id_of(k).is_some()).count() as u64;
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(total),
            }
        }
    }

    fn missing(&self, e: StoreError, id: &str, key: &str) -> Error {
        match e {
            StoreError::NotFound => Error::not_found(format!("{} record {id:?}", self.name)),
            other => other.at(key),
        }
    }

    fn decode(&self, obj: &Object) -> Map<String, Value> {
        self.schema.from_stored(&obj.head.metadata, &obj.body)
    }

    /// user-managed layout: fields in metadata; over the budget, everything in the body.
    /// Updates also write the record as a JSON body (as s3db.js does), which keeps the
    /// object's etag distinct for every content on S3, where it hashes the body only.
    fn layout(
        &self,
        record: &Map<String, Value>,
        is_update: bool,
    ) -> (Metadata, Bytes, Option<String>) {
        let metadata = self.schema.to_metadata(record);
        if metadata_size(&metadata) > METADATA_LIMIT {
            let mut slim = Metadata::new();
            slim.insert("_v".into(), self.schema.version.clone());
            let body = js_key_order(self.schema.to_mapped(record));
            let body = serde_json::to_vec(&body).expect("json");
            return (slim, Bytes::from(body), Some("application/json".into()));
        }
        if is_update {
            let body = serde_json::to_vec(&Value::Object(record.clone())).expect("json");
            return (metadata, Bytes::from(body), Some("application/json".into()));
        }
        (metadata, Bytes::new(), None)
    }
}

fn id_of(key: &str) -> Option<String> {
    key.split('/')
        .find_map(|seg| seg.strip_prefix("id="))
        .map(str::to_string)
}

fn with_id(mut record: Map<String, Value>, id: &str) -> Value {
    let mut out = Map::with_capacity(record.len() + 1);
    out.insert("id".into(), Value::String(id.to_string()));
    out.append(&mut record);
    Value::Object(out)
}

pub(crate) fn jitter() -> std::time::Duration {
    std::time::Duration::from_millis(rand::random_range(1..=20))
}
