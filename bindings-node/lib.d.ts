// Type declarations of the public API of s3db-rs (hand-written; lib.js is the implementation).

/** A JSON value as stored in a record field. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** A record as returned by the database: always carries its `id`. Values have their native
 * types (numbers, booleans, nested objects, arrays). */
export interface StoredRecord {
  id: string
  [field: string]: JsonValue
}

/** A record to insert; `id` is generated when absent. Fields set to `null` are not stored. */
export interface NewRecord {
  id?: string | null
  [field: string]: JsonValue | undefined
}

/** Changes merged into a stored record; a field set to `null` is removed; dotted keys
 * (`"address.city"`) change one nested field. */
export interface RecordChanges {
  id?: string
  [field: string]: JsonValue | undefined
}

/** Object notation of an attribute, e.g. `{ type: 'array', items: 'string' }`. */
export interface AttributeObject {
  type: string
  items?: string
  optional?: boolean
  [option: string]: JsonValue | undefined
}

/** s3db.js attribute definitions: rule strings (`'string|min:3'`, `'number|optional'`,
 * `'secret'`, `'embedding:3'` …), object notation, or nested objects of definitions.
 * Fields are required unless `|optional`; strings are trimmed unless `|trim:false`. */
export interface Attributes {
  [name: string]: string | AttributeObject | Attributes
}

export type Behavior = 'user-managed' | 'enforce-limits' | 'truncate-data' | 'body-overflow' | 'body-only'

/** `{name: {fields: {path: rule}}}`, or field names (shorthand: one partition per field). */
export type Partitions = { [name: string]: { fields: { [path: string]: string } } } | string[]

/** s3db.js `createResource` options. */
export interface ResourceOptions {
  name: string
  attributes: Attributes
  /** Where a record's data goes when it outgrows S3 metadata (default `user-managed`). */
  behavior?: Behavior
  /** Adds `createdAt`/`updatedAt` and the `byCreatedDate`/`byUpdatedDate` partitions. */
  timestamps?: boolean
  partitions?: Partitions
  /** When true (the default) `deleteAll` is refused. */
  paranoid?: boolean
  /** Length of generated ids, 1 to 256 (default 22). */
  idSize?: number
  /** Passphrase of this resource's secret fields (overrides the connection's; never stored). */
  passphrase?: string
}
/** The former name of `ResourceOptions`. */
export type ResourceConfig = ResourceOptions

export interface ConnectOptions {
  /** Passphrase of secret fields (s3db.js `security.passphrase`; default `"secret"`). */
  passphrase?: string
}

/** Restricts a listing to the references of one partition. */
export interface ListOptions {
  partition?: string
  /** Values of the partition's leading fields; a missing one ends the fixed prefix. */
  partitionValues?: { [field: string]: JsonValue }
}

export interface PageOptions {
  /** Records per page, 1 to 1000. */
  size: number
  /** The `cursor` of the previous page; absent or null for the first. */
  cursor?: string | null
}

export interface Page {
  items: StoredRecord[]
  /** Pass back for the next page; `null` on the last. */
  cursor: string | null
}

/** One item of `insertMany` / `deleteMany`. */
export interface BatchItem {
  index: number
  id: string | null
  /** The stored record (`insertMany` successes). */
  record?: StoredRecord
  error?: { code: ErrorCode; message: string }
}

export interface GetManyResult {
  /** The records found, in the order asked. */
  found: StoredRecord[]
  missing: string[]
}

export interface RecordWithEtag {
  record: StoredRecord
  /** The version tag `updateIf` compares. */
  etag: string
}

export interface ReindexResult {
  written: number
  deleted: number
}

export interface QueryCondition {
  $eq?: JsonValue
  $ne?: JsonValue
  $gt?: JsonValue
  $gte?: JsonValue
  $lt?: JsonValue
  $lte?: JsonValue
  $in?: JsonValue[]
  $nin?: JsonValue[]
  $exists?: boolean
}

/** `{ status: 'paid', amount: { $gte: 10 }, 'address.city': 'Paris' }`: all must hold. */
export interface QueryFilter {
  [path: string]: JsonValue | QueryCondition
}

/** One failed check of a validation error. */
export interface ValidationIssue {
  field: string
  rule: string
  expected: string
  actual: string
}

/** Request counters of the store since connect or the last `resetStats()`. */
export interface Stats {
  get: number
  head: number
  put: number
  copy: number
  delete: number
  list: number
}

export interface LockOptions {
  /** Seconds the lock is held without renewal (default 30). */
  ttl?: number
  /** Seconds to wait for a held lock (default 0: try once). */
  timeout?: number
}

export interface SequenceOptions {
  /** First value handed out (default 1). */
  start?: number
  /** Step between values, not 0 (default 1). */
  increment?: number
}

export type ErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PRECONDITION_FAILED'
  | 'CONFLICT'
  | 'VALIDATION'
  | 'INVALID_ARGUMENT'
  | 'LOCK_NOT_ACQUIRED'
  | 'LOCK_LOST'
  | 'CORRUPT'
  | 'STORAGE'

export declare const ErrorCodes: readonly ErrorCode[]

/** Base class of every error s3db raises. */
export declare class S3dbError extends Error {
  readonly code: ErrorCode
}
export declare class NotFoundError extends S3dbError {
  readonly code: 'NOT_FOUND'
}
export declare class AlreadyExistsError extends S3dbError {
  readonly code: 'ALREADY_EXISTS'
}
export declare class PreconditionFailedError extends S3dbError {
  readonly code: 'PRECONDITION_FAILED'
}
export declare class ConflictError extends S3dbError {
  readonly code: 'CONFLICT'
}
export declare class ValidationError extends S3dbError {
  constructor(message?: string, options?: { cause?: unknown; details?: ValidationIssue[] })
  readonly code: 'VALIDATION'
  /** The failed checks (empty when the error is not about a record's fields). */
  readonly details: ValidationIssue[]
}
export declare class InvalidArgumentError extends S3dbError {
  readonly code: 'INVALID_ARGUMENT'
}
export declare class LockNotAcquiredError extends S3dbError {
  readonly code: 'LOCK_NOT_ACQUIRED'
}
export declare class LockLostError extends S3dbError {
  readonly code: 'LOCK_LOST'
}
export declare class CorruptError extends S3dbError {
  readonly code: 'CORRUPT'
}
export declare class StorageError extends S3dbError {
  readonly code: 'STORAGE'
}

export declare class Database {
  private constructor()
  /**
   * Connects to `memory://bucket[/prefix]`, `file:///dir`, `s3://KEY:SECRET@bucket[/prefix]`
   * or `http(s)://KEY:SECRET@host:port/bucket[/prefix]`, creating `s3db.json` when missing.
   */
  static connect(url: string, options?: ConnectOptions): Promise<Database>
  /** Unique per process (host, pid, random part). */
  readonly holderId: string
  /** Defines (or redefines: a new schema version) a resource. */
  createResource(options: ResourceOptions): Promise<Resource>
  /** A resource defined earlier; rejects with NOT_FOUND otherwise. */
  resource(name: string): Promise<Resource>
  listResources(): Promise<string[]>
  stats(): Stats
  resetStats(): void
  /** Acquires a lock; rejects with LOCK_NOT_ACQUIRED when it is held past `timeout`. */
  lock(name: string, options?: LockOptions): Promise<Lock>
  /** Runs `fn` holding the lock and always releases it. */
  withLock<T>(name: string, options: LockOptions | undefined, fn: (lock: Lock) => T | Promise<T>): Promise<T>
  withLock<T>(name: string, fn: (lock: Lock) => T | Promise<T>): Promise<T>
  /** A named 64-bit counter (no I/O until used). */
  sequence(name: string, options?: SequenceOptions): Sequence
}

export declare class Resource {
  private constructor()
  readonly name: string
  /** Rejects with VALIDATION (see `err.details`) or ALREADY_EXISTS. */
  insert(data: NewRecord): Promise<StoredRecord>
  /** Inserts each item; one failure does not stop the others. */
  insertMany(items: NewRecord[]): Promise<BatchItem[]>
  /** Rejects with NOT_FOUND when there is no such record. */
  get(id: string): Promise<StoredRecord>
  getOrNull(id: string): Promise<StoredRecord | null>
  getMany(ids: string[]): Promise<GetManyResult>
  getWithEtag(id: string): Promise<RecordWithEtag>
  exists(id: string): Promise<boolean>
  /** Merges `changes` into the stored record (compare-and-swap; concurrent updates survive). */
  update(id: string, changes: RecordChanges): Promise<StoredRecord>
  /** `update`, only if the record still has version `etag`; else PRECONDITION_FAILED. */
  updateIf(id: string, changes: RecordChanges, etag: string): Promise<StoredRecord>
  /** Replaces the whole record; it must exist (NOT_FOUND otherwise). */
  replace(id: string, data: NewRecord): Promise<StoredRecord>
  /** Inserts, or merges into the record with the same id. */
  upsert(data: NewRecord): Promise<StoredRecord>
  /** s3db.js `patch`: the same merge as `update`. */
  patch(id: string, changes: RecordChanges): Promise<StoredRecord>
  /** Deleting a missing id rejects with NOT_FOUND. */
  delete(id: string): Promise<void>
  deleteMany(ids: string[]): Promise<BatchItem[]>
  /** Deletes every record, returning how many; INVALID_ARGUMENT unless `paranoid: false`. */
  deleteAll(): Promise<number>
  listIds(options?: ListOptions): Promise<string[]>
  list(options?: ListOptions): Promise<StoredRecord[]>
  count(options?: ListOptions): Promise<number>
  page(options: PageOptions): Promise<Page>
  query(filter: QueryFilter): Promise<StoredRecord[]>
  /** Rebuilds the references of one partition (or all) from the records. */
  reindex(partition?: string): Promise<ReindexResult>
}

export declare class Lock {
  private constructor()
  readonly name: string
  /** Strictly increasing across all holders of this lock name. */
  readonly fencingToken: number
  readonly holderId: string
  /** Milliseconds since the epoch. */
  expiresAt(): Promise<number>
  /** Pushes the expiry to now + `ttl` seconds; rejects with LOCK_LOST if it was taken over. */
  extend(ttl: number): Promise<void>
  /** Releasing twice is a no-op; rejects with LOCK_LOST if it was taken over. */
  release(): Promise<void>
}

export declare class Sequence {
  private constructor()
  readonly name: string
  next(): Promise<number>
  /** The value the next `next()` returns; `null` before the first. */
  current(): Promise<number | null>
  /** Makes `value` the next value handed out. */
  reset(value: number): Promise<void>
}
