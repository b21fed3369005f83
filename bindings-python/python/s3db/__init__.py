"""s3db: a document database whose only server is an S3-compatible object store.

Async API (asyncio)::

    db = await s3db.connect("file:///var/lib/app")        # or memory://, s3://, http(s)://
    users = await db.create_resource(
        "users",
        {"name": "string|min:2", "email": "email|optional", "tags": "array|items:string|optional"},
        partitions={"byName": {"fields": {"name": "string"}}},
        timestamps=True,
    )
    user = await users.insert({"name": "Ada"})
    page = await users.page(10)                            # {"items": [...], "cursor": ...}
    found = await users.query({"name": {"$in": ["Ada", "Grace"]}})
    async with db.lock("nightly-job", ttl=30.0) as lock:
        ...                                                # lock.fencing_token
    seq = db.sequence("orders")
    n = await seq.next()
    state = db.state("app")                                # versions, CAS, counters, ttl
    await state.increment("visits")
    coordinator = db.coordinator("workers", heartbeat_interval=5.0)
    await coordinator.start()                              # events: coordinator.events()
    storage = db.plugin_storage("my-plugin")               # s3db.js PluginStorage
    await storage.set(storage.key("config"), {"a": 1}, ttl=60)

Blocking twin (same method names, values returned directly; the GIL is released)::

    db = s3db.connect_sync("memory://demo")
    with db.lock("job"):
        ...

Resources follow s3db.js's data model: attributes are required unless ``|optional``, strings
are trimmed unless ``|trim:false``, undeclared fields are refused. Records are dicts in and
dicts out, with native values (numbers, booleans, nested dicts, lists). Every error is an
``S3dbError`` with a stable ``.code``; a ``ValidationError`` lists the failed checks in
``.details``; wrong argument types raise ``InvalidArgumentError`` (which is also a
``TypeError`` and a ``ValueError``).
"""

from ._errors import (
    AlreadyExistsError,
    ConflictError,
    CorruptError,
    InvalidArgumentError,
    LockLostError,
    LockNotAcquiredError,
    NotFoundError,
    PreconditionFailedError,
    S3dbError,
    StorageError,
    OutcomeUnknownError,
    ValidationError,
)
from ._types import (
    BatchError,
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
    ValidationIssue,
    WorkerInfo,
)
from ._s3db import (
    Coordinator,
    CoordinatorEvents,
    Database,
    Lock,
    LockContext,
    PluginLock,
    PluginStorage,
    Resource,
    Sequence,
    State,
    SyncCoordinator,
    SyncCoordinatorEvents,
    SyncDatabase,
    SyncLock,
    SyncPluginStorage,
    SyncResource,
    SyncSequence,
    SyncState,
    __version__,
    connect,
    connect_sync,
)

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
    "BatchError",
    "BatchItem",
    "CasResult",
    "CoordinatorEvent",
    "CoordinatorMetrics",
    "Fenced",
    "GetManyResult",
    "LeaderInfo",
    "LockInfo",
    "Page",
    "ReindexResult",
    "StateEntry",
    "ValidationIssue",
    "WorkerInfo",
]
