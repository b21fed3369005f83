use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::{retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{Delete, MetadataDirective, ObjectIdentifier, ServerSideEncryption};
use aws_sdk_s3::Client;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::http::{find_source, NotSent, S3HttpClient};
use super::{
    md5_hex, ConnectionString, Endpoint, ListPage, Metadata, Object, ObjectHead, ObjectStore,
    PutRequest, StoreError, StoreResult, Timeouts, WriteCondition,
};

/// Any S3-compatible service through aws-sdk-s3 (path-style for custom endpoints).
///
/// Every GET is verified: the body length against `Content-Length`, and the MD5 of the body
/// against a single-part etag (32 hex digits, objects not encrypted with KMS or a customer
/// key). Writes whose request may have been sent without an answer coming back fail with
/// [`StoreError::OutcomeUnknown`].
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Arc<RwLock<Client>>,
    bucket: String,
    connect_timeout: Arc<Mutex<Duration>>,
    metadata_limit: usize,
    tls: bool,
    /// The environment routes the endpoint through a proxy: the SDK's own client then, which
    /// supports proxies but keeps hyper's limit of 100 response headers.
    proxied: bool,
}

const COPY_SOURCE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'/')
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

impl S3Store {
    pub fn new(conn: &ConnectionString) -> crate::Result<S3Store> {
        let Endpoint::S3 {
            endpoint,
            bucket,
            region,
            access_key,
            secret_key,
            session_token,
        } = &conn.endpoint
        else {
            return Err(crate::Error::invalid("not an S3 connection string"));
        };
        let creds = Credentials::new(
            access_key,
            secret_key,
            session_token.clone(),
            None,
            "s3db-connection-string",
        );
        let tls = endpoint.as_deref().is_none_or(|e| e.starts_with("https:"));
        let origin = endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let proxied = origin.parse::<hyper::Uri>().is_ok_and(|uri| {
            hyper_util::client::proxy::matcher::Matcher::from_env()
                .intercept(&uri)
                .is_some()
        });
        if proxied {
            tracing::warn!("S3 through a proxy: responses with over 100 headers cannot be read");
        }
        let connect = conn.timeouts.connect;
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.clone()))
            .credentials_provider(creds)
            .retry_config(RetryConfig::disabled())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .timeout_config(TimeoutConfig::builder().connect_timeout(connect).build());
        if !proxied {
            builder = builder.http_client(S3HttpClient::new(connect, conn.metadata_limit, tls));
        }
        if let Some(ep) = endpoint {
            builder = builder.endpoint_url(ep).force_path_style(true);
        }
        Ok(S3Store {
            client: Arc::new(RwLock::new(Client::from_conf(builder.build()))),
            bucket: bucket.clone(),
            connect_timeout: Arc::new(Mutex::new(connect)),
            metadata_limit: conn.metadata_limit,
            tls,
            proxied,
        })
    }

    /// Rebuilds the client around a new connect timeout (request and operation timeouts are
    /// the [`Store`](super::Store)'s).
    fn set_connect_timeout(&self, timeout: Duration) {
        let mut current = self
            .connect_timeout
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if *current == timeout {
            return;
        }
        *current = timeout;
        let mut client = self.client.write().unwrap_or_else(|p| p.into_inner());
        let mut config = client
            .config()
            .to_builder()
            .timeout_config(TimeoutConfig::builder().connect_timeout(timeout).build());
        if !self.proxied {
            config = config.http_client(S3HttpClient::new(timeout, self.metadata_limit, self.tls));
        }
        *client = Client::from_conf(config.build());
    }

    fn client(&self) -> Client {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Creates the bucket if it does not exist (for tests and fresh servers).
    pub async fn ensure_bucket(&self) -> StoreResult<()> {
        match self
            .client()
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.code() {
                Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists") => Ok(()),
                _ => Err(classify(e, false)),
            },
        }
    }
}

/// Sorts a failed request into the store's outcomes. `write`: the request changes the
/// object, so a failure after it may have been sent leaves its outcome unknown.
fn classify<E, R>(err: SdkError<E, R>, write: bool) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    let status = err.raw_response().map(|r| r.status_code());
    let code = err.code().map(str::to_string);
    let maybe_applied = |why: String| {
        if write {
            StoreError::OutcomeUnknown(why)
        } else {
            StoreError::Transient(why)
        }
    };
    match (&err, status, code.as_deref()) {
        (_, _, Some("NoSuchBucket")) => StoreError::Fatal("the bucket does not exist".into()),
        (_, Some(404), _) | (_, _, Some("NoSuchKey")) | (_, _, Some("NotFound")) => {
            StoreError::NotFound
        }
        (_, Some(412), _) | (_, _, Some("PreconditionFailed")) => StoreError::PreconditionFailed,
        (_, Some(409), _) | (_, _, Some("ConditionalRequestConflict")) => StoreError::Conflict,
        (_, Some(429), _) | (_, Some(503), _) | (_, _, Some("SlowDown")) => {
            StoreError::Throttled(describe(&err))
        }
        (_, _, Some("RequestTimeout")) => StoreError::Transient(describe(&err)),
        (_, Some(501), _) => StoreError::Fatal(describe(&err)),
        (_, Some(s), _) if s >= 500 => maybe_applied(describe(&err)),
        (SdkError::DispatchFailure(d), _, _) => {
            let connect = find_source::<NotSent>(&err).is_some()
                || find_source::<hyper_util::client::legacy::Error>(&err)
                    .is_some_and(|e| e.is_connect());
            if find_source::<rustls::Error>(&err).is_some() {
                StoreError::Fatal(describe(&err))
            } else if connect {
                StoreError::Transient(describe(&err))
            } else if d.is_user() || (d.is_other() && !write) {
                StoreError::Fatal(describe(&err))
            } else {
                maybe_applied(describe(&err))
            }
        }
        (SdkError::TimeoutError(_), _, _) | (SdkError::ResponseError(_), _, _) => {
            maybe_applied(describe(&err))
        }
        _ => StoreError::Fatal(describe(&err)),
    }
}

fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        _ => format!(
            "{}",
            aws_smithy_types::error::display::DisplayErrorContext(err)
        ),
    }
}

/// An S3 etag that is the MD5 of the body: single-part, no KMS or customer-key encryption.
fn md5_etag<'a>(
    etag: &'a str,
    sse: Option<&ServerSideEncryption>,
    customer_key: bool,
) -> Option<&'a str> {
    let hex = etag.trim_matches('"');
    let kms = matches!(
        sse,
        Some(ServerSideEncryption::AwsKms) | Some(ServerSideEncryption::AwsKmsDsse)
    );
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) && !kms && !customer_key)
        .then_some(hex)
}

pub trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn metadata_of(m: Option<&std::collections::HashMap<String, String>>) -> Metadata {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, key: &str) -> StoreResult<Object> {
        let out = self
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, false))?;
        let declared = out.content_length();
        let md5 = md5_etag(
            out.e_tag().unwrap_or_default(),
            out.server_side_encryption(),
            out.sse_customer_algorithm().is_some(),
        )
        .map(str::to_string);
        let head = ObjectHead {
            metadata: metadata_of(out.metadata()),
            content_type: out.content_type().map(str::to_string),
            etag: out.e_tag().unwrap_or_default().to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: out
                .last_modified()
                .map(|t| t.to_millis().unwrap_or(0))
                .unwrap_or(0),
        };
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Transient(format!("reading body: {e}")))?
            .into_bytes();
        if let Some(n) = declared.filter(|n| *n as usize != body.len()) {
            return Err(StoreError::Integrity(format!(
                "{key}: {} body bytes received, {n} declared",
                body.len()
            )));
        }
        if let Some(want) = md5 {
            let got = md5_hex(&body);
            if got != want.to_ascii_lowercase() {
                return Err(StoreError::Integrity(format!(
                    "{key}: body MD5 {got} does not match etag {want}"
                )));
            }
        }
        Ok(Object { head, body })
    }

    async fn head(&self, key: &str) -> StoreResult<ObjectHead> {
        let out = self
            .client()
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify(e, false))?;
        Ok(ObjectHead {
            metadata: metadata_of(out.metadata()),
            content_type: out.content_type().map(str::to_string),
            etag: out.e_tag().unwrap_or_default().to_string(),
            size: out.content_length().unwrap_or(0).max(0) as u64,
            last_modified: out
                .last_modified()
                .map(|t| t.to_millis().unwrap_or(0))
                .unwrap_or(0),
        })
    }

    async fn put(&self, key: &str, req: PutRequest) -> StoreResult<String> {
        let mut op = self
            .client()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(req.body.into())
            .set_metadata(Some(req.metadata.into_iter().collect()))
            .set_content_type(req.content_type);
        match req.condition {
            WriteCondition::None => {}
            WriteCondition::IfNoneMatch => op = op.if_none_match("*"),
            WriteCondition::IfMatch(etag) => op = op.if_match(etag),
        }
        let out = op.send().await.map_err(|e| classify(e, true))?;
        Ok(out.e_tag().unwrap_or_default().to_string())
    }

    async fn copy(
        &self,
        src: &str,
        dst: &str,
        metadata: Metadata,
        content_type: Option<String>,
        condition: WriteCondition,
    ) -> StoreResult<String> {
        let mut op = self
            .client()
            .copy_object()
            .bucket(&self.bucket)
            .key(dst)
            .copy_source(format!(
                "{}/{}",
                self.bucket,
                utf8_percent_encode(src, COPY_SOURCE)
            ))
            .metadata_directive(MetadataDirective::Replace)
            .set_metadata(Some(metadata.into_iter().collect()))
            .set_content_type(content_type);
        match condition {
            WriteCondition::None => {}
            WriteCondition::IfNoneMatch => op = op.if_none_match("*"),
            WriteCondition::IfMatch(etag) => op = op.if_match(etag),
        }
        let out = op.send().await.map_err(|e| classify(e, true))?;
        Ok(out
            .copy_object_result()
            .and_then(|r| r.e_tag())
            .unwrap_or_default()
            .to_string())
    }

    async fn delete(&self, key: &str, if_match: Option<&str>) -> StoreResult<()> {
        self.client()
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(e, true))?;
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> StoreResult<Vec<(String, StoreError)>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Fatal(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StoreError::Fatal(e.to_string()))?;
        let out = self
            .client()
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(e, true))?;
        Ok(out
            .errors()
            .iter()
            .map(|e| {
                (
                    e.key().unwrap_or_default().to_string(),
                    StoreError::Fatal(e.message().unwrap_or("delete failed").to_string()),
                )
            })
            .collect())
    }

    async fn list(
        &self,
        prefix: &str,
        continuation: Option<&str>,
        max_keys: usize,
    ) -> StoreResult<ListPage> {
        let out = self
            .client()
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(continuation.map(str::to_string))
            .max_keys(max_keys.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| classify(e, false))?;
        let keys = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        let next = if out.is_truncated().unwrap_or(false) {
            out.next_continuation_token().map(str::to_string)
        } else {
            None
        };
        Ok(ListPage { keys, next })
    }

    fn set_timeouts(&self, timeouts: &Timeouts) {
        self.set_connect_timeout(timeouts.connect);
    }
}
