//! Python values ⇄ JSON values, and the argument types of the API.
//!
//! Records cross the boundary as JSON objects: dict (or any `Mapping` with `str` keys),
//! list/tuple, str, int (64-bit), float (finite), bool and None. Anything else, and any
//! argument of the wrong type, raises `s3db.InvalidArgumentError` (also a `TypeError`).

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use serde_json::{Map, Number, Value};

use crate::errors::invalid;

/// serde_json refuses to parse deeper documents, so deeper ones could not be read back.
const MAX_DEPTH: usize = 128;

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

enum Seg {
    Key(String),
    Index(usize),
}

enum ConvError {
    /// A value that cannot become JSON; the path is innermost first.
    Invalid(String, Vec<Seg>),
    Py(PyErr),
}

impl From<PyErr> for ConvError {
    fn from(e: PyErr) -> Self {
        ConvError::Py(e)
    }
}

fn at(seg: Seg) -> impl FnOnce(ConvError) -> ConvError {
    move |e| match e {
        ConvError::Invalid(msg, mut path) => {
            path.push(seg);
            ConvError::Invalid(msg, path)
        }
        other => other,
    }
}

fn unsupported(obj: &Bound<'_, PyAny>) -> ConvError {
    ConvError::Invalid(
        format!(
            "unsupported type {}; records hold dict, list, tuple, str, int, float, bool and None",
            type_name(obj)
        ),
        Vec::new(),
    )
}

fn key_of(key: &Bound<'_, PyAny>) -> Result<String, ConvError> {
    match key.cast::<PyString>() {
        Ok(s) => py_str(s).map_err(|msg| ConvError::Invalid(msg, Vec::new())),
        Err(_) => Err(ConvError::Invalid(
            format!("dict keys must be str, got {}", type_name(key)),
            Vec::new(),
        )),
    }
}

fn py_str(s: &Bound<'_, PyString>) -> Result<String, String> {
    s.to_cow()
        .map(|c| c.into_owned())
        .map_err(|_| "str is not valid Unicode (lone surrogate)".to_string())
}

fn object_to_json<'py>(
    entries: impl Iterator<Item = PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)>>,
    depth: usize,
) -> Result<Value, ConvError> {
    let mut map = Map::new();
    for entry in entries {
        let (k, v) = entry?;
        let key = key_of(&k)?;
        let value = to_json(&v, depth + 1).map_err(at(Seg::Key(key.clone())))?;
        map.insert(key, value);
    }
    Ok(Value::Object(map))
}

fn array_to_json<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> Result<Value, ConvError> {
    let mut out = Vec::new();
    for (i, item) in items.enumerate() {
        out.push(to_json(&item, depth + 1).map_err(at(Seg::Index(i)))?);
    }
    Ok(Value::Array(out))
}

fn to_json(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, ConvError> {
    if depth > MAX_DEPTH {
        return Err(ConvError::Invalid(
            format!("nested deeper than {MAX_DEPTH} levels"),
            Vec::new(),
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return py_str(s)
            .map(Value::String)
            .map_err(|m| ConvError::Invalid(m, Vec::new()));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::from(i));
        }
        if let Ok(u) = obj.extract::<u64>() {
            return Ok(Value::from(u));
        }
        return Err(ConvError::Invalid(
            "int out of the 64-bit range".to_string(),
            Vec::new(),
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            ConvError::Invalid(format!("float {v} cannot be stored in JSON"), Vec::new())
        });
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return object_to_json(d.iter().map(Ok), depth);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return array_to_json(l.iter(), depth);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return array_to_json(t.iter(), depth);
    }
    if let Ok(m) = obj.cast::<PyMapping>() {
        let items = m.items()?;
        return object_to_json(
            items
                .iter()
                .map(|it| it.extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()),
            depth,
        );
    }
    // Other iterables (set, bytes, generators, ...) are refused: only list and tuple are
    // arrays, so a mistake never stores bytes as a list of numbers.
    Err(unsupported(obj))
}

fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path.iter().rev() {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Any supported Python value as JSON.
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_json(obj, 0).map_err(|e| match e {
        ConvError::Py(e) => e,
        ConvError::Invalid(msg, path) if path.is_empty() => invalid(obj.py(), &msg),
        ConvError::Invalid(msg, path) => {
            invalid(obj.py(), &format!("{}: {msg}", render_path(&path)))
        }
    })
}

/// JSON as Python objects: dict, list, str, int, float, bool, None.
pub fn json_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A JSON value on its way to Python (a record, usually).
pub struct Json(pub Value);

impl<'py> IntoPyObject<'py> for Json {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(py, &self.0)
    }
}

/// A `str` argument (ids, names, connection strings).
pub struct Str(pub String);

impl<'a, 'py> FromPyObject<'a, 'py> for Str {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PyString>() {
            Ok(s) => py_str(&s).map(Str).map_err(|msg| invalid(obj.py(), &msg)),
            Err(_) => Err(invalid(
                obj.py(),
                &format!("expected str, got {}", type_name(&obj)),
            )),
        }
    }
}

/// A dict argument (a record, changes, attribute definitions) as a JSON object.
pub struct Object(pub Value);

impl<'a, 'py> FromPyObject<'a, 'py> for Object {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.cast::<PyDict>().is_err() && obj.cast::<PyMapping>().is_err() {
            return Err(invalid(
                obj.py(),
                &format!("expected a dict, got {}", type_name(&obj)),
            ));
        }
        py_to_json(&obj).map(Object)
    }
}

fn number_arg(obj: &Borrowed<'_, '_, PyAny>) -> Option<f64> {
    if obj.cast::<PyBool>().is_ok() {
        return None;
    }
    if obj.cast::<PyInt>().is_ok() || obj.cast::<PyFloat>().is_ok() {
        return obj.extract::<f64>().ok();
    }
    None
}

/// A duration in seconds (int or float, finite, not negative).
#[derive(Clone, Copy)]
pub struct Seconds(pub Duration);

impl<'a, 'py> FromPyObject<'a, 'py> for Seconds {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let Some(secs) = number_arg(&obj) else {
            return Err(invalid(
                obj.py(),
                &format!("expected seconds as int or float, got {}", type_name(&obj)),
            ));
        };
        Duration::try_from_secs_f64(secs).map(Seconds).map_err(|_| {
            invalid(
                obj.py(),
                &format!("{secs} is not a valid number of seconds (finite, >= 0)"),
            )
        })
    }
}

/// A 64-bit signed integer argument (not a bool).
#[derive(Clone, Copy)]
pub struct Int64(pub i64);

impl<'a, 'py> FromPyObject<'a, 'py> for Int64 {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        if obj.cast::<PyBool>().is_ok() || obj.cast::<PyInt>().is_err() {
            return Err(invalid(
                obj.py(),
                &format!("expected int, got {}", type_name(&obj)),
            ));
        }
        obj.extract::<i64>()
            .map(Int64)
            .map_err(|_| invalid(obj.py(), "int out of the signed 64-bit range"))
    }
}

pub fn stats_dict<'py>(py: Python<'py>, s: s3db::Stats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("get", s.get)?;
    d.set_item("head", s.head)?;
    d.set_item("put", s.put)?;
    d.set_item("copy", s.copy)?;
    d.set_item("delete", s.delete)?;
    d.set_item("list", s.list)?;
    Ok(d)
}

/// Python's `None` as the result of an awaitable (`()` would become an empty tuple).
pub struct NoneValue;

impl<'py> IntoPyObject<'py> for NoneValue {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = std::convert::Infallible;

    fn into_pyobject(self, py: Python<'py>) -> Result<Bound<'py, PyAny>, Self::Error> {
        Ok(py.None().into_bound(py))
    }
}
