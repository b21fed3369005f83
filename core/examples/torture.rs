//! Torture worker (Rust side of tests/torture/run.sh): contends with other processes on one
//! lock or one sequence and appends what it did to a shared log, one `write` per line on a
//! file opened with O_APPEND, so the log's line order is the order of the events.
//!
//! ```text
//! cargo run -p s3db --example torture -- lock|sequence URL N LOGFILE [NAME]
//! ```
//! * `lock`: N acquisitions of lock NAME (default `torture`); each critical section appends
//!   `<fencing_token> <pid> enter rust` and `<fencing_token> <pid> exit rust`.
//! * `sequence`: N calls of `next()` on sequence NAME; appends `<id> <pid> rust` per id.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Duration;

use s3db::{Database, LockOptions};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 || !matches!(args[0].as_str(), "lock" | "sequence") {
        eprintln!("usage: torture lock|sequence URL N LOGFILE [NAME]");
        std::process::exit(2);
    }
    let (mode, url, log) = (&args[0], &args[1], &args[3]);
    let n: usize = args[2].parse().expect("N is a number");
    let name = args.get(4).map_or("torture", String::as_str);
    if let Err(e) = run(mode, url, n, log, name).await {
        eprintln!("torture {mode} (pid {}): {e}", std::process::id());
        std::process::exit(1);
    }
}

async fn run(mode: &str, url: &str, n: usize, log: &str, name: &str) -> s3db::Result<()> {
    let db = Database::connect(url).await?;
    let pid = std::process::id();
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(log)
        .expect("open log");
    let mut append = |line: String| file.write_all(line.as_bytes()).expect("append to log");
    if mode == "lock" {
        let options = LockOptions {
            ttl: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
        };
        for _ in 0..n {
            let lock = db.lock(name, options).await?;
            let token = lock.fencing_token();
            append(format!("{token} {pid} enter rust\n"));
            tokio::time::sleep(Duration::from_micros(rand_micros())).await;
            append(format!("{token} {pid} exit rust\n"));
            lock.release().await?;
        }
    } else {
        let seq = db.sequence(name)?;
        for _ in 0..n {
            let id = seq.next().await?;
            append(format!("{id} {pid} rust\n"));
        }
    }
    Ok(())
}

/// 0–2 ms, from the clock's low bits (no extra dependency).
fn rand_micros() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    u64::from(nanos % 2000)
}
