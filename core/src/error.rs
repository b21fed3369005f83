use std::fmt;

/// Stable, machine-readable error kinds shared by every binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    PreconditionFailed,
    Conflict,
    Validation,
    InvalidArgument,
    LockNotAcquired,
    LockLost,
    Corrupt,
    Storage,
    /// A write may or may not have been applied (its response was lost and reading back
    /// could not tell).
    OutcomeUnknown,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 11] = [
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::PreconditionFailed,
        ErrorKind::Conflict,
        ErrorKind::Validation,
        ErrorKind::InvalidArgument,
        ErrorKind::LockNotAcquired,
        ErrorKind::LockLost,
        ErrorKind::Corrupt,
        ErrorKind::Storage,
        ErrorKind::OutcomeUnknown,
    ];

    /// The code every binding exposes (`err.code` in Node, `code` attribute in Python).
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::AlreadyExists => "ALREADY_EXISTS",
            ErrorKind::PreconditionFailed => "PRECONDITION_FAILED",
            ErrorKind::Conflict => "CONFLICT",
            ErrorKind::Validation => "VALIDATION",
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::LockNotAcquired => "LOCK_NOT_ACQUIRED",
            ErrorKind::LockLost => "LOCK_LOST",
            ErrorKind::Corrupt => "CORRUPT",
            ErrorKind::Storage => "STORAGE",
            ErrorKind::OutcomeUnknown => "OUTCOME_UNKNOWN",
        }
    }

    /// Numeric status used by the C ABI (0 is success there).
    pub fn status(self) -> i32 {
        match self {
            ErrorKind::NotFound => 1,
            ErrorKind::AlreadyExists => 2,
            ErrorKind::PreconditionFailed => 3,
            ErrorKind::Conflict => 4,
            ErrorKind::Validation => 5,
            ErrorKind::InvalidArgument => 6,
            ErrorKind::LockNotAcquired => 7,
            ErrorKind::LockLost => 8,
            ErrorKind::Corrupt => 9,
            ErrorKind::Storage => 10,
            ErrorKind::OutcomeUnknown => 11,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    details: Option<serde_json::Value>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            details: None,
        }
    }
    /// Structured details (a validation error lists `{field, rule, expected, actual}`).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn details(&self) -> Option<&serde_json::Value> {
        self.details.as_ref()
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::new(ErrorKind::NotFound, format!("not found: {what}"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Validation, message)
    }
    pub fn corrupt(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Corrupt, message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
