//! Pure record filters, MongoDB style: `{field: value}`, `{field: {$op: arg}}` and the
//! logical `$and`, `$or`, `$nor`, `$not`.
//!
//! A filter is compiled once ([`Filter::parse`]): an unknown or malformed operator is an
//! `InvalidArgument` error naming it, never a filter that silently matches nothing.
//!
//! Semantics (MongoDB's, on JSON records):
//! * paths are dotted (`address.city`); a numeric segment indexes an array (`tags.0`);
//!   `null` and a missing field are the same thing ("no value");
//! * `{f: v}` / `$eq`: deep equality (numbers by value, objects regardless of key order); on an
//!   array field it also matches when one element equals `v`; `{f: null}` matches "no value";
//! * `$ne`, `$nin`: the negation of `$eq`, `$in` (so they match records without the field);
//! * `$gt $gte $lt $lte`: only between two numbers, two strings (byte order) or two booleans,
//!   never across types; on an array field, when one element satisfies it;
//! * `$in: [..]`: `$eq` to one of the values; `$exists: bool`;
//! * `$regex: "pattern"` with `$options` among `i m s x`: strings (or one string element of
//!   an array) that match;
//! * `$contains: v` (documented by s3db.js): a string containing the string `v`, or an array
//!   with an element equal to `v`;
//! * `$not: {ops}` on a field: the record does not satisfy `{ops}` (missing fields included);
//! * `$and`, `$or`, `$nor: [filters]` at the top level or nested in each other; `$not:
//!   {filter}` at the top level negates a whole filter (an extension: MongoDB only has the
//!   field form).
//!
//! Refused: every other `$` operator (`$startsWith`, `$endsWith`, `$size`, `$all`,
//! `$elemMatch`, `$type`, `$where`, …), an object mixing operators and plain keys, and
//! arguments of the wrong shape.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The operators a filter may use.
pub const OPERATORS: [&str; 16] = [
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$regex",
    "$options",
    "$contains",
    "$not",
    "$and",
    "$or",
    "$nor",
];

/// A compiled filter.
#[derive(Debug, Clone)]
pub enum Filter {
    /// Every part holds (`{}` matches everything).
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Nor(Vec<Filter>),
    Not(Box<Filter>),
    Field {
        path: String,
        cond: Cond,
    },
}

/// A condition on the value at one path.
#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Eq(Value),
    Ne(Value),
    Cmp(Ordering, bool, Value),
    In(Vec<Value>),
    Nin(Vec<Value>),
    Exists(bool),
    Regex(regex_lite::Regex),
    Contains(Value),
    Not(Box<Cond>),
}

fn refuse(message: String) -> Error {
    Error::invalid(message)
}

fn unknown_operator(op: &str) -> Error {
    let hint = match op {
        "$startsWith" | "$endsWith" => {
            " (s3db.js does not document it; use $regex, e.g. {\"$regex\": \"^abc\"})"
        }
        "$size" | "$all" | "$elemMatch" | "$type" | "$mod" | "$where" | "$text" | "$expr" => {
            " (not supported)"
        }
        _ => "",
    };
    refuse(format!(
        "unknown query operator {op:?}{hint}; supported: {}",
        OPERATORS.join(" ")
    ))
}

impl Filter {
    /// Compiles a filter object, refusing what it cannot honour.
    pub fn parse(filter: &Value) -> Result<Filter> {
        match filter {
            Value::Object(m) => Self::parse_map(m),
            other => Err(refuse(format!(
                "a query filter must be an object, got {}",
                crate::format::schema::type_name(other)
            ))),
        }
    }

    pub fn parse_map(filter: &Map<String, Value>) -> Result<Filter> {
        let mut parts = Vec::with_capacity(filter.len());
        for (key, arg) in filter {
            parts.push(match key.as_str() {
                "$and" | "$or" | "$nor" => {
                    let list = arg.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                        refuse(format!("{key} takes a non-empty array of filters"))
                    })?;
                    let subs = list
                        .iter()
                        .map(|f| match f {
                            Value::Object(m) => Self::parse_map(m),
                            other => Err(refuse(format!(
                                "{key}: every element must be a filter object, got {}",
                                crate::format::schema::type_name(other)
                            ))),
                        })
                        .collect::<Result<Vec<_>>>()?;
                    match key.as_str() {
                        "$and" => Filter::And(subs),
                        "$or" => Filter::Or(subs),
                        _ => Filter::Nor(subs),
                    }
                }
                "$not" => match arg {
                    Value::Object(m) => Filter::Not(Box::new(Self::parse_map(m)?)),
                    _ => return Err(refuse("top-level $not takes a filter object".into())),
                },
                k if k.starts_with('$') => {
                    if OPERATORS.contains(&k) {
                        return Err(refuse(format!(
                            "{k} is a field operator: write {{\"<field>\": {{\"{k}\": …}}}}"
                        )));
                    }
                    return Err(unknown_operator(k));
                }
                "" => return Err(refuse("a query filter names an empty field".into())),
                path => Filter::Field {
                    path: path.to_string(),
                    cond: Cond::parse(path, arg)?,
                },
            });
        }
        Ok(Filter::And(parts))
    }

    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|f| f.matches(record)),
            Filter::Or(parts) => parts.iter().any(|f| f.matches(record)),
            Filter::Nor(parts) => !parts.iter().any(|f| f.matches(record)),
            Filter::Not(f) => !f.matches(record),
            Filter::Field { path, cond } => cond.matches(lookup(record, path)),
        }
    }

    /// Fields every match must equal (top-level equalities and those of top-level `$and`s):
    /// path → scalar value. What a query may use to pick a partition.
    pub fn equalities(&self) -> Map<String, Value> {
        let mut out = Map::new();
        self.collect_equalities(&mut out);
        out
    }

    fn collect_equalities(&self, out: &mut Map<String, Value>) {
        match self {
            Filter::And(parts) => parts.iter().for_each(|f| f.collect_equalities(out)),
            Filter::Field { path, cond } => cond.collect_equality(path, out),
            _ => {}
        }
    }
}

impl Cond {
    fn parse(path: &str, arg: &Value) -> Result<Cond> {
        let Value::Object(ops) = arg else {
            return Ok(Cond::Eq(arg.clone()));
        };
        let dollar = ops.keys().filter(|k| k.starts_with('$')).count();
        if dollar == 0 {
            return Ok(Cond::Eq(arg.clone()));
        }
        if dollar != ops.len() {
            return Err(refuse(format!(
                "{path:?}: a condition mixes operators and plain keys"
            )));
        }
        Self::parse_ops(path, ops)
    }

    fn parse_ops(path: &str, ops: &Map<String, Value>) -> Result<Cond> {
        let mut all = Vec::with_capacity(ops.len());
        for (op, arg) in ops {
            let ordered = |o: Ordering, or_equal: bool| -> Result<Cond> {
                match arg {
                    Value::Number(_) | Value::String(_) | Value::Bool(_) => {
                        Ok(Cond::Cmp(o, or_equal, arg.clone()))
                    }
                    other => Err(refuse(format!(
                        "{path:?}: {op} takes a number, string or boolean, got {}",
                        crate::format::schema::type_name(other)
                    ))),
                }
            };
            let list = || -> Result<Vec<Value>> {
                arg.as_array()
                    .cloned()
                    .ok_or_else(|| refuse(format!("{path:?}: {op} takes an array")))
            };
            all.push(match op.as_str() {
                "$eq" => Cond::Eq(arg.clone()),
                "$ne" => Cond::Ne(arg.clone()),
                "$gt" => ordered(Ordering::Greater, false)?,
                "$gte" => ordered(Ordering::Greater, true)?,
                "$lt" => ordered(Ordering::Less, false)?,
                "$lte" => ordered(Ordering::Less, true)?,
                "$in" => Cond::In(list()?),
                "$nin" => Cond::Nin(list()?),
                "$exists" => Cond::Exists(arg.as_bool().ok_or_else(|| {
                    refuse(format!("{path:?}: $exists takes true or false"))
                })?),
                "$regex" => {
                    let options = match ops.get("$options") {
                        None => "",
                        Some(Value::String(s)) => s.as_str(),
                        Some(_) => {
                            return Err(refuse(format!("{path:?}: $options takes a string")))
                        }
                    };
                    Cond::Regex(regex(path, arg, options)?)
                }
                "$options" => {
                    if !ops.contains_key("$regex") {
                        return Err(refuse(format!("{path:?}: $options needs $regex")));
                    }
                    continue;
                }
                "$contains" => {
                    if arg.is_null() {
                        return Err(refuse(format!("{path:?}: $contains takes a value")));
                    }
                    Cond::Contains(arg.clone())
                }
                "$not" => match arg {
                    Value::Object(inner)
                        if !inner.is_empty() && inner.keys().all(|k| k.starts_with('$')) =>
                    {
                        Cond::Not(Box::new(Self::parse_ops(path, inner)?))
                    }
                    _ => {
                        return Err(refuse(format!(
                            "{path:?}: $not takes operators, e.g. {{\"$not\": {{\"$gt\": 5}}}}"
                        )))
                    }
                },
                "$and" | "$or" | "$nor" => {
                    return Err(refuse(format!(
                        "{path:?}: {op} is a top-level operator: write {{\"{op}\": [{{\"{path}\": …}}, …]}}"
                    )))
                }
                other => return Err(unknown_operator(other)),
            });
        }
        Ok(Cond::All(all))
    }

    fn matches(&self, v: Option<&Value>) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.matches(v)),
            Cond::Eq(x) => eq_match(v, x),
            Cond::Ne(x) => !eq_match(v, x),
            Cond::Cmp(want, or_equal, x) => any_element(v, |e| match compare(e, x) {
                Some(o) => o == *want || (*or_equal && o == Ordering::Equal),
                None => false,
            }),
            Cond::In(xs) => xs.iter().any(|x| eq_match(v, x)),
            Cond::Nin(xs) => !xs.iter().any(|x| eq_match(v, x)),
            Cond::Exists(b) => v.is_some() == *b,
            Cond::Regex(re) => any_element(v, |e| e.as_str().is_some_and(|s| re.is_match(s))),
            Cond::Contains(x) => match (v, x) {
                (Some(Value::String(s)), Value::String(part)) => s.contains(part.as_str()),
                (Some(Value::Array(items)), x) => items.iter().any(|e| deep_eq(e, x)),
                _ => false,
            },
            Cond::Not(c) => !c.matches(v),
        }
    }

    fn collect_equality(&self, path: &str, out: &mut Map<String, Value>) {
        match self {
            Cond::Eq(x @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                out.entry(path.to_string()).or_insert_with(|| x.clone());
            }
            Cond::All(cs) => cs.iter().for_each(|c| c.collect_equality(path, out)),
            _ => {}
        }
    }
}

fn regex(path: &str, arg: &Value, options: &str) -> Result<regex_lite::Regex> {
    let Value::String(pattern) = arg else {
        return Err(refuse(format!(
            "{path:?}: $regex takes the pattern as a string (a JavaScript RegExp object does not survive JSON)"
        )));
    };
    if let Some(bad) = options.chars().find(|c| !"imsx".contains(*c)) {
        return Err(refuse(format!(
            "{path:?}: $options {bad:?} is not supported (i, m, s, x are)"
        )));
    }
    let full = if options.is_empty() {
        pattern.clone()
    } else {
        format!("(?{options}){pattern}")
    };
    regex_lite::Regex::new(&full).map_err(|e| refuse(format!("{path:?}: $regex {pattern:?}: {e}")))
}

/// The value at a dotted path (`None`: missing or null).
pub fn lookup<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(record, |cur, p| match cur {
            Value::Object(m) => m.get(p),
            Value::Array(a) => canonical_index(p).and_then(|i| a.get(i)),
            _ => None,
        })
        .filter(|v| !v.is_null())
}

fn canonical_index(p: &str) -> Option<usize> {
    if p.is_empty() || (p.len() > 1 && p.starts_with('0')) {
        return None;
    }
    p.parse().ok()
}

/// The value itself or, for an array, one of its elements satisfies `test`.
fn any_element(v: Option<&Value>, test: impl Fn(&Value) -> bool) -> bool {
    match v {
        None => false,
        Some(Value::Array(items)) => test(v.expect("some")) || items.iter().any(test),
        Some(v) => test(v),
    }
}

fn eq_match(v: Option<&Value>, x: &Value) -> bool {
    match v {
        None => x.is_null(),
        Some(v) => any_element(Some(v), |e| deep_eq(e, x)),
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Equality of JSON values: numbers by value, objects regardless of key order.
pub fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| deep_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| deep_eq(a, b)))
        }
        _ => a == b,
    }
}

/// Refuses an unknown `$` operator or a malformed argument in one field's condition.
pub fn check_condition(cond: &Value) -> Result<()> {
    Cond::parse("field", cond).map(|_| ())
}

/// The value a condition fixes by plain equality, if it does.
pub fn equality(cond: &Value) -> Option<&Value> {
    match cond {
        Value::Object(ops) if ops.keys().any(|k| k.starts_with('$')) => {
            ops.get("$eq").filter(|_| ops.len() == 1)
        }
        Value::Object(_) | Value::Array(_) | Value::Null => None,
        v => Some(v),
    }
}

/// Whether `record` matches `filter`; a filter that does not compile matches nothing (use
/// [`Filter::parse`] to learn why).
pub fn record_matches(record: &Value, filter: &Map<String, Value>) -> bool {
    Filter::parse_map(filter).is_ok_and(|f| f.matches(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(filter: Value, record: Value) -> bool {
        Filter::parse(&filter).unwrap().matches(&record)
    }

    #[test]
    fn logical_operators_nest() {
        let r = json!({"a": 1, "b": "x", "tags": ["red", "blue"], "n": {"c": 2}});
        assert!(m(json!({"$or": [{"a": 2}, {"b": "x"}]}), r.clone()));
        assert!(!m(json!({"$nor": [{"a": 2}, {"b": "x"}]}), r.clone()));
        assert!(m(
            json!({"$and": [{"$or": [{"a": 1}]}, {"n.c": {"$gte": 2}}]}),
            r.clone()
        ));
        assert!(m(json!({"a": {"$not": {"$gt": 5}}}), r.clone()));
        assert!(m(json!({"zz": {"$not": {"$gt": 5}}}), r.clone()));
        assert!(m(json!({"$not": {"a": 2}}), r.clone()));
        assert!(m(json!({"tags": "red"}), r.clone()));
        assert!(m(json!({"tags.1": "blue"}), r.clone()));
        assert!(m(
            json!({"tags": {"$regex": "^B", "$options": "i"}}),
            r.clone()
        ));
        assert!(m(json!({"tags": {"$contains": "red"}}), r.clone()));
        assert!(m(json!({"b": {"$contains": "x"}}), r.clone()));
        assert!(m(json!({"missing": null}), r.clone()));
        assert!(!m(json!({"a": null}), r.clone()));
        assert!(!m(json!({"a": "1"}), r));
    }

    #[test]
    fn unknown_and_malformed_operators_are_refused() {
        for bad in [
            json!({"a": {"$startsWith": "x"}}),
            json!({"a": {"$size": 2}}),
            json!({"$where": "1"}),
            json!({"$or": []}),
            json!({"$or": {"a": 1}}),
            json!({"a": {"$in": 1}}),
            json!({"a": {"$exists": "yes"}}),
            json!({"a": {"$regex": {}}}),
            json!({"a": {"$regex": "("}}),
            json!({"a": {"$regex": "x", "$options": "g"}}),
            json!({"a": {"$options": "i"}}),
            json!({"a": {"$gt": [1]}}),
            json!({"a": {"$gt": 1, "b": 2}}),
            json!({"a": {"$or": [{"a": 1}]}}),
            json!({"$gt": 1}),
            json!({"a": {"$not": 5}}),
        ] {
            let e = Filter::parse(&bad).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{bad}");
        }
        let e = Filter::parse(&json!({"a": {"$startsWith": "x"}})).unwrap_err();
        assert!(e.message().contains("$startsWith"), "{e}");
    }
}
