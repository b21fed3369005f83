//! What s3db.js plugins build on (docs/bindings.md, "Hooks and plugins"): resource hooks,
//! plugin-owned attributes and PluginStorage; plus `s3db_update_conditional`.

use std::sync::Arc;

use s3db::storage::WriteCondition;
use s3db::{
    Hook, PluginBehavior, PluginLock, PluginLockOptions, PluginSequenceOptions, SetOptions,
};

use super::coordination::libc;
use super::*;

/// A plugin's documents, sequences and locks under `plugin=<slug>/…` (`s3db_plugin_storage`).
/// Free with `s3db_plugin_storage_free`.
pub struct s3db_plugin_storage_t {
    storage: s3db::PluginStorage,
}

/// A resource hook (`s3db_resource_add_hook`): gets the value as JSON text (a record; a JSON
/// array for afterList/afterQuery/afterGetMany; a context object for beforeGet, beforeCount, …),
/// valid only during the call, and returns the value to go on with as JSON text in memory from
/// `malloc` (the library frees it with `free`), or NULL to abort the operation
/// (`S3DB_ERR_VALIDATION`, nothing written). It runs on the thread driving the operation (a
/// runtime thread for `_async` calls) and may call s3db functions.
pub type s3db_hook_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, value_json: *const c_char) -> *mut c_char>;

fn call_hook(
    func: unsafe extern "C" fn(*mut c_void, *const c_char) -> *mut c_char,
    user_data: &UserData,
    value: Value,
) -> s3db::Result<Value> {
    let arg = c_string(value.to_string());
    let returned = unsafe { func(user_data.get(), arg.as_ptr()) };
    if returned.is_null() {
        return Err(s3db::Error::validation(
            "the hook returned NULL: operation aborted",
        ));
    }
    let parsed = match unsafe { CStr::from_ptr(returned) }.to_str() {
        Ok(text) => serde_json::from_str(text)
            .map_err(|e| s3db::Error::invalid(format!("the hook returned invalid JSON ({e})"))),
        Err(e) => Err(s3db::Error::invalid(format!(
            "the hook returned text that is not UTF-8 ({e})"
        ))),
    };
    unsafe { libc::free(returned.cast()) };
    parsed
}

/// Adds a hook (s3db.js `addHook`) for `event` (`beforeInsert`, `afterInsert`, … — the 24
/// events of s3db.js; another name is `S3DB_ERR_INVALID_ARGUMENT`). Hooks of one event run in
/// the order added, each getting the previous one's result, for every handle of the resource
/// of this database. `name` (may be NULL) is what the catalog summary shows. `user_data` must
/// stay valid as long as the database is used.
#[no_mangle]
pub unsafe extern "C" fn s3db_resource_add_hook(
    res: *const s3db_resource_t,
    event: *const c_char,
    name: *const c_char,
    func: s3db_hook_fn,
    user_data: *mut c_void,
) -> c_int {
    ffi(|| {
        let res = &arg_ref(res, "res")?.res;
        let event = arg_str(event, "event")?;
        let name = arg_opt_str(name, "name")?.map(str::to_string);
        let func = func.ok_or_else(|| Fail::invalid("func is NULL"))?;
        let user_data = Arc::new(UserData(user_data));
        let hook = Hook::sync(name, 1, move |v| call_hook(func, &user_data, v));
        Ok(res.add_hook(event, hook)?)
    })
}

/// s3db.js `updateConditional`: `s3db_update` applied only if the record still has version
/// tag `if_match`; `out_json` (may be NULL) receives `{"record":{…},"etag":"…"}`, the etag being
/// the one to pass next. A stale tag is `S3DB_ERR_PRECONDITION_FAILED`, nothing written.
#[no_mangle]
pub unsafe extern "C" fn s3db_update_conditional(
    res: *const s3db_resource_t,
    id: *const c_char,
    json: *const c_char,
    if_match: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_json);
        let res = &arg_ref(res, "res")?.res;
        let id = arg_str(id, "id")?;
        let changes = arg_json(json, "json")?;
        let if_match = arg_str(if_match, "if_match")?;
        let (record, etag) = run(res.update_conditional(id, changes, if_match))?;
        give_opt_json(out, &json!({"record": record, "etag": etag}))
    })
}

/// s3db.js `addPluginAttribute(name, definition, pluginName)`: an attribute owned by `plugin`,
/// stored under a `p…` key. `definition_json` is a rule as JSON (`"\"string|optional\""`) or an
/// object (`{"type":"number"}`). Persists a new catalog version (none when the attribute is
/// already there alike). `out_json` (may be NULL) receives the plugin map `{"attr":"key"}`.
#[no_mangle]
pub unsafe extern "C" fn s3db_resource_add_plugin_attribute(
    res: *const s3db_resource_t,
    name: *const c_char,
    definition_json: *const c_char,
    plugin: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_json);
        let res = &arg_ref(res, "res")?.res;
        let name = arg_str(name, "name")?;
        let definition = arg_json(definition_json, "definition_json")?;
        if !(definition.is_string() || definition.is_object()) {
            return Err(Fail::invalid(
                "definition_json must be a JSON string (a rule) or object",
            ));
        }
        let plugin = arg_str(plugin, "plugin")?;
        let map = run(res.add_plugin_attribute(name, &definition, plugin))?;
        give_opt_json(out, &map)
    })
}

/// Removes `plugin`'s attribute `name` (a new catalog version; its key is burned, records that
/// carry it still read). `*removed` (may be NULL) is false when there was no such attribute.
#[no_mangle]
pub unsafe extern "C" fn s3db_resource_remove_plugin_attribute(
    res: *const s3db_resource_t,
    name: *const c_char,
    plugin: *const c_char,
    removed: *mut bool,
) -> c_int {
    ffi(|| {
        if let Some(r) = removed.as_mut() {
            *r = false;
        }
        let res = &arg_ref(res, "res")?.res;
        let name = arg_str(name, "name")?;
        let plugin = arg_str(plugin, "plugin")?;
        let done = run(res.remove_plugin_attribute(name, plugin))?;
        if let Some(r) = removed.as_mut() {
            *r = done;
        }
        Ok(())
    })
}

/// The plugin-owned attributes and their keys, as JSON `{"attr":"key"}`.
#[no_mangle]
pub unsafe extern "C" fn s3db_resource_plugin_map(
    res: *const s3db_resource_t,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let res = &arg_ref(res, "res")?.res;
        give_json(out, &res.plugin_map())
    })
}

/// The PluginStorage of plugin `slug` (no I/O). A slug with `/` or `..` is
/// `S3DB_ERR_INVALID_ARGUMENT`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage(
    db: *const s3db_database_t,
    slug: *const c_char,
    out_storage: *mut *mut s3db_plugin_storage_t,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_storage, "out_storage")?;
        let db = &arg_ref(db, "db")?.db;
        let slug = arg_str(slug, "slug")?;
        let storage = db.plugin_storage(slug)?;
        give_handle(out, s3db_plugin_storage_t { storage });
        Ok(())
    })
}

/// Frees a PluginStorage handle. NULL is ignored.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_free(storage: *mut s3db_plugin_storage_t) {
    free_handle(storage)
}

unsafe fn storage_of<'a>(p: *const s3db_plugin_storage_t) -> FfiResult<&'a s3db::PluginStorage> {
    Ok(&arg_ref(p, "storage")?.storage)
}

/// s3db.js `getPluginKey(resourceName, ...parts)`: `plugin=<slug>/<parts>` or, with a
/// `resource` (may be NULL), `resource=<R>/plugin=<slug>/<parts>`. `parts_json` is a JSON
/// array of strings.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_key(
    storage: *const s3db_plugin_storage_t,
    resource: *const c_char,
    parts_json: *const c_char,
    out_key: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_key, "out_key")?;
        let ps = storage_of(storage)?;
        let resource = arg_opt_str(resource, "resource")?;
        let parts = arg_ids(parts_json, "parts_json")?;
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        *out = give_string(ps.key(resource, &parts)?);
        Ok(())
    })
}

/// Stores `data_json` (a JSON object) at `key`. `options_json` (may be NULL):
/// `{"behavior":"body-overflow"|"body-only"|"enforce-limits","ttl_ms":…,"content_type":"…",
/// "if_match":"etag","if_none_match":true}`. `out_etag` (may be NULL) receives the new version;
/// a failed condition is `S3DB_ERR_PRECONDITION_FAILED`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_set(
    storage: *const s3db_plugin_storage_t,
    key: *const c_char,
    data_json: *const c_char,
    options_json: *const c_char,
    out_etag: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_opt_out_ptr(out_etag);
        let ps = storage_of(storage)?;
        let key = arg_str(key, "key")?;
        let data = arg_json(data_json, "data_json")?;
        let mut opts = SetOptions::default();
        if !options_json.is_null() {
            let o = arg_json(options_json, "options_json")?;
            let o = o
                .as_object()
                .ok_or_else(|| Fail::invalid("options_json must be a JSON object"))?;
            if let Some(b) = o.get("behavior").and_then(Value::as_str) {
                opts.behavior = PluginBehavior::parse(b)?;
            }
            if let Some(ms) = o.get("ttl_ms") {
                let ms = ms
                    .as_u64()
                    .ok_or_else(|| Fail::invalid("ttl_ms must be a non-negative integer"))?;
                opts.ttl = Some(Duration::from_millis(ms));
            }
            opts.content_type = o
                .get("content_type")
                .and_then(Value::as_str)
                .map(str::to_string);
            let if_none_match = o.get("if_none_match").and_then(Value::as_bool) == Some(true);
            opts.condition = match (o.get("if_match").and_then(Value::as_str), if_none_match) {
                (Some(_), true) => {
                    return Err(Fail::invalid(
                        "if_match and if_none_match exclude each other",
                    ))
                }
                (Some(etag), false) => WriteCondition::IfMatch(etag.to_string()),
                (None, true) => WriteCondition::IfNoneMatch,
                (None, false) => WriteCondition::None,
            };
        }
        let etag = run(ps.set(key, &data, &opts))?;
        if let Some(out) = out {
            *out = give_string(etag);
        }
        Ok(())
    })
}

/// The document at `key` as JSON, or `null` when absent or expired (an expired one is deleted).
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_get(
    storage: *const s3db_plugin_storage_t,
    key: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let ps = storage_of(storage)?;
        let key = arg_str(key, "key")?;
        give_json(out, &run(ps.get(key))?)
    })
}

/// Whether a live document is at `key`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_has(
    storage: *const s3db_plugin_storage_t,
    key: *const c_char,
    out: *mut bool,
) -> c_int {
    ffi(|| {
        let out = out.as_mut().ok_or_else(|| Fail::invalid("out is NULL"))?;
        *out = false;
        let ps = storage_of(storage)?;
        let key = arg_str(key, "key")?;
        *out = run(ps.has(key))?;
        Ok(())
    })
}

/// Deletes the document at `key`; `*deleted` (may be NULL) is false when there was none.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_delete(
    storage: *const s3db_plugin_storage_t,
    key: *const c_char,
    deleted: *mut bool,
) -> c_int {
    ffi(|| {
        if let Some(d) = deleted.as_mut() {
            *d = false;
        }
        let ps = storage_of(storage)?;
        let key = arg_str(key, "key")?;
        let done = run(ps.delete(key))?;
        if let Some(d) = deleted.as_mut() {
            *d = done;
        }
        Ok(())
    })
}

/// The keys under `plugin=<slug>/<prefix>` (`prefix` may be NULL), as a JSON array; with a
/// `resource`, those under `resource=<R>/plugin=<slug>/<prefix>`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_list(
    storage: *const s3db_plugin_storage_t,
    resource: *const c_char,
    prefix: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let ps = storage_of(storage)?;
        let resource = arg_opt_str(resource, "resource")?;
        let prefix = arg_opt_str(prefix, "prefix")?;
        let keys = match resource {
            Some(r) => run(ps.list_for_resource(r, prefix))?,
            None => run(ps.list(prefix))?,
        };
        give_json(out, &keys)
    })
}

/// Deletes the plugin's documents (only `resource`'s when not NULL); `*deleted` (may be NULL)
/// receives how many.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_delete_all(
    storage: *const s3db_plugin_storage_t,
    resource: *const c_char,
    deleted: *mut u64,
) -> c_int {
    ffi(|| {
        if let Some(d) = deleted.as_mut() {
            *d = 0;
        }
        let ps = storage_of(storage)?;
        let resource = arg_opt_str(resource, "resource")?;
        let n = run(ps.delete_all(resource))?;
        if let Some(d) = deleted.as_mut() {
            *d = n;
        }
        Ok(())
    })
}

/// The next value of the plugin's sequence `name`. `options_json` (may be NULL):
/// `{"resource":"users","initial_value":1,"increment":1}`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_next_sequence(
    storage: *const s3db_plugin_storage_t,
    name: *const c_char,
    options_json: *const c_char,
    out: *mut i64,
) -> c_int {
    ffi(|| {
        let out = out.as_mut().ok_or_else(|| Fail::invalid("out is NULL"))?;
        let ps = storage_of(storage)?;
        let name = arg_str(name, "name")?;
        let mut opts = PluginSequenceOptions::default();
        if !options_json.is_null() {
            let o = arg_json(options_json, "options_json")?;
            let int = |k: &str| -> FfiResult<Option<i64>> {
                match o.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_i64()
                        .map(Some)
                        .ok_or_else(|| Fail::invalid(format!("{k} must be an integer"))),
                }
            };
            opts.resource = o
                .get("resource")
                .and_then(Value::as_str)
                .map(str::to_string);
            opts.initial_value = int("initial_value")?.unwrap_or(opts.initial_value);
            opts.increment = int("increment")?.unwrap_or(opts.increment);
        }
        *out = run(ps.next_sequence(name, &opts))?;
        Ok(())
    })
}

/// The value the next `s3db_plugin_storage_next_sequence` returns, as JSON (a number, or
/// `null` when the sequence does not exist). `resource` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_get_sequence(
    storage: *const s3db_plugin_storage_t,
    name: *const c_char,
    resource: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let ps = storage_of(storage)?;
        let name = arg_str(name, "name")?;
        let resource = arg_opt_str(resource, "resource")?;
        give_json(out, &run(ps.get_sequence(name, resource))?)
    })
}

/// Takes the plugin lock `name` (`plugin=<slug>/locks/<name>`, s3db.js's format).
/// `options_json` (may be NULL): `{"ttl_ms":30000,"timeout_ms":0,"worker_id":"…"}`. `out_json`
/// receives the lock `{"name","key","token","worker_id","expires_at","etag"}`, or `null` when
/// someone else holds it; pass it to `s3db_plugin_storage_release_lock`.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_acquire_lock(
    storage: *const s3db_plugin_storage_t,
    name: *const c_char,
    options_json: *const c_char,
    out_json: *mut *mut c_char,
) -> c_int {
    ffi(|| {
        let out = arg_out_ptr(out_json, "out_json")?;
        let ps = storage_of(storage)?;
        let name = arg_str(name, "name")?;
        let mut opts = PluginLockOptions::default();
        if !options_json.is_null() {
            let o = arg_json(options_json, "options_json")?;
            let ms = |k: &str| -> FfiResult<Option<Duration>> {
                match o.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v
                        .as_u64()
                        .map(|n| Some(Duration::from_millis(n)))
                        .ok_or_else(|| {
                            Fail::invalid(format!("{k} must be a non-negative integer"))
                        }),
                }
            };
            opts.ttl = ms("ttl_ms")?.unwrap_or(opts.ttl);
            opts.timeout = ms("timeout_ms")?.unwrap_or(opts.timeout);
            if let Some(w) = o.get("worker_id").and_then(Value::as_str) {
                opts.worker_id = w.to_string();
            }
        }
        let lock = run(ps.acquire_lock(name, &opts))?;
        let v = lock.map(|l| {
            json!({"name": l.name, "key": l.key, "token": l.token, "worker_id": l.worker_id,
                   "expires_at": l.expires_at, "etag": l.etag})
        });
        give_json(out, &v)
    })
}

/// Releases a lock from `s3db_plugin_storage_acquire_lock` (its JSON); `*released` (may be
/// NULL) is false when it was no longer held by that acquisition.
#[no_mangle]
pub unsafe extern "C" fn s3db_plugin_storage_release_lock(
    storage: *const s3db_plugin_storage_t,
    lock_json: *const c_char,
    released: *mut bool,
) -> c_int {
    ffi(|| {
        if let Some(r) = released.as_mut() {
            *r = false;
        }
        let ps = storage_of(storage)?;
        let l = arg_json(lock_json, "lock_json")?;
        let text = |k: &str| -> FfiResult<String> {
            l.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| Fail::invalid(format!("lock_json lacks \"{k}\"")))
        };
        let lock = PluginLock {
            name: text("name")?,
            key: text("key")?,
            token: text("token")?,
            worker_id: text("worker_id")?,
            expires_at: l.get("expires_at").and_then(Value::as_i64).unwrap_or(0),
            etag: text("etag")?,
        };
        let done = run(ps.release_lock(&lock))?;
        if let Some(r) = released.as_mut() {
            *r = done;
        }
        Ok(())
    })
}
