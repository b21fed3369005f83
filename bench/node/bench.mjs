// The benchmark workload on s3db-rs through the Node binding (bindings-node, built by
// `npm run build` there). Usage: node bench.mjs --url URL --backend memory|file|versitygw [--n N --c C] --out FILE
import { writeFileSync, readFileSync } from 'node:fs'
import { parseArgs, loadWorkload, runWorkload, workerMain, peakRssMb } from './common.mjs'

const here = new URL('.', import.meta.url).pathname
const { Database } = await import(`${here}../../bindings-node/lib.mjs`)
const pkg = JSON.parse(readFileSync(`${here}../../bindings-node/package.json`, 'utf8'))

class NodeAdapter {
  constructor() {
    this.label = 'node'
    this.language = 'node'
    this.impl = 's3db-rs'
    this.workerStartDelayMs = 1500
  }
  versions() {
    return { 's3db-rs': pkg.version }
  }
  async connect(W) {
    this.db = await Database.connect(this.url, W ? { passphrase: W.passphrase } : undefined)
  }
  createResource(W) {
    return this.db.createResource({ name: W.resource, attributes: W.attributes, partitions: W.partitions })
  }
  insert(res, rec) {
    return res.insert(rec)
  }
  get(res, id) {
    return res.get(id)
  }
  update(res, id, changes) {
    return res.update(id, changes)
  }
  list(res) {
    return res.list()
  }
  count(res) {
    return res.count()
  }
  listPartition(res, partition, field, value) {
    return res.list({ partition, partitionValues: { [field]: value } })
  }
  delete(res, id) {
    return res.delete(id)
  }
  async getMany(res, ids) {
    const r = await res.getMany(ids)
    return r.found.length
  }
  async insertMany(res, recs) {
    const r = await res.insertMany(recs)
    const bad = r.find((x) => x.error)
    if (bad) throw new Error(`insertMany: ${bad.error.code}: ${bad.error.message}`)
    return r.map((x) => x.id)
  }
  async deleteMany(res, ids) {
    const r = await res.deleteMany(ids)
    const bad = r.find((x) => x.error)
    if (bad) throw new Error(`deleteMany: ${bad.error.code}: ${bad.error.message}`)
  }
  async lockCycle(name) {
    const l = await this.db.lock(name, { ttl: 30, timeout: 0 })
    await l.release()
  }
  sequence(name) {
    return this.db.sequence(name)
  }
  // Batch (fast) mode, if this build has it: proven by a second next() that sends no request.
  async fastSequence(name, batch) {
    let seq
    try {
      seq = this.db.sequence(name, { batchSize: batch })
    } catch (e) {
      return `sequence option batchSize refused: ${e.message}`
    }
    const a = this.db.stats()
    await seq.next()
    const b = this.db.stats()
    await seq.next()
    const c = this.db.stats()
    const sent = (x, y) => Object.keys(x).reduce((s, k) => s + (y[k] - x[k]), 0)
    if (sent(b, c) > 0) return `no batch/fast mode in this build (sequence option batchSize ignored: next() after the first sent ${sent(b, c)} requests)`
    void a
    return seq
  }
  stats() {
    return this.db.stats()
  }
  workerCommand(argv) {
    return [process.execPath, [new URL(import.meta.url).pathname, ...argv]]
  }
}

const args = parseArgs(process.argv.slice(2))
const adapter = new NodeAdapter()
if (args._[0] === 'seq-worker') {
  await workerMain(adapter, args)
  process.exit(0)
}
if (args._[0] === 'stream') {
  const W = loadWorkload(args)
  const db = await Database.connect(args.url, { passphrase: W.passphrase })
  const res = await db.resource(W.resource)
  const rssBefore = process.memoryUsage().rss / 1048576
  const t0 = performance.now()
  let records = 0
  let cursor = null
  for (;;) {
    const page = await res.page({ size: 1000, cursor })
    records += page.items.length
    cursor = page.cursor
    if (!cursor) break
  }
  const seconds = (performance.now() - t0) / 1000
  console.log(JSON.stringify({ language: 'node', records, seconds, records_per_s: records / seconds, rss_before_mb: rssBefore, peak_rss_mb: peakRssMb(), method: 'page({size: 1000}) loop' }))
  process.exit(0)
}
const W = loadWorkload(args)
adapter.url = args.url
adapter.backend = args.backend
const result = await runWorkload(adapter, W, args)
if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 1))
else console.log(JSON.stringify(result))
process.exit(0)
