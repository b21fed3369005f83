// Compiled by `npm run typecheck` (tsc --noEmit), never run: it exercises the whole public
// API against the hand-written declarations (lib.d.ts), through the package's own name.
import {
  Database,
  Resource,
  Lock,
  Sequence,
  S3dbError,
  NotFoundError,
  AlreadyExistsError,
  PreconditionFailedError,
  ConflictError,
  ValidationError,
  InvalidArgumentError,
  LockNotAcquiredError,
  LockLostError,
  CorruptError,
  StorageError,
  ErrorCodes,
  type ErrorCode,
  type Stats,
  type StoredRecord,
  type LockOptions,
  type SequenceOptions,
  type ResourceConfig,
  type ResourceOptions,
  type ConnectOptions,
  type Attributes,
  type Behavior,
  type BatchItem,
  type GetManyResult,
  type RecordWithEtag,
  type Page,
  type PageOptions,
  type ListOptions,
  type QueryFilter,
  type ReindexResult,
  type ValidationIssue,
} from 's3db-rs'

async function main(url: string): Promise<void> {
  const db: Database = await Database.connect(url)
  const holder: string = db.holderId

  const config: ResourceConfig = { name: 'users', attributes: { name: 'string|required', email: 'string|optional' } }
  const users: Resource = await db.createResource(config)
  const again: Resource = await db.resource('users')
  const resourceName: string = again.name
  const names: string[] = await db.listResources()

  const created: StoredRecord = await users.insert({ name: 'Ada', email: 'ada@example.com' })
  const withId: StoredRecord = await users.insert({ id: 'u1', name: 'Bob', email: undefined })
  const id: string = created.id
  const got: StoredRecord = await users.get(id)
  const maybe: StoredRecord | null = await users.getOrNull('nope')
  const there: boolean = await users.exists(id)
  const updated: StoredRecord = await users.update(id, { email: 'ada@example.org', name: null })
  const removed: void = await users.delete(withId.id)
  const ids: string[] = await users.listIds()
  const all: StoredRecord[] = await users.list()
  const n: number = await users.count()

  // The data model: options, every Resource method.
  const connectOptions: ConnectOptions = { passphrase: 'pw' }
  const secretDb: Database = await Database.connect(url, connectOptions)
  const attributes: Attributes = {
    name: 'string|min:2',
    age: 'number|integer:true|optional',
    tags: { type: 'array', items: 'string' },
    address: { city: 'string', zip: 'string|optional' },
    token: 'secret',
  }
  const behavior: Behavior = 'body-overflow'
  const options: ResourceOptions = {
    name: 'people',
    attributes,
    behavior,
    timestamps: true,
    partitions: { byCity: { fields: { 'address.city': 'string' } } },
    paranoid: false,
    idSize: 12,
    passphrase: 'pw',
  }
  const people: Resource = await secretDb.createResource(options)
  await db.createResource({ name: 'short', attributes: { status: 'string' }, partitions: ['status'] })
  const batch: BatchItem[] = await people.insertMany([{ name: 'Ann', tags: [], address: { city: 'Rio' }, token: 't' }])
  const first: BatchItem | undefined = batch[0]
  const batchId: string | null | undefined = first?.id
  const batchCode: ErrorCode | undefined = first?.error?.code
  const batchRecord: StoredRecord | undefined = first?.record
  const many: GetManyResult = await people.getMany(['a', 'b'])
  const foundRecords: StoredRecord[] = many.found
  const missingIds: string[] = many.missing
  const tagged: RecordWithEtag = await people.getWithEtag('a')
  const ifMatch: StoredRecord = await people.updateIf('a', { name: 'Bo' }, tagged.etag)
  const replaced: StoredRecord = await people.replace('a', { name: 'Cy', tags: ['x'], address: { city: 'Rio' }, token: 't' })
  const upserted: StoredRecord = await people.upsert({ id: 'a', name: 'Di' })
  const patched: StoredRecord = await people.patch('a', { 'address.city': 'Lima' })
  const deleted: BatchItem[] = await people.deleteMany(['a', 'b'])
  const wiped: number = await people.deleteAll()
  const listOptions: ListOptions = { partition: 'byCity', partitionValues: { 'address.city': 'Rio' } }
  const inCity: StoredRecord[] = await people.list(listOptions)
  const idsInCity: string[] = await people.listIds({ partition: 'byCity' })
  const nInCity: number = await people.count(listOptions)
  const pageOptions: PageOptions = { size: 10 }
  const page: Page = await people.page(pageOptions)
  const nextPage: Page = await people.page({ size: 10, cursor: page.cursor })
  const pageItems: StoredRecord[] = nextPage.items
  const filter: QueryFilter = { age: { $gte: 18, $lt: 65 }, 'address.city': { $in: ['Rio', 'Lima'] }, name: 'Ann' }
  const found: StoredRecord[] = await people.query(filter)
  const reindexed: ReindexResult = await people.reindex()
  const one: ReindexResult = await people.reindex('byCity')
  const counts: number = reindexed.written + reindexed.deleted + one.written
  try {
    await people.insert({ name: 'x' })
  } catch (e) {
    if (e instanceof ValidationError) {
      const issues: ValidationIssue[] = e.details
      const fields: string[] = issues.map((i) => `${i.field} ${i.rule} ${i.expected} ${i.actual}`)
      void fields
    }
  }
  const made: ValidationError = new ValidationError('m', { details: [{ field: 'f', rule: 'r', expected: 'e', actual: 'a' }] })
  void [batchId, batchCode, batchRecord, foundRecords, missingIds, ifMatch, replaced, upserted, patched, deleted, wiped]
  void [inCity, idsInCity, nInCity, pageItems, found, counts, made]

  const stats: Stats = db.stats()
  const puts: number = stats.put + stats.get + stats.head + stats.copy + stats.delete + stats.list
  db.resetStats()

  const lockOptions: LockOptions = { ttl: 10, timeout: 0.5 }
  const lock: Lock = await db.lock('jobs', lockOptions)
  const token: number = lock.fencingToken
  const lockName: string = lock.name
  const lockHolder: string = lock.holderId
  const expires: number = await lock.expiresAt()
  await lock.extend(30)
  await lock.release()
  await db.lock('jobs').then((l) => l.release())

  const fromLock: number = await db.withLock('jobs', { ttl: 5 }, async (l: Lock) => l.fencingToken)
  const sync: string = await db.withLock('jobs', undefined, (l) => l.name)
  const short: boolean = await db.withLock('jobs', async () => true)

  const seqOptions: SequenceOptions = { start: 100, increment: 10 }
  const seq: Sequence = db.sequence('orders', seqOptions)
  const plain: Sequence = db.sequence('plain')
  const next: number = await seq.next()
  const current: number | null = await plain.current()
  await seq.reset(1)
  const seqName: string = seq.name

  try {
    await users.get('missing')
  } catch (e) {
    if (e instanceof NotFoundError) {
      const code: 'NOT_FOUND' = e.code
      void code
    }
    if (e instanceof S3dbError) {
      const code: ErrorCode = e.code
      const message: string = e.message
      const errName: string = e.name
      void [code, message, errName]
    }
  }
  const classes: (typeof S3dbError)[] = [
    AlreadyExistsError,
    PreconditionFailedError,
    ConflictError,
    ValidationError,
    InvalidArgumentError,
    LockNotAcquiredError,
    LockLostError,
    CorruptError,
    StorageError,
  ]
  const codes: readonly ErrorCode[] = ErrorCodes

  // Misuse the declarations must reject:
  // @ts-expect-error ids are strings
  await users.get(1)
  // @ts-expect-error records are objects
  await users.insert('not a record')
  // @ts-expect-error stats() is synchronous
  await db.stats().then(() => undefined)
  // @ts-expect-error ttl is a number of seconds
  await db.lock('jobs', { ttl: '10s' })
  // @ts-expect-error handles come from a Database, not from `new`
  new Database()
  // @ts-expect-error no such method
  await users.findAll()
  // @ts-expect-error page takes an options object
  await users.page(10)
  // @ts-expect-error no such behavior
  await db.createResource({ name: 'x', attributes: { a: 'string' }, behavior: 'overflow' })
  // @ts-expect-error a filter is an object
  await users.query('age > 5')
  // @ts-expect-error the passphrase is a string
  await Database.connect(url, { passphrase: 1 })

  void [holder, resourceName, names, got, maybe, there, updated, removed, ids, all, n, puts]
  void [token, lockName, lockHolder, expires, fromLock, sync, short, next, current, seqName, classes, codes]
}

void main
