//! Property test: the query operators (`s3db::format::query`) against a plain interpreter of
//! the same documented semantics, written separately, over random records and filters.

use proptest::prelude::*;
use s3db::format::query::Filter;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------- the independent oracle

/// The value at a dotted path; null counts as missing.
fn get(record: &Value, path: &str) -> Option<Value> {
    let mut cur = record.clone();
    for part in path.split('.') {
        cur = match cur {
            Value::Object(mut m) => m.remove(part)?,
            Value::Array(a) => {
                if part.len() > 1 && part.starts_with('0') {
                    return None;
                }
                let i: usize = part.parse().ok()?;
                a.get(i)?.clone()
            }
            _ => return None,
        };
    }
    if cur.is_null() {
        None
    } else {
        Some(cur)
    }
}

fn same(a: &Value, b: &Value) -> bool {
    if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) {
        return x == y;
    }
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && (0..x.len()).all(|i| same(&x[i], &y[i]))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.keys().all(|k| y.contains_key(k) && same(&x[k], &y[k]))
        }
        _ => a == b,
    }
}

/// The candidates a scalar test looks at: the value, and each element of an array.
fn candidates(v: &Value) -> Vec<Value> {
    let mut out = vec![v.clone()];
    if let Value::Array(items) = v {
        out.extend(items.iter().cloned());
    }
    out
}

fn equals(v: &Option<Value>, x: &Value) -> bool {
    match v {
        None => x.is_null(),
        Some(v) => candidates(v).iter().any(|c| same(c, x)),
    }
}

/// -1, 0, 1 between two values of the same scalar type, else None.
fn order(a: &Value, b: &Value) -> Option<i8> {
    let sign = |o: std::cmp::Ordering| o as i8;
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => a
            .as_f64()
            .unwrap()
            .partial_cmp(&b.as_f64().unwrap())
            .map(sign),
        (Value::String(x), Value::String(y)) => Some(sign(x.cmp(y))),
        (Value::Bool(x), Value::Bool(y)) => Some(sign(x.cmp(y))),
        _ => None,
    }
}

fn operator_holds(v: &Option<Value>, op: &str, arg: &Value, all: &Map<String, Value>) -> bool {
    let ordered = |accept: &[i8]| match v {
        None => false,
        Some(v) => candidates(v)
            .iter()
            .any(|c| order(c, arg).is_some_and(|o| accept.contains(&o))),
    };
    match op {
        "$eq" => equals(v, arg),
        "$ne" => !equals(v, arg),
        "$gt" => ordered(&[1]),
        "$gte" => ordered(&[1, 0]),
        "$lt" => ordered(&[-1]),
        "$lte" => ordered(&[-1, 0]),
        "$in" => arg.as_array().unwrap().iter().any(|x| equals(v, x)),
        "$nin" => !arg.as_array().unwrap().iter().any(|x| equals(v, x)),
        "$exists" => v.is_some() == arg.as_bool().unwrap(),
        "$regex" => {
            let insensitive = all.get("$options").and_then(Value::as_str) == Some("i");
            let pattern = arg.as_str().unwrap();
            match v {
                None => false,
                Some(v) => candidates(v).iter().any(|c| {
                    c.as_str()
                        .is_some_and(|s| tiny_regex(pattern, s, insensitive))
                }),
            }
        }
        "$options" => true,
        "$contains" => match (v, arg) {
            (Some(Value::String(s)), Value::String(part)) => s.contains(part.as_str()),
            (Some(Value::Array(items)), x) => items.iter().any(|e| same(e, x)),
            _ => false,
        },
        "$not" => !condition_holds(v, arg),
        other => panic!("oracle: {other}"),
    }
}

/// The few patterns the generator uses: `^lit`, `lit$`, `lit`, `.` (any character).
fn tiny_regex(pattern: &str, s: &str, insensitive: bool) -> bool {
    let (p, s) = if insensitive {
        (pattern.to_lowercase(), s.to_lowercase())
    } else {
        (pattern.to_string(), s.to_string())
    };
    if p == "." {
        return !s.is_empty();
    }
    if let Some(lit) = p.strip_prefix('^') {
        return s.starts_with(lit);
    }
    if let Some(lit) = p.strip_suffix('$') {
        return s.ends_with(lit);
    }
    s.contains(&p)
}

fn condition_holds(v: &Option<Value>, cond: &Value) -> bool {
    match cond {
        Value::Object(ops) if !ops.is_empty() && ops.keys().all(|k| k.starts_with('$')) => {
            ops.iter().all(|(op, arg)| operator_holds(v, op, arg, ops))
        }
        x => equals(v, x),
    }
}

fn oracle(record: &Value, filter: &Value) -> bool {
    filter
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| match k.as_str() {
            "$and" => v.as_array().unwrap().iter().all(|f| oracle(record, f)),
            "$or" => v.as_array().unwrap().iter().any(|f| oracle(record, f)),
            "$nor" => !v.as_array().unwrap().iter().any(|f| oracle(record, f)),
            "$not" => !oracle(record, v),
            path => condition_holds(&get(record, path), v),
        })
}

// ---------------------------------------------------------------- generators

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-2i64..6).prop_map(|n| json!(n)),
        Just(json!(2.0)),
        Just(json!(1.5)),
        prop::sample::select(vec!["x", "y", "xy", "Xy", "", "t1", "t2"]).prop_map(|s| json!(s)),
        any::<bool>().prop_map(|b| json!(b)),
    ]
}

fn record() -> impl Strategy<Value = Value> {
    (
        prop::option::of((-1i64..5).prop_map(|n| json!(n))),
        prop::option::of(
            prop::sample::select(vec!["x", "y", "xy", "Xy", ""]).prop_map(|s| json!(s)),
        ),
        prop::option::of(any::<bool>().prop_map(|b| json!(b))),
        prop::option::of(
            prop::collection::vec(
                prop::sample::select(vec!["t1", "t2", "x", "Xy"]).prop_map(|s| json!(s)),
                0..4,
            )
            .prop_map(Value::Array),
        ),
        prop::option::of((0i64..4).prop_map(|n| json!({"d": n}))),
        any::<bool>(),
    )
        .prop_map(|(a, b, c, t, n, null_a)| {
            let mut m = Map::new();
            for (k, v) in [("a", a), ("b", b), ("c", c), ("t", t), ("n", n)] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            if null_a && !m.contains_key("a") {
                m.insert("a".into(), Value::Null);
            }
            Value::Object(m)
        })
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c", "t", "n.d", "t.0", "n", "zz"]).prop_map(String::from)
}

fn operator() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        scalar(),
        Just(Value::Null),
        (
            prop::sample::select(vec![
                "$eq",
                "$ne",
                "$gt",
                "$gte",
                "$lt",
                "$lte",
                "$contains"
            ]),
            scalar()
        )
            .prop_map(|(op, v)| json!({ op: v })),
        Just(json!({"$eq": null})),
        Just(json!({"$ne": null})),
        (
            prop::sample::select(vec!["$in", "$nin"]),
            prop::collection::vec(prop_oneof![scalar(), Just(Value::Null)], 0..4)
        )
            .prop_map(|(op, v)| json!({ op: v })),
        any::<bool>().prop_map(|b| json!({"$exists": b})),
        (
            prop::sample::select(vec!["^x", "y$", "X", ".", "t"]),
            any::<bool>()
        )
            .prop_map(|(p, i)| if i {
                json!({"$regex": p, "$options": "i"})
            } else {
                json!({"$regex": p})
            }),
        (scalar(), scalar()).prop_map(|(lo, hi)| json!({"$gte": lo, "$lt": hi})),
        Just(json!({"a": 1})),
        Just(json!([1, 2])),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        inner
            .prop_filter("operators only", |c| {
                c.as_object()
                    .is_some_and(|o| !o.is_empty() && o.keys().all(|k| k.starts_with('$')))
            })
            .prop_map(|c| json!({ "$not": c }))
    })
}

fn filter() -> impl Strategy<Value = Value> {
    let field = prop::collection::vec((path(), operator()), 0..3).prop_map(|pairs| {
        let mut m = Map::new();
        for (p, c) in pairs {
            m.insert(p, c);
        }
        Value::Object(m)
    });
    field.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["$and", "$or", "$nor"]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(op, fs)| json!({ op: fs })),
            inner.clone().prop_map(|f| json!({"$not": f})),
            (inner.clone(), inner).prop_map(|(a, b)| {
                let mut m = a.as_object().unwrap().clone();
                for (k, v) in b.as_object().unwrap() {
                    m.entry(k.clone()).or_insert(v.clone());
                }
                Value::Object(m)
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn operators_agree_with_a_plain_interpreter(
        f in filter(),
        records in prop::collection::vec(record(), 1..12),
    ) {
        let compiled = Filter::parse(&f).map_err(|e| TestCaseError::fail(format!("{f}: {e}")))?;
        for r in &records {
            prop_assert_eq!(compiled.matches(r), oracle(r, &f), "filter {} record {}", f, r);
        }
    }

    #[test]
    fn unknown_operators_are_refused_wherever_they_stand(
        op in prop::sample::select(vec!["$startsWith", "$endsWith", "$size", "$all", "$elemMatch", "$type", "$where", "$foo", "$regexp", "$like"]),
        at in 0usize..4,
        f in filter(),
    ) {
        let bad = match at {
            0 => json!({"a": {op: "x"}}),
            1 => json!({"$or": [f.clone(), {"b": {op: 1}}]}),
            2 => json!({"a": {"$not": {op: [1]}}}),
            _ => json!({op: f}),
        };
        let e = Filter::parse(&bad).expect_err("refused");
        prop_assert_eq!(e.kind(), s3db::ErrorKind::InvalidArgument);
        prop_assert!(e.message().contains(op), "{}", e);
    }
}
