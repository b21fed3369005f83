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
import { Database, S3dbError, ValidationError } from '../../bindings-node/lib.mjs'

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
    await users.insert({ id: ada.id, name: 'Someone else', email: 'else@example.com' })
  } catch (err) {
    if (!(err instanceof S3dbError)) throw err
    console.log(`duplicate insert refused: ${err.name} (${err.code})`)
  }

  // The s3db.js data model: typed attributes (required unless |optional), behaviors,
  // timestamps, partitions.
  const orders = await db.createResource({
    name: 'node_orders',
    attributes: {
      customer: 'string|min:2',
      status: 'string',
      total: 'money',
      items: { type: 'array', items: 'string' },
      shipTo: { city: 'string', zip: 'string|optional' },
      note: 'string|optional',
    },
    behavior: 'body-overflow',
    timestamps: true,
    partitions: { byStatus: { fields: { status: 'string' } } },
  })
  const batch = await orders.insertMany([
    { customer: 'Ada', status: 'paid', total: 42.5, items: ['loom card', 'gear'], shipTo: { city: 'London' } },
    { customer: 'Grace', status: 'open', total: 7, items: ['bug'], shipTo: { city: 'Arlington' } },
    { customer: 'Alan', status: 'paid', total: 99.99, items: ['tape'], shipTo: { city: 'London', zip: 'NW1' } },
    { customer: 'X', status: 'paid', total: 'lots', items: [], shipTo: { city: 'Nowhere' } },
  ])
  for (const item of batch) {
    console.log(item.error ? `order ${item.index} refused: ${item.error.code}` : `order ${item.index} -> ${item.id}`)
  }
  const paid = { partition: 'byStatus', partitionValues: { status: 'paid' } }
  console.log(`paid orders (one partition listing): ${await orders.count(paid)}`)
  const london = await orders.query({ 'shipTo.city': 'London', total: { $gte: 50 } })
  console.log('London orders of 50 or more:', london.map((o) => `${o.customer} ${o.total}`))
  const first = await orders.page({ size: 2 })
  console.log(`first page: ${first.items.length} orders, more: ${first.cursor !== null}`)

  // Optimistic concurrency: update only if nobody changed the record since it was read.
  const id = batch[1].id
  const { etag } = await orders.getWithEtag(id)
  const shipped = await orders.updateIf(id, { status: 'shipped' }, etag)
  console.log(`order ${id}: ${shipped.status}, updated at ${shipped.updatedAt}`)
  try {
    await orders.updateIf(id, { status: 'lost' }, etag)
  } catch (err) {
    if (!(err instanceof S3dbError)) throw err
    console.log(`stale update refused: ${err.code}`)
  }

  // Validation errors list every failed check.
  try {
    await orders.insert({ customer: 'Z', status: 'paid', total: 1, items: [1], coupon: 'FREE' })
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err
    for (const d of err.details) console.log(`  invalid ${d.field}: ${d.rule} (expected ${d.expected}, got ${d.actual})`)
  }

  const lock = await db.lock('nightly-report', { ttl: 30, timeout: 5 })
  console.log(`lock ${lock.name}: fencing token ${lock.fencingToken}, holder ${lock.holderId}`)
  await lock.release()

  const orderNumbers = db.sequence('orders', { start: 1000 })
  const ids = [await orderNumbers.next(), await orderNumbers.next(), await orderNumbers.next()]
  console.log(`sequence ${orderNumbers.name}: ${ids.join(', ')} (next: ${await orderNumbers.current()})`)

  const s = db.stats()
  console.log(
    `requests: ${s.get} GET, ${s.head} HEAD, ${s.put} PUT, ${s.copy} COPY, ${s.delete} DELETE, ${s.list} LIST`
  )
}

main().catch((err) => {
  console.error(`quickstart failed: ${err.name} ${err.code ?? ''}: ${err.message}`)
  process.exitCode = 1
})
