use std::fmt;
use std::path::PathBuf;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::error::{Error, Result};

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

#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionString {
    pub endpoint: Endpoint,
    pub prefix: String,
    /// User-metadata budget the behaviors work with (s3db.js: `?metadataLimit=`, 8192 on R2,
    /// else 2047).
    pub metadata_limit: usize,
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
            if rest.is_empty() {
                return Err(malformed("file:// needs a path"));
            }
            return Ok(ConnectionString {
                endpoint: Endpoint::File {
                    root: PathBuf::from(decode(rest)?),
                },
                prefix: String::new(),
                metadata_limit: DEFAULT_METADATA_LIMIT,
            });
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
                Ok(ConnectionString {
                    endpoint: Endpoint::Memory { bucket },
                    prefix: decode(url.path().trim_start_matches('/'))?,
                    metadata_limit: DEFAULT_METADATA_LIMIT,
                })
            }
            "s3" | "http" | "https" => {
                let access_key = decode(url.username())?;
                let secret_key = decode(url.password().unwrap_or(""))?;
                if access_key.is_empty() || secret_key.is_empty() {
                    return Err(malformed(
                        "credentials are required (KEY:SECRET@…); the default AWS chain is not built in",
                    ));
                }
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
                        _ => {}
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
                })
            }
            other => Err(malformed(&format!("unsupported scheme '{other}'"))),
        }
    }
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
    fn errors_do_not_echo_secrets() {
        let e = ConnectionString::parse("ftp://k:topsecret@h/b").unwrap_err();
        assert!(!e.to_string().contains("topsecret"));
        assert!(ConnectionString::parse("http://127.0.0.1:9/b").is_err());
    }
}
