"""Type stubs of the native module ``s3db._s3db`` (re-exported by ``s3db``).

Every method of the async classes returns an ``asyncio.Future`` that is started at once
(it needs a running event loop); await it, gather it or wrap it with ``asyncio.ensure_future``.
"""

import asyncio
from collections.abc import Generator, Mapping
from types import TracebackType
from typing import Any, Optional, final

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

def connect(url: str) -> asyncio.Future[Database]:
    """Connects to ``memory://bucket/prefix``, ``file:///path``, ``s3://KEY:SECRET@bucket/prefix``
    or ``http(s)://KEY:SECRET@host:port/bucket/prefix``, creating ``s3db.json`` if missing."""

def connect_sync(url: str) -> SyncDatabase:
    """Blocking ``connect``."""

@final
class Database:
    """A connected database (asyncio API)."""

    def create_resource(
        self, name: str, attributes: Mapping[str, str]
    ) -> asyncio.Future[Resource]:
        """Defines (or redefines) a resource; ``attributes`` maps names to rule strings
        such as ``"string|required"``."""
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
    def delete(self, id: str) -> asyncio.Future[None]: ...
    def list_ids(self) -> asyncio.Future[list[str]]: ...
    def list(self) -> asyncio.Future[list[dict[str, Any]]]: ...
    def count(self) -> asyncio.Future[int]: ...

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

    def create_resource(self, name: str, attributes: Mapping[str, str]) -> SyncResource: ...
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
    def list_ids(self) -> list[str]: ...
    def list(self) -> list[dict[str, Any]]: ...
    def count(self) -> int: ...

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
