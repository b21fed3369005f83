//! Catalog healing: a `s3db.json` that does not parse or lacks structure is repaired on
//! connect where that loses no data, after the original bytes are copied to
//! `s3db.json.corrupted.<ISO time, ':' and '.' replaced by '-'>.backup` (format.md §3).
//!
//! Healed:
//! * text: trailing or doubled commas, a missing comma between members, truncated text
//!   (open strings, objects and arrays are closed; a member cut before its value is dropped);
//! * structure: missing `version`, `s3dbVersion`, `lastUpdated`, `resources` (or `null`);
//!   a resource whose `currentVersion` is missing or names a version that does not exist (the
//!   highest existing version with attributes is used; the resource is dropped only when it
//!   has none); `hooks: null` (or any non-object) → `{}`; resource `partitions: null` → `{}`.
//!
//! Refused (typed `Corrupt` error, nothing written): text that is not JSON (garbage inside),
//! a top level that is not an object, `resources` of another type than object or null.
//!
//! The healed catalog is written with `If-Match` on the corrupt object's etag, so a
//! concurrent writer (or healer) is never overwritten. Healing starts only when a second read
//! returns the same etag and bytes and a HEAD the same size (`db::catalog_store`): a bad read
//! never writes anything.

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::format::catalog::{iso_now, CATALOG_KEY, FORMAT_VERSION, S3DB_JS_VERSION};

/// Result of looking at the stored catalog bytes.
#[derive(Debug)]
pub(crate) enum Checked {
    /// Parses and has the expected structure: use as is.
    Intact(Value),
    /// Repaired; the log says what was done, one line per repair.
    Healed { catalog: Value, log: Vec<String> },
}

/// Parses the stored catalog, healing it in memory when needed. Errors are `Corrupt`.
pub(crate) fn check(body: &[u8]) -> Result<Checked> {
    let mut log = Vec::new();
    let mut root = match serde_json::from_slice::<Value>(body) {
        Ok(v) => v,
        Err(strict) => {
            let text = std::str::from_utf8(body).map_err(|_| {
                Error::corrupt(format!(
                    "s3db.json does not parse ({strict}) and is not UTF-8 text; not healed"
                ))
            })?;
            let v = Lenient::new(text, &mut log).document().map_err(|e| {
                Error::corrupt(format!(
                    "s3db.json does not parse ({strict}) and cannot be healed: {e}"
                ))
            })?;
            log.insert(0, format!("s3db.json did not parse: {strict}"));
            v
        }
    };
    let obj = root.as_object_mut().ok_or_else(|| {
        Error::corrupt("s3db.json is not a JSON object; not healed (it would lose data)")
    })?;
    heal_structure(obj, &mut log)?;
    if log.is_empty() {
        Ok(Checked::Intact(root))
    } else {
        obj.insert("lastUpdated".into(), json!(iso_now()));
        Ok(Checked::Healed { catalog: root, log })
    }
}

/// The key of the backup of a corrupt catalog written at `iso` (an ISO-8601 time).
pub(crate) fn backup_key(iso: &str) -> String {
    format!(
        "{}.corrupted.{}.backup",
        CATALOG_KEY,
        iso.replace([':', '.'], "-")
    )
}

fn heal_structure(root: &mut Map<String, Value>, log: &mut Vec<String>) -> Result<()> {
    let missing = |v: Option<&Value>| v.is_none_or(Value::is_null);
    if missing(root.get("version")) {
        root.insert("version".into(), json!(FORMAT_VERSION));
        log.push(format!("added missing \"version\": {FORMAT_VERSION:?}"));
    }
    if missing(root.get("s3dbVersion")) {
        root.insert("s3dbVersion".into(), json!(S3DB_JS_VERSION));
        log.push(format!(
            "added missing \"s3dbVersion\": {S3DB_JS_VERSION:?}"
        ));
    }
    if missing(root.get("lastUpdated")) {
        root.insert("lastUpdated".into(), json!(iso_now()));
        log.push("added missing \"lastUpdated\"".into());
    }
    match root.get("resources") {
        None | Some(Value::Null) => {
            root.insert("resources".into(), json!({}));
            log.push("added missing \"resources\": {}".into());
        }
        Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(Error::corrupt(format!(
                "s3db.json: \"resources\" is {}, not an object; not healed",
                type_name(other)
            )))
        }
    }
    let resources = root
        .get_mut("resources")
        .and_then(Value::as_object_mut)
        .expect("resources is an object");
    let mut dropped = Vec::new();
    for (name, res) in resources.iter_mut() {
        if !heal_resource(name, res, log) {
            dropped.push(name.clone());
        }
    }
    for name in dropped {
        resources.remove(&name);
    }
    Ok(())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn usable(version: &Value) -> bool {
    version.get("attributes").is_some_and(Value::is_object)
}

fn version_number(name: &str) -> Option<u64> {
    name.strip_prefix('v')?.parse().ok()
}

/// Returns `false` when the resource has no usable version and must be dropped.
fn heal_resource(name: &str, res: &mut Value, log: &mut Vec<String>) -> bool {
    let Some(res) = res.as_object_mut() else {
        log.push(format!(
            "dropped resource {name:?}: it is {}, not an object",
            type_name(res)
        ));
        return false;
    };
    let Some(versions) = res.get_mut("versions").and_then(Value::as_object_mut) else {
        log.push(format!("dropped resource {name:?}: it has no versions"));
        return false;
    };
    for (v, def) in versions.iter_mut() {
        if let Some(def) = def.as_object_mut() {
            if def.get("hooks").is_some_and(|h| !h.is_object()) {
                def.insert("hooks".into(), json!({}));
                log.push(format!(
                    "resource {name:?} version {v}: non-object \"hooks\" set to {{}}"
                ));
            }
        }
    }
    let versions = res["versions"].as_object().expect("checked above");
    let current = res.get("currentVersion").and_then(Value::as_str);
    let is_usable = |v: &str| versions.get(v).is_some_and(usable);
    let replacement = match current {
        Some(c) if is_usable(c) => None,
        None if is_usable("v1") => Some("v1".to_string()),
        _ => versions
            .iter()
            .filter(|(_, def)| usable(def))
            .max_by_key(|(k, _)| (version_number(k), (*k).clone()))
            .map(|(k, _)| k.clone())
            .or_else(|| Some(String::new())),
    };
    let shown = current.map_or("missing".to_string(), |c| format!("{c:?}"));
    match replacement {
        None => {}
        Some(best) if best.is_empty() => {
            log.push(format!(
                "dropped resource {name:?}: no version has attributes (currentVersion {shown})"
            ));
            return false;
        }
        Some(best) => {
            log.push(format!(
                "resource {name:?}: currentVersion {shown} is not a usable version; using {best:?}"
            ));
            res.insert("currentVersion".into(), json!(best));
        }
    }
    if res.get("partitions").is_some_and(Value::is_null) {
        res.insert("partitions".into(), json!({}));
        log.push(format!(
            "resource {name:?}: \"partitions\": null set to {{}}"
        ));
    }
    true
}

/// A JSON reader that tolerates what a crashed or careless writer leaves behind: trailing,
/// leading and doubled commas, a missing comma between members, and text cut off anywhere
/// (open strings and containers are closed, a member without its value is dropped). Anything
/// else unexpected is an error.
struct Lenient<'a, 'l> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    log: &'l mut Vec<String>,
}

/// A parsed value, or `Incomplete` when the text ended before any of it.
enum Parsed {
    Value(Value),
    Incomplete,
}

impl<'a, 'l> Lenient<'a, 'l> {
    fn new(text: &'a str, log: &'l mut Vec<String>) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Lenient {
            s: text.as_bytes(),
            text,
            pos: 0,
            log,
        }
    }

    fn document(mut self) -> Result<Value, String> {
        let v = match self.value()? {
            Parsed::Value(v) => v,
            Parsed::Incomplete => return Err("empty document".into()),
        };
        self.ws();
        if self.pos < self.s.len() {
            return Err(format!("unexpected text at byte {}", self.pos));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn truncated(&mut self, what: &str) {
        self.log.push(format!(
            "text ends early: closed {what} at byte {}",
            self.pos
        ));
    }

    fn value(&mut self) -> Result<Parsed, String> {
        self.ws();
        match self.peek() {
            None => Ok(Parsed::Incomplete),
            Some(b'{') => self.object().map(Parsed::Value),
            Some(b'[') => self.array().map(Parsed::Value),
            Some(b'"') => self.string().map(|s| Parsed::Value(Value::String(s))),
            Some(b't' | b'f' | b'n') => self.literal(),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            Some(c) => Err(format!(
                "unexpected {:?} at byte {}",
                char::from(c),
                self.pos
            )),
        }
    }

    fn literal(&mut self) -> Result<Parsed, String> {
        let rest = &self.text[self.pos..];
        for (word, v) in [
            ("true", json!(true)),
            ("false", json!(false)),
            ("null", Value::Null),
        ] {
            if rest.starts_with(word) {
                self.pos += word.len();
                return Ok(Parsed::Value(v));
            }
            if word.starts_with(rest) {
                self.pos = self.s.len();
                return Ok(Parsed::Incomplete);
            }
        }
        Err(format!("unexpected literal at byte {}", self.pos))
    }

    fn number(&mut self) -> Result<Parsed, String> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        {
            self.pos += 1;
        }
        let tok = &self.text[start..self.pos];
        match serde_json::from_str::<Value>(tok) {
            Ok(v) => Ok(Parsed::Value(v)),
            Err(_) if self.pos == self.s.len() => Ok(Parsed::Incomplete),
            Err(_) => Err(format!("bad number {tok:?} at byte {start}")),
        }
    }

    /// At an opening quote. A string cut off by the end of the text is closed (a dangling
    /// escape is dropped).
    fn string(&mut self) -> Result<String, String> {
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        while let Some(c) = self.peek() {
            self.pos += 1;
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                return serde_json::from_str(&self.text[start..self.pos])
                    .map_err(|e| format!("bad string at byte {start}: {e}"));
            }
        }
        self.truncated("an open string");
        let mut raw = self.text[start..].to_string();
        // Drop a cut escape (`\`, `\u12`) before closing the quote.
        for _ in 0..6 {
            if serde_json::from_str::<String>(&format!("{raw}\"")).is_ok() {
                break;
            }
            raw.pop();
        }
        serde_json::from_str(&format!("{raw}\""))
            .map_err(|e| format!("bad string at byte {start}: {e}"))
    }

    /// Skips commas that separate nothing (leading or doubled); logs them.
    fn stray_commas(&mut self) {
        loop {
            self.ws();
            if self.peek() != Some(b',') {
                return;
            }
            self.log
                .push(format!("removed a stray comma at byte {}", self.pos));
            self.pos += 1;
        }
    }

    /// After a member or item: consumes the separator. Returns `false` at the closing
    /// bracket or the end of the text. A missing comma before `next_start` is tolerated.
    fn separator(&mut self, close: u8, next_start: fn(u8) -> bool) -> Result<bool, String> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.stray_commas();
                if self.peek() == Some(close) {
                    self.log
                        .push(format!("removed a trailing comma at byte {}", self.pos));
                }
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            None => Ok(false),
            Some(c) if next_start(c) => {
                self.log
                    .push(format!("inserted a missing comma at byte {}", self.pos));
                Ok(true)
            }
            Some(c) => Err(format!(
                "unexpected {:?} at byte {} (expected ',' or {:?})",
                char::from(c),
                self.pos,
                char::from(close)
            )),
        }
    }

    fn object(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut map = Map::new();
        self.stray_commas();
        loop {
            self.ws();
            match self.peek() {
                None => {
                    self.truncated("an object");
                    return Ok(Value::Object(map));
                }
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Object(map));
                }
                Some(b'"') => {}
                Some(c) => {
                    return Err(format!(
                        "unexpected {:?} at byte {} (expected a key)",
                        char::from(c),
                        self.pos
                    ))
                }
            }
            let key = self.string()?;
            self.ws();
            match self.peek() {
                None => {
                    self.truncated("an object (dropped the member cut before its value)");
                    return Ok(Value::Object(map));
                }
                Some(b':') => self.pos += 1,
                Some(c) => {
                    return Err(format!(
                        "unexpected {:?} at byte {} (expected ':')",
                        char::from(c),
                        self.pos
                    ))
                }
            }
            match self.value()? {
                Parsed::Value(v) => {
                    if map.insert(key.clone(), v).is_some() {
                        self.log
                            .push(format!("duplicate key {key:?}: kept the last"));
                    }
                }
                Parsed::Incomplete => {
                    self.truncated("an object (dropped the member cut before its value)");
                    return Ok(Value::Object(map));
                }
            }
            self.separator(b'}', |c| c == b'"')?;
        }
    }

    fn array(&mut self) -> Result<Value, String> {
        self.pos += 1;
        let mut items = Vec::new();
        self.stray_commas();
        loop {
            self.ws();
            match self.peek() {
                None => {
                    self.truncated("an array");
                    return Ok(Value::Array(items));
                }
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Array(items));
                }
                _ => {}
            }
            match self.value()? {
                Parsed::Value(v) => items.push(v),
                Parsed::Incomplete => {
                    self.truncated("an array");
                    return Ok(Value::Array(items));
                }
            }
            self.separator(b']', |c| matches!(c, b'"' | b'{' | b'['))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healed(text: &str) -> (Value, Vec<String>) {
        match check(text.as_bytes()).unwrap() {
            Checked::Healed { catalog, log } => (catalog, log),
            Checked::Intact(v) => panic!("not healed: {v}"),
        }
    }

    fn full() -> Value {
        json!({"version": "1", "s3dbVersion": "21.6.2", "lastUpdated": "t", "resources": {
            "a": {"currentVersion": "v1", "partitions": {}, "versions": {
                "v1": {"hash": "h", "attributes": {"x": "string"}, "hooks": {}}}}}})
    }

    #[test]
    fn intact_catalogs_are_not_touched() {
        let text = serde_json::to_string_pretty(&full()).unwrap();
        assert!(matches!(
            check(text.as_bytes()).unwrap(),
            Checked::Intact(_)
        ));
    }

    #[test]
    fn trailing_commas_and_truncation() {
        let text = serde_json::to_string_pretty(&full()).unwrap();
        let commas = text
            .replace("\"string\"", "\"string\",")
            .replace("{}", "{,}");
        let (mut v, log) = healed(&commas);
        assert_ne!(v["lastUpdated"], "t", "a healed catalog is a new write");
        v["lastUpdated"] = json!("t");
        assert_eq!(v, full(), "{log:?}");
        assert_eq!(log.len(), 4, "{log:?}");
        for cut in [40, text.len() / 2, text.len() - 3, text.len() - 1] {
            let (v, log) = healed(&text[..cut]);
            assert!(v.is_object(), "{cut}: {log:?}");
            assert!(v["resources"].is_object(), "{cut}: {log:?}");
        }
        // Cut inside the attribute rule: the string is closed, the resource kept.
        let cut = text.find("\"string\"").unwrap() + 4;
        let (v, _) = healed(&text[..cut]);
        assert_eq!(
            v["resources"]["a"]["versions"]["v1"]["attributes"]["x"],
            "str"
        );
    }

    #[test]
    fn unhealable_is_corrupt() {
        for bad in [
            "",
            "hello",
            "[1, 2]",
            "{\"a\": 1} trailing",
            "{\"resources\": 3}",
            "{x}",
        ] {
            let e = check(bad.as_bytes()).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Corrupt, "{bad:?}");
        }
    }

    #[test]
    fn structure() {
        let mut v = full();
        v["resources"]["a"]["currentVersion"] = json!("v9");
        v["resources"]["a"]["versions"]["v2"] =
            json!({"attributes": {"y": "string"}, "hooks": null});
        v["resources"]["a"]["versions"]["v10"] = json!({"hooks": {}});
        v["resources"]["b"] = json!({"currentVersion": "v1", "versions": {}});
        v.as_object_mut().unwrap().remove("version");
        let (h, log) = healed(&v.to_string());
        assert_eq!(h["version"], "1");
        assert_eq!(h["resources"]["a"]["currentVersion"], "v2", "{log:?}");
        assert_eq!(h["resources"]["a"]["versions"]["v2"]["hooks"], json!({}));
        assert!(h["resources"].get("b").is_none());
        assert_eq!(
            backup_key("2024-01-15T12:00:00.000Z"),
            "s3db.json.corrupted.2024-01-15T12-00-00-000Z.backup"
        );
    }
}
