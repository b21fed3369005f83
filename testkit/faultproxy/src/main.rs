//! `s3db-faultproxy --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] [--latency-ms N] [--rate-limit R]`
//!
//! Prints `listening 127.0.0.1:NNNN` as its first stdout line, then serves until killed.
//! Control API on the same port (JSON):
//!   POST   /__faultproxy/rules        body: a rule          -> {"id": N}
//!   GET    /__faultproxy/rules                              -> [{"id": N, "rule": {...}}]
//!   DELETE /__faultproxy/rules                              (all)
//!   DELETE /__faultproxy/rules/N                            (one; 404 if unknown)
//!   POST   /__faultproxy/latency      body: {"ms": N}       (GET reads it)
//!   POST   /__faultproxy/rate_limit   body: {"rps": R|null} (GET reads it)
//!   GET    /__faultproxy/stats                              -> counters
//!   POST   /__faultproxy/stats/reset

use s3db_faultproxy::FaultProxy;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage: s3db-faultproxy --upstream 127.0.0.1:PORT [--listen 127.0.0.1:0] \
                     [--latency-ms N] [--rate-limit REQUESTS_PER_SECOND]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s3db-faultproxy: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut upstream: Option<SocketAddr> = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut latency_ms = 0u64;
    let mut rate: Option<f64> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--upstream" => upstream = Some(value.parse().map_err(|e| bad(&e))?),
            "--listen" => listen = value.parse().map_err(|e| bad(&e))?,
            "--latency-ms" => latency_ms = value.parse().map_err(|e| bad(&e))?,
            "--rate-limit" => rate = Some(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let upstream = upstream.ok_or("--upstream is required")?;
    let proxy =
        FaultProxy::start_on(listen, upstream).map_err(|e| format!("listen {listen}: {e}"))?;
    proxy.set_latency(Duration::from_millis(latency_ms));
    proxy.set_rate_limit(rate);
    let mut out = std::io::stdout();
    writeln!(out, "listening {}", proxy.addr())
        .and_then(|()| out.flush())
        .map_err(|e| e.to_string())?;
    loop {
        std::thread::park();
    }
}
