'use strict'
// Thin JS layer over the native module (s3db.<platform>.node, built by `napi build`).
// It maps the error kind the native side encodes as `[s3db:<CODE>] ` into `err.code` /
// `err.name`, scrubs credentials out of messages and offers the s3db.js-style API.
// No database logic lives here.

const path = require('node:path')
const fs = require('node:fs')

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

/** Converts whatever the native side threw into an S3dbError subclass. */
function convert(err, secrets) {
  if (err instanceof S3dbError) return err
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

class Resource {
  #native
  #secrets
  constructor(nativeResource, secrets) {
    if (!(nativeResource instanceof native.NativeResource)) {
      throw invalidArgument('Resource handles come from a Database')
    }
    this.#native = nativeResource
    this.#secrets = secrets
    this.name = nativeResource.name
    Object.freeze(this)
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

  insert(data) {
    return this.#call('insert', data)
  }
  /** Inserts each item; returns `[{index, id, record?, error?: {code, message}}]`. */
  insertMany(items) {
    return this.#batch('insertMany', items)
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
  updateIf(id, changes, etag) {
    return this.#call('updateIf', id, changes, etag)
  }
  /** Replaces the whole record (it must exist). */
  replace(id, data) {
    return this.#call('replace', id, data)
  }
  /** Inserts, or merges into the record with the same id. */
  upsert(data) {
    return this.#call('upsert', data)
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
}

class Database {
  #native
  #secrets
  /** Use `await Database.connect(url)`. */
  constructor(nativeDatabase, secrets) {
    if (!(nativeDatabase instanceof native.NativeDatabase)) {
      throw invalidArgument('use `await Database.connect(url)` to open a database')
    }
    this.#native = nativeDatabase
    this.#secrets = secrets
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

  /** `{name, attributes, behavior, timestamps, partitions, paranoid, idSize, passphrase}`
   * (s3db.js `createResource` options). */
  async createResource(options) {
    if (options === undefined || options === null) {
      throw invalidArgument('createResource needs {name, attributes, ...options}')
    }
    return new Resource(await this.#call('createResource', optionsArg('resource options', options)), this.#secrets)
  }

  async resource(name) {
    return new Resource(await this.#call('resource', name), this.#secrets)
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

  /** Acquires a lock; `ttl` and `timeout` are seconds (defaults 30 and 0 = try once). */
  async lock(name, opts) {
    return new Lock(await this.#call('lock', name, optionsArg('lock options', opts)), this.#secrets)
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

  /** A named 64-bit counter (no I/O until `next`/`current`/`reset`). */
  sequence(name, opts) {
    return new Sequence(this.#sync('sequence', name, optionsArg('sequence options', opts)), this.#secrets)
  }
}

module.exports = {
  Database,
  Resource,
  Lock,
  Sequence,
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
  ErrorCodes: Object.freeze([...CODES]),
}
