// Backends every suite runs against: memory, file and (when S3DB_TEST_S3_URL is set) S3.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { after } from 'node:test'

export function rand(n = 6) {
  return randomBytes(n).toString('hex')
}

const tempDirs = []
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })))
})

export const backends = [
  { name: 'memory', url: async () => `memory://node-${rand()}` },
  {
    name: 'file',
    url: async () => {
      const dir = await mkdtemp(join(tmpdir(), 's3db-node-'))
      tempDirs.push(dir)
      return `file://${dir}`
    },
  },
]
if (process.env.S3DB_TEST_S3_URL) {
  const base = process.env.S3DB_TEST_S3_URL.replace(/\/+$/, '')
  backends.push({ name: 's3', url: async () => `${base}/node-${rand()}` })
}

/** Asserts that `promise` rejects with an s3db error of `code` (and the matching class name). */
export async function rejectsWith(assert, promise, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    const name = code.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c) => c.toUpperCase()) + 'Error'
    assert.equal(err.name, name)
    assert.ok(err instanceof Error)
    return true
  })
}
