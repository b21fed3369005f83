"""Typed shapes of the dicts the data-model methods return (for annotations only: at runtime
they are plain dicts)."""

from typing import Any, Dict, List, Optional, TypedDict

__all__ = [
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


class BatchError(TypedDict):
    """Why one item of a batch call failed: a stable error ``code`` and a message."""

    code: str
    message: str


class _BatchItemKeys(TypedDict):
    index: int
    id: Optional[str]


class BatchItem(_BatchItemKeys, total=False):
    """One item of ``insert_many``/``delete_many``, in input order: ``record`` on a
    successful insert, ``error`` on a failure."""

    record: Dict[str, Any]
    error: BatchError


class GetManyResult(TypedDict):
    found: List[Dict[str, Any]]
    missing: List[str]


class Page(TypedDict):
    """One page of records; ``cursor`` fetches the next one (None on the last page)."""

    items: List[Dict[str, Any]]
    cursor: Optional[str]


class ReindexResult(TypedDict):
    written: int
    deleted: int


class ValidationIssue(TypedDict):
    field: str
    rule: str
    expected: str
    actual: str


class LockInfo(TypedDict):
    """Who holds a lock (``Database.lock_info``); times are milliseconds since the epoch."""

    holder_id: str
    fencing_token: int
    acquired_at: int
    expires_at: int


class Fenced(TypedDict):
    """A value written under a fencing token (``Database.fenced_get``)."""

    value: Any
    #: The highest token that wrote it.
    fencing_token: int
    version: str


class StateEntry(TypedDict):
    """A live state entry; ``version`` goes to ``compare_and_swap``; ``expires_at`` is in
    milliseconds since the epoch (None: never expires)."""

    value: Any
    version: str
    expires_at: Optional[int]


class CasResult(TypedDict):
    """What ``compare_and_swap`` found: when not swapped, what is stored now (None/None
    when the key is absent)."""

    swapped: bool
    current_value: Any
    current_version: Optional[str]


class LeaderInfo(TypedDict):
    leader_id: str
    epoch: int
    #: Milliseconds since the epoch.
    lease_end: int


class WorkerInfo(TypedDict):
    worker_id: str
    pod: Optional[str]
    #: Milliseconds since the epoch.
    start_time: int
    #: Milliseconds since the epoch.
    last_heartbeat: int


class CoordinatorMetrics(TypedDict):
    heartbeats: int
    renewals: int
    elections: int
    leader_changes: int
    storage_failures: int
    heartbeat_p50_ms: float
    heartbeat_p99_ms: float


class _CoordinatorEventKeys(TypedDict):
    type: str


class CoordinatorEvent(_CoordinatorEventKeys, total=False):
    """A coordinator event. ``type`` is ``leader_changed`` (with ``leader_id`` and
    ``epoch``), ``became_leader`` or ``lost_leadership`` (with ``epoch``),
    ``circuit_opened`` (with ``failures``) or ``circuit_closed``."""

    leader_id: str
    epoch: int
    failures: int
