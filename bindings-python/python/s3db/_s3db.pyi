"""Type stubs of the native module ``s3db._s3db`` (re-exported by ``s3db``).

Every method of the async classes returns an ``asyncio.Future`` that is started at once
(it needs a running event loop); await it, gather it or wrap it with ``asyncio.ensure_future``.
"""

import asyncio
import builtins
from collections.abc import Generator, Mapping, Sequence as _Seq
from types import TracebackType
from typing import Any, Optional, Union, final

from ._types import BatchItem, GetManyResult, Page, ReindexResult

_Record = dict[str, Any]
_Partitions = Union[Mapping[str, Mapping[str, Any]], list[str], tuple[str, ...]]

__all__ = [
    "__version__",
    "connect",
    "connect_sync",
    "Database",
    "Resource",
    "Lock",
    "LockContext",
    "Sequence",
    "SyncDatabase",
    "SyncResource",
    "SyncLock",
    "SyncSequence",
]

__version__: str

def connect(url: str, passphrase: Optional[str] = None) -> asyncio.Future[Database]:
    """Connects to ``memory://bucket/prefix``, ``file:///path``, ``s3://KEY:SECRET@bucket/prefix``
    or ``http(s)://KEY:SECRET@host:port/bucket/prefix``, creating ``s3db.json`` if missing.
    ``passphrase`` encrypts ``secret`` fields (s3db.js's default is ``"secret"``)."""

def connect_sync(url: str, passphrase: Optional[str] = None) -> SyncDatabase:
    """Blocking ``connect``."""

@final
class Database:
    """A connected database (asyncio API)."""

    def create_resource(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        behavior: Optional[str] = None,
        timestamps: Optional[bool] = None,
        partitions: Optional[_Partitions] = None,
        paranoid: Optional[bool] = None,
        id_size: Optional[int] = None,
        passphrase: Optional[str] = None,
    ) -> asyncio.Future[Resource]:
        """Defines (or redefines) a resource with s3db.js's ``createResource`` options.

        ``attributes`` maps names to rule strings (``"string|min:3"``, ``"number|optional"``,
        ``"secret"``, ...) or nested dicts; fields are required unless ``|optional`` and
        strings are trimmed unless ``|trim:false``. ``behavior`` is one of
        ``user-managed`` (default), ``enforce-limits``, ``truncate-data``, ``body-overflow``,
        ``body-only``; ``partitions`` is ``{name: {"fields": {path: rule}}}`` or a list of
        field names; ``paranoid`` (default True) refuses ``delete_all``; ``passphrase``
        overrides the connection's for this resource's secret fields."""
    def resource(self, name: str) -> asyncio.Future[Resource]: ...
    def list_resources(self) -> asyncio.Future[list[str]]: ...
    def stats(self) -> dict[str, int]:
        """Requests sent so far, by kind: get, head, put, copy, delete, list."""
    def reset_stats(self) -> None: ...
    def lock(self, name: str, ttl: float = 30.0, timeout: float = 0.0) -> LockContext:
        """``await db.lock(...)`` returns a held ``Lock``; ``async with db.lock(...) as lock:``
        releases it on exit. ``ttl`` and ``timeout`` are seconds; ``timeout=0`` tries once."""
    def sequence(self, name: str, start: int = 1, increment: int = 1) -> Sequence: ...

@final
class Resource:
    """The records of one resource (asyncio API). Records are dicts; ``id`` is a str."""

    @property
    def name(self) -> str: ...
    def insert(self, record: Mapping[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Create-only: ``AlreadyExistsError`` if the id is taken. The id is generated
        when ``record`` has none."""
    def get(self, id: str) -> asyncio.Future[dict[str, Any]]: ...
    def get_or_none(self, id: str) -> asyncio.Future[Optional[dict[str, Any]]]: ...
    def exists(self, id: str) -> asyncio.Future[bool]: ...
    def update(self, id: str, changes: Mapping[str, Any]) -> asyncio.Future[dict[str, Any]]:
        """Merges ``changes`` (None removes a field) by compare-and-swap; returns the record."""
    def delete(self, id: str) -> asyncio.Future[None]:
        """``NotFoundError`` if there is no such record."""
    def list_ids(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[builtins.list[str]]:
        """Every id, or those of a partition's references matching ``values`` (the leading
        fields given)."""
    def list(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[builtins.list[_Record]]: ...
    def count(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[int]: ...
    def insert_many(
        self, records: _Seq[Mapping[str, Any]]
    ) -> asyncio.Future[builtins.list[BatchItem]]:
        """Inserts each record; one failure does not stop the others."""
    def get_many(self, ids: _Seq[str]) -> asyncio.Future[GetManyResult]: ...
    def replace(self, id: str, record: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Replaces the whole record (it must exist)."""
    def upsert(self, record: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Inserts, or merges into the existing record of that id."""
    def patch(self, id: str, changes: Mapping[str, Any]) -> asyncio.Future[_Record]: ...
    def get_with_etag(self, id: str) -> asyncio.Future[tuple[_Record, str]]:
        """The record and its version tag, for ``update_if``."""
    def update_if(
        self, id: str, changes: Mapping[str, Any], etag: str
    ) -> asyncio.Future[_Record]:
        """``update``, applied only if the record still has version ``etag``
        (else ``PreconditionFailedError``)."""
    def delete_many(self, ids: _Seq[str]) -> asyncio.Future[builtins.list[BatchItem]]: ...
    def delete_all(self) -> asyncio.Future[int]:
        """Deletes every record; refused (``InvalidArgumentError``) unless the resource was
        defined with ``paranoid=False``. Returns how many records were deleted."""
    def page(self, size: int, cursor: Optional[str] = None) -> asyncio.Future[Page]:
        """One page of up to ``size`` (1..1000) records; pass ``cursor`` back for the next."""
    def query(self, filter: Mapping[str, Any]) -> asyncio.Future[builtins.list[_Record]]:
        """Records matching ``filter`` (``$eq $ne $gt $gte $lt $lte $in $nin $exists``,
        dotted paths)."""
    def reindex(self, partition: Optional[str] = None) -> asyncio.Future[ReindexResult]:
        """Rebuilds partition references (one partition or all)."""

@final
class LockContext:
    """What ``Database.lock`` returns: await it for a ``Lock``, or use it with ``async with``."""

    def __await__(self) -> Generator[Any, None, Lock]: ...
    def __aenter__(self) -> asyncio.Future[Lock]: ...
    def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> asyncio.Future[bool]: ...

@final
class Lock:
    """A held distributed lock (asyncio API). ``async with lock:`` releases it on exit."""

    @property
    def name(self) -> str: ...
    @property
    def fencing_token(self) -> int:
        """Strictly increasing across all holders of this lock name."""
    @property
    def holder_id(self) -> str: ...
    def extend(self, ttl: float) -> asyncio.Future[None]:
        """Pushes the expiry to now + ``ttl`` seconds; ``LockLostError`` if taken over."""
    def release(self) -> asyncio.Future[None]:
        """Releases the lock; releasing twice is a no-op."""
    def __aenter__(self) -> asyncio.Future[Lock]: ...
    def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> asyncio.Future[bool]: ...

@final
class Sequence:
    """A named 64-bit counter (asyncio API)."""

    @property
    def name(self) -> str: ...
    def next(self) -> asyncio.Future[int]: ...
    def current(self) -> asyncio.Future[Optional[int]]:
        """The value the next ``next()`` returns; None before the first call."""
    def reset(self, value: int) -> asyncio.Future[None]:
        """Makes ``value`` the next value handed out."""

@final
class SyncDatabase:
    """A connected database (blocking API; the GIL is released during I/O)."""

    def create_resource(
        self,
        name: str,
        attributes: Mapping[str, Any],
        *,
        behavior: Optional[str] = None,
        timestamps: Optional[bool] = None,
        partitions: Optional[_Partitions] = None,
        paranoid: Optional[bool] = None,
        id_size: Optional[int] = None,
        passphrase: Optional[str] = None,
    ) -> SyncResource: ...
    def resource(self, name: str) -> SyncResource: ...
    def list_resources(self) -> list[str]: ...
    def stats(self) -> dict[str, int]:
        """Requests sent so far, by kind: get, head, put, copy, delete, list."""
    def reset_stats(self) -> None: ...
    def lock(self, name: str, ttl: float = 30.0, timeout: float = 0.0) -> SyncLock:
        """Acquires the lock; ``with db.lock(...) as lock:`` releases it on exit."""
    def sequence(self, name: str, start: int = 1, increment: int = 1) -> SyncSequence: ...

@final
class SyncResource:
    """The records of one resource (blocking API)."""

    @property
    def name(self) -> str: ...
    def insert(self, record: Mapping[str, Any]) -> dict[str, Any]: ...
    def get(self, id: str) -> dict[str, Any]: ...
    def get_or_none(self, id: str) -> Optional[dict[str, Any]]: ...
    def exists(self, id: str) -> bool: ...
    def update(self, id: str, changes: Mapping[str, Any]) -> dict[str, Any]: ...
    def delete(self, id: str) -> None: ...
    def list_ids(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[str]: ...
    def list(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[_Record]: ...
    def count(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> int: ...
    def insert_many(self, records: _Seq[Mapping[str, Any]]) -> builtins.list[BatchItem]: ...
    def get_many(self, ids: _Seq[str]) -> GetManyResult: ...
    def replace(self, id: str, record: Mapping[str, Any]) -> _Record: ...
    def upsert(self, record: Mapping[str, Any]) -> _Record: ...
    def patch(self, id: str, changes: Mapping[str, Any]) -> _Record: ...
    def get_with_etag(self, id: str) -> tuple[_Record, str]: ...
    def update_if(self, id: str, changes: Mapping[str, Any], etag: str) -> _Record: ...
    def delete_many(self, ids: _Seq[str]) -> builtins.list[BatchItem]: ...
    def delete_all(self) -> int: ...
    def page(self, size: int, cursor: Optional[str] = None) -> Page: ...
    def query(self, filter: Mapping[str, Any]) -> builtins.list[_Record]: ...
    def reindex(self, partition: Optional[str] = None) -> ReindexResult: ...

@final
class SyncLock:
    """A held distributed lock (blocking API). ``with lock:`` releases it on exit."""

    @property
    def name(self) -> str: ...
    @property
    def fencing_token(self) -> int: ...
    @property
    def holder_id(self) -> str: ...
    def extend(self, ttl: float) -> None: ...
    def release(self) -> None: ...
    def __enter__(self) -> SyncLock: ...
    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

@final
class SyncSequence:
    """A named 64-bit counter (blocking API)."""

    @property
    def name(self) -> str: ...
    def next(self) -> int: ...
    def current(self) -> Optional[int]: ...
    def reset(self, value: int) -> None: ...
