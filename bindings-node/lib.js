'use strict'
// Thin JS layer over the native module (s3db.<platform>.node, built by `napi build`).
// It maps the error kind the native side encodes as `[s3db:<CODE>] ` into `err.code` /
// `err.name`, scrubs credentials out of messages and offers the s3db.js-style API.
// No database logic lives here.

const path = require('node:path')
const fs = require('node:fs')
const { EventEmitter } = require('node:events')

function loadNative() {
  const { platform, arch } = process
  let abi = ''
  if (platform === 'linux') {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    const glibc = report && report.header && report.header.glibcVersionRuntime
    abi = glibc ? '-gnu' : '-musl'
  } else if (platform === 'win32') {
    abi = '-msvc'
  }
  const file = path.join(__dirname, `s3db.${platform}-${arch}${abi}.node`)
  if (!fs.existsSync(file)) {
    const built = fs.readdirSync(__dirname).filter((f) => f.endsWith('.node'))
    throw new Error(
      `s3db-rs: native module ${path.basename(file)} not found` +
        (built.length ? ` (found: ${built.join(', ')})` : '') +
        '; run `npm run build` in the package directory'
    )
  }
  return require(file)
}

const native = loadNative()

const CODES = [
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PRECONDITION_FAILED',
  'CONFLICT',
  'VALIDATION',
  'INVALID_ARGUMENT',
  'LOCK_NOT_ACQUIRED',
  'LOCK_LOST',
  'CORRUPT',
  'STORAGE',
  'OUTCOME_UNKNOWN',
]

/** Base class of every error s3db raises; `code` is one of CODES. */
class S3dbError extends Error {
  constructor(message, code, options) {
    super(message, options)
    this.code = code
    if (options && options.details !== undefined) this.details = options.details
  }
}
Object.defineProperty(S3dbError.prototype, 'name', { value: 'S3dbError', writable: true, configurable: true })

function className(code) {
  return code.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase()) + 'Error'
}

const errorClasses = {}
for (const code of CODES) {
  const name = className(code)
  const cls =
    code === 'VALIDATION'
      ? class ValidationError extends S3dbError {
          /** `details`: the failed checks, `[{field, rule, expected, actual}]` (may be empty). */
          constructor(message, options) {
            super(message, code, options)
            if (!Array.isArray(this.details)) this.details = []
          }
        }
      : {
          [name]: class extends S3dbError {
            constructor(message, options) {
              super(message, code, options)
            }
          },
        }[name]
  Object.defineProperty(cls.prototype, 'name', { value: name, writable: true, configurable: true })
  errorClasses[code] = cls
}

// napi statuses of the argument conversions napi itself performs (a wrong JS type).
const ARGUMENT_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
])

// `[s3db:CODE] message`, or `[s3db:CODE;details] message\n<compact JSON>` (src/lib.rs).
const PREFIX = /^\[s3db:([A-Z_]+)(;details)?\] /

function scrub(message, secrets) {
  let out = String(message)
  for (const s of secrets) {
    if (s) out = out.split(s).join('***')
  }
  return out
}

/** Scrubs every string of a JSON value. */
function scrubValue(value, secrets) {
  if (typeof value === 'string') return scrub(value, secrets)
  if (Array.isArray(value)) return value.map((v) => scrubValue(v, secrets))
  if (value && typeof value === 'object') {
    const out = {}
    for (const [k, v] of Object.entries(value)) out[k] = scrubValue(v, secrets)
    return out
  }
  return value
}

// Errors thrown by hook functions, by ticket: the engine sees only their message, and the
// caller gets the original error back.
const hookErrors = new Map()
let lastTicket = 0
const TICKET = /\u27e6hook (\d+)\u27e7/

function ticketFor(err) {
  const ticket = ++lastTicket
  hookErrors.set(ticket, err)
  if (hookErrors.size > 1000) hookErrors.delete(hookErrors.keys().next().value)
  const message = err instanceof Error ? err.message : String(err)
  return new Error(`\u27e6hook ${ticket}\u27e7 ${message}`)
}

/** The function the engine calls for every hook: `fns` maps resource names to functions. */
function hookDispatcher(fns) {
  return async ({ resource, index, value }) => {
    const fn = fns.get(resource)?.[index]
    if (typeof fn !== 'function') throw ticketFor(new Error(`hook ${index} of ${resource} is gone`))
    try {
      const out = await fn(value)
      return out === undefined ? value : out
    } catch (e) {
      throw ticketFor(e)
    }
  }
}

/** `{event: fn | [fn, …]}` → descriptors for the engine and the functions, in order. */
function hookSpecs(hooks) {
  if (hooks === null || typeof hooks !== 'object' || Array.isArray(hooks)) {
    throw invalidArgument('hooks must be an object of {event: [function, …]}')
  }
  const specs = []
  const fns = []
  for (const [event, list] of Object.entries(hooks)) {
    for (const fn of Array.isArray(list) ? list : [list]) {
      if (typeof fn !== 'function') {
        throw invalidArgument(`hooks.${event} must hold functions, got ${fn === null ? 'null' : typeof fn}`)
      }
      specs.push({ event, name: fn.name || undefined, length: fn.length, index: fns.length })
      fns.push(fn)
    }
  }
  return { specs, fns }
}

/** Converts whatever the native side threw into an S3dbError subclass. */
function convert(err, secrets) {
  if (err instanceof S3dbError) return err
  const ticket = err instanceof Error && TICKET.exec(err.message)
  if (ticket && hookErrors.has(Number(ticket[1]))) {
    const original = hookErrors.get(Number(ticket[1]))
    hookErrors.delete(Number(ticket[1]))
    return original
  }
  if (!(err instanceof Error)) {
    return new errorClasses.INVALID_ARGUMENT(scrub(err, secrets))
  }
  const m = PREFIX.exec(err.message)
  if (m && errorClasses[m[1]]) {
    let message = err.message.slice(m[0].length)
    let details
    if (m[2]) {
      // Compact JSON holds no raw newline: the last one separates message and details.
      const at = message.lastIndexOf('\n')
      if (at >= 0) {
        try {
          details = scrubValue(JSON.parse(message.slice(at + 1)), secrets)
          message = message.slice(0, at)
        } catch {
          // not JSON after all: keep the whole text as the message
        }
      }
    }
    return new errorClasses[m[1]](scrub(message, secrets), details === undefined ? undefined : { details })
  }
  if (ARGUMENT_STATUSES.has(err.code) || err instanceof TypeError) {
    return new errorClasses.INVALID_ARGUMENT(scrub(err.message, secrets))
  }
  // Not produced by the engine (e.g. a napi runtime failure): keep it, minus secrets.
  err.message = scrub(err.message, secrets)
  return err
}

function invalidArgument(message) {
  return new errorClasses.INVALID_ARGUMENT(message)
}

/** napi reads option fields off primitives too; an options argument must be an object.
 * Fields set to `null` are left out (napi accepts only `undefined` for an absent field). */
function optionsArg(what, value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument(`${what} must be an object, got ${Array.isArray(value) ? 'an array' : typeof value}`)
  }
  const out = {}
  for (const [k, v] of Object.entries(value)) {
    if (v !== null && v !== undefined) out[k] = v
  }
  return out
}

/** Values in a connection string that must never be echoed. */
function secretsOf(url) {
  if (typeof url !== 'string') return []
  const out = []
  try {
    const u = new URL(url)
    // The secret key and session token; the access key id is an identifier, not a secret.
    for (const raw of [u.password, u.searchParams.get('sessionToken')]) {
      if (!raw) continue
      out.push(raw)
      try {
        out.push(decodeURIComponent(raw))
      } catch {
        // not percent-encoded text
      }
    }
  } catch {
    // Not a URL (e.g. a file path): nothing secret to parse out; the engine never echoes it.
  }
  // Longest first so that a secret containing another is replaced whole.
  return [...new Set(out)].filter((s) => s.length >= 3).sort((a, b) => b.length - a.length)
}

/** `data` with an `id` from the resource's JS id generator when it has none. */
async function withGeneratedId(idGenerator, data) {
  if (!idGenerator || !data || typeof data !== 'object' || Array.isArray(data)) return data
  if (data.id !== undefined && data.id !== null) return data
  const id = await idGenerator(data)
  if (typeof id !== 'string' && typeof id !== 'number') {
    throw invalidArgument(`idGenerator must return a string, got ${id === null ? 'null' : typeof id}`)
  }
  return { ...data, id: String(id) }
}

function bufferArg(what, value) {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer) return Buffer.from(value)
  if (typeof value === 'string') return Buffer.from(value, 'utf8')
  throw invalidArgument(`${what} must be a Buffer, a Uint8Array or a string, got ${value === null ? 'null' : typeof value}`)
}

function contentTypeArg(value) {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'string' || value === '') {
    throw invalidArgument(`contentType must be a non-empty string, got ${typeof value === 'string' ? '""' : typeof value}`)
  }
  return value
}

class Resource {
  #native
  #secrets
  #idGenerator
  #registerHook
  constructor(nativeResource, secrets, idGenerator, registerHook) {
    if (!(nativeResource instanceof native.NativeResource)) {
      throw invalidArgument('Resource handles come from a Database')
    }
    this.#native = nativeResource
    this.#secrets = secrets
    this.#idGenerator = typeof idGenerator === 'function' ? idGenerator : undefined
    this.#registerHook = registerHook
    this.name = nativeResource.name
    Object.freeze(this)
  }

  #withId(data) {
    return withGeneratedId(this.#idGenerator, data)
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  async #batch(method, arg) {
    const items = await this.#call(method, arg)
    for (const item of items) {
      if (item.error) item.error.message = scrub(item.error.message, this.#secrets)
    }
    return items
  }

  async insert(data) {
    return this.#call('insert', await this.#withId(data))
  }
  /** Inserts each item; returns `[{index, id, record?, error?: {code, message}}]`. */
  async insertMany(items) {
    if (this.#idGenerator && Array.isArray(items)) {
      const out = []
      for (const item of items) out.push(await this.#withId(item))
      items = out
    }
    return this.#batch('insertMany', items)
  }
  /** Inserts a record whose object body is binary `content` (default type
   * `application/octet-stream`). */
  async insertWithContent(data, content, contentType) {
    const bytes = bufferArg('content', content)
    const type = contentTypeArg(contentType)
    return this.#call('insertWithContent', await this.#withId(data), bytes, type)
  }
  /** Sets (a Buffer) or removes (`null`) the record's binary content. */
  async setContent(id, content, contentType) {
    const bytes = content === null || content === undefined ? undefined : bufferArg('content', content)
    return this.#call('setContent', id, bytes, contentTypeArg(contentType))
  }
  /** `{content: Buffer, contentType}`; NOT_FOUND when the record has no content. */
  content(id) {
    return this.#call('content', id)
  }
  /** The sequence behind an incremental `idGenerator`; `null` otherwise. */
  idSequence() {
    const seq = this.#native.idSequence()
    return seq ? new Sequence(seq, this.#secrets) : null
  }
  get(id) {
    return this.#call('get', id)
  }
  getOrNull(id) {
    return this.#call('getOrNull', id)
  }
  /** `{found, missing}`: the records found (in the order asked) and the missing ids. */
  getMany(ids) {
    return this.#call('getMany', ids)
  }
  /** `{record, etag}`, for `updateIf`. */
  getWithEtag(id) {
    return this.#call('getWithEtag', id)
  }
  exists(id) {
    return this.#call('exists', id)
  }
  update(id, changes) {
    return this.#call('update', id, changes)
  }
  /** `update`, applied only if the record still has version tag `etag`. */
  /** s3db.js `addPluginAttribute(name, definition, pluginName)`: a plugin-owned attribute
   * stored under a `p…` key; resolves the plugin map (`{attribute: key}`). */
  addPluginAttribute(name, definition, pluginName) {
    return this.#call('addPluginAttribute', name, definition, pluginName)
  }
  /** Removes a plugin's attribute (its key is burned); false if it was not there. */
  removePluginAttribute(name, pluginName) {
    return this.#call('removePluginAttribute', name, pluginName)
  }
  /** `{attribute: key}` of the plugin-owned attributes. */
  get pluginMap() {
    return this.#native.pluginMap
  }
  /** s3db.js `resource.addHook(event, fn)`: `fn(value)` returns the changed value (or
   * nothing: unchanged); throwing aborts the operation with that error. */
  addHook(event, fn) {
    if (typeof fn !== 'function') throw invalidArgument('addHook needs a function')
    if (!this.#registerHook) throw invalidArgument('this resource handle takes no hooks')
    const index = this.#registerHook(fn)
    try {
      this.#native.addHook({ event, name: fn.name || undefined, length: fn.length, index })
    } catch (e) {
      throw convert(e, this.#secrets)
    }
    return true
  }
  /** s3db.js `updateConditional(id, changes, {ifMatch})`: `{success: true, data, etag}`, or
   * `{success: false, error, code}` when the record changed, is missing or is invalid. */
  async updateConditional(id, changes, options) {
    const ifMatch = options?.ifMatch
    if (typeof ifMatch !== 'string' || ifMatch === '') {
      throw invalidArgument('updateConditional needs {ifMatch: etag}')
    }
    try {
      const { record, etag } = await this.#native.updateConditional(id, changes, ifMatch)
      return { success: true, data: record, etag }
    } catch (e) {
      const err = convert(e, this.#secrets)
      if (['PRECONDITION_FAILED', 'NOT_FOUND', 'VALIDATION'].includes(err.code)) {
        const out = { success: false, error: err.message, code: err.code }
        if (err.details !== undefined) out.validationErrors = err.details
        return out
      }
      throw err
    }
  }
  updateIf(id, changes, etag) {
    return this.#call('updateIf', id, changes, etag)
  }
  /** Replaces the whole record (it must exist). */
  replace(id, data) {
    return this.#call('replace', id, data)
  }
  /** Inserts, or merges into the record with the same id. */
  async upsert(data) {
    return this.#call('upsert', await this.#withId(data))
  }
  patch(id, changes) {
    return this.#call('patch', id, changes)
  }
  delete(id) {
    return this.#call('delete', id)
  }
  /** Deletes each id; returns `[{index, id, error?: {code, message}}]`. */
  deleteMany(ids) {
    return this.#batch('deleteMany', ids)
  }
  /** Deletes every record; refused (INVALID_ARGUMENT) unless the resource has `paranoid: false`. */
  deleteAll() {
    return this.#call('deleteAll')
  }
  /** `options`: `{partition, partitionValues}` to list one partition's records. */
  async listIds(options) {
    return this.#call('listIds', optionsArg('list options', options))
  }
  async list(options) {
    return this.#call('list', optionsArg('list options', options))
  }
  async count(options) {
    return this.#call('count', optionsArg('count options', options))
  }
  /** `{items, cursor}`; pass `cursor` back for the next page (null on the last). */
  async page(options) {
    if (options === undefined || options === null) {
      throw invalidArgument('page needs {size, cursor?}')
    }
    const page = await this.#call('page', optionsArg('page options', options))
    // napi leaves an absent field out: the last page says so with `cursor: null`.
    return { items: page.items, cursor: page.cursor ?? null }
  }
  query(filter) {
    return this.#call('query', filter)
  }
  /** Rebuilds the references of one partition (or all); `{written, deleted}`. */
  reindex(partition) {
    return this.#call('reindex', partition)
  }
}

class Lock {
  #native
  #secrets
  constructor(nativeLock, secrets) {
    if (!(nativeLock instanceof native.NativeLock)) {
      throw invalidArgument('Lock handles come from a Database')
    }
    this.#native = nativeLock
    this.#secrets = secrets
    this.name = nativeLock.name
    this.fencingToken = nativeLock.fencingToken
    this.holderId = nativeLock.holderId
    Object.freeze(this)
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  /** Milliseconds since the epoch. */
  expiresAt() {
    return this.#call('expiresAt')
  }
  /** Pushes the expiry to now + `ttl` seconds. */
  extend(ttl) {
    return this.#call('extend', ttl)
  }
  release() {
    return this.#call('release')
  }

  /** The ttl the lock was acquired with, in seconds. */
  get ttl() {
    return this.#native.ttl
  }

  /** True once this handle learnt that it no longer holds the lock (a failed extend,
   * release or renewal). `false` is no proof of holding it: use the fencing token. */
  get isLost() {
    return this.#native.isLost
  }

  /** Renews the lock every ttl/3 until release; `onLost(err, lock)` runs once when renewal
   * fails for good (before the lease ends). Calling it again replaces the callback. */
  autoRenew(onLost) {
    if (onLost !== undefined && onLost !== null && typeof onLost !== 'function') {
      throw invalidArgument('autoRenew: onLost must be a function')
    }
    const secrets = this.#secrets
    const callback =
      typeof onLost === 'function'
        ? (encoded) => {
            const err = convert(new Error(encoded), secrets)
            try {
              onLost(err, this)
            } catch (e) {
              // A throwing callback is an uncaught exception, as for any event listener.
              process.nextTick(() => {
                throw e
              })
            }
          }
        : undefined
    try {
      this.#native.autoRenew(callback)
    } catch (e) {
      throw convert(e, secrets)
    }
  }

  /** Stops auto-renewal (the lock stays held until it expires or is released). */
  stopRenewing() {
    this.#native.stopRenewing()
  }

  /** Writes `value` to the fenced object `name` under this lock's fencing token; rejects
   * with LOCK_LOST when the handle is released or lost or a higher token wrote it. */
  guardedPut(name, value) {
    if (value === undefined) return Promise.reject(invalidArgument('guardedPut needs a value'))
    return this.#call('guardedPut', name, value)
  }
}

class Sequence {
  #native
  #secrets
  constructor(nativeSequence, secrets) {
    if (!(nativeSequence instanceof native.NativeSequence)) {
      throw invalidArgument('Sequence handles come from a Database')
    }
    this.#native = nativeSequence
    this.#secrets = secrets
    this.name = nativeSequence.name
    Object.freeze(this)
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  next() {
    return this.#call('next')
  }
  current() {
    return this.#call('current')
  }
  reset(value) {
    return this.#call('reset', value)
  }
  /** Deletes the stored counter; the next `next()` starts again at `start`. */
  delete() {
    return this.#call('delete')
  }
}

const NOT_THROWN = Symbol('not thrown')

/** Distributed state of one namespace: JSON values with versions, CAS, counters, expiry. */
/** `{resourceName}` of the sequence options, for the native side. */
function resourceOf(options, what) {
  const o = optionsArg(what, options) ?? {}
  return o.resourceName ?? undefined
}

/** s3db.js `PluginStorage`: a plugin's documents under `plugin=<slug>/…`. */
class PluginStorage {
  #native
  #secrets
  constructor(nativeStorage, secrets) {
    if (!(nativeStorage instanceof native.NativePluginStorage)) {
      throw invalidArgument('PluginStorage handles come from a Database')
    }
    this.#native = nativeStorage
    this.#secrets = secrets
    this.slug = nativeStorage.slug
    Object.freeze(this)
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  /** `plugin=<slug>/<parts…>`, or `resource=<R>/plugin=<slug>/<parts…>`. */
  getPluginKey(resourceName, ...parts) {
    try {
      return this.#native.key(resourceName ?? undefined, parts)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }
  /** Stores the object `data`; options `{behavior, ttl (seconds), contentType, ifMatch,
   * ifNoneMatch}`. Returns the new version. */
  set(key, data, options) {
    return this.#call('set', key, data, optionsArg('set options', options))
  }
  /** s3db.js `setIfNotExists`: the new version, or null when the key exists. */
  async setIfNotExists(key, data, options) {
    return this.#conditional(key, data, { ...optionsArg('set options', options), ifNoneMatch: true })
  }
  /** s3db.js `setIfVersion`: the new version, or null when the document changed. */
  async setIfVersion(key, data, version, options) {
    return this.#conditional(key, data, { ...optionsArg('set options', options), ifMatch: version })
  }
  async #conditional(key, data, options) {
    try {
      return await this.#call('set', key, data, options)
    } catch (e) {
      if (e.code === 'PRECONDITION_FAILED') return null
      throw e
    }
  }
  /** The document, or null (also once expired: it is then deleted). */
  async get(key) {
    return (await this.#call('get', key)) ?? null
  }
  /** s3db.js `getWithVersion`: `{data, version}`, both null when absent. */
  async getWithVersion(key) {
    return (await this.#call('getWithVersion', key)) ?? { data: null, version: null }
  }
  has(key) {
    return this.#call('has', key)
  }
  /** False when there was nothing to delete. */
  delete(key) {
    return this.#call('delete', key)
  }
  /** Keys under `plugin=<slug>/<prefix>`. */
  list(prefix) {
    return this.#call('list', prefix ?? undefined)
  }
  listForResource(resourceName, subPrefix) {
    return this.#call('listForResource', resourceName, subPrefix ?? undefined)
  }
  /** Deletes the plugin's documents (only `resourceName`'s, if given); resolves the count. */
  deleteAll(resourceName) {
    return this.#call('deleteAll', resourceName ?? undefined)
  }
  /** `{resourceName, initialValue, increment}`: the next value of the plugin's sequence. */
  nextSequence(name, options) {
    const o = optionsArg('sequence options', options) ?? {}
    return this.#call('nextSequence', name, o.resourceName ?? undefined, o.initialValue, o.increment)
  }
  /** The value the next `nextSequence` returns, or null. */
  async getSequence(name, options) {
    return (await this.#call('getSequence', name, resourceOf(options, 'sequence options'))) ?? null
  }
  async resetSequence(name, value, options) {
    await this.#call('resetSequence', name, value, resourceOf(options, 'sequence options'))
    return true
  }
  deleteSequence(name, options) {
    return this.#call('deleteSequence', name, resourceOf(options, 'sequence options'))
  }
  /** `{ttl (seconds, default 30), timeout (milliseconds, default 0), workerId}` as s3db.js;
   * resolves `{name, key, token, workerId, expiresAt, etag}`, or null when held. */
  async acquireLock(name, options) {
    const o = optionsArg('lock options', options) ?? {}
    return (await this.#call('acquireLock', name, o.ttl, o.timeout, o.workerId)) ?? null
  }
  /** False when the lock was no longer held by this handle. */
  releaseLock(lock) {
    return this.#call('releaseLock', lock)
  }
  isLocked(name) {
    return this.#call('isLocked', name)
  }
}

class State {
  #native
  #secrets
  constructor(nativeState, secrets) {
    if (!(nativeState instanceof native.NativeState)) {
      throw invalidArgument('State handles come from a Database')
    }
    this.#native = nativeState
    this.#secrets = secrets
    this.namespace = nativeState.namespace
    Object.freeze(this)
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  /** `{value, version, expiresAt}` (`expiresAt` null when it never expires), or null. */
  async get(key) {
    const entry = await this.#call('get', key)
    return entry ? entryOf(entry) : null
  }
  /** Stores `value` (last writer wins); `ttl` seconds, or `{ttl}`. Returns the version. */
  set(key, value, ttl) {
    if (value === undefined) return Promise.reject(invalidArgument('state set needs a value'))
    if (ttl !== null && typeof ttl === 'object' && !Array.isArray(ttl)) ttl = ttl.ttl
    return this.#call('set', key, value, ttl ?? undefined)
  }
  /** Read-modify-write: `fn(current value or null)` (may be async) returns the new value;
   * it runs again when another writer got there first. The entry keeps its expiry. An
   * error thrown by `fn` aborts and is rethrown as is. Returns `{value, version, expiresAt}`. */
  async update(key, fn) {
    if (typeof fn !== 'function') throw invalidArgument('state update: fn must be a function')
    let thrown = NOT_THROWN
    const wrapped = async (current) => {
      try {
        const out = await fn(current)
        if (out === undefined) {
          throw invalidArgument('state update: fn returned undefined (return null to store null)')
        }
        return out
      } catch (e) {
        thrown = e
        throw e
      }
    }
    try {
      return entryOf(await this.#native.update(key, wrapped))
    } catch (e) {
      if (thrown !== NOT_THROWN) throw thrown
      throw convert(e, this.#secrets)
    }
  }
  /** Writes `value` only if the entry is still at `expectedVersion` (null: only if absent).
   * `{swapped, currentValue, currentVersion}`; a lost race returns what is there now. */
  async compareAndSwap(key, expectedVersion, value) {
    if (value === undefined) throw invalidArgument('compareAndSwap needs a value')
    const r = await this.#call('compareAndSwap', key, expectedVersion ?? undefined, value)
    return {
      swapped: r.swapped,
      currentValue: r.currentValue === undefined ? null : r.currentValue,
      currentVersion: r.currentVersion ?? null,
    }
  }
  delete(key) {
    return this.#call('delete', key)
  }
  /** Adds `by` (default 1) to the counter by compare-and-swap; returns the new value. */
  increment(key, by) {
    return this.#call('increment', key, by ?? undefined)
  }
  decrement(key, by) {
    return this.#call('decrement', key, by ?? undefined)
  }
  /** The counter's value (0 when absent or expired). */
  counter(key) {
    return this.#call('counter', key)
  }
  /** Sets the counter back to 0 (deletes it). */
  reset(key) {
    return this.#call('reset', key)
  }
  /** Keys of this namespace, in byte order. */
  keys() {
    return this.#call('keys')
  }
}

function entryOf(e) {
  return { value: e.value === undefined ? null : e.value, version: e.version, expiresAt: e.expiresAt ?? null }
}

const EVENT_NAMES = new Set(['leaderChanged', 'becameLeader', 'lostLeadership', 'circuitOpened', 'circuitClosed'])

/** A worker of the leader election of one namespace. An EventEmitter: `leaderChanged`
 * `{leaderId, epoch}`, `becameLeader` `{epoch}`, `lostLeadership` `{epoch}`, `circuitOpened`
 * `{failures}`, `circuitClosed`; plus `event` with `{type, …}` for each of them. While
 * started it keeps the process alive (like a server); `stop()` lets it exit. */
class Coordinator extends EventEmitter {
  #native
  #secrets
  #running = false
  #pump = null
  #op = Promise.resolve()
  constructor(nativeCoordinator, secrets) {
    if (!(nativeCoordinator instanceof native.NativeCoordinator)) {
      throw invalidArgument('Coordinator handles come from a Database')
    }
    super()
    this.#native = nativeCoordinator
    this.#secrets = secrets
    Object.defineProperty(this, 'workerId', { value: nativeCoordinator.workerId, enumerable: true })
    Object.defineProperty(this, 'namespace', { value: nativeCoordinator.namespace, enumerable: true })
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  #serial(fn) {
    const run = this.#op.then(fn, fn)
    this.#op = run.catch(() => {})
    return run
  }

  #dispatch(ev) {
    const { type, ...payload } = ev
    if (!EVENT_NAMES.has(type)) return
    try {
      if (type === 'circuitClosed') this.emit(type)
      else this.emit(type, payload)
      this.emit('event', ev)
    } catch (e) {
      // A throwing listener is an uncaught exception, as for any async event source.
      process.nextTick(() => {
        throw e
      })
    }
  }

  async #loop() {
    for (;;) {
      let ev
      try {
        ev = await this.#native.nextEvent()
      } catch {
        return
      }
      if (ev === null || ev === undefined) {
        if (!this.#running) return
        continue
      }
      this.#dispatch(ev)
    }
  }

  /** Joins the election (the first round runs before it resolves); then keeps going in
   * the background. Starting a running coordinator does nothing. */
  start() {
    return this.#serial(async () => {
      if (this.#running) return
      this.#native.openEvents()
      this.#running = true
      this.#pump = this.#loop()
      try {
        await this.#call('start')
      } catch (e) {
        await this.#halt()
        throw e
      }
    })
  }

  async #halt() {
    this.#running = false
    this.#native.closeEvents()
    const pump = this.#pump
    this.#pump = null
    if (pump) await pump
  }

  /** Leaves the election: releases the lease if leading (emitting `lostLeadership`) and
   * deletes this worker's heartbeat. Events still buffered are emitted before it resolves. */
  stop() {
    return this.#serial(async () => {
      let err
      try {
        await this.#call('stop')
      } catch (e) {
        err = e
      }
      await this.#halt()
      if (err) throw err
    })
  }

  isRunning() {
    return this.#call('isRunning')
  }
  /** True only while this worker holds a lease it renewed recently enough. */
  isLeader() {
    return this.#native.isLeader()
  }
  /** The epoch of the lease this worker holds while it leads; else null. */
  fencingToken() {
    return this.#native.fencingToken() ?? null
  }
  /** `{leaderId, epoch, leaseEnd}` of the valid lease last seen; null when none. */
  getLeader() {
    return this.#native.getLeader() ?? null
  }
  /** Workers whose heartbeat is recent: `[{workerId, pod, startTime, lastHeartbeat}]`. */
  async activeWorkers() {
    const workers = await this.#call('activeWorkers')
    return workers.map((w) => ({ ...w, pod: w.pod ?? null }))
  }
  metrics() {
    return this.#native.metrics()
  }
}

class Database {
  #native
  #secrets
  /** JS id generator functions by resource name (they are not stored in the catalog). */
  #idGenerators = new Map()
  /** JS hook functions by resource name; the engine calls them by index. */
  #hookFns = new Map()
  /** Use `await Database.connect(url)`. */
  constructor(nativeDatabase, secrets) {
    if (!(nativeDatabase instanceof native.NativeDatabase)) {
      throw invalidArgument('use `await Database.connect(url)` to open a database')
    }
    this.#native = nativeDatabase
    this.#secrets = secrets
    nativeDatabase.setHookDispatcher(hookDispatcher(this.#hookFns))
    this.holderId = nativeDatabase.holderId
    Object.freeze(this)
  }

  /** Connects to `memory://bucket`, `file:///dir`, `s3://KEY:SECRET@bucket/prefix` or
   * `http(s)://KEY:SECRET@host:port/bucket/prefix`; `options.passphrase` decrypts secret
   * fields (default "secret"). */
  static async connect(url, options) {
    const secrets = secretsOf(url)
    try {
      return new Database(
        await native.NativeDatabase.connect(url, optionsArg('connect options', options)),
        secrets
      )
    } catch (e) {
      throw convert(e, secrets)
    }
  }

  async #call(method, ...args) {
    try {
      return await this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  #sync(method, ...args) {
    try {
      return this.#native[method](...args)
    } catch (e) {
      throw convert(e, this.#secrets)
    }
  }

  /** `{name, attributes, behavior, timestamps, partitions, paranoid, idSize, idGenerator,
   * passphrase}` (s3db.js `createResource` options). `idGenerator` is an s3db.js form
   * (`"incremental[:…]"`, `{type: "incremental", …}`, a size) or a function returning an id. */
  async createResource(options) {
    if (options === undefined || options === null) {
      throw invalidArgument('createResource needs {name, attributes, ...options}')
    }
    const opts = optionsArg('resource options', options)
    const idGenerator = typeof opts.idGenerator === 'function' ? opts.idGenerator : undefined
    if (idGenerator) delete opts.idGenerator
    let hooks
    if (opts.hooks !== undefined) {
      hooks = hookSpecs(opts.hooks)
      opts.hooks = hooks.specs
    }
    // The engine replaces the resource's hooks when new ones are given.
    const previous = this.#hookFns.get(opts.name)
    if (hooks?.fns.length) this.#hookFns.set(opts.name, hooks.fns)
    let nativeResource
    try {
      nativeResource = await this.#call('createResource', opts)
    } catch (e) {
      if (hooks?.fns.length) {
        if (previous === undefined) this.#hookFns.delete(opts.name)
        else this.#hookFns.set(opts.name, previous)
      }
      throw e
    }
    if (idGenerator) this.#idGenerators.set(nativeResource.name, idGenerator)
    else this.#idGenerators.delete(nativeResource.name)
    return this.#wrap(nativeResource, idGenerator)
  }

  async resource(name) {
    const nativeResource = await this.#call('resource', name)
    return this.#wrap(nativeResource, this.#idGenerators.get(nativeResource.name))
  }

  #wrap(nativeResource, idGenerator) {
    const name = nativeResource.name
    const register = (fn) => {
      const fns = this.#hookFns.get(name) ?? []
      fns.push(fn)
      this.#hookFns.set(name, fns)
      return fns.length - 1
    }
    return new Resource(nativeResource, this.#secrets, idGenerator, register)
  }

  listResources() {
    return this.#call('listResources')
  }

  /** Requests sent so far, by kind. */
  stats() {
    return this.#sync('stats')
  }

  resetStats() {
    this.#sync('resetStats')
  }

  /** Acquires a lock; `ttl` and `timeout` are seconds (defaults 30 and 0 = try once).
   * `autoRenew: true` renews it every ttl/3 until release; `onLost(err, lock)` runs when
   * renewal fails for good. */
  async lock(name, opts) {
    const o = optionsArg('lock options', opts) ?? {}
    const { autoRenew, onLost } = o
    delete o.autoRenew
    delete o.onLost
    if (autoRenew !== undefined && typeof autoRenew !== 'boolean') {
      throw invalidArgument('lock option autoRenew must be a boolean')
    }
    if (onLost !== undefined && typeof onLost !== 'function') {
      throw invalidArgument('lock option onLost must be a function')
    }
    if (onLost !== undefined && !autoRenew) {
      throw invalidArgument('lock option onLost needs autoRenew: true')
    }
    const lock = new Lock(await this.#call('lock', name, o), this.#secrets)
    if (autoRenew) {
      try {
        lock.autoRenew(onLost)
      } catch (e) {
        await lock.release().catch(() => {})
        throw e
      }
    }
    return lock
  }

  /** Whether someone holds the lock now (not released, not expired). */
  isLocked(name) {
    return this.#call('isLocked', name)
  }

  /** `{holderId, fencingToken, acquiredAt, expiresAt}` of the holder, or null when free. */
  async lockInfo(name) {
    return (await this.#call('lockInfo', name)) ?? null
  }

  /** Writes `value` to the fenced object `name` unless a higher token already wrote it
   * (LOCK_LOST). Returns the new version. */
  fencedPut(name, value, fencingToken) {
    if (value === undefined) return Promise.reject(invalidArgument('fencedPut needs a value'))
    return this.#call('fencedPut', name, value, fencingToken)
  }

  /** `{value, fencingToken, version}` of the fenced object, or null. */
  async fencedGet(name) {
    const f = await this.#call('fencedGet', name)
    if (!f) return null
    return { value: f.value === undefined ? null : f.value, fencingToken: f.fencingToken, version: f.version }
  }

  /** Runs `fn(lock)` holding the lock and always releases it. An error of `fn` wins over
   * one of the release. */
  async withLock(name, opts, fn) {
    if (typeof opts === 'function' && fn === undefined) {
      fn = opts
      opts = undefined
    }
    if (typeof fn !== 'function') {
      throw invalidArgument('withLock: fn must be a function')
    }
    const lock = await this.lock(name, opts)
    let result
    try {
      result = await fn(lock)
    } catch (e) {
      try {
        await lock.release()
      } catch {
        // the error of fn is the one to report
      }
      throw e
    }
    await lock.release()
    return result
  }

  /** A named 64-bit counter (no I/O until `next`/`current`/`reset`); `batchSize` > 1
   * reserves that many values per request (fast mode; unused values are gaps). */
  sequence(name, opts) {
    return new Sequence(this.#sync('sequence', name, optionsArg('sequence options', opts)), this.#secrets)
  }

  /** Names of the stored sequences. */
  listSequences() {
    return this.#call('listSequences')
  }

  /** s3db.js `PluginStorage` of plugin `slug` (no I/O). */
  pluginStorage(slug) {
    return new PluginStorage(this.#sync('pluginStorage', slug), this.#secrets)
  }

  /** The distributed state of `namespace` (no I/O). */
  state(namespace) {
    return new State(this.#sync('state', namespace), this.#secrets)
  }

  /** A worker of the leader election of `namespace` (no I/O until `start()`). Options are
   * seconds: `{heartbeatInterval, leaseTimeout, workerTimeout, startupJitter,
   * stepDownMargin, circuitBreakerThreshold, circuitBreakerCooldown, strategy, pod}`;
   * `heartbeatInterval` alone scales the others to it. */
  coordinator(namespace, opts) {
    return new Coordinator(this.#sync('coordinator', namespace, optionsArg('coordinator options', opts)), this.#secrets)
  }

  /** What catalog healing repaired when this handle connected (one line per repair). */
  healingLog() {
    return this.#sync('healingLog')
  }
}

module.exports = {
  Database,
  Resource,
  Lock,
  Sequence,
  State,
  Coordinator,
  PluginStorage,
  S3dbError,
  NotFoundError: errorClasses.NOT_FOUND,
  AlreadyExistsError: errorClasses.ALREADY_EXISTS,
  PreconditionFailedError: errorClasses.PRECONDITION_FAILED,
  ConflictError: errorClasses.CONFLICT,
  ValidationError: errorClasses.VALIDATION,
  InvalidArgumentError: errorClasses.INVALID_ARGUMENT,
  LockNotAcquiredError: errorClasses.LOCK_NOT_ACQUIRED,
  LockLostError: errorClasses.LOCK_LOST,
  CorruptError: errorClasses.CORRUPT,
  StorageError: errorClasses.STORAGE,
  OutcomeUnknownError: errorClasses.OUTCOME_UNKNOWN,
  ErrorCodes: Object.freeze([...CODES]),
}
