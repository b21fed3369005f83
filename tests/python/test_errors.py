"""The exception hierarchy, its codes (docs/bindings.md) and what messages must not leak."""

import asyncio
import os
import pickle
import uuid

import pytest

import s3db

TABLE = {
    "NOT_FOUND": s3db.NotFoundError,
    "ALREADY_EXISTS": s3db.AlreadyExistsError,
    "PRECONDITION_FAILED": s3db.PreconditionFailedError,
    "CONFLICT": s3db.ConflictError,
    "VALIDATION": s3db.ValidationError,
    "INVALID_ARGUMENT": s3db.InvalidArgumentError,
    "LOCK_NOT_ACQUIRED": s3db.LockNotAcquiredError,
    "LOCK_LOST": s3db.LockLostError,
    "CORRUPT": s3db.CorruptError,
    "STORAGE": s3db.StorageError,
    "OUTCOME_UNKNOWN": s3db.OutcomeUnknownError,
}


@pytest.mark.parametrize("code, cls", sorted(TABLE.items()))
def test_one_class_per_code(code: str, cls: type) -> None:
    assert issubclass(cls, s3db.S3dbError)
    assert issubclass(cls, Exception)
    assert cls.code == code  # type: ignore[attr-defined]
    err = cls("message")
    assert err.code == code
    assert str(err) == "message"
    assert cls.__name__ == "".join(w.capitalize() for w in code.split("_")) + "Error"
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is cls and str(again) == "message"


def test_invalid_argument_is_also_type_and_value_error() -> None:
    assert issubclass(s3db.InvalidArgumentError, TypeError)
    assert issubclass(s3db.InvalidArgumentError, ValueError)
    assert not issubclass(s3db.ValidationError, TypeError)


def test_every_class_is_exported() -> None:
    for name in [c.__name__ for c in TABLE.values()] + ["S3dbError"]:
        assert name in s3db.__all__
        assert getattr(s3db, name) is not None


SECRET = "sup3rS3cr3tValue"


def test_malformed_connection_strings_do_not_echo_secrets() -> None:
    for url in (
        f"ftp://AKID:{SECRET}@host/bucket",
        f"http://AKID:{SECRET}@/bucket",
        f"http://:{SECRET}@127.0.0.1:9/bucket",
        "memory://bucket/%ff%fe",
        "file://",
        "not a url",
    ):
        with pytest.raises(s3db.InvalidArgumentError) as err:
            s3db.connect_sync(url)
        assert SECRET not in str(err.value)
        assert SECRET not in repr(err.value)
        assert err.value.code == "INVALID_ARGUMENT"


def test_unreachable_s3_does_not_echo_secrets() -> None:
    url = f"http://AKID:{SECRET}@127.0.0.1:9/bucket/prefix"
    with pytest.raises(s3db.StorageError) as err:
        s3db.connect_sync(url)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert err.value.code == "STORAGE"

    async def attempt() -> None:
        await s3db.connect(url)

    with pytest.raises(s3db.StorageError) as aerr:
        asyncio.run(attempt())
    assert SECRET not in str(aerr.value)


@pytest.mark.skipif(not os.environ.get("S3DB_TEST_S3_URL"), reason="S3DB_TEST_S3_URL not set")
def test_s3_objects_do_not_show_credentials() -> None:
    # The test server checks signatures: its own secret is the one that must not show.
    base = os.environ["S3DB_TEST_S3_URL"].rstrip("/")
    scheme, rest = base.split("://", 1)
    userinfo, location = rest.split("@", 1)
    secret = userinfo.split(":", 1)[1]
    db = s3db.connect_sync(f"{base}/py-repr-{uuid.uuid4().hex[:8]}")
    res = db.create_resource("users", {"name": "string"})
    lock = db.lock("repr")
    for obj in (db, res, lock, db.sequence("repr")):
        assert secret not in repr(obj) and secret not in str(obj)
    lock.release()
    # a missing bucket on the same server: an error that names the server
    host = location.split("/", 1)[0]
    with pytest.raises(s3db.S3dbError) as err:
        s3db.connect_sync(f"{scheme}://{userinfo}@{host}/no-such-bucket-py/x")
    assert secret not in str(err.value) and secret not in repr(err.value)


def test_async_calls_need_a_running_loop() -> None:
    db = s3db.connect_sync("memory://no-loop")
    assert "SyncDatabase" in repr(db)
    with pytest.raises(RuntimeError):
        s3db.connect("memory://no-loop")
