// The ESM entry point's declarations (lib.d.mts): named and default imports.
import s3db, { Database, NotFoundError, type StoredRecord } from 's3db-rs'

const db: Database = await s3db.Database.connect('memory://types')
const users = await db.createResource({ name: 'users', attributes: { name: 'string' } })
const rec: StoredRecord | null = await users.getOrNull('x')
const isErr: boolean = new Error('x') instanceof NotFoundError
void [rec, isErr]
