// The s3db.js data model through the binding: options of createResource, every attribute
// type, behaviors, partitions, secrets, and the whole Resource API, on every backend.
import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Database, ValidationError } from 's3db-rs'
import { backends, rejectsWith, rand } from './helpers.mjs'

const ALL_TYPES = {
  text: 'string',
  count: 'number',
  whole: 'number|integer:true',
  flag: 'boolean',
  off: 'boolean',
  words: 'array|items:string',
  numbers: 'array|items:number',
  objects: { type: 'array', items: 'object' },
  address: { street: 'string', geo: { city: 'string', zip: 'number|optional' } },
  doc: 'json',
  at: 'datetime',
  day: 'dateonly',
  uid: 'uuid',
  v4: 'ip4',
  v6: 'ip6',
  price: 'money',
  ratio: 'decimal:4',
  lat: 'geo:lat',
  vec: 'embedding:3',
  token: 'secret',
}

const SAMPLE = {
  text: 'héllo | wörld, "quoted" 🎉',
  count: -12.75,
  whole: 9007199254740991,
  flag: true,
  off: false,
  words: ['a', 'pipe|inside', 'comma,inside', ''],
  numbers: [0, 1.5, -2, 1e21],
  objects: [{ x: 1, y: [true, null] }, { name: 'z' }],
  address: { street: 'Rua Augusta 1', geo: { city: 'São Paulo', zip: 1310000 } },
  doc: { nested: { list: [1, 'two', { three: 3 }], empty: {} }, flag: false },
  at: '2024-01-15T12:34:56.789Z',
  day: '2024-02-29',
  uid: '550e8400-e29b-41d4-a716-446655440000',
  v4: '192.168.10.254',
  v6: '2001:db8::8a2e:370:7334',
  price: 1999.99,
  ratio: 3.1416,
  lat: -23.5505,
  vec: [0.125, -0.5, 1],
  token: 'hunter2 is my password',
}

for (const backend of backends) {
  describe(`data model on ${backend.name}`, () => {
    let url
    let db
    before(async () => {
      url = await backend.url()
      db = await Database.connect(url, { passphrase: 'first passphrase' })
    })

    it('every attribute type round-trips with its native type', async () => {
      const all = await db.createResource({ name: 'alltypes', attributes: ALL_TYPES })
      const rec = await all.insert({ id: 'every', ...SAMPLE })
      assert.deepEqual(rec, { id: 'every', ...SAMPLE })
      const got = await all.get('every')
      assert.deepEqual(got, { id: 'every', ...SAMPLE })
      assert.equal(typeof got.count, 'number')
      assert.equal(typeof got.flag, 'boolean')
      assert.equal(got.off, false)
      assert.ok(Array.isArray(got.numbers))
      assert.equal(typeof got.address.geo, 'object')
      // optional nested fields may be left out
      const partial = { ...SAMPLE, address: { street: 'x', geo: { city: 'y' } } }
      assert.deepEqual(await all.insert({ id: 'partial', ...partial }), { id: 'partial', ...partial })
      assert.deepEqual(await all.get('partial'), { id: 'partial', ...partial })
      assert.deepEqual((await all.list()).length, 2)
    })

    it('every attribute type refuses a wrong value with VALIDATION', async () => {
      const all = await db.resource('alltypes')
      const wrong = {
        count: 'many',
        whole: 1.5,
        flag: 'maybe',
        words: [1, 2],
        numbers: ['x'],
        at: 'yesterday',
        day: '2024-02-30',
        uid: 'not-a-uuid',
        v4: '300.1.1.1',
        v6: 'zz::1',
        lat: 91,
        vec: [1, 2],
      }
      for (const [field, value] of Object.entries(wrong)) {
        const err = await all.insert({ ...SAMPLE, [field]: value }).catch((e) => e)
        assert.ok(err instanceof ValidationError, `${field}: ${err}`)
        // The field itself, then any of its items that fail.
        const fields = err.details.map((d) => d.field)
        assert.equal(fields[0], field, `${field}: ${JSON.stringify(err.details)}`)
        assert.ok(
          fields.every((f) => f === field || f.startsWith(`${field}[`)),
          `${field}: ${JSON.stringify(err.details)}`
        )
      }
    })

    it('secrets are stored encrypted: another passphrase never sees the plaintext', async () => {
      const same = await Database.connect(url, { passphrase: 'first passphrase' })
      assert.equal((await (await same.resource('alltypes')).get('every')).token, SAMPLE.token)
      for (const other of [
        await Database.connect(url, { passphrase: 'another passphrase' }),
        await Database.connect(url),
      ]) {
        const got = await (await other.resource('alltypes')).get('every')
        assert.notEqual(got.token, SAMPLE.token)
        assert.ok(!JSON.stringify(got).includes('hunter2'), JSON.stringify(got))
        assert.equal(got.text, SAMPLE.text) // the rest reads as usual
      }
    })

    it('a resource passphrase overrides the connection one', async () => {
      const vault = await db.createResource({
        name: 'vault',
        attributes: { label: 'string', pin: 'secret' },
        passphrase: 'vault passphrase',
      })
      const rec = await vault.insert({ id: 'v1', label: 'safe', pin: '1234-5678' })
      assert.equal(rec.pin, '1234-5678')
      assert.equal((await vault.get('v1')).pin, '1234-5678')
      const viaConnection = await Database.connect(url, { passphrase: 'vault passphrase' })
      assert.equal((await (await viaConnection.resource('vault')).get('v1')).pin, '1234-5678')
      const withoutIt = await Database.connect(url, { passphrase: 'first passphrase' })
      const seen = await (await withoutIt.resource('vault')).get('v1')
      assert.equal(seen.label, 'safe')
      assert.notEqual(seen.pin, '1234-5678')
    })

    it('fields are required unless |optional; undeclared fields are refused', async () => {
      const r = await db.createResource({
        name: 'required',
        attributes: { must: 'string', may: 'string|optional', n: 'number|optional' },
      })
      const err = await r.insert({ may: 'x' }).catch((e) => e)
      assert.equal(err.code, 'VALIDATION')
      assert.deepEqual(err.details, [{ field: 'must', rule: 'required', expected: 'a value', actual: 'nothing' }])
      assert.deepEqual(await r.insert({ id: 'ok', must: 'x' }), { id: 'ok', must: 'x' })
      const extra = await r.insert({ must: 'x', nope: 1 }).catch((e) => e)
      assert.deepEqual(
        extra.details.map((d) => [d.field, d.rule]),
        [['nope', 'unknown']]
      )
      // numeric strings convert; "null"/"undefined" are refused
      assert.equal((await r.insert({ must: 'x', n: '42' })).n, 42)
      await rejectsWith(assert, r.insert({ must: 'undefined' }), 'VALIDATION')
    })

    it('body-overflow keeps a 3,000-character field whole; enforce-limits refuses it', async () => {
      const big = 'x'.repeat(1000) + 'é'.repeat(1000) + '日'.repeat(1000)
      assert.equal(big.length, 3000)
      for (const behavior of ['body-overflow', 'body-only', 'user-managed']) {
        const r = await db.createResource({
          name: `bh-${behavior}`,
          behavior,
          attributes: { big: 'string', small: 'string|optional' },
        })
        const rec = await r.insert({ id: 'big', big, small: 'tiny' })
        assert.equal(rec.big, big)
        const got = await r.get('big')
        assert.equal(got.big.length, 3000, behavior)
        assert.deepEqual(got, { id: 'big', big, small: 'tiny' }, behavior)
        assert.deepEqual(await r.update('big', { small: 'changed' }), { id: 'big', big, small: 'changed' })
        assert.deepEqual(await r.get('big'), { id: 'big', big, small: 'changed' }, behavior)
        // a small record of the same resource
        assert.deepEqual(await r.get((await r.insert({ id: 's', big: 'short' })).id), { id: 's', big: 'short' })
      }
      const strict = await db.createResource({
        name: 'bh-enforce',
        behavior: 'enforce-limits',
        attributes: { big: 'string' },
      })
      const err = await strict.insert({ id: 'big', big }).catch((e) => e)
      assert.ok(err instanceof ValidationError, String(err))
      assert.equal(err.code, 'VALIDATION')
      assert.match(err.message, /\d+ bytes/)
      assert.match(err.message, /\d{4}-byte limit|over .*\d{4}/)
      assert.equal(await strict.exists('big'), false)
      assert.deepEqual(await strict.insert({ id: 'small', big: 'fits' }), { id: 'small', big: 'fits' })
      // truncate-data stores what fits
      const cut = await db.createResource({ name: 'bh-truncate', behavior: 'truncate-data', attributes: { big: 'string' } })
      await cut.insert({ id: 'big', big })
      assert.ok((await cut.get('big')).big.length < 3000)
    })

    it('partitions: counts, exact prefixes, references moved on update and removed on delete', async () => {
      const orders = await db.createResource({
        name: 'orders',
        attributes: {
          status: 'string',
          region: 'string',
          amount: 'number',
          address: { city: 'string|optional' },
        },
        partitions: {
          byStatus: { fields: { status: 'string' } },
          byRegionStatus: { fields: { status: 'string', region: 'string' } },
          byCity: { fields: { 'address.city': 'string' } },
        },
      })
      await orders.insertMany([
        { id: 'o1', status: 'active', region: 'eu', amount: 10, address: { city: 'Paris' } },
        { id: 'o2', status: 'act', region: 'us', amount: 20 },
        { id: 'o3', status: 'active', region: 'us', amount: 30, address: { city: 'NYC' } },
        { id: 'o4', status: 'closed', region: 'eu', amount: 40, address: { city: 'Paris' } },
      ])
      const inStatus = (status) => ({ partition: 'byStatus', partitionValues: { status } })
      assert.equal(await orders.count(), 4)
      assert.equal(await orders.count(inStatus('active')), 2)
      // `status=act` is a whole segment: it never matches `status=active`
      assert.equal(await orders.count(inStatus('act')), 1)
      assert.deepEqual(await orders.listIds(inStatus('act')), ['o2'])
      assert.deepEqual((await orders.list(inStatus('act'))).map((r) => r.id), ['o2'])
      assert.deepEqual((await orders.listIds(inStatus('active'))).sort(), ['o1', 'o3'])
      assert.equal(await orders.count(inStatus('nothing')), 0)
      // a partition without values lists every referenced record; leading fields narrow it
      assert.equal(await orders.count({ partition: 'byStatus' }), 4)
      assert.equal(await orders.count({ partition: 'byCity' }), 3) // o2 has no city
      assert.deepEqual(
        (await orders.listIds({ partition: 'byCity', partitionValues: { 'address.city': 'Paris' } })).sort(),
        ['o1', 'o4']
      )
      assert.deepEqual(
        await orders.listIds({ partition: 'byRegionStatus', partitionValues: { region: 'us', status: 'active' } }),
        ['o3']
      )
      assert.equal(await orders.count({ partition: 'byRegionStatus', partitionValues: { region: 'eu' } }), 2)

      // update moves the reference
      await orders.update('o2', { status: 'active' })
      assert.equal(await orders.count(inStatus('act')), 0)
      assert.deepEqual((await orders.listIds(inStatus('active'))).sort(), ['o1', 'o2', 'o3'])
      await orders.update('o1', { 'address.city': 'Lyon' })
      assert.deepEqual(await orders.listIds({ partition: 'byCity', partitionValues: { 'address.city': 'Paris' } }), ['o4'])
      assert.deepEqual(await orders.listIds({ partition: 'byCity', partitionValues: { 'address.city': 'Lyon' } }), ['o1'])
      // delete removes the references
      await orders.delete('o3')
      assert.deepEqual((await orders.listIds(inStatus('active'))).sort(), ['o1', 'o2'])
      assert.equal(await orders.count({ partition: 'byCity' }), 2)
      assert.deepEqual(await orders.reindex(), { written: 0, deleted: 0 })

      await rejectsWith(assert, orders.count({ partition: 'nope' }), 'NOT_FOUND')
      await rejectsWith(assert, orders.list({ partition: 'nope', partitionValues: {} }), 'NOT_FOUND')
      await rejectsWith(assert, orders.reindex('nope'), 'NOT_FOUND')
      await rejectsWith(assert, orders.listIds({ partitionValues: { status: 'x' } }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, orders.count({ partition: 'byStatus', partitionValues: 'x' }), 'INVALID_ARGUMENT')
      // values that would change the shape of a key are refused, nothing is written
      await rejectsWith(assert, orders.insert({ id: 'bad', status: 'a/b', region: 'x', amount: 1 }), 'INVALID_ARGUMENT')
      assert.equal(await orders.exists('bad'), false)
    })

    it('partition shorthand (field names) and reindex after adding a partition', async () => {
      const name = `tasks${rand(3)}`
      const plain = await db.createResource({ name, attributes: { state: 'string', owner: 'string' } })
      for (let i = 0; i < 5; i++) await plain.insert({ id: `t${i}`, state: i % 2 ? 'done' : 'todo', owner: 'ann' })
      const tasks = await db.createResource({
        name,
        attributes: { state: 'string', owner: 'string' },
        partitions: ['state'],
      })
      const todo = { partition: 'byState', partitionValues: { state: 'todo' } }
      assert.equal(await tasks.count(todo), 0) // records written before the partition existed
      assert.deepEqual(await tasks.reindex('byState'), { written: 5, deleted: 0 })
      assert.equal(await tasks.count(todo), 3)
      assert.deepEqual(await tasks.reindex(), { written: 0, deleted: 0 })
      assert.deepEqual((await tasks.listIds({ partition: 'byState', partitionValues: { state: 'done' } })).sort(), ['t1', 't3'])
    })

    it('query: every operator, dotted paths, partition-backed equality', async () => {
      const items = await db.createResource({
        name: 'items',
        attributes: {
          kind: 'string',
          price: 'number',
          stock: 'number|optional',
          active: 'boolean',
          meta: { color: 'string|optional' },
        },
        partitions: { byKind: { fields: { kind: 'string' } } },
      })
      await items.insertMany([
        { id: 'a', kind: 'book', price: 10, stock: 3, active: true, meta: { color: 'red' } },
        { id: 'b', kind: 'book', price: 25, active: false, meta: { color: 'blue' } },
        { id: 'c', kind: 'pen', price: 2.5, stock: 0, active: true },
        { id: 'd', kind: 'bookish', price: 40, stock: 7, active: true, meta: { color: 'red' } },
      ])
      const ids = async (filter) => (await items.query(filter)).map((r) => r.id).sort()
      assert.deepEqual(await ids({}), ['a', 'b', 'c', 'd'])
      assert.deepEqual(await ids({ kind: 'book' }), ['a', 'b'])
      assert.deepEqual(await ids({ kind: { $eq: 'book' } }), ['a', 'b'])
      assert.deepEqual(await ids({ kind: { $ne: 'book' } }), ['c', 'd'])
      assert.deepEqual(await ids({ price: { $gt: 10 } }), ['b', 'd'])
      assert.deepEqual(await ids({ price: { $gte: 10 } }), ['a', 'b', 'd'])
      assert.deepEqual(await ids({ price: { $lt: 10 } }), ['c'])
      assert.deepEqual(await ids({ price: { $lte: 10 } }), ['a', 'c'])
      assert.deepEqual(await ids({ price: { $gte: 5, $lt: 30 } }), ['a', 'b'])
      assert.deepEqual(await ids({ kind: { $in: ['pen', 'bookish'] } }), ['c', 'd'])
      assert.deepEqual(await ids({ kind: { $nin: ['pen', 'bookish'] } }), ['a', 'b'])
      assert.deepEqual(await ids({ stock: { $exists: true } }), ['a', 'c', 'd'])
      assert.deepEqual(await ids({ stock: { $exists: false } }), ['b'])
      assert.deepEqual(await ids({ active: true }), ['a', 'c', 'd'])
      assert.deepEqual(await ids({ active: false }), ['b'])
      assert.deepEqual(await ids({ 'meta.color': 'red' }), ['a', 'd'])
      assert.deepEqual(await ids({ 'meta.color': { $exists: false } }), ['c'])
      assert.deepEqual(await ids({ kind: 'book', 'meta.color': 'red' }), ['a'])
      assert.deepEqual(await ids({ kind: 'book', price: { $gt: 100 } }), [])
      const full = await items.query({ kind: 'pen' })
      assert.deepEqual(full, [{ id: 'c', kind: 'pen', price: 2.5, stock: 0, active: true }])
      // an equality on a partition field lists only that partition
      db.resetStats()
      await items.query({ kind: 'pen' })
      assert.equal(db.stats().get, 1)

      await rejectsWith(assert, items.query({ price: { $between: [1, 2] } }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, items.query({ kind: { $in: 'book' } }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, items.query('kind = book'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, items.query(null), 'INVALID_ARGUMENT')
    })

    it('page: 25 records in pages of 10 with a cursor', async () => {
      const pages = await db.createResource({ name: 'pages', attributes: { n: 'number' } })
      const results = await pages.insertMany(Array.from({ length: 25 }, (_, n) => ({ id: `p${String(n).padStart(2, '0')}`, n })))
      assert.ok(results.every((r) => !r.error))
      const seen = []
      const sizes = []
      let cursor = null
      do {
        db.resetStats()
        const page = await pages.page({ size: 10, cursor })
        const s = db.stats()
        assert.equal(s.list, 1)
        assert.equal(s.get, page.items.length)
        sizes.push(page.items.length)
        seen.push(...page.items)
        cursor = page.cursor
        assert.ok(cursor === null || typeof cursor === 'string')
      } while (cursor !== null)
      assert.deepEqual(sizes, [10, 10, 5])
      assert.deepEqual(
        seen.map((r) => r.id).sort(),
        Array.from({ length: 25 }, (_, n) => `p${String(n).padStart(2, '0')}`)
      )
      for (const r of seen) assert.equal(r.n, Number(r.id.slice(1)))
      // the first page without a cursor (undefined works as null)
      const first = await pages.page({ size: 30 })
      assert.equal(first.items.length, 25)
      assert.equal(first.cursor, null)

      await rejectsWith(assert, pages.page({ size: 0 }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page({ size: 1001 }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page({ size: 2.5 }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page({ size: 10, cursor: 'garbage' }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page(), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page(10), 'INVALID_ARGUMENT')
      await rejectsWith(assert, pages.page({}), 'INVALID_ARGUMENT')
      const other = await db.createResource({ name: 'pages2', attributes: { n: 'number' } })
      await other.insertMany([{ n: 1 }, { n: 2 }])
      const cur = (await other.page({ size: 1 })).cursor
      await rejectsWith(assert, pages.page({ size: 1, cursor: cur }), 'INVALID_ARGUMENT')
    })

    it('insertMany and deleteMany report per-item errors', async () => {
      const batch = await db.createResource({ name: 'batch', attributes: { v: 'string' } })
      await batch.insert({ id: 'taken', v: 'x' })
      const out = await batch.insertMany([
        { id: 'b1', v: 'one' },
        { v: 7 },
        { id: 'taken', v: 'again' },
        { v: 'generated' },
        { id: 'a/b', v: 'bad id' },
      ])
      assert.deepEqual(out.map((r) => r.index), [0, 1, 2, 3, 4])
      assert.deepEqual(out[0], { index: 0, id: 'b1', record: { id: 'b1', v: 'one' } })
      assert.equal(out[1].error.code, 'VALIDATION')
      assert.equal(out[1].id, null)
      assert.equal(out[1].record, undefined)
      assert.match(out[1].error.message, /v: type/)
      assert.equal(out[2].error.code, 'ALREADY_EXISTS')
      assert.equal(out[2].id, 'taken')
      assert.equal(out[3].error, undefined)
      assert.equal(typeof out[3].id, 'string')
      assert.deepEqual(out[3].record, { id: out[3].id, v: 'generated' })
      assert.equal(out[4].error.code, 'INVALID_ARGUMENT')
      assert.equal((await batch.get('taken')).v, 'x')
      assert.equal(await batch.count(), 3)
      assert.deepEqual(await batch.insertMany([]), [])

      const del = await batch.deleteMany(['b1', 'missing', 'taken', '..'])
      assert.deepEqual(del[0], { index: 0, id: 'b1' })
      assert.equal(del[1].error.code, 'NOT_FOUND')
      assert.equal(del[1].id, 'missing')
      assert.deepEqual(del[2], { index: 2, id: 'taken' })
      assert.equal(del[3].error.code, 'INVALID_ARGUMENT')
      assert.deepEqual(await batch.listIds(), [out[3].id])
      assert.deepEqual(await batch.deleteMany([]), [])

      await rejectsWith(assert, batch.insertMany('x'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, batch.insertMany([{ v: 'a' }, 'x']), 'INVALID_ARGUMENT')
      await rejectsWith(assert, batch.insertMany([null]), 'INVALID_ARGUMENT')
      await rejectsWith(assert, batch.deleteMany('b1'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, batch.deleteMany([1]), 'INVALID_ARGUMENT')
      assert.equal(await batch.count(), 1)
    })

    it('getMany returns found records in order and the missing ids', async () => {
      const r = await db.createResource({ name: 'many', attributes: { v: 'number' } })
      await r.insertMany([{ id: 'm1', v: 1 }, { id: 'm2', v: 2 }, { id: 'm3', v: 3 }])
      assert.deepEqual(await r.getMany(['m3', 'nope', 'm1', 'gone']), {
        found: [{ id: 'm3', v: 3 }, { id: 'm1', v: 1 }],
        missing: ['nope', 'gone'],
      })
      assert.deepEqual(await r.getMany([]), { found: [], missing: [] })
      await rejectsWith(assert, r.getMany(['ok', 'a/b']), 'INVALID_ARGUMENT')
      await rejectsWith(assert, r.getMany('m1'), 'INVALID_ARGUMENT')
    })

    it('deleteAll is refused when paranoid (the default) and allowed with paranoid: false', async () => {
      const keep = await db.createResource({ name: 'keep', attributes: { v: 'string' } })
      await keep.insertMany([{ v: 'a' }, { v: 'b' }])
      await rejectsWith(assert, keep.deleteAll(), 'INVALID_ARGUMENT')
      assert.equal(await keep.count(), 2)
      const explicit = await db.createResource({ name: 'keep2', attributes: { v: 'string' }, paranoid: true })
      await rejectsWith(assert, explicit.deleteAll(), 'INVALID_ARGUMENT')

      const scratch = await db.createResource({
        name: 'scratch',
        attributes: { v: 'string' },
        paranoid: false,
        partitions: ['v'],
      })
      await scratch.insertMany(Array.from({ length: 7 }, (_, i) => ({ v: `v${i % 2}` })))
      assert.equal(await scratch.count({ partition: 'byV', partitionValues: { v: 'v0' } }), 4)
      assert.equal(await scratch.deleteAll(), 7)
      assert.equal(await scratch.count(), 0)
      assert.equal(await scratch.count({ partition: 'byV' }), 0)
      assert.equal(await scratch.deleteAll(), 0)
      assert.equal(await keep.count(), 2) // other resources untouched
    })

    it('getWithEtag + updateIf: a stale etag is PRECONDITION_FAILED', async () => {
      const docs = await db.createResource({ name: 'docs', attributes: { title: 'string', rev: 'number' } })
      await docs.insert({ id: 'd1', title: 'first', rev: 1 })
      const { record, etag } = await docs.getWithEtag('d1')
      assert.deepEqual(record, { id: 'd1', title: 'first', rev: 1 })
      assert.equal(typeof etag, 'string')
      assert.ok(etag.length > 0)
      assert.deepEqual(await docs.updateIf('d1', { rev: 2 }, etag), { id: 'd1', title: 'first', rev: 2 })
      const fresh = await docs.getWithEtag('d1')
      assert.notEqual(fresh.etag, etag)
      await rejectsWith(assert, docs.updateIf('d1', { title: 'lost' }, etag), 'PRECONDITION_FAILED')
      assert.deepEqual(await docs.get('d1'), { id: 'd1', title: 'first', rev: 2 })
      assert.deepEqual(await docs.updateIf('d1', { title: 'second' }, fresh.etag), { id: 'd1', title: 'second', rev: 2 })
      await rejectsWith(assert, docs.getWithEtag('nope'), 'NOT_FOUND')
      await rejectsWith(assert, docs.updateIf('nope', { rev: 1 }, etag), 'NOT_FOUND')
      await rejectsWith(assert, docs.updateIf('d1', { rev: 'x' }, (await docs.getWithEtag('d1')).etag), 'VALIDATION')
      await rejectsWith(assert, docs.updateIf('d1', { rev: 3 }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, docs.updateIf('d1', 'changes', etag), 'INVALID_ARGUMENT')
    })

    it('replace, upsert and patch', async () => {
      const people = await db.createResource({
        name: 'people',
        attributes: { name: 'string', nick: 'string|optional', address: { city: 'string', zip: 'string|optional' } },
      })
      await people.insert({ id: 'p1', name: 'Ann', nick: 'annie', address: { city: 'Rio', zip: '20000' } })
      // replace: the whole record, fields not given are gone
      assert.deepEqual(await people.replace('p1', { name: 'Ann B', address: { city: 'Lima' } }), {
        id: 'p1',
        name: 'Ann B',
        address: { city: 'Lima' },
      })
      assert.deepEqual(await people.get('p1'), { id: 'p1', name: 'Ann B', address: { city: 'Lima' } })
      await rejectsWith(assert, people.replace('nobody', { name: 'x', address: { city: 'y' } }), 'NOT_FOUND')
      await rejectsWith(assert, people.replace('p1', { address: { city: 'no name' } }), 'VALIDATION')
      await rejectsWith(assert, people.replace('p1', { name: 'x', address: { zip: 'no city' } }), 'VALIDATION')
      await rejectsWith(assert, people.replace('p1', 'x'), 'INVALID_ARGUMENT')
      // patch: a merge; dotted keys change one nested field and keep its siblings
      await people.patch('p1', { 'address.zip': '15000' })
      assert.deepEqual(await people.patch('p1', { nick: 'ab' }), {
        id: 'p1',
        name: 'Ann B',
        nick: 'ab',
        address: { city: 'Lima', zip: '15000' },
      })
      await rejectsWith(assert, people.patch('nobody', { nick: 'x' }), 'NOT_FOUND')
      await rejectsWith(assert, people.patch('p1', { name: null }), 'VALIDATION')
      // upsert: inserts, then merges
      const created = await people.upsert({ id: 'p2', name: 'Bo', address: { city: 'Oslo' } })
      assert.deepEqual(created, { id: 'p2', name: 'Bo', address: { city: 'Oslo' } })
      assert.deepEqual(await people.upsert({ id: 'p2', nick: 'bobo' }), {
        id: 'p2',
        name: 'Bo',
        nick: 'bobo',
        address: { city: 'Oslo' },
      })
      const generated = await people.upsert({ name: 'Cy', address: { city: 'Nice' } })
      assert.equal(typeof generated.id, 'string')
      assert.deepEqual(await people.get(generated.id), generated)
      await rejectsWith(assert, people.upsert({ id: 'p3', address: { city: 'no name' } }), 'VALIDATION')
      await rejectsWith(assert, people.upsert({ id: 'p2', name: 5 }), 'VALIDATION')
      await rejectsWith(assert, people.upsert(['x']), 'INVALID_ARGUMENT')
      assert.equal(await people.count(), 3)
    })

    it('timestamps: true adds createdAt/updatedAt and date partitions', async () => {
      const notes = await db.createResource({ name: 'stamped', timestamps: true, attributes: { body: 'string' } })
      const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
      const rec = await notes.insert({ id: 'n1', body: 'hi' })
      assert.match(rec.createdAt, iso)
      assert.equal(rec.updatedAt, rec.createdAt)
      assert.deepEqual(await notes.get('n1'), rec)
      await new Promise((r) => setTimeout(r, 5))
      const upd = await notes.update('n1', { body: 'hello' })
      assert.equal(upd.createdAt, rec.createdAt)
      assert.match(upd.updatedAt, iso)
      assert.ok(upd.updatedAt > rec.updatedAt, `${upd.updatedAt} > ${rec.updatedAt}`)
      assert.deepEqual(await notes.get('n1'), upd)
      await new Promise((r) => setTimeout(r, 5))
      const rep = await notes.replace('n1', { body: 'replaced' })
      assert.equal(rep.createdAt, rec.createdAt)
      assert.ok(rep.updatedAt > upd.updatedAt)
      const day = rec.createdAt.slice(0, 10)
      assert.equal(await notes.count({ partition: 'byCreatedDate', partitionValues: { createdAt: day } }), 1)
      assert.equal(await notes.count({ partition: 'byUpdatedDate', partitionValues: { updatedAt: rep.updatedAt } }), 1)
      assert.equal(await notes.count({ partition: 'byCreatedDate', partitionValues: { createdAt: '1999-01-01' } }), 0)
      // a given createdAt is kept
      const old = await notes.insert({ body: 'old', createdAt: '2020-05-06T07:08:09.000Z' })
      assert.equal(old.createdAt, '2020-05-06T07:08:09.000Z')
      assert.equal(await notes.count({ partition: 'byCreatedDate', partitionValues: { createdAt: '2020-05-06' } }), 1)
    })

    it('createResource options: idSize, behavior and partitions are checked', async () => {
      const short = await db.createResource({ name: 'short', idSize: 8, attributes: { v: 'string' } })
      assert.equal((await short.insert({ v: 'x' })).id.length, 8)
      const ok = { name: 'opts', attributes: { v: 'string' } }
      await rejectsWith(assert, db.createResource({ ...ok, behavior: 'overflow' }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, idSize: 0 }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, idSize: 257 }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, partitions: ['nope'] }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, partitions: { p: { fields: { nope: 'string' } } } }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, partitions: { p: {} } }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ ...ok, attributes: { v: 'string|bogus:1' } }), 'VALIDATION')
      for (const bad of [
        { behavior: 5 },
        { timestamps: 'yes' },
        { paranoid: 1 },
        { idSize: '8' },
        { idSize: 2.5 },
        { idSize: -1 },
        { partitions: 'status' },
        { passphrase: 42 },
      ]) {
        await rejectsWith(assert, db.createResource({ ...ok, ...bad }), 'INVALID_ARGUMENT')
      }
      assert.ok(!(await db.listResources()).includes('opts'))
      await rejectsWith(assert, Database.connect(url, 'passphrase'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, Database.connect(url, { passphrase: 1 }), 'INVALID_ARGUMENT')
      // null options are the defaults
      const d = await db.createResource({ ...ok, name: 'defaults', behavior: null, timestamps: null, idSize: undefined })
      assert.equal((await d.insert({ v: 'x' })).id.length, 22)
    })
  })
}
