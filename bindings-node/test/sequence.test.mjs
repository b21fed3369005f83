import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Database, Sequence } from 's3db-rs'
import { backends, rejectsWith, rand } from './helpers.mjs'

for (const backend of backends) {
  describe(`sequences on ${backend.name}`, () => {
    let db
    before(async () => {
      db = await Database.connect(await backend.url())
    })

    it('next, current and reset', async () => {
      const seq = db.sequence(`s-${rand()}`)
      assert.ok(seq instanceof Sequence)
      assert.equal(await seq.current(), null)
      assert.equal(await seq.next(), 1)
      assert.equal(await seq.next(), 2)
      assert.equal(await seq.current(), 3)
      await seq.reset(100)
      assert.equal(await seq.current(), 100)
      assert.equal(await seq.next(), 100)
      assert.equal(await seq.next(), 101)
    })

    it('honours start and increment', async () => {
      const name = `s-${rand()}`
      const seq = db.sequence(name, { start: 1000, increment: 10 })
      assert.equal(seq.name, name)
      assert.deepEqual([await seq.next(), await seq.next(), await seq.next()], [1000, 1010, 1020])
      const down = db.sequence(`s-${rand()}`, { start: 0, increment: -1 })
      assert.deepEqual([await down.next(), await down.next()], [0, -1])
    })

    it('next is 1 GET + 1 PUT', async () => {
      const seq = db.sequence(`s-${rand()}`)
      await seq.next()
      db.resetStats()
      await seq.next()
      assert.deepEqual(db.stats(), { get: 1, head: 0, put: 1, copy: 0, delete: 0, list: 0 })
    })

    it('concurrent next() calls never repeat a value', async () => {
      const seq = db.sequence(`s-${rand()}`)
      const values = await Promise.all(Array.from({ length: 10 }, () => seq.next()))
      assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 1))
    })

    it('rejects bad names and options', () => {
      for (const call of [
        () => db.sequence('a/b'),
        () => db.sequence(''),
        () => db.sequence(7),
        () => db.sequence('x', { increment: 0 }),
        () => db.sequence('x', { start: 1.5 }),
        () => db.sequence('x', { increment: 'one' }),
        () => db.sequence('x', { start: 2 ** 60 }),
        () => db.sequence('x', 'options'),
      ]) {
        assert.throws(call, (err) => {
          assert.equal(err.code, 'INVALID_ARGUMENT', err.message)
          assert.equal(err.name, 'InvalidArgumentError')
          return true
        })
      }
    })

    it('reset with a bad value is INVALID_ARGUMENT', async () => {
      const seq = db.sequence(`s-${rand()}`)
      await rejectsWith(assert, seq.reset(1.5), 'INVALID_ARGUMENT')
      await rejectsWith(assert, seq.reset('5'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, seq.reset(), 'INVALID_ARGUMENT')
      assert.equal(await seq.current(), null)
    })
  })
}
