//! Exit codes and how failures are reported (`error[CODE]: message` on stderr).
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | local failure: reading or writing a local file or stream |
//! | 2 | usage: bad arguments, no connection string |
//! | 3 | import finished, but some records failed (each one reported) |
//! | 10 + status | an engine error, by `s3db::ErrorKind` (`ErrorKind::status()`: 11 NOT_FOUND … 20 STORAGE) |

use s3db::ErrorKind;

pub const OK: u8 = 0;
pub const LOCAL: u8 = 1;
pub const USAGE: u8 = 2;
pub const PARTIAL: u8 = 3;
/// An engine error exits with `ENGINE_BASE + ErrorKind::status()`.
pub const ENGINE_BASE: i32 = 10;

pub fn engine_code(kind: ErrorKind) -> u8 {
    (ENGINE_BASE + kind.status()).clamp(0, 255) as u8
}

/// What an error kind means, by its stable code (so kinds added to the engine later still
/// get a line, and the match does not break when one is added).
fn describe_kind(kind: ErrorKind) -> &'static str {
    match kind.code() {
        "NOT_FOUND" => "no such record, resource, partition or sequence",
        "ALREADY_EXISTS" => "a record with that id already exists",
        "PRECONDITION_FAILED" => "the object changed since it was read",
        "CONFLICT" => "kept losing races with concurrent writers",
        "VALIDATION" => "the record or definition breaks the schema",
        "INVALID_ARGUMENT" => "an argument (JSON, id, name, filter, connection string) is invalid",
        "LOCK_NOT_ACQUIRED" => "the lock is held by another holder",
        "LOCK_LOST" => "the lock was lost (expired, taken over)",
        "CORRUPT" => "stored data cannot be decoded",
        "STORAGE" => "the object store failed or cannot be reached",
        "OUTCOME_UNKNOWN" => "a write may or may not have been applied (its response was lost)",
        _ => "engine error",
    }
}

/// The exit-code table, for `--help` (and checked against cli/README.md by the tests).
pub fn help_text() -> String {
    let mut s = String::from("Exit codes:\n");
    s.push_str(&format!("  {OK:>3}  success\n"));
    s.push_str(&format!(
        "  {LOCAL:>3}  local failure: reading or writing a local file or stream\n"
    ));
    s.push_str(&format!(
        "  {USAGE:>3}  usage: bad arguments, no connection string\n"
    ));
    s.push_str(&format!(
        "  {PARTIAL:>3}  import finished but some records failed (each reported on stderr)\n"
    ));
    for kind in ErrorKind::ALL {
        s.push_str(&format!(
            "  {:>3}  {}: {}\n",
            engine_code(kind),
            kind.code(),
            describe_kind(kind)
        ));
    }
    s.push_str("Errors are printed to stderr as `error[CODE]: message`.");
    s
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// An error of the engine: its kind decides the exit code.
    Engine(s3db::Error),
    /// Bad arguments the parser could not catch.
    Usage(String),
    /// A local file or stream failed.
    Local(String),
    /// Some imported records failed; each was reported already.
    Partial { failed: u64, total: u64 },
    /// stdout was closed by the reader (`s3db export r | head`): stop quietly.
    BrokenPipe,
}

impl From<s3db::Error> for Failure {
    fn from(e: s3db::Error) -> Self {
        Failure::Engine(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::BrokenPipe
        } else {
            Failure::Local(e.to_string())
        }
    }
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Engine(e) => engine_code(e.kind()),
            Failure::Usage(_) => USAGE,
            Failure::Local(_) => LOCAL,
            Failure::Partial { .. } => PARTIAL,
            Failure::BrokenPipe => OK,
        }
    }

    /// Prints the failure to stderr (nothing for a closed pipe).
    pub fn report(&self) {
        match self {
            Failure::Engine(e) => {
                eprintln!("error[{}]: {}", e.kind().code(), e.message());
                if let Some(details) = e.details() {
                    eprintln!("  details: {details}");
                }
            }
            Failure::Usage(m) => eprintln!("error[USAGE]: {m}"),
            Failure::Local(m) => eprintln!("error[LOCAL]: {m}"),
            Failure::Partial { failed, total } => {
                eprintln!("error[PARTIAL]: {failed} of {total} records failed")
            }
            Failure::BrokenPipe => {}
        }
    }
}
