// ESM entry point: the same objects as the CommonJS entry (lib.js).
import { createRequire } from 'node:module'

const lib = createRequire(import.meta.url)('./lib.js')

export const {
  Database,
  Resource,
  Lock,
  Sequence,
  State,
  Coordinator,
  PluginStorage,
  S3dbError,
  NotFoundError,
  AlreadyExistsError,
  PreconditionFailedError,
  ConflictError,
  ValidationError,
  InvalidArgumentError,
  LockNotAcquiredError,
  LockLostError,
  CorruptError,
  StorageError,
  OutcomeUnknownError,
  ErrorCodes,
} = lib
export default lib
