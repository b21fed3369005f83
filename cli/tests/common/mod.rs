//! Runs the built `s3db` binary against `file://` stores in temporary directories.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct Store {
    pub dir: tempfile::TempDir,
    pub url: String,
}

/// Where test stores live: `S3DB_CLI_TEST_TMPDIR`, else `/dev/shm` when it is there (a
/// 10,000-record `file://` store is ~80,000 small files: on a disk mounted with `discard`
/// removing them takes minutes), else the system temp dir.
pub fn temp_root() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("S3DB_CLI_TEST_TMPDIR") {
        return dir.into();
    }
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir()
        && tempfile::tempdir_in(shm)
            .map(|d| d.close().is_ok())
            .unwrap_or(false)
    {
        return shm.to_path_buf();
    }
    std::env::temp_dir()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("s3db-cli-test-")
        .tempdir_in(temp_root())
        .expect("temp dir")
}

impl Store {
    pub fn new() -> Store {
        let dir = tempdir();
        let url = format!("file://{}", dir.path().display());
        Store { dir, url }
    }

    /// Runs `s3db ARGS` on this store (through `S3DB_CONNECTION`).
    pub fn run(&self, args: &[&str]) -> Run {
        run_with(Some(&self.url), args, None)
    }

    /// Runs `s3db ARGS` with `stdin` piped in.
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_with(Some(&self.url), args, Some(stdin))
    }

    /// Runs and expects exit code 0; returns stdout parsed as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let r = self.run(args);
        r.ok();
        r.json()
    }

    pub fn connect(&self) -> s3db::Database {
        rt().block_on(s3db::Database::connect(&self.url))
            .expect("connect")
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

pub struct Run {
    pub args: Vec<String>,
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn ok(&self) -> &Run {
        assert_eq!(
            self.code(),
            0,
            "s3db {:?} failed:\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        self
    }
    /// Expects `code` and an `error[KIND]: …` line on stderr.
    pub fn fails(&self, code: i32, kind: &str) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "s3db {:?}: exit code\nstdout: {}\nstderr: {}",
            self.args,
            self.stdout(),
            self.stderr()
        );
        let prefix = format!("error[{kind}]: ");
        assert!(
            self.stderr().lines().any(|l| l.starts_with(&prefix)),
            "s3db {:?}: no {prefix:?} line in stderr: {}",
            self.args,
            self.stderr()
        );
        self
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.out.stdout).unwrap_or_else(|e| {
            panic!(
                "s3db {:?}: stdout is not one JSON document ({e}): {}",
                self.args,
                self.stdout()
            )
        })
    }
}

pub fn run_with(url: Option<&str>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3db"));
    cmd.args(args)
        .env_remove("S3DB_CONNECTION")
        .env_remove("S3DB_PASSPHRASE")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(url) = url {
        cmd.env("S3DB_CONNECTION", url);
    }
    let mut child = cmd.spawn().expect("spawn s3db");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        let text = text.to_string();
        // Written from a thread so a large input cannot deadlock against a full stdout.
        std::thread::spawn(move || {
            let _ = input.write_all(text.as_bytes());
        });
    }
    let out = child.wait_with_output().expect("wait s3db");
    Run {
        args: args.iter().map(|s| s.to_string()).collect(),
        out,
    }
}
