import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Database, ValidationError } from 's3db-rs'
import { backends, rejectsWith, rand } from './helpers.mjs'

for (const backend of backends) {
  describe(`resources on ${backend.name}`, () => {
    let db
    let users
    before(async () => {
      db = await Database.connect(await backend.url())
      users = await db.createResource({
        name: 'users',
        attributes: { name: 'string|required', email: 'string|optional' },
      })
    })

    it('inserts, gets, updates and deletes', async () => {
      const ada = await users.insert({ name: 'Ada', email: 'ada@example.com' })
      assert.equal(typeof ada.id, 'string')
      assert.ok(ada.id.length > 0)
      assert.deepEqual(ada, { id: ada.id, name: 'Ada', email: 'ada@example.com' })
      assert.deepEqual(await users.get(ada.id), ada)
      assert.equal(await users.exists(ada.id), true)

      const updated = await users.update(ada.id, { email: 'ada@example.org' })
      assert.deepEqual(updated, { id: ada.id, name: 'Ada', email: 'ada@example.org' })
      assert.deepEqual(await users.get(ada.id), updated)

      // null removes an optional field
      const cleared = await users.update(ada.id, { email: null })
      assert.deepEqual(cleared, { id: ada.id, name: 'Ada' })

      assert.equal(await users.delete(ada.id), undefined)
      assert.equal(await users.exists(ada.id), false)
      assert.equal(await users.getOrNull(ada.id), null)
      await rejectsWith(assert, users.delete(ada.id), 'NOT_FOUND') // deleting a missing id
    })

    it('keeps a given id; a duplicate is ALREADY_EXISTS', async () => {
      const id = `u-${rand()}`
      const rec = await users.insert({ id, name: 'Bob' })
      assert.deepEqual(rec, { id, name: 'Bob' })
      await rejectsWith(assert, users.insert({ id, name: 'Bob again' }), 'ALREADY_EXISTS')
      assert.deepEqual(await users.get(id), rec)
    })

    it('missing records are NOT_FOUND (get, update, delete) or null (getOrNull)', async () => {
      await rejectsWith(assert, users.get('nobody'), 'NOT_FOUND')
      await rejectsWith(assert, users.update('nobody', { name: 'x' }), 'NOT_FOUND')
      await rejectsWith(assert, users.delete('nobody'), 'NOT_FOUND')
      assert.equal(await users.getOrNull('nobody'), null)
      assert.equal(await users.exists('nobody'), false)
      await rejectsWith(assert, db.resource('no-such-resource'), 'NOT_FOUND')
    })

    it('rejects invalid ids with INVALID_ARGUMENT', async () => {
      for (const id of ['a/b', '..', '.', '', 'a=b', 'a%b', 'a\\b', 'a\nb']) {
        await rejectsWith(assert, users.get(id), 'INVALID_ARGUMENT')
        await rejectsWith(assert, users.getOrNull(id), 'INVALID_ARGUMENT')
        await rejectsWith(assert, users.exists(id), 'INVALID_ARGUMENT')
        await rejectsWith(assert, users.update(id, { name: 'x' }), 'INVALID_ARGUMENT')
        await rejectsWith(assert, users.delete(id), 'INVALID_ARGUMENT')
        await rejectsWith(assert, users.insert({ id, name: 'x' }), 'INVALID_ARGUMENT')
      }
      await rejectsWith(assert, db.createResource({ name: 'a/b', attributes: { x: 'string' } }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.resource('..'), 'INVALID_ARGUMENT')
    })

    it('records that violate the schema are VALIDATION', async () => {
      await rejectsWith(assert, users.insert({ email: 'no-name@example.com' }), 'VALIDATION')
      await rejectsWith(assert, users.insert({ name: 42 }), 'VALIDATION')
      await rejectsWith(assert, users.insert({ name: 'x', unknown: 'field' }), 'VALIDATION')
      await rejectsWith(assert, users.insert({ name: 'x', email: { nested: true } }), 'VALIDATION')
      await rejectsWith(assert, users.insert({ id: true, name: 'x' }), 'VALIDATION')
      // s3db.js reads these strings back as absent: refused rather than lost
      await rejectsWith(assert, users.insert({ name: 'null' }), 'VALIDATION')
      await rejectsWith(assert, users.insert({ name: 'x', email: 'undefined' }), 'VALIDATION')
      const rec = await users.insert({ name: 'Cy' })
      await rejectsWith(assert, users.update(rec.id, { name: null }), 'VALIDATION')
      await rejectsWith(assert, users.update(rec.id, { id: 'other' }), 'VALIDATION')
      await rejectsWith(assert, users.update(rec.id, { name: 1 }), 'VALIDATION')
      await rejectsWith(assert, users.update(rec.id, { extra: 'x' }), 'VALIDATION')
      assert.deepEqual(await users.get(rec.id), rec)
    })

    it('a numeric id is stored as its text', async () => {
      const n = Math.floor(Math.random() * 1e9)
      assert.deepEqual(await users.insert({ id: n, name: 'Num' }), { id: String(n), name: 'Num' })
      assert.equal((await users.get(String(n))).name, 'Num')
    })

    it('VALIDATION errors list every failed check in err.details', async () => {
      const err = await users.insert({ name: 42, email: 'null', extra: true }).catch((e) => e)
      assert.ok(err instanceof ValidationError, String(err))
      assert.equal(err.code, 'VALIDATION')
      assert.ok(Array.isArray(err.details))
      const byField = Object.fromEntries(err.details.map((d) => [d.field, d]))
      assert.deepEqual(Object.keys(byField).sort(), ['email', 'extra', 'name'])
      assert.deepEqual(byField.name, { field: 'name', rule: 'type', expected: 'string', actual: '42' })
      assert.equal(byField.email.rule, 'lossless')
      assert.equal(byField.email.actual, '"null"')
      assert.equal(byField.extra.rule, 'unknown')
      for (const d of err.details) {
        assert.deepEqual(Object.keys(d).sort(), ['actual', 'expected', 'field', 'rule'])
        for (const v of Object.values(d)) assert.equal(typeof v, 'string')
      }
      // the message stays readable and carries no JSON
      assert.match(err.message, /^validation failed: /)
      assert.doesNotMatch(err.message, /\n/)
      const missing = await users.insert({}).catch((e) => e)
      assert.deepEqual(missing.details, [
        { field: 'name', rule: 'required', expected: 'a value', actual: 'nothing' },
      ])
      // a schema error is VALIDATION too, with no per-field details
      const schema = await db.createResource({ name: 'bad', attributes: {} }).catch((e) => e)
      assert.ok(schema instanceof ValidationError)
      assert.deepEqual(schema.details, [])
    })

    it('invalid schemas are VALIDATION', async () => {
      await rejectsWith(assert, db.createResource({ name: 'bad1', attributes: {} }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ name: 'bad2', attributes: { n: 'nosuchtype' } }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ name: 'bad3', attributes: { n: 'string|bogus' } }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ name: 'bad4', attributes: { n: 5 } }), 'VALIDATION')
      await rejectsWith(assert, db.createResource({ name: 'bad5', attributes: { id: 'string' } }), 'VALIDATION')
      assert.ok(!(await db.listResources()).some((n) => n.startsWith('bad')))
    })

    it('wrong JS types are INVALID_ARGUMENT, never a crash', async () => {
      const wrong = [
        () => users.get(42),
        () => users.get(),
        () => users.get(null),
        () => users.get({}),
        () => users.getOrNull(Symbol('x')),
        () => users.exists(true),
        () => users.delete([]),
        () => users.insert('not an object'),
        () => users.insert(42),
        () => users.insert(null),
        () => users.insert(),
        () => users.insert(['a', 'b']),
        () => users.insert({ name: 'x', email: undefined, f: () => 1 }),
        () => users.insert({ name: Symbol('s') }),
        () => users.update('x', 'changes'),
        () => users.update('x'),
        () => users.update(1, { name: 'x' }),
        () => db.createResource(),
        () => db.createResource('users'),
        () => db.createResource({ name: 'x' }),
        () => db.createResource({ name: 3, attributes: { a: 'string' } }),
        () => db.createResource({ name: 'x', attributes: 'string' }),
        () => db.createResource({ name: 'x', attributes: ['string'] }),
        () => db.resource(1),
        () => Database.connect(),
        () => Database.connect(42),
        () => Database.connect('ftp://example.com/bucket'),
        () => Database.connect('not a url'),
      ]
      for (const [i, call] of wrong.entries()) {
        await assert.rejects(call, (err) => {
          assert.equal(err.code, 'INVALID_ARGUMENT', `case ${i}: ${err.code} ${err.message}`)
          assert.equal(err.name, 'InvalidArgumentError')
          return true
        })
      }
    })

    it('counts requests: insert 1 PUT, get 1 GET, update 1 GET + 1 PUT, delete 1 HEAD + 1 DELETE', async () => {
      const zero = { get: 0, head: 0, put: 0, copy: 0, delete: 0, list: 0 }
      db.resetStats()
      assert.deepEqual(db.stats(), zero)
      const rec = await users.insert({ name: 'Counted' })
      assert.deepEqual(db.stats(), { ...zero, put: 1 })
      db.resetStats()
      await users.get(rec.id)
      assert.deepEqual(db.stats(), { ...zero, get: 1 })
      db.resetStats()
      await users.update(rec.id, { email: 'c@example.com' })
      assert.deepEqual(db.stats(), { ...zero, get: 1, put: 1 })
      db.resetStats()
      await users.exists(rec.id)
      assert.deepEqual(db.stats(), { ...zero, head: 1 })
      db.resetStats()
      await users.delete(rec.id)
      assert.deepEqual(db.stats(), { ...zero, head: 1, delete: 1 })
      db.resetStats()
      await users.count()
      assert.deepEqual(db.stats(), { ...zero, list: 1 })
    })

    it('lists ids, records and counts', async () => {
      const items = await db.createResource({ name: `items${rand(3)}`, attributes: { label: 'string' } })
      assert.deepEqual(await items.listIds(), [])
      assert.deepEqual(await items.list(), [])
      assert.equal(await items.count(), 0)
      const made = []
      for (let i = 0; i < 7; i++) made.push(await items.insert({ id: `item-${i}`, label: `L${i}` }))
      assert.deepEqual((await items.listIds()).sort(), made.map((r) => r.id).sort())
      const byId = (a, b) => a.id.localeCompare(b.id)
      assert.deepEqual((await items.list()).sort(byId), made.sort(byId))
      assert.equal(await items.count(), 7)
      await items.delete('item-3')
      assert.equal(await items.count(), 6)
      assert.ok(!(await items.listIds()).includes('item-3'))
    })

    it('lists resources and reopens one by name', async () => {
      const names = await db.listResources()
      assert.ok(Array.isArray(names))
      assert.ok(names.includes('users'))
      const again = await db.resource('users')
      assert.equal(again.name, 'users')
      const rec = await users.insert({ name: 'Dee' })
      assert.deepEqual(await again.get(rec.id), rec)
    })

    it('a second connection sees the same data', async () => {
      const url = await backend.url()
      const a = await Database.connect(url)
      const ra = await a.createResource({ name: 'shared', attributes: { v: 'string' } })
      await ra.insert({ id: 'k', v: '1' })
      const b = await Database.connect(url)
      const rb = await b.resource('shared')
      assert.deepEqual(await rb.get('k'), { id: 'k', v: '1' })
    })

    it('10 concurrent updates of different fields all survive', async () => {
      const attributes = {}
      for (let i = 0; i < 10; i++) attributes[`f${i}`] = 'string|optional'
      const wide = await db.createResource({ name: 'wide', attributes })
      const rec = await wide.insert({})
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => wide.update(rec.id, { [`f${i}`]: `v${i}` }))
      )
      const got = await wide.get(rec.id)
      for (let i = 0; i < 10; i++) assert.equal(got[`f${i}`], `v${i}`, JSON.stringify(got))
    })

    it('round-trips unicode and awkward strings', async () => {
      const notes = await db.createResource({ name: 'notes', attributes: { text: 'string' } })
      const texts = ['héllo wörld', '日本語', 'emoji 🎉', 'a "quoted" \\ back', 'x'.repeat(5000)]
      for (const text of texts) {
        const rec = await notes.insert({ text })
        assert.equal((await notes.get(rec.id)).text, text)
      }
    })

    it('trims strings unless |trim:false', async () => {
      const notes = await db.resource('notes')
      for (const [text, trimmed] of [
        [' lead and trail ', 'lead and trail'],
        ['  ', ''],
        ['tab\t', 'tab'],
      ]) {
        const rec = await notes.insert({ text })
        assert.equal(rec.text, trimmed)
        assert.equal((await notes.get(rec.id)).text, trimmed)
      }
    })

    // S3 trims header values; the engine stores such values in the u: form.
    it('keeps leading and trailing spaces with |trim:false', async () => {
      const raw = await db.createResource({ name: 'raw', attributes: { text: 'string|trim:false' } })
      for (const text of [' lead and trail ', '  ', 'tab\t', '\nline\n']) {
        const rec = await raw.insert({ text })
        assert.equal(rec.text, text)
        assert.equal((await raw.get(rec.id)).text, text)
      }
    })
  })
}
