//! Attribute rules in s3db.js (fastest-validator) syntax and their validation.

use serde_json::{Map, Value};

use super::types::{is_integer_rule, ArrayItems, Kind};

/// One failed check, as every binding reports it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Issue {
    pub field: String,
    pub rule: String,
    pub expected: String,
    pub actual: String,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule string (object notation is turned into one): it decides the stored form.
    pub text: String,
    pub kind: Kind,
    pub base: String,
    pub optional: bool,
    pub default: Option<Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub length: Option<usize>,
    pub integer: bool,
    pub positive: bool,
    pub negative: bool,
    /// Numbers: `equal` / `notEqual`.
    pub equal: Option<f64>,
    pub not_equal: Option<f64>,
    /// `enum` (strings, numbers, arrays' items) and the `values` of type `enum`.
    pub enum_values: Option<Vec<Value>>,
    pub pattern: Option<regex_lite::Regex>,
    pub trim: bool,
    pub lowercase: bool,
    pub uppercase: bool,
    /// String checks given as flags (`string|email`, `{type: 'string', alpha: true}`).
    pub checks: Vec<StringCheck>,
    /// `empty: false`: no empty string or array.
    pub non_empty: bool,
    /// `contains`: a substring, or an array element.
    pub contains: Option<Value>,
    /// Arrays: `unique`.
    pub unique: bool,
    /// Arrays: the rule every item passes (`items`).
    pub items: Option<Box<Rule>>,
    /// Objects (`{type: 'object', props: {…}}`): the rule of each property.
    pub props: Option<Vec<(String, Rule)>>,
    /// Objects: `strict` (`true`: unknown properties are refused, `"remove"`: dropped).
    pub strict: Strict,
    /// Object-notation field other than an array: stored as `String(value)` (s3db.js).
    pub as_plain_string: bool,
    /// Unknown properties tolerated in a definition read from storage (never at creation).
    pub ignored: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringCheck {
    Email,
    Url,
    Alpha,
    Numeric,
    Alphanum,
    Alphadash,
    Hex,
    SingleLine,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strict {
    #[default]
    Keep,
    Remove,
    Refuse,
}

const KNOWN_BASES: &[&str] = &[
    "string",
    "number",
    "boolean",
    "bool",
    "array",
    "object",
    "json",
    "any",
    "email",
    "url",
    "enum",
    "uuid",
    "date",
    "datetime",
    "dateonly",
    "timeonly",
    "mac",
    "cidr",
    "semver",
    "phone",
    "color",
    "duration",
    "ean",
    "money",
    "crypto",
    "decimal",
    "geo:lat",
    "geo:lon",
    "geo:point",
    "ip4",
    "ip6",
    "secret",
    "secretAny",
    "secretNumber",
    "embedding",
    "password",
    "buffer",
    "bits",
    "text",
    "cron",
    "locale",
    "currency",
    "country",
    "custom",
];

fn base_known(base: &str) -> bool {
    KNOWN_BASES.contains(&base)
        || base
            .split(':')
            .next()
            .is_some_and(|b| KNOWN_BASES.contains(&b))
}

/// Properties that describe a rule but check nothing.
const META: &[&str] = &[
    "convert",
    "nullable",
    "label",
    "description",
    "messages",
    "encoding",
    "mode",
    "__plugin__",
    "__pluginCreated__",
];

/// A rule in either notation, as (property, value) pairs: the string form gives `true` for
/// a bare flag and `true`/`false` or the text after `:` otherwise.
fn string_props(text: &str) -> (String, Vec<(String, Value)>) {
    let mut parts = text.split('|').map(str::trim);
    let base = parts.next().unwrap_or("").to_string();
    let props = parts
        .filter(|p| !p.is_empty())
        .map(|part| match part.split_once(':') {
            None => (part.to_string(), Value::Bool(true)),
            Some((n, "true")) => (n.to_string(), Value::Bool(true)),
            Some((n, "false")) => (n.to_string(), Value::Bool(false)),
            Some((n, a)) => (n.to_string(), Value::String(a.to_string())),
        })
        .collect();
    (base, props)
}

fn flag(name: &str, v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        other => Err(format!("rule {name:?} takes true or false, got {other}")),
    }
}

fn number(name: &str, v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
    .ok_or_else(|| format!("rule {name:?} needs a number, got {v}"))
}

/// `/body/flags` (how a JavaScript RegExp is written) or a bare pattern.
fn regex_of(pattern: &str, flags: &str) -> Result<regex_lite::Regex, String> {
    let (body, flags) = match pattern
        .strip_prefix('/')
        .and_then(|rest| rest.rsplit_once('/'))
    {
        Some((body, f)) if f.chars().all(|c| c.is_ascii_alphabetic()) => {
            (body.to_string(), format!("{flags}{f}"))
        }
        _ => (pattern.to_string(), flags.to_string()),
    };
    let mut inline = String::new();
    for c in flags.chars() {
        match c {
            'i' | 'm' | 's' => {
                if !inline.contains(c) {
                    inline.push(c)
                }
            }
            'u' | 'g' | 'y' | 'd' => {}
            other => return Err(format!("pattern flag {other:?} is not supported")),
        }
    }
    let full = if inline.is_empty() {
        body.clone()
    } else {
        format!("(?{inline}){body}")
    };
    regex_lite::Regex::new(&full).map_err(|e| format!("pattern {pattern:?}: {e}"))
}

impl Rule {
    fn bare(text: &str, base: &str) -> Result<Rule, String> {
        if !base_known(base) {
            return Err(format!("unknown type {base:?}"));
        }
        Ok(Rule {
            text: text.to_string(),
            kind: Kind::of(text),
            base: base.to_string(),
            optional: false,
            default: None,
            min: None,
            max: None,
            length: None,
            integer: is_integer_rule(text),
            positive: false,
            negative: false,
            equal: None,
            not_equal: None,
            enum_values: None,
            pattern: None,
            trim: true,
            lowercase: false,
            uppercase: false,
            checks: Vec::new(),
            non_empty: false,
            contains: None,
            unique: false,
            items: None,
            props: None,
            strict: Strict::Keep,
            as_plain_string: false,
            ignored: Vec::new(),
        })
    }

    /// A rule string (`"string|min:3|enum:a,b"`). Unknown properties are refused.
    pub fn parse(text: &str) -> Result<Rule, String> {
        Self::parse_as(text, false)
    }

    /// `lenient`: unknown properties are kept in [`Rule::ignored`] instead of refused (for
    /// definitions read from storage, written by another client).
    pub fn parse_as(text: &str, lenient: bool) -> Result<Rule, String> {
        let (base, props) = string_props(text);
        let mut rule = Self::bare(text, &base)?;
        rule.apply(&props, false, lenient)?;
        Ok(rule)
    }

    /// Object notation (`{type: 'number', optional: true, …}`). Unknown properties are
    /// refused.
    pub fn from_object(def: &Map<String, Value>) -> Result<Rule, String> {
        Self::from_object_as(def, false)
    }

    pub fn from_object_as(def: &Map<String, Value>, lenient: bool) -> Result<Rule, String> {
        let ty = def
            .get("type")
            .and_then(Value::as_str)
            .ok_or("object definition needs a \"type\"")?;
        let mut text = ty.to_string();
        if ty == "array" {
            if let Some(items) = def.get("items").and_then(Value::as_str) {
                text.push_str(&format!("|items:{items}"));
            }
        }
        let base = text.split('|').next().unwrap_or("").to_string();
        let mut rule = Self::bare(&text, &base)?;
        rule.as_plain_string = ty != "array";
        // Stored as the plain `type`: its own flags (`integer`) do not change the encoding.
        rule.integer = false;
        let props: Vec<(String, Value)> = def
            .iter()
            .filter(|(k, _)| k.as_str() != "type")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        rule.apply(&props, true, lenient)?;
        Ok(rule)
    }

    /// Applies the properties of either notation, the same way.
    fn apply(
        &mut self,
        props: &[(String, Value)],
        object_form: bool,
        lenient: bool,
    ) -> Result<(), String> {
        for (name, v) in props {
            let name = name.as_str();
            match name {
                "optional" => self.optional = flag(name, v)?,
                "required" => self.optional = !flag(name, v)?,
                "default" => {
                    self.default = Some(match v {
                        Value::String(s) if !object_form => default_value(&self.kind, s),
                        Value::Bool(b) if !object_form => {
                            default_value(&self.kind, if *b { "true" } else { "false" })
                        }
                        other => other.clone(),
                    })
                }
                "min" | "minlength" => self.min = Some(number(name, v)?),
                "max" | "maxlength" => self.max = Some(number(name, v)?),
                "length" => self.length = Some(number(name, v)? as usize),
                "equal" => self.equal = Some(number(name, v)?),
                "notEqual" => self.not_equal = Some(number(name, v)?),
                "integer" => self.integer = flag(name, v)?,
                "positive" => self.positive = flag(name, v)?,
                "negative" => self.negative = flag(name, v)?,
                "trim" => self.trim = flag(name, v)?,
                "lowercase" | "localeLowercase" | "normalize" => self.lowercase = flag(name, v)?,
                "uppercase" | "localeUppercase" => self.uppercase = flag(name, v)?,
                "unique" => self.unique = flag(name, v)?,
                "empty" => self.non_empty = !flag(name, v)?,
                "email" | "url" | "alpha" | "numeric" | "alphanum" | "alphadash" | "hex"
                | "singleLine" | "base64" => {
                    let check = match name {
                        "email" => StringCheck::Email,
                        "url" => StringCheck::Url,
                        "alpha" => StringCheck::Alpha,
                        "numeric" => StringCheck::Numeric,
                        "alphanum" => StringCheck::Alphanum,
                        "alphadash" => StringCheck::Alphadash,
                        "hex" => StringCheck::Hex,
                        "singleLine" => StringCheck::SingleLine,
                        _ => StringCheck::Base64,
                    };
                    if flag(name, v)? {
                        self.checks.push(check);
                    }
                }
                "enum" | "values" => {
                    let list: Vec<Value> = match v {
                        Value::Array(a) => a.clone(),
                        Value::String(s) => s.split(',').map(|item| self.enum_item(item)).collect(),
                        other => return Err(format!("rule {name:?} takes a list, got {other}")),
                    };
                    self.enum_values = Some(list);
                }
                "pattern" => {
                    let Value::String(p) = v else {
                        return Err(format!("rule \"pattern\" takes a string, got {v}"));
                    };
                    let flags = props
                        .iter()
                        .find(|(n, _)| n == "patternFlags")
                        .and_then(|(_, f)| f.as_str())
                        .unwrap_or("");
                    self.pattern = Some(regex_of(p, flags)?);
                }
                "patternFlags" => {
                    if !props.iter().any(|(n, _)| n == "pattern") {
                        return Err("rule \"patternFlags\" needs \"pattern\"".into());
                    }
                }
                "contains" => self.contains = Some(v.clone()),
                "items" => {
                    let item = match v {
                        Value::String(t) => Rule::parse_as(t, lenient)?,
                        Value::Object(o) if o.get("type").is_some_and(Value::is_string) => {
                            Rule::from_object_as(o, lenient)?
                        }
                        Value::Object(o) => object_rule(o, lenient)?,
                        other => return Err(format!("rule \"items\" takes a rule, got {other}")),
                    };
                    self.items = Some(Box::new(item));
                }
                "props" | "properties" => {
                    let Value::Object(o) = v else {
                        return Err(format!("rule {name:?} takes an object"));
                    };
                    self.props = Some(props_of(o, lenient)?);
                    // Like a nested attribute object, undeclared properties are refused
                    // unless `strict` says otherwise.
                    if !props.iter().any(|(n, _)| n == "strict") {
                        self.strict = Strict::Refuse;
                    }
                }
                "strict" => {
                    self.strict = match v {
                        Value::Bool(true) => Strict::Refuse,
                        Value::Bool(false) => Strict::Keep,
                        Value::String(s) if s == "remove" => Strict::Remove,
                        other => {
                            return Err(format!(
                                "rule \"strict\" takes true, false or \"remove\", got {other}"
                            ))
                        }
                    }
                }
                _ if META.contains(&name) => {}
                _ if name.starts_with("embedding")
                    || name.starts_with("decimal")
                    || name.starts_with("geo") => {}
                other if lenient => self.ignored.push(other.to_string()),
                other => return Err(format!("unknown rule {other:?}")),
            }
        }
        if self.base == "enum" && self.enum_values.is_none() {
            return Err("type \"enum\" needs values".into());
        }
        Ok(())
    }

    /// One item of `enum:a,b` as the rule's type reads it (numbers for a number rule).
    fn enum_item(&self, item: &str) -> Value {
        let numeric = matches!(
            self.kind,
            Kind::Number | Kind::Integer | Kind::Money(_) | Kind::Decimal(_)
        );
        match item.trim() {
            t if numeric => t
                .parse::<f64>()
                .map(super::types::number_value)
                .unwrap_or_else(|_| Value::String(item.to_string())),
            "true" | "false" if self.kind == Kind::Boolean => Value::Bool(item.trim() == "true"),
            _ => Value::String(item.to_string()),
        }
    }

    /// Checks and normalizes one present value (trim, conversions) or reports issues.
    pub fn check(&self, field: &str, value: Value, issues: &mut Vec<Issue>) -> Value {
        let value = self.check_own(field, value, issues);
        self.check_nested(field, value, issues)
    }

    /// Whether `enum` / `values` allow `v`.
    fn allowed(&self, v: &Value) -> bool {
        self.enum_values
            .as_ref()
            .is_none_or(|vals| vals.iter().any(|a| same_value(a, v)))
    }

    fn enum_text(&self) -> String {
        let vals = self.enum_values.as_deref().unwrap_or_default();
        let text: Vec<String> = vals
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        format!("one of {}", text.join(", "))
    }

    /// Items (`items`) and properties (`props`, `strict`) of a value that passed its own
    /// checks. Items are only checked; properties are normalized like top-level fields.
    fn check_nested(&self, field: &str, value: Value, issues: &mut Vec<Issue>) -> Value {
        if let (Some(item), Value::Array(items)) = (&self.items, &value) {
            for (i, v) in items.iter().enumerate() {
                item.check(&format!("{field}[{i}]"), v.clone(), issues);
            }
        }
        let (Some(props), Value::Object(mut obj)) = (&self.props, value.clone()) else {
            return value;
        };
        for (name, rule) in props {
            let path = format!("{field}.{name}");
            match obj.get(name) {
                None | Some(Value::Null) => {
                    obj.shift_remove(name);
                    if let Some(d) = &rule.default {
                        obj.insert(name.clone(), d.clone());
                    } else if !rule.optional {
                        issues.push(Issue {
                            field: path,
                            rule: "required".into(),
                            expected: "a value".into(),
                            actual: "nothing".into(),
                        });
                    }
                }
                Some(v) => {
                    let checked = rule.check(&path, v.clone(), issues);
                    obj.insert(name.clone(), checked);
                }
            }
        }
        let unknown: Vec<String> = obj
            .keys()
            .filter(|k| !props.iter().any(|(n, _)| n == *k))
            .cloned()
            .collect();
        match self.strict {
            Strict::Keep => {}
            Strict::Remove => unknown.iter().for_each(|k| {
                obj.shift_remove(k);
            }),
            Strict::Refuse => issues.extend(unknown.into_iter().map(|k| Issue {
                field: format!("{field}.{k}"),
                rule: "unknown".into(),
                expected: "a declared property".into(),
                actual: "an undeclared field".into(),
            })),
        }
        Value::Object(obj)
    }

    fn check_own(&self, field: &str, value: Value, issues: &mut Vec<Issue>) -> Value {
        let mut fail = |rule: &str, expected: String, actual: &Value| {
            issues.push(Issue {
                field: field.to_string(),
                rule: rule.to_string(),
                expected,
                actual: short(actual),
            })
        };
        let base = self.base.split(':').next().unwrap_or("");
        let value = match (&self.kind, value) {
            (
                Kind::Number
                | Kind::Integer
                | Kind::Money(_)
                | Kind::Decimal(_)
                | Kind::GeoLat(_)
                | Kind::GeoLon(_),
                Value::String(s),
            ) if s.trim().parse::<f64>().is_ok() => {
                super::types::number_value(s.trim().parse().unwrap_or(0.0))
            }
            (Kind::Boolean, Value::String(s)) => match s.as_str() {
                "true" | "1" | "on" | "yes" => Value::Bool(true),
                "false" | "0" | "off" | "no" => Value::Bool(false),
                _ => Value::String(s),
            },
            (Kind::Boolean, Value::Number(n)) if n.as_f64() == Some(1.0) => Value::Bool(true),
            (Kind::Boolean, Value::Number(n)) if n.as_f64() == Some(0.0) => Value::Bool(false),
            (_, Value::String(s)) if self.trim && !matches!(self.kind, Kind::Secret) => {
                let mut s = s.trim().to_string();
                if self.lowercase || matches!(self.kind, Kind::Mac | Kind::Color) {
                    s = s.to_lowercase();
                }
                if self.uppercase {
                    s = s.to_uppercase();
                }
                Value::String(s)
            }
            (_, v) => v,
        };
        if base == "enum" {
            if !self.allowed(&value) {
                fail("enum", self.enum_text(), &value);
            }
            return value;
        }
        let numeric = matches!(
            self.kind,
            Kind::Number
                | Kind::Integer
                | Kind::Money(_)
                | Kind::Decimal(_)
                | Kind::GeoLat(_)
                | Kind::GeoLon(_)
        );
        if numeric {
            let Some(n) = value.as_f64() else {
                fail("type", "number".into(), &value);
                return value;
            };
            if (self.integer || self.kind == Kind::Integer) && n.fract() != 0.0 {
                fail("integer", "an integer".into(), &value);
            }
            if self.positive && n <= 0.0 {
                fail("positive", "a positive number".into(), &value);
            }
            if self.negative && n >= 0.0 {
                fail("negative", "a negative number".into(), &value);
            }
            if let Some(e) = self.equal {
                if n != e {
                    fail("equal", format!("{e}"), &value);
                }
            }
            if let Some(e) = self.not_equal {
                if n == e {
                    fail("notEqual", format!("not {e}"), &value);
                }
            }
            if !self.allowed(&value) {
                fail("enum", self.enum_text(), &value);
            }
            if let Some(min) = self.min {
                if n < min {
                    fail("min", format!(">= {min}"), &value);
                }
            }
            if let Some(max) = self.max {
                if n > max {
                    fail("max", format!("<= {max}"), &value);
                }
            }
            match self.kind {
                Kind::GeoLat(_) if !(-90.0..=90.0).contains(&n) => {
                    fail("range", "latitude in [-90, 90]".into(), &value)
                }
                Kind::GeoLon(_) if !(-180.0..=180.0).contains(&n) => {
                    fail("range", "longitude in [-180, 180]".into(), &value)
                }
                _ => {}
            }
            return value;
        }
        match &self.kind {
            Kind::Boolean => {
                if !value.is_boolean() {
                    fail("type", "boolean".into(), &value)
                } else if !self.allowed(&value) {
                    fail("enum", self.enum_text(), &value);
                }
            }
            Kind::Array(items) => match value.as_array() {
                None => fail("type", "array".into(), &value),
                Some(a) => {
                    if let Some(min) = self.min {
                        if (a.len() as f64) < min {
                            fail("min", format!("at least {min} items"), &value);
                        }
                    }
                    if let Some(max) = self.max {
                        if (a.len() as f64) > max {
                            fail("max", format!("at most {max} items"), &value);
                        }
                    }
                    let ok = match items {
                        ArrayItems::String => a.iter().all(Value::is_string),
                        ArrayItems::Number | ArrayItems::Integer => a.iter().all(Value::is_number),
                        ArrayItems::Json => true,
                    };
                    if !ok {
                        fail("items", format!("{items:?} items").to_lowercase(), &value);
                    }
                    if let Some(l) = self.length {
                        if a.len() != l {
                            fail("length", format!("{l} items"), &value);
                        }
                    }
                    if self.non_empty && a.is_empty() {
                        fail("empty", "at least one item".into(), &value);
                    }
                    if self.unique {
                        let dup = a
                            .iter()
                            .enumerate()
                            .any(|(i, x)| a[..i].iter().any(|y| same_value(x, y)));
                        if dup {
                            fail("unique", "no repeated items".into(), &value);
                        }
                    }
                    if let Some(c) = &self.contains {
                        if !a.iter().any(|x| same_value(x, c)) {
                            fail("contains", format!("an item {c}"), &value);
                        }
                    }
                    if !a.iter().all(|x| self.allowed(x)) {
                        fail("enum", format!("items {}", self.enum_text()), &value);
                    }
                }
            },
            Kind::Embedding(n) => match value.as_array() {
                Some(a) if a.iter().all(Value::is_number) => {
                    if let Some(n) = n.or(self.length) {
                        if a.len() != n {
                            fail("length", format!("{n} numbers"), &value);
                        }
                    }
                }
                _ => fail("type", "array of numbers".into(), &value),
            },
            Kind::Json => {
                if base == "object" && !value.is_object() {
                    fail("type", "object".into(), &value);
                }
            }
            Kind::GeoPoint(_) => {
                if !(value.is_array() || value.is_object()) {
                    fail("type", "[lat, lon] or {lat, lon}".into(), &value);
                }
            }
            Kind::Duration => {
                let ok = value.is_number()
                    || value
                        .as_str()
                        .is_some_and(|s| super::types::duration_ms(s).is_some());
                if !ok {
                    fail("type", "a duration (PT1H30M or 1h30m)".into(), &value);
                }
            }
            Kind::Secret => {
                if base == "secretNumber" && !value.is_number() && !value.is_string() {
                    fail("type", "number".into(), &value);
                }
            }
            Kind::Unsupported(what) => fail(
                "type",
                format!("a supported type ({what} cannot be stored by s3db.js 21.6.2)"),
                &value,
            ),
            _ => {
                let Some(s) = value.as_str() else {
                    fail("type", "string".into(), &value);
                    return value;
                };
                self.check_string(s, &value, field.ends_with(']'), &mut fail);
            }
        }
        value
    }

    fn check_string(
        &self,
        s: &str,
        value: &Value,
        item: bool,
        fail: &mut impl FnMut(&str, String, &Value),
    ) {
        if !item && matches!(s, "null" | "undefined") {
            fail(
                "lossless",
                "a string s3db.js can read back (it reads \"null\"/\"undefined\" as absent)".into(),
                value,
            );
        }
        let len = s.chars().count();
        if let Some(min) = self.min {
            if (len as f64) < min {
                fail("min", format!("at least {min} characters"), value);
            }
        }
        if let Some(max) = self.max {
            if (len as f64) > max {
                fail("max", format!("at most {max} characters"), value);
            }
        }
        if let Some(l) = self.length {
            if len != l {
                fail("length", format!("{l} characters"), value);
            }
        }
        if !self.allowed(value) {
            fail("enum", self.enum_text(), value);
        }
        if self.non_empty && s.is_empty() {
            fail("empty", "a non-empty string".into(), value);
        }
        if let Some(c) = &self.contains {
            if !c.as_str().is_some_and(|c| s.contains(c)) {
                fail("contains", format!("a string containing {c}"), value);
            }
        }
        for check in &self.checks {
            let ok = match check {
                StringCheck::Email => is_email(s),
                StringCheck::Url => is_url(s),
                StringCheck::Alpha => s.chars().all(|c| c.is_ascii_alphabetic()),
                StringCheck::Numeric => s.chars().all(|c| c.is_ascii_digit()),
                StringCheck::Alphanum => s.chars().all(|c| c.is_ascii_alphanumeric()),
                StringCheck::Alphadash => s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                StringCheck::Hex => {
                    !s.is_empty()
                        && s.len().is_multiple_of(2)
                        && s.chars().all(|c| c.is_ascii_hexdigit())
                }
                StringCheck::SingleLine => !s.contains(['\r', '\n']),
                StringCheck::Base64 => is_base64(s),
            };
            if !ok {
                fail("format", format!("{check:?}").to_lowercase(), value);
            }
        }
        if let Some(re) = &self.pattern {
            if !re.is_match(s) {
                fail("pattern", format!("matching {}", re.as_str()), value);
            }
        }
        let ok = match (&self.kind, self.base.as_str()) {
            (_, "email") => is_email(s),
            (_, "url") => is_url(s),
            (Kind::Uuid, _) => {
                let hex: String = s.chars().filter(|c| *c != '-').collect();
                hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
            }
            (Kind::Ip4, _) => s.parse::<std::net::Ipv4Addr>().is_ok(),
            (Kind::Ip6, _) => s.parse::<std::net::Ipv6Addr>().is_ok(),
            (Kind::Datetime, _) => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            (Kind::Dateonly, _) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            (Kind::Timeonly, _) => chrono::NaiveTime::parse_from_str(s, "%H:%M:%S%.f").is_ok(),
            (Kind::Mac, _) => {
                s.split(':').count() == 6
                    && s.split(':')
                        .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
            }
            (Kind::Cidr, _) => s.split_once('/').is_some_and(|(ip, l)| {
                ip.parse::<std::net::Ipv4Addr>().is_ok() && l.parse::<u8>().is_ok_and(|l| l <= 32)
            }),
            (Kind::Semver, _) => {
                let p: Vec<&str> = s.split('.').collect();
                p.len() == 3
                    && p.iter().all(|x| x.parse::<u32>().is_ok())
                    && p[1].parse::<u32>().unwrap_or(1000) < 1000
                    && p[2].parse::<u32>().unwrap_or(1000) < 1000
            }
            (Kind::Phone, _) => s.strip_prefix('+').is_some_and(|d| {
                (6..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit())
            }),
            (Kind::Color, _) => {
                s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
            }
            (Kind::Ean, _) => {
                matches!(s.len(), 8 | 12 | 13 | 14) && s.chars().all(|c| c.is_ascii_digit())
            }
            _ => true,
        };
        if !ok {
            fail("format", format!("a valid {}", self.base), value);
        }
    }
}

fn is_email(s: &str) -> bool {
    let mut p = s.splitn(2, '@');
    let (user, host) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
    !user.is_empty()
        && host.contains('.')
        && !host.starts_with('.')
        && !host.ends_with('.')
        && !s.contains(char::is_whitespace)
}

fn is_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "ftp"))
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).is_ok()
}

/// JSON equality with numbers compared by value (`1` and `1.0` are the same).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| same_value(a, b)))
        }
        _ => a == b,
    }
}

/// A nested plain object, as s3db.js reads it: `{type: 'object', props, strict: false}`,
/// optional unless its `$$type` says `required`.
fn object_rule(o: &Map<String, Value>, lenient: bool) -> Result<Rule, String> {
    let mut rule = Rule::bare("object", "object")?;
    let ty = o.get("$$type").and_then(Value::as_str).unwrap_or("");
    rule.optional = !ty.contains("required");
    rule.strict = Strict::Refuse;
    let inner: Map<String, Value> = o
        .iter()
        .filter(|(k, _)| !k.starts_with("$$"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    rule.props = Some(props_of(&inner, lenient)?);
    Ok(rule)
}

/// The rules of an object's properties (`props` / `properties`).
fn props_of(o: &Map<String, Value>, lenient: bool) -> Result<Vec<(String, Rule)>, String> {
    o.iter()
        .filter(|(k, _)| !k.contains("$$"))
        .map(|(k, v)| {
            let rule = match v {
                Value::String(t) => Rule::parse_as(t, lenient),
                Value::Object(d)
                    if d.get("type").is_some_and(Value::is_string) && !d.contains_key("$$type") =>
                {
                    Rule::from_object_as(d, lenient)
                }
                Value::Object(d) => object_rule(d, lenient),
                other => Err(format!("a rule string or object, got {other}")),
            }
            .map_err(|e| format!("property {k:?}: {e}"))?;
            Ok((k.clone(), rule))
        })
        .collect()
}

fn default_value(kind: &Kind, arg: &str) -> Value {
    match kind {
        Kind::Number | Kind::Integer => arg
            .parse::<f64>()
            .map(super::types::number_value)
            .unwrap_or_else(|_| Value::String(arg.into())),
        Kind::Boolean => Value::Bool(arg == "true"),
        _ => Value::String(arg.into()),
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}
