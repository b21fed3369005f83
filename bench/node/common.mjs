// The workload driver shared by bench.mjs (s3db-rs through the Node binding) and s3dbjs.mjs
// (the npm package s3db.js): the same operations, sizes and records, so the numbers compare.
// An adapter supplies the calls; this module times them and counts requests.
import { readFileSync } from 'node:fs'
import { spawn } from 'node:child_process'

export function parseArgs(argv) {
  const out = { _: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const k = a.slice(2)
      const v = argv[i + 1]
      if (v === undefined || v.startsWith('--')) out[k] = true
      else { out[k] = v; i++ }
    } else out._.push(a)
  }
  return out
}

export function loadWorkload(args) {
  const here = new URL('.', import.meta.url).pathname
  const W = JSON.parse(readFileSync(args.workload || `${here}../workload.json`, 'utf8'))
  for (const k of ['n', 'c', 'budget_s', 'secret', 'batch', 'lock_cycles', 'sequence_next', 'fast_next', 'fast_batch_size', 'procs', 'proc_next']) {
    const flag = k.replace(/_/g, '-')
    if (args[flag] !== undefined) W[k] = Number(args[flag])
  }
  if (!W.secret) delete W.attributes.token
  return W
}

export function makeRecord(W, i) {
  const st = W.values.statuses
  const ci = W.values.cities
  const r = {
    name: `user-${i}`,
    email: `user${i}@example.com`,
    status: st[i % st.length],
    age: 18 + (i % 60),
    score: i * 1.5,
    active: i % 2 === 0,
    address: { city: ci[i % ci.length], zip: String(i).padStart(5, '0') },
    tags: [`t${i % 5}`, `t${i % 7}`],
    token: `tok-${i}-s3cr3t`,
  }
  if (!W.secret) delete r.token
  if (i % 3 === 0) r.note = `note ${i}`
  return r
}

export const now = () => performance.now()
const epochMs = () => performance.timeOrigin + performance.now()

export function peakRssMb() {
  try {
    const m = readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+) kB/)
    if (m) return Number(m[1]) / 1024
  } catch {}
  return process.resourceUsage().maxRSS / 1024
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[idx]
}

const KINDS = ['get', 'head', 'put', 'copy', 'delete', 'list']

function delta(after, before) {
  if (!after || !before) return null
  const d = {}
  for (const k of KINDS) d[k] = (after[k] || 0) - (before[k] || 0)
  return d
}

export function perOp(req, units) {
  if (!req) return null
  const out = {}
  let total = 0
  for (const k of KINDS) {
    total += req[k]
    if (req[k]) out[k] = req[k] / units
  }
  out.total = total / units
  return out
}

// Runs fn(i) for i in 0..count with `c` workers; returns per-call latencies (ms) and seconds.
// With a budget (seconds), stops handing out new calls once it is spent: `units` says how many ran
// (always the first `units` indexes).
export async function pool(count, c, fn, budget = Infinity) {
  const lat = new Array(count)
  let next = 0
  const t0 = now()
  const deadline = t0 + budget * 1000
  const workers = Array.from({ length: Math.max(1, Math.min(c, count)) }, async () => {
    for (;;) {
      if (next >= count || now() > deadline) return
      const i = next++
      const s = now()
      await fn(i)
      lat[i] = now() - s
    }
  })
  await Promise.all(workers)
  return { seconds: (now() - t0) / 1000, lat: lat.slice(0, next), units: next }
}

export class Recorder {
  constructor(adapter) {
    this.adapter = adapter
    this.ops = []
  }
  log(msg) {
    process.stderr.write(`  [${this.adapter.label}] ${msg}\n`)
  }
  skip(op, reason) {
    this.log(`${op}: skipped: ${reason}`)
    this.ops.push({ op, skipped: reason })
  }
  // body() returns {units, seconds, lat, note?, extra?}; requests are counted around it.
  async measure(op, unit, body) {
    const before = this.adapter.stats()
    let r
    try {
      r = await body()
    } catch (e) {
      const msg = `${e && e.code ? e.code + ': ' : ''}${e && e.message ? e.message : e}`
      this.log(`${op}: FAILED: ${msg}`)
      this.ops.push({ op, unit, error: msg.slice(0, 300) })
      return null
    }
    const requests = r.requests !== undefined ? r.requests : delta(this.adapter.stats(), before)
    const sorted = r.lat.filter((x) => x !== undefined).sort((a, b) => a - b)
    const rec = {
      op,
      unit,
      units: r.units,
      calls: sorted.length,
      seconds: r.seconds,
      ops_per_s: r.units / r.seconds,
      p50_ms: percentile(sorted, 0.5),
      p99_ms: percentile(sorted, 0.99),
      requests,
      requests_per_op: perOp(requests, r.units),
      peak_rss_mb: peakRssMb(),
      ...(r.extra || {}),
    }
    if (r.note) rec.note = r.note
    this.ops.push(rec)
    const rpo = rec.requests_per_op ? rec.requests_per_op.total.toFixed(2) : 'n/a'
    this.log(`${op}: ${rec.ops_per_s.toFixed(0)} ${unit}/s, p50 ${rec.p50_ms?.toFixed(2)} ms, p99 ${rec.p99_ms?.toFixed(2)} ms, req/${unit} ${rpo}`)
    return rec
  }
}

function chunks(arr, size) {
  const out = []
  for (let i = 0; i < arr.length; i += size) out.push(arr.slice(i, i + size))
  return out
}

// adapter: {label, language, impl, backend, url, connect(), createResource(W), insert(res, rec),
//   get, update, list, count, listPartition(res, field, value), delete, insertMany?, getMany?,
//   deleteMany?, lockCycle(name), sequence(name) -> {next()}, fastSequence?(name, batch)
//   (returns a {next()} or a string saying why not), stats() (null when not countable),
//   workerCommand(args) -> [cmd, argv], versions()}
export async function runWorkload(adapter, W, args) {
  const R = new Recorder(adapter)
  const N = W.n
  const C = W.c
  const B = W.batch
  const T = W.budget_s > 0 ? W.budget_s : Infinity
  const capped = (r, what) => (r.units < what ? `time budget ${W.budget_s} s reached: ${r.units} of ${what}` : null)
  const notes = (...xs) => xs.filter(Boolean).join('; ') || undefined
  await adapter.connect(W)
  const res = await adapter.createResource(W)
  R.log(`connected to ${adapter.backend}; N=${N} C=${C}`)
  // Warm-up, not measured: one insert, get and delete (key derivation, JIT, connections).
  const warm = await adapter.insert(res, makeRecord(W, 10 * N))
  await adapter.get(res, warm.id)
  await adapter.delete(res, warm.id)

  // Records inserted one call each; later operations work on the ones that were inserted.
  let ids = new Array(N)
  await R.measure('insert', 'record', async () => {
    const r = await pool(N, C, async (i) => {
      ids[i] = (await adapter.insert(res, makeRecord(W, i))).id
    }, T)
    return { ...r, note: capped(r, N) }
  })
  ids = ids.filter((x) => x !== undefined)
  const n = ids.length
  if (n === 0) throw new Error('nothing was inserted')
  await R.measure('get', 'record', async () => {
    const r = await pool(n, C, async (i) => {
      const rec = await adapter.get(res, ids[i])
      if (rec.name !== `user-${i}` || (W.secret && rec.token !== `tok-${i}-s3cr3t`)) throw new Error(`get ${ids[i]}: wrong record (${JSON.stringify(rec).slice(0, 200)})`)
    }, T)
    return { ...r, note: capped(r, n) }
  })
  if (adapter.getMany) {
    await R.measure('get_many', 'record', async () => {
      const parts = chunks(ids, B)
      let units = 0
      const r = await pool(parts.length, 1, async (j) => {
        const got = await adapter.getMany(res, parts[j])
        if (got !== parts[j].length) throw new Error(`get_many: ${got} of ${parts[j].length}`)
        units += got
      }, T)
      return { ...r, units, note: notes(`batches of ${B}, one batch at a time; latency per batch`, capped({ units }, n)) }
    })
  } else R.skip('get_many', 'no getMany in this build')
  await R.measure('update', 'record', async () => {
    const f = W.update.field
    const r = await pool(n, C, async (i) => {
      await adapter.update(res, ids[i], { [f]: 99 - (i % 60) })
    }, T)
    return { ...r, note: capped(r, n) }
  })
  await R.measure('list', 'record', async () => {
    const r = await pool(W.list_repeats, 1, async () => {
      const all = await adapter.list(res)
      if (all.length !== n) throw new Error(`list returned ${all.length} of ${n}`)
    }, T)
    return { ...r, units: n * r.units, note: `${r.units} call(s) listing all ${n}; latency per call` }
  })
  await R.measure('count', 'call', async () => {
    const r = await pool(W.count_repeats, 1, async () => {
      const got = await adapter.count(res)
      if (got !== n) throw new Error(`count returned ${got}, expected ${n}`)
    }, T)
    return { ...r, note: `counts ${n} records`, extra: { records: n } }
  })
  await R.measure('query', 'record', async () => {
    const values = W.values.statuses
    let got = 0
    const r = await pool(values.length, 1, async (j) => {
      const v = values[j]
      const rs = await adapter.listPartition(res, W.partition.name, W.partition.field, v)
      for (const x of rs) if (x[W.partition.field] !== v) throw new Error(`query ${v}: got ${x[W.partition.field]}`)
      got += rs.length
    }, T)
    if (r.units === values.length && got !== n) throw new Error(`query returned ${got} of ${n}`)
    return { ...r, units: got, note: `${r.units} call(s), one per ${W.partition.field} value, through partition ${W.partition.name}; latency per call` }
  })
  await R.measure('delete', 'record', async () => {
    const r = await pool(n, C, async (i) => {
      await adapter.delete(res, ids[i])
    }, T)
    return { ...r, note: capped(r, n) }
  })
  if (adapter.insertMany) {
    const ids2 = []
    await R.measure('insert_many', 'record', async () => {
      const parts = chunks(Array.from({ length: N }, (_, i) => i), B)
      const r = await pool(parts.length, 1, async (j) => {
        const got = await adapter.insertMany(res, parts[j].map((i) => makeRecord(W, N + i)))
        if (got.length !== parts[j].length) throw new Error(`insert_many stored ${got.length} of ${parts[j].length}`)
        ids2.push(...got)
      }, T)
      return { ...r, units: ids2.length, note: notes(`batches of ${B}, one batch at a time; latency per batch`, capped({ units: ids2.length }, N)) }
    })
    if (adapter.deleteMany && ids2.length) {
      await R.measure('delete_many', 'record', async () => {
        const parts = chunks(ids2, B)
        let done = 0
        const r = await pool(parts.length, 1, async (j) => {
          await adapter.deleteMany(res, parts[j])
          done += parts[j].length
        }, T)
        return { ...r, units: done, note: notes(`batches of ${B}, one batch at a time; latency per batch`, capped({ units: done }, ids2.length)) }
      })
    } else R.skip('delete_many', 'no deleteMany in this build')
  } else {
    R.skip('insert_many', 'no insertMany in this build')
    R.skip('delete_many', 'no deleteMany in this build')
  }

  await R.measure('lock', 'cycle', async () => {
    const r = await pool(W.lock_cycles, 1, async () => {
      await adapter.lockCycle('bench-lock')
    }, T)
    return { ...r, note: notes('acquire + release of one lock name, one at a time', capped(r, W.lock_cycles)) }
  })
  await R.measure('seq_next', 'id', async () => {
    const seq = adapter.sequence('bench-seq')
    const seen = []
    const r = await pool(W.sequence_next, 1, async () => {
      seen.push(Number(await seq.next()))
    }, T)
    checkIds(seen, r.units)
    return { ...r, note: notes('one at a time', capped(r, W.sequence_next)) }
  })
  const fast = adapter.fastSequence ? await adapter.fastSequence('bench-seq-fast', W.fast_batch_size) : 'no batch/fast mode in this build'
  if (typeof fast === 'string') R.skip('seq_fast', fast)
  else {
    await R.measure('seq_fast', 'id', async () => {
      const seen = []
      const r = await pool(W.fast_next, 1, async () => {
        seen.push(Number(await fast.next()))
      }, T)
      checkIds(seen, r.units)
      return { ...r, note: notes(`batch of ${W.fast_batch_size}, one at a time`, capped(r, W.fast_next)) }
    })
  }
  await R.measure('seq_procs', 'id', () => seqProcs(adapter, W))

  const result = {
    language: adapter.language,
    impl: adapter.impl,
    backend: adapter.backend,
    n: N,
    c: C,
    budget_s: W.budget_s,
    secret: Boolean(W.secret),
    versions: adapter.versions(),
    runtime: `node ${process.version}`,
    ops: R.ops,
    peak_rss_mb: peakRssMb(),
  }
  if (adapter.close) await adapter.close()
  return result
}

function checkIds(seen, expected) {
  const uniq = new Set(seen)
  if (seen.length !== expected) throw new Error(`${seen.length} ids, expected ${expected}`)
  if (uniq.size !== seen.length) throw new Error(`${seen.length - uniq.size} duplicate ids`)
}

// K workers × M next on one sequence: OS processes on shared backends, tasks in-process on
// memory:// (a memory store lives in one process). Checks that no id is handed out twice.
async function seqProcs(adapter, W) {
  const K = W.procs
  const M = W.proc_next
  const name = 'bench-seq-procs'
  let results
  let mode
  if (adapter.backend === 'memory') {
    mode = `${K} tasks in one process (memory:// is per-process)`
    results = await Promise.all(Array.from({ length: K }, () => seqWorkerLoop(adapter, name, M, 0)))
  } else {
    mode = `${K} OS processes`
    const startAt = Date.now() + (adapter.workerStartDelayMs || 1500)
    results = await Promise.all(Array.from({ length: K }, () => {
      const [cmd, argv] = adapter.workerCommand(['seq-worker', '--url', adapter.url, '--name', name, '--m', String(M), '--start-at', String(startAt), '--backend', adapter.backend])
      return runChild(cmd, argv)
    }))
  }
  const all = results.flatMap((r) => r.ids)
  const errors = results.flatMap((r) => r.errors || [])
  const dup = all.length - new Set(all).size
  const start = Math.min(...results.map((r) => r.start))
  const end = Math.max(...results.map((r) => r.end))
  const lat = results.flatMap((r) => r.lat)
  let requests = null
  if (results.every((r) => r.requests)) {
    requests = {}
    for (const k of KINDS) requests[k] = results.reduce((a, r) => a + (r.requests[k] || 0), 0)
  }
  if (adapter.backend === 'memory') requests = undefined // counted by measure() around the tasks
  const note = `${mode} × ${M} next; ${all.length} ids, ${dup} duplicates${errors.length ? `, ${errors.length} errors (${errors[0]})` : ''}`
  return { units: all.length, seconds: (end - start) / 1000, lat, note, requests, extra: { duplicates: dup, errors: errors.length, expected: K * M } }
}

export async function seqWorkerLoop(adapter, name, M, startAt) {
  const seq = adapter.sequence(name)
  const wait = startAt - epochMs()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  const before = adapter.stats()
  const ids = []
  const lat = []
  const errors = []
  const start = epochMs()
  for (let i = 0; i < M; i++) {
    const s = now()
    try {
      const v = await seq.next()
      if (v === null || v === undefined || Number.isNaN(Number(v))) throw new Error(`next returned ${v}`)
      ids.push(Number(v))
    } catch (e) {
      errors.push(String(e && e.message ? e.message : e).slice(0, 200))
    }
    lat.push(now() - s)
  }
  const end = epochMs()
  return { ids, lat, start, end, errors, requests: delta(adapter.stats(), before) }
}

function runChild(cmd, argv) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    p.stdout.on('data', (d) => (out += d))
    p.on('error', reject)
    p.on('close', (code) => {
      const line = out.trim().split('\n').pop()
      try {
        resolve(JSON.parse(line))
      } catch {
        reject(new Error(`worker exited ${code}: ${out.slice(-300)}`))
      }
    })
  })
}

export async function workerMain(adapter, args) {
  adapter.url = args.url
  adapter.backend = args.backend
  await adapter.connect(null)
  const r = await seqWorkerLoop(adapter, args.name, Number(args.m), Number(args['start-at'] || 0))
  if (adapter.close) await adapter.close()
  process.stdout.write(JSON.stringify(r) + '\n')
}
