//! Metadata value encoding (format.md §2.4) and the base-N digits of §7.1.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

const EXACT: &[(&str, char)] = &[
    ("application/json", 'j'),
    ("application/xml", 'X'),
    ("application/ld+json", 'J'),
    ("text/html", 'H'),
    ("text/plain", 'T'),
    ("text/css", 'C'),
    ("text/javascript", 'V'),
    ("text/csv", 'v'),
    ("image/png", 'P'),
    ("image/jpeg", 'I'),
    ("image/gif", 'G'),
    ("image/svg+xml", 'S'),
    ("image/webp", 'W'),
    ("application/pdf", 'Q'),
    ("application/zip", 'z'),
    ("application/octet-stream", 'o'),
    ("application/x-www-form-urlencoded", 'u'),
    ("multipart/form-data", 'F'),
    ("font/woff", 'w'),
    // `font/woff2` shares `f` with `failed` in s3db.js and reads back wrong: never encoded.
    ("processing", 'p'),
    ("completed", 'c'),
    ("succeeded", 's'),
    ("failed", 'f'),
    ("cancelled", 'x'),
    ("timeout", 't'),
    ("retrying", 'r'),
    ("authorized", 'a'),
    ("captured", 'K'),
    ("refunded", 'R'),
    ("declined", 'd'),
    ("shipped", 'h'),
    ("delivered", 'D'),
    ("returned", 'e'),
    ("in_transit", 'i'),
    ("initialized", 'n'),
    ("terminated", 'm'),
];

const PREFIXES: &[(&str, &str)] = &[
    ("/api/v1/", "@1"),
    ("/api/v2/", "@2"),
    ("/api/v3/", "@3"),
    ("/api/", "@a"),
    ("https://api.example.com/", "@A"),
    ("https://api.", "@H"),
    ("https://www.", "@W"),
    ("https://", "@h"),
    ("http://", "@t"),
    ("https://s3.amazonaws.com/", "@s"),
    ("https://s3-", "@S"),
    ("http://localhost:", "@L"),
    ("http://localhost", "@l"),
    ("/v1/", "@v"),
    ("/users/", "@u"),
    ("/products/", "@p"),
];

/// JS `encodeURIComponent` keeps `A-Z a-z 0-9 - _ . ! ~ * ' ( )`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

fn dictionary(s: &str) -> Option<String> {
    if let Some((_, code)) = EXACT.iter().find(|(v, _)| *v == s) {
        return Some(format!("d:{code}"));
    }
    let best = PREFIXES.iter().filter(|(p, _)| s.starts_with(p)).fold(
        None::<&(&str, &str)>,
        |best, cand| match best {
            Some(b) if b.0.len() >= cand.0.len() => Some(b),
            _ => Some(cand),
        },
    )?;
    let encoded = format!("d:{}{}", best.1, &s[best.0.len()..]);
    (encoded.len() < s.len()).then_some(encoded)
}

/// Encodes a string as s3db.js stores it in one metadata value.
pub fn encode_value(s: &str) -> String {
    if ["d:", "u:", "b:", "z:", "z85:"]
        .iter()
        .any(|p| s.starts_with(p))
    {
        return format!("b:{}", STANDARD.encode(s));
    }
    if let Some(d) = dictionary(s) {
        if d.len() < s.len() {
            return d;
        }
    }
    let (mut latin1, mut multi, mut total) = (0usize, 0usize, 0usize);
    for unit in s.encode_utf16() {
        total += 1;
        match unit {
            0x20..=0x7E => {}
            0x80..=0xFF => latin1 += 1,
            _ => multi += 1,
        }
    }
    if latin1 == 0 && multi == 0 {
        return s.to_string();
    }
    let base64 = if multi > 0 {
        multi as f64 / total as f64 > 0.3
    } else {
        latin1 as f64 / total as f64 > 0.5
    };
    if base64 {
        format!("b:{}", STANDARD.encode(s))
    } else {
        format!("u:{}", utf8_percent_encode(s, URI_COMPONENT))
    }
}

/// `encode_value`, except that values S3 would trim (leading or trailing spaces) take the
/// `u:` form; s3db.js trims strings before storing them, so it never writes such values.
pub fn encode_header_value(s: &str) -> String {
    let encoded = encode_value(s);
    if encoded.starts_with(' ') || encoded.ends_with(' ') {
        format!("u:{}", utf8_percent_encode(s, URI_COMPONENT))
    } else {
        encoded
    }
}

/// Decodes a stored metadata value; `None` for s3db.js's `"null"`/`"undefined"`.
pub fn decode_value(s: &str) -> Option<String> {
    match s {
        "null" | "undefined" => return None,
        _ => {}
    }
    if let Some(code) = s.strip_prefix("d:") {
        let mut chars = code.chars();
        if let (Some(c), None) = (chars.next(), chars.clone().next()) {
            if c == 'f' {
                return Some("failed".into());
            }
            if let Some((v, _)) = EXACT.iter().rev().find(|(_, k)| *k == c) {
                return Some((*v).to_string());
            }
        }
        if code.starts_with('@') && code.len() >= 2 && code.is_char_boundary(2) {
            if let Some((p, _)) = PREFIXES.iter().find(|(_, k)| *k == &code[..2]) {
                return Some(format!("{p}{}", &code[2..]));
            }
        }
        return Some(s.to_string());
    }
    if let Some(rest) = s.strip_prefix("u:").filter(|r| !r.is_empty()) {
        if let Ok(d) = percent_decode_str(rest).decode_utf8() {
            return Some(d.into_owned());
        }
    }
    if let Some(rest) = s.strip_prefix("b:").filter(|r| !r.is_empty()) {
        if let Ok(bytes) = STANDARD.decode(rest) {
            return Some(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    Some(s.to_string())
}

/// Whether s3db.js would read this string back as something else.
pub fn is_lossy_string(s: &str) -> bool {
    matches!(s, "null" | "undefined")
}

const BASE36: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

pub fn base36(mut n: u64) -> String {
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(BASE36[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// Metadata keys: characters outside `[A-Za-z0-9_-]` become `_`, then lower case.
pub fn sanitize_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_passes_through() {
        assert_eq!(encode_value("hello world"), "hello world");
        assert_eq!(encode_value(""), "");
    }

    #[test]
    fn forced_base64_for_lookalikes() {
        assert_eq!(encode_value("d:x"), "b:ZDp4");
        assert_eq!(decode_value("b:ZDp4").unwrap(), "d:x");
    }

    #[test]
    fn dictionary_hits() {
        assert_eq!(encode_value("application/json"), "d:j");
        assert_eq!(encode_value("https://example.com/a"), "d:@hexample.com/a");
        assert_eq!(
            decode_value("d:@hexample.com/a").unwrap(),
            "https://example.com/a"
        );
        assert_eq!(encode_value("font/woff2"), "font/woff2");
        assert_eq!(decode_value("d:f").unwrap(), "failed");
    }

    #[test]
    fn url_and_base64_classes() {
        assert_eq!(encode_value("café"), "u:caf%C3%A9");
        assert_eq!(encode_value("line1\nline2\ttab"), "u:line1%0Aline2%09tab");
        assert_eq!(encode_value("a\nb"), "b:YQpi");
        assert!(encode_value("ðñòó").starts_with("b:"));
        for s in ["café", "日本語テキスト", "a\tb", "😀 emoji", "ñ"] {
            assert_eq!(decode_value(&encode_value(s)).unwrap(), s);
        }
    }

    #[test]
    fn header_values_keep_edge_spaces() {
        assert_eq!(encode_header_value(" x "), "u:%20x%20");
        assert_eq!(decode_value(&encode_header_value(" x ")).unwrap(), " x ");
        assert_eq!(encode_header_value("a b"), "a b");
    }

    #[test]
    fn null_strings() {
        assert_eq!(decode_value("null"), None);
        assert_eq!(decode_value("undefined"), None);
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(10), "a");
        assert_eq!(base36(36), "10");
    }
}
