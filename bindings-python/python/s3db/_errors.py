"""Exceptions raised by s3db: one base class and one subclass per stable error code.

The codes are the same in every language binding (see docs/bindings.md). The native module
looks classes up in ``_BY_CODE`` to turn an engine error into a Python exception.
"""

from typing import ClassVar, Dict, List, Optional, Type

from ._types import ValidationIssue

__all__ = [
    "S3dbError",
    "NotFoundError",
    "AlreadyExistsError",
    "PreconditionFailedError",
    "ConflictError",
    "ValidationError",
    "InvalidArgumentError",
    "LockNotAcquiredError",
    "LockLostError",
    "CorruptError",
    "StorageError",
    "OutcomeUnknownError",
]


class S3dbError(Exception):
    """Base class of every s3db error; ``code`` is the stable, machine-readable error code.

    ``S3dbError`` itself (code ``INTERNAL``) is raised only for a bug: a panic inside the
    engine. Every engine error is raised as one of the subclasses below.
    """

    code: ClassVar[str] = "INTERNAL"


class NotFoundError(S3dbError):
    """No such record, resource or object."""

    code: ClassVar[str] = "NOT_FOUND"


class AlreadyExistsError(S3dbError):
    """A record with that id already exists (insert is create-only)."""

    code: ClassVar[str] = "ALREADY_EXISTS"


class PreconditionFailedError(S3dbError):
    """A conditional write found a different version than expected."""

    code: ClassVar[str] = "PRECONDITION_FAILED"


class ConflictError(S3dbError):
    """A concurrent conditional write won, too many times in a row."""

    code: ClassVar[str] = "CONFLICT"


class ValidationError(S3dbError):
    """The record (or the resource's definition) does not fit the schema.

    ``details`` lists the failed checks of a record, one dict per issue:
    ``{"field": ..., "rule": ..., "expected": ..., "actual": ...}`` (all str). It is an
    empty list when the engine gave none (an invalid schema, a metadata size limit, ...).
    """

    code: ClassVar[str] = "VALIDATION"
    details: List[ValidationIssue]

    def __init__(self, *args: object, details: Optional[List[ValidationIssue]] = None) -> None:
        super().__init__(*args)
        self.details = list(details) if details is not None else []


class InvalidArgumentError(S3dbError, ValueError, TypeError):
    """A bad argument: an invalid id or name (``"a/b"``, ``".."``, ``""``), a malformed
    connection string, or a value of the wrong type (``insert(42)``, a ``set`` inside a
    record, a non-``str`` id, a negative ttl).

    It is also a ``ValueError`` and a ``TypeError``, so generic handlers catch it too.
    """

    code: ClassVar[str] = "INVALID_ARGUMENT"


class LockNotAcquiredError(S3dbError):
    """The lock is held by someone else and the timeout ran out."""

    code: ClassVar[str] = "LOCK_NOT_ACQUIRED"


class LockLostError(S3dbError):
    """The lock was released or taken over; this handle no longer holds it."""

    code: ClassVar[str] = "LOCK_LOST"


class CorruptError(S3dbError):
    """A stored object could not be decoded."""

    code: ClassVar[str] = "CORRUPT"


class StorageError(S3dbError):
    """The object store failed (network, permissions, a missing bucket, ...)."""

    code: ClassVar[str] = "STORAGE"


class OutcomeUnknownError(S3dbError):
    """A write's answer was lost and reading back could not tell whether it took effect."""

    code: ClassVar[str] = "OUTCOME_UNKNOWN"


_BY_CODE: Dict[str, Type[S3dbError]] = {
    cls.code: cls
    for cls in (
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
    )
}

# Shown as s3db.NotFoundError (not s3db._errors.NotFoundError) in tracebacks and reprs.
for _cls in _BY_CODE.values():
    _cls.__module__ = "s3db"
del _cls
