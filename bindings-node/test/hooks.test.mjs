// Resource hooks (s3db.js `hooks` option and `addHook`) and `updateConditional`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Database } from '../lib.mjs'
import { backends, rand, rejectsWith } from './helpers.mjs'

const attributes = { title: 'string', slug: 'string|optional', n: 'number|optional' }

for (const backend of backends) {
  test(`${backend.name}: insert hooks change the record, in order, sync and async`, async () => {
    const db = await Database.connect(await backend.url())
    const res = await db.createResource({
      name: `posts${rand(3)}`,
      attributes,
      hooks: {
        beforeInsert: [
          function slugify(data) {
            data.slug = data.title.toLowerCase().replace(/ /g, '-')
            return data
          },
          async (data) => {
            await new Promise((r) => setTimeout(r, 5))
            return { ...data, slug: `${data.slug}-1` }
          },
        ],
        afterInsert: [(record) => ({ ...record, seen: true })],
      },
    })
    const out = await res.insert({ id: 'p1', title: 'Hello World' })
    assert.equal(out.slug, 'hello-world-1')
    assert.equal(out.seen, true)
    const stored = await res.get('p1')
    assert.equal(stored.slug, 'hello-world-1')
    assert.equal(stored.seen, undefined)
  })

  test(`${backend.name}: a throwing hook aborts, writes nothing, and its error reaches the caller`, async () => {
    const db = await Database.connect(await backend.url())
    class Refused extends Error {}
    const res = await db.createResource({
      name: `guarded${rand(3)}`,
      attributes,
      hooks: {
        beforeInsert: (data) => {
          if (data.title === 'bad') throw new Refused('titles may not be bad')
          return data
        },
      },
    })
    db.resetStats()
    await assert.rejects(res.insert({ id: 'x', title: 'bad' }), (e) => {
      assert.ok(e instanceof Refused)
      assert.equal(e.message, 'titles may not be bad')
      return true
    })
    assert.equal(db.stats().put, 0)
    assert.equal(await res.exists('x'), false)

    // A hook returning something else than a record object is a VALIDATION error.
    res.addHook('beforeUpdate', () => 42)
    await res.insert({ id: 'y', title: 'ok' })
    await rejectsWith(assert, res.update('y', { n: 1 }), 'VALIDATION')
    assert.equal((await res.get('y')).n, undefined)
  })

  test(`${backend.name}: update and delete hooks see the record`, async () => {
    const db = await Database.connect(await backend.url())
    const seen = []
    const res = await db.createResource({
      name: `upd${rand(3)}`,
      attributes,
      hooks: {
        beforeUpdate: (v) => {
          seen.push(['beforeUpdate', v])
        },
        afterDelete: (v) => {
          seen.push(['afterDelete', v])
        },
      },
    })
    await res.insert({ id: 'a', title: 't', n: 1 })
    await res.update('a', { n: 2 })
    db.resetStats()
    await res.delete('a')
    const s = db.stats()
    assert.deepEqual([s.get, s.head, s.delete], [1, 0, 1])
    assert.deepEqual(seen, [
      ['beforeUpdate', { id: 'a', title: 't', n: 2 }],
      ['afterDelete', { id: 'a', title: 't', n: 2 }],
    ])
    res.addHook('beforeDelete', () => {
      throw new Error('keep it')
    })
    await res.insert({ id: 'b', title: 't' })
    await assert.rejects(res.delete('b'), /keep it/)
    assert.equal(await res.exists('b'), true)
  })

  test(`${backend.name}: read hooks shape what reads return; hooks belong to the resource`, async () => {
    const db = await Database.connect(await backend.url())
    const name = `reads${rand(3)}`
    const res = await db.createResource({
      name,
      attributes,
      hooks: {
        afterGet: (r) => ({ ...r, title: r.title.toUpperCase() }),
        afterList: (rs) => rs.slice(0, 1),
        afterQuery: (rs) => rs.slice(0, 1),
      },
    })
    for (const id of ['a', 'b']) await res.insert({ id, title: 'low' })
    const other = await db.resource(name)
    assert.equal((await other.get('a')).title, 'LOW')
    assert.equal((await other.list()).length, 1)
    assert.equal((await other.query({ title: 'low' })).length, 1)
    other.addHook('afterGet', (r) => ({ ...r, tagged: true }))
    assert.equal((await res.get('a')).tagged, true)
    await assert.rejects(
      async () => res.addHook('beforeSave', (v) => v),
      (e) => e.code === 'INVALID_ARGUMENT' && /beforeInsert/.test(e.message)
    )
    await assert.rejects(async () => res.addHook('beforeInsert', 'nope'), (e) => e.code === 'INVALID_ARGUMENT')
    await assert.rejects(
      db.createResource({ name: `x${rand(3)}`, attributes, hooks: { beforeInsert: [1] } }),
      (e) => e.code === 'INVALID_ARGUMENT'
    )
  })

  test(`${backend.name}: updateConditional returns s3db.js's result shape`, async () => {
    const db = await Database.connect(await backend.url())
    const res = await db.createResource({ name: `cond${rand(3)}`, attributes })
    await res.insert({ id: 'u', title: 't', n: 1 })
    const { etag } = await res.getWithEtag('u')
    const ok = await res.updateConditional('u', { n: 2 }, { ifMatch: etag })
    assert.equal(ok.success, true)
    assert.equal(ok.data.n, 2)
    assert.notEqual(ok.etag, etag)
    const again = await res.updateConditional('u', { n: 3 }, { ifMatch: ok.etag })
    assert.equal(again.success, true)
    const stale = await res.updateConditional('u', { n: 4 }, { ifMatch: ok.etag })
    assert.equal(stale.success, false)
    assert.equal(stale.code, 'PRECONDITION_FAILED')
    assert.equal((await res.get('u')).n, 3)
    const invalid = await res.updateConditional('u', { n: 'x' }, { ifMatch: again.etag })
    assert.equal(invalid.success, false)
    assert.equal(invalid.code, 'VALIDATION')
    assert.ok(Array.isArray(invalid.validationErrors))
    await assert.rejects(res.updateConditional('u', { n: 5 }), (e) => e.code === 'INVALID_ARGUMENT')
  })
}

test('the catalog summarises hooks like s3db.js', async () => {
  const { mkdtemp, readFile } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = await mkdtemp(join(tmpdir(), 's3db-hooks-'))
  const db = await Database.connect(`file://${dir}`)
  await db.createResource({
    name: 'hooked',
    attributes: { title: 'string' },
    hooks: { beforeInsert: [function normalizeTitle(data) { return data }, (data) => data] },
  })
  const catalog = JSON.parse(await readFile(join(dir, 's3db.json'), 'utf8'))
  // s3db.js names bound functions "bound <name>"; the arrow function is named after nothing.
  assert.deepEqual(catalog.resources.hooked.versions.v1.hooks, {
    beforeInsert: {
      count: 2,
      handlers: [
        { name: 'normalizeTitle', length: 1, type: 'function' },
        { name: null, length: 1, type: 'function' },
      ],
    },
  })
})
