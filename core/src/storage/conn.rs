use std::fmt;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{Error, Result};

use super::Timeouts;

/// Where the data lives, parsed from a connection string (s3db.js syntax).
#[derive(Clone, PartialEq, Eq)]
pub enum Endpoint {
    Memory {
        bucket: String,
    },
    File {
        root: PathBuf,
    },
    S3 {
        /// `None` means AWS (`s3://`); `Some(origin)` a custom endpoint, path-style.
        endpoint: Option<String>,
        bucket: String,
        region: String,
        access_key: String,
        secret_key: String,
        session_token: Option<String>,
    },
}

/// A parsed connection string. Query options besides s3db.js's (`region`, `sessionToken`,
/// `metadataLimit`), on every scheme unless noted:
///
/// | option | unit | default | |
/// |---|---|---|---|
/// | `connectTimeout` | ms | 5000 | establishing a connection (S3) |
/// | `requestTimeout` | ms | 15000 | one attempt of one request; a `file://` writer waits half of it for a lock |
/// | `operationTimeout` | ms | 30000 | one operation, retries and backoff included |
/// | `fsync` | `true`/`false` | `false` | `file://` only: sync files and directories before a write returns |
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub endpoint: Endpoint,
    pub prefix: String,
    /// User-metadata budget the behaviors work with (s3db.js: `?metadataLimit=`, 8192 on R2,
    /// else 2047).
    pub metadata_limit: usize,
    /// `?connectTimeout=`, `?requestTimeout=`, `?operationTimeout=` (milliseconds).
    pub timeouts: Timeouts,
    /// `file://…?fsync=true`: every write is on disk (file and directory synced) before it
    /// returns. Without it writes are atomic and survive a killed process, not a power cut.
    pub fsync: bool,
}

pub const DEFAULT_METADATA_LIMIT: usize = 2047;

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Memory { bucket } => {
                f.debug_struct("Memory").field("bucket", bucket).finish()
            }
            Endpoint::File { root } => f.debug_struct("File").field("root", root).finish(),
            Endpoint::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                ..
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key", access_key)
                .field("secret_key", &"<redacted>")
                .finish_non_exhaustive(),
        }
    }
}

impl fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionString")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .field("metadata_limit", &self.metadata_limit)
            .field("timeouts", &self.timeouts)
            .field("fsync", &self.fsync)
            .finish()
    }
}

fn decode(s: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| Error::invalid("connection string: percent-encoded text is not UTF-8"))
}

/// Never echoes the input: it may hold credentials.
fn malformed(why: &str) -> Error {
    Error::invalid(format!("invalid connection string: {why}"))
}

impl ConnectionString {
    pub fn parse(input: &str) -> Result<ConnectionString> {
        if let Some(rest) = input.strip_prefix("file://") {
            let (path, query) = match rest.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (rest, None),
            };
            if path.is_empty() {
                return Err(malformed("file:// needs a path"));
            }
            let mut conn = ConnectionString {
                endpoint: Endpoint::File {
                    root: PathBuf::from(decode(path)?),
                },
                prefix: String::new(),
                metadata_limit: DEFAULT_METADATA_LIMIT,
                timeouts: Timeouts::default(),
                fsync: false,
            };
            for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                if k == "fsync" {
                    conn.fsync = match v.as_ref() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(malformed("fsync must be true or false")),
                    };
                } else {
                    timeout_option(&mut conn.timeouts, &k, &v)?;
                }
            }
            return Ok(conn);
        }
        let url = Url::parse(input).map_err(|e| malformed(&e.to_string()))?;
        let segments: Vec<&str> = url
            .path()
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        match url.scheme() {
            "memory" => {
                let host = url.host_str().unwrap_or("");
                let bucket = if host.is_empty() {
                    "test-bucket".to_string()
                } else {
                    decode(host)?
                };
                let mut conn = ConnectionString {
                    endpoint: Endpoint::Memory { bucket },
                    prefix: decode(url.path().trim_start_matches('/'))?,
                    metadata_limit: DEFAULT_METADATA_LIMIT,
                    timeouts: Timeouts::default(),
                    fsync: false,
                };
                for (k, v) in url.query_pairs() {
                    timeout_option(&mut conn.timeouts, &k, &v)?;
                }
                Ok(conn)
            }
            "s3" | "http" | "https" => {
                let access_key = decode(url.username())?;
                let secret_key = decode(url.password().unwrap_or(""))?;
                if access_key.is_empty() || secret_key.is_empty() {
                    return Err(malformed(
                        "credentials are required (KEY:SECRET@…); the default AWS chain is not built in",
                    ));
                }
                let mut timeouts = Timeouts::default();
                let mut region = "us-east-1".to_string();
                let mut session_token = None;
                let mut metadata_limit = if url
                    .host_str()
                    .unwrap_or("")
                    .contains(".r2.cloudflarestorage.com")
                {
                    8192
                } else {
                    DEFAULT_METADATA_LIMIT
                };
                for (k, v) in url.query_pairs() {
                    match k.as_ref() {
                        "region" => region = v.into_owned(),
                        "sessionToken" => session_token = Some(v.into_owned()),
                        "metadataLimit" => {
                            metadata_limit = v
                                .parse()
                                .ok()
                                .filter(|n| (64..=65_536).contains(n))
                                .ok_or_else(|| {
                                    malformed(
                                        "metadataLimit must be an integer between 64 and 65536",
                                    )
                                })?
                        }
                        other => timeout_option(&mut timeouts, other, &v)?,
                    }
                }
                let raw_path = url.path().trim_start_matches('/').to_string();
                let (endpoint, bucket, prefix) = if url.scheme() == "s3" {
                    let host = url.host_str().unwrap_or("");
                    let bucket = if host.is_empty() {
                        "s3db".to_string()
                    } else {
                        decode(host)?
                    };
                    (None, bucket, raw_path)
                } else {
                    let host = url.host_str().ok_or_else(|| malformed("missing host"))?;
                    let origin = match url.port() {
                        Some(p) => format!("{}://{}:{}", url.scheme(), host, p),
                        None => format!("{}://{}", url.scheme(), host),
                    };
                    let bucket = match segments.first() {
                        Some(b) => decode(b)?,
                        None => "s3db".to_string(),
                    };
                    let rest = raw_path
                        .split_once('/')
                        .map(|(_, r)| r.to_string())
                        .unwrap_or_default();
                    (Some(origin), bucket, rest)
                };
                Ok(ConnectionString {
                    endpoint: Endpoint::S3 {
                        endpoint,
                        bucket,
                        region,
                        access_key,
                        secret_key,
                        session_token,
                    },
                    prefix,
                    metadata_limit,
                    timeouts,
                    fsync: false,
                })
            }
            other => Err(malformed(&format!("unsupported scheme '{other}'"))),
        }
    }
}

/// Applies `connectTimeout`, `requestTimeout` or `operationTimeout` (milliseconds); other
/// options are ignored, as s3db.js ignores options its client does not read.
fn timeout_option(timeouts: &mut Timeouts, key: &str, value: &str) -> Result<()> {
    let slot = match key {
        "connectTimeout" => &mut timeouts.connect,
        "requestTimeout" => &mut timeouts.request,
        "operationTimeout" => &mut timeouts.operation,
        _ => return Ok(()),
    };
    let ms: u64 = value
        .parse()
        .ok()
        .filter(|ms| (1..=86_400_000).contains(ms))
        .ok_or_else(|| {
            malformed(&format!(
                "{key} must be a number of milliseconds between 1 and 86400000"
            ))
        })?;
    *slot = std::time::Duration::from_millis(ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_bucket_and_prefix() {
        let c = ConnectionString::parse("memory://vec-bucket/tenant/a").unwrap();
        assert_eq!(
            c.endpoint,
            Endpoint::Memory {
                bucket: "vec-bucket".into()
            }
        );
        assert_eq!(c.prefix, "tenant/a");
    }

    #[test]
    fn file_root() {
        let c = ConnectionString::parse("file:///tmp/x y").unwrap();
        assert_eq!(
            c.endpoint,
            Endpoint::File {
                root: "/tmp/x y".into()
            }
        );
        assert!(ConnectionString::parse("file://").is_err());
    }

    #[test]
    fn s3_credentials_are_decoded_and_hidden() {
        let c = ConnectionString::parse("s3://AKIA:secret%2Fkey@my-bucket/p/q?region=eu-west-1")
            .unwrap();
        match &c.endpoint {
            Endpoint::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
                ..
            } => {
                assert_eq!(endpoint, &None);
                assert_eq!(bucket, "my-bucket");
                assert_eq!(region, "eu-west-1");
                assert_eq!(access_key, "AKIA");
                assert_eq!(secret_key, "secret/key");
            }
            _ => panic!("not s3"),
        }
        assert_eq!(c.prefix, "p/q");
        assert!(!format!("{c:?}").contains("secret/key"));
    }

    #[test]
    fn http_path_style() {
        let c = ConnectionString::parse("http://k:s@127.0.0.1:9000/bkt/a/b").unwrap();
        match &c.endpoint {
            Endpoint::S3 {
                endpoint, bucket, ..
            } => {
                assert_eq!(endpoint.as_deref(), Some("http://127.0.0.1:9000"));
                assert_eq!(bucket, "bkt");
            }
            _ => panic!("not s3"),
        }
        assert_eq!(c.prefix, "a/b");
    }

    #[test]
    fn timeouts_and_fsync_from_the_query() {
        use std::time::Duration;
        let c = ConnectionString::parse(
            "http://k:s@127.0.0.1:9000/b?connectTimeout=250&requestTimeout=2000&operationTimeout=9000",
        )
        .unwrap();
        assert_eq!(
            c.timeouts,
            Timeouts {
                connect: Duration::from_millis(250),
                request: Duration::from_secs(2),
                operation: Duration::from_secs(9),
            }
        );
        let f = ConnectionString::parse("file:///tmp/d?fsync=true&operationTimeout=500").unwrap();
        assert_eq!(
            f.endpoint,
            Endpoint::File {
                root: "/tmp/d".into()
            }
        );
        assert!(f.fsync);
        assert_eq!(f.timeouts.operation, Duration::from_millis(500));
        let m = ConnectionString::parse("memory://b/p?requestTimeout=70").unwrap();
        assert_eq!(m.timeouts.request, Duration::from_millis(70));
        assert_eq!(
            ConnectionString::parse("file:///x").unwrap().timeouts,
            Timeouts::default()
        );
        assert!(ConnectionString::parse("file:///x?requestTimeout=soon").is_err());
        assert!(ConnectionString::parse("memory://b?operationTimeout=0").is_err());
        assert!(ConnectionString::parse("file:///x?fsync=maybe").is_err());
    }

    #[test]
    fn errors_do_not_echo_secrets() {
        let e = ConnectionString::parse("ftp://k:topsecret@h/b").unwrap_err();
        assert!(!e.to_string().contains("topsecret"));
        assert!(ConnectionString::parse("http://127.0.0.1:9/b").is_err());
    }
}
