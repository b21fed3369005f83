// s3db.js 21.6.2 vectors through the binding (tests/vectors, or $S3DB_VECTORS).
//
// Read: a file:// store laid out as s3db.js's FileSystemClient lays it out (the body at
// `<dir>/<key>`, the sidecar `<dir>/<key>.meta.json`) holds a scenario's `s3db.json` and every
// object s3db.js stored; each record must read back as the last insert/update s3db.js returned.
// Write: inserting what s3db.js returned (without the id) into a fresh store with the same
// catalog must store exactly the metadata (and body) s3db.js stored.
import { describe, it, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Database } from 's3db-rs'

const VECTORS =
  process.env.S3DB_VECTORS || fileURLToPath(new URL('../../tests/vectors', import.meta.url))
const SCENARIOS = ['arrays', 'nested', 'ip', 'unicode']
const WRITES = ['insert', 'update', 'replace', 'patch']

const temps = []
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true })
})

function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 's3db-node-vectors-'))
  temps.push(d)
  return d
}

function load(name) {
  return JSON.parse(readFileSync(join(VECTORS, name), 'utf8'))
}

function bodyOf(o) {
  return o.bodyEncoding === 'base64' ? Buffer.from(o.body || '', 'base64') : Buffer.from(o.body || '', 'utf8')
}

/** Writes one object as s3db.js's FileSystemClient does. */
function putObject(dir, key, body, metadata, contentType) {
  const path = join(dir, key)
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, body)
  const sidecar = {
    metadata,
    contentType,
    etag: 'a'.repeat(24) + body.length.toString(16).padStart(8, '0'),
    lastModified: '2024-01-15T12:00:00.000Z',
    size: body.length,
    contentLength: body.length,
    compressed: false,
  }
  writeFileSync(`${path}.meta.json`, JSON.stringify(sidecar))
}

function storeWithCatalog(scenario) {
  const dir = tempDir()
  putObject(dir, 's3db.json', readFileSync(join(VECTORS, `${scenario}.s3db.json`)), {}, 'application/json')
  return dir
}

function recordPart(key) {
  const m = /^resource=([^/]+)\/data\/id=([^/]+)$/.exec(key)
  return m ? { resource: m[1], id: m[2] } : null
}

/** Steps with the resource each acted on: a label prefix (`"objdef: insert o1"`) is bound to
 * the resource created just before its first use (as core/tests/conformance.rs does). */
function stepsByResource(steps) {
  const out = []
  const bound = new Map()
  let current = null
  let pending = false
  for (const s of steps) {
    const label = s.label || ''
    if (label.includes('createResource')) {
      current = s.input?.name ?? current
      pending = true
      continue
    }
    const at = label.indexOf(': ')
    const prefix = at >= 0 ? label.slice(0, at) : ''
    if (pending) {
      bound.set(prefix, current)
      pending = false
    }
    out.push({ resource: bound.has(prefix) ? bound.get(prefix) : current, step: s })
  }
  return out
}

const isWrite = (label) => WRITES.some((w) => label.includes(w))

function writesOf(steps, resource, id) {
  return stepsByResource(steps).filter(
    ({ resource: r, step }) => (r === null || r === resource) && isWrite(step.label || '') && step.result?.id === id
  )
}

/** `{"$undefined": true}` and null stand for absent values. */
function stripUndefined(v) {
  if (Array.isArray(v)) return v.map(stripUndefined)
  if (v && typeof v === 'object') {
    const out = {}
    for (const [k, x] of Object.entries(v)) {
      if (x === null || (x && typeof x === 'object' && !Array.isArray(x) && '$undefined' in x)) continue
      out[k] = stripUndefined(x)
    }
    return out
  }
  return v
}

/** What s3db.js returned, adjusted for what it cannot read back itself (docs/compat.md):
 * bookkeeping keys, the strings "null"/"undefined" (read as absent), and string fields holding
 * JSON text (returned parsed by s3db.js). */
function comparable(expected, ours) {
  const e = stripUndefined(expected)
  for (const k of Object.keys(e)) {
    const v = e[k]
    if (k.startsWith('_') || k.startsWith('$') || v === 'null' || v === 'undefined') {
      delete e[k]
      continue
    }
    const mine = ours[k]
    if (typeof mine === 'string' && typeof v === 'string' && v.replace(/^"+|"+$/g, '') === mine) e[k] = mine
    if (typeof mine === 'string' && v && typeof v === 'object') {
      try {
        assert.deepStrictEqual(JSON.parse(mine), v)
        e[k] = mine
      } catch {
        // not the same JSON: leave it to fail the comparison
      }
    }
  }
  return e
}

/** Deep equality; numbers within a relative 1e-9. */
function same(a, b) {
  if (typeof a === 'number' && typeof b === 'number') {
    return a === b || Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b))
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]))
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && same(a[k], b[k]))
  }
  return a === b
}

/** Whether attribute `name` of a resource is a plain string field in the catalog. */
function isStringField(catalog, resource, name) {
  const res = catalog.resources[resource]
  const def = res.versions[res.currentVersion].attributes[name]
  const base = typeof def === 'string' ? def.split('|')[0].trim() : def && typeof def === 'object' ? def.type : null
  return base === 'string'
}

describe('s3db.js vectors through the binding', () => {
  for (const scenario of SCENARIOS) {
    it(`${scenario}: every stored record reads back as s3db.js returned it`, async () => {
      const v = load(`${scenario}.json`)
      const dir = storeWithCatalog(scenario)
      const records = []
      for (const o of v.objects) {
        if (o.key === 's3db.json') continue
        putObject(dir, o.key, bodyOf(o), o.metadata, o.contentType)
        const part = recordPart(o.key)
        if (part) records.push(part)
      }
      const db = await Database.connect(`file://${dir}`)
      let checked = 0
      for (const { resource, id } of records) {
        const writes = writesOf(v.steps, resource, id)
        if (writes.length === 0) continue
        const expected = writes[writes.length - 1].step.result
        const ours = await (await db.resource(resource)).get(id)
        const want = comparable(expected, ours)
        assert.ok(
          same(stripUndefined(ours), want),
          `${scenario} ${resource}/${id}:\n  ours    ${JSON.stringify(ours)}\n  s3db.js ${JSON.stringify(want)}`
        )
        checked++
      }
      // every record of these scenarios was written by a recorded step: none is left unchecked
      assert.equal(checked, records.length, `${scenario}: ${checked} of ${records.length} records checked`)
      assert.ok(checked >= 1, `${scenario}: no record checked`)
    })

    it(`${scenario}: inserting what s3db.js returned stores the metadata s3db.js stored`, async () => {
      const v = load(`${scenario}.json`)
      const catalog = load(`${scenario}.s3db.json`)
      let checked = 0
      for (const o of v.objects) {
        const part = recordPart(o.key)
        if (!part) continue
        const writes = writesOf(v.steps, part.resource, part.id)
        // only records written once (by their insert): the stored object is that insert's
        if (writes.length !== 1 || !writes[0].step.label.includes('insert')) continue
        const input = stripUndefined(writes[0].step.result)
        delete input.id
        for (const [k, x] of Object.entries(input)) {
          if (k.startsWith('$') || k.startsWith('_') || x === 'null' || x === 'undefined') delete input[k]
          else if (x && typeof x === 'object' && isStringField(catalog, part.resource, k)) input[k] = JSON.stringify(x)
        }
        const dir = storeWithCatalog(scenario)
        const db = await Database.connect(`file://${dir}`)
        const res = await db.resource(part.resource)
        const rec = await res.insert(input)
        assert.deepEqual(await res.listIds(), [rec.id])
        const key = `resource=${part.resource}/data/id=${rec.id}`
        const sidecar = JSON.parse(readFileSync(join(dir, `${key}.meta.json`), 'utf8'))
        // s3db.js stores "undefined"/"null" for absent optionals; the engine stores nothing
        const want = Object.fromEntries(
          Object.entries(o.metadata).filter(([, x]) => x !== 'undefined' && x !== 'null')
        )
        assert.deepEqual(sidecar.metadata, want, `${scenario} ${o.key}`)
        assert.deepEqual(readFileSync(join(dir, key)), bodyOf(o), `${scenario} ${o.key} body`)
        checked++
      }
      assert.ok(checked >= 1, `${scenario}: no write checked`)
    })
  }
})
