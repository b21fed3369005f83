//! Each action's exact effect, against an in-process upstream that records what it received.

use s3db_faultproxy::{Action, FaultProxy, Rule, When};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout};

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    conn: usize,
}

/// A tiny HTTP/1.1 server: `/big` answers 100 bytes, anything else `hello METHOD TARGET`.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    conns: Arc<Mutex<usize>>,
}

impl Upstream {
    async fn start() -> (Upstream, SocketAddr) {
        let up = Upstream::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let u = up.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let conn = {
                    let mut n = u.conns.lock().unwrap();
                    *n += 1;
                    *n
                };
                tokio::spawn(u.clone().serve(s, conn));
            }
        });
        (up, addr)
    }

    async fn serve(self, s: TcpStream, conn: usize) -> io::Result<()> {
        let mut io = BufReader::new(s);
        loop {
            let head = read_head(&mut io).await?;
            let mut h = [httparse::EMPTY_HEADER; 64];
            let mut r = httparse::Request::new(&mut h);
            r.parse(&head).unwrap();
            let headers: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let body = read_body(&mut io, &headers).await?;
            let (method, target) = (r.method.unwrap().to_string(), r.path.unwrap().to_string());
            let answer = if target.ends_with("/big") {
                (0..100u8).collect()
            } else {
                format!("hello {method} {target}").into_bytes()
            };
            self.seen.lock().unwrap().push(Seen {
                method: method.clone(),
                target,
                headers,
                body,
                conn,
            });
            let head = format!(
                "HTTP/1.1 200 OK\r\nx-upstream: yes\r\ncontent-length: {}\r\n\r\n",
                answer.len()
            );
            io.get_mut().write_all(head.as_bytes()).await?;
            if method != "HEAD" {
                io.get_mut().write_all(&answer).await?;
            }
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_head(io: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if io.read_until(b'\n', &mut head).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(head)
}

async fn read_body(
    io: &mut BufReader<TcpStream>,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let mut body = Vec::new();
    if get("transfer-encoding") == Some("chunked") {
        loop {
            let mut line = String::new();
            io.read_line(&mut line).await?;
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            io.read_exact(&mut chunk).await?;
            if n == 0 {
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    body.resize(get("content-length").map_or(0, |v| v.parse().unwrap()), 0);
    io.read_exact(&mut body).await?;
    Ok(body)
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw keep-alive client, so every byte and every connection error is visible.
struct Client(BufReader<TcpStream>);

impl Client {
    async fn new(addr: SocketAddr) -> Client {
        Client(BufReader::new(TcpStream::connect(addr).await.unwrap()))
    }

    async fn send(
        &mut self,
        method: &str,
        target: &str,
        extra: &str,
        body: &[u8],
    ) -> io::Result<Answer> {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nhost: s3.test:9000\r\ncontent-length: {}\r\n{extra}\r\n",
            body.len()
        );
        self.0
            .get_mut()
            .write_all(&[head.as_bytes(), body].concat())
            .await?;
        let head = read_head(&mut self.0).await?;
        let mut h = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut h);
        r.parse(&head).unwrap();
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            read_body(&mut self.0, &headers).await?
        };
        Ok(Answer {
            status: r.code.unwrap(),
            headers,
            body,
        })
    }
}

async fn get(addr: SocketAddr, target: &str) -> io::Result<Answer> {
    Client::new(addr).await.send("GET", target, "", b"").await
}

async fn setup() -> (Upstream, FaultProxy) {
    let (up, addr) = Upstream::start().await;
    (up, FaultProxy::start(addr).unwrap())
}

#[tokio::test]
async fn forwards_unchanged_over_keep_alive() {
    let (up, proxy) = setup().await;
    let mut c = Client::new(proxy.addr()).await;
    let auth =
        "authorization: AWS4-HMAC-SHA256 Credential=test/x, Signature=abc\r\nx-amz-meta-a: b\r\n";
    let a = c
        .send("PUT", "/bkt/id%3D1?x-id=PutObject", auth, b"payload")
        .await
        .unwrap();
    assert_eq!((a.status, a.header("x-upstream")), (200, Some("yes")));
    assert_eq!(a.body, b"hello PUT /bkt/id%3D1?x-id=PutObject");
    let chunked = "transfer-encoding: chunked\r\n";
    c.0.get_mut()
        .write_all(format!("POST /bkt?delete HTTP/1.1\r\nhost: s3.test:9000\r\n{chunked}\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(
        read_head(&mut c.0).await.unwrap()[..15],
        *b"HTTP/1.1 200 OK"
    );
    let mut rest = vec![0; "hello POST /bkt?delete".len()];
    c.0.read_exact(&mut rest).await.unwrap();
    assert_eq!(
        c.send("HEAD", "/bkt/k", "", b"")
            .await
            .unwrap()
            .header("content-length"),
        Some("17")
    );
    let seen = up.seen();
    assert_eq!(seen.len(), 3);
    let h = |s: &Seen, n: &str| {
        s.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("PUT", "/bkt/id%3D1?x-id=PutObject")
    );
    assert_eq!(h(&seen[0], "host").as_deref(), Some("s3.test:9000"));
    assert_eq!(
        h(&seen[0], "authorization").as_deref(),
        Some("AWS4-HMAC-SHA256 Credential=test/x, Signature=abc")
    );
    assert_eq!(h(&seen[0], "x-amz-meta-a").as_deref(), Some("b"));
    assert_eq!(seen[0].body, b"payload");
    assert_eq!(seen[1].body, b"abcde");
    assert!(
        seen.iter().all(|s| s.conn == 1),
        "one upstream connection, kept alive"
    );
    let st = proxy.stats();
    assert_eq!(
        (
            st.total,
            st.by_method["PUT"],
            st.by_method["POST"],
            st.by_method["HEAD"]
        ),
        (3, 1, 1, 1)
    );
    assert!(st.by_action.is_empty());
}

#[tokio::test]
async fn reset_before_never_reaches_upstream() {
    let (up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::ResetBefore).method("PUT"))
        .unwrap();
    let mut c = Client::new(proxy.addr()).await;
    assert!(c.send("PUT", "/b/k", "", b"data").await.is_err());
    assert!(up.seen().is_empty());
    assert_eq!(get(proxy.addr(), "/b/k").await.unwrap().status, 200);
    assert_eq!(proxy.stats().by_action["reset_before"], 1);
}

#[tokio::test]
async fn reset_after_applies_but_client_never_told() {
    let (up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::ResetAfter).method("PUT"))
        .unwrap();
    let mut c = Client::new(proxy.addr()).await;
    assert!(c
        .send("PUT", "/b/k", "if-none-match: *\r\n", b"data")
        .await
        .is_err());
    let seen = up.seen();
    assert_eq!((seen.len(), seen[0].body.as_slice()), (1, &b"data"[..]));
    assert_eq!(proxy.stats().by_action["reset_after"], 1);
}

#[tokio::test]
async fn status_answers_without_forwarding() {
    let (up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::s3_error(503, "SlowDown")).path_contains("/slow"))
        .unwrap();
    let nope = Action::Status {
        status: 404,
        code: None,
        body: Some("nope".into()),
    };
    proxy.add_rule(Rule::new(nope).method("HEAD")).unwrap();
    let mut c = Client::new(proxy.addr()).await;
    let a = c.send("GET", "/b/slow", "", b"").await.unwrap();
    assert_eq!(
        (a.status, a.header("content-type")),
        (503, Some("application/xml"))
    );
    let body = String::from_utf8(a.body).unwrap();
    assert!(
        body.contains("<Code>SlowDown</Code>") && body.contains("<Resource>/b/slow</Resource>"),
        "{body}"
    );
    // HEAD: status and length, no body bytes; the connection stays in step.
    let a = c.send("HEAD", "/b/k", "", b"").await.unwrap();
    assert_eq!((a.status, a.header("content-length")), (404, Some("4")));
    assert_eq!(c.send("GET", "/b/k", "", b"").await.unwrap().status, 200);
    assert_eq!(up.seen().len(), 1);
    assert_eq!(proxy.stats().by_action["status"], 2);
}

#[tokio::test]
async fn delay_rule_delays_only_matches() {
    let (_up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::Delay { ms: 300 }).path_contains("/slow"))
        .unwrap();
    let t = Instant::now();
    assert_eq!(get(proxy.addr(), "/b/slow").await.unwrap().status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let t = Instant::now();
    get(proxy.addr(), "/b/fast").await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn truncate_body_looks_complete() {
    let (_up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::TruncateBody { keep: Some(10) }).when(When::Nth(1)))
        .unwrap();
    proxy
        .add_rule(Rule::new(Action::TruncateBody { keep: None }).when(When::Nth(1)))
        .unwrap();
    let mut c = Client::new(proxy.addr()).await;
    let full: Vec<u8> = (0..100).collect();
    let a = c.send("GET", "/b/big", "", b"").await.unwrap();
    assert_eq!(
        (a.header("content-length"), a.body.as_slice()),
        (Some("10"), &full[..10])
    );
    let a = c.send("GET", "/b/big", "", b"").await.unwrap();
    assert_eq!(
        (a.header("content-length"), a.body.as_slice()),
        (Some("50"), &full[..50])
    );
    assert_eq!(c.send("GET", "/b/big", "", b"").await.unwrap().body, full);
    assert_eq!(proxy.stats().by_action["truncate_body"], 2);
}

#[tokio::test]
async fn corrupt_body_flips_bits_same_length() {
    let (_up, proxy) = setup().await;
    proxy.add_rule(Rule::new(Action::CorruptBody)).unwrap();
    let a = get(proxy.addr(), "/b/big").await.unwrap();
    assert_eq!(a.header("content-length"), Some("100"));
    assert_eq!(a.body, (0..100u8).map(|b| b ^ 1).collect::<Vec<_>>());
}

#[tokio::test]
async fn stall_holds_the_answer() {
    let (up, proxy) = setup().await;
    proxy
        .add_rule(Rule::new(Action::Stall { ms: Some(300) }).when(When::Nth(1)))
        .unwrap();
    let t = Instant::now();
    let a = get(proxy.addr(), "/b/k").await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(a.body, b"hello GET /b/k");
    proxy
        .add_rule(Rule::new(Action::Stall { ms: None }).path_contains("/never"))
        .unwrap();
    assert!(
        timeout(Duration::from_millis(400), get(proxy.addr(), "/b/never"))
            .await
            .is_err()
    );
    assert_eq!(up.seen().len(), 2, "the stalled request was forwarded");
    // The client gave up and closed: the proxy notices and lets go of the request.
    sleep(Duration::from_millis(200)).await;
    assert_eq!(proxy.stats().in_flight, 0);
}

#[tokio::test]
async fn rate_limit_answers_slowdown_above_the_rate() {
    let (_up, proxy) = setup().await;
    proxy.set_rate_limit(Some(5.0));
    let mut c = Client::new(proxy.addr()).await;
    let mut limited = 0;
    for _ in 0..20 {
        let a = c.send("GET", "/b/k", "", b"").await.unwrap();
        if a.status == 503 {
            assert!(String::from_utf8_lossy(&a.body).contains("<Code>SlowDown</Code>"));
            limited += 1;
        }
    }
    assert!((5..=15).contains(&limited), "{limited}");
    assert_eq!(proxy.stats().by_action["rate_limited"], limited);
    sleep(Duration::from_millis(1000)).await; // the bucket refills
    for _ in 0..4 {
        assert_eq!(c.send("GET", "/b/k", "", b"").await.unwrap().status, 200);
    }
    proxy.set_rate_limit(Some(1000.0));
    for _ in 0..20 {
        assert_eq!(c.send("GET", "/b/k", "", b"").await.unwrap().status, 200);
    }
}

#[tokio::test]
async fn latency_applies_in_parallel_and_in_flight_is_counted() {
    let (_up, proxy) = setup().await;
    proxy.set_latency(Duration::from_millis(200));
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..10 {
        let addr = proxy.addr();
        set.spawn(async move { get(addr, &format!("/b/{i}")).await.map(|a| a.status) });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap(), 200);
    }
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    let st = proxy.stats();
    assert_eq!((st.total, st.in_flight, st.max_in_flight), (10, 0, 10));
    proxy.reset_stats();
    assert_eq!(proxy.stats(), Default::default());
}

#[tokio::test]
async fn control_api_over_http() {
    let (up, proxy) = setup().await;
    let mut c = Client::new(proxy.addr()).await;
    let mut ctl = async |method: &str, path: &str, body: &str| {
        let a = c
            .send(
                method,
                &format!("/__faultproxy/{path}"),
                "",
                body.as_bytes(),
            )
            .await
            .unwrap();
        (
            a.status,
            serde_json::from_slice::<serde_json::Value>(&a.body).unwrap(),
        )
    };
    let rule = r#"{"method":"GET","path_contains":"/ctl","action":{"type":"status","status":500,"code":"InternalError"}}"#;
    let (status, v) = ctl("POST", "rules", rule).await;
    assert_eq!((status, v["id"].as_u64()), (200, Some(1)));
    assert_eq!(
        ctl("POST", "rules", r#"{"action":{"type":"explode"}}"#)
            .await
            .0,
        400
    );
    assert_eq!(
        ctl("GET", "rules", "").await.1[0]["rule"]["action"]["code"],
        "InternalError"
    );
    assert_eq!(get(proxy.addr(), "/b/ctl").await.unwrap().status, 500);
    let (_, stats) = ctl("GET", "stats", "").await;
    assert_eq!(
        (
            stats["total"].as_u64(),
            stats["by_action"]["status"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(ctl("POST", "latency", r#"{"ms":5}"#).await.0, 200);
    assert_eq!(proxy.latency(), Duration::from_millis(5));
    assert_eq!(
        ctl("POST", "rate_limit", r#"{"rps":50}"#).await.1["rps"],
        50.0
    );
    assert_eq!(
        ctl("POST", "rate_limit", r#"{"rps":null}"#).await.1["rps"],
        serde_json::Value::Null
    );
    assert_eq!(ctl("POST", "stats/reset", "").await.0, 200);
    assert_eq!(ctl("GET", "stats", "").await.1["total"], 0);
    assert_eq!(ctl("DELETE", "rules/1", "").await.0, 200);
    assert_eq!(ctl("DELETE", "rules/1", "").await.0, 404);
    assert_eq!(ctl("DELETE", "rules", "").await.0, 200);
    assert_eq!(ctl("GET", "nothing", "").await.0, 404);
    assert_eq!(get(proxy.addr(), "/b/ctl").await.unwrap().status, 200);
    assert_eq!(up.seen().len(), 1, "control requests are never forwarded");
}

#[tokio::test]
async fn upstream_down_answers_502() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(port).unwrap();
    assert_eq!(get(proxy.addr(), "/b/k").await.unwrap().status, 502);
    assert!(
        FaultProxy::start_on("0.0.0.0:0".parse().unwrap(), port).is_err(),
        "loopback only"
    );
}

/// `S3DB_FAULTPROXY_VERSITYGW=/path/to/versitygw`: an unsigned `GET /` through the proxy gets
/// versitygw's own answer, byte for byte.
#[tokio::test]
async fn versitygw_answer_arrives_intact() {
    let Ok(bin) = std::env::var("S3DB_FAULTPROXY_VERSITYGW") else {
        eprintln!("skipped: set S3DB_FAULTPROXY_VERSITYGW=/path/to/versitygw to run");
        return;
    };
    let dir = std::env::temp_dir().join(format!("faultproxy-vgw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _gw = Kill(
        std::process::Command::new(bin)
            .args([
                "--access",
                "test",
                "--secret",
                "testsecret",
                "--port",
                &addr.to_string(),
                "posix",
            ])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "versitygw did not start"
        );
        sleep(Duration::from_millis(100)).await;
    }
    let proxy = FaultProxy::start(addr).unwrap();
    let direct = get(addr, "/").await.unwrap();
    let proxied = get(proxy.addr(), "/").await.unwrap();
    // Same answer up to versitygw's per-request ids (same length, same end-to-end headers).
    let ids = |a: &Answer| {
        let body = String::from_utf8_lossy(&a.body).into_owned();
        let (head, tail) = (body.find("<RequestId>"), body.find("</HostId>"));
        let body = match (head, tail) {
            (Some(h), Some(t)) => format!("{}{}", &body[..h], &body[t..]),
            _ => body,
        };
        let hop_by_hop = |k: &&str| *k == "connection";
        let mut names: Vec<&str> = a
            .headers
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !hop_by_hop(k))
            .collect();
        names.sort();
        (a.status, a.body.len(), body, names.join(","))
    };
    assert_eq!(ids(&proxied), ids(&direct));
    assert!(
        direct.status >= 400,
        "unsigned request refused: {}",
        direct.status
    );
    let _ = std::fs::remove_dir_all(&dir);
}
