//! The only way the engine touches data: an object store with conditional writes.

mod conn;
mod error;
mod fs;
mod memory;
mod retry;
mod s3;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

pub use conn::{ConnectionString, Endpoint, DEFAULT_METADATA_LIMIT};
pub use error::StoreError;
pub use fs::FileStore;
pub use memory::MemoryStore;
pub use retry::RetryPolicy;
pub use s3::S3Store;
pub use stats::{RequestKind, RequestStats, Stats};

pub type Metadata = BTreeMap<String, String>;
pub type StoreResult<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteCondition {
    #[default]
    None,
    /// `If-None-Match: *`: create only.
    IfNoneMatch,
    /// `If-Match: <etag>`: compare-and-swap.
    IfMatch(String),
}

#[derive(Debug, Clone, Default)]
pub struct PutRequest {
    pub body: Bytes,
    pub metadata: Metadata,
    pub content_type: Option<String>,
    pub condition: WriteCondition,
}

#[derive(Debug, Clone)]
pub struct ObjectHead {
    pub metadata: Metadata,
    pub content_type: Option<String>,
    pub etag: String,
    pub size: u64,
    /// Milliseconds since the epoch.
    pub last_modified: i64,
}

#[derive(Debug, Clone)]
pub struct Object {
    pub head: ObjectHead,
    pub body: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub keys: Vec<String>,
    /// Pass back as `continuation` to read the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A backend, addressed with full keys (prefix already applied).
#[async_trait]
pub trait ObjectStore: Send + Sync + std::fmt::Debug {
    async fn get(&self, key: &str) -> StoreResult<Object>;
    async fn head(&self, key: &str) -> StoreResult<ObjectHead>;
    /// Returns the new etag.
    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String>;
    /// Copies `src` to `dst` replacing metadata; returns the new etag.
    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String>;
    /// Deleting a missing key succeeds unless `if_match` is given.
    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()>;
    /// Returns the keys that could not be deleted.
    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>>;
    /// Keys in byte order, starting after the continuation token.
    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage>;
}

/// A backend plus key prefix, request counting and the retry policy.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn ObjectStore>,
    prefix: String,
    stats: Arc<RequestStats>,
    retry: RetryPolicy,
    metadata_limit: usize,
    catalog_mutex: bool,
}

impl Store {
    pub fn new(backend: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let prefix = normalize_prefix(prefix);
        Store {
            backend,
            prefix,
            stats: Arc::new(RequestStats::default()),
            retry: RetryPolicy::default(),
            metadata_limit: conn::DEFAULT_METADATA_LIMIT,
            catalog_mutex: false,
        }
    }

    /// Opens the store a connection string names.
    pub async fn open(conn: &str) -> crate::Result<Store> {
        let parsed = ConnectionString::parse(conn)?;
        let backend: Arc<dyn ObjectStore> = match &parsed.endpoint {
            Endpoint::Memory { bucket } => Arc::new(MemoryStore::shared(bucket)),
            Endpoint::File { root } => Arc::new(FileStore::open(root)?),
            Endpoint::S3 { .. } => Arc::new(S3Store::new(&parsed)?),
        };
        let remote = matches!(parsed.endpoint, Endpoint::S3 { .. });
        Ok(Store::new(backend, &parsed.prefix)
            .with_metadata_limit(parsed.metadata_limit)
            .with_catalog_mutex(remote))
    }

    /// Whether catalog writes also hold s3db.js's catalog mutex object (as s3db.js does on
    /// remote backends), so an s3db.js writer never overwrites a catalog change of ours.
    pub fn with_catalog_mutex(mut self, on: bool) -> Self {
        self.catalog_mutex = on;
        self
    }

    pub fn catalog_mutex(&self) -> bool {
        self.catalog_mutex
    }

    pub fn with_metadata_limit(mut self, limit: usize) -> Self {
        self.metadata_limit = limit;
        self
    }

    pub fn metadata_limit(&self) -> usize {
        self.metadata_limit
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    pub fn reset_stats(&self) {
        self.stats.reset()
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    async fn run<T, F, Fut>(&self, kind: RequestKind, mut op: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let mut attempt = 0;
        loop {
            self.stats.count(kind);
            match op().await {
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                    tracing::debug!(?kind, attempt, error = %e, "retrying storage request");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    pub async fn get(&self, key: &str) -> StoreResult<Object> {
        let key = self.full(key);
        self.run(RequestKind::Get, || self.backend.get(&key)).await
    }

    pub async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        let key = self.full(key);
        self.run(RequestKind::Head, || self.backend.head(&key))
            .await
    }

    pub async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let key = self.full(key);
        self.run(RequestKind::Put, || self.backend.put(&key, req.clone()))
            .await
    }

    pub async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        let (src, dst) = (self.full(src), self.full(dst));
        self.run(RequestKind::Copy, || {
            self.backend.copy(
                &src,
                &dst,
                metadata.clone(),
                content_type.clone(),
                condition.clone(),
            )
        })
        .await
    }

    pub async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let key = self.full(key);
        self.run(RequestKind::Delete, || self.backend.delete(&key, if_match))
            .await
    }

    pub async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        let mut failed = Vec::new();
        for chunk in keys.chunks(1000) {
            let full: Vec<String> = chunk.iter().map(|k| self.full(k)).collect();
            let res = self
                .run(RequestKind::Delete, || self.backend.delete_many(&full))
                .await?;
            failed.extend(
                res.into_iter()
                    .map(|(k, e)| (k[self.prefix.len()..].to_string(), e)),
            );
        }
        Ok(failed)
    }

    /// One page of keys (prefix removed) under `prefix`.
    pub async fn list_page(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        let full = self.full(prefix);
        let mut page = self
            .run(RequestKind::List, || {
                self.backend.list(&full, continuation, max_keys)
            })
            .await?;
        let strip = self.prefix.len();
        for k in page.keys.iter_mut() {
            *k = k[strip..].to_string();
        }
        Ok(page)
    }

    /// Every key under `prefix`, paging through the listing with no cap.
    pub async fn list_all(&self, prefix: &str) -> StoreResult<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref(), 1000).await?;
            keys.extend(page.keys);
            match page.next {
                Some(t) => token = Some(t),
                None => return Ok(keys),
            }
        }
    }
}

/// `path.join` semantics for the key prefix: no leading `/`, duplicate `/` collapsed,
/// `.` and `..` resolved, and a trailing `/` when not empty.
pub fn normalize_prefix(prefix: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in prefix.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{}/", parts.join("/"))
    }
}

/// Etag of the embedded backends: a digest of everything stored, so that any change of
/// body, metadata or content type is visible to compare-and-swap.
pub(crate) fn content_etag(body: &[u8], metadata: &Metadata, content_type: Option<&str>) -> String {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(body);
    for (k, v) in metadata {
        h.update([0u8]);
        h.update(k.as_bytes());
        h.update([1u8]);
        h.update(v.as_bytes());
    }
    h.update([2u8]);
    h.update(content_type.unwrap_or("").as_bytes());
    format!("\"{}\"", hex::encode(h.finalize()))
}

/// Checks a write condition against the current etag (`None`: the key is absent).
pub(crate) fn check_condition(cond: &WriteCondition, current: Option<&str>) -> StoreResult<()> {
    match (cond, current) {
        (WriteCondition::None, _) => Ok(()),
        (WriteCondition::IfNoneMatch, None) => Ok(()),
        (WriteCondition::IfNoneMatch, Some(_)) => Err(StoreError::PreconditionFailed),
        (WriteCondition::IfMatch(_), None) => Err(StoreError::NotFound),
        (WriteCondition::IfMatch(want), Some(have)) => {
            if etags_equal(want, have) {
                Ok(())
            } else {
                Err(StoreError::PreconditionFailed)
            }
        }
    }
}

pub(crate) fn etags_equal(a: &str, b: &str) -> bool {
    a.trim_matches('"') == b.trim_matches('"')
}

pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_normalized_like_path_join() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("/"), "");
        assert_eq!(normalize_prefix("tenant/a"), "tenant/a/");
        assert_eq!(normalize_prefix("x//y/"), "x/y/");
        assert_eq!(normalize_prefix("a/./b/../c"), "a/c/");
    }
}
