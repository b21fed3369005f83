//! Engine errors → Python exceptions.
//!
//! The exception classes are defined in Python (`s3db/_errors.py`, so that
//! `InvalidArgumentError` can also be a `ValueError` and a `TypeError`); they are looked up
//! once by code in `s3db._errors._BY_CODE`.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;
use pyo3::IntoPyObjectExt;

pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
pub const INTERNAL: &str = "INTERNAL";

static BY_CODE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn class_for<'py>(py: Python<'py>, code: &str) -> PyResult<Bound<'py, PyAny>> {
    let by_code = BY_CODE.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let table = py.import("s3db._errors")?.getattr("_BY_CODE")?;
        Ok(table.cast_into::<PyDict>()?.unbind())
    })?;
    by_code
        .bind(py)
        .get_item(code)?
        .ok_or_else(|| PyRuntimeError::new_err(format!("s3db: no exception class for {code}")))
}

/// An instance of the exception class for `code` (`S3dbError` for `INTERNAL`).
pub fn new_error(py: Python<'_>, code: &str, message: &str) -> PyErr {
    match class_for(py, code).and_then(|cls| cls.call1((message,))) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The exception for an engine error. A validation error's structured details (a list of
/// `{field, rule, expected, actual}`) become `ValidationError.details`.
pub fn engine_error(py: Python<'_>, err: &s3db::Error) -> PyErr {
    if let Some(original) = crate::hooks::raised(err.message()) {
        return original;
    }
    let code = err.kind().code();
    let details = match err.details() {
        Some(d @ serde_json::Value::Array(_)) if err.kind() == s3db::ErrorKind::Validation => d,
        _ => return new_error(py, code, err.message()),
    };
    let made = class_for(py, code).and_then(|cls| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("details", crate::convert::json_to_py(py, details)?)?;
        cls.call((err.message(),), Some(&kwargs))
    });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

pub fn invalid(py: Python<'_>, message: &str) -> PyErr {
    new_error(py, INVALID_ARGUMENT, message)
}

/// A failure of an engine call: its error, or a panic caught before it reached Python.
#[derive(Debug)]
pub enum Failure {
    Engine(s3db::Error),
    Panic(String),
}

impl From<s3db::Error> for Failure {
    fn from(e: s3db::Error) -> Self {
        Failure::Engine(e)
    }
}

impl Failure {
    pub fn into_py_err(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Engine(e) => engine_error(py, &e),
            Failure::Panic(msg) => new_error(py, INTERNAL, &format!("s3db panicked: {msg}")),
        }
    }
}

pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

/// The result of an engine call on its way to an asyncio future. The error becomes an
/// exception only once the GIL is held (while the future's result is set), so no tokio
/// worker ever waits for the GIL.
pub struct Outcome<T>(pub Result<T, Failure>);

impl<'py, T> IntoPyObject<'py> for Outcome<T>
where
    T: IntoPyObject<'py>,
{
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> Result<Self::Output, Self::Error> {
        match self.0 {
            Ok(v) => v.into_bound_py_any(py),
            Err(f) => Err(f.into_py_err(py)),
        }
    }
}

/// Replaces the secret parts of a connection string (password, `sessionToken`) in a message.
/// The engine does not echo them; this is a second line of defence.
pub fn redact(mut err: s3db::Error, url: &str) -> s3db::Error {
    let secrets = secrets_of(url);
    if secrets.iter().any(|s| err.message().contains(s.as_str())) {
        let mut msg = err.message().to_string();
        for s in &secrets {
            msg = msg.replace(s.as_str(), "***");
        }
        err = s3db::Error::new(err.kind(), msg);
    }
    err
}

fn secrets_of(url: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return out;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some((userinfo, _)) = authority.rsplit_once('@') {
        if let Some((_, password)) = userinfo.split_once(':') {
            out.push(password.to_string());
        }
    }
    if let Some((_, query)) = rest.split_once('?') {
        for pair in query.split('&') {
            if let Some(token) = pair.strip_prefix("sessionToken=") {
                out.push(token.to_string());
            }
        }
    }
    let decoded: Vec<String> = out.iter().map(|s| percent_decode(s)).collect();
    out.extend(decoded);
    out.retain(|s| s.len() >= 3);
    out.sort();
    out.dedup();
    // Longest first, so a secret containing another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
