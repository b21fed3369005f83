//! The same rule written in each notation s3db.js accepts (fastest-validator pipe strings,
//! objects with `type`, `$$type` nested objects, `props`/`properties`, `items`) accepts and
//! refuses the same values, and normalizes them the same way.

mod common;

use s3db::schema::{check_attributes, Schema};
use s3db::ErrorKind;
use serde_json::{json, Map, Value};

const MISSING: &str = "<missing>";

/// `Ok(normalized record)` or `Err(())` for a value of attribute `x` under `def`.
fn validate(def: &Value, value: &Value) -> Result<Value, ()> {
    let attrs: Map<String, Value> = json!({ "x": def }).as_object().unwrap().clone();
    check_attributes(&attrs).unwrap_or_else(|e| panic!("{def} is a valid definition: {e}"));
    let schema = Schema::new("v1".into(), &attrs, &Map::new(), &[], "pw").unwrap();
    let mut record = Map::new();
    if value != &json!(MISSING) {
        record.insert("x".into(), value.clone());
    }
    schema.validate(record).map(Value::Object).map_err(|_| ())
}

/// Every form accepts exactly `accepted` among `values`, with the same normalized record.
fn same_rule(forms: &[Value], values: &[Value], accepted: &[Value]) {
    for v in values {
        let results: Vec<Result<Value, ()>> = forms.iter().map(|f| validate(f, v)).collect();
        let want = accepted.contains(v);
        for (form, r) in forms.iter().zip(&results) {
            assert_eq!(
                r.is_ok(),
                want,
                "{form} {} {v}",
                if want { "must accept" } else { "must refuse" }
            );
            assert_eq!(
                r, &results[0],
                "{form} and {} normalize {v} alike",
                forms[0]
            );
        }
    }
}

#[test]
fn enums_in_every_form() {
    same_rule(
        &[
            json!("string|enum:a,b"),
            json!({"type": "string", "enum": ["a", "b"]}),
        ],
        &[
            json!("a"),
            json!("b"),
            json!("c"),
            json!(""),
            json!("a,b"),
            json!(1),
            json!(MISSING),
        ],
        &[json!("a"), json!("b")],
    );
    same_rule(
        &[
            json!("enum|values:a,b"),
            json!({"type": "enum", "values": ["a", "b"]}),
        ],
        &[
            json!("a"),
            json!("b"),
            json!("c"),
            json!(1),
            json!(true),
            json!(MISSING),
        ],
        &[json!("a"), json!("b")],
    );
    same_rule(
        &[
            json!("number|enum:1,2,3"),
            json!({"type": "number", "enum": [1, 2, 3]}),
        ],
        &[
            json!(1),
            json!(3),
            json!(3.0),
            json!(4),
            json!("x"),
            json!(0),
        ],
        &[json!(1), json!(3), json!(3.0)],
    );
    same_rule(
        &[
            json!("array|items:string|enum:a,b"),
            json!({"type": "array", "items": "string", "enum": ["a", "b"]}),
        ],
        &[json!(["a", "b"]), json!([]), json!(["a", "c"]), json!("a")],
        &[json!(["a", "b"]), json!([])],
    );
    same_rule(
        &[
            json!({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}),
            json!({"type": "array", "items": "string|enum:a,b"}),
        ],
        &[json!(["a", "b"]), json!(["c"]), json!([1])],
        &[json!(["a", "b"])],
    );
}

#[test]
fn scalar_rules_in_both_notations() {
    same_rule(
        &[
            json!("string|optional|min:2|max:5"),
            json!({"type": "string", "optional": true, "min": 2, "max": 5}),
            json!({"type": "string", "required": false, "minlength": 2, "maxlength": 5}),
        ],
        &[
            json!("ab"),
            json!("abcde"),
            json!("a"),
            json!("abcdef"),
            json!(5),
            json!(MISSING),
        ],
        &[json!("ab"), json!("abcde"), json!(MISSING)],
    );
    same_rule(
        &[
            json!("string|required"),
            json!("string"),
            json!({"type": "string"}),
            json!({"type": "string", "required": true}),
        ],
        &[json!("x"), json!(MISSING), json!(null), json!(true)],
        &[json!("x")],
    );
    same_rule(
        &[
            json!("number|integer|positive|max:10"),
            json!({"type": "number", "integer": true, "positive": true, "max": 10}),
        ],
        &[
            json!(1),
            json!(10),
            json!(0),
            json!(1.5),
            json!(11),
            json!(-1),
            json!("x"),
        ],
        &[json!(1), json!(10)],
    );
    same_rule(
        &[
            json!("number|negative|notEqual:-2"),
            json!({"type": "number", "negative": true, "notEqual": -2}),
        ],
        &[json!(-1), json!(-2), json!(0), json!(3)],
        &[json!(-1)],
    );
    same_rule(
        &[
            json!("string|pattern:^[a-z]+$"),
            json!("string|pattern:/^[a-z]+$/"),
            json!({"type": "string", "pattern": "^[a-z]+$"}),
            json!({"type": "string", "pattern": "/^[a-z]+$/"}),
        ],
        &[json!("abc"), json!("aBc"), json!("a1"), json!("")],
        &[json!("abc")],
    );
    same_rule(
        &[
            json!("string|pattern:/^[a-z]+$/i"),
            json!({"type": "string", "pattern": "^[a-z]+$", "patternFlags": "i"}),
        ],
        &[json!("aBc"), json!("a1")],
        &[json!("aBc")],
    );
    same_rule(
        &[
            json!("email"),
            json!("string|email"),
            json!({"type": "email"}),
            json!({"type": "string", "email": true}),
        ],
        &[json!("ada@example.com"), json!("nope"), json!("a@b")],
        &[json!("ada@example.com")],
    );
    same_rule(
        &[
            json!("url"),
            json!("string|url"),
            json!({"type": "url"}),
            json!({"type": "string", "url": true}),
        ],
        &[json!("https://example.com/a"), json!("example.com")],
        &[json!("https://example.com/a")],
    );
    same_rule(
        &[
            json!("string|alphanum|empty:false"),
            json!({"type": "string", "alphanum": true, "empty": false}),
        ],
        &[json!("ab1"), json!("a-b"), json!("")],
        &[json!("ab1")],
    );
    same_rule(
        &[
            json!("boolean|optional"),
            json!("bool|optional"),
            json!({"type": "boolean", "optional": true}),
        ],
        &[json!(true), json!(false), json!("x"), json!(MISSING)],
        &[json!(true), json!(false), json!(MISSING)],
    );
    // Normalization: the same value comes out.
    same_rule(
        &[
            json!("string|lowercase"),
            json!({"type": "string", "lowercase": true}),
        ],
        &[json!("  ABC ")],
        &[json!("  ABC ")],
    );
    assert_eq!(
        validate(
            &json!({"type": "string", "lowercase": true}),
            &json!("  ABC ")
        )
        .unwrap(),
        json!({"x": "abc"})
    );
    same_rule(
        &[
            json!("string|default:hello"),
            json!({"type": "string", "default": "hello"}),
        ],
        &[json!(MISSING), json!("x")],
        &[json!(MISSING), json!("x")],
    );
    assert_eq!(
        validate(&json!("string|default:true"), &json!(MISSING)).unwrap(),
        json!({"x": "true"}),
        "a string default stays a string"
    );
}

#[test]
fn arrays_and_objects_in_every_form() {
    same_rule(
        &[
            json!("array|items:string|min:1"),
            json!({"type": "array", "items": "string", "min": 1}),
            json!({"type": "array", "items": {"type": "string"}, "min": 1}),
        ],
        &[json!(["a"]), json!([]), json!([1]), json!("a")],
        &[json!(["a"])],
    );
    same_rule(
        &[
            json!("array|unique"),
            json!({"type": "array", "unique": true}),
        ],
        &[json!([1, 2]), json!([1, 1]), json!([1, 1.0])],
        &[json!([1, 2])],
    );
    // A required object: `$$type: 'object|required'` and object notation with props.
    same_rule(
        &[
            json!({"$$type": "object|required", "y": "string", "z": "number|optional"}),
            json!({"type": "object", "props": {"y": "string", "z": "number|optional"}}),
            json!({"type": "object", "properties": {"y": {"type": "string"}, "z": {"type": "number", "optional": true}}}),
        ],
        &[
            json!({"y": "s"}),
            json!({"y": "s", "z": 2}),
            json!({"y": 1}),
            json!({}),
            json!({"y": "s", "extra": 1}),
            json!({"y": "s", "z": "no"}),
            json!(MISSING),
        ],
        &[json!({"y": "s"}), json!({"y": "s", "z": 2})],
    );
    // An optional object: plain nesting (s3db.js makes nested objects optional), `$$type`,
    // object notation.
    same_rule(
        &[
            json!({"y": "string"}),
            json!({"$$type": "object|optional", "y": "string"}),
            json!({"type": "object", "optional": true, "props": {"y": "string"}}),
        ],
        &[
            json!({"y": "s"}),
            json!({"y": 1}),
            json!({}),
            json!(MISSING),
        ],
        &[json!({"y": "s"}), json!(MISSING)],
    );
    // Arrays of objects check every item's properties.
    same_rule(
        &[
            json!({"type": "array", "items": {"type": "object", "properties": {"author": "string"}}}),
            json!({"type": "array", "items": {"type": "object", "props": {"author": {"type": "string"}}}}),
        ],
        &[
            json!([{"author": "a"}]),
            json!([{"author": 1}]),
            json!([{}]),
            json!(["a"]),
        ],
        &[json!([{"author": "a"}])],
    );
}

#[test]
fn unknown_rule_properties_are_refused_at_definition_in_both_notations() {
    for def in [
        json!("string|frobnicate"),
        json!("string|frobnicate:3"),
        json!({"type": "string", "frobnicate": true}),
        json!({"type": "string", "min": "lots"}),
        json!("string|min:lots"),
        json!({"type": "enum"}),
        json!("enum"),
        json!({"type": "string", "pattern": "("}),
        json!("string|pattern:("),
        json!({"type": "object", "props": {"y": "strang"}}),
    ] {
        let attrs = json!({ "x": def }).as_object().unwrap().clone();
        let e = check_attributes(&attrs).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Validation, "{def}: {e}");
    }
    // A definition read from storage (written by another client) still opens; what this
    // engine does not know is left unenforced, with a warning, in both notations alike.
    for def in [
        json!("string|frobnicate"),
        json!({"type": "string", "frobnicate": true}),
    ] {
        let attrs = json!({ "x": def }).as_object().unwrap().clone();
        let schema = Schema::new("v1".into(), &attrs, &Map::new(), &[], "pw").unwrap();
        assert_eq!(schema.field("x").unwrap().rule.ignored, vec!["frobnicate"]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_enum_object_refuses_on_insert_and_update_and_numbers_read_back() {
    for url in common::backends() {
        let db = common::connect(&url).await;
        let res = db
            .create_resource(
                "enums",
                &json!({
                    "kind": {"type": "enum", "values": ["a", "b"]},
                    "pipe": "string|enum:a,b|optional",
                    "level": {"type": "enum", "values": [1, 2], "optional": true}
                }),
            )
            .await
            .unwrap();
        for bad in [
            json!({"kind": "z"}),
            json!({"kind": "a", "pipe": "z"}),
            json!({"kind": "a", "level": 3}),
        ] {
            let e = res.insert(bad.clone()).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Validation, "{url} {bad}: {e}");
        }
        let r = res
            .insert(json!({"id": "e1", "kind": "b", "pipe": "a", "level": 2}))
            .await
            .unwrap();
        assert_eq!(res.get("e1").await.unwrap(), r, "{url}");
        assert_eq!(r["level"], json!(2));
        assert_eq!(
            res.update("e1", json!({"kind": "c"}))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::Validation
        );
        res.update("e1", json!({"kind": "a"})).await.unwrap();
        assert_eq!(res.get("e1").await.unwrap()["level"], json!(2));
    }
}
