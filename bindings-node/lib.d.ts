// Type declarations of the public API of s3db-rs (hand-written; lib.js is the implementation).

/** A JSON value as stored in a record field. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }

/** A record as returned by the database: always carries its `id`. */
export interface StoredRecord {
  id: string
  [field: string]: JsonValue
}

/** A record to insert; `id` is generated when absent. Fields set to `null` are not stored. */
export interface NewRecord {
  id?: string | null
  [field: string]: JsonValue | undefined
}

/** Changes merged into a stored record; a field set to `null` is removed. */
export interface RecordChanges {
  id?: string
  [field: string]: JsonValue | undefined
}

export interface ResourceConfig {
  name: string
  /** s3db.js rule strings, e.g. `{ name: 'string|required', email: 'string' }`. */
  attributes: Record<string, string>
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
  readonly code: 'VALIDATION'
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
  static connect(url: string): Promise<Database>
  /** Unique per process (host, pid, random part). */
  readonly holderId: string
  /** Defines (or redefines) a resource. */
  createResource(config: ResourceConfig): Promise<Resource>
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
  insert(data: NewRecord): Promise<StoredRecord>
  /** Rejects with NOT_FOUND when there is no such record. */
  get(id: string): Promise<StoredRecord>
  getOrNull(id: string): Promise<StoredRecord | null>
  exists(id: string): Promise<boolean>
  /** Merges `changes` into the stored record (compare-and-swap; concurrent updates survive). */
  update(id: string, changes: RecordChanges): Promise<StoredRecord>
  /** Deleting a missing id succeeds. */
  delete(id: string): Promise<void>
  listIds(): Promise<string[]>
  list(): Promise<StoredRecord[]>
  count(): Promise<number>
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
