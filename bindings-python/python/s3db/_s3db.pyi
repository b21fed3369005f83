"""Type stubs of the native module ``s3db._s3db`` (re-exported by ``s3db``).

Every method of the async classes returns an ``asyncio.Future`` that is started at once
(it needs a running event loop); await it, gather it or wrap it with ``asyncio.ensure_future``.
"""

import asyncio
import builtins
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence as _Seq
from types import TracebackType
from typing import Any, Literal, Optional, Union, final

from ._types import (
    BatchItem,
    CasResult,
    CoordinatorEvent,
    CoordinatorMetrics,
    Fenced,
    GetManyResult,
    LeaderInfo,
    LockInfo,
    Page,
    ReindexResult,
    StateEntry,
    WorkerInfo,
)

_Record = dict[str, Any]
_Partitions = Union[Mapping[str, Mapping[str, Any]], list[str], tuple[str, ...]]
#: s3db.js forms (``"incremental"``, ``"incremental:1000"``, ``"incremental:ORD-0001"``,
#: ``"incremental:fast"``, ``{"type": "incremental", ...}``, an id size) or a callable
#: returning the id of a record that has none.
_IdGenerator = Union[str, int, Mapping[str, Any], Callable[[], Union[str, int]]]
_OnLost = Callable[[str], object]
#: A hook gets a record (a list for afterList/afterQuery/afterGetMany, a context dict for
#: beforeGet, beforeCount, ...) and returns the changed value, or None to keep it.
_Hook = Callable[[Any], Any]
#: ``{"beforeInsert": [fn, ...], "afterGet": fn, ...}`` (s3db.js's event names).
_Hooks = Mapping[str, Union[_Hook, _Seq[_Hook]]]
_Content = Union[bytes, bytearray, memoryview]
#: An attribute rule: ``"string|optional"`` or ``{"type": "number", "optional": True}``.
_Rule = Union[str, Mapping[str, Any]]
#: PluginStorage behaviors: where ``set`` puts the fields.
_PluginBehavior = Literal["body-overflow", "body-only", "enforce-limits"]

__all__ = [
    "__version__",
    "connect",
    "connect_sync",
    "Database",
    "Resource",
    "Lock",
    "LockContext",
    "Sequence",
    "State",
    "Coordinator",
    "CoordinatorEvents",
    "SyncDatabase",
    "SyncResource",
    "SyncLock",
    "SyncSequence",
    "SyncState",
    "SyncCoordinator",
    "SyncCoordinatorEvents",
    "PluginStorage",
    "SyncPluginStorage",
    "PluginLock",
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
        id_generator: Optional[_IdGenerator] = None,
        passphrase: Optional[str] = None,
        hooks: Optional[_Hooks] = None,
    ) -> asyncio.Future[Resource]:
        """Defines (or redefines) a resource with s3db.js's ``createResource`` options.

        ``attributes`` maps names to rule strings (``"string|min:3"``, ``"number|optional"``,
        ``"secret"``, ...) or nested dicts; fields are required unless ``|optional`` and
        strings are trimmed unless ``|trim:false``. ``behavior`` is one of
        ``user-managed`` (default), ``enforce-limits``, ``truncate-data``, ``body-overflow``,
        ``body-only``; ``partitions`` is ``{name: {"fields": {path: rule}}}`` or a list of
        field names; ``paranoid`` (default True) refuses ``delete_all``; ``id_generator`` is
        an s3db.js form (``"incremental:ORD-0001"``, ``{"type": "incremental", ...}``, an id
        size) or a callable returning the id of a record inserted without one (applied by
        the binding; ``db.resource(name)`` on the same handle keeps it); ``passphrase``
        overrides the connection's for this resource's secret fields."""
    def resource(self, name: str) -> asyncio.Future[Resource]: ...
    def list_resources(self) -> asyncio.Future[list[str]]: ...
    def stats(self) -> dict[str, int]:
        """Requests sent so far, by kind: get, head, put, copy, delete, list."""
    def reset_stats(self) -> None: ...
    def lock(
        self,
        name: str,
        ttl: float = 30.0,
        timeout: float = 0.0,
        auto_renew: bool = False,
        on_lost: Optional[_OnLost] = None,
    ) -> LockContext:
        """``await db.lock(...)`` returns a held ``Lock``; ``async with db.lock(...) as lock:``
        releases it on exit. ``ttl`` and ``timeout`` are seconds; ``timeout=0`` tries once.
        ``auto_renew=True`` renews the lock every ttl/3 until release; ``on_lost(message)``
        (only with ``auto_renew``) runs once, from a runtime thread, when renewal fails for
        good."""
    def is_locked(self, name: str) -> asyncio.Future[bool]:
        """Whether someone holds the lock now (one GET)."""
    def lock_info(self, name: str) -> asyncio.Future[Optional[LockInfo]]:
        """The current holder, or None when the lock is free."""
    def fenced_put(self, name: str, value: Any, token: int) -> asyncio.Future[str]:
        """Writes ``value`` to the fenced object ``name`` unless a higher token already wrote
        it (``LockLostError``); returns the new version."""
    def fenced_get(self, name: str) -> asyncio.Future[Optional[Fenced]]: ...
    def sequence(
        self, name: str, start: int = 1, increment: int = 1, batch_size: int = 1
    ) -> Sequence:
        """``batch_size`` above 1 reserves that many values per request (values handed out
        locally; unused ones become gaps)."""
    def list_sequences(self) -> asyncio.Future[list[str]]: ...
    def state(self, namespace: str) -> State:
        """Distributed state of ``namespace``: versions, compare-and-swap, counters, ttl."""
    def coordinator(
        self,
        namespace: str,
        heartbeat_interval: float = 5.0,
        lease_timeout: Optional[float] = None,
        worker_timeout: Optional[float] = None,
        startup_jitter: Optional[float] = None,
        *,
        step_down_margin: Optional[float] = None,
        circuit_breaker_threshold: Optional[int] = None,
        circuit_breaker_cooldown: Optional[float] = None,
        strategy: Optional[str] = None,
        pod: Optional[str] = None,
    ) -> Coordinator:
        """A worker in the leader election of ``namespace`` (``await start()`` it). Times are
        seconds; ``heartbeat_interval`` alone scales the others (lease 3x, worker timeout
        4x, startup jitter and step-down margin 1/5, circuit cool-down 2x). ``strategy`` is
        ``"timestamp"`` (oldest start wins; default) or ``"alphabetical"``."""
    def healing_log(self) -> list[str]:
        """What healing repaired in ``s3db.json`` when this handle connected (empty when
        the catalog was intact)."""
    def plugin_storage(self, slug: str) -> PluginStorage:
        """s3db.js's PluginStorage of plugin ``slug`` (no request until a method is called)."""

@final
class Resource:
    """The records of one resource (asyncio API). Records are dicts; ``id`` is a str."""

    @property
    def name(self) -> str: ...
    def insert_with_content(
        self, data: Mapping[str, Any], content: _Content, content_type: Optional[str] = None
    ) -> asyncio.Future[dict[str, Any]]:
        """Inserts a record whose object body is binary ``content`` (default type
        ``application/octet-stream``)."""
    def set_content(
        self, id: str, content: Optional[_Content], content_type: Optional[str] = None
    ) -> asyncio.Future[None]:
        """Sets (bytes) or removes (None) the record's binary content."""
    def content(self, id: str) -> asyncio.Future[tuple[bytes, str]]:
        """``(content, content_type)``; ``NotFoundError`` when the record has none."""
    def id_sequence(self) -> Optional[Sequence]:
        """The sequence behind an incremental ``id_generator``; None otherwise."""
    def get_or_none(self, id: str) -> asyncio.Future[Optional[dict[str, Any]]]: ...
    def get_with_etag(self, id: str) -> asyncio.Future[tuple[_Record, str]]:
        """The record and its version tag, for ``update_if``."""
    def update_if(
        self, id: str, changes: Mapping[str, Any], etag: str
    ) -> asyncio.Future[_Record]:
        """``update``, applied only if the record still has version ``etag``
        (else ``PreconditionFailedError``)."""
    def update_conditional(
        self, id: str, changes: Mapping[str, Any], if_match: str
    ) -> asyncio.Future[tuple[_Record, str]]:
        """s3db.js ``updateConditional``: ``update_if`` returning ``(record, new etag)``."""
    def add_hook(self, event: str, func: _Hook) -> None:
        """s3db.js ``addHook``: ``func(value)`` returns the changed value (None keeps it); an
        exception it raises aborts the operation and reaches the caller. Plain functions only
        (hooks run inside the engine's operations)."""
    def page(self, size: int, cursor: Optional[str] = None) -> asyncio.Future[Page]:
        """One page of up to ``size`` (1..1000) records; pass ``cursor`` back for the next."""
    def reindex(self, partition: Optional[str] = None) -> asyncio.Future[ReindexResult]:
        """Rebuilds partition references (one partition or all)."""
    def add_plugin_attribute(
        self, name: str, definition: _Rule, plugin: str
    ) -> asyncio.Future[dict[str, str]]:
        """s3db.js ``addPluginAttribute``: an attribute owned by ``plugin``, stored under a
        ``p…`` key; persists a catalog version unless it is already there. Returns the
        plugin map (attribute → key). ``ConflictError`` when the name is taken."""
    def remove_plugin_attribute(self, name: str, plugin: str) -> asyncio.Future[bool]:
        """False when the resource has no such plugin attribute; records keep reading."""
    @property
    def plugin_map(self) -> dict[str, str]:
        """Plugin-owned attributes and their keys: ``{"auditedBy": "pkdv"}``."""
    # <generated by s3db-gen: Resource>
    def insert(self, record: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Inserts a record (its ``id`` generated when absent), validated against the resource's
        attributes: create-only (ALREADY_EXISTS if the id is taken). One PUT, plus one per
        partition. Returns the stored record with its id."""
    def get(self, id: str) -> asyncio.Future[_Record]:
        """The record with this id; NOT_FOUND if there is none. One GET."""
    def exists(self, id: str) -> asyncio.Future[bool]:
        """Whether a record with this id exists. One HEAD."""
    def update(self, id: str, changes: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Merges ``changes`` (``null`` removes a field) into the stored record by compare-and-swap
        (one GET + one conditional PUT when uncontended; concurrent updates all survive).
        Returns the merged record."""
    def patch(self, id: str, changes: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """s3db.js ``patch``: the same merge as ``update`` (dotted keys change one nested field).
        Returns the merged record."""
    def replace(self, id: str, record: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Replaces the whole record ``id``, which must exist (NOT_FOUND otherwise), validated as
        an insert. One GET + one conditional PUT when uncontended. Returns the stored record."""
    def upsert(self, record: Mapping[str, Any]) -> asyncio.Future[_Record]:
        """Inserts the record, or merges it into the existing record with its id. Returns the
        stored record."""
    def delete(self, id: str) -> asyncio.Future[None]:
        """Deletes a record and its partition references: one HEAD + one conditional DELETE (a GET
        instead of the HEAD when the resource has partitions). NOT_FOUND if missing."""
    def list_ids(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[builtins.list[str]]:
        """Every id, or the ids of one partition's references matching the values given for its
        leading fields. LIST requests only."""
    def list(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[builtins.list[_Record]]:
        """Every record (or one partition's, as ``list_ids``): the ids, then a GET per record.
        Records deleted meanwhile are skipped."""
    def count(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> asyncio.Future[int]:
        """The number of records (or of one partition's, as ``list_ids``). LIST requests only."""
    def insert_many(
        self, records: _Seq[Mapping[str, Any]]
    ) -> asyncio.Future[builtins.list[BatchItem]]:
        """Inserts each record; one failure does not stop the others. Returns one entry per record,
        in order: ``{index, id, record}`` or ``{index, id, error: {code, message}}``."""
    def get_many(self, ids: _Seq[str]) -> asyncio.Future[GetManyResult]:
        """The records of ``ids``, one GET each: ``{found: [records in the order asked], missing:
        [ids that do not exist]}``."""
    def delete_many(self, ids: _Seq[str]) -> asyncio.Future[builtins.list[BatchItem]]:
        """Deletes each id; one failure does not stop the others. Returns one entry per id, in
        order: ``{index, id}`` or ``{index, id, error: {code, message}}``."""
    def delete_all(self) -> asyncio.Future[int]:
        """Deletes every record and partition reference; returns how many records were deleted.
        Refused (INVALID_ARGUMENT) unless the resource was defined with ``paranoid: false``."""
    def query(self, filter: Mapping[str, Any]) -> asyncio.Future[builtins.list[_Record]]:
        """The records matching ``filter``, e.g. ``{"status": "paid", "amount": {"$gte": 10}}``
        (operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $contains
        $not``, ``$and $or $nor``, dotted paths; any other operator is INVALID_ARGUMENT). Lists
        through the best-matching partition when the equalities fix its fields."""
    # </generated: Resource>

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
    @property
    def ttl(self) -> float:
        """The ttl the lock was acquired with, in seconds."""
    @property
    def is_lost(self) -> bool:
        """True once this handle learnt that it no longer holds the lock (a failed extend,
        release or renewal). False is no proof of holding it: use the fencing token."""
    def expires_at(self) -> asyncio.Future[int]:
        """Milliseconds since the epoch."""
    def auto_renew(self, on_lost: Optional[_OnLost] = None) -> None:
        """Renews the lock every ttl/3 until release; ``on_lost(message)`` runs once, from a
        runtime thread, when renewal fails for good."""
    def stop_renewing(self) -> None: ...
    def guarded_put(self, name: str, value: Any) -> asyncio.Future[str]:
        """Writes ``value`` to the fenced object ``name`` under this lock's fencing token;
        ``LockLostError`` if the handle is lost or released or a higher token wrote it."""
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
    def delete(self) -> asyncio.Future[None]:
        """Deletes the stored counter; the next ``next()`` starts again at ``start``."""

@final
class State:
    """Distributed state of one namespace (asyncio API): small JSON values with versions,
    compare-and-swap, counters and optional expiry."""

    @property
    def namespace(self) -> str: ...
    def get(self, key: str) -> asyncio.Future[Optional[StateEntry]]:
        """The live entry, or None when absent or expired."""
    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> asyncio.Future[str]:
        """Stores ``value`` (last writer wins), expiring after ``ttl`` seconds if given;
        returns the new version."""
    def update(self, key: str, fn: Callable[[Any], Any]) -> asyncio.Future[StateEntry]:
        """Read-modify-write by compare-and-swap: ``fn(old)`` (None when absent) returns the
        new value; it runs again, on a runtime thread, when another writer got there first.
        An exception from ``fn`` aborts the update and is raised. The expiry is kept."""
    def compare_and_swap(
        self, key: str, expected_version: Optional[str], value: Any
    ) -> asyncio.Future[CasResult]:
        """Writes ``value`` only if the entry is still at ``expected_version`` (None: only
        if absent); otherwise ``swapped`` is False with the current value and version."""
    def delete(self, key: str) -> asyncio.Future[None]: ...
    def increment(self, key: str, by: int = 1) -> asyncio.Future[int]:
        """Adds ``by`` to the counter (absent: 0); returns the new value."""
    def decrement(self, key: str, by: int = 1) -> asyncio.Future[int]: ...
    def counter(self, key: str) -> asyncio.Future[int]:
        """The counter's value (0 when absent or expired)."""
    def reset(self, key: str) -> asyncio.Future[None]:
        """Sets the counter back to 0 (deletes it)."""
    def keys(self) -> asyncio.Future[builtins.list[str]]:
        """Keys of the namespace (expired ones included)."""

@final
class Coordinator:
    """A worker in the leader election of one namespace (asyncio API)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def start(self) -> asyncio.Future[None]:
        """Joins the election; the first round runs before the future resolves. Starting a
        running coordinator does nothing."""
    def stop(self) -> asyncio.Future[None]:
        """Leaves the election, releasing the lease if leading."""
    def is_running(self) -> asyncio.Future[bool]: ...
    @property
    def is_leader(self) -> bool:
        """True only while this worker holds a lease it renewed recently enough."""
    @property
    def fencing_token(self) -> Optional[int]:
        """The epoch of this worker's lease while it leads; else None."""
    def get_leader(self) -> Optional[LeaderInfo]:
        """This worker while it leads, else the leader of the valid lease last seen."""
    def active_workers(self) -> asyncio.Future[builtins.list[WorkerInfo]]: ...
    def metrics(self) -> CoordinatorMetrics: ...
    def events(self) -> CoordinatorEvents:
        """Events from now on (``async for ev in coordinator.events():``). Subscribe before
        ``start()`` to see the first election."""
    def on_event(self, callback: Callable[[CoordinatorEvent], object]) -> None:
        """Calls ``callback(event)`` for every event from now on, in order, from a runtime
        thread (with the GIL); use ``loop.call_soon_threadsafe`` to reach asyncio."""

@final
class CoordinatorEvents:
    """An async iterator over a coordinator's events."""

    def __aiter__(self) -> CoordinatorEvents: ...
    def __anext__(self) -> asyncio.Future[CoordinatorEvent]: ...

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
        id_generator: Optional[_IdGenerator] = None,
        passphrase: Optional[str] = None,
        hooks: Optional[_Hooks] = None,
    ) -> SyncResource: ...
    def resource(self, name: str) -> SyncResource: ...
    def list_resources(self) -> list[str]: ...
    def stats(self) -> dict[str, int]:
        """Requests sent so far, by kind: get, head, put, copy, delete, list."""
    def reset_stats(self) -> None: ...
    def lock(
        self,
        name: str,
        ttl: float = 30.0,
        timeout: float = 0.0,
        auto_renew: bool = False,
        on_lost: Optional[_OnLost] = None,
    ) -> SyncLock:
        """Acquires the lock; ``with db.lock(...) as lock:`` releases it on exit."""
    def is_locked(self, name: str) -> bool: ...
    def lock_info(self, name: str) -> Optional[LockInfo]: ...
    def fenced_put(self, name: str, value: Any, token: int) -> str: ...
    def fenced_get(self, name: str) -> Optional[Fenced]: ...
    def sequence(
        self, name: str, start: int = 1, increment: int = 1, batch_size: int = 1
    ) -> SyncSequence: ...
    def list_sequences(self) -> list[str]: ...
    def state(self, namespace: str) -> SyncState: ...
    def coordinator(
        self,
        namespace: str,
        heartbeat_interval: float = 5.0,
        lease_timeout: Optional[float] = None,
        worker_timeout: Optional[float] = None,
        startup_jitter: Optional[float] = None,
        *,
        step_down_margin: Optional[float] = None,
        circuit_breaker_threshold: Optional[int] = None,
        circuit_breaker_cooldown: Optional[float] = None,
        strategy: Optional[str] = None,
        pod: Optional[str] = None,
    ) -> SyncCoordinator: ...
    def healing_log(self) -> list[str]: ...
    def plugin_storage(self, slug: str) -> SyncPluginStorage: ...

@final
class SyncResource:
    """The records of one resource (blocking API)."""

    @property
    def name(self) -> str: ...
    def insert_with_content(
        self, data: Mapping[str, Any], content: _Content, content_type: Optional[str] = None
    ) -> dict[str, Any]: ...
    def set_content(
        self, id: str, content: Optional[_Content], content_type: Optional[str] = None
    ) -> None: ...
    def content(self, id: str) -> tuple[bytes, str]: ...
    def id_sequence(self) -> Optional[SyncSequence]: ...
    def get_or_none(self, id: str) -> Optional[dict[str, Any]]: ...
    def get_with_etag(self, id: str) -> tuple[_Record, str]: ...
    def update_if(self, id: str, changes: Mapping[str, Any], etag: str) -> _Record: ...
    def update_conditional(
        self, id: str, changes: Mapping[str, Any], if_match: str
    ) -> tuple[_Record, str]: ...
    def add_hook(self, event: str, func: _Hook) -> None: ...
    def page(self, size: int, cursor: Optional[str] = None) -> Page: ...
    def reindex(self, partition: Optional[str] = None) -> ReindexResult: ...
    def add_plugin_attribute(self, name: str, definition: _Rule, plugin: str) -> dict[str, str]: ...
    def remove_plugin_attribute(self, name: str, plugin: str) -> bool: ...
    @property
    def plugin_map(self) -> dict[str, str]: ...
    # <generated by s3db-gen: SyncResource>
    def insert(self, record: Mapping[str, Any]) -> _Record:
        """Inserts a record (its ``id`` generated when absent), validated against the resource's
        attributes: create-only (ALREADY_EXISTS if the id is taken). One PUT, plus one per
        partition. Returns the stored record with its id."""
    def get(self, id: str) -> _Record:
        """The record with this id; NOT_FOUND if there is none. One GET."""
    def exists(self, id: str) -> bool:
        """Whether a record with this id exists. One HEAD."""
    def update(self, id: str, changes: Mapping[str, Any]) -> _Record:
        """Merges ``changes`` (``null`` removes a field) into the stored record by compare-and-swap
        (one GET + one conditional PUT when uncontended; concurrent updates all survive).
        Returns the merged record."""
    def patch(self, id: str, changes: Mapping[str, Any]) -> _Record:
        """s3db.js ``patch``: the same merge as ``update`` (dotted keys change one nested field).
        Returns the merged record."""
    def replace(self, id: str, record: Mapping[str, Any]) -> _Record:
        """Replaces the whole record ``id``, which must exist (NOT_FOUND otherwise), validated as
        an insert. One GET + one conditional PUT when uncontended. Returns the stored record."""
    def upsert(self, record: Mapping[str, Any]) -> _Record:
        """Inserts the record, or merges it into the existing record with its id. Returns the
        stored record."""
    def delete(self, id: str) -> None:
        """Deletes a record and its partition references: one HEAD + one conditional DELETE (a GET
        instead of the HEAD when the resource has partitions). NOT_FOUND if missing."""
    def list_ids(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[str]:
        """Every id, or the ids of one partition's references matching the values given for its
        leading fields. LIST requests only."""
    def list(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> builtins.list[_Record]:
        """Every record (or one partition's, as ``list_ids``): the ids, then a GET per record.
        Records deleted meanwhile are skipped."""
    def count(
        self, partition: Optional[str] = None, values: Optional[Mapping[str, Any]] = None
    ) -> int:
        """The number of records (or of one partition's, as ``list_ids``). LIST requests only."""
    def insert_many(self, records: _Seq[Mapping[str, Any]]) -> builtins.list[BatchItem]:
        """Inserts each record; one failure does not stop the others. Returns one entry per record,
        in order: ``{index, id, record}`` or ``{index, id, error: {code, message}}``."""
    def get_many(self, ids: _Seq[str]) -> GetManyResult:
        """The records of ``ids``, one GET each: ``{found: [records in the order asked], missing:
        [ids that do not exist]}``."""
    def delete_many(self, ids: _Seq[str]) -> builtins.list[BatchItem]:
        """Deletes each id; one failure does not stop the others. Returns one entry per id, in
        order: ``{index, id}`` or ``{index, id, error: {code, message}}``."""
    def delete_all(self) -> int:
        """Deletes every record and partition reference; returns how many records were deleted.
        Refused (INVALID_ARGUMENT) unless the resource was defined with ``paranoid: false``."""
    def query(self, filter: Mapping[str, Any]) -> builtins.list[_Record]:
        """The records matching ``filter``, e.g. ``{"status": "paid", "amount": {"$gte": 10}}``
        (operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $contains
        $not``, ``$and $or $nor``, dotted paths; any other operator is INVALID_ARGUMENT). Lists
        through the best-matching partition when the equalities fix its fields."""
    # </generated: SyncResource>

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
    @property
    def ttl(self) -> float: ...
    @property
    def is_lost(self) -> bool: ...
    def expires_at(self) -> int: ...
    def auto_renew(self, on_lost: Optional[_OnLost] = None) -> None: ...
    def stop_renewing(self) -> None: ...
    def guarded_put(self, name: str, value: Any) -> str: ...
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
    def delete(self) -> None: ...

@final
class SyncState:
    """Distributed state of one namespace (blocking API)."""

    @property
    def namespace(self) -> str: ...
    def get(self, key: str) -> Optional[StateEntry]: ...
    def set(self, key: str, value: Any, ttl: Optional[float] = None) -> str: ...
    def update(self, key: str, fn: Callable[[Any], Any]) -> StateEntry: ...
    def compare_and_swap(
        self, key: str, expected_version: Optional[str], value: Any
    ) -> CasResult: ...
    def delete(self, key: str) -> None: ...
    def increment(self, key: str, by: int = 1) -> int: ...
    def decrement(self, key: str, by: int = 1) -> int: ...
    def counter(self, key: str) -> int: ...
    def reset(self, key: str) -> None: ...
    def keys(self) -> builtins.list[str]: ...

@final
class SyncCoordinator:
    """A worker in the leader election of one namespace (blocking API)."""

    @property
    def worker_id(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def is_running(self) -> bool: ...
    @property
    def is_leader(self) -> bool: ...
    @property
    def fencing_token(self) -> Optional[int]: ...
    def get_leader(self) -> Optional[LeaderInfo]: ...
    def active_workers(self) -> builtins.list[WorkerInfo]: ...
    def metrics(self) -> CoordinatorMetrics: ...
    def events(self) -> SyncCoordinatorEvents:
        """Events from now on, as a blocking iterator; subscribe before ``start()``."""
    def on_event(self, callback: Callable[[CoordinatorEvent], object]) -> None:
        """Calls ``callback(event)`` for every event from now on, in order, from a runtime
        thread (with the GIL)."""

@final
class SyncCoordinatorEvents:
    """A blocking iterator over a coordinator's events."""

    def __iter__(self) -> SyncCoordinatorEvents: ...
    def __next__(self) -> CoordinatorEvent: ...
    def wait(self, timeout: Optional[float] = None) -> Optional[CoordinatorEvent]:
        """The next event, or None when none comes within ``timeout`` seconds."""

@final
class PluginLock:
    """A held plugin lock (s3db.js's ``LockHandle``), from ``acquire_lock``."""

    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def token(self) -> str: ...
    @property
    def worker_id(self) -> str: ...
    @property
    def expires_at(self) -> int:
        """Milliseconds since the epoch."""
    @property
    def etag(self) -> str: ...

@final
class PluginStorage:
    """s3db.js's PluginStorage of one plugin (asyncio API): JSON documents, sequences and
    locks under ``plugin=<slug>/…`` (or ``resource=<R>/plugin=<slug>/…``)."""

    @property
    def slug(self) -> str: ...
    def key(self, *parts: str, resource: Optional[str] = None) -> str:
        """``plugin=<slug>/<parts…>``, or ``resource=<R>/plugin=<slug>/<parts…>``."""
    def get_plugin_key(self, resource: Optional[str], *parts: str) -> str:
        """s3db.js ``getPluginKey(resource, ...parts)``."""
    def set(
        self,
        key: str,
        data: Mapping[str, Any],
        *,
        behavior: Optional[_PluginBehavior] = None,
        ttl: Optional[float] = None,
        content_type: Optional[str] = None,
        if_match: Optional[str] = None,
        if_none_match: bool = False,
    ) -> asyncio.Future[str]:
        """Stores ``data`` (one PUT); returns the etag. ``ttl`` in seconds; ``if_match`` /
        ``if_none_match`` make it conditional (``PreconditionFailedError``)."""
    def get(self, key: str) -> asyncio.Future[Optional[dict[str, Any]]]:
        """None when absent or expired (an expired document is deleted)."""
    def get_with_etag(self, key: str) -> asyncio.Future[Optional[tuple[dict[str, Any], str]]]: ...
    def has(self, key: str) -> asyncio.Future[bool]: ...
    def delete(self, key: str) -> asyncio.Future[bool]:
        """False when there was nothing at ``key``."""
    def list(self, prefix: Optional[str] = None) -> asyncio.Future[builtins.list[str]]:
        """Full keys under ``plugin=<slug>/<prefix>`` (not the resource-scoped ones)."""
    def list_for_resource(
        self, resource: str, sub_prefix: Optional[str] = None
    ) -> asyncio.Future[builtins.list[str]]: ...
    def delete_all(self, resource: Optional[str] = None) -> asyncio.Future[int]:
        """Deletes every object of the plugin (of one resource when given); how many."""
    def next_sequence(
        self,
        name: str,
        *,
        resource: Optional[str] = None,
        initial_value: int = 1,
        increment: int = 1,
    ) -> asyncio.Future[int]: ...
    def get_sequence(
        self, name: str, resource: Optional[str] = None
    ) -> asyncio.Future[Optional[int]]:
        """The value the next ``next_sequence`` returns; None before the first."""
    def reset_sequence(
        self, name: str, value: int, resource: Optional[str] = None
    ) -> asyncio.Future[None]: ...
    def delete_sequence(
        self, name: str, resource: Optional[str] = None
    ) -> asyncio.Future[None]: ...
    def acquire_lock(
        self, name: str, *, ttl: float = 30.0, timeout: float = 0.0, worker_id: str = "unknown"
    ) -> asyncio.Future[Optional[PluginLock]]:
        """None when another holder keeps it past ``timeout`` seconds."""
    def release_lock(self, lock: PluginLock) -> asyncio.Future[bool]:
        """False when the lock was taken over or is gone."""
    def is_locked(self, name: str) -> asyncio.Future[bool]: ...

@final
class SyncPluginStorage:
    """s3db.js's PluginStorage of one plugin (blocking API)."""

    @property
    def slug(self) -> str: ...
    def key(self, *parts: str, resource: Optional[str] = None) -> str: ...
    def get_plugin_key(self, resource: Optional[str], *parts: str) -> str: ...
    def set(
        self,
        key: str,
        data: Mapping[str, Any],
        *,
        behavior: Optional[_PluginBehavior] = None,
        ttl: Optional[float] = None,
        content_type: Optional[str] = None,
        if_match: Optional[str] = None,
        if_none_match: bool = False,
    ) -> str: ...
    def get(self, key: str) -> Optional[dict[str, Any]]: ...
    def get_with_etag(self, key: str) -> Optional[tuple[dict[str, Any], str]]: ...
    def has(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def list(self, prefix: Optional[str] = None) -> builtins.list[str]: ...
    def list_for_resource(
        self, resource: str, sub_prefix: Optional[str] = None
    ) -> builtins.list[str]: ...
    def delete_all(self, resource: Optional[str] = None) -> int: ...
    def next_sequence(
        self,
        name: str,
        *,
        resource: Optional[str] = None,
        initial_value: int = 1,
        increment: int = 1,
    ) -> int: ...
    def get_sequence(self, name: str, resource: Optional[str] = None) -> Optional[int]: ...
    def reset_sequence(self, name: str, value: int, resource: Optional[str] = None) -> None: ...
    def delete_sequence(self, name: str, resource: Optional[str] = None) -> None: ...
    def acquire_lock(
        self, name: str, *, ttl: float = 30.0, timeout: float = 0.0, worker_id: str = "unknown"
    ) -> Optional[PluginLock]: ...
    def release_lock(self, lock: PluginLock) -> bool: ...
    def is_locked(self, name: str) -> bool: ...
