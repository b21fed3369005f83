use crate::error::{Error, ErrorKind};

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
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Throttled(_) | StoreError::Transient(_))
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
            other => Error::new(ErrorKind::Storage, format!("{other} ({key})")),
        }
    }
}
