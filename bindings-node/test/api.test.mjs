// The package surface: CommonJS and ESM entry points, error classes, credential hygiene.
import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import * as esm from 's3db-rs'
import s3dbDefault, {
  Database,
  S3dbError,
  NotFoundError,
  ErrorCodes,
  InvalidArgumentError,
} from 's3db-rs'
import { rand } from './helpers.mjs'

const require = createRequire(import.meta.url)

describe('package', () => {
  it('require and import give the same classes', () => {
    const cjs = require('s3db-rs')
    const byPath = require('..')
    assert.equal(cjs.Database, Database)
    assert.equal(byPath.Database, Database)
    assert.equal(s3dbDefault.Database, Database)
    assert.equal(esm.NotFoundError, NotFoundError)
  })

  it('has an error class per code', () => {
    assert.deepEqual(ErrorCodes, [
      'NOT_FOUND',
      'ALREADY_EXISTS',
      'PRECONDITION_FAILED',
      'CONFLICT',
      'VALIDATION',
      'INVALID_ARGUMENT',
      'LOCK_NOT_ACQUIRED',
      'LOCK_LOST',
      'CORRUPT',
      'STORAGE',
      'OUTCOME_UNKNOWN',
    ])
    for (const code of ErrorCodes) {
      const name = code.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase()) + 'Error'
      const cls = esm[name]
      assert.equal(typeof cls, 'function', name)
      const e = new cls('msg')
      assert.ok(e instanceof S3dbError)
      assert.ok(e instanceof Error)
      assert.equal(e.code, code)
      assert.equal(e.name, name)
      assert.equal(e.message, 'msg')
      assert.match(String(e.stack), new RegExp(`^${name}: msg`))
    }
  })

  it('engine errors are instances of their class', async () => {
    const db = await Database.connect(`memory://api-${rand()}`)
    const r = await db.createResource({ name: 'r', attributes: { a: 'string' } })
    const err = await r.get('missing').catch((e) => e)
    assert.ok(err instanceof NotFoundError)
    assert.ok(err instanceof S3dbError)
    assert.equal(err.code, 'NOT_FOUND')
    assert.doesNotMatch(err.message, /^\[s3db:/)
    assert.match(err.message, /missing/)
  })

  it('ValidationError carries details (an empty list by default)', () => {
    const { ValidationError } = esm
    assert.deepEqual(new ValidationError('m').details, [])
    const details = [{ field: 'f', rule: 'type', expected: 'string', actual: '1' }]
    const e = new ValidationError('m', { details })
    assert.deepEqual(e.details, details)
    assert.equal(e.code, 'VALIDATION')
    assert.equal(new NotFoundError('m').details, undefined)
  })

  it('details survive messages with newlines and credentials stay out of them', async () => {
    const db = await Database.connect(`memory://api-${rand()}`)
    const r = await db.createResource({ name: 'r', attributes: { a: 'number' } })
    const err = await r.insert({ a: 'line one\nline two' }).catch((e) => e)
    assert.equal(err.code, 'VALIDATION')
    assert.equal(err.details.length, 1)
    assert.equal(err.details[0].field, 'a')
    assert.equal(err.details[0].actual, JSON.stringify('line one\nline two'))
    assert.doesNotMatch(err.message, /\[\{/)
  })

  it('handles cannot be constructed directly', () => {
    assert.throws(() => new Database({}), InvalidArgumentError)
    assert.throws(() => new esm.Resource({}), InvalidArgumentError)
    assert.throws(() => new esm.Lock({}), InvalidArgumentError)
    assert.throws(() => new esm.Sequence({}), InvalidArgumentError)
  })

  it('never puts credentials into error messages', async () => {
    const secret = 'Sup3rS3cretValue'
    const cases = [
      [`ftp://AKIAKEYID:${secret}@example.com/bucket`, 'INVALID_ARGUMENT'],
      [`http://AKIAKEYID:${secret}@127.0.0.1:1/bucket/p`, 'STORAGE'],
      [`http://AKIAKEYID@127.0.0.1:1/bucket/p`, 'INVALID_ARGUMENT'],
      [`http://AKIAKEYID:${encodeURIComponent('s/cr+t=' + secret)}@127.0.0.1:1/bucket`, 'STORAGE'],
    ]
    for (const [url, code] of cases) {
      const err = await Database.connect(url).then(
        () => null,
        (e) => e
      )
      if (err === null) continue // an unreachable endpoint that nevertheless connected: nothing to check
      assert.ok(err instanceof S3dbError, String(err))
      if (code) assert.equal(err.code, code, err.message)
      for (const text of [err.message, String(err.stack)]) {
        assert.ok(!text.includes(secret), `secret leaked: ${text}`)
        assert.ok(!text.includes(encodeURIComponent(secret)), `secret leaked: ${text}`)
      }
    }
  })
})
