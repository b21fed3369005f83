// Torture worker (Node side of tests/torture/run.sh).
//
//   node worker.mjs lock|sequence URL N LOGFILE [NAME]
//
// Appends one line per event to LOGFILE (O_APPEND, one write per line):
// lock: "<fencing_token> <pid> enter node" / "... exit node"; sequence: "<id> <pid> node".
// S3DB_NODE_LIB overrides where the binding is imported from (default: this checkout's).
import { openSync, writeSync, closeSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

const lib = process.env.S3DB_NODE_LIB
  ? pathToFileURL(process.env.S3DB_NODE_LIB).href
  : '../../bindings-node/lib.mjs'
const { Database } = await import(lib)

const [mode, url, nText, log, name = 'torture'] = process.argv.slice(2)
if (!['lock', 'sequence'].includes(mode) || !log) {
  console.error('usage: node worker.mjs lock|sequence URL N LOGFILE [NAME]')
  process.exit(2)
}
const n = Number(nText)
const db = await Database.connect(url)
const fd = openSync(log, 'a')
const append = (line) => writeSync(fd, line)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (mode === 'lock') {
  for (let i = 0; i < n; i++) {
    const lock = await db.lock(name, { ttl: 30, timeout: 600 })
    const token = lock.fencingToken
    append(`${token} ${process.pid} enter node\n`)
    await sleep(Math.random() * 2)
    append(`${token} ${process.pid} exit node\n`)
    await lock.release()
  }
} else {
  const seq = db.sequence(name)
  for (let i = 0; i < n; i++) {
    append(`${await seq.next()} ${process.pid} node\n`)
  }
}
closeSync(fd)
