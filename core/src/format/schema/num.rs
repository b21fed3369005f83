//! Numbers as s3db.js writes them: JS `Number#toString` and base62 in doubles (format.md §7.1).

const BASE62: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// s3db.js's `base62(n)`: floors, then divides in doubles (inexact above 2^53, as in JS).
pub fn base62_f64(n: f64) -> String {
    if !n.is_finite() {
        return "undefined".into();
    }
    if n == 0.0 {
        return "0".into();
    }
    if n < 0.0 {
        return format!("-{}", base62_f64(-n.floor()));
    }
    let mut n = n.floor();
    let mut out = Vec::new();
    while n > 0.0 {
        out.push(BASE62[(n % 62.0) as usize]);
        n = (n / 62.0).floor();
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

/// Exact base62 of an integer (what we write for integers beyond 2^53).
pub fn base62_i128(n: i128) -> String {
    if n == 0 {
        return "0".into();
    }
    if n < 0 {
        return format!("-{}", base62_i128(-n));
    }
    let mut n = n;
    let mut out = Vec::new();
    while n > 0 {
        out.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}

fn digit(c: u8) -> Option<u32> {
    BASE62.iter().position(|&d| d == c).map(|p| p as u32)
}

/// Decodes base62 into an exact integer when it fits, else `None`.
pub fn base62_decode_i128(s: &str) -> Option<i128> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut r: i128 = 0;
    for b in digits.bytes() {
        r = r.checked_mul(62)?.checked_add(digit(b)? as i128)?;
    }
    Some(if neg { -r } else { r })
}

/// `base62 → number` as s3db.js reads it.
pub fn base62_decode_f64(s: &str) -> f64 {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut r = 0f64;
    for b in digits.bytes() {
        match digit(b) {
            Some(d) => r = r * 62.0 + d as f64,
            None => return f64::NAN,
        }
    }
    if neg {
        -r
    } else {
        r
    }
}

/// JS `Number#toString()` (shortest round-trip digits; exponent form below 1e-6 and from 1e21).
pub fn js_number(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent");
    let exp: i32 = exp.parse().expect("exponent digits");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let k = digits.len() as i32;
    let point = exp + 1; // position of the decimal point relative to the digits
    let body = if point > -6 && point <= 21 {
        if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= k {
            format!("{}{}", digits, "0".repeat((point - k) as usize))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        }
    } else {
        let m = if k == 1 {
            digits.clone()
        } else {
            format!("{}.{}", &digits[..1], &digits[1..])
        };
        format!("{m}e{}{}", if exp >= 0 { "+" } else { "-" }, exp.abs())
    };
    if n < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_examples() {
        assert_eq!(base62_f64(42.0), "G");
        assert_eq!(base62_f64(62.0), "10");
        assert_eq!(base62_f64(1234.0), "jU");
        assert_eq!(base62_f64(3843.0), "ZZ");
        assert_eq!(base62_f64(-123456.0), "-w7e");
        assert_eq!(base62_f64(9007199254740991.0), "FfGNdXsE7");
        assert_eq!(base62_f64(1e21), "jdt8BLTpPG02");
        assert_eq!(base62_i128(1_000_000_000_000_000_000_000), "jdt8BLTpPq12");
        assert_eq!(base62_decode_f64("FfGNdXsE7"), 9007199254740991.0);
        assert_eq!(base62_decode_i128("-w7e"), Some(-123456));
    }

    #[test]
    fn js_number_formatting() {
        for (n, s) in [
            (30.0, "30"),
            (30.5, "30.5"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (-0.5, "-0.5"),
            (1234.5678, "1234.5678"),
            (123456789.125, "123456789.125"),
        ] {
            assert_eq!(js_number(n), s, "{n}");
        }
    }
}
