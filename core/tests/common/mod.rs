#![allow(dead_code)]

use s3db::Database;

pub fn random_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        s3db::ids::generate_id(10).replace(['-', '_'], "x")
    )
}

/// memory, file and (when `S3DB_TEST_S3_URL` is set) a real S3 server, each fresh.
pub fn backends() -> Vec<String> {
    let mut urls = vec![
        format!("memory://{}", random_name("bucket-")),
        format!("file://{}", tempdir()),
    ];
    if let Ok(s3) = std::env::var("S3DB_TEST_S3_URL") {
        urls.push(format!(
            "{}/{}",
            s3.trim_end_matches('/'),
            random_name("t-")
        ));
    }
    urls
}

/// The secret key in `S3DB_TEST_S3_URL` (`http://KEY:SECRET@host:port/bucket`), which the
/// server checks: tests assert it never shows.
pub fn s3_secret(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let userinfo = rest.split_once('@').expect("credentials in the S3 url").0;
    userinfo.split_once(':').expect("KEY:SECRET").1.to_string()
}

/// Whether the store keeps `_`-prefixed user metadata (real S3 does; moto's server drops
/// keys containing `_`), probed with a throwaway object.
pub async fn keeps_underscored_metadata(db: &Database) -> bool {
    let store = db.store();
    let key = format!("probe/{}", random_name("u-"));
    let mut metadata = s3db::storage::Metadata::new();
    metadata.insert("_probe".into(), "1".into());
    let req = s3db::storage::PutRequest {
        metadata,
        ..Default::default()
    };
    store.put(&key, req).await.unwrap();
    let kept = store
        .head(&key)
        .await
        .unwrap()
        .metadata
        .contains_key("_probe");
    store.delete(&key, None).await.unwrap();
    kept
}

pub fn tempdir() -> String {
    let dir = tempfile::Builder::new()
        .prefix("s3db-test-")
        .tempdir()
        .unwrap();
    dir.keep().to_string_lossy().into_owned()
}

pub async fn connect(url: &str) -> Database {
    Database::connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}
pub mod tamper;
