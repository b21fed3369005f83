//! The HTTP control API under `/__faultproxy/` (JSON in, JSON out).

use crate::server::Resp;
use crate::{lock, Rule, RuleId, Shared};
use bytes::Bytes;
use hyper::{header, HeaderMap, Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Deserialize)]
struct Latency {
    ms: u64,
}

#[derive(Deserialize)]
struct RateLimit {
    rps: Option<f64>,
}

/// `rest` is the target after the prefix, e.g. `rules/3`.
pub(crate) fn handle(shared: &Shared, method: &Method, rest: &str, body: &[u8]) -> Resp {
    let path = rest.split('?').next().unwrap_or("");
    let result = match (method.as_str(), path) {
        ("POST", "rules") => serde_json::from_slice::<Rule>(body)
            .map_err(|e| e.to_string())
            .and_then(|rule| lock(&shared.rules).add(rule).map_err(|e| e.to_string()))
            .map(|id| json!({ "id": id })),
        ("GET", "rules") => {
            let list = lock(&shared.rules).list();
            Ok(Value::Array(
                list.into_iter()
                    .map(|(id, r)| json!({ "id": id, "rule": r }))
                    .collect(),
            ))
        }
        ("DELETE", "rules") => {
            lock(&shared.rules).clear();
            Ok(json!({}))
        }
        ("DELETE", p) if p.starts_with("rules/") => match p["rules/".len()..].parse::<u64>() {
            Ok(id) if lock(&shared.rules).remove(RuleId(id)) => Ok(json!({ "removed": id })),
            _ => return reply(StatusCode::NOT_FOUND, json!({ "error": "no such rule" })),
        },
        ("POST", "latency") => serde_json::from_slice::<Latency>(body)
            .map_err(|e| e.to_string())
            .map(|l| {
                shared.set_latency(Duration::from_millis(l.ms));
                json!({ "ms": l.ms })
            }),
        ("GET", "latency") => Ok(json!({ "ms": shared.latency().as_millis() as u64 })),
        ("POST", "rate_limit") => serde_json::from_slice::<RateLimit>(body)
            .map_err(|e| e.to_string())
            .map(|r| {
                shared.set_rate_limit(r.rps);
                json!({ "rps": shared.rate_limit() })
            }),
        ("GET", "rate_limit") => Ok(json!({ "rps": shared.rate_limit() })),
        ("GET", "stats") => serde_json::to_value(&*lock(&shared.stats)).map_err(|e| e.to_string()),
        ("POST", "stats/reset") => {
            shared.reset_stats();
            Ok(json!({}))
        }
        _ => {
            return reply(
                StatusCode::NOT_FOUND,
                json!({ "error": "unknown control endpoint" }),
            )
        }
    };
    match result {
        Ok(v) => reply(StatusCode::OK, v),
        Err(e) => reply(StatusCode::BAD_REQUEST, json!({ "error": e })),
    }
}

fn reply(status: StatusCode, v: Value) -> Resp {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Resp {
        status,
        headers,
        body: Bytes::from(v.to_string()),
    }
}
