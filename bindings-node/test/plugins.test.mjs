// Plugin-owned attributes (s3db.js `addPluginAttribute`) and the plugin-attributes vector.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after } from 'node:test'
import { Database } from '../lib.mjs'
import { backends, rand, rejectsWith } from './helpers.mjs'

const VECTORS =
  process.env.S3DB_VECTORS || fileURLToPath(new URL('../../tests/vectors', import.meta.url))
const temps = []
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 's3db-node-plugins-'))
  temps.push(d)
  return d
}

const BEHAVIORS = ['user-managed', 'body-overflow', 'body-only']
const SCORE = { type: 'number', optional: true }

async function withPlugins(res) {
  assert.equal((await res.addPluginAttribute('auditedBy', 'string|optional', 'audit')).auditedBy, 'pkdv')
  assert.deepEqual(await res.addPluginAttribute('score', SCORE, 'ranker'), { auditedBy: 'pkdv', score: 'p4sy' })
  return res
}

for (const backend of backends) {
  for (const behavior of BEHAVIORS) {
    test(`${backend.name} ${behavior}: plugin fields round trip, also through a connection that never registered them`, async () => {
      const url = await backend.url()
      const db = await Database.connect(url)
      const name = `pa${rand(3)}`
      const res = await withPlugins(
        await db.createResource({ name, attributes: { title: 'string', body: 'string|optional' }, behavior })
      )
      assert.deepEqual(res.pluginMap, { auditedBy: 'pkdv', score: 'p4sy' })
      const small = { id: 'small', title: 'T', auditedBy: 'ålice', score: 7.25 }
      const big = { id: 'big', title: 'T', body: 'x'.repeat(2500), auditedBy: 'bob', score: 8 }
      assert.deepEqual(await res.insert(small), small)
      assert.deepEqual(await res.insert(big), big)
      const fresh = await (await Database.connect(url)).resource(name)
      assert.deepEqual(await fresh.get('small'), small)
      assert.deepEqual(await fresh.get('big'), big)
      assert.equal((await fresh.update('small', { score: 9 })).score, 9)
      assert.equal((await res.get('small')).score, 9)
    })
  }

  test(`${backend.name}: adding the same attribute again writes nothing; errors are typed`, async () => {
    const db = await Database.connect(await backend.url())
    const res = await db.createResource({ name: `pe${rand(3)}`, attributes: { title: 'string' } })
    await res.addPluginAttribute('score', SCORE, 'ranker')
    db.resetStats()
    await res.addPluginAttribute('score', SCORE, 'ranker')
    assert.equal(db.stats().put, 0)
    await rejectsWith(assert, res.addPluginAttribute('title', 'string', 'p'), 'CONFLICT')
    await rejectsWith(assert, res.addPluginAttribute('score', 'number', 'other'), 'CONFLICT')
    await rejectsWith(assert, res.addPluginAttribute('bad', 'strng|optional', 'p'), 'VALIDATION')
    await rejectsWith(assert, res.addPluginAttribute('x', 42, 'p'), 'INVALID_ARGUMENT')
    await rejectsWith(assert, res.addPluginAttribute(undefined, 'string', 'p'), 'INVALID_ARGUMENT')
    await rejectsWith(assert, res.insert({ title: 't', score: 'high' }), 'VALIDATION')
    assert.equal(await res.removePluginAttribute('score', 'ranker'), true)
    assert.equal(await res.removePluginAttribute('score', 'ranker'), false)
    assert.deepEqual(res.pluginMap, {})
  })
}

function putObject(dir, key, body, metadata, contentType) {
  const path = join(dir, key)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, body)
  const sidecar = {
    metadata,
    contentType,
    etag: 'e'.repeat(32),
    lastModified: '2024-01-15T12:00:00.000Z',
    size: body.length,
    contentLength: body.length,
    compressed: false,
  }
  writeFileSync(`${path}.meta.json`, JSON.stringify(sidecar))
}

test('plugin-attributes vector: records read back and inserts store what s3db.js stored', async () => {
  const v = JSON.parse(readFileSync(join(VECTORS, 'plugin-attributes.json'), 'utf8'))
  const catalog = readFileSync(join(VECTORS, 'plugin-attributes.s3db.json'))
  const records = v.objects.filter((o) => o.key.startsWith('resource='))
  assert.equal(records.length, 6)
  let reads = 0
  let writes = 0
  for (const o of records) {
    const [, resource, id] = /^resource=([^/]+)\/data\/id=(.+)$/.exec(o.key)
    const behavior = resource.replace(/^pa-/, '')
    const inserted = v.steps.find((s) => s.label === `${behavior}: insert ${id}`).result
    const body = Buffer.from(o.body || '', 'utf8')

    // Read: the stored object as s3db.js left it.
    const readDir = tempDir()
    putObject(readDir, 's3db.json', catalog, {}, 'application/json')
    putObject(readDir, o.key, body, o.metadata, o.contentType)
    const reader = await withPlugins(await (await Database.connect(`file://${readDir}`)).resource(resource))
    const want = Object.fromEntries(Object.entries(inserted).filter(([k]) => !k.startsWith('$')))
    assert.deepEqual(await reader.get(id), want, o.key)
    reads++

    // Write: the same record into the same catalog gives the same bytes (the version tag
    // aside: this engine versions the catalog at addPluginAttribute, s3db.js at its upload).
    const writeDir = tempDir()
    putObject(writeDir, 's3db.json', catalog, {}, 'application/json')
    const writer = await withPlugins(await (await Database.connect(`file://${writeDir}`)).resource(resource))
    await writer.insert(want)
    const sidecar = JSON.parse(readFileSync(join(writeDir, `${o.key}.meta.json`), 'utf8'))
    const current = JSON.parse(readFileSync(join(writeDir, 's3db.json'), 'utf8')).resources[resource].currentVersion
    assert.deepEqual(sidecar.metadata, { ...o.metadata, _v: current }, o.key)
    const ours = readFileSync(join(writeDir, o.key), 'utf8')
    assert.equal(ours, (o.body || '').replace('"_v":"v1"', `"_v":"${current}"`), `${o.key} body`)
    writes++
  }
  assert.deepEqual([reads, writes], [6, 6])
})
