// The benchmark workload on the npm package s3db.js (the reference), installed by bench/run.sh
// into bench/node/s3dbjs/node_modules; needs Node >= 24.
// Usage: node s3dbjs.mjs --url URL --backend memory|file|versitygw [--n N --c C] --out FILE
// URLs are s3db-rs style (memory://bucket/prefix, file:///dir, http://KEY:SECRET@host:port/bucket/prefix).
import { writeFileSync, readFileSync } from 'node:fs'
import { parseArgs, loadWorkload, runWorkload, workerMain } from './common.mjs'

const here = new URL('.', import.meta.url).pathname
let S3db, PluginStorage, IncrementalSequence, parseIncrementalConfig, version
try {
  const base = `${here}s3dbjs/node_modules/s3db.js/`
  ;({ S3db } = await import(`${base}dist/lite.js`))
  ;({ PluginStorage } = await import(`${base}dist/plugins/concerns/plugin-storage.js`))
  ;({ IncrementalSequence, parseIncrementalConfig } = await import(`${base}dist/concerns/incremental-sequence.js`))
  version = JSON.parse(readFileSync(`${base}package.json`, 'utf8')).version
} catch (e) {
  console.error(`s3db.js is not installed in bench/node/s3dbjs (run bench/run.sh): ${e.message}`)
  process.exit(3)
}

const KIND = {
  GetObjectCommand: 'get',
  HeadObjectCommand: 'head',
  PutObjectCommand: 'put',
  CopyObjectCommand: 'copy',
  DeleteObjectCommand: 'delete',
  DeleteObjectsCommand: 'delete',
  ListObjectsV2Command: 'list',
}

// s3db-rs URLs → s3db.js connection strings: the same bucket/prefix layout.
function connectionString(url) {
  if (url.startsWith('memory://') || url.startsWith('file://')) return url
  return url // http(s)://KEY:SECRET@host:port/bucket/prefix is s3db.js syntax too
}

class S3dbJsAdapter {
  constructor() {
    this.label = 's3db.js'
    this.language = 'node'
    this.impl = 's3db.js'
    this.counts = { get: 0, head: 0, put: 0, copy: 0, delete: 0, list: 0 }
    this.countable = false
    this.workerStartDelayMs = 2500
  }
  versions() {
    return { 's3db.js': version }
  }
  // Counts requests at the storage layer: the memory/file storage objects, or an AWS SDK
  // middleware (per attempt, after retries) for S3.
  instrument() {
    const client = this.db.client
    const c = this.counts
    if (client.storage && ['MemoryClient', 'FileSystemClient'].includes(client.constructor.name)) {
      const st = client.storage
      const wrap = (m, kind) => {
        const orig = st[m]
        if (typeof orig !== 'function' || orig.__benchWrapped) return
        const f = function (...a) {
          c[kind]++
          return orig.apply(this, a)
        }
        f.__benchWrapped = true
        st[m] = f
      }
      wrap('put', 'put')
      wrap('get', 'get')
      wrap('head', 'head')
      wrap('exists', 'head')
      wrap('copy', 'copy')
      wrap('delete', 'delete')
      wrap('deleteMultiple', 'delete')
      wrap('list', 'list')
      this.countable = true
    } else if (client.client && client.client.middlewareStack) {
      client.client.middlewareStack.add(
        (next, context) => async (a) => {
          const k = KIND[context.commandName]
          if (k) c[k]++
          return next(a)
        },
        { step: 'deserialize', name: 'benchRequestCounter', priority: 'low' },
      )
      this.countable = true
    }
  }
  async connect(W) {
    const opts = {
      connectionString: connectionString(this.url),
      logLevel: 'silent',
      // retries 0, as 21.6.2 needs against an S3 server. Concurrency raised from its default
      // 10: with 10, C=16 concurrent deletes on S3 deadlock in deleteObjects (a pool slot waits
      // for nested exists() calls) until the pool's 30 s timeout; 32 deletes took 181 s on moto.
      executorPool: { retries: 0, concurrency: Math.max(100, 4 * (W ? W.c : 16)) },
    }
    if (W) opts.passphrase = W.passphrase
    if (this.backend === 'versitygw') opts.clientOptions = { httpClientOptions: { useReckerHandler: false } }
    this.db = new S3db(opts)
    await this.db.connect()
    this.instrument()
    this.plugin = new PluginStorage(this.db.client, 'bench')
  }
  async createResource(W) {
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
    return r.length
  }
  async insertMany(res, recs) {
    const r = await res.insertMany(recs)
    return r.map((x) => x.id)
  }
  async deleteMany(res, ids) {
    await res.deleteMany(ids)
  }
  async lockCycle(name) {
    const h = await this.plugin.acquireLock(name, { ttl: 30, timeout: 0 })
    if (!h) throw new Error('lock not acquired')
    await this.plugin.releaseLock(h)
  }
  sequence(name) {
    const s = new IncrementalSequence({ client: this.db.client, resourceName: 'bench', config: parseIncrementalConfig('incremental'), logger: {} })
    return { next: () => s.nextValue(name) }
  }
  fastSequence(name, batch) {
    const cfg = parseIncrementalConfig({ type: 'incremental', mode: 'fast', batchSize: batch })
    const s = new IncrementalSequence({ client: this.db.client, resourceName: 'bench', config: cfg, logger: {} })
    return { next: () => s.nextValueFast(name) }
  }
  stats() {
    return this.countable ? { ...this.counts } : null
  }
  workerCommand(argv) {
    return [process.execPath, [new URL(import.meta.url).pathname, ...argv]]
  }
  async close() {
    await this.db.disconnect()
  }
}

const args = parseArgs(process.argv.slice(2))
const adapter = new S3dbJsAdapter()
if (args._[0] === 'seq-worker') {
  await workerMain(adapter, args)
  process.exit(0)
}
const W = loadWorkload(args)
adapter.url = args.url
adapter.backend = args.backend
const result = await runWorkload(adapter, W, args)
if (args.out) writeFileSync(args.out, JSON.stringify(result, null, 1))
else console.log(JSON.stringify(result))
process.exit(0)
