//! Pure record filters: `{field: value}` and `{field: {$op: value}}` conditions.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub const OPERATORS: [&str; 9] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists",
];

/// Refuses an unknown `$` operator or a malformed argument.
pub fn check_condition(cond: &Value) -> Result<()> {
    if let Value::Object(ops) = cond {
        for (op, arg) in ops {
            if !OPERATORS.contains(&op.as_str()) {
                if op.starts_with('$') {
                    return Err(Error::invalid(format!("unknown query operator {op:?}")));
                }
                continue;
            }
            if matches!(op.as_str(), "$in" | "$nin") && !arg.is_array() {
                return Err(Error::invalid(format!("{op} takes an array")));
            }
        }
    }
    Ok(())
}

pub fn equality(cond: &Value) -> Option<&Value> {
    match cond {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            ops.get("$eq").filter(|_| ops.len() == 1)
        }
        Value::Object(_) | Value::Array(_) | Value::Null => None,
        v => Some(v),
    }
}

fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(record, |cur, p| cur.get(p))
        .filter(|v| !v.is_null())
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    compare(a, b) == Some(std::cmp::Ordering::Equal) || a == b
}

pub fn record_matches(record: &Value, filter: &Map<String, Value>) -> bool {
    use std::cmp::Ordering::*;
    filter.iter().all(|(path, cond)| {
        let v = lookup(record, path);
        match cond {
            Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
                ops.iter().all(|(op, arg)| match op.as_str() {
                    "$eq" => v.is_some_and(|v| eq(v, arg)),
                    "$ne" => !v.is_some_and(|v| eq(v, arg)),
                    "$gt" => v.and_then(|v| compare(v, arg)) == Some(Greater),
                    "$gte" => matches!(v.and_then(|v| compare(v, arg)), Some(Greater | Equal)),
                    "$lt" => v.and_then(|v| compare(v, arg)) == Some(Less),
                    "$lte" => matches!(v.and_then(|v| compare(v, arg)), Some(Less | Equal)),
                    "$in" => v.is_some_and(|v| {
                        arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x)))
                    }),
                    "$nin" => !v.is_some_and(|v| {
                        arg.as_array().is_some_and(|a| a.iter().any(|x| eq(v, x)))
                    }),
                    "$exists" => v.is_some() == arg.as_bool().unwrap_or(true),
                    _ => false,
                })
            }
            other => v.is_some_and(|v| eq(v, other)),
        }
    })
}
