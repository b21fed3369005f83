//! The only way the engine touches data: an object store with conditional writes.

mod conn;
mod error;
mod fs;
mod http;
mod memory;
mod retry;
mod s3;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

pub use conn::{ConnectionString, Endpoint, DEFAULT_METADATA_LIMIT};
pub use error::StoreError;
pub use fs::FileStore;
pub use memory::MemoryStore;
pub use retry::{RetryPolicy, Timeouts};
pub use s3::S3Store;
pub use stats::{FaultStats, RequestKind, RequestStats, Stats};

use stats::Fault;

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
///
/// A write whose request may have reached the store without its answer reaching us fails
/// with [`StoreError::OutcomeUnknown`]; [`Store`] settles it by reading the object back.
/// A read whose bytes fail verification fails with [`StoreError::Integrity`].
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
    /// Takes the timeouts of the [`Store`] wrapping this backend (connect timeout, waits of
    /// its own). The store enforces the request and operation timeouts itself.
    fn set_timeouts(&self, _timeouts: &Timeouts) {}
}

/// A backend plus key prefix, request counting, timeouts and the retry policy.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Arc<dyn ObjectStore>,
    prefix: String,
    stats: Arc<RequestStats>,
    retry: RetryPolicy,
    timeouts: Timeouts,
    metadata_limit: usize,
    catalog_mutex: bool,
}

/// What a conditional write meant to do, to recognise it when reading the object back.
enum Intent<'a> {
    Put(&'a PutRequest),
    Copy {
        metadata: &'a Metadata,
        content_type: Option<&'a str>,
        condition: &'a WriteCondition,
    },
    Delete {
        if_match: &'a str,
    },
}

enum Resolution {
    Applied(String),
    NotApplied,
    Unknown(String),
}

impl Store {
    pub fn new(backend: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let prefix = normalize_prefix(prefix);
        Store {
            backend,
            prefix,
            stats: Arc::new(RequestStats::default()),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            metadata_limit: conn::DEFAULT_METADATA_LIMIT,
            catalog_mutex: false,
        }
    }

    /// Opens the store a connection string names.
    pub async fn open(conn: &str) -> crate::Result<Store> {
        let parsed = ConnectionString::parse(conn)?;
        let backend: Arc<dyn ObjectStore> = match &parsed.endpoint {
            Endpoint::Memory { bucket } => Arc::new(MemoryStore::shared(bucket)),
            Endpoint::File { root } => Arc::new(FileStore::open(root)?.with_fsync(parsed.fsync)),
            Endpoint::S3 { .. } => Arc::new(S3Store::new(&parsed)?),
        };
        let remote = matches!(parsed.endpoint, Endpoint::S3 { .. });
        Ok(Store::new(backend, &parsed.prefix)
            .with_metadata_limit(parsed.metadata_limit)
            .with_catalog_mutex(remote)
            .with_timeouts(parsed.timeouts))
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

    pub fn retry(&self) -> RetryPolicy {
        self.retry
    }

    /// Sets every timeout (the backend takes the connect timeout).
    pub fn with_timeouts(mut self, timeouts: Timeouts) -> Self {
        self.backend.set_timeouts(&timeouts);
        self.timeouts = timeouts;
        self
    }

    pub fn with_connect_timeout(self, timeout: std::time::Duration) -> Self {
        let t = Timeouts {
            connect: timeout,
            ..self.timeouts
        };
        self.with_timeouts(t)
    }

    /// Bounds one attempt of one request.
    pub fn with_request_timeout(self, timeout: std::time::Duration) -> Self {
        let t = Timeouts {
            request: timeout,
            ..self.timeouts
        };
        self.with_timeouts(t)
    }

    /// Bounds one operation, retries and backoff included.
    pub fn with_operation_timeout(self, timeout: std::time::Duration) -> Self {
        let t = Timeouts {
            operation: timeout,
            ..self.timeouts
        };
        self.with_timeouts(t)
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Verification failures, retries, timeouts and settled or unknown write outcomes.
    pub fn fault_stats(&self) -> FaultStats {
        self.stats.faults()
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

    /// One attempt, cut at the request timeout or the operation deadline.
    async fn attempt<T>(
        &self,
        kind: RequestKind,
        fut: impl std::future::Future<Output = StoreResult<T>>,
        deadline: Instant,
    ) -> StoreResult<T> {
        let budget = self
            .timeouts
            .request
            .min(deadline.saturating_duration_since(Instant::now()));
        self.stats.count(kind);
        match tokio::time::timeout(budget, fut).await {
            Ok(res) => {
                if let Err(StoreError::Integrity(_)) = &res {
                    self.stats.fault(Fault::VerificationFailure);
                }
                res
            }
            Err(_) => {
                self.stats.fault(Fault::Timeout);
                let why = format!("{kind} timed out after {} ms", budget.as_millis());
                Err(match kind {
                    RequestKind::Put | RequestKind::Copy | RequestKind::Delete => {
                        StoreError::OutcomeUnknown(why)
                    }
                    _ => StoreError::Transient(why),
                })
            }
        }
    }

    /// Sleeps before attempt `attempts + 1`; `false` when the attempts or the deadline ran out.
    async fn backoff(&self, attempts: u32, deadline: Instant) -> bool {
        if attempts >= self.retry.max_attempts {
            return false;
        }
        let delay = self.retry.delay(attempts - 1);
        if Instant::now() + delay >= deadline {
            return false;
        }
        self.stats.fault(Fault::Retry);
        tokio::time::sleep(delay).await;
        true
    }

    fn gave_up(kind: RequestKind, attempts: u32, start: Instant, last: StoreError) -> StoreError {
        if let StoreError::OutcomeUnknown(why) = last {
            return StoreError::OutcomeUnknown(format!("{why} (after {attempts} attempt(s))"));
        }
        StoreError::GaveUp {
            request: kind,
            attempts,
            elapsed_ms: start.elapsed().as_millis() as u64,
            last: Box::new(last),
        }
    }

    /// Runs an idempotent request: retryable failures (and lost responses) are retried.
    async fn run<T, F, Fut>(&self, kind: RequestKind, op: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        self.run_until(kind, Instant::now() + self.timeouts.operation, op)
            .await
    }

    async fn run_until<T, F, Fut>(
        &self,
        kind: RequestKind,
        deadline: Instant,
        mut op: F,
    ) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.attempt(kind, op(), deadline).await {
                Err(e) if e.is_retryable() || matches!(e, StoreError::OutcomeUnknown(_)) => {
                    tracing::debug!(%kind, attempts, error = %e, "storage request failed");
                    if !self.backoff(attempts, deadline).await {
                        return Err(Self::gave_up(kind, attempts, start, e));
                    }
                }
                other => return other,
            }
        }
    }

    /// Runs a conditional write. A lost response is settled by reading the object back:
    /// ours → success; untouched → sent again; anything else → `OutcomeUnknown`.
    async fn run_conditional<T, F, Fut>(
        &self,
        kind: RequestKind,
        key: &str,
        intent: Intent<'_>,
        applied: impl Fn(String) -> T,
        mut op: F,
    ) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = StoreResult<T>>,
    {
        let start = Instant::now();
        let deadline = start + self.timeouts.operation;
        let mut attempts = 0;
        let mut uncertain = false;
        loop {
            attempts += 1;
            let err = match self.attempt(kind, op(), deadline).await {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let lost = matches!(err, StoreError::OutcomeUnknown(_));
            let refused = matches!(
                err,
                StoreError::PreconditionFailed | StoreError::NotFound | StoreError::Conflict
            );
            let err = if lost || (refused && uncertain) {
                uncertain = true;
                match self.resolve(key, &intent, deadline).await {
                    Resolution::Applied(etag) => {
                        self.stats.fault(Fault::OutcomeResolved);
                        return Ok(applied(etag));
                    }
                    Resolution::NotApplied if lost => {
                        self.stats.fault(Fault::OutcomeResolved);
                        StoreError::Transient(format!("{err}; read back: not applied"))
                    }
                    Resolution::NotApplied => {
                        self.stats.fault(Fault::OutcomeUnknown);
                        return Err(StoreError::OutcomeUnknown(format!(
                            "{kind} {key}: a resend was refused ({err}) after an earlier attempt lost its response"
                        )));
                    }
                    Resolution::Unknown(why) => {
                        self.stats.fault(Fault::OutcomeUnknown);
                        return Err(StoreError::OutcomeUnknown(format!(
                            "{kind} {key}: {err}; read back: {why}"
                        )));
                    }
                }
            } else {
                err
            };
            if !err.is_retryable() {
                return Err(err);
            }
            tracing::debug!(%kind, attempts, error = %err, "conditional write failed");
            if !self.backoff(attempts, deadline).await {
                return Err(Self::gave_up(kind, attempts, start, err));
            }
        }
    }

    /// Reads the object back after a conditional write lost its response.
    async fn resolve(&self, key: &str, intent: &Intent<'_>, deadline: Instant) -> Resolution {
        let deadline = deadline.max(Instant::now() + self.timeouts.request);
        let head = self
            .run_until(RequestKind::Head, deadline, || self.backend.head(key))
            .await;
        let condition = match intent {
            Intent::Put(req) => &req.condition,
            Intent::Copy { condition, .. } => condition,
            Intent::Delete { if_match } => {
                return match head {
                    Err(StoreError::NotFound) => Resolution::Applied(String::new()),
                    Ok(h) if etags_equal(&h.etag, if_match) => Resolution::NotApplied,
                    Ok(h) => Resolution::Unknown(format!("now at etag {}", h.etag)),
                    Err(e) => Resolution::Unknown(e.to_string()),
                };
            }
        };
        let head = match head {
            Ok(h) => h,
            Err(StoreError::NotFound) if *condition == WriteCondition::IfNoneMatch => {
                return Resolution::NotApplied
            }
            Err(StoreError::NotFound) => return Resolution::Unknown("the object is gone".into()),
            Err(e) => return Resolution::Unknown(e.to_string()),
        };
        let ours = match intent {
            Intent::Put(req) => is_our_put(&head, req),
            Intent::Copy {
                metadata,
                content_type,
                ..
            } => {
                metadata_equal(&head.metadata, metadata)
                    && content_type.is_none_or(|ct| head.content_type.as_deref() == Some(ct))
            }
            Intent::Delete { .. } => false,
        };
        match condition {
            _ if ours => Resolution::Applied(head.etag),
            WriteCondition::IfMatch(want) if etags_equal(&head.etag, want) => {
                Resolution::NotApplied
            }
            _ => Resolution::Unknown(format!("now at etag {}, not ours", head.etag)),
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
        if req.condition == WriteCondition::None {
            return self
                .run(RequestKind::Put, || self.backend.put(&key, req.clone()))
                .await;
        }
        self.run_conditional(
            RequestKind::Put,
            &key,
            Intent::Put(&req),
            |etag| etag,
            || self.backend.put(&key, req.clone()),
        )
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
        let op = || {
            self.backend.copy(
                &src,
                &dst,
                metadata.clone(),
                content_type.clone(),
                condition.clone(),
            )
        };
        if condition == WriteCondition::None {
            return self.run(RequestKind::Copy, op).await;
        }
        let intent = Intent::Copy {
            metadata: &metadata,
            content_type: content_type.as_deref(),
            condition: &condition,
        };
        self.run_conditional(RequestKind::Copy, &dst, intent, |etag| etag, op)
            .await
    }

    pub async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        let key = self.full(key);
        let op = || self.backend.delete(&key, if_match);
        match if_match {
            None => self.run(RequestKind::Delete, op).await,
            Some(if_match) => {
                let intent = Intent::Delete { if_match };
                self.run_conditional(RequestKind::Delete, &key, intent, |_| (), op)
                    .await
            }
        }
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

/// The stored object is what `req` wrote: same metadata and content type, and an etag that is
/// the MD5 of our body (S3 single-part) or the embedded backends' digest of what we sent.
fn is_our_put(head: &ObjectHead, req: &PutRequest) -> bool {
    metadata_equal(&head.metadata, &req.metadata)
        && req
            .content_type
            .as_deref()
            .is_none_or(|ct| head.content_type.as_deref() == Some(ct))
        && (etags_equal(&head.etag, &md5_hex(&req.body))
            || etags_equal(
                &head.etag,
                &content_etag(&req.body, &req.metadata, head.content_type.as_deref()),
            ))
}

/// S3 lower-cases user-metadata keys, and HTTP trims header values.
fn metadata_equal(stored: &Metadata, sent: &Metadata) -> bool {
    stored.len() == sent.len()
        && sent.iter().all(|(k, v)| {
            stored
                .get(k)
                .or_else(|| stored.get(&k.to_ascii_lowercase()))
                .is_some_and(|s| s.trim() == v.trim())
        })
}

pub(crate) fn md5_hex(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(body))
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

pub fn etags_equal(a: &str, b: &str) -> bool {
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
