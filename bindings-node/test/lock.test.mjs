import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import { Database, Lock } from 's3db-rs'
import { backends, rejectsWith, rand } from './helpers.mjs'

for (const backend of backends) {
  describe(`locks on ${backend.name}`, () => {
    let db
    let url
    before(async () => {
      url = await backend.url()
      db = await Database.connect(url)
    })

    it('exposes name, fencing token and holder id', async () => {
      const name = `l-${rand()}`
      const lock = await db.lock(name, { ttl: 10, timeout: 0 })
      assert.ok(lock instanceof Lock)
      assert.equal(lock.name, name)
      assert.equal(typeof lock.fencingToken, 'number')
      assert.ok(lock.fencingToken >= 1)
      assert.equal(typeof lock.holderId, 'string')
      assert.equal(lock.holderId, db.holderId)
      assert.ok((await lock.expiresAt()) > Date.now())
      await lock.release()
      await lock.release() // twice is a no-op
    })

    it('a second lock with timeout 0 is LOCK_NOT_ACQUIRED', async () => {
      const name = `l-${rand()}`
      const first = await db.lock(name, { ttl: 30, timeout: 0 })
      await rejectsWith(assert, db.lock(name, { ttl: 30, timeout: 0 }), 'LOCK_NOT_ACQUIRED')
      const other = await Database.connect(url)
      assert.notEqual(other.holderId, db.holderId)
      await rejectsWith(assert, other.lock(name, { timeout: 0.2 }), 'LOCK_NOT_ACQUIRED')
      await first.release()
      const second = await db.lock(name, { timeout: 0 })
      await second.release()
    })

    it('waits up to timeout for a held lock', async () => {
      const name = `l-${rand()}`
      const first = await db.lock(name, { ttl: 30 })
      setTimeout(() => first.release(), 150)
      const second = await db.lock(name, { timeout: 5 })
      assert.ok(second.fencingToken > first.fencingToken)
      await second.release()
    })

    it('fencing tokens increase', async () => {
      const name = `l-${rand()}`
      let last = 0
      for (let i = 0; i < 4; i++) {
        const lock = await db.lock(name)
        assert.ok(lock.fencingToken > last, `${lock.fencingToken} > ${last}`)
        last = lock.fencingToken
        await lock.release()
      }
    })

    it('an expired lock is taken over; the old handle is LOCK_LOST', async () => {
      const name = `l-${rand()}`
      const old = await db.lock(name, { ttl: 0.05 })
      await new Promise((r) => setTimeout(r, 120))
      const taker = await db.lock(name, { timeout: 0 })
      assert.ok(taker.fencingToken > old.fencingToken)
      await rejectsWith(assert, old.extend(10), 'LOCK_LOST')
      await rejectsWith(assert, old.release(), 'LOCK_LOST')
      await taker.extend(10)
      await taker.release()
      await rejectsWith(assert, taker.extend(10), 'LOCK_LOST')
    })

    it('withLock runs fn, returns its value and releases', async () => {
      const name = `l-${rand()}`
      const seen = []
      const out = await db.withLock(name, { ttl: 10 }, async (lock) => {
        seen.push(lock.fencingToken)
        await rejectsWith(assert, db.lock(name), 'LOCK_NOT_ACQUIRED')
        return 'done'
      })
      assert.equal(out, 'done')
      const after = await db.lock(name)
      assert.ok(after.fencingToken > seen[0])
      await after.release()
      assert.equal(await db.withLock(name, (lock) => lock.name), name)
    })

    it('withLock releases even when fn throws', async () => {
      const name = `l-${rand()}`
      const boom = new Error('boom')
      await assert.rejects(
        db.withLock(name, { ttl: 30 }, async () => {
          throw boom
        }),
        (err) => err === boom
      )
      await assert.rejects(
        db.withLock(name, { ttl: 30 }, () => {
          throw boom
        }),
        (err) => err === boom
      )
      const lock = await db.lock(name, { timeout: 0 })
      await lock.release()
    })

    it('withLock does not run fn when the lock is held', async () => {
      const name = `l-${rand()}`
      const held = await db.lock(name)
      let ran = false
      await rejectsWith(assert, db.withLock(name, { timeout: 0 }, () => { ran = true }), 'LOCK_NOT_ACQUIRED')
      assert.equal(ran, false)
      await held.release()
    })

    it('rejects bad names, options and callbacks', async () => {
      await rejectsWith(assert, db.lock('a/b'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock(''), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock(5), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock('x', { ttl: -1 }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock('x', { ttl: Number.NaN }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock('x', { timeout: Infinity }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock('x', { ttl: '10' }), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.lock('x', 'ttl'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, db.withLock('x', {}, 'not a function'), 'INVALID_ARGUMENT')
      const lock = await db.lock(`l-${rand()}`)
      await rejectsWith(assert, lock.extend('10'), 'INVALID_ARGUMENT')
      await rejectsWith(assert, lock.extend(-5), 'INVALID_ARGUMENT')
      await lock.release()
    })

    it('counts requests: acquire at most 2, release 1', async () => {
      const name = `l-${rand()}`
      db.resetStats()
      const lock = await db.lock(name)
      const acquire = db.stats()
      assert.ok(acquire.get + acquire.put + acquire.head <= 2, JSON.stringify(acquire))
      db.resetStats()
      await lock.release()
      assert.equal(db.stats().put, 1)
      assert.equal(db.stats().get, 0)
    })
  })
}
