use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    check_condition, content_etag, now_millis, ListPage, Metadata, Object, ObjectHead, ObjectStore,
    PutRequest, StoreError, StoreResult, WriteCondition,
};

type Bucket = Arc<Mutex<BTreeMap<String, Object>>>;

/// In-process store. Buckets are shared by name across the process, as in s3db.js.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    objects: Bucket,
}

impl MemoryStore {
    /// The process-wide bucket of that name.
    pub fn shared(bucket: &str) -> Self {
        static BUCKETS: OnceLock<Mutex<HashMap<String, Bucket>>> = OnceLock::new();
        let mut all = BUCKETS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        MemoryStore {
            objects: all.entry(bucket.to_string()).or_default().clone(),
        }
    }

    /// A bucket of its own, invisible to other stores.
    pub fn isolated() -> Self {
        MemoryStore {
            objects: Bucket::default(),
        }
    }

    fn objects(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn stored(body: Bytes, metadata: Metadata, content_type: Option<String>) -> Object {
    let content_type = content_type.unwrap_or_else(|| "application/octet-stream".into());
    let etag = content_etag(&body, &metadata, Some(&content_type));
    Object {
        head: ObjectHead {
            size: body.len() as u64,
            metadata,
            content_type: Some(content_type),
            etag,
            last_modified: now_millis(),
        },
        body,
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        self.objects().get(key).cloned().ok_or(StoreError::NotFound)
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        self.objects()
            .get(key)
            .map(|o| o.head.clone())
            .ok_or(StoreError::NotFound)
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let mut objects = self.objects();
        check_condition(
            &req.condition,
            objects.get(key).map(|o| o.head.etag.as_str()),
        )?;
        let obj = stored(req.body, req.metadata, req.content_type);
        let etag = obj.head.etag.clone();
        objects.insert(key.to_string(), obj);
        Ok(etag)
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        let mut objects = self.objects();
        let body = objects.get(src).ok_or(StoreError::NotFound)?.body.clone();
        check_condition(&condition, objects.get(dst).map(|o| o.head.etag.as_str()))?;
        let obj = stored(body, metadata, content_type);
        let etag = obj.head.etag.clone();
        objects.insert(dst.to_string(), obj);
        Ok(etag)
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let mut objects = self.objects();
        if let Some(want) = if_match {
            let cond = WriteCondition::IfMatch(want.to_string());
            check_condition(&cond, objects.get(key).map(|o| o.head.etag.as_str()))?;
        }
        objects.remove(key);
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut objects = self.objects();
        for k in keys {
            objects.remove(k);
        }
        Ok(Vec::new())
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        use std::ops::Bound;
        let objects = self.objects();
        let start = match continuation {
            Some(after) => Bound::Excluded(after.to_string()),
            None => Bound::Included(prefix.to_string()),
        };
        let keys: Vec<String> = objects
            .range((start, Bound::Unbounded))
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(prefix))
            .take(max_keys.max(1) + 1)
            .cloned()
            .collect();
        Ok(page_of(keys, max_keys.max(1)))
    }
}

/// Cuts `max + 1` sorted keys into a page whose token is the last key returned.
pub(crate) fn page_of(mut keys: Vec<String>, max: usize) -> ListPage {
    let more = keys.len() > max;
    keys.truncate(max);
    let next = if more { keys.last().cloned() } else { None };
    ListPage { keys, next }
}
