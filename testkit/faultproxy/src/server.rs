//! The connection loop: a small HTTP/1.1 reader on the client side, hyper's client upstream.
//! Request and response bodies are buffered whole (fine for tests, and what truncation and
//! corruption need anyway). A failed or misbehaving connection only ends that connection.

use crate::rules::{percent_decode, Probe};
use crate::{Action, Shared, CONTROL_PREFIX};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::sleep;

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1 << 30;

pub(crate) struct Req {
    method: Method,
    target: String,
    close: bool,
    headers: HeaderMap,
    body: Bytes,
}

pub(crate) struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

enum Next {
    KeepAlive,
    Close,
    Reset,
}

enum Failure {
    Connect(io::Error),
    Broken,
}

pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                let conn = Conn {
                    io: BufReader::new(stream),
                    shared: shared.clone(),
                    upstream: None,
                };
                tokio::spawn(conn.run());
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => sleep(Duration::from_millis(20)).await,
        }
    }
}

struct Conn {
    io: BufReader<TcpStream>,
    shared: Arc<Shared>,
    upstream: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    async fn run(mut self) {
        while let Ok(Some(req)) = read_request(&mut self.io).await {
            match self.handle(req).await {
                Next::KeepAlive => {}
                Next::Close => {
                    let _ = self.io.get_mut().shutdown().await;
                    return;
                }
                Next::Reset => {
                    // SO_LINGER 0: the drop sends RST, the client sees "connection reset".
                    let _ = self.io.get_ref().set_zero_linger();
                    return;
                }
            }
        }
    }

    async fn handle(&mut self, req: Req) -> Next {
        let answer = match req.target.strip_prefix(CONTROL_PREFIX) {
            Some(rest) => Ok(crate::control::handle(
                &self.shared,
                &req.method,
                rest,
                &req.body,
            )),
            None => {
                let shared = self.shared.clone();
                let _in_flight = shared.begin(req.method.as_str());
                self.proxy(&req).await
            } // no longer in flight once the answer is being written
        };
        match answer {
            Ok(resp) => self.respond(&req, resp).await,
            Err(next) => next,
        }
    }

    /// The answer to send, or how to end the connection instead.
    async fn proxy(&mut self, req: &Req) -> Result<Resp, Next> {
        let shared = self.shared.clone();
        let latency = shared.latency();
        if !latency.is_zero() {
            sleep(latency).await;
        }
        if shared.rate_limited() {
            shared.count_action("rate_limited");
            return Ok(synthetic(503, Some("SlowDown"), None, &req.target));
        }
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        let path = percent_decode(path);
        let method = req.method.as_str();
        let probe = Probe {
            method,
            path: &path,
            query,
            headers: &req.headers,
        };
        let action = crate::lock(&shared.rules).decide(&probe);
        if let Some(a) = &action {
            shared.count_action(a.name());
        }
        match &action {
            Some(Action::ResetBefore) => return Err(Next::Reset),
            Some(Action::Status { status, code, body }) => {
                return Ok(synthetic(
                    *status,
                    code.as_deref(),
                    body.as_deref(),
                    &req.target,
                ));
            }
            Some(Action::Delay { ms }) => sleep(Duration::from_millis(*ms)).await,
            _ => {}
        }
        let mut resp = match self.forward(req).await {
            Ok(resp) => resp,
            Err(Failure::Connect(e)) => {
                let msg = format!("s3db-faultproxy: upstream {}: {e}", shared.upstream);
                return Ok(synthetic(502, Some("BadGateway"), Some(&msg), &req.target));
            }
            Err(Failure::Broken) => return Err(Next::Reset),
        };
        match action {
            Some(Action::ResetAfter) => return Err(Next::Reset),
            Some(Action::TruncateBody { keep }) => {
                let keep = keep.unwrap_or(resp.body.len() / 2).min(resp.body.len());
                resp.body.truncate(keep);
            }
            Some(Action::CorruptBody) => resp.body = resp.body.iter().map(|b| b ^ 1).collect(),
            Some(Action::Stall { ms }) if !self.hold(ms).await => return Err(Next::Close),
            _ => {}
        }
        Ok(resp)
    }

    /// Waits `ms` (or forever); false if the client closed the connection meanwhile.
    async fn hold(&mut self, ms: Option<u64>) -> bool {
        let wait = async {
            match ms {
                Some(ms) => sleep(Duration::from_millis(ms)).await,
                None => std::future::pending().await,
            }
        };
        let gone = async {
            match self.io.fill_buf().await {
                Ok(buf) if !buf.is_empty() => std::future::pending().await,
                _ => {}
            }
        };
        tokio::select! {
            _ = wait => true,
            _ = gone => false,
        }
    }

    async fn forward(&mut self, req: &Req) -> Result<Resp, Failure> {
        let mut request = Request::builder()
            .method(req.method.clone())
            .uri(req.target.as_str())
            .body(Full::new(req.body.clone()))
            .map_err(|_| Failure::Broken)?;
        *request.headers_mut() = req.headers.clone();
        for attempt in 0..2 {
            if self.upstream.as_ref().is_none_or(|s| s.is_closed()) {
                self.upstream = Some(
                    connect(self.shared.upstream)
                        .await
                        .map_err(Failure::Connect)?,
                );
            }
            let Some(sender) = self.upstream.as_mut() else {
                return Err(Failure::Broken);
            };
            if sender.ready().await.is_err() {
                self.upstream = None;
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(resp) => {
                    let (parts, body) = resp.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map_err(|_| Failure::Broken)?
                        .to_bytes();
                    return Ok(Resp {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    });
                }
                // Not sent (the kept-alive upstream connection had just closed): retry once on
                // a fresh connection; anything else may have reached the server.
                Err(mut e) => match e.take_message() {
                    Some(r) if attempt == 0 => {
                        request = r;
                        self.upstream = None;
                    }
                    _ => return Err(Failure::Broken),
                },
            }
        }
        Err(Failure::Broken)
    }

    async fn respond(&mut self, req: &Req, mut resp: Resp) -> Next {
        let s = resp.status;
        let bodyless = req.method == Method::HEAD
            || s.is_informational()
            || s == StatusCode::NO_CONTENT
            || s == StatusCode::NOT_MODIFIED;
        for h in [
            header::CONNECTION,
            header::TRANSFER_ENCODING,
            HeaderName::from_static("keep-alive"),
        ] {
            resp.headers.remove(h);
        }
        if !bodyless {
            resp.headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(resp.body.len()));
        }
        if req.close {
            resp.headers
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let reason = s.canonical_reason().unwrap_or("Unknown");
        let mut out = format!("HTTP/1.1 {} {reason}\r\n", s.as_u16()).into_bytes();
        for (name, value) in &resp.headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !bodyless {
            out.extend_from_slice(&resp.body);
        }
        match self.io.get_mut().write_all(&out).await {
            Err(_) => Next::Reset,
            Ok(()) if req.close => Next::Close,
            Ok(()) => Next::KeepAlive,
        }
    }
}

async fn connect(addr: std::net::SocketAddr) -> io::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// An answer made up by the proxy; with a `code` and no `body`, S3's XML error document.
fn synthetic(status: u16, code: Option<&str>, body: Option<&str>, target: &str) -> Resp {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut headers = HeaderMap::new();
    headers.insert("x-amz-request-id", HeaderValue::from_static("FAULTPROXY"));
    let body = match (body, code) {
        (Some(b), _) => b.to_string(),
        (None, Some(code)) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
            let message = match code {
                "SlowDown" => "Please reduce your request rate.",
                _ => "Injected by s3db-faultproxy.",
            };
            let resource = xml_escape(target.split('?').next().unwrap_or(""));
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{message}</Message>\
                 <Resource>{resource}</Resource><RequestId>FAULTPROXY</RequestId></Error>",
                xml_escape(code)
            )
        }
        (None, None) => String::new(),
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Resp {
        status,
        headers,
        body: Bytes::from(body),
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one request (head and whole body); `None` on a clean end of the connection.
async fn read_request(io: &mut BufReader<TcpStream>) -> io::Result<Option<Req>> {
    let mut head = Vec::new();
    loop {
        let room = (MAX_HEAD + 1).saturating_sub(head.len()) as u64;
        if (&mut *io).take(room).read_until(b'\n', &mut head).await? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(invalid("eof in head"))
            };
        }
        if head == b"\r\n" || head == b"\n" {
            head.clear(); // stray empty line between requests
        } else if head.ends_with(b"\r\n\r\n") || head.ends_with(b"\n\n") {
            break;
        } else if head.len() > MAX_HEAD {
            return Err(invalid("head too large"));
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut slots);
    if !matches!(parsed.parse(&head), Ok(httparse::Status::Complete(_))) {
        return Err(invalid("bad request head"));
    }
    let method = Method::from_bytes(parsed.method.unwrap_or("").as_bytes())
        .map_err(|_| invalid("method"))?;
    let target = parsed.path.unwrap_or("/").to_string();
    let mut headers = HeaderMap::new();
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| invalid("header name"))?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| invalid("header value"))?;
        headers.append(name, value);
    }
    let has = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let close = if parsed.version == Some(0) {
        !has(header::CONNECTION, "keep-alive")
    } else {
        has(header::CONNECTION, "close")
    };
    let chunked = has(header::TRANSFER_ENCODING, "chunked");
    let length = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| invalid("length"))?,
        None => 0,
    };
    if (chunked || length > 0) && has(header::EXPECT, "100-continue") {
        io.get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let body = if chunked {
        read_chunked(io).await?
    } else {
        read_exact(io, length).await?
    };
    Ok(Some(Req {
        method,
        target,
        close,
        headers,
        body: Bytes::from(body),
    }))
}

async fn read_exact(io: &mut BufReader<TcpStream>, n: usize) -> io::Result<Vec<u8>> {
    if n > MAX_BODY {
        return Err(invalid("body too large"));
    }
    let mut buf = vec![0; n];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_chunked(io: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        (&mut *io).take(4096).read_line(&mut line).await?;
        let size = line.trim().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| invalid("chunk size"))?;
        if size == 0 {
            loop {
                line.clear(); // trailers, up to the empty line
                if (&mut *io)
                    .take(MAX_HEAD as u64)
                    .read_line(&mut line)
                    .await?
                    == 0
                    || line.trim().is_empty()
                {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("body too large"));
        }
        body.extend_from_slice(&read_exact(io, size).await?);
        read_exact(io, 2).await?; // CRLF after the data
    }
}
