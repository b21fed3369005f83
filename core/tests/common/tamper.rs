//! A memory store that can be told to misbehave: answer a GET with a body cut short, or
//! answer every request with contradictions (404 to reads, 412 to writes), forever.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use s3db::storage::{
    ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest, Store,
    StoreError, StoreResult, WriteCondition,
};

#[derive(Debug)]
pub struct Tampered {
    inner: MemoryStore,
    /// Key → how many more GETs of it return half of the body.
    truncate: Mutex<HashMap<String, u32>>,
    contradict: AtomicBool,
    pub requests: AtomicU64,
}

impl Tampered {
    pub fn new() -> Arc<Tampered> {
        Arc::new(Tampered {
            inner: MemoryStore::isolated(),
            truncate: Mutex::default(),
            contradict: AtomicBool::new(false),
            requests: AtomicU64::new(0),
        })
    }

    pub fn store(self: &Arc<Tampered>) -> Store {
        Store::new(self.clone(), "")
    }

    pub fn truncate_next_gets(&self, key: &str, times: u32) {
        self.truncate.lock().unwrap().insert(key.to_string(), times);
    }

    pub fn contradict(&self, on: bool) {
        self.contradict.store(on, Ordering::SeqCst);
    }

    fn counting(&self) -> bool {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.contradict.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ObjectStore for Tampered {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        if self.counting() {
            return Err(StoreError::NotFound);
        }
        let mut obj = self.inner.get(key).await?;
        let mut truncate = self.truncate.lock().unwrap();
        if let Some(n) = truncate.get_mut(key).filter(|n| **n > 0) {
            *n -= 1;
            obj.body = obj.body.slice(..obj.body.len() / 2);
            obj.head.size = obj.body.len() as u64;
        }
        Ok(obj)
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        if self.counting() {
            return Err(StoreError::NotFound);
        }
        self.inner.head(key).await
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        if self.counting() && req.condition != WriteCondition::None {
            return Err(StoreError::PreconditionFailed);
        }
        self.inner.put(key, req).await
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        if self.counting() {
            return Err(StoreError::NotFound);
        }
        self.inner
            .copy(src, dst, metadata, content_type, condition)
            .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        if self.counting() && if_match.is_some() {
            return Err(StoreError::PreconditionFailed);
        }
        self.inner.delete(key, if_match).await
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.counting();
        self.inner.delete_many(keys).await
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        self.counting();
        self.inner.list(prefix, continuation, max_keys).await
    }
}
