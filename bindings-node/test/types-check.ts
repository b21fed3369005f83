// Compiled by `npm run typecheck` (tsc --noEmit), never run: it exercises the whole public
// API against the hand-written declarations (lib.d.ts), through the package's own name.
import {
  Database,
  Resource,
  Lock,
  Sequence,
  State,
  Coordinator,
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
  type LockInfo,
  type Fenced,
  type StateEntry,
  type CasResult,
  type CoordinatorOptions,
  type CoordinatorEvent,
  type LeaderInfo,
  type WorkerInfo,
  type CoordinatorMetrics,
  type RecordContent,
  type IdGenerator,
  type IncrementalIdGenerator,
} from 's3db-rs'

async function coordination(db: Database): Promise<void> {
  // Locks: info, auto-renew, fencing.
  const held: boolean = await db.isLocked('jobs')
  const info: LockInfo | null = await db.lockInfo('jobs')
  const infoFields: [string, number, number, number] | undefined = info
    ? [info.holderId, info.fencingToken, info.acquiredAt, info.expiresAt]
    : undefined
  const renewed: Lock = await db.lock('jobs', {
    ttl: 2,
    timeout: 1,
    autoRenew: true,
    onLost: (err: S3dbError, lock: Lock) => void [err.code, lock.name],
  })
  const lost: boolean = renewed.isLost
  const ttl: number = renewed.ttl
  renewed.autoRenew()
  renewed.autoRenew((err) => void err.message)
  renewed.stopRenewing()
  const etag: string = await renewed.guardedPut('config', { max: 3 })
  const put: string = await db.fencedPut('config', [1, 'two', null], renewed.fencingToken)
  const fenced: Fenced | null = await db.fencedGet('config')
  const fencedFields = fenced ? [fenced.value, fenced.fencingToken, fenced.version] : []

  // Sequences.
  const fast: Sequence = db.sequence('fast', { batchSize: 10 })
  await fast.delete()
  const seqNames: string[] = await db.listSequences()

  // State.
  const state: State = db.state('app')
  const ns: string = state.namespace
  const entry: StateEntry | null = await state.get('k')
  const entryFields = entry ? [entry.value, entry.version, entry.expiresAt] : []
  const v1: string = await state.set('k', { a: 1 })
  const v2: string = await state.set('k', 'x', 30)
  const v3: string = await state.set('k', 1, { ttl: 5 })
  const updatedEntry: StateEntry = await state.update('n', (cur) => (typeof cur === 'number' ? cur + 1 : 1))
  const updatedAsync: StateEntry = await state.update('n', async (cur) => [cur])
  const cas: CasResult = await state.compareAndSwap('k', entry?.version ?? null, true)
  const casFields: [boolean, unknown, string | null] = [cas.swapped, cas.currentValue, cas.currentVersion]
  const counted: number = (await state.increment('c')) + (await state.increment('c', 5))
  const down: number = (await state.decrement('c')) + (await state.decrement('c', 2))
  const c: number = await state.counter('c')
  await state.reset('c')
  await state.delete('k')
  const stateKeys: string[] = await state.keys()

  // Coordinator.
  const options: CoordinatorOptions = { heartbeatInterval: 0.2, startupJitter: 0, strategy: 'alphabetical', pod: 'p1' }
  const coordinator: Coordinator = db.coordinator('workers', options)
  const plainCoordinator: Coordinator = db.coordinator('workers')
  coordinator.on('becameLeader', ({ epoch }) => void (epoch + 1))
  coordinator.on('lostLeadership', (e) => void e.epoch)
  coordinator.on('leaderChanged', ({ leaderId, epoch }) => void [leaderId.length, epoch])
  coordinator.once('circuitOpened', ({ failures }) => void failures)
  coordinator.on('circuitClosed', () => undefined)
  coordinator.on('event', (e: CoordinatorEvent) => {
    if (e.type === 'leaderChanged') void e.leaderId
    if (e.type === 'circuitOpened') void e.failures
  })
  await coordinator.start()
  const leads: boolean = coordinator.isLeader()
  const epoch: number | null = coordinator.fencingToken()
  const leader: LeaderInfo | null = coordinator.getLeader()
  const leaderFields = leader ? [leader.leaderId, leader.epoch, leader.leaseEnd] : []
  const workers: WorkerInfo[] = await coordinator.activeWorkers()
  const workerFields = workers.map((w) => [w.workerId, w.pod, w.startTime, w.lastHeartbeat])
  const metrics: CoordinatorMetrics = coordinator.metrics()
  const m: number = metrics.heartbeats + metrics.renewals + metrics.elections + metrics.leaderChanges
  const p: number = metrics.storageFailures + metrics.heartbeatP50Ms + metrics.heartbeatP99Ms
  const running: boolean = await coordinator.isRunning()
  const ids: [string, string] = [coordinator.workerId, coordinator.namespace]
  await coordinator.stop()
  coordinator.removeAllListeners()

  // Healing.
  const healed: string[] = db.healingLog()

  // Content and id generators.
  const incremental: IncrementalIdGenerator = { type: 'incremental', start: 1, prefix: 'INV-', padding: 4, mode: 'fast', batchSize: 50 }
  const generators: IdGenerator[] = ['incremental:ORD-0001', 'incremental:fast', 16, incremental, () => 'id-1', async (r) => `x-${String(r.name)}`]
  const files: Resource = await db.createResource({ name: 'files', attributes: { name: 'string' }, idGenerator: 'incremental:1000' })
  const byFn: Resource = await db.createResource({ name: 'byfn', attributes: { name: 'string' }, idGenerator: () => crypto.randomUUID() })
  const withContent: StoredRecord = await files.insertWithContent({ name: 'a.txt' }, Buffer.from('hello'), 'text/plain')
  await files.insertWithContent({ name: 'b.bin' }, new Uint8Array([1, 2]))
  await files.setContent(withContent.id, Buffer.from('bye'), 'text/plain')
  await files.setContent(withContent.id, null)
  const body: RecordContent = await files.content(withContent.id)
  const bodyFields: [Buffer, string] = [body.content, body.contentType]
  const idSeq: Sequence | null = files.idSequence()

  // Misuse the declarations must reject:
  // @ts-expect-error autoRenew is a boolean
  await db.lock('jobs', { autoRenew: 'yes' })
  // @ts-expect-error update takes a function
  await state.update('k', 5)
  // @ts-expect-error no such event
  coordinator.on('elected', () => undefined)
  // @ts-expect-error becameLeader carries {epoch}
  coordinator.on('becameLeader', (e: { leaderId: string }) => void e)
  // @ts-expect-error heartbeatInterval is seconds as a number
  db.coordinator('x', { heartbeatInterval: '200ms' })
  // @ts-expect-error healingLog is synchronous
  await db.healingLog().then(() => undefined)
  // @ts-expect-error content is bytes
  await files.insertWithContent({ name: 'c' }, 42)
  // @ts-expect-error no such strategy
  db.coordinator('x', { strategy: 'random' })

  void [held, infoFields, lost, ttl, etag, put, fencedFields, seqNames, ns, entryFields, v1, v2, v3]
  void [updatedEntry, updatedAsync, casFields, counted, down, c, stateKeys, plainCoordinator, leads, epoch]
  void [leaderFields, workerFields, m, p, running, ids, healed, generators, byFn, bodyFields, idSeq]
}

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
  const cond = await people.updateConditional('a', { name: 'Cy' }, { ifMatch: tagged.etag })
  if (cond.success) {
    const next: string = cond.etag
    void [next, cond.data.id]
  } else {
    const why: 'PRECONDITION_FAILED' | 'NOT_FOUND' | 'VALIDATION' = cond.code
    void why
  }
  const hooked = await db.createResource({
    name: 'hooked',
    attributes: { title: 'string' },
    hooks: { beforeInsert: [(d: { title: string }) => ({ ...d, title: d.title.trim() })], afterGet: async (r) => r },
  })
  const added: true = hooked.addHook('afterInsert', (r) => r)
  void added
  const pmap: Record<string, string> = await hooked.addPluginAttribute('audit', 'string|optional', 'auditor')
  const removed2: boolean = await hooked.removePluginAttribute('audit', 'auditor')
  const keys: Record<string, string> = hooked.pluginMap
  const ps = db.pluginStorage('my-plugin')
  const version: string = await ps.set(ps.getPluginKey(null, 'config'), { a: 1 }, { behavior: 'body-only', ttl: 60 })
  const maybeVersion: string | null = await ps.setIfVersion('plugin=my-plugin/config', { a: 2 }, version)
  const doc: Record<string, unknown> | null = await ps.get('plugin=my-plugin/config')
  const seqValue: number = await ps.nextSequence('n', { resourceName: 'users', initialValue: 10 })
  const plock = await ps.acquireLock('job', { ttl: 30, timeout: 500, workerId: 'w' })
  if (plock) {
    const released: boolean = await ps.releaseLock(plock)
    void released
  }
  void [pmap, removed2, keys, maybeVersion, doc, seqValue]
  // @ts-expect-error no such plugin storage behavior
  await ps.set('k', { a: 1 }, { behavior: 'overflow' })
  // @ts-expect-error no such hook event
  hooked.addHook('beforeSave', (r: unknown) => r)
  // @ts-expect-error updateConditional needs {ifMatch}
  await people.updateConditional('a', { name: 'Cy' }, tagged.etag)
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
  const logical: QueryFilter = {
    $or: [{ age: { $not: { $gt: 65 } } }, { name: { $regex: '^a', $options: 'i' } }],
    $nor: [{ tags: { $contains: 'x' } }],
  }
  const foundAny: StoredRecord[] = await people.query(logical)
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
  void [inCity, idsInCity, nInCity, pageItems, found, foundAny, counts, made]

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
void coordination
