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
} from 's3db-rs'

async function main(url: string): Promise<void> {
  const db: Database = await Database.connect(url)
  const holder: string = db.holderId

  const config: ResourceConfig = { name: 'users', attributes: { name: 'string|required', email: 'string' } }
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

  void [holder, resourceName, names, got, maybe, there, updated, removed, ids, all, n, puts]
  void [token, lockName, lockHolder, expires, fromLock, sync, short, next, current, seqName, classes, codes]
}

void main
