//! The HTTP client under aws-sdk-s3: hyper 1 with rustls, like the SDK's default client, but
//! with room for as many response headers as user metadata can hold (hyper stops at 100,
//! and the SDK's builder does not expose the limit), and with connect failures marked, since
//! a request that never left cannot have been applied.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// Response headers besides user metadata (status, length, etag, dates, request ids…).
const OTHER_HEADERS: usize = 128;

/// The request failed before a connection was established: nothing was sent.
#[derive(Debug, thiserror::Error)]
#[error("could not connect: {0}")]
pub(crate) struct NotSent(#[source] pub BoxError);

/// The TLS handshake failed (certificate, protocol): nothing was sent, and trying again
/// will not help.
#[derive(Debug, thiserror::Error)]
#[error("TLS handshake failed: {0}")]
pub(crate) struct TlsRefused(#[source] pub BoxError);

#[derive(Debug, Clone)]
pub(crate) struct S3HttpClient {
    connector: SharedHttpConnector,
}

#[derive(Debug)]
struct Connector {
    client: Client<HttpsConnector<TcpConnector>, SdkBody>,
}

static NATIVE_ROOTS: LazyLock<rustls::RootCertStore> = LazyLock::new(|| {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    if !found.errors.is_empty() {
        tracing::warn!(errors = ?found.errors, "loading native root certificates");
    }
    roots.add_parsable_certificates(found.certs);
    roots
});

impl S3HttpClient {
    /// `metadata_limit` bytes of user metadata make at most that many headers (a key is at
    /// least one byte). `tls`: load the system's root certificates (https endpoints).
    pub(crate) fn new(connect_timeout: Duration, metadata_limit: usize, tls: bool) -> Self {
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(connect_timeout));
        let roots = if tls {
            NATIVE_ROOTS.clone()
        } else {
            rustls::RootCertStore::empty()
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let https = HttpsConnector::from((tcp, config));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .http1_max_headers(metadata_limit + OTHER_HEADERS)
            .build(https);
        S3HttpClient {
            connector: SharedHttpConnector::new(Connector { client }),
        }
    }
}

impl HttpClient for S3HttpClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.connector.clone()
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(r) => r,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        let fut = self.client.request(request);
        HttpConnectorFuture::new(async move {
            match fut.await {
                Ok(resp) => HttpResponse::try_from(resp.map(SdkBody::from_body_1_x))
                    .map_err(|e| ConnectorError::other(e.into(), None)),
                Err(e) => Err(connector_error(e)),
            }
        })
    }
}

fn connector_error(err: hyper_util::client::legacy::Error) -> ConnectorError {
    if err.is_connect() {
        if error_chain(&err).any(|e| e.is::<rustls::Error>()) {
            return ConnectorError::user(Box::new(TlsRefused(err.into())));
        }
        return ConnectorError::io(Box::new(NotSent(err.into())));
    }
    let hyper = find_source::<hyper::Error>(&err);
    match hyper {
        Some(h) if h.is_timeout() => ConnectorError::timeout(err.into()),
        Some(h) if h.is_user() => ConnectorError::user(err.into()),
        Some(h) if h.is_parse() || h.is_parse_status() => ConnectorError::other(err.into(), None),
        _ => ConnectorError::io(err.into()),
    }
}

pub(crate) fn find_source<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    error_chain(err).find_map(|e| e.downcast_ref::<E>())
}

/// An error and its sources, entering the payload of each `io::Error` (whose `source()`
/// skips it).
fn error_chain<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err), |&e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}
