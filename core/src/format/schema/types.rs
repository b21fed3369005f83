//! Per-type compact encodings of field values (format.md §7).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, NaiveTime, Timelike, Utc};
use serde_json::{json, Value};

use super::num::{base62_decode_f64, base62_decode_i128, base62_f64, base62_i128, js_number};

#[derive(Debug, Clone, PartialEq)]
pub enum ArrayItems {
    String,
    Number,
    Integer,
    Json,
}

/// How one field is stored, chosen from its rule string as s3db.js chooses.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    String,
    Number,
    Integer,
    Boolean,
    Array(ArrayItems),
    Embedding(Option<usize>),
    Json,
    Secret,
    Ip4,
    Ip6,
    Uuid,
    Datetime,
    Dateonly,
    Timeonly,
    Mac,
    Cidr,
    Semver,
    Phone,
    Color,
    Duration,
    Ean,
    Money(u32),
    Decimal(u32),
    GeoLat(u32),
    GeoLon(u32),
    GeoPoint(u32),
    DateConvert,
    /// Types s3db.js 21.6.2 cannot store usefully (buffer, bits, text, password).
    Unsupported(String),
}

fn param(rule: &str, name: &str) -> Option<u32> {
    rule.split('|')
        .find_map(|p| p.trim().strip_prefix(name)?.strip_prefix(':')?.parse().ok())
}

fn has_flag(rule: &str, flag: &str) -> bool {
    rule.split('|').any(|p| {
        let p = p.trim();
        p == flag
            || p.strip_prefix(flag)
                .is_some_and(|r| r.starts_with(':') && r != ":false")
    })
}

impl Kind {
    pub fn of(rule: &str) -> Kind {
        let base = rule.split('|').next().unwrap_or("").trim();
        let kind = if rule.contains("embedding") {
            Kind::Embedding(base.strip_prefix("embedding:").and_then(|n| n.parse().ok()))
        } else if rule.contains("array") {
            let items = rule
                .split('|')
                .find_map(|p| p.trim().strip_prefix("items:"))
                .unwrap_or("");
            let length = param(rule, "length").unwrap_or(0);
            if items.contains("string") {
                Kind::Array(ArrayItems::String)
            } else if items.contains("number") && length >= 256 {
                Kind::Embedding(Some(length as usize))
            } else if items.contains("number") && rule.contains("|integer") {
                Kind::Array(ArrayItems::Integer)
            } else if items.contains("number") {
                Kind::Array(ArrayItems::Number)
            } else {
                Kind::Array(ArrayItems::Json)
            }
        } else if rule.contains("secret") {
            Kind::Secret
        } else if rule.contains("password") {
            Kind::Unsupported("password".into())
        } else if rule.contains("ip4") {
            Kind::Ip4
        } else if rule.contains("ip6") {
            Kind::Ip6
        } else if rule.contains("buffer") || rule.contains("bits") {
            Kind::Unsupported(base.to_string())
        } else if rule.contains("money") {
            Kind::Money(param(rule, "money").unwrap_or(2))
        } else if rule.contains("crypto") {
            Kind::Money(param(rule, "crypto").unwrap_or(8))
        } else if rule.contains("decimal") {
            Kind::Decimal(param(rule, "decimal").unwrap_or(2))
        } else if base == "text" {
            Kind::Unsupported("text".into())
        } else if rule.contains("geo:lat") {
            Kind::GeoLat(param(rule, "geo:lat").unwrap_or(6))
        } else if rule.contains("geo:lon") {
            Kind::GeoLon(param(rule, "geo:lon").unwrap_or(6))
        } else if rule.contains("geo:point") {
            Kind::GeoPoint(param(rule, "geo:point").unwrap_or(6))
        } else if rule.contains("number") {
            if rule.contains("|integer") {
                Kind::Integer
            } else {
                Kind::Number
            }
        } else if rule.contains("boolean") || rule.contains("bool") {
            Kind::Boolean
        } else if rule.contains("json") || rule.contains("object") {
            Kind::Json
        } else {
            Kind::String
        };
        if kind != Kind::String {
            return kind;
        }
        match base {
            "uuid" => Kind::Uuid,
            b if b.contains("datetime") => Kind::Datetime,
            b if b.contains("dateonly") => Kind::Dateonly,
            "timeonly" => Kind::Timeonly,
            "mac" => Kind::Mac,
            "cidr" => Kind::Cidr,
            "semver" => Kind::Semver,
            "phone" => Kind::Phone,
            "color" => Kind::Color,
            "duration" => Kind::Duration,
            "ean" => Kind::Ean,
            "date" => Kind::DateConvert,
            _ => Kind::String,
        }
    }

    /// Types whose absent optional value s3db.js stores as the string `"undefined"`.
    pub fn stores_absent_as_undefined(&self) -> bool {
        matches!(
            self,
            Kind::Datetime
                | Kind::Dateonly
                | Kind::Timeonly
                | Kind::Mac
                | Kind::Cidr
                | Kind::Semver
                | Kind::Phone
                | Kind::Color
                | Kind::Duration
                | Kind::Ean
        )
    }
}

pub fn is_integer_rule(rule: &str) -> bool {
    has_flag(rule, "integer")
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A JSON number: integral values within 2^53 as integers, as JS prints them.
pub fn number_value(n: f64) -> Value {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        json!(n as i64)
    } else {
        serde_json::Number::from_f64(n)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn int_value(n: i128) -> Value {
    if let Ok(i) = i64::try_from(n) {
        json!(i)
    } else if let Ok(u) = u64::try_from(n) {
        json!(u)
    } else {
        number_value(n as f64)
    }
}

/// §7.2 decimal base62. Forms s3db.js would lose (`1e-7`) are written as `0.0000001`.
pub fn encode_decimal(n: f64) -> String {
    let sign = if n < 0.0 { "-" } else { "" };
    let s = js_number(n.abs());
    if let Some((int, frac)) = s.split_once('.') {
        return format!(
            "{sign}{}.{frac}",
            base62_f64(int.parse::<f64>().unwrap_or(0.0))
        );
    }
    if s.contains("e-") {
        let sci = format!("{:e}", n.abs());
        let (mantissa, exp) = sci.split_once('e').unwrap_or(("0", "0"));
        let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
        let zeros = (-exp.parse::<i32>().unwrap_or(-1) - 1).max(0) as usize;
        return format!("{sign}0.{}{digits}", "0".repeat(zeros));
    }
    format!("{sign}{}", base62_f64(n.abs()))
}

pub fn decode_decimal(s: &str) -> Value {
    let (neg, body) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let value = match body.split_once('.') {
        Some((int, frac)) => {
            let int = base62_decode_i128(int)
                .map(|i| i as f64)
                .unwrap_or(f64::NAN);
            format!("{int}.{frac}").parse::<f64>().unwrap_or(f64::NAN)
        }
        None => match base62_decode_i128(body) {
            Some(i) if i.abs() < 1 << 53 => return int_value(if neg { -i } else { i }),
            _ => base62_decode_f64(body),
        },
    };
    number_value(if neg { -value } else { value })
}

fn encode_int(v: &Value) -> Option<String> {
    if let Some(i) = v.as_i64() {
        return Some(base62_i128(i as i128));
    }
    if let Some(u) = v.as_u64() {
        return Some(base62_i128(u as i128));
    }
    num(v).map(base62_f64)
}

fn decode_int(s: &str) -> Value {
    match base62_decode_i128(s) {
        Some(i) => int_value(i),
        None => number_value(base62_decode_f64(s)),
    }
}

fn escape_item(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

fn split_items(s: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '|' => items.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    items.push(cur);
    items
}

fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => js_number(n.as_f64().unwrap_or(f64::NAN)),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn pad(s: String, width: usize) -> String {
    format!("{s:0>width$}")
}

fn ip4_bytes(s: &str) -> Option<[u8; 4]> {
    let addr: std::net::Ipv4Addr = s.parse().ok()?;
    Some(addr.octets())
}

fn parse_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp_millis())
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc().timestamp_millis())
        })
}

pub fn iso_of_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn time_ms(s: &str) -> Option<i64> {
    let t = NaiveTime::parse_from_str(s, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M"))
        .ok()?;
    Some(t.num_seconds_from_midnight() as i64 * 1000 + (t.nanosecond() / 1_000_000) as i64)
}

/// ISO-8601 (`P1DT2H`, `PT1H30M`, `PT0.5S`) or compact (`1h30m`, `90s`, `250ms`) → ms.
pub fn duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('P') {
        let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
        let mut total = 0f64;
        for (part, units) in [
            (date, &[('W', 604_800_000.0), ('D', 86_400_000.0)][..]),
            (
                time,
                &[('H', 3_600_000.0), ('M', 60_000.0), ('S', 1000.0)][..],
            ),
        ] {
            let mut num = String::new();
            for c in part.chars() {
                if c.is_ascii_digit() || c == '.' {
                    num.push(c);
                } else {
                    let (_, mult) = units.iter().find(|(u, _)| *u == c)?;
                    total += num.parse::<f64>().ok()? * mult;
                    num.clear();
                }
            }
            if !num.is_empty() {
                return None;
            }
        }
        return Some(total);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        let mult = match c {
            'd' => 86_400_000.0,
            'h' => 3_600_000.0,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1.0
            }
            'm' => 60_000.0,
            's' => 1000.0,
            _ => return None,
        };
        total += n * mult;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

pub fn iso_duration(ms: f64) -> String {
    let mut ms = ms.max(0.0);
    let days = (ms / 86_400_000.0).floor();
    ms -= days * 86_400_000.0;
    let hours = (ms / 3_600_000.0).floor();
    ms -= hours * 3_600_000.0;
    let minutes = (ms / 60_000.0).floor();
    ms -= minutes * 60_000.0;
    let seconds = ms / 1000.0;
    let mut out = String::from("P");
    if days > 0.0 {
        out.push_str(&format!("{days}D"));
    }
    let mut time = String::new();
    if hours > 0.0 {
        time.push_str(&format!("{hours}H"));
    }
    if minutes > 0.0 {
        time.push_str(&format!("{minutes}M"));
    }
    if seconds > 0.0 {
        time.push_str(&format!("{}S", js_number(seconds)));
    }
    if !time.is_empty() {
        out.push('T');
        out.push_str(&time);
    }
    if out == "P" {
        out.push_str("T0S");
    }
    out
}

fn geo(v: f64, offset: f64, p: u32) -> String {
    format!(
        "~{}",
        base62_f64(((v + offset) * 10f64.powi(p as i32)).round())
    )
}

fn ungeo(s: &str, offset: f64, p: u32) -> f64 {
    base62_decode_f64(s.trim_start_matches('~')) / 10f64.powi(p as i32) - offset
}

fn point(v: &Value) -> Option<(f64, f64)> {
    match v {
        Value::Array(a) if a.len() == 2 => Some((a[0].as_f64()?, a[1].as_f64()?)),
        Value::Object(o) => {
            let lat = o.get("lat").or_else(|| o.get("latitude"))?.as_f64()?;
            let lon = o
                .get("lon")
                .or_else(|| o.get("lng"))
                .or_else(|| o.get("longitude"))?
                .as_f64()?;
            Some((lat, lon))
        }
        _ => None,
    }
}

/// The compact stored form of a (validated) value; `None` when nothing is stored.
pub fn encode(kind: &Kind, v: &Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    Some(match kind {
        Kind::String | Kind::Unsupported(_) | Kind::Secret => js_string(v),
        Kind::Number => encode_decimal(num(v)?),
        Kind::Integer => encode_int(v)?,
        Kind::Boolean => {
            let t = matches!(v, Value::Bool(true))
                || v.as_f64() == Some(1.0)
                || matches!(v.as_str(), Some("true" | "1" | "yes" | "y"));
            if t { "1" } else { "0" }.to_string()
        }
        Kind::Array(items) => {
            let arr = v.as_array()?;
            match items {
                ArrayItems::String => arr
                    .iter()
                    .map(|i| escape_item(&js_string(i)))
                    .collect::<Vec<_>>()
                    .join("|"),
                ArrayItems::Number => arr
                    .iter()
                    .map(|i| encode_decimal(i.as_f64().unwrap_or(f64::NAN)))
                    .collect::<Vec<_>>()
                    .join("|"),
                ArrayItems::Integer => arr
                    .iter()
                    .map(|i| encode_int(i).unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join("|"),
                ArrayItems::Json => v.to_string(),
            }
        }
        Kind::Embedding(_) => {
            let arr = v.as_array()?;
            let items: Vec<String> = arr
                .iter()
                .map(|i| match i.as_f64() {
                    Some(f) if f.is_finite() => {
                        let scaled = (f * 1_000_000.0).round();
                        if scaled == 0.0 {
                            "0".into()
                        } else {
                            base62_f64(scaled)
                        }
                    }
                    _ => String::new(),
                })
                .collect();
            format!("^[{}]", items.join(","))
        }
        Kind::Json => v.to_string(),
        Kind::Ip4 => {
            let s = v.as_str()?;
            match ip4_bytes(s) {
                Some(b) => STANDARD.encode(b),
                None => s.to_string(),
            }
        }
        Kind::Ip6 => {
            let s = v.as_str()?;
            match s.parse::<std::net::Ipv6Addr>() {
                Ok(a) => STANDARD.encode(a.octets()),
                Err(_) => s.to_string(),
            }
        }
        Kind::Uuid => {
            let s = v.as_str()?;
            let hex: String = s.chars().filter(|c| *c != '-').collect();
            if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Some(s.to_string());
            }
            (0..4)
                .map(|i| {
                    pad(
                        base62_i128(
                            u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).unwrap_or(0) as i128
                        ),
                        6,
                    )
                })
                .collect()
        }
        Kind::Datetime => {
            let s = v.as_str()?;
            match parse_ms(s) {
                Some(ms) => base62_i128(ms as i128),
                None => s.to_string(),
            }
        }
        Kind::Dateonly => {
            let s = v.as_str()?;
            match parse_ms(s) {
                Some(ms) => base62_i128(ms.div_euclid(86_400_000) as i128),
                None => s.to_string(),
            }
        }
        Kind::Timeonly => {
            let s = v.as_str()?;
            match time_ms(s) {
                Some(ms) => base62_i128(ms as i128),
                None => s.to_string(),
            }
        }
        Kind::Mac => {
            let s = v.as_str()?;
            let hex: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
            match u64::from_str_radix(&hex, 16) {
                Ok(n) if hex.len() == 12 => pad(base62_i128(n as i128), 9),
                _ => s.to_string(),
            }
        }
        Kind::Cidr => {
            let s = v.as_str()?;
            match s
                .split_once('/')
                .and_then(|(ip, len)| Some((ip4_bytes(ip)?, len.parse::<u32>().ok()?)))
            {
                Some((b, len)) => format!(
                    "{}{}",
                    pad(base62_i128(u32::from_be_bytes(b) as i128), 6),
                    base62_i128(len as i128)
                ),
                None => s.to_string(),
            }
        }
        Kind::Semver => {
            let s = v.as_str()?;
            let parts: Vec<u64> = s.split('.').filter_map(|p| p.parse().ok()).collect();
            if parts.len() == 3 && parts[1] < 1000 && parts[2] < 1000 {
                base62_i128((parts[0] * 1_000_000 + parts[1] * 1000 + parts[2]) as i128)
            } else {
                s.to_string()
            }
        }
        Kind::Phone => {
            let s = v.as_str()?;
            match s.strip_prefix('+').and_then(|d| d.parse::<u64>().ok()) {
                Some(n) => base62_i128(n as i128),
                None => s.to_string(),
            }
        }
        Kind::Color => {
            let s = v.as_str()?;
            match s
                .strip_prefix('#')
                .and_then(|h| u32::from_str_radix(h, 16).ok())
            {
                Some(n) if s.len() == 7 => pad(base62_i128(n as i128), 5),
                _ => s.to_string(),
            }
        }
        Kind::Duration => match v {
            Value::Number(n) => base62_f64(n.as_f64()?),
            Value::String(s) => match duration_ms(s) {
                Some(ms) => base62_f64(ms),
                None => s.clone(),
            },
            _ => return None,
        },
        Kind::Ean => {
            let s = v.as_str()?;
            let code = match s.len() {
                8 => '0',
                12 => '2',
                13 => '1',
                14 => '3',
                _ => return Some(s.to_string()),
            };
            match s.parse::<u64>() {
                Ok(n) => format!("{code}{}", base62_i128(n as i128)),
                Err(_) => s.to_string(),
            }
        }
        Kind::Money(d) => format!("${}", base62_f64((num(v)? * 10f64.powi(*d as i32)).round())),
        Kind::Decimal(p) => {
            let n = num(v)?;
            if n == 0.0 {
                "^0".into()
            } else {
                let sign = if n < 0.0 { "-" } else { "" };
                format!(
                    "^{sign}{}",
                    base62_f64((n.abs() * 10f64.powi(*p as i32)).round())
                )
            }
        }
        Kind::GeoLat(p) => geo(num(v)?, 90.0, *p),
        Kind::GeoLon(p) => geo(num(v)?, 180.0, *p),
        Kind::GeoPoint(p) => {
            let (lat, lon) = point(v)?;
            format!("{}{}", geo(lat, 90.0, *p), geo(lon, 180.0, *p))
        }
        Kind::DateConvert => match v {
            Value::String(s) if s.starts_with('"') => s.clone(),
            Value::String(s) => match parse_ms(s) {
                Some(ms) => format!("\"{}\"", iso_of_ms(ms)),
                None => s.clone(),
            },
            other => other.to_string(),
        },
    })
}

/// The value of a stored compact form.
pub fn decode(kind: &Kind, s: &str) -> Value {
    let string = || Value::String(s.to_string());
    match kind {
        Kind::String | Kind::Unsupported(_) | Kind::Secret => string(),
        Kind::Number => decode_decimal(s),
        Kind::Integer => decode_int(s),
        Kind::Boolean => Value::Bool(matches!(s, "1" | "true" | "yes" | "y")),
        Kind::Array(items) => {
            if s.is_empty() && *items != ArrayItems::Json {
                return json!([]);
            }
            match items {
                ArrayItems::String => {
                    Value::Array(split_items(s).into_iter().map(Value::String).collect())
                }
                ArrayItems::Number => Value::Array(s.split('|').map(decode_decimal).collect()),
                ArrayItems::Integer => Value::Array(s.split('|').map(decode_int).collect()),
                ArrayItems::Json => serde_json::from_str(s).unwrap_or_else(|_| string()),
            }
        }
        Kind::Embedding(_) => {
            let Some(inner) = s.strip_prefix("^[").and_then(|r| r.strip_suffix(']')) else {
                return string();
            };
            if inner.is_empty() {
                return json!([]);
            }
            Value::Array(
                inner
                    .split(',')
                    .map(|i| number_value(base62_decode_f64(i) / 1_000_000.0))
                    .collect(),
            )
        }
        Kind::Json => serde_json::from_str(s).unwrap_or_else(|_| string()),
        Kind::Ip4 => match STANDARD.decode(s) {
            Ok(b) if b.len() == 4 => {
                json!(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string())
            }
            _ => string(),
        },
        Kind::Ip6 => match STANDARD
            .decode(s)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
        {
            Some(b) => json!(std::net::Ipv6Addr::from(b).to_string()),
            None => string(),
        },
        Kind::Uuid => {
            if s.len() != 24 || !s.is_ascii() {
                return string();
            }
            let mut hex = String::new();
            for i in 0..4 {
                match base62_decode_i128(&s[i * 6..i * 6 + 6]) {
                    Some(n) => hex.push_str(&format!("{n:08x}")),
                    None => return string(),
                }
            }
            json!(format!(
                "{}-{}-{}-{}-{}",
                &hex[0..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            ))
        }
        Kind::Datetime => match base62_decode_i128(s) {
            Some(ms) => json!(iso_of_ms(ms as i64)),
            None => string(),
        },
        Kind::Dateonly => match base62_decode_i128(s) {
            Some(days) => json!(iso_of_ms(days as i64 * 86_400_000)[..10].to_string()),
            None => string(),
        },
        Kind::Timeonly => match base62_decode_i128(s) {
            Some(ms) => {
                let ms = ms as i64;
                json!(format!(
                    "{:02}:{:02}:{:02}.{:03}",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                ))
            }
            None => string(),
        },
        Kind::Mac => match base62_decode_i128(s) {
            Some(n) if s.len() == 9 => {
                let hex = format!("{n:012x}");
                json!((0..6)
                    .map(|i| &hex[i * 2..i * 2 + 2])
                    .collect::<Vec<_>>()
                    .join(":"))
            }
            _ => string(),
        },
        Kind::Cidr => {
            if s.len() < 7 || !s.is_ascii() {
                return string();
            }
            match (base62_decode_i128(&s[..6]), base62_decode_i128(&s[6..])) {
                (Some(ip), Some(len)) => {
                    json!(format!("{}/{len}", std::net::Ipv4Addr::from(ip as u32)))
                }
                _ => string(),
            }
        }
        Kind::Semver => match base62_decode_i128(s) {
            Some(n) => json!(format!(
                "{}.{}.{}",
                n / 1_000_000,
                n / 1000 % 1000,
                n % 1000
            )),
            None => string(),
        },
        Kind::Phone => match base62_decode_i128(s) {
            Some(n) => json!(format!("+{n}")),
            None => string(),
        },
        Kind::Color => match base62_decode_i128(s) {
            Some(n) if s.len() == 5 => json!(format!("#{n:06x}")),
            _ => string(),
        },
        Kind::Duration => match base62_decode_i128(s) {
            Some(ms) => json!(iso_duration(ms as f64)),
            None => string(),
        },
        Kind::Ean => {
            let mut chars = s.chars();
            let len = match chars.next() {
                Some('0') => 8,
                Some('2') => 12,
                Some('1') => 13,
                Some('3') => 14,
                _ => return string(),
            };
            match base62_decode_i128(chars.as_str()) {
                Some(n) => json!(format!("{n:0len$}")),
                None => string(),
            }
        }
        Kind::Money(d) => match s.strip_prefix('$').and_then(base62_decode_i128) {
            Some(n) => number_value(n as f64 / 10f64.powi(*d as i32)),
            None => string(),
        },
        Kind::Decimal(p) => match s.strip_prefix('^').and_then(base62_decode_i128) {
            Some(n) => number_value(n as f64 / 10f64.powi(*p as i32)),
            None => string(),
        },
        Kind::GeoLat(p) => number_value(round_to(ungeo(s, 90.0, *p), *p)),
        Kind::GeoLon(p) => number_value(round_to(ungeo(s, 180.0, *p), *p)),
        Kind::GeoPoint(p) => {
            let parts: Vec<&str> = s.split('~').filter(|x| !x.is_empty()).collect();
            if parts.len() != 2 {
                return string();
            }
            json!({
                "latitude": number_value(round_to(ungeo(parts[0], 90.0, *p), *p)),
                "longitude": number_value(round_to(ungeo(parts[1], 180.0, *p), *p)),
            })
        }
        Kind::DateConvert => json!(s.trim_matches('"')),
    }
}

fn round_to(v: f64, p: u32) -> f64 {
    let m = 10f64.powi(p as i32);
    (v * m).round() / m
}

#[cfg(test)]
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    fn enc(rule: &str, v: Value) -> String {
        encode(&Kind::of(rule), &v).unwrap()
    }

    #[test]
    fn compact_forms_from_the_spec() {
        assert_eq!(enc("number", json!(30)), "u");
        assert_eq!(enc("number", json!(30.5)), "u.5");
        assert_eq!(enc("number", json!(1234.5678)), "jU.5678");
        assert_eq!(enc("number", json!(-0.5)), "-0.5");
        assert_eq!(enc("number", json!(0.000001)), "0.000001");
        assert_eq!(enc("number", json!(1e-7)), "0.0000001");
        assert_eq!(enc("number|integer:true", json!(42)), "G");
        assert_eq!(
            enc(
                "array|items:string",
                json!(["red", "green|blue", "back\\slash", "x", ""])
            ),
            "red|green\\|blue|back\\\\slash|x|"
        );
        assert_eq!(
            enc("array|items:number", json!([1.5, -2, 0, 1000000, 0.25])),
            "1.5|-2|0|4c92|0.25"
        );
        assert_eq!(
            enc(
                "embedding:8",
                json!([0.1, -0.2, 0.3, 0, 1, -1, 0.123456789, 2.5])
            ),
            "^[q0U,-Q1O,1g2I,0,4c92,-4c92,w7f,aumA]"
        );
        assert_eq!(enc("ip4", json!("192.168.1.1")), "wKgBAQ==");
        assert_eq!(enc("ip6", json!("2001:db8::1")), "IAENuAAAAAAAAAAAAAAAAQ==");
        assert_eq!(
            enc("uuid", json!("0190f5c4-7c3b-7d2e-9a1b-123456789abc")),
            "01MfVG2h3oJM2OYlEM1AbaUY"
        );
        assert_eq!(
            enc("datetime", json!("2024-03-05T10:20:30.123Z")),
            "u68Oa1l"
        );
        assert_eq!(enc("dateonly", json!("2024-03-05")), "599");
        assert_eq!(enc("timeonly", json!("10:20:30.5")), "2wdlW");
        assert_eq!(enc("mac", json!("aa:bb:cc:dd:ee:ff")), "0RiYGo9Lp");
        assert_eq!(enc("cidr", json!("192.168.0.0/24")), "3wK86Yo");
        assert_eq!(enc("semver", json!("1.2.3")), "4cFl");
        assert_eq!(enc("phone", json!("+5511999999999")), "1z2ASgSr");
        assert_eq!(enc("color", json!("#ff8800")), "18gwM");
        assert_eq!(enc("duration", json!("PT1H30M")), "mEMM");
        assert_eq!(enc("ean", json!("4006381333931")), "118x8XMN5");
        assert_eq!(enc("money", json!(19.99)), "$wf");
        assert_eq!(enc("crypto", json!(0.00012345)), "$3d7");
        assert_eq!(enc("decimal:4", json!(3.14159_f64)), "^8aI");
        assert_eq!(enc("geo:lat", json!(-23.5505)), "~4uOy8");
        assert_eq!(enc("geo:lon", json!(-46.6333)), "~91ALO");
        assert_eq!(
            enc("geo:point", json!({"lat": 1.5, "lon": 2.5})),
            "~6bVks~clKAo"
        );
    }

    #[test]
    fn round_trips() {
        for (rule, v) in [
            ("number", json!(1234.5678)),
            ("number", json!(-0.5)),
            ("number", json!(1e-7)),
            ("number", json!(1.5e-7)),
            ("number", json!(1e21)),
            ("number|integer:true", json!(9007199254740993u64)),
            ("number|integer:true", json!(-7)),
            ("boolean", json!(true)),
            ("array|items:string", json!(["a|b", "c\\d", ""])),
            ("array|items:number|integer:true", json!([62, -1, 0])),
            ("array|items:object", json!([{"a": 1}])),
            ("json", json!({"a": [1, null]})),
            ("ip6", json!("2001:db8::1")),
            ("uuid", json!("0190f5c4-7c3b-7d2e-9a1b-123456789abc")),
            ("datetime", json!("2024-03-05T10:20:30.123Z")),
            ("dateonly", json!("2024-03-05")),
            ("timeonly", json!("10:20:30.500")),
            ("mac", json!("aa:bb:cc:dd:ee:ff")),
            ("cidr", json!("192.168.0.0/24")),
            ("semver", json!("1.2.3")),
            ("phone", json!("+5511999999999")),
            ("color", json!("#ff8800")),
            ("duration", json!("PT1H30M")),
            ("ean", json!("4006381333931")),
            ("ean", json!("00012345")),
            ("money", json!(19.99)),
            ("decimal:4", json!(-2.7183)),
            ("geo:lat", json!(-23.5505)),
            ("geo:point", json!({"latitude": 1.5, "longitude": 2.5})),
        ] {
            let kind = Kind::of(rule);
            let stored = encode(&kind, &v).unwrap();
            let back = decode(&kind, &stored);
            assert!(
                back == v || back.as_f64().is_some() && back.as_f64() == v.as_f64(),
                "{rule}: {v} → {stored:?} → {back}"
            );
        }
    }
}
