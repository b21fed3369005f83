// Type declarations of the public API of s3db-rs (hand-written; lib.js is the implementation).

/// <reference types="node" />
import { EventEmitter } from 'node:events'

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
  /** How ids of inserted records without one are made: an s3db.js form stored in the catalog
   * (`'incremental'`, `'incremental:1000'`, `'incremental:ORD-0001'`, `'incremental:fast'`,
   * `{type: 'incremental', …}`, or an id size), or a function applied by this binding (not
   * stored: pass it again when redefining the resource in another process). */
  idGenerator?: IdGenerator
  /** s3db.js hooks: functions run around operations, in order; each gets the previous one's
   * result. The catalog keeps a summary (name and arity). */
  hooks?: Hooks
}

/** The events s3db.js runs hooks for. */
export type HookEvent =
  | 'beforeInsert' | 'afterInsert' | 'beforeUpdate' | 'afterUpdate'
  | 'beforeDelete' | 'afterDelete' | 'beforeGet' | 'afterGet'
  | 'beforeList' | 'afterList' | 'beforeQuery' | 'afterQuery'
  | 'beforePatch' | 'afterPatch' | 'beforeReplace' | 'afterReplace'
  | 'beforeExists' | 'afterExists' | 'beforeCount' | 'afterCount'
  | 'beforeGetMany' | 'afterGetMany' | 'beforeDeleteMany' | 'afterDeleteMany'

/** Gets a record (a list for `afterList`/`afterQuery`/`afterGetMany`, a context object for
 * `beforeGet`, `beforeCount`, …) and returns the changed value, or nothing to keep it.
 * Throwing aborts the operation; the caller gets the thrown error. */
export type HookFunction = (value: any) => unknown | Promise<unknown>

export type Hooks = { [E in HookEvent]?: HookFunction | HookFunction[] }

/** What `updateConditional` resolves to (s3db.js's shape). */
export type UpdateConditionalResult =
  | { success: true; data: StoredRecord; etag: string }
  | {
      success: false
      error: string
      code: 'PRECONDITION_FAILED' | 'NOT_FOUND' | 'VALIDATION'
      validationErrors?: ValidationIssue[]
    }

/** s3db.js `idGenerator` as an object. */
export interface IncrementalIdGenerator {
  type: 'incremental'
  /** First value (default 1). */
  start?: number
  /** Step (default 1). */
  increment?: number
  /** Text before the number, e.g. `'ORD-'`. */
  prefix?: string
  /** Digits, zero-padded. */
  padding?: number
  /** `'fast'` reserves ids in batches (gaps possible); `'standard'` (default) does not. */
  mode?: 'standard' | 'fast'
  /** Ids reserved per request in fast mode (default 100). */
  batchSize?: number
}

/** Makes the id of a record inserted without one (it gets the record being inserted). */
export type IdGeneratorFunction = (record: NewRecord) => string | Promise<string>

export type IdGenerator = string | number | IncrementalIdGenerator | IdGeneratorFunction

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
  /** A pattern as a string (a RegExp object does not survive JSON); `$options`: `i m s x`. */
  $regex?: string
  $options?: string
  /** A string containing this text, or an array with this element. */
  $contains?: JsonValue
  $not?: QueryCondition
}

/** `{ status: 'paid', amount: { $gte: 10 }, 'address.city': 'Paris' }`: all must hold;
 * `$and`, `$or`, `$nor` combine filters, `$not` negates one. Any other `$` operator is an
 * INVALID_ARGUMENT error. */
export interface QueryFilter {
  $and?: QueryFilter[]
  $or?: QueryFilter[]
  $nor?: QueryFilter[]
  $not?: QueryFilter
  [path: string]: JsonValue | QueryCondition | QueryFilter | QueryFilter[] | undefined
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
  /** Renew the lock every ttl/3 in the background until it is released. */
  autoRenew?: boolean
  /** With `autoRenew`: runs once when renewal fails for good (LOCK_LOST, or storage failing
   * until the lease is about to end), before the lease ends. */
  onLost?: LockLostCallback
}

export type LockLostCallback = (error: S3dbError, lock: Lock) => void

/** Who holds a lock; times are milliseconds since the epoch. */
export interface LockInfo {
  holderId: string
  fencingToken: number
  acquiredAt: number
  expiresAt: number
}

/** A value written under a fencing token (`fencedPut`, `Lock.guardedPut`). */
export interface Fenced {
  value: JsonValue
  /** The highest token that wrote it. */
  fencingToken: number
  version: string
}

export interface SequenceOptions {
  /** First value handed out (default 1). */
  start?: number
  /** Step between values, not 0 (default 1). */
  increment?: number
  /** Values reserved per request; above 1 is fast mode (values handed out locally, unused
   * ones are gaps when the process ends). Default 1. */
  batchSize?: number
}

/** A record's binary content (`Resource.content`). */
export interface RecordContent {
  content: Buffer
  contentType: string
}

/** Binary content accepted by `insertWithContent` / `setContent` (a string is UTF-8). */
export type ContentInput = Buffer | Uint8Array | ArrayBuffer | string

/** A live state entry. */
export interface StateEntry {
  value: JsonValue
  /** Pass to `compareAndSwap`. */
  version: string
  /** Milliseconds since the epoch; null when it never expires. */
  expiresAt: number | null
}

export interface CasResult {
  swapped: boolean
  /** What is stored now (the value written when swapped); null when the key is absent. */
  currentValue: JsonValue | null
  currentVersion: string | null
}

export interface StateSetOptions {
  /** Seconds until the entry expires. */
  ttl?: number
}

/** Coordinator timing, in seconds. `heartbeatInterval` alone scales the others to it
 * (lease 3×, worker timeout 4×, jitter and step-down margin 1/5, circuit cool-down 2×). */
export interface CoordinatorOptions {
  /** How often a worker writes its heartbeat and the leader renews its lease (default 5). */
  heartbeatInterval?: number
  /** Length of a lease (default 15). */
  leaseTimeout?: number
  /** A worker whose heartbeat is older than this is gone (default 20). */
  workerTimeout?: number
  /** `start()` first waits a random time up to this long (default 1; 0 disables). */
  startupJitter?: number
  /** A leader steps down this long before its lease would end (default 1). */
  stepDownMargin?: number
  /** Consecutive failed storage requests that open the circuit breaker (default 5). */
  circuitBreakerThreshold?: number
  /** How long an open circuit pauses storage requests (default 10). */
  circuitBreakerCooldown?: number
  /** `timestamp` (oldest start wins; default) or `alphabetical` (smallest worker id). */
  strategy?: 'timestamp' | 'alphabetical'
  /** Written as `pod`/`leaderPod` (default `$POD_NAME`, `$HOSTNAME` or the host name). */
  pod?: string
}

export interface LeaderInfo {
  leaderId: string
  epoch: number
  /** Milliseconds since the epoch. */
  leaseEnd: number
}

export interface WorkerInfo {
  workerId: string
  pod: string | null
  /** Milliseconds since the epoch. */
  startTime: number
  /** Milliseconds since the epoch. */
  lastHeartbeat: number
}

export interface CoordinatorMetrics {
  heartbeats: number
  renewals: number
  elections: number
  leaderChanges: number
  storageFailures: number
  heartbeatP50Ms: number
  heartbeatP99Ms: number
}

export interface LeaderChangedEvent {
  leaderId: string
  epoch: number
}
export interface EpochEvent {
  epoch: number
}
export interface CircuitOpenedEvent {
  failures: number
}

export type CoordinatorEvent =
  | ({ type: 'leaderChanged' } & LeaderChangedEvent)
  | ({ type: 'becameLeader' } & EpochEvent)
  | ({ type: 'lostLeadership' } & EpochEvent)
  | ({ type: 'circuitOpened' } & CircuitOpenedEvent)
  | { type: 'circuitClosed' }

/** Listener signatures of the coordinator's events. */
export interface CoordinatorEvents {
  /** A leader (or a new epoch) was observed, this worker included. */
  leaderChanged: [event: LeaderChangedEvent]
  /** This worker now leads; `epoch` is its fencing token. */
  becameLeader: [event: EpochEvent]
  /** This worker stopped leading (lost the lease, could not renew in time, circuit opened,
   * or `stop()`). */
  lostLeadership: [event: EpochEvent]
  /** Consecutive storage failures: storage requests are paused for the cool-down. */
  circuitOpened: [event: CircuitOpenedEvent]
  circuitClosed: []
  /** Every event above, as `{type, …}`. */
  event: [event: CoordinatorEvent]
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
  | 'OUTCOME_UNKNOWN'

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
/** A write's answer was lost and reading back could not tell whether it took effect. */
export declare class OutcomeUnknownError extends S3dbError {
  readonly code: 'OUTCOME_UNKNOWN'
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
  /** Names of the stored sequences, in key order. */
  listSequences(): Promise<string[]>
  /** Whether someone holds the lock now (not released, not expired). One GET. */
  isLocked(name: string): Promise<boolean>
  /** The holder of the lock, or null when it is free. One GET. */
  lockInfo(name: string): Promise<LockInfo | null>
  /** Writes `value` to the fenced object `name` unless a higher token already wrote it
   * (LOCK_LOST). Resolves to the new version. */
  fencedPut(name: string, value: JsonValue, fencingToken: number): Promise<string>
  /** The fenced object `name` with the highest token that wrote it, or null. */
  fencedGet(name: string): Promise<Fenced | null>
  /** The distributed state of `namespace` (no I/O). */
  state(namespace: string): State
  /** s3db.js `PluginStorage` of plugin `slug` (no I/O); a slug with `/` or `..` is refused. */
  pluginStorage(slug: string): PluginStorage
  /** A worker of the leader election of `namespace` (no I/O until `start()`). */
  coordinator(namespace: string, options?: CoordinatorOptions): Coordinator
  /** What catalog healing repaired when this handle connected: one line per repair. */
  healingLog(): string[]
}

export declare class Resource {
  private constructor()
  readonly name: string
  getOrNull(id: string): Promise<StoredRecord | null>
  getWithEtag(id: string): Promise<RecordWithEtag>
  /** `update`, only if the record still has version `etag`; else PRECONDITION_FAILED. */
  updateIf(id: string, changes: RecordChanges, etag: string): Promise<StoredRecord>
  /** s3db.js `updateConditional`: applied only if the record still has version `ifMatch`;
   * a changed, missing or invalid record resolves `{success: false, …}`. */
  updateConditional(
    id: string,
    changes: RecordChanges,
    options: { ifMatch: string }
  ): Promise<UpdateConditionalResult>
  /** s3db.js `addPluginAttribute`: a plugin-owned attribute stored under a `p…` key (a new
   * catalog version; none when it is already there). Resolves `{attribute: key}`. */
  addPluginAttribute(name: string, definition: string | AttributeObject, pluginName: string): Promise<Record<string, string>>
  /** Removes a plugin's attribute; its key is burned (records that carry it still read). */
  removePluginAttribute(name: string, pluginName: string): Promise<boolean>
  /** `{attribute: key}` of the plugin-owned attributes. */
  readonly pluginMap: Record<string, string>
  /** s3db.js `addHook`: runs for every handle of this resource in this process. */
  addHook(event: HookEvent, fn: HookFunction): true
  page(options: PageOptions): Promise<Page>
  /** Rebuilds the references of one partition (or all) from the records. */
  reindex(partition?: string): Promise<ReindexResult>
  /** Inserts a record whose object body is binary `content` (default type
   * `application/octet-stream`). */
  insertWithContent(data: NewRecord, content: ContentInput, contentType?: string): Promise<StoredRecord>
  /** Sets (`content`) or removes (`null`) a record's binary content. */
  setContent(id: string, content: ContentInput | null, contentType?: string): Promise<void>
  /** The record's binary content; NOT_FOUND when it has none. */
  content(id: string): Promise<RecordContent>
  /** The sequence behind an incremental `idGenerator`; null otherwise. */
  idSequence(): Sequence | null
  // <generated by s3db-gen: Resource>
  /**
   * Inserts a record (its `id` generated when absent), validated against the resource's
   * attributes: create-only (ALREADY_EXISTS if the id is taken). One PUT, plus one per
   * partition. Returns the stored record with its id.
   */
  insert(record: NewRecord): Promise<StoredRecord>
  /**
   * The record with this id; NOT_FOUND if there is none. One GET.
   */
  get(id: string): Promise<StoredRecord>
  /**
   * Whether a record with this id exists. One HEAD.
   */
  exists(id: string): Promise<boolean>
  /**
   * Merges `changes` (`null` removes a field) into the stored record by compare-and-swap (one
   * GET + one conditional PUT when uncontended; concurrent updates all survive). Returns the
   * merged record.
   */
  update(id: string, changes: RecordChanges): Promise<StoredRecord>
  /**
   * s3db.js `patch`: the same merge as `update` (dotted keys change one nested field). Returns
   * the merged record.
   */
  patch(id: string, changes: RecordChanges): Promise<StoredRecord>
  /**
   * Replaces the whole record `id`, which must exist (NOT_FOUND otherwise), validated as an
   * insert. One GET + one conditional PUT when uncontended. Returns the stored record.
   */
  replace(id: string, record: NewRecord): Promise<StoredRecord>
  /**
   * Inserts the record, or merges it into the existing record with its id. Returns the stored
   * record.
   */
  upsert(record: NewRecord): Promise<StoredRecord>
  /**
   * Deletes a record and its partition references: one HEAD + one conditional DELETE (a GET
   * instead of the HEAD when the resource has partitions). NOT_FOUND if missing.
   */
  delete(id: string): Promise<void>
  /**
   * Every id, or the ids of one partition's references matching the values given for its
   * leading fields. LIST requests only.
   */
  listIds(options?: ListOptions): Promise<string[]>
  /**
   * Every record (or one partition's, as `list_ids`): the ids, then a GET per record. Records
   * deleted meanwhile are skipped.
   */
  list(options?: ListOptions): Promise<StoredRecord[]>
  /**
   * The number of records (or of one partition's, as `list_ids`). LIST requests only.
   */
  count(options?: ListOptions): Promise<number>
  /**
   * Inserts each record; one failure does not stop the others. Returns one entry per record, in
   * order: `{index, id, record}` or `{index, id, error: {code, message}}`.
   */
  insertMany(records: NewRecord[]): Promise<BatchItem[]>
  /**
   * The records of `ids`, one GET each: `{found: [records in the order asked], missing: [ids
   * that do not exist]}`.
   */
  getMany(ids: string[]): Promise<GetManyResult>
  /**
   * Deletes each id; one failure does not stop the others. Returns one entry per id, in order:
   * `{index, id}` or `{index, id, error: {code, message}}`.
   */
  deleteMany(ids: string[]): Promise<BatchItem[]>
  /**
   * Deletes every record and partition reference; returns how many records were deleted.
   * Refused (INVALID_ARGUMENT) unless the resource was defined with `paranoid: false`.
   */
  deleteAll(): Promise<number>
  /**
   * The records matching `filter`, e.g. `{"status": "paid", "amount": {"$gte": 10}}` (operators
   * `$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $contains $not`, `$and $or
   * $nor`, dotted paths; any other operator is INVALID_ARGUMENT). Lists through the
   * best-matching partition when the equalities fix its fields.
   */
  query(filter: QueryFilter): Promise<StoredRecord[]>
  // </generated: Resource>
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
  /** The ttl the lock was acquired with, in seconds. */
  readonly ttl: number
  /** True once this handle learnt that it no longer holds the lock. */
  readonly isLost: boolean
  /** Renews every ttl/3 until release; `onLost` runs once when renewal fails for good. */
  autoRenew(onLost?: LockLostCallback): void
  stopRenewing(): void
  /** Writes `value` to the fenced object `name` under this lock's fencing token. */
  guardedPut(name: string, value: JsonValue): Promise<string>
}

export declare class Sequence {
  private constructor()
  readonly name: string
  next(): Promise<number>
  /** The value the next `next()` returns; `null` before the first. */
  current(): Promise<number | null>
  /** Makes `value` the next value handed out. */
  reset(value: number): Promise<void>
  /** Deletes the stored counter; the next `next()` starts again at `start`. */
  delete(): Promise<void>
}

/** Distributed state of one namespace. */
/** `PluginStorage.set` options (s3db.js). */
export interface PluginSetOptions {
  /** Where fields go: metadata up to 2 KB then the body (default), the body only, or metadata
   * only with an error past the limit. */
  behavior?: 'body-overflow' | 'body-only' | 'enforce-limits'
  /** Seconds until the document expires (a read then deletes it and returns null). */
  ttl?: number
  contentType?: string
  /** Write only over this version. */
  ifMatch?: string
  /** Write only if the key is absent. */
  ifNoneMatch?: boolean
}

/** A plugin lock (s3db.js `PluginStorage.acquireLock`). */
export interface PluginLockHandle {
  name: string
  key: string
  token: string
  workerId: string
  /** Epoch milliseconds. */
  expiresAt: number
  etag: string
}

/** s3db.js `PluginStorage`: a plugin's documents under `plugin=<slug>/…` (and
 * `resource=<R>/plugin=<slug>/…`), sequences and locks, in s3db.js's format. */
export declare class PluginStorage {
  private constructor()
  readonly slug: string
  getPluginKey(resourceName: string | null, ...parts: string[]): string
  /** Resolves the new version. */
  set(key: string, data: Record<string, unknown>, options?: PluginSetOptions): Promise<string>
  setIfNotExists(key: string, data: Record<string, unknown>, options?: PluginSetOptions): Promise<string | null>
  setIfVersion(key: string, data: Record<string, unknown>, version: string, options?: PluginSetOptions): Promise<string | null>
  get(key: string): Promise<Record<string, unknown> | null>
  getWithVersion(key: string): Promise<{ data: Record<string, unknown> | null; version: string | null }>
  has(key: string): Promise<boolean>
  /** False when there was nothing to delete. */
  delete(key: string): Promise<boolean>
  list(prefix?: string): Promise<string[]>
  listForResource(resourceName: string, subPrefix?: string): Promise<string[]>
  deleteAll(resourceName?: string | null): Promise<number>
  nextSequence(name: string, options?: { resourceName?: string | null; initialValue?: number; increment?: number }): Promise<number>
  getSequence(name: string, options?: { resourceName?: string | null }): Promise<number | null>
  resetSequence(name: string, value: number, options?: { resourceName?: string | null }): Promise<true>
  deleteSequence(name: string, options?: { resourceName?: string | null }): Promise<void>
  /** `ttl` in seconds (default 30), `timeout` in milliseconds (default 0: try once), as
   * s3db.js; null when someone else holds the lock. */
  acquireLock(name: string, options?: { ttl?: number; timeout?: number; workerId?: string }): Promise<PluginLockHandle | null>
  releaseLock(lock: PluginLockHandle): Promise<boolean>
  isLocked(name: string): Promise<boolean>
}

export declare class State {
  private constructor()
  readonly namespace: string
  /** The live entry; null when absent or expired. */
  get(key: string): Promise<StateEntry | null>
  /** Stores `value` (last writer wins), expiring after `ttl` seconds if given; resolves to
   * the new version. */
  set(key: string, value: JsonValue, ttl?: number | StateSetOptions): Promise<string>
  /** Read-modify-write by compare-and-swap; `fn` runs again when another writer got there
   * first. The entry keeps its expiry. An error thrown by `fn` aborts and is rethrown. */
  update(key: string, fn: (current: JsonValue | null) => JsonValue | Promise<JsonValue>): Promise<StateEntry>
  /** Writes only if the entry is still at `expectedVersion` (null: only if absent). */
  compareAndSwap(key: string, expectedVersion: string | null, value: JsonValue): Promise<CasResult>
  delete(key: string): Promise<void>
  /** Adds `by` (default 1); resolves to the new value. */
  increment(key: string, by?: number): Promise<number>
  /** Subtracts `by` (default 1); resolves to the new value. */
  decrement(key: string, by?: number): Promise<number>
  /** The counter's value (0 when absent or expired). */
  counter(key: string): Promise<number>
  /** Sets the counter back to 0 (deletes it). */
  reset(key: string): Promise<void>
  /** Keys of this namespace, in byte order (expired ones included). */
  keys(): Promise<string[]>
}

/** A worker of the leader election of one namespace. While started it keeps the process
 * alive; `stop()` lets it exit. */
export declare class Coordinator extends EventEmitter<CoordinatorEvents> {
  private constructor()
  /** Unique per coordinator, also within one process. */
  readonly workerId: string
  readonly namespace: string
  /** Joins the election; the first round (and maybe `becameLeader`) happens before it
   * resolves. Starting a running coordinator does nothing. */
  start(): Promise<void>
  /** Leaves the election, releasing the lease if leading; events still pending are emitted
   * before it resolves. */
  stop(): Promise<void>
  isRunning(): Promise<boolean>
  /** True only while this worker holds a lease it renewed recently enough. */
  isLeader(): boolean
  /** The epoch of this worker's lease while it leads; else null. */
  fencingToken(): number | null
  /** This worker while it leads, else the leader of the valid lease last seen, or null. */
  getLeader(): LeaderInfo | null
  /** Workers whose heartbeat is recent. */
  activeWorkers(): Promise<WorkerInfo[]>
  metrics(): CoordinatorMetrics
}
