// The ESM entry point's declarations (lib.d.mts): named and default imports.
import s3db, { Database, NotFoundError, Coordinator, type StoredRecord } from 's3db-rs'

import type { Page, ValidationIssue } from 's3db-rs'

const db: Database = await s3db.Database.connect('memory://types', { passphrase: 'pw' })
const users = await db.createResource({ name: 'users', attributes: { name: 'string' }, timestamps: true })
const rec: StoredRecord | null = await users.getOrNull('x')
const isErr: boolean = new Error('x') instanceof NotFoundError
const page: Page = await users.page({ size: 5 })
const issues: ValidationIssue[] = new s3db.ValidationError('x').details
const coordinator: Coordinator = db.coordinator('ns', { heartbeatInterval: 1 })
coordinator.on('becameLeader', ({ epoch }) => void epoch)
const state = db.state('ns')
const entry = await state.update('n', (v) => (typeof v === 'number' ? v + 1 : 0))
const healed: string[] = db.healingLog()
void [rec, isErr, page, issues, entry, healed]
