//! The S3 backend against a tiny fake S3 endpoint on 127.0.0.1 that misbehaves on cue:
//! truncated or altered bodies, connections dropped around a PUT, many metadata headers,
//! server errors, malformed answers, silence.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use s3db::storage::{
    Metadata, PutRequest, RequestKind, RetryPolicy, Store, StoreError, WriteCondition,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy)]
enum Act {
    /// GET: the body cut to `n` bytes, `Content-Length` saying `n`, the etag unchanged.
    Truncate(usize),
    /// GET: one bit of the body flipped.
    Flip,
    /// GET: `Content-Length` of the whole body, half of it sent, then the connection closed.
    Short,
    /// PUT/DELETE applied, then the connection closed without an answer.
    ApplyThenDrop,
    /// The request read, then the connection closed; nothing applied.
    Drop,
    /// An error answer with this status and code.
    Status(u16, &'static str),
    /// Not HTTP at all.
    Garbage,
    /// An answer with this many extra headers.
    Headers(usize),
    /// No answer.
    Hang,
}

#[derive(Clone)]
struct Obj {
    body: Vec<u8>,
    meta: Vec<(String, String)>,
    etag: String,
}

#[derive(Default)]
struct State {
    objects: HashMap<String, Obj>,
    script: VecDeque<(&'static str, Act)>,
}

struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    meta: Vec<(String, String)>,
    body: Vec<u8>,
}

fn md5(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(body))
}

async fn read_request(conn: &mut TcpStream) -> Option<Req> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let mut headers = HashMap::new();
    let mut meta = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':')?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        if let Some(m) = k.strip_prefix("x-amz-meta-") {
            meta.push((m.to_string(), v.clone()));
        }
        headers.insert(k, v);
    }
    if headers.get("expect").map(String::as_str) == Some("100-continue") {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .ok()?;
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    conn.read_exact(&mut body).await.ok()?;
    Some(Req {
        method,
        path,
        headers,
        meta,
        body,
    })
}

fn answer(status: u16, headers: &[(String, String)], body: &[u8], declared: usize) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {declared}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn error(status: u16, code: &str) -> Vec<u8> {
    let body = format!("<Error><Code>{code}</Code><Message>stub</Message></Error>");
    let headers = [("Content-Type".to_string(), "application/xml".to_string())];
    answer(status, &headers, body.as_bytes(), body.len())
}

fn object_headers(o: &Obj) -> Vec<(String, String)> {
    let mut h = vec![
        ("ETag".to_string(), format!("\"{}\"", o.etag)),
        ("Content-Type".into(), "application/json".into()),
        (
            "Last-Modified".into(),
            "Mon, 15 Jan 2024 12:00:00 GMT".into(),
        ),
    ];
    h.extend(
        o.meta
            .iter()
            .map(|(k, v)| (format!("x-amz-meta-{k}"), v.clone())),
    );
    h
}

/// Applies a request to the objects and answers it.
fn apply(state: &mut State, req: &Req, key: &str) -> Vec<u8> {
    let current = state.objects.get(key).cloned();
    let precondition = |cur: &Option<Obj>| -> Option<Vec<u8>> {
        match (
            req.headers.get("if-match"),
            req.headers.get("if-none-match"),
            cur,
        ) {
            (Some(_), _, None) => Some(error(404, "NoSuchKey")),
            (Some(want), _, Some(o)) if want.trim_matches('"') != o.etag => {
                Some(error(412, "PreconditionFailed"))
            }
            (_, Some(_), Some(_)) => Some(error(412, "PreconditionFailed")),
            _ => None,
        }
    };
    match req.method.as_str() {
        "PUT" => {
            if let Some(refused) = precondition(&current) {
                return refused;
            }
            let etag = md5(&req.body);
            state.objects.insert(
                key.to_string(),
                Obj {
                    body: req.body.clone(),
                    meta: req.meta.clone(),
                    etag: etag.clone(),
                },
            );
            answer(200, &[("ETag".into(), format!("\"{etag}\""))], b"", 0)
        }
        "DELETE" => {
            if let Some(refused) = precondition(&current) {
                return refused;
            }
            state.objects.remove(key);
            answer(204, &[], b"", 0)
        }
        "GET" | "HEAD" => match current {
            None if req.method == "HEAD" => answer(404, &[], b"", 0),
            None => error(404, "NoSuchKey"),
            Some(o) => {
                let body: &[u8] = if req.method == "GET" { &o.body } else { b"" };
                let mut out = answer(200, &object_headers(&o), body, o.body.len());
                if req.method == "HEAD" {
                    out.truncate(out.len() - body.len());
                }
                out
            }
        },
        _ => error(501, "NotImplemented"),
    }
}

async fn serve(mut conn: TcpStream, state: Arc<Mutex<State>>) {
    while let Some(req) = read_request(&mut conn).await {
        let path = req.path.split('?').next().unwrap_or("");
        let key = path.splitn(3, '/').nth(2).unwrap_or("").to_string();
        let act = {
            let mut s = state.lock().unwrap();
            let i = s.script.iter().position(|(m, _)| *m == req.method);
            i.and_then(|i| s.script.remove(i)).map(|(_, a)| a)
        };
        let out = match act {
            None => apply(&mut state.lock().unwrap(), &req, &key),
            Some(Act::Drop) => return,
            Some(Act::ApplyThenDrop) => {
                apply(&mut state.lock().unwrap(), &req, &key);
                return;
            }
            Some(Act::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Some(Act::Status(status, code)) => error(status, code),
            Some(Act::Garbage) => {
                let _ = conn.write_all(b"HTTZ/9 nonsense\r\n\r\n").await;
                return;
            }
            Some(act) => {
                let o = state.lock().unwrap().objects.get(&key).cloned().unwrap();
                let h = object_headers(&o);
                match act {
                    Act::Truncate(n) => answer(200, &h, &o.body[..n], n),
                    Act::Flip => {
                        let mut body = o.body.clone();
                        body[0] ^= 1;
                        answer(200, &h, &body, body.len())
                    }
                    Act::Short => {
                        let half = &o.body[..o.body.len() / 2];
                        let _ = conn.write_all(&answer(200, &h, half, o.body.len())).await;
                        return;
                    }
                    Act::Headers(n) => {
                        let mut h = h;
                        h.extend((0..n).map(|i| (format!("x-extra-{i}"), "1".to_string())));
                        answer(200, &h, &o.body, o.body.len())
                    }
                    _ => unreachable!(),
                }
            }
        };
        if conn.write_all(&out).await.is_err() {
            return;
        }
    }
}

struct Stub {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Stub {
    async fn start() -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://k:s@{}/bkt", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, shared.clone()));
            }
        });
        Stub { url, state }
    }

    fn script(&self, acts: &[(&'static str, Act)]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(acts.iter().cloned());
    }

    fn body(&self, key: &str) -> Option<Vec<u8>> {
        let s = self.state.lock().unwrap();
        s.objects.get(key).map(|o| o.body.clone())
    }

    async fn store(&self, query: &str) -> Store {
        Store::open(&format!("{}{query}", self.url))
            .await
            .unwrap()
            .with_retry(RetryPolicy {
                max_attempts: 4,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(10),
            })
    }
}

fn req(body: &str, condition: WriteCondition) -> PutRequest {
    let mut metadata = Metadata::new();
    metadata.insert("a".into(), "1".into());
    PutRequest {
        body: Bytes::from(body.to_string()),
        metadata,
        content_type: Some("application/json".into()),
        condition,
    }
}

fn counts(s: &Store) -> (u64, u64, u64, u64) {
    let st = s.stats();
    (st.get, st.head, st.put, st.delete)
}

fn gave_up_with(err: &StoreError, attempts: u32) -> &StoreError {
    match err {
        StoreError::GaveUp {
            attempts: n, last, ..
        } if *n == attempts => last,
        other => panic!("wanted GaveUp after {attempts}: {other:?}"),
    }
}

#[tokio::test]
async fn hundreds_of_metadata_headers_read_back() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    // 1-3 byte keys and values: what fits in 2 KB of user metadata.
    let mut metadata = Metadata::new();
    for i in 0..680u32 {
        let mut n = i;
        let mut key = String::new();
        loop {
            key.insert(0, char::from_digit(n % 36, 36).unwrap());
            n /= 36;
            if n == 0 {
                break;
            }
        }
        metadata.insert(key, "v".into());
    }
    let sent = PutRequest {
        body: Bytes::from_static(b"{}"),
        metadata: metadata.clone(),
        content_type: Some("application/json".into()),
        condition: WriteCondition::IfNoneMatch,
    };
    s.put("r", sent).await.unwrap();
    assert_eq!(s.get("r").await.unwrap().head.metadata, metadata);
    assert_eq!(s.head("r").await.unwrap().metadata.len(), 680);
    assert_eq!(counts(&s), (1, 1, 1, 0));
}

#[tokio::test]
async fn an_answer_with_too_many_headers_is_a_permanent_failure() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    s.put("r", req("{}", WriteCondition::None)).await.unwrap();
    stub.script(&[("GET", Act::Headers(2047 + 200))]);
    let err = s.get("r").await.unwrap_err();
    assert!(matches!(err, StoreError::Fatal(_)), "{err:?}");
    assert_eq!(s.stats().get, 1);
}

#[tokio::test]
async fn altered_bodies_are_detected_retried_and_never_returned() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    let body = "{\"name\":\"a fairly long body\"}";
    s.put("r", req(body, WriteCondition::None)).await.unwrap();

    stub.script(&[("GET", Act::Truncate(10)), ("GET", Act::Flip)]);
    assert_eq!(s.get("r").await.unwrap().body.as_ref(), body.as_bytes());
    assert_eq!(s.fault_stats().verification_failures, 2);

    stub.script(&[("GET", Act::Short)]);
    assert_eq!(s.get("r").await.unwrap().body.as_ref(), body.as_bytes());

    s.reset_stats();
    stub.script(&[("GET", Act::Truncate(5)); 4]);
    let err = s.get("r").await.unwrap_err();
    let last = gave_up_with(&err, 4);
    assert!(matches!(last, StoreError::Integrity(_)), "{last:?}");
    assert_eq!(s.fault_stats().verification_failures, 4);
    assert_eq!(s.stats().get, 4);
}

#[tokio::test]
async fn a_create_applied_with_its_answer_lost_succeeds_once() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    stub.script(&[("PUT", Act::ApplyThenDrop)]);
    let etag = s
        .put("r", req("{\"v\":1}", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(etag.trim_matches('"'), md5(b"{\"v\":1}"));
    assert_eq!(counts(&s), (0, 1, 1, 0));
    assert_eq!(s.fault_stats().outcomes_resolved, 1);
}

#[tokio::test]
async fn a_cas_lost_before_the_server_is_sent_again() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    let v1 = s.put("r", req("1", WriteCondition::None)).await.unwrap();
    s.reset_stats();
    stub.script(&[("PUT", Act::Drop)]);
    s.put("r", req("2", WriteCondition::IfMatch(v1)))
        .await
        .unwrap();
    assert_eq!(stub.body("r").unwrap(), b"2");
    assert_eq!(counts(&s), (0, 1, 2, 0));
}

#[tokio::test]
async fn a_cas_whose_object_moved_on_is_outcome_unknown() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    let v1 = s.put("r", req("1", WriteCondition::None)).await.unwrap();
    s.put("r", req("someone else", WriteCondition::None))
        .await
        .unwrap();
    stub.script(&[("PUT", Act::Drop)]);
    let err = s
        .put("r", req("2", WriteCondition::IfMatch(v1)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::OutcomeUnknown(_)), "{err:?}");
    assert_eq!(err.at("r").kind().code(), "OUTCOME_UNKNOWN");
}

#[tokio::test]
async fn a_server_error_on_a_conditional_write_is_settled_then_retried() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    stub.script(&[("PUT", Act::Status(500, "InternalError"))]);
    s.put("r", req("1", WriteCondition::IfNoneMatch))
        .await
        .unwrap();
    assert_eq!(counts(&s), (0, 1, 2, 0));
}

#[tokio::test]
async fn a_conditional_delete_applied_with_its_answer_lost_succeeds() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    let v1 = s.put("r", req("1", WriteCondition::None)).await.unwrap();
    stub.script(&[("DELETE", Act::ApplyThenDrop)]);
    s.delete("r", Some(&v1)).await.unwrap();
    assert!(stub.body("r").is_none());
    assert_eq!(counts(&s), (0, 1, 1, 1));
}

#[tokio::test]
async fn unreachable_servers_fail_transiently_without_read_backs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let s = Store::open(&format!("http://k:s@{addr}/bkt?operationTimeout=2000"))
        .await
        .unwrap()
        .with_retry(RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        });
    let err = s
        .put("r", req("1", WriteCondition::IfNoneMatch))
        .await
        .unwrap_err();
    let last = gave_up_with(&err, 3);
    assert!(matches!(last, StoreError::Transient(_)), "{last:?}");
    assert_eq!(counts(&s), (0, 0, 3, 0));
}

#[tokio::test]
async fn permanent_failures_are_reported_at_once() {
    let stub = Stub::start().await;
    let s = stub.store("").await;
    s.put("r", req("1", WriteCondition::None)).await.unwrap();
    stub.script(&[("GET", Act::Status(403, "AccessDenied"))]);
    assert!(matches!(s.get("r").await, Err(StoreError::Fatal(_))));
    stub.script(&[("GET", Act::Garbage)]);
    let err = s.get("r").await.unwrap_err();
    assert!(matches!(err, StoreError::Fatal(_)), "{err:?}");
    assert_eq!(s.stats().get, 2);
    stub.script(&[
        ("GET", Act::Status(503, "SlowDown")),
        ("GET", Act::Status(500, "x")),
    ]);
    assert!(s.get("r").await.is_ok());
    assert_eq!(s.stats().get, 5);
}

#[tokio::test]
async fn a_silent_server_is_bounded_by_the_timeouts() {
    let stub = Stub::start().await;
    let s = stub
        .store("?requestTimeout=150&operationTimeout=700")
        .await
        .with_retry(RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(5),
        });
    s.put("r", req("1", WriteCondition::None)).await.unwrap();
    stub.script(&[("GET", Act::Hang); 10]);
    let started = Instant::now();
    let err = s.get("r").await.unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1200), "{took:?}");
    match &err {
        StoreError::GaveUp {
            request, attempts, ..
        } => {
            assert_eq!(*request, RequestKind::Get);
            assert!((4..=6).contains(attempts), "{attempts}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn a_failed_tls_handshake_is_permanent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.write_all(b"HTTP/1.1 400 not TLS\r\n\r\n").await;
        }
    });
    let s = Store::open(&format!("https://k:s@{addr}/bkt"))
        .await
        .unwrap();
    let err = s.get("r").await.unwrap_err();
    assert!(matches!(err, StoreError::Fatal(_)), "{err:?}");
    assert_eq!(s.stats().get, 1);
}

/// On a real server (`S3DB_TEST_S3_URL`): a record with hundreds of metadata headers reads
/// back verified, and the clean paths cost one request each. (Servers cap the request's
/// header section near 8 KB, and SigV4 lists every header name once more.)
#[tokio::test]
async fn a_real_server_reads_back_what_fits_in_user_metadata() {
    let Ok(url) = std::env::var("S3DB_TEST_S3_URL") else {
        return;
    };
    let prefix = format!("storage-{}", std::process::id());
    let s = Store::open(&format!("{}/{prefix}", url.trim_end_matches('/')))
        .await
        .unwrap();
    let mut metadata = Metadata::new();
    for i in 0..200u32 {
        metadata.insert(format!("{i:x}"), "v".into());
    }
    let body = Bytes::from(vec![b'x'; 10_000]);
    let sent = PutRequest {
        body: body.clone(),
        metadata: metadata.clone(),
        content_type: Some("application/json".into()),
        condition: WriteCondition::IfNoneMatch,
    };
    let etag = s.put("many", sent).await.unwrap();
    let got = s.get("many").await.unwrap();
    assert_eq!(
        (got.head.metadata, got.body, got.head.etag),
        (metadata, body, etag)
    );
    s.delete("many", None).await.unwrap();
    assert_eq!(counts(&s), (1, 0, 1, 1));
    assert_eq!(s.fault_stats(), Default::default());
}
