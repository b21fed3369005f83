//! truncate-data keeps the longest prefix that fits S3's 2 KB of metadata as sent, also when
//! the cut lands on a space (S3 trims header values, so such a value takes the larger `u:`
//! form) and with multi-byte characters.

mod common;

use common::{backends, connect};
use s3db::schema::codec::encode_header_value;
use serde_json::json;

const S3_METADATA_MAX: usize = 2048;

fn sent_size(meta: &s3db::storage::Metadata) -> usize {
    meta.iter().map(|(k, v)| k.len() + v.len()).sum()
}

#[tokio::test]
async fn the_longest_prefix_that_fits_is_kept() {
    for url in backends() {
        let db = connect(&url).await;
        let notes = db
            .create_resource_with(
                "notes",
                s3db::ResourceConfig::from_json(&json!({
                    "attributes": {"title": "string", "bio": "string"},
                    "behavior": "truncate-data",
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        let bio_key = notes.schema().short_key("bio").unwrap().to_string();
        let mut texts = Vec::new();
        for shift in 0..6 {
            texts.push(format!("{}{}", "x".repeat(shift), "word ".repeat(700)));
            texts.push(format!(
                "{}{}",
                "é".repeat(shift),
                "été à la mer ".repeat(300)
            ));
            texts.push(format!(
                "{}{}",
                "a".repeat(shift),
                "日本語 テキスト ".repeat(300)
            ));
        }
        for text in texts {
            let rec = notes
                .insert(json!({"title": "t", "bio": text}))
                .await
                .unwrap();
            let id = rec["id"].as_str().unwrap();
            let stored = notes.get(id).await.unwrap()["bio"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(text.starts_with(&stored), "a prefix of what was sent");
            assert!(!stored.ends_with(' '));
            let head = db
                .store()
                .head(&format!("resource=notes/data/id={id}"))
                .await
                .unwrap();
            let size = sent_size(&head.metadata);
            assert!(size <= S3_METADATA_MAX, "{size} bytes sent");
            // Longer prefixes do not fit as sent: what is kept is at most a few characters
            // short of the most that fits (s3db.js's own accounting keeps a small margin when
            // the encoding does not grow).
            let kept = stored.chars().count();
            for n in kept + 9..(kept + 60).min(text.chars().count()) {
                let prefix: String = text.chars().take(n).collect();
                let mut m = head.metadata.clone();
                m.insert(bio_key.clone(), encode_header_value(prefix.trim_end()));
                assert!(
                    sent_size(&m) > S3_METADATA_MAX,
                    "{url}: kept {kept} of {} characters where {n} fit",
                    text.chars().count()
                );
            }
        }
    }
}
