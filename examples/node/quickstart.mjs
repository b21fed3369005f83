// Quickstart for the Node binding of s3db.
//
//   cd bindings-node && npm install        # builds the native module once
//   node examples/node/quickstart.mjs [connection-url]
//
// The URL comes from argv[2], then $S3DB_URL, else a fresh temporary directory (file://).
// Examples: memory://demo, file:///tmp/s3db-demo,
//           http://KEY:SECRET@127.0.0.1:5057/bucket/prefix, s3://KEY:SECRET@bucket/prefix
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Database, S3dbError } from '../../bindings-node/lib.mjs'

const url = process.argv[2] || process.env.S3DB_URL || `file://${mkdtempSync(join(tmpdir(), 's3db-quickstart-'))}`
// Never print credentials: show the URL without its user-info part.
const shown = url.replace(/\/\/[^/@]*@/, '//***@')

async function main() {
  const db = await Database.connect(url)
  console.log(`connected to ${shown}`)

  const users = await db.createResource({
    name: 'users',
    attributes: { name: 'string|required', email: 'string' },
  })
  console.log(`resources: ${(await db.listResources()).join(', ')}`)

  const ada = await users.insert({ name: 'Ada Lovelace', email: 'ada@example.com' })
  console.log('inserted', ada)

  console.log('got     ', await users.get(ada.id))

  const updated = await users.update(ada.id, { email: 'ada@analytical.engine' })
  console.log('updated ', updated)

  console.log(`count: ${await users.count()}`)

  try {
    await users.insert({ id: ada.id, name: 'Someone else' })
  } catch (err) {
    if (!(err instanceof S3dbError)) throw err
    console.log(`duplicate insert refused: ${err.name} (${err.code})`)
  }

  const lock = await db.lock('nightly-report', { ttl: 30, timeout: 5 })
  console.log(`lock ${lock.name}: fencing token ${lock.fencingToken}, holder ${lock.holderId}`)
  await lock.release()

  const orders = db.sequence('orders', { start: 1000 })
  const ids = [await orders.next(), await orders.next(), await orders.next()]
  console.log(`sequence ${orders.name}: ${ids.join(', ')} (next: ${await orders.current()})`)

  const s = db.stats()
  console.log(
    `requests: ${s.get} GET, ${s.head} HEAD, ${s.put} PUT, ${s.copy} COPY, ${s.delete} DELETE, ${s.list} LIST`
  )
}

main().catch((err) => {
  console.error(`quickstart failed: ${err.name} ${err.code ?? ''}: ${err.message}`)
  process.exitCode = 1
})
