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
    /// The rule string (object notation is turned into one).
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
    pub enum_values: Option<Vec<String>>,
    pub pattern: Option<regex_lite::Regex>,
    pub trim: bool,
    pub lowercase: bool,
    pub uppercase: bool,
    /// Object-notation field other than an array: stored as `String(value)` (s3db.js).
    pub as_plain_string: bool,
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

impl Rule {
    pub fn parse(text: &str) -> Result<Rule, String> {
        let mut parts = text.split('|').map(str::trim);
        let base = parts.next().unwrap_or("").to_string();
        if !base_known(&base) {
            return Err(format!("unknown type {base:?}"));
        }
        let mut rule = Rule {
            text: text.to_string(),
            kind: Kind::of(text),
            base: base.clone(),
            optional: false,
            default: None,
            min: None,
            max: None,
            length: None,
            integer: is_integer_rule(text),
            positive: false,
            enum_values: None,
            pattern: None,
            trim: true,
            lowercase: false,
            uppercase: false,
            as_plain_string: false,
        };
        for part in parts {
            let (name, arg) = match part.split_once(':') {
                Some((n, a)) => (n, Some(a)),
                None => (part, None),
            };
            let flag = arg.map(|a| a != "false").unwrap_or(true);
            let number = |a: Option<&str>| -> Result<f64, String> {
                a.and_then(|a| a.parse::<f64>().ok())
                    .ok_or_else(|| format!("rule {part:?} needs a number"))
            };
            match name {
                "optional" => rule.optional = flag,
                "required" => rule.optional = !flag,
                "default" => rule.default = Some(default_value(&rule.kind, arg.unwrap_or(""))),
                "min" => rule.min = Some(number(arg)?),
                "max" => rule.max = Some(number(arg)?),
                "length" => rule.length = Some(number(arg)? as usize),
                "integer" => rule.integer = flag,
                "positive" => rule.positive = flag,
                "trim" => rule.trim = flag,
                "lowercase" => rule.lowercase = flag,
                "uppercase" => rule.uppercase = flag,
                "enum" | "values" => {
                    rule.enum_values =
                        Some(arg.unwrap_or("").split(',').map(str::to_string).collect())
                }
                "pattern" => {
                    let re = regex_lite::Regex::new(arg.unwrap_or(""))
                        .map_err(|e| format!("pattern {arg:?}: {e}"))?;
                    rule.pattern = Some(re)
                }
                "items" | "convert" | "empty" | "maxlength" | "minlength" | "props" | "strict"
                | "nullable" | "unique" | "label" | "encoding" => {}
                _ if name.starts_with("embedding")
                    || name.starts_with("decimal")
                    || name.starts_with("geo") => {}
                other => return Err(format!("unknown rule {other:?}")),
            }
        }
        Ok(rule)
    }

    /// Object notation (`{type: 'number', optional: true, …}`).
    pub fn from_object(def: &Map<String, Value>) -> Result<Rule, String> {
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
        let mut rule = Rule::parse(&text)?;
        rule.as_plain_string = ty != "array";
        rule.optional = def
            .get("optional")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        rule.integer = def.get("integer").and_then(Value::as_bool).unwrap_or(false);
        rule.min = def.get("min").and_then(Value::as_f64);
        rule.max = def.get("max").and_then(Value::as_f64);
        rule.length = def
            .get("length")
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        rule.default = def.get("default").cloned();
        if let Some(values) = def.get("enum").and_then(Value::as_array) {
            rule.enum_values = Some(
                values
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect(),
            );
        }
        Ok(rule)
    }

    /// Checks and normalizes one present value (trim, conversions) or reports issues.
    pub fn check(&self, field: &str, value: Value, issues: &mut Vec<Issue>) -> Value {
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
                self.check_string(s, &value, &mut fail);
            }
        }
        value
    }

    fn check_string(&self, s: &str, value: &Value, fail: &mut impl FnMut(&str, String, &Value)) {
        if matches!(s, "null" | "undefined") {
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
        if let Some(values) = &self.enum_values {
            if !values.iter().any(|v| v == s) {
                fail("enum", format!("one of {}", values.join(", ")), value);
            }
        }
        if let Some(re) = &self.pattern {
            if !re.is_match(s) {
                fail("pattern", format!("matching {}", re.as_str()), value);
            }
        }
        let ok = match (&self.kind, self.base.as_str()) {
            (_, "email") => {
                let mut p = s.splitn(2, '@');
                let (user, host) = (p.next().unwrap_or(""), p.next().unwrap_or(""));
                !user.is_empty()
                    && host.contains('.')
                    && !host.starts_with('.')
                    && !host.ends_with('.')
                    && !s.contains(char::is_whitespace)
            }
            (_, "url") => {
                url::Url::parse(s).is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "ftp"))
            }
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
