//! Quickstart: `cargo run -p s3db --example quickstart [URL]` (default: a temp `file://` store).

use std::time::Duration;

use s3db::{Database, LockOptions};
use serde_json::json;

#[tokio::main]
async fn main() -> s3db::Result<()> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("S3DB_URL").ok())
        .unwrap_or_else(|| {
            let dir =
                std::env::temp_dir().join(format!("s3db-quickstart-rust-{}", std::process::id()));
            format!("file://{}", dir.display())
        });
    let db = Database::connect(&url).await?;
    println!("[rust] connected to {url}");

    let users = db
        .create_resource(
            "users",
            &json!({"name": "string|required", "email": "string"}),
        )
        .await?;
    let ada = users
        .insert(json!({"name": "Ada Lovelace", "email": "ada@example.com"}))
        .await?;
    let id = ada["id"].as_str().unwrap_or_default().to_string();
    println!("[rust] inserted {ada}");
    println!("[rust] read     {}", users.get(&id).await?);
    println!(
        "[rust] updated  {}",
        users
            .update(&id, json!({"email": "ada@analytical.engine"}))
            .await?
    );
    println!("[rust] count    {}", users.count().await?);

    let options = LockOptions {
        ttl: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
    };
    let token = db
        .with_lock("quickstart", options, |lock| async move {
            Ok(lock.fencing_token())
        })
        .await?;
    println!("[rust] lock 'quickstart' held with fencing token {token}");

    let seq = db.sequence("invoices")?;
    let values = [seq.next().await?, seq.next().await?, seq.next().await?];
    println!("[rust] sequence 'invoices' gave {values:?}");
    println!(
        "[rust] requests {}",
        serde_json::to_string(&db.stats()).unwrap_or_default()
    );
    Ok(())
}
