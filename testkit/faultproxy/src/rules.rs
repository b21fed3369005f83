//! Fault rules: what a request must look like, which of its occurrences fire, and what happens.

use hyper::HeaderMap;
use regex_lite::Regex;
use serde::{Deserialize, Serialize};
use std::io;

/// Handle of an installed rule (JSON: a plain number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(pub u64);

/// A fault rule. Every filter that is set must match (all `None` = every request).
/// JSON: the same field names, e.g.
/// `{"method":"PUT","path_contains":"/data/","header":"if-match","when":{"nth":2},"action":{"type":"reset_after"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// HTTP method, case-insensitive (`GET`, `PUT`, `HEAD`, `POST`, `DELETE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Substring of the percent-decoded path (`/bucket/key`), e.g. `"/data/id="`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_contains: Option<String>,
    /// Regex (regex-lite syntax) searched in the percent-decoded path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// A query parameter that must be present, e.g. `"list-type"`, `"delete"`, `"uploads"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// A request header that must be present, case-insensitive, e.g. `"if-match"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Which of the matching requests fire (default: every one).
    #[serde(default)]
    pub when: When,
    pub action: Action,
}

/// Which occurrences of a matching request the rule fires on. Counting is per rule and starts
/// at 1. JSON: `"every"`, `{"nth":3}`, `{"first_n":2}`, `{"probability":{"p":0.2,"seed":7}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    #[default]
    Every,
    /// Only the nth matching request.
    Nth(u64),
    /// The first n matching requests.
    FirstN(u64),
    /// Each matching request with probability `p`; the same seed gives the same sequence.
    Probability { p: f64, seed: u64 },
}

/// What a firing rule does. JSON is tagged by `type`, e.g. `{"type":"status","status":503,"code":"SlowDown"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Close the client connection (RST) without forwarding: the server never sees the request.
    ResetBefore,
    /// Forward, read the server's whole answer, then reset the client connection instead of
    /// answering: the write is applied but the client is never told.
    ResetAfter,
    /// Answer without forwarding. `body` is sent as is; else, if `code` is set, an S3 XML error
    /// body with that code; else an empty body.
    Status {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Wait `ms` before forwarding (on top of the global latency).
    Delay { ms: u64 },
    /// Forward, then send only the first `keep` bytes of the body (default: half) with a
    /// `Content-Length` that matches, so the response looks complete.
    TruncateBody {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<usize>,
    },
    /// Forward, then flip the lowest bit of every body byte (same length, same headers).
    CorruptBody,
    /// Forward, then hold the answer `ms` before sending it; `None` = never send it (the
    /// connection stays open until the client closes it).
    Stall {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ms: Option<u64>,
    },
}

impl Action {
    /// Name used in [`crate::ProxyStats::by_action`] (and the JSON `type`).
    pub fn name(&self) -> &'static str {
        match self {
            Action::ResetBefore => "reset_before",
            Action::ResetAfter => "reset_after",
            Action::Status { .. } => "status",
            Action::Delay { .. } => "delay",
            Action::TruncateBody { .. } => "truncate_body",
            Action::CorruptBody => "corrupt_body",
            Action::Stall { .. } => "stall",
        }
    }

    /// `Status` with an S3 XML error body, e.g. `Action::s3_error(503, "SlowDown")`.
    pub fn s3_error(status: u16, code: &str) -> Action {
        Action::Status {
            status,
            code: Some(code.to_string()),
            body: None,
        }
    }
}

impl Rule {
    /// A rule that fires `action` on every request; narrow it with the builder methods.
    pub fn new(action: Action) -> Rule {
        Rule {
            method: None,
            path_contains: None,
            path_regex: None,
            query: None,
            header: None,
            when: When::Every,
            action,
        }
    }
    pub fn method(mut self, method: &str) -> Rule {
        self.method = Some(method.to_string());
        self
    }
    pub fn path_contains(mut self, s: &str) -> Rule {
        self.path_contains = Some(s.to_string());
        self
    }
    pub fn path_regex(mut self, re: &str) -> Rule {
        self.path_regex = Some(re.to_string());
        self
    }
    pub fn query(mut self, param: &str) -> Rule {
        self.query = Some(param.to_string());
        self
    }
    pub fn header(mut self, name: &str) -> Rule {
        self.header = Some(name.to_string());
        self
    }
    pub fn when(mut self, when: When) -> Rule {
        self.when = when;
        self
    }
}

/// The request facts rules look at.
pub(crate) struct Probe<'a> {
    pub method: &'a str,
    /// Percent-decoded path.
    pub path: &'a str,
    /// Raw query string (without `?`).
    pub query: &'a str,
    pub headers: &'a HeaderMap,
}

struct Entry {
    id: RuleId,
    rule: Rule,
    regex: Option<Regex>,
    seen: u64,
    rng: u64,
}

impl Entry {
    fn matches(&self, p: &Probe) -> bool {
        let r = &self.rule;
        r.method
            .as_ref()
            .is_none_or(|m| m.eq_ignore_ascii_case(p.method))
            && r.path_contains
                .as_ref()
                .is_none_or(|s| p.path.contains(s.as_str()))
            && self.regex.as_ref().is_none_or(|re| re.is_match(p.path))
            && r.query.as_ref().is_none_or(|q| {
                p.query
                    .split('&')
                    .any(|kv| kv.split('=').next() == Some(q.as_str()))
            })
            && r.header
                .as_ref()
                .is_none_or(|h| p.headers.contains_key(h.as_str()))
    }

    fn fires(&mut self) -> bool {
        self.seen += 1;
        match self.rule.when {
            When::Every => true,
            When::Nth(n) => self.seen == n,
            When::FirstN(n) => self.seen <= n,
            When::Probability { p, .. } => {
                // splitmix64: tiny, and stable across dependency versions.
                self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = self.rng;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                ((z >> 11) as f64 / (1u64 << 53) as f64) < p
            }
        }
    }
}

/// Installed rules, evaluated in insertion order; the first rule that fires decides and later
/// rules do not see (or count) the request.
#[derive(Default)]
pub(crate) struct RuleSet {
    next_id: u64,
    entries: Vec<Entry>,
}

impl RuleSet {
    pub fn add(&mut self, rule: Rule) -> io::Result<RuleId> {
        let regex = match &rule.path_regex {
            Some(re) => {
                Some(Regex::new(re).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?)
            }
            None => None,
        };
        if let When::Probability { p, .. } = rule.when {
            if !(0.0..=1.0).contains(&p) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "p must be in 0..=1",
                ));
            }
        }
        if let Action::Status { status, .. } = rule.action {
            if hyper::StatusCode::from_u16(status).is_err() {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "bad status"));
            }
        }
        self.next_id += 1;
        let id = RuleId(self.next_id);
        let rng = match rule.when {
            When::Probability { seed, .. } => seed,
            _ => 0,
        };
        self.entries.push(Entry {
            id,
            rule,
            regex,
            seen: 0,
            rng,
        });
        Ok(id)
    }

    pub fn remove(&mut self, id: RuleId) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        self.entries.len() != before
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn list(&self) -> Vec<(RuleId, Rule)> {
        self.entries
            .iter()
            .map(|e| (e.id, e.rule.clone()))
            .collect()
    }

    pub fn decide(&mut self, probe: &Probe) -> Option<Action> {
        for e in &mut self.entries {
            if e.matches(probe) && e.fires() {
                return Some(e.rule.action.clone());
            }
        }
        None
    }
}

/// `%XX` decoding; invalid escapes are kept as they are.
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(set: &mut RuleSet, method: &str, target: &str, headers: &[&str]) -> bool {
        let mut h = HeaderMap::new();
        for name in headers {
            h.insert(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                "x".parse().unwrap(),
            );
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let path = percent_decode(path);
        set.decide(&Probe {
            method,
            path: &path,
            query,
            headers: &h,
        })
        .is_some()
    }

    fn one(rule: Rule) -> RuleSet {
        let mut set = RuleSet::default();
        set.add(rule).unwrap();
        set
    }

    #[test]
    fn filters() {
        let mut s = one(Rule::new(Action::ResetBefore).method("put"));
        assert!(hits(&mut s, "PUT", "/b/k", &[]));
        assert!(!hits(&mut s, "GET", "/b/k", &[]));

        let mut s = one(Rule::new(Action::ResetBefore).path_contains("/data/id=a b"));
        assert!(hits(&mut s, "GET", "/b/users/data/id%3Da%20b", &[]));
        assert!(!hits(&mut s, "GET", "/b/users/data/id%3Dc", &[]));

        let mut s = one(Rule::new(Action::ResetBefore).path_regex(r"^/b/locks/[^/]+$"));
        assert!(hits(&mut s, "PUT", "/b/locks/x", &[]));
        assert!(!hits(&mut s, "PUT", "/b/locks/x/y", &[]));

        let mut s = one(Rule::new(Action::ResetBefore).query("list-type"));
        assert!(hits(&mut s, "GET", "/b?list-type=2&prefix=a", &[]));
        assert!(hits(&mut s, "GET", "/b?prefix=a&list-type", &[]));
        assert!(!hits(&mut s, "GET", "/b?prefix=list-type", &[]));

        let mut s = one(Rule::new(Action::ResetBefore)
            .header("If-Match")
            .method("PUT"));
        assert!(hits(&mut s, "PUT", "/b/k", &["if-match"]));
        assert!(!hits(&mut s, "PUT", "/b/k", &["if-none-match"]));
        assert!(!hits(&mut s, "GET", "/b/k", &["if-match"]));

        assert!(RuleSet::default()
            .add(Rule::new(Action::ResetBefore).path_regex("("))
            .is_err());
    }

    #[test]
    fn occurrences() {
        let pattern = |when: When, n: usize| {
            let mut s = one(Rule::new(Action::ResetBefore).method("GET").when(when));
            (0..n)
                .map(|_| hits(&mut s, "GET", "/", &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(pattern(When::Nth(3), 5), [false, false, true, false, false]);
        assert_eq!(pattern(When::FirstN(2), 4), [true, true, false, false]);
        assert_eq!(pattern(When::Every, 3), [true, true, true]);
        let a = pattern(When::Probability { p: 0.3, seed: 42 }, 1000);
        let b = pattern(When::Probability { p: 0.3, seed: 42 }, 1000);
        let c = pattern(When::Probability { p: 0.3, seed: 43 }, 1000);
        assert_eq!(a, b, "same seed, same sequence");
        assert_ne!(a, c);
        let fired = a.iter().filter(|x| **x).count();
        assert!((230..370).contains(&fired), "{fired}");
        // Non-matching requests do not advance the count.
        let mut s = one(Rule::new(Action::ResetBefore)
            .method("PUT")
            .when(When::Nth(2)));
        assert!(!hits(&mut s, "PUT", "/", &[]));
        assert!(!hits(&mut s, "GET", "/", &[]));
        assert!(hits(&mut s, "PUT", "/", &[]));
    }

    #[test]
    fn first_firing_rule_wins_and_json_round_trips() {
        let mut s = RuleSet::default();
        s.add(Rule::new(Action::Delay { ms: 1 }).when(When::Nth(1)))
            .unwrap();
        let id = s.add(Rule::new(Action::CorruptBody)).unwrap();
        let p = |s: &mut RuleSet| {
            let h = HeaderMap::new();
            s.decide(&Probe {
                method: "GET",
                path: "/",
                query: "",
                headers: &h,
            })
        };
        assert_eq!(p(&mut s), Some(Action::Delay { ms: 1 }));
        assert_eq!(p(&mut s), Some(Action::CorruptBody));
        assert!(s.remove(id));
        assert_eq!(p(&mut s), None);

        let json = r#"{"method":"PUT","header":"if-none-match","when":{"probability":{"p":0.5,"seed":1}},
                       "action":{"type":"status","status":412,"code":"PreconditionFailed"}}"#;
        let rule: Rule = serde_json::from_str(json).unwrap();
        assert_eq!(rule.action, Action::s3_error(412, "PreconditionFailed"));
        let back: Rule = serde_json::from_str(&serde_json::to_string(&rule).unwrap()).unwrap();
        assert_eq!(back, rule);
        assert!(serde_json::from_str::<Rule>(r#"{"action":{"type":"stall"},"bogus":1}"#).is_err());
        let stall: Rule =
            serde_json::from_str(r#"{"action":{"type":"stall"},"when":{"first_n":2}}"#).unwrap();
        assert_eq!(
            (stall.action, stall.when),
            (Action::Stall { ms: None }, When::FirstN(2))
        );
    }
}
