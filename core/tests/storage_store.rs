//! The `Store` wrapper over a backend that fails on cue: lost responses settled by reading
//! back, verification failures retried then reported, bounded retries and timeouts, and no
//! extra request when nothing goes wrong.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use s3db::storage::{
    FaultStats, ListPage, MemoryStore, Metadata, Object, ObjectHead, ObjectStore, PutRequest,
    RequestKind, RetryPolicy, Stats, Store, StoreError, StoreResult, Timeouts, WriteCondition,
};
use s3db::ErrorKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Head,
    Put,
    Delete,
}

#[derive(Debug, Clone)]
enum Fault {
    /// The request is applied, its response lost.
    ApplyThenLose,
    /// The request is lost before it reaches the store.
    LoseBefore,
    /// Lost, then applied late: right after the next HEAD answered.
    ApplyAfterNextHead,
    /// Another writer changes the object, then this request is lost unapplied.
    OvertakenThenLose,
    Transient,
    Fatal,
    Integrity,
    Hang,
}

/// A memory store that plays scripted faults, one per matching request.
#[derive(Debug)]
struct Faulty {
    inner: MemoryStore,
    script: Mutex<VecDeque<(Op, Fault)>>,
    late: Mutex<Option<(String, PutRequest)>>,
}

impl Faulty {
    fn new(script: Vec<(Op, Fault)>) -> Arc<Faulty> {
        Arc::new(Faulty {
            inner: MemoryStore::isolated(),
            script: Mutex::new(script.into()),
            late: Mutex::new(None),
        })
    }

    fn next(&self, op: Op) -> Option<Fault> {
        let mut script = self.script.lock().unwrap();
        let i = script.iter().position(|(o, _)| *o == op)?;
        script.remove(i).map(|(_, f)| f)
    }

    async fn common(&self, fault: &Fault) -> StoreResult<()> {
        match fault {
            Fault::Transient => Err(StoreError::Transient("injected".into())),
            Fault::Fatal => Err(StoreError::Fatal("injected".into())),
            Fault::Integrity => Err(StoreError::Integrity("injected".into())),
            Fault::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

fn lost() -> StoreError {
    StoreError::OutcomeUnknown("connection reset after sending".into())
}

#[async_trait]
impl ObjectStore for Faulty {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        if let Some(f) = self.next(Op::Get) {
            self.common(&f).await?;
        }
        self.inner.get(key).await
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        if let Some(f) = self.next(Op::Head) {
            self.common(&f).await?;
        }
        let res = self.inner.head(key).await;
        let late = self.late.lock().unwrap().take();
        if let Some((k, req)) = late {
            self.inner.put(&k, req).await.unwrap();
        }
        res
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        match self.next(Op::Put) {
            Some(Fault::ApplyThenLose) => {
                self.inner.put(key, req).await?;
                Err(lost())
            }
            Some(Fault::LoseBefore) => Err(lost()),
            Some(Fault::ApplyAfterNextHead) => {
                *self.late.lock().unwrap() = Some((key.to_string(), req));
                Err(lost())
            }
            Some(Fault::OvertakenThenLose) => {
                let other = PutRequest {
                    body: Bytes::from("someone else"),
                    ..Default::default()
                };
                self.inner.put(key, other).await?;
                Err(lost())
            }
            Some(f) => {
                self.common(&f).await?;
                self.inner.put(key, req).await
            }
            None => self.inner.put(key, req).await,
        }
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        self.inner
            .copy(src, dst, metadata, content_type, condition)
            .await
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        match self.next(Op::Delete) {
            Some(Fault::ApplyThenLose) => {
                self.inner.delete(key, if_match).await?;
                Err(lost())
            }
            Some(Fault::LoseBefore) => Err(lost()),
            Some(f) => {
                self.common(&f).await?;
                self.inner.delete(key, if_match).await
            }
            None => self.inner.delete(key, if_match).await,
        }
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        self.inner.delete_many(keys).await
    }

    async fn list(&self, p: &str, c: Option<&str>, m: usize) -> StoreResult<ListPage> {
        self.inner.list(p, c, m).await
    }
}

fn store(script: Vec<(Op, Fault)>) -> (Store, Arc<Faulty>) {
    let backend = Faulty::new(script);
    let store = Store::new(backend.clone(), "p").with_retry(RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(1),
        cap: Duration::from_millis(5),
    });
    (store, backend)
}

fn req(body: &str, condition: WriteCondition) -> PutRequest {
    let mut metadata = Metadata::new();
    metadata.insert("n".into(), body.len().to_string());
    PutRequest {
        body: Bytes::from(body.to_string()),
        metadata,
        content_type: Some("application/json".into()),
        condition,
    }
}

fn counts(s: Stats) -> (u64, u64, u64, u64) {
    (s.get, s.head, s.put, s.delete)
}

#[tokio::test]
async fn clean_paths_send_one_request_and_record_no_fault() {
    let (s, _) = store(vec![]);
    let etag = s
        .put("k", req("a", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    s.put("k", req("b", WriteCondition::IfMatch(etag)))
        .await
        .unwrap();
    let obj = s.get("k").await.unwrap();
    s.delete("k", Some(&obj.head.etag)).await.unwrap();
    assert_eq!(counts(s.stats()), (1, 0, 2, 1));
    assert_eq!(s.fault_stats(), FaultStats::default());
}

#[tokio::test]
async fn a_lost_create_that_was_applied_is_a_success() {
    let (s, b) = store(vec![(Op::Put, Fault::ApplyThenLose)]);
    let etag = s
        .put("k", req("mine", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(etag, b.inner.head("p/k").await.unwrap().etag);
    assert_eq!(counts(s.stats()), (0, 1, 1, 0));
    assert_eq!(s.fault_stats().outcomes_resolved, 1);
}

#[tokio::test]
async fn a_lost_cas_that_was_not_applied_is_sent_again() {
    let (s, b) = store(vec![(Op::Put, Fault::LoseBefore)]);
    let first = b
        .inner
        .put("p/k", req("v1", WriteCondition::None))
        .await
        .unwrap();
    let etag = s
        .put("k", req("v2", WriteCondition::IfMatch(first)))
        .await
        .unwrap();
    let now = b.inner.get("p/k").await.unwrap();
    assert_eq!((now.body.as_ref(), now.head.etag), (&b"v2"[..], etag));
    assert_eq!(counts(s.stats()), (0, 1, 2, 0));
}

#[tokio::test]
async fn a_lost_create_not_applied_is_sent_again() {
    let (s, _) = store(vec![(Op::Put, Fault::LoseBefore)]);
    s.put("k", req("v", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(counts(s.stats()), (0, 1, 2, 0));
}

#[tokio::test]
async fn a_resend_refused_because_the_lost_request_landed_late_is_a_success() {
    let (s, _) = store(vec![(Op::Put, Fault::ApplyAfterNextHead)]);
    let etag = s
        .put("k", req("v", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(s.head("k").await.unwrap().etag, etag);
    // PUT lost, HEAD (absent), PUT refused (412), HEAD (ours), then the check above.
    assert_eq!(counts(s.stats()), (0, 3, 2, 0));
}

#[tokio::test]
async fn a_lost_cas_overtaken_by_another_writer_is_outcome_unknown() {
    let (s, b) = store(vec![(Op::Put, Fault::OvertakenThenLose)]);
    let first = b
        .inner
        .put("p/k", req("v1", WriteCondition::None))
        .await
        .unwrap();
    let err = s
        .put("k", req("v2", WriteCondition::IfMatch(first)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutcomeUnknown(_)), "{err:?}");
    let e = err.at("k");
    assert_eq!(e.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(e.kind().code(), "OUTCOME_UNKNOWN");
    assert_eq!(s.fault_stats().outcomes_unknown, 1);
}

#[tokio::test]
async fn lost_unconditional_writes_are_retried_without_reading_back() {
    let (s, _) = store(vec![
        (Op::Put, Fault::LoseBefore),
        (Op::Delete, Fault::ApplyThenLose),
    ]);
    s.put("k", req("v", WriteCondition::None)).await.unwrap();
    s.delete("k", None).await.unwrap();
    assert_eq!(counts(s.stats()), (0, 0, 2, 2));
}

#[tokio::test]
async fn a_lost_conditional_delete_is_settled_by_reading_back() {
    let (s, b) = store(vec![
        (Op::Delete, Fault::ApplyThenLose),
        (Op::Delete, Fault::LoseBefore),
    ]);
    let e1 = s.put("a", req("a", WriteCondition::None)).await.unwrap();
    let e2 = s.put("b", req("b", WriteCondition::None)).await.unwrap();
    s.reset_stats();
    s.delete("a", Some(&e1)).await.unwrap();
    assert_eq!(counts(s.stats()), (0, 1, 0, 1));
    s.delete("b", Some(&e2)).await.unwrap();
    assert_eq!(counts(s.stats()), (0, 2, 0, 3));
    assert!(matches!(
        b.inner.head("p/b").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn a_refusal_without_a_lost_response_is_reported_as_is() {
    let (s, _) = store(vec![]);
    s.put("k", req("v", WriteCondition::None)).await.unwrap();
    let err = s
        .put("k", req("w", WriteCondition::IfNoneMatch))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::PreconditionFailed);
    assert_eq!(s.stats().head, 0);
}

#[tokio::test]
async fn failed_verification_is_retried_then_reported_never_returned() {
    let (s, _) = store(vec![
        (Op::Get, Fault::Integrity),
        (Op::Get, Fault::Integrity),
    ]);
    s.put("k", req("v", WriteCondition::None)).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().body.as_ref(), b"v");
    assert_eq!(s.fault_stats().verification_failures, 2);
    assert_eq!(s.stats().get, 3);

    let (s, _) = store(vec![(Op::Get, Fault::Integrity); 10]);
    s.put("k", req("v", WriteCondition::None)).await.unwrap();
    let err = s.get("k").await.unwrap_err();
    match &err {
        StoreError::GaveUp {
            request,
            attempts,
            last,
            ..
        } => {
            assert_eq!((*request, *attempts), (RequestKind::Get, 4));
            assert!(matches!(**last, StoreError::Integrity(_)));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.to_string().contains("GET gave up after 4 attempt(s)"),
        "{err}"
    );
    assert_eq!(err.at("k").kind(), ErrorKind::Storage);
    assert_eq!(s.fault_stats().verification_failures, 4);
    assert_eq!(s.fault_stats().retries, 3);
}

#[tokio::test]
async fn permanent_failures_are_not_retried() {
    let (s, _) = store(vec![(Op::Get, Fault::Fatal)]);
    assert!(matches!(s.get("k").await, Err(StoreError::Fatal(_))));
    assert_eq!(s.stats().get, 1);
}

#[tokio::test]
async fn transient_failures_are_retried_a_bounded_number_of_times() {
    let (s, _) = store(vec![(Op::Head, Fault::Transient); 10]);
    let err = s.head("k").await.unwrap_err();
    assert!(
        matches!(err, StoreError::GaveUp { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(s.stats().head, 4);
}

#[tokio::test]
async fn request_and_operation_timeouts_bound_a_hung_store() {
    let (s, _) = store(vec![(Op::Get, Fault::Hang); 10]);
    let s = s
        .with_retry(RetryPolicy {
            max_attempts: 100,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        })
        .with_request_timeout(Duration::from_millis(60))
        .with_operation_timeout(Duration::from_millis(250));
    let started = Instant::now();
    let err = s.get("k").await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(600), "{took:?}");
    match err {
        StoreError::GaveUp { attempts, last, .. } => {
            assert!((3..=5).contains(&attempts), "{attempts}");
            assert!(last.to_string().contains("timed out"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.fault_stats().timeouts >= 3);
}

#[tokio::test]
async fn a_hung_write_is_settled_by_reading_back() {
    let (s, _) = store(vec![(Op::Put, Fault::Hang)]);
    let s = s.with_request_timeout(Duration::from_millis(50));
    s.put("k", req("v", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(counts(s.stats()), (0, 1, 2, 0));
    assert_eq!(s.fault_stats().timeouts, 1);
}

#[tokio::test]
async fn timeouts_come_from_the_connection_string_and_the_builder() {
    let s = Store::open(
        "memory://tbucket/x?connectTimeout=100&requestTimeout=200&operationTimeout=900",
    )
    .await
    .unwrap();
    assert_eq!(
        s.timeouts(),
        Timeouts {
            connect: Duration::from_millis(100),
            request: Duration::from_millis(200),
            operation: Duration::from_millis(900),
        }
    );
    let s = s.with_connect_timeout(Duration::from_secs(1));
    assert_eq!(s.timeouts().connect, Duration::from_secs(1));
    assert_eq!(
        Store::open("memory://tbucket").await.unwrap().timeouts(),
        Timeouts::default()
    );
}
