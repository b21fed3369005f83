//! Python values ⇄ JSON values, and the argument types of the API.
//!
//! Records cross the boundary as JSON objects: dict (or any `Mapping` with `str` keys),
//! list/tuple, str, int (64-bit), float (finite), bool and None. Anything else, and any
//! argument of the wrong type, raises `s3db.InvalidArgumentError` (also a `TypeError`).

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMapping, PySequence, PyString,
    PyTuple,
};
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
    conv_result(obj, to_json(obj, 0))
}

/// Item `index` of a list argument as JSON (errors name it: `[2].name: ...`).
pub fn py_item_to_json(obj: &Bound<'_, PyAny>, index: usize) -> PyResult<Value> {
    conv_result(obj, to_json(obj, 0).map_err(at(Seg::Index(index))))
}

fn conv_result(obj: &Bound<'_, PyAny>, r: Result<Value, ConvError>) -> PyResult<Value> {
    r.map_err(|e| match e {
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

/// An attribute rule: an s3db.js rule string (`"string|optional"`) or a dict
/// (`{"type": "number", "optional": True}`).
pub struct Rule(pub Value);

impl<'a, 'py> FromPyObject<'a, 'py> for Rule {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let ok = obj.cast::<PyString>().is_ok()
            || obj.cast::<PyDict>().is_ok()
            || obj.cast::<PyMapping>().is_ok();
        if !ok {
            return Err(invalid(
                obj.py(),
                &format!("expected a rule (str or dict), got {}", type_name(&obj)),
            ));
        }
        py_to_json(&obj).map(Rule)
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

/// A strict `bool` argument (not an int).
#[derive(Clone, Copy)]
pub struct Bool(pub bool);

impl<'a, 'py> FromPyObject<'a, 'py> for Bool {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        match obj.cast::<PyBool>() {
            Ok(b) => Ok(Bool(b.is_true())),
            Err(_) => Err(invalid(
                obj.py(),
                &format!("expected bool, got {}", type_name(&obj)),
            )),
        }
    }
}

/// Partitions of `create_resource`: a dict `{name: {"fields": {path: rule}}}` or a list of
/// field names.
pub struct PartitionsArg(pub Value);

impl<'a, 'py> FromPyObject<'a, 'py> for PartitionsArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let ok = obj.cast::<PyDict>().is_ok()
            || obj.cast::<PyList>().is_ok()
            || obj.cast::<PyTuple>().is_ok()
            || obj.cast::<PyMapping>().is_ok();
        if !ok {
            return Err(invalid(
                obj.py(),
                &format!(
                    "partitions: expected a dict or a list of field names, got {}",
                    type_name(&obj)
                ),
            ));
        }
        py_to_json(&obj).map(PartitionsArg)
    }
}

/// The items of a list, a tuple or any other sequence except str, bytes and bytearray.
fn items_of<'py>(obj: &Borrowed<'_, 'py, PyAny>, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(l.iter().collect());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(t.iter().collect());
    }
    let text_like = obj.cast::<PyString>().is_ok()
        || obj.cast::<PyBytes>().is_ok()
        || obj.cast::<PyByteArray>().is_ok();
    if !text_like {
        if let Ok(seq) = obj.cast::<PySequence>() {
            return seq.try_iter()?.collect();
        }
    }
    Err(invalid(
        obj.py(),
        &format!("expected a list of {what}, got {}", type_name(obj)),
    ))
}

/// A list (tuple, sequence) of `str` (ids).
pub struct StrList(pub Vec<String>);

impl<'a, 'py> FromPyObject<'a, 'py> for StrList {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let mut out = Vec::new();
        for (i, item) in items_of(&obj, "str")?.iter().enumerate() {
            match item.cast::<PyString>() {
                Ok(s) => {
                    out.push(py_str(s).map_err(|msg| invalid(obj.py(), &format!("[{i}]: {msg}")))?)
                }
                Err(_) => {
                    return Err(invalid(
                        obj.py(),
                        &format!("[{i}]: expected str, got {}", type_name(item)),
                    ))
                }
            }
        }
        Ok(StrList(out))
    }
}

/// A list (tuple, sequence) of dicts (records), all converted before anything is sent.
pub struct ObjectList(pub Vec<Value>);

impl<'a, 'py> FromPyObject<'a, 'py> for ObjectList {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let mut out = Vec::new();
        for (i, item) in items_of(&obj, "dicts")?.iter().enumerate() {
            if item.cast::<PyDict>().is_err() && item.cast::<PyMapping>().is_err() {
                return Err(invalid(
                    obj.py(),
                    &format!("[{i}]: expected a dict, got {}", type_name(item)),
                ));
            }
            out.push(py_item_to_json(item, i)?);
        }
        Ok(ObjectList(out))
    }
}

/// A page size: an int (the engine checks the range).
#[derive(Clone, Copy)]
pub struct Size(pub usize);

impl<'a, 'py> FromPyObject<'a, 'py> for Size {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        let Int64(n) = Int64::extract(obj)?;
        // Out of range values become 0, which the engine refuses with its own message.
        Ok(Size(usize::try_from(n).unwrap_or(0)))
    }
}

/// The options of `create_resource` as the engine's `ResourceConfig` (s3db.js names).
#[allow(clippy::too_many_arguments)]
pub fn resource_config(
    attributes: Object,
    behavior: Option<Str>,
    timestamps: Option<Bool>,
    partitions: Option<PartitionsArg>,
    paranoid: Option<Bool>,
    id_size: Option<Int64>,
    id_generator: Option<Value>,
    passphrase: Option<Str>,
) -> s3db::Result<s3db::ResourceConfig> {
    let mut opts = Map::new();
    opts.insert("attributes".into(), attributes.0);
    if let Some(b) = behavior {
        opts.insert("behavior".into(), Value::String(b.0));
    }
    if let Some(t) = timestamps {
        opts.insert("timestamps".into(), Value::Bool(t.0));
    }
    if let Some(p) = partitions {
        opts.insert("partitions".into(), p.0);
    }
    if let Some(p) = paranoid {
        opts.insert("paranoid".into(), Value::Bool(p.0));
    }
    if let Some(n) = id_size {
        opts.insert("idSize".into(), Value::from(n.0));
    }
    if let Some(g) = id_generator {
        opts.insert("idGenerator".into(), g);
    }
    if let Some(p) = passphrase {
        opts.insert("passphrase".into(), Value::String(p.0));
    }
    s3db::ResourceConfig::from_json(&Value::Object(opts))
}

/// `partition` and `values` of `list`, `list_ids` and `count`.
pub type PartitionFilter = Option<(String, Map<String, Value>)>;

pub fn partition_filter(
    py: Python<'_>,
    partition: Option<Str>,
    values: Option<Object>,
) -> PyResult<PartitionFilter> {
    match (partition, values) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(invalid(py, "values need a partition")),
        (Some(p), values) => {
            let values = match values.map(|o| o.0) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            Ok(Some((p.0, values)))
        }
    }
}

pub fn batch_json(items: Vec<s3db::BatchItem>) -> Value {
    serde_json::to_value(items).unwrap_or(Value::Null)
}

pub fn many_json((found, missing): (Vec<Value>, Vec<String>)) -> Value {
    serde_json::json!({"found": found, "missing": missing})
}

pub fn page_json(page: s3db::Page) -> Value {
    serde_json::json!({"items": page.items, "cursor": page.cursor})
}

pub fn reindex_json((written, deleted): (u64, u64)) -> Value {
    serde_json::json!({"written": written, "deleted": deleted})
}

pub fn records_json(records: Vec<Value>) -> Value {
    Value::Array(records)
}
