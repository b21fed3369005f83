//! Sequences: a counter object advanced by GET + conditional PUT, no lock.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::catalog::iso_now;
use crate::database::DbInner;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::validate_name;
use crate::resource::jitter;
use crate::storage::{PutRequest, StoreError, WriteCondition};

const MAX_CAS_ATTEMPTS: usize = 1000;

#[derive(Debug, Clone, Copy)]
pub struct SequenceOptions {
    pub start: i64,
    pub increment: i64,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        SequenceOptions {
            start: 1,
            increment: 1,
        }
    }
}

/// A named 64-bit counter at `sequences/<name>/value`; the stored `value` is the next
/// value to hand out (s3db.js's format).
#[derive(Debug, Clone)]
pub struct Sequence {
    db: Arc<DbInner>,
    name: String,
    key: String,
    options: SequenceOptions,
}

impl Sequence {
    pub(crate) fn new(db: Arc<DbInner>, name: &str, options: SequenceOptions) -> Result<Sequence> {
        validate_name("sequence name", name)?;
        if options.increment == 0 {
            return Err(Error::invalid("sequence increment must not be 0"));
        }
        Ok(Sequence {
            db,
            name: name.to_string(),
            key: format!("sequences/{name}/value"),
            options,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hands out the next value (2 requests when uncontended).
    pub async fn next(&self) -> Result<i64> {
        self.advance(|stored| {
            let current = stored.unwrap_or(self.options.start);
            let next = current.checked_add(self.options.increment).ok_or_else(|| {
                Error::invalid(format!("sequence {:?} would overflow 64 bits", self.name))
            })?;
            Ok((current, next))
        })
        .await
    }

    /// The value the next call to `next` returns; `None` before the first.
    pub async fn current(&self) -> Result<Option<i64>> {
        match self.db.store.get(&self.key).await {
            Ok(obj) => Ok(Some(self.parse(&obj.body)?.0)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.at(&self.key)),
        }
    }

    /// Makes `value` the next value handed out.
    pub async fn reset(&self, value: i64) -> Result<()> {
        self.advance(|_| Ok((value, value))).await.map(|_| ())
    }

    fn parse(&self, body: &[u8]) -> Result<(i64, Map<String, Value>)> {
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| Error::corrupt(format!("sequence {:?}: {e}", self.name)))?;
        let Value::Object(map) = v else {
            return Err(Error::corrupt(format!(
                "sequence {:?} is not an object",
                self.name
            )));
        };
        let value = map.get("value").and_then(Value::as_i64).ok_or_else(|| {
            Error::corrupt(format!("sequence {:?} has no integer value", self.name))
        })?;
        Ok((value, map))
    }

    /// `step(stored value)` → (value to return, value to store), applied by compare-and-swap.
    async fn advance(&self, step: impl Fn(Option<i64>) -> Result<(i64, i64)>) -> Result<i64> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = iso_now();
            let (condition, body, result) = match self.db.store.get(&self.key).await {
                Err(StoreError::NotFound) => {
                    let (out, next) = step(None)?;
                    let body = json!({"value": next, "name": self.name, "createdAt": now});
                    (WriteCondition::IfNoneMatch, body, out)
                }
                Err(e) => return Err(e.at(&self.key)),
                Ok(obj) => {
                    let (stored, mut map) = self.parse(&obj.body)?;
                    let (out, next) = step(Some(stored))?;
                    map.insert("value".into(), json!(next));
                    map.insert("updatedAt".into(), json!(now));
                    (
                        WriteCondition::IfMatch(obj.head.etag),
                        Value::Object(map),
                        out,
                    )
                }
            };
            let req = PutRequest {
                body: Bytes::from(serde_json::to_vec(&body).expect("json")),
                content_type: Some("application/json".into()),
                condition,
                ..Default::default()
            };
            match self.db.store.put(&self.key, req).await {
                Ok(_) => return Ok(result),
                Err(StoreError::PreconditionFailed)
                | Err(StoreError::Conflict)
                | Err(StoreError::NotFound) => tokio::time::sleep(jitter()).await,
                Err(e) => return Err(e.at(&self.key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("sequence {:?}: too much contention", self.name),
        ))
    }
}
