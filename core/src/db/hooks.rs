//! Resource hooks (s3db.js `hooks: {beforeInsert: [fn, …], …}` and `resource.addHook`):
//! host-language functions run around the resource's operations, in registration order,
//! each receiving the previous one's result. A hook that fails aborts the operation.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// Every event s3db.js 21 defines. "before" hooks of reads and of batch calls receive a
/// context object and their result is ignored; the others may change the value they get.
pub const HOOK_EVENTS: [&str; 24] = [
    "beforeInsert",
    "afterInsert",
    "beforeUpdate",
    "afterUpdate",
    "beforeDelete",
    "afterDelete",
    "beforeGet",
    "afterGet",
    "beforeList",
    "afterList",
    "beforeQuery",
    "afterQuery",
    "beforePatch",
    "afterPatch",
    "beforeReplace",
    "afterReplace",
    "beforeExists",
    "afterExists",
    "beforeCount",
    "afterCount",
    "beforeGetMany",
    "afterGetMany",
    "beforeDeleteMany",
    "afterDeleteMany",
];

pub type HookFuture = Pin<Box<dyn Future<Output = Result<Value>> + Send>>;
type HookFn = dyn Fn(Value) -> HookFuture + Send + Sync;

/// One host function, with what the catalog summary says about it.
#[derive(Clone)]
pub struct Hook {
    name: Option<String>,
    arity: u32,
    run: Arc<HookFn>,
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
            .field("arity", &self.arity)
            .finish()
    }
}

impl Hook {
    /// `name` and `arity` are the host function's (`fn.name`/`fn.length` in JS).
    pub fn new<F>(name: Option<String>, arity: u32, run: F) -> Hook
    where
        F: Fn(Value) -> HookFuture + Send + Sync + 'static,
    {
        Hook {
            name,
            arity,
            run: Arc::new(run),
        }
    }

    /// A synchronous hook.
    pub fn sync<F>(name: Option<String>, arity: u32, run: F) -> Hook
    where
        F: Fn(Value) -> Result<Value> + Send + Sync + 'static,
    {
        let run = Arc::new(run);
        Hook::new(name, arity, move |v| {
            let run = run.clone();
            Box::pin(async move { run(v) })
        })
    }
}

/// The hooks of one resource, shared by every handle of it in this process.
#[derive(Clone, Default)]
pub struct Hooks {
    by_event: Arc<RwLock<HashMap<&'static str, Vec<Hook>>>>,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hooks({})", self.summary())
    }
}

impl Hooks {
    pub fn add(&self, event: &str, hook: Hook) -> Result<()> {
        let event = HOOK_EVENTS.iter().find(|e| **e == event).ok_or_else(|| {
            Error::invalid(format!(
                "unknown hook event {event:?} (one of {})",
                HOOK_EVENTS.join(", ")
            ))
        })?;
        self.by_event
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(event)
            .or_default()
            .push(hook);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.by_event
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .all(Vec::is_empty)
    }

    /// Makes these hooks the same as `other`'s.
    pub(crate) fn replace_with(&self, other: &Hooks) {
        if Arc::ptr_eq(&self.by_event, &other.by_event) {
            return;
        }
        let theirs = other
            .by_event
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        *self.by_event.write().unwrap_or_else(|p| p.into_inner()) = theirs;
    }

    fn of(&self, event: &str) -> Vec<Hook> {
        self.by_event
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(event)
            .cloned()
            .unwrap_or_default()
    }

    pub fn has(&self, event: &str) -> bool {
        !self.of(event).is_empty()
    }

    /// Runs the chain: each hook gets the previous one's result.
    pub(crate) async fn run(&self, event: &str, value: Value) -> Result<Value> {
        let mut value = value;
        for hook in self.of(event) {
            value = (hook.run)(value).await.map_err(|e| {
                let name = hook.name.as_deref().unwrap_or("anonymous");
                let wrapped = Error::new(e.kind(), format!("{event} hook {name}: {}", e.message()));
                match e.details() {
                    Some(d) => wrapped.with_details(d.clone()),
                    None => wrapped,
                }
            })?;
        }
        Ok(value)
    }

    /// Runs the chain for its effects (a hook may still fail the operation).
    pub(crate) async fn notify(&self, event: &str, context: Value) -> Result<()> {
        self.run(event, context).await.map(|_| ())
    }

    /// Runs a value-changing chain on a record object.
    pub(crate) async fn run_record(
        &self,
        event: &str,
        record: Map<String, Value>,
    ) -> Result<Map<String, Value>> {
        if !self.has(event) {
            return Ok(record);
        }
        match self.run(event, Value::Object(record)).await? {
            Value::Object(m) => Ok(m),
            other => Err(Error::validation(format!(
                "{event} hook returned {}, not a record object",
                crate::format::schema::type_name(&other)
            ))),
        }
    }

    /// s3db.js's catalog summary: `{event: {count, handlers: [{name, length, type}]}}`.
    pub fn summary(&self) -> Value {
        let by_event = self.by_event.read().unwrap_or_else(|p| p.into_inner());
        let mut out = Map::new();
        for event in HOOK_EVENTS {
            let Some(hooks) = by_event.get(event).filter(|h| !h.is_empty()) else {
                continue;
            };
            let handlers: Vec<Value> = hooks
                .iter()
                .map(|h| json!({"name": h.name, "length": h.arity, "type": "function"}))
                .collect();
            out.insert(
                event.to_string(),
                json!({"count": hooks.len(), "handlers": handlers}),
            );
        }
        Value::Object(out)
    }
}
