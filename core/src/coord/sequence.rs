//! Sequences: a counter object advanced by GET + conditional PUT, no lock.
//!
//! Fast mode (`batch_size` > 1) reserves `batch_size` values with one compare-and-swap and
//! hands them out locally, one at a time, under an async mutex shared by the clones of the
//! handle: 2 requests per batch instead of 2 per id, no duplicates, but the unused rest of a
//! batch is a gap when the process ends.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::coord::attempts::Contradictions;
use crate::coord::Context;
use crate::coord::{jitter, Clock};
use crate::error::{Error, ErrorKind, Result};
use crate::format::catalog::iso_now;
use crate::format::ids::validate_name;
use crate::storage::{PutRequest, StoreError, WriteCondition};

const MAX_CAS_ATTEMPTS: usize = 1000;

const PREFIX: &str = "sequences/";
const SUFFIX: &str = "/value";

#[derive(Debug, Clone, Copy)]
pub struct SequenceOptions {
    /// The first value handed out.
    pub start: i64,
    /// Step between values (negative counts down; not 0).
    pub increment: i64,
    /// Values reserved per compare-and-swap. 0 or 1: standard mode (every value is one CAS,
    /// no gaps); more: fast mode (ids handed out locally, gaps possible).
    pub batch_size: u32,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        SequenceOptions {
            start: 1,
            increment: 1,
            batch_size: 1,
        }
    }
}

/// The part of a reserved batch not handed out yet.
#[derive(Debug, Default)]
struct Batch {
    next: i64,
    remaining: u32,
}

/// A named 64-bit counter at `sequences/<name>/value`; the stored `value` is the next
/// value to hand out (s3db.js's format).
#[derive(Debug, Clone)]
pub struct Sequence {
    db: Arc<Context>,
    name: String,
    key: String,
    options: SequenceOptions,
    batch: Arc<tokio::sync::Mutex<Batch>>,
    /// Time source of `createdAt`/`updatedAt`/`resetAt` (the system clock when `None`).
    clock: Option<Clock>,
    /// Fields written after `name` when the value object is created (PluginStorage's
    /// `resourceName`).
    extra: Map<String, Value>,
}

impl Sequence {
    pub(crate) fn new(db: Arc<Context>, name: &str, options: SequenceOptions) -> Result<Sequence> {
        validate_name("sequence name", name)?;
        if options.increment == 0 {
            return Err(Error::invalid("sequence increment must not be 0"));
        }
        Ok(Sequence {
            db,
            name: name.to_string(),
            key: format!("{PREFIX}{name}{SUFFIX}"),
            options,
            batch: Arc::default(),
            clock: None,
            extra: Map::new(),
        })
    }

    /// Timestamps come from `clock` instead of the system clock.
    pub(crate) fn with_clock(mut self, clock: Clock) -> Sequence {
        self.clock = Some(clock);
        self
    }

    /// Fields written between `name` and `createdAt` when the value object is created.
    pub(crate) fn with_fields(mut self, extra: Map<String, Value>) -> Sequence {
        self.extra = extra;
        self
    }

    fn now_iso(&self) -> String {
        match &self.clock {
            Some(c) => c.now_iso(),
            None => iso_now(),
        }
    }

    /// A sequence whose value object lives at `key` (a resource's id sequence:
    /// `resource=<R>/sequence=<field>/value`).
    pub(crate) fn at_key(
        db: Arc<Context>,
        name: &str,
        key: String,
        options: SequenceOptions,
    ) -> Result<Sequence> {
        let mut seq = Sequence::new(db, name, options)?;
        seq.key = key;
        Ok(seq)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn options(&self) -> SequenceOptions {
        self.options
    }

    fn batch_size(&self) -> u32 {
        self.options.batch_size.max(1)
    }

    fn overflow(&self) -> Error {
        Error::invalid(format!("sequence {:?} would overflow 64 bits", self.name))
    }

    /// Hands out the next value: 2 requests when uncontended; in fast mode 2 per batch.
    pub async fn next(&self) -> Result<i64> {
        let size = self.batch_size();
        if size == 1 {
            return self.reserve(1).await;
        }
        let mut batch = self.batch.lock().await;
        if batch.remaining == 0 {
            batch.next = self.reserve(size).await?;
            batch.remaining = size;
        }
        let value = batch.next;
        batch.remaining -= 1;
        if batch.remaining > 0 {
            // Inside the reserved span, which was checked for overflow.
            batch.next = value + self.options.increment;
        }
        Ok(value)
    }

    /// Reserves `count` values by one compare-and-swap; returns the first.
    async fn reserve(&self, count: u32) -> Result<i64> {
        let span = self
            .options
            .increment
            .checked_mul(i64::from(count))
            .ok_or_else(|| self.overflow())?;
        self.advance(
            |stored| {
                let current = stored.unwrap_or(self.options.start);
                let next = current.checked_add(span).ok_or_else(|| self.overflow())?;
                Ok((current, next))
            },
            false,
        )
        .await
    }

    /// The value the next call to `next` returns; `None` before the first. In fast mode,
    /// the next value of the batch this handle holds, else the stored value.
    pub async fn current(&self) -> Result<Option<i64>> {
        if self.batch_size() > 1 {
            let batch = self.batch.lock().await;
            if batch.remaining > 0 {
                return Ok(Some(batch.next));
            }
        }
        match self.db.store.get(&self.key).await {
            Ok(obj) => Ok(Some(self.parse(&obj.body)?.0)),
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.at(&self.key)),
        }
    }

    /// Makes `value` the next value handed out (and drops this handle's reserved batch).
    pub async fn reset(&self, value: i64) -> Result<()> {
        let mut batch = self.batch.lock().await;
        *batch = Batch::default();
        self.advance(|_| Ok((value, value)), true).await.map(|_| ())
    }

    /// Deletes the stored counter (one DELETE); the next `next` starts again at `start`.
    pub async fn delete(&self) -> Result<()> {
        let mut batch = self.batch.lock().await;
        *batch = Batch::default();
        self.db
            .store
            .delete(&self.key, None)
            .await
            .map_err(|e| e.at(&self.key))
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
    /// With `reset`, `resetAt` is written too (s3db.js's reset format).
    async fn advance(
        &self,
        step: impl Fn(Option<i64>) -> Result<(i64, i64)>,
        reset: bool,
    ) -> Result<i64> {
        let mut contradictions = Contradictions::new(format!("sequence {:?}", self.name));
        for _ in 0..MAX_CAS_ATTEMPTS {
            let now = self.now_iso();
            let (condition, body, result) = match self.db.store.get(&self.key).await {
                Err(StoreError::NotFound) => {
                    let (out, next) = step(None)?;
                    let mut map = Map::new();
                    map.insert("value".into(), json!(next));
                    map.insert("name".into(), json!(self.name));
                    map.extend(self.extra.clone());
                    map.insert("createdAt".into(), json!(now));
                    let mut body = Value::Object(map);
                    if reset {
                        body["updatedAt"] = json!(now);
                        body["resetAt"] = json!(now);
                    }
                    (WriteCondition::IfNoneMatch, body, out)
                }
                Err(e) => return Err(e.at(&self.key)),
                Ok(obj) => {
                    let (stored, mut map) = self.parse(&obj.body)?;
                    let (out, next) = step(Some(stored))?;
                    map.insert("value".into(), json!(next));
                    map.insert("updatedAt".into(), json!(now));
                    if reset {
                        map.insert("resetAt".into(), json!(now));
                    }
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
            let created = req.condition == WriteCondition::IfNoneMatch;
            match self.db.store.put(&self.key, req).await {
                Ok(_) => return Ok(result),
                Err(e @ StoreError::PreconditionFailed)
                | Err(e @ StoreError::Conflict)
                | Err(e @ StoreError::NotFound) => {
                    contradictions
                        .lost_write(created && matches!(e, StoreError::PreconditionFailed))?;
                    tokio::time::sleep(jitter()).await
                }
                Err(e) => return Err(e.at(&self.key)),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("sequence {:?}: too much contention", self.name),
        ))
    }
}

/// Names of the sequences stored under `sequences/<name>/value`, in key order
/// (one LIST per 1,000 keys).
pub async fn list_sequences(ctx: &Context) -> Result<Vec<String>> {
    let keys = ctx.store.list_all(PREFIX).await.map_err(|e| e.at(PREFIX))?;
    Ok(keys
        .iter()
        .filter_map(|k| k.strip_prefix(PREFIX)?.strip_suffix(SUFFIX))
        .filter(|name| !name.contains('/'))
        .map(str::to_string)
        .collect())
}
