"""Backends for the s3db Python suite.

Every test that takes ``url`` (or ``db``/``sdb``) runs against ``memory://<random bucket>``,
``file://<tmp dir>`` and, when ``S3DB_TEST_S3_URL`` is set, ``$S3DB_TEST_S3_URL/<random prefix>``.
Tests that take ``mdb`` (or ``api``) also run twice per backend: through the asyncio API and
through the blocking twin (``Blocking`` gives it the async shape).
"""

import os
import uuid
from typing import Any, AsyncIterator, Dict, List, Optional

import pytest

import s3db

S3_URL = os.environ.get("S3DB_TEST_S3_URL", "").rstrip("/")

BACKENDS: List[Any] = ["memory", "file"]
if S3_URL:
    BACKENDS.append("s3")

# s3db.js semantics: attributes are required unless `|optional`.
USERS = {"name": "string", "email": "string|optional"}


def _url(backend: str, tmp_path: Any) -> str:
    tag = uuid.uuid4().hex[:12]
    if backend == "memory":
        return f"memory://py-{tag}"
    if backend == "file":
        return f"file://{tmp_path}/db-{tag}"
    return f"{S3_URL}/py-{tag}"


@pytest.fixture(params=BACKENDS)
def backend(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def url(backend: str, tmp_path: Any) -> str:
    return _url(backend, tmp_path)


@pytest.fixture
def new_url(backend: str, tmp_path: Any) -> Any:
    """Makes more urls of the same backend (fresh databases)."""
    return lambda: _url(backend, tmp_path)


@pytest.fixture
async def db(url: str) -> AsyncIterator[s3db.Database]:
    yield await s3db.connect(url)


@pytest.fixture
async def users(db: s3db.Database) -> s3db.Resource:
    return await db.create_resource("users", USERS)


@pytest.fixture
def sdb(url: str) -> s3db.SyncDatabase:
    return s3db.connect_sync(url)


@pytest.fixture
def susers(sdb: s3db.SyncDatabase) -> s3db.SyncResource:
    return sdb.create_resource("users", USERS)


def delta(before: Dict[str, int], after: Dict[str, int]) -> Dict[str, int]:
    """Requests sent between two stats() snapshots, zero kinds left out."""
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


# --- one scenario, both APIs ----------------------------------------------------------------


class Blocking:
    """The blocking twin behind the asyncio API's shape: each method runs the ``Sync*`` call
    (blocking, when awaited) and wraps what it returns, so one async test body exercises both
    APIs. Attributes that are not methods (``name``) pass through."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap(attr(*args, **kwargs))

        return call

    def stats(self) -> Dict[str, int]:  # not awaited in the async API either
        return self._target.stats()  # type: ignore[no-any-return]

    def reset_stats(self) -> None:
        self._target.reset_stats()

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"


def _wrap(value: Any) -> Any:
    if isinstance(value, (s3db.SyncDatabase, s3db.SyncResource)):
        return Blocking(value)
    return value


APIS = ["async", "sync"]


@pytest.fixture(params=APIS)
def api(request: Any) -> str:
    return str(request.param)


async def open_db(api: str, url: str, passphrase: Optional[str] = None) -> Any:
    """``await s3db.connect(...)`` or ``s3db.connect_sync(...)`` behind the async shape."""
    if api == "async":
        return await s3db.connect(url, passphrase=passphrase)
    return Blocking(s3db.connect_sync(url, passphrase=passphrase))


@pytest.fixture
async def mdb(api: str, url: str) -> Any:
    """A fresh database through the API under test (async, or sync behind ``Blocking``)."""
    return await open_db(api, url)
