//! Checks against what s3db.js 21.6.2 stored (tests/vectors).

use s3db::schema::codec::{decode_value, encode_value};
use serde_json::Value;

fn vector(name: &str) -> Value {
    let dir = std::env::var("S3DB_VECTORS")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors").to_string());
    let text = std::fs::read_to_string(format!("{dir}/{name}"))
        .unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Every string in `unicode.json` encodes to the stored bytes and decodes back.
#[test]
fn metadata_value_encoding_matches_unicode_vector() {
    let v = vector("unicode.json");
    let obj = v["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == "resource=texts/data/id=t1")
        .unwrap();
    let stored = obj["metadata"].as_object().unwrap();
    let decoded = obj["metadataDecoded"].as_object().unwrap();
    let mut checked = 0;
    for (k, raw) in stored.iter().filter(|(k, _)| k.as_str() != "_v") {
        let raw = raw.as_str().unwrap();
        match &decoded[k] {
            Value::String(plain) => {
                assert_eq!(encode_value(plain), raw, "encode {k}");
                assert_eq!(
                    decode_value(raw).as_deref(),
                    Some(plain.as_str()),
                    "decode {k}"
                );
                checked += 1;
            }
            _ => assert_eq!(
                decode_value(raw),
                None,
                "{k}: null/undefined read as absent"
            ),
        }
    }
    assert!(checked >= 20, "{checked}");
}
