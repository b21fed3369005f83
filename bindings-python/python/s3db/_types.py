"""Typed shapes of the dicts the data-model methods return (for annotations only: at runtime
they are plain dicts)."""

from typing import Any, Dict, List, Optional, TypedDict

__all__ = [
    "BatchError",
    "BatchItem",
    "GetManyResult",
    "Page",
    "ReindexResult",
    "ValidationIssue",
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
