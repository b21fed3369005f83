//! Resource hooks from Python callables (`create_resource(..., hooks={...})`, `add_hook`).
//!
//! A hook runs on an engine thread: it takes the GIL, calls the function and converts the
//! result. An exception it raises aborts the operation; the engine carries a ticket in the
//! error message and the caller gets the original exception back (`raised`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use serde_json::Value;

use crate::convert::{json_to_py, py_to_json, type_name};
use crate::errors::invalid;

static RAISED: Mutex<BTreeMap<u64, PyErr>> = Mutex::new(BTreeMap::new());
static LAST_TICKET: AtomicU64 = AtomicU64::new(0);
/// Exceptions not claimed (an operation whose error was logged, not returned) are dropped
/// beyond this many.
const KEPT: usize = 1000;

fn ticket(err: PyErr, text: String) -> s3db::Error {
    let n = LAST_TICKET.fetch_add(1, Ordering::Relaxed) + 1;
    let mut raised = RAISED.lock().unwrap_or_else(|p| p.into_inner());
    raised.insert(n, err);
    while raised.len() > KEPT {
        raised.pop_first();
    }
    s3db::Error::validation(format!("\u{27e6}hook {n}\u{27e7} {text}"))
}

/// The exception a hook raised, if the engine error `message` carries its ticket.
pub fn raised(message: &str) -> Option<PyErr> {
    let start = message.find("\u{27e6}hook ")? + "\u{27e6}hook ".len();
    let end = start + message[start..].find('\u{27e7}')?;
    let n: u64 = message[start..end].parse().ok()?;
    RAISED.lock().unwrap_or_else(|p| p.into_inner()).remove(&n)
}

/// An engine hook calling `f(value)`; `None` from `f` keeps the value.
pub fn hook_of(f: &Bound<'_, PyAny>) -> PyResult<s3db::Hook> {
    let py = f.py();
    if !f.is_callable() {
        return Err(invalid(
            py,
            &format!("a hook must be a function, got {}", type_name(f)),
        ));
    }
    let inspect = py.import("inspect")?;
    if inspect
        .call_method1("iscoroutinefunction", (f,))?
        .is_truthy()?
    {
        return Err(invalid(
            py,
            "hooks run inside the engine's operations and cannot be async functions",
        ));
    }
    let name = f
        .getattr("__name__")
        .ok()
        .and_then(|n| n.extract::<String>().ok())
        .filter(|n| n != "<lambda>");
    let arity = f
        .getattr("__code__")
        .and_then(|c| c.getattr("co_argcount"))
        .and_then(|n| n.extract::<u32>())
        .unwrap_or(1);
    let f: Py<PyAny> = f.clone().unbind();
    Ok(s3db::Hook::sync(name, arity, move |value: Value| {
        let call = || {
            Python::attach(|py| {
                let result = json_to_py(py, &value)
                    .and_then(|arg| f.bind(py).call1((arg,)))
                    .and_then(|out| {
                        if out.is_none() {
                            Ok(value.clone())
                        } else {
                            py_to_json(&out)
                        }
                    });
                result.map_err(|e| {
                    let text = e.to_string();
                    ticket(e, text)
                })
            })
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(call)
            }
            _ => call(),
        }
    }))
}

/// `{event: function or [functions]}` → the hooks, in order.
pub fn hooks_of(hooks: &Bound<'_, PyAny>) -> PyResult<Vec<(String, s3db::Hook)>> {
    let py = hooks.py();
    let dict = hooks.cast::<PyDict>().map_err(|_| {
        invalid(
            py,
            &format!(
                "hooks must be a dict of {{event: [function, ...]}}, got {}",
                type_name(hooks)
            ),
        )
    })?;
    let mut out = Vec::new();
    for (event, fns) in dict.iter() {
        let event: String = event
            .extract()
            .map_err(|_| invalid(py, "hook event names are strings"))?;
        let list: Vec<Bound<'_, PyAny>> =
            if fns.is_instance_of::<PyList>() || fns.is_instance_of::<PyTuple>() {
                fns.try_iter()?.collect::<PyResult<_>>()?
            } else {
                vec![fns]
            };
        for f in list {
            out.push((event.clone(), hook_of(&f)?));
        }
    }
    Ok(out)
}

/// The hooks of `create_resource(hooks=…)` (a dict, or None).
pub fn from_arg(py: Python<'_>, hooks: Option<&Bound<'_, PyAny>>) -> PyResult<s3db::Hooks> {
    let all = s3db::Hooks::default();
    let Some(hooks) = hooks.filter(|h| !h.is_none()) else {
        return Ok(all);
    };
    for (event, hook) in hooks_of(hooks)? {
        all.add(&event, hook)
            .map_err(|e| crate::errors::engine_error(py, &e))?;
    }
    Ok(all)
}
