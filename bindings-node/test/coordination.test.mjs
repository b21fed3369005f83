// Coordination: lock info, auto-renew and fencing; sequence batches; distributed state;
// leader election (coordinator events); catalog healing; binary content; id generators.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { fileURLToPath } from 'node:url'
import { Database, Lock, Sequence, State, Coordinator, LockLostError } from 's3db-rs'
import { backends, rejectsWith, rand } from './helpers.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Resolves once `predicate()` holds, polling every 20 ms; rejects after `ms`. */
async function waitFor(predicate, ms, what) {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

for (const backend of backends) {
  describe(`coordination on ${backend.name}`, () => {
    let db
    let url
    before(async () => {
      url = await backend.url()
      db = await Database.connect(url)
    })

    describe('locks', () => {
      it('lockInfo and isLocked follow acquire and release', async () => {
        const name = `l-${rand()}`
        assert.equal(await db.isLocked(name), false)
        assert.equal(await db.lockInfo(name), null)
        const lock = await db.lock(name, { ttl: 10 })
        assert.equal(await db.isLocked(name), true)
        const info = await db.lockInfo(name)
        assert.equal(info.holderId, db.holderId)
        assert.equal(info.fencingToken, lock.fencingToken)
        assert.equal(info.expiresAt, await lock.expiresAt())
        assert.ok(info.acquiredAt <= Date.now() && info.acquiredAt > Date.now() - 60_000)
        assert.ok(info.expiresAt > info.acquiredAt)
        assert.deepEqual(Object.keys(info).sort(), ['acquiredAt', 'expiresAt', 'fencingToken', 'holderId'])
        assert.equal(lock.ttl, 10)
        assert.equal(lock.isLost, false)
        await lock.release()
        assert.equal(await db.isLocked(name), false)
        assert.equal(await db.lockInfo(name), null)
        await rejectsWith(assert, db.isLocked('a/b'), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.lockInfo(''), 'INVALID_ARGUMENT')
      })

      it('an expired lock is not locked', async () => {
        const name = `l-${rand()}`
        await db.lock(name, { ttl: 0.05 })
        await sleep(120)
        assert.equal(await db.isLocked(name), false)
        assert.equal(await db.lockInfo(name), null)
      })

      it('autoRenew keeps a 1.5 s lock held past its ttl', async () => {
        const name = `l-${rand()}`
        let lostWith = null
        const lock = await db.lock(name, { ttl: 1.5, autoRenew: true, onLost: (e) => (lostWith = e) })
        const firstExpiry = await lock.expiresAt()
        await sleep(2300)
        assert.equal(lock.isLost, false)
        assert.equal(lostWith, null)
        assert.equal(await db.isLocked(name), true)
        assert.equal((await db.lockInfo(name)).fencingToken, lock.fencingToken)
        assert.ok((await lock.expiresAt()) > firstExpiry, 'renewed')
        await rejectsWith(assert, db.lock(name, { timeout: 0 }), 'LOCK_NOT_ACQUIRED')
        await lock.release()
        assert.equal(await db.isLocked(name), false)
      })

      it('stopRenewing lets the lock expire', async () => {
        const name = `l-${rand()}`
        const lock = await db.lock(name, { ttl: 0.6 })
        lock.autoRenew()
        lock.stopRenewing()
        await sleep(900)
        assert.equal(await db.isLocked(name), false)
        const taker = await db.lock(name)
        assert.ok(taker.fencingToken > lock.fencingToken)
        await taker.release()
      })

      it('guardedPut from a lock that lost its lease is rejected', async () => {
        const name = `l-${rand()}`
        const data = `d-${rand()}`
        const old = await db.lock(name, { ttl: 0.05 })
        assert.match(await old.guardedPut(data, { by: 'old', n: 1 }), /\S/)
        await sleep(120)
        const other = await Database.connect(url)
        const taker = await other.lock(name, { timeout: 0 })
        assert.ok(taker.fencingToken > old.fencingToken)
        await taker.guardedPut(data, { by: 'new' })
        // The old holder does not know yet: its lower token is refused by the store.
        assert.equal(old.isLost, false)
        await assert.rejects(old.guardedPut(data, { by: 'old', n: 2 }), (err) => {
          assert.ok(['LOCK_LOST', 'PRECONDITION_FAILED'].includes(err.code), err.code)
          return true
        })
        // Once it knows (a failed extend), it is refused without a request.
        await rejectsWith(assert, old.extend(10), 'LOCK_LOST')
        assert.equal(old.isLost, true)
        db.resetStats()
        await rejectsWith(assert, old.guardedPut(data, 1), 'LOCK_LOST')
        assert.equal(db.stats().put + db.stats().get, 0)
        const fenced = await db.fencedGet(data)
        assert.deepEqual(fenced.value, { by: 'new' })
        assert.equal(fenced.fencingToken, taker.fencingToken)
        await taker.release()
        await rejectsWith(assert, taker.guardedPut(data, 2), 'LOCK_LOST')
      })

      it('fencedPut and fencedGet', async () => {
        const name = `f-${rand()}`
        assert.equal(await db.fencedGet(name), null)
        const v1 = await db.fencedPut(name, { a: [1, 2] }, 5)
        const got = await db.fencedGet(name)
        assert.deepEqual(got, { value: { a: [1, 2] }, fencingToken: 5, version: v1 })
        const v2 = await db.fencedPut(name, 'same token again', 5)
        assert.notEqual(v2, v1)
        await db.fencedPut(name, null, 7)
        assert.deepEqual(await db.fencedGet(name), { value: null, fencingToken: 7, version: (await db.fencedGet(name)).version })
        await rejectsWith(assert, db.fencedPut(name, 'late', 6), 'LOCK_LOST')
        assert.equal((await db.fencedGet(name)).fencingToken, 7)
        await rejectsWith(assert, db.fencedPut(name, 1, -1), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.fencedPut(name, 1, 1.5), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.fencedPut(name, undefined, 9), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.fencedGet('a/b'), 'INVALID_ARGUMENT')
      })

      it('rejects bad auto-renew options', async () => {
        const name = `l-${rand()}`
        await rejectsWith(assert, db.lock(name, { autoRenew: 'yes' }), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.lock(name, { autoRenew: true, onLost: 'cb' }), 'INVALID_ARGUMENT')
        await rejectsWith(assert, db.lock(name, { onLost: () => {} }), 'INVALID_ARGUMENT')
        const lock = await db.lock(name)
        assert.ok(lock instanceof Lock)
        assert.throws(() => lock.autoRenew(5), (e) => e.code === 'INVALID_ARGUMENT')
        await lock.release()
      })
    })

    describe('sequences', () => {
      it('batchSize 10 hands out 1..10 with 2 requests', async () => {
        const seq = db.sequence(`s-${rand()}`, { batchSize: 10 })
        db.resetStats()
        const values = []
        for (let i = 0; i < 10; i++) values.push(await seq.next())
        assert.deepEqual(values, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        const s = db.stats()
        assert.equal(s.get + s.put, 2, JSON.stringify(s))
        assert.equal(await seq.next(), 11)
        assert.equal(db.stats().get + db.stats().put, 4)
      })

      it('batchSize with concurrent next() never repeats', async () => {
        const seq = db.sequence(`s-${rand()}`, { batchSize: 4 })
        const values = await Promise.all(Array.from({ length: 10 }, () => seq.next()))
        assert.deepEqual([...values].sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i + 1))
      })

      it('delete and listSequences', async () => {
        const a = `s-${rand()}`
        const b = `s-${rand()}`
        const sa = db.sequence(a, { start: 10 })
        const sb = db.sequence(b)
        assert.ok(!(await db.listSequences()).includes(a))
        await sa.next()
        await sa.next()
        await sb.next()
        const names = await db.listSequences()
        assert.ok(names.includes(a) && names.includes(b), names.join(','))
        assert.deepEqual(names, [...names].sort())
        await sa.delete()
        assert.ok(!(await db.listSequences()).includes(a))
        assert.ok((await db.listSequences()).includes(b))
        assert.equal(await sa.current(), null)
        assert.equal(await sa.next(), 10)
      })

      it('rejects a bad batchSize', () => {
        for (const batchSize of [-1, 1.5, 2 ** 33, 'ten']) {
          assert.throws(() => db.sequence('x', { batchSize }), (e) => e.code === 'INVALID_ARGUMENT')
        }
      })
    })

    describe('state', () => {
      it('get, set, delete, keys', async () => {
        const state = db.state(`ns-${rand()}`)
        assert.ok(state instanceof State)
        assert.equal(await state.get('k'), null)
        const version = await state.set('k', { nested: [1, 'two'] })
        assert.deepEqual(await state.get('k'), { value: { nested: [1, 'two'] }, version, expiresAt: null })
        await state.set('k2', null)
        assert.deepEqual((await state.get('k2')).value, null)
        assert.deepEqual(await state.keys(), ['k', 'k2'])
        await state.delete('k')
        await state.delete('k') // absent: fine
        assert.equal(await state.get('k'), null)
        assert.deepEqual(await state.keys(), ['k2'])
        await rejectsWith(assert, state.set('a/b', 1), 'INVALID_ARGUMENT')
        await rejectsWith(assert, state.set('k', undefined), 'INVALID_ARGUMENT')
        await rejectsWith(assert, state.set('k', 1, -5), 'INVALID_ARGUMENT')
        assert.throws(() => db.state(''), (e) => e.code === 'INVALID_ARGUMENT')
      })

      it('compareAndSwap: a stale version is not swapped and returns the current value', async () => {
        const state = db.state(`ns-${rand()}`)
        const created = await state.compareAndSwap('k', null, 'first')
        assert.equal(created.swapped, true)
        assert.equal(created.currentValue, 'first')
        const v1 = created.currentVersion
        assert.equal((await state.get('k')).version, v1)
        const again = await state.compareAndSwap('k', null, 'not absent')
        assert.deepEqual(again, { swapped: false, currentValue: 'first', currentVersion: v1 })
        const v2 = await state.set('k', 'second')
        const stale = await state.compareAndSwap('k', v1, 'stale write')
        assert.deepEqual(stale, { swapped: false, currentValue: 'second', currentVersion: v2 })
        const ok = await state.compareAndSwap('k', v2, { third: true })
        assert.equal(ok.swapped, true)
        assert.deepEqual((await state.get('k')).value, { third: true })
        const gone = await state.compareAndSwap('absent', v2, 1)
        assert.deepEqual(gone, { swapped: false, currentValue: null, currentVersion: null })
      })

      it('20 concurrent increments give 20', async () => {
        const state = db.state(`ns-${rand()}`)
        const results = await Promise.all(Array.from({ length: 20 }, () => state.increment('hits')))
        assert.equal(await state.counter('hits'), 20)
        assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i + 1))
        assert.equal(await state.increment('hits', 5), 25)
        assert.equal(await state.decrement('hits'), 24)
        assert.equal(await state.decrement('hits', 4), 20)
        await state.reset('hits')
        assert.equal(await state.counter('hits'), 0)
        await state.set('text', 'x')
        await rejectsWith(assert, state.increment('text'), 'VALIDATION')
        await rejectsWith(assert, state.increment('hits', 0.5), 'INVALID_ARGUMENT')
      })

      it('entries expire after their ttl', async () => {
        const state = db.state(`ns-${rand()}`)
        await state.set('short', 'v', 0.3)
        await state.set('long', 'v', { ttl: 60 })
        const live = await state.get('short')
        assert.equal(live.value, 'v')
        assert.ok(live.expiresAt > Date.now() && live.expiresAt <= Date.now() + 1000, String(live.expiresAt))
        await sleep(450)
        assert.equal(await state.get('short'), null)
        assert.equal((await state.get('long')).value, 'v')
        assert.equal(await state.counter('short'), 0)
        // An expired entry counts as absent for compareAndSwap(null).
        await state.set('e', 1, 0.05)
        await sleep(100)
        assert.equal((await state.compareAndSwap('e', null, 2)).swapped, true)
      })

      it('update(fn) is a read-modify-write that keeps the expiry', async () => {
        const state = db.state(`ns-${rand()}`)
        const seen = []
        const first = await state.update('doc', (cur) => {
          seen.push(cur)
          return { count: 1 }
        })
        assert.deepEqual(seen, [null])
        assert.deepEqual(first.value, { count: 1 })
        assert.equal(first.expiresAt, null)
        assert.equal((await state.get('doc')).version, first.version)
        const second = await state.update('doc', async (cur) => {
          await sleep(5)
          return { count: cur.count + 1 }
        })
        assert.deepEqual(second.value, { count: 2 })
        await state.set('ttl', 1, 30)
        const expiry = (await state.get('ttl')).expiresAt
        const bumped = await state.update('ttl', (v) => v + 1)
        assert.equal(bumped.value, 2)
        assert.equal(bumped.expiresAt, expiry)
        assert.equal((await state.get('ttl')).expiresAt, expiry)
      })

      it('concurrent updates retry on a lost race and lose nothing', async () => {
        const state = db.state(`ns-${rand()}`)
        let calls = 0
        await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            state.update('list', async (cur) => {
              calls++
              await sleep(Math.random() * 10)
              return [...(cur ?? []), i]
            })
          )
        )
        const list = (await state.get('list')).value
        assert.deepEqual([...list].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7])
        assert.ok(calls >= 8)
      })

      it('an error thrown by fn aborts update and is rethrown as is', async () => {
        const state = db.state(`ns-${rand()}`)
        await state.set('k', 1)
        const boom = new RangeError('boom')
        await assert.rejects(
          state.update('k', () => {
            throw boom
          }),
          (e) => e === boom
        )
        await assert.rejects(
          state.update('k', async () => {
            throw boom
          }),
          (e) => e === boom
        )
        assert.equal((await state.get('k')).value, 1)
        await rejectsWith(assert, state.update('k', () => undefined), 'INVALID_ARGUMENT')
        await rejectsWith(assert, state.update('k', 'not a function'), 'INVALID_ARGUMENT')
        assert.equal((await state.get('k')).value, 1)
      })
    })

    describe('coordinator', () => {
      const opts = { heartbeatInterval: 0.2 }

      function track(c) {
        const events = []
        for (const type of ['leaderChanged', 'becameLeader', 'lostLeadership', 'circuitOpened', 'circuitClosed']) {
          c.on(type, (payload) => events.push({ type, ...payload }))
        }
        return events
      }

      it('two coordinators elect exactly one leader; stopping it hands over with a higher epoch', async () => {
        const ns = `c-${rand()}`
        const a = db.coordinator(ns, opts)
        const b = (await Database.connect(url)).coordinator(ns, opts)
        assert.ok(a instanceof Coordinator)
        assert.ok(a instanceof EventEmitter)
        assert.notEqual(a.workerId, b.workerId)
        assert.equal(a.namespace, ns)
        const ea = track(a)
        const eb = track(b)
        const all = []
        a.on('event', (e) => all.push(e))
        try {
          await Promise.all([a.start(), b.start()])
          assert.equal(await a.isRunning(), true)
          const became = () => [...ea, ...eb].filter((e) => e.type === 'becameLeader')
          await waitFor(() => became().length >= 1, 5000, 'a leader')
          await sleep(1000) // several heartbeats: still one leader
          assert.equal(became().length, 1, JSON.stringify({ ea, eb }))
          const [leader, follower, fe] = ea.some((e) => e.type === 'becameLeader') ? [a, b, eb] : [b, a, ea]
          const le = leader === a ? ea : eb
          const epoch = became()[0].epoch
          assert.ok(Number.isInteger(epoch) && epoch >= 1)
          assert.equal(leader.isLeader(), true)
          assert.equal(follower.isLeader(), false)
          assert.equal(leader.fencingToken(), epoch)
          assert.equal(follower.fencingToken(), null)
          assert.deepEqual(
            { leaderId: leader.getLeader().leaderId, epoch: leader.getLeader().epoch },
            { leaderId: leader.workerId, epoch }
          )
          await waitFor(() => follower.getLeader() !== null, 3000, 'the follower to see the leader')
          assert.equal(follower.getLeader().leaderId, leader.workerId)
          assert.ok(follower.getLeader().leaseEnd > Date.now() - 1000)
          assert.ok(fe.some((e) => e.type === 'leaderChanged' && e.leaderId === leader.workerId && e.epoch === epoch))
          assert.ok(le.some((e) => e.type === 'leaderChanged' && e.leaderId === leader.workerId))
          const workers = await leader.activeWorkers()
          assert.deepEqual(workers.map((w) => w.workerId).sort(), [a.workerId, b.workerId].sort())
          for (const w of workers) {
            assert.equal(typeof w.startTime, 'number')
            assert.equal(typeof w.lastHeartbeat, 'number')
          }
          const m = leader.metrics()
          assert.ok(m.heartbeats >= 2 && m.elections >= 1, JSON.stringify(m))

          await leader.stop()
          assert.equal(await leader.isRunning(), false)
          assert.ok(le.some((e) => e.type === 'lostLeadership' && e.epoch === epoch), JSON.stringify(le))
          assert.equal(leader.isLeader(), false)
          await waitFor(() => fe.some((e) => e.type === 'becameLeader'), 5000, 'the follower to take over')
          const next = fe.find((e) => e.type === 'becameLeader')
          assert.ok(next.epoch > epoch, `${next.epoch} > ${epoch}`)
          assert.equal(follower.isLeader(), true)
          assert.equal(follower.fencingToken(), next.epoch)
          assert.ok(all.length > 0 && all.every((e) => typeof e.type === 'string'))
        } finally {
          await a.stop()
          await b.stop()
        }
        // Stopped: no more events, and stop/start are idempotent.
        const count = ea.length + eb.length
        await sleep(500)
        assert.equal(ea.length + eb.length, count)
        await a.stop()
      })

      it('restarts after stop', async () => {
        const c = db.coordinator(`c-${rand()}`, { ...opts, startupJitter: 0 })
        const events = track(c)
        await c.start()
        await c.start() // running: nothing
        await waitFor(() => events.some((e) => e.type === 'becameLeader'), 3000, 'leadership')
        await c.stop()
        await c.start()
        await waitFor(() => events.filter((e) => e.type === 'becameLeader').length === 2, 3000, 'leadership again')
        await c.stop()
        const lost = events.filter((e) => e.type === 'lostLeadership')
        assert.equal(lost.length, 2)
      })

      it('rejects bad options', () => {
        for (const o of [
          { heartbeatInterval: -1 },
          { heartbeatInterval: 0 },
          { heartbeatInterval: 1, leaseTimeout: 1 },
          { strategy: 'random' },
          { circuitBreakerThreshold: 0 },
          { circuitBreakerThreshold: 1.5 },
          { pod: 'a/b' },
          { heartbeatInterval: '1' },
        ]) {
          assert.throws(() => db.coordinator('ns', o), (e) => e.code === 'INVALID_ARGUMENT', JSON.stringify(o))
        }
        assert.throws(() => db.coordinator('a/b'), (e) => e.code === 'INVALID_ARGUMENT')
        assert.throws(() => db.coordinator('ns', 'opts'), (e) => e.code === 'INVALID_ARGUMENT')
        const c = db.coordinator('ns', { strategy: 'alphabetical', pod: 'pod-1', startupJitter: 0 })
        assert.equal(c.isLeader(), false)
        assert.equal(c.getLeader(), null)
        assert.equal(c.fencingToken(), null)
      })
    })

    describe('healing', () => {
      it('healingLog is empty on a clean store', async () => {
        assert.deepEqual(db.healingLog(), [])
        const again = await Database.connect(url)
        assert.deepEqual(again.healingLog(), [])
      })
    })

    describe('content', () => {
      it('insertWithContent, content, setContent round trip', async () => {
        const files = await db.createResource({ name: `files${rand(3)}`, attributes: { name: 'string' } })
        const bytes = Buffer.from([0, 1, 2, 250, 255, 10, 13, 0])
        const rec = await files.insertWithContent({ name: 'blob' }, bytes, 'application/x-test')
        assert.equal(rec.name, 'blob')
        const got = await files.content(rec.id)
        assert.ok(Buffer.isBuffer(got.content))
        assert.deepEqual(got, { content: bytes, contentType: 'application/x-test' })
        assert.equal((await files.get(rec.id)).name, 'blob')

        await files.setContent(rec.id, Buffer.from('hello'), 'text/plain')
        assert.deepEqual(await files.content(rec.id), { content: Buffer.from('hello'), contentType: 'text/plain' })
        await files.setContent(rec.id, new Uint8Array([7, 8]))
        assert.deepEqual(await files.content(rec.id), {
          content: Buffer.from([7, 8]),
          contentType: 'application/octet-stream',
        })
        await files.setContent(rec.id, null)
        await rejectsWith(assert, files.content(rec.id), 'NOT_FOUND')
        assert.equal((await files.get(rec.id)).name, 'blob')

        const plain = await files.insert({ name: 'no content' })
        await rejectsWith(assert, files.content(plain.id), 'NOT_FOUND')
        await files.setContent(plain.id, 'text as UTF-8 ✓', 'text/plain; charset=utf-8')
        assert.deepEqual(await files.content(plain.id), {
          content: Buffer.from('text as UTF-8 ✓'),
          contentType: 'text/plain; charset=utf-8',
        })
        const big = Buffer.alloc(300_000, 7)
        const bigRec = await files.insertWithContent({ id: 'big', name: 'big' }, big)
        assert.equal(bigRec.id, 'big')
        assert.ok((await files.content('big')).content.equals(big))

        await rejectsWith(assert, files.content('missing'), 'NOT_FOUND')
        await rejectsWith(assert, files.setContent('missing', bytes, 'text/plain'), 'NOT_FOUND')
        await rejectsWith(assert, files.insertWithContent({ id: 'big', name: 'x' }, bytes), 'ALREADY_EXISTS')
        await rejectsWith(assert, files.insertWithContent({ name: 'x' }, 42), 'INVALID_ARGUMENT')
        await rejectsWith(assert, files.insertWithContent({ name: 'x' }, bytes, 5), 'INVALID_ARGUMENT')
        await rejectsWith(assert, files.insertWithContent({ nope: 1 }, bytes), 'VALIDATION')
      })
    })

    describe('id generators', () => {
      it('incremental:ORD-0001 gives ORD-0001, ORD-0002, …', async () => {
        const orders = await db.createResource({
          name: `orders${rand(3)}`,
          attributes: { item: 'string' },
          idGenerator: 'incremental:ORD-0001',
        })
        const ids = []
        for (const item of ['a', 'b', 'c']) ids.push((await orders.insert({ item })).id)
        assert.deepEqual(ids, ['ORD-0001', 'ORD-0002', 'ORD-0003'])
        assert.equal((await orders.get('ORD-0002')).item, 'b')
        const seq = orders.idSequence()
        assert.ok(seq instanceof Sequence)
        assert.equal(await seq.current(), 4)
        const batch = await orders.insertMany([{ item: 'd' }, { item: 'e' }])
        // insertMany inserts concurrently: which item gets which id is not fixed.
        assert.deepEqual(batch.map((b) => b.id).sort(), ['ORD-0004', 'ORD-0005'])
        const withContent = await orders.insertWithContent({ item: 'f' }, Buffer.from('x'), 'text/plain')
        assert.equal(withContent.id, 'ORD-0006')
        assert.equal((await orders.insert({ id: 'manual', item: 'g' })).id, 'manual')
        // Restored from the catalog by another handle.
        const other = await (await Database.connect(url)).resource(orders.name)
        assert.equal((await other.insert({ item: 'h' })).id, 'ORD-0007')
      })

      it('other s3db.js forms', async () => {
        const big = await db.createResource({ name: `n${rand(3)}`, attributes: { x: 'string' }, idGenerator: 'incremental:1000' })
        assert.equal((await big.insert({ x: 'a' })).id, '1000')
        assert.equal((await big.insert({ x: 'b' })).id, '1001')
        const obj = await db.createResource({
          name: `o${rand(3)}`,
          attributes: { x: 'string' },
          idGenerator: { type: 'incremental', start: 5, increment: 5, prefix: 'INV-', padding: 3 },
        })
        assert.deepEqual([(await obj.insert({ x: 'a' })).id, (await obj.insert({ x: 'b' })).id], ['INV-005', 'INV-010'])
        const sized = await db.createResource({ name: `s${rand(3)}`, attributes: { x: 'string' }, idGenerator: 8 })
        assert.equal((await sized.insert({ x: 'a' })).id.length, 8)
        assert.equal(sized.idSequence(), null)
        await rejectsWith(
          assert,
          db.createResource({ name: 'bad', attributes: { x: 'string' }, idGenerator: 'sequential' }),
          'VALIDATION'
        )
      })

      it('a JS function makes the ids of records without one', async () => {
        let n = 0
        const name = `fn${rand(3)}`
        const res = await db.createResource({
          name,
          attributes: { x: 'string' },
          idGenerator: () => `custom-${++n}`,
        })
        assert.equal((await res.insert({ x: 'a' })).id, 'custom-1')
        assert.equal((await res.insert({ id: 'given', x: 'b' })).id, 'given')
        assert.equal((await res.insert({ id: null, x: 'c' })).id, 'custom-2')
        const batch = await res.insertMany([{ x: 'd' }, { x: 'e' }])
        assert.deepEqual(batch.map((b) => b.id), ['custom-3', 'custom-4'])
        assert.equal((await res.upsert({ x: 'f' })).id, 'custom-5')
        assert.equal((await res.insertWithContent({ x: 'g' }, Buffer.from('z'))).id, 'custom-6')
        // db.resource() of the same handle applies it too.
        const again = await db.resource(name)
        assert.equal((await again.insert({ x: 'h' })).id, 'custom-7')
        const asyncGen = await db.createResource({
          name: `afn${rand(3)}`,
          attributes: { x: 'string' },
          idGenerator: async (record) => `for-${record.x}`,
        })
        assert.equal((await asyncGen.insert({ x: 'q' })).id, 'for-q')
        const bad = await db.createResource({ name: `bad${rand(3)}`, attributes: { x: 'string' }, idGenerator: () => ({}) })
        await rejectsWith(assert, bad.insert({ x: 'a' }), 'INVALID_ARGUMENT')
        // Redefining without the function goes back to generated ids.
        const plain = await db.createResource({ name, attributes: { x: 'string' } })
        assert.doesNotMatch((await plain.insert({ x: 'i' })).id, /^custom-/)
      })
    })
  })
}

describe('healing of a corrupt catalog (file)', () => {
  let dir
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3db-node-heal-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('a trailing comma in s3db.json is healed and logged', async () => {
    const catalog = `{
  "version": "1",
  "s3dbVersion": "21.6.2",
  "lastUpdated": "2024-01-01T00:00:00.000Z",
  "resources": {},
}`
    // Written over the stored catalog behind the file store's back (its sidecar is stale).
    await Database.connect(`file://${dir}`)
    await writeFile(join(dir, 's3db.json'), catalog)
    const db = await Database.connect(`file://${dir}`)
    const log = db.healingLog()
    assert.ok(Array.isArray(log) && log.length > 0, JSON.stringify(log))
    assert.ok(log.every((line) => typeof line === 'string'))
    assert.deepEqual(await db.listResources(), [])
    await db.createResource({ name: 'after', attributes: { x: 'string' } })
    const again = await Database.connect(`file://${dir}`)
    assert.deepEqual(again.healingLog(), [])
    assert.deepEqual(await again.listResources(), ['after'])
  })
})

describe('process lifetime', () => {
  const lib = fileURLToPath(new URL('../lib.js', import.meta.url))

  function run(script) {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      child.stdout.on('data', (d) => (out += d))
      child.stderr.on('data', (d) => (err += d))
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`child still alive after 15 s; stdout: ${out} stderr: ${err}`))
      }, 15_000)
      child.on('exit', (code) => {
        clearTimeout(timer)
        resolve({ code, out, err })
      })
    })
  }

  it('a stopped coordinator does not keep the process alive', async () => {
    const script = `
      const { Database } = require(${JSON.stringify(lib)})
      ;(async () => {
        const db = await Database.connect('memory://life')
        const c = db.coordinator('ns', { heartbeatInterval: 0.2 })
        c.on('becameLeader', () => console.log('leader'))
        await c.start()
        await new Promise((r) => setTimeout(r, 300))
        await c.stop()
        console.log('stopped')
      })()`
    const { code, out, err } = await run(script)
    assert.equal(code, 0, err)
    assert.match(out, /leader\nstopped/)
  })

  it('an auto-renewed lock and a state update do not keep the process alive', async () => {
    const script = `
      const { Database } = require(${JSON.stringify(lib)})
      ;(async () => {
        const db = await Database.connect('memory://life')
        await db.lock('l', { ttl: 30, autoRenew: true, onLost: () => {} })
        await db.state('s').update('k', (v) => 1)
        console.log('done')
      })()`
    const { code, out, err } = await run(script)
    assert.equal(code, 0, err)
    assert.match(out, /done/)
  })
})

describe('onLost (file)', () => {
  let dir
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 's3db-node-lost-'))
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('runs once with LOCK_LOST when renewal finds the lock gone', async () => {
    const db = await Database.connect(`file://${dir}`)
    const name = `l-${rand()}`
    const calls = []
    const lock = await db.lock(name, { ttl: 0.6, autoRenew: true, onLost: (err, l) => calls.push([err, l]) })
    // Someone removes the lock object behind the holder's back.
    await rm(join(dir, 'plugin=s3db', 'locks', name), { force: true })
    await rm(join(dir, 'plugin=s3db', 'locks', `${name}.meta.json`), { force: true })
    await waitFor(() => calls.length > 0, 3000, 'onLost')
    await sleep(500)
    assert.equal(calls.length, 1)
    const [err, l] = calls[0]
    assert.ok(err instanceof LockLostError)
    assert.equal(err.code, 'LOCK_LOST')
    assert.equal(l, lock)
    assert.equal(lock.isLost, true)
    await rejectsWith(assert, lock.guardedPut('x', 1), 'LOCK_LOST')
  })
})
