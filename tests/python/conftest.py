"""Backends for the s3db Python suite.

Every test that takes ``url`` (or ``db``/``sdb``) runs against ``memory://<random bucket>``,
``file://<tmp dir>`` and, when ``S3DB_TEST_S3_URL`` is set, ``$S3DB_TEST_S3_URL/<random prefix>``.
"""

import os
import uuid
from typing import Any, AsyncIterator, Dict, List

import pytest

import s3db

S3_URL = os.environ.get("S3DB_TEST_S3_URL", "").rstrip("/")

BACKENDS: List[Any] = ["memory", "file"]
if S3_URL:
    BACKENDS.append("s3")

USERS = {"name": "string|required", "email": "string"}


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
