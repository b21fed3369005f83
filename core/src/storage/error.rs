use crate::error::{Error, ErrorKind};

use super::RequestKind;

/// Outcome of one storage request that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("object not found")]
    NotFound,
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("conflicting concurrent write")]
    Conflict,
    #[error("throttled: {0}")]
    Throttled(String),
    #[error("transient storage failure: {0}")]
    Transient(String),
    #[error("storage failure: {0}")]
    Fatal(String),
    /// A read whose bytes failed verification (length or checksum): retried like a transient
    /// failure, never handed to the engine.
    #[error("read failed verification: {0}")]
    Integrity(String),
    /// A write whose response was lost after it may have reached the store, and reading the
    /// object back could not tell whether it was applied.
    #[error("outcome of the write is unknown: {0}")]
    OutcomeUnknown(String),
    /// Retries ran out (attempts or the operation deadline); `last` is what kept failing.
    #[error("{request} gave up after {attempts} attempt(s) in {elapsed_ms} ms: {last}")]
    GaveUp {
        request: RequestKind,
        attempts: u32,
        elapsed_ms: u64,
        last: Box<StoreError>,
    },
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StoreError::Throttled(_) | StoreError::Transient(_) | StoreError::Integrity(_)
        )
    }

    /// Maps to the engine error, naming the key involved.
    pub fn at(self, key: &str) -> Error {
        match self {
            StoreError::NotFound => Error::not_found(key),
            StoreError::PreconditionFailed => Error::new(
                ErrorKind::PreconditionFailed,
                format!("precondition failed: {key}"),
            ),
            StoreError::Conflict => {
                Error::new(ErrorKind::Conflict, format!("concurrent write: {key}"))
            }
            e @ StoreError::OutcomeUnknown(_) => {
                Error::new(ErrorKind::OutcomeUnknown, format!("{e} ({key})"))
            }
            other => Error::new(ErrorKind::Storage, format!("{other} ({key})")),
        }
    }
}
