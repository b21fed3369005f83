"""The blocking twin (``connect_sync`` and the ``Sync*`` classes) against every backend."""

import threading
import time
from typing import Any, List

import pytest

import s3db
from conftest import USERS, delta


def test_sync_crud(sdb: s3db.SyncDatabase, susers: s3db.SyncResource) -> None:
    assert isinstance(sdb, s3db.SyncDatabase)
    assert isinstance(susers, s3db.SyncResource)
    assert sdb.list_resources() == ["users"]
    assert sdb.resource("users").name == "users"
    rec = susers.insert({"id": "ada", "name": "Ada"})
    assert rec == {"id": "ada", "name": "Ada"}
    assert susers.get("ada") == rec
    assert susers.get_or_none("ada") == rec
    assert susers.exists("ada") is True
    assert susers.update("ada", {"email": "a@b.c"}) == {"id": "ada", "name": "Ada", "email": "a@b.c"}
    assert susers.count() == 1
    assert susers.list_ids() == ["ada"]
    assert susers.list() == [{"id": "ada", "name": "Ada", "email": "a@b.c"}]
    assert susers.delete("ada") is None
    assert susers.get_or_none("ada") is None
    assert susers.exists("ada") is False


def test_sync_errors(sdb: s3db.SyncDatabase, susers: s3db.SyncResource) -> None:
    susers.insert({"id": "x", "name": "n"})
    with pytest.raises(s3db.AlreadyExistsError):
        susers.insert({"id": "x", "name": "n"})
    with pytest.raises(s3db.NotFoundError):
        susers.get("missing")
    with pytest.raises(s3db.NotFoundError):
        sdb.resource("missing")
    for bad in ("a/b", "..", ""):
        with pytest.raises(s3db.InvalidArgumentError):
            susers.get(bad)
    with pytest.raises(s3db.ValidationError):
        sdb.create_resource("bad", {"n": "integer"})
    with pytest.raises(s3db.ValidationError):
        susers.insert({"email": "no name"})
    with pytest.raises(s3db.InvalidArgumentError):
        susers.insert(42)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        susers.insert({"name": {"a", "set"}})
    with pytest.raises(s3db.InvalidArgumentError):
        susers.get(7)  # type: ignore[arg-type]


def test_sync_request_counts(sdb: s3db.SyncDatabase, susers: s3db.SyncResource) -> None:
    def measured(call: Any) -> Any:
        before = sdb.stats()
        call()
        return delta(before, sdb.stats())

    assert measured(lambda: susers.insert({"id": "r", "name": "n"})) == {"put": 1}
    assert measured(lambda: susers.get("r")) == {"get": 1}
    assert measured(lambda: susers.update("r", {"email": "e"})) == {"get": 1, "put": 1}
    seq = sdb.sequence("s")
    assert measured(seq.next) == {"get": 1, "put": 1}
    sdb.reset_stats()
    assert sum(sdb.stats().values()) == 0


def test_sync_lock(sdb: s3db.SyncDatabase, url: str) -> None:
    with sdb.lock("job", ttl=10.0) as lock:
        assert isinstance(lock, s3db.SyncLock)
        assert lock.name == "job"
        assert lock.holder_id
        first = lock.fencing_token
        with pytest.raises(s3db.LockNotAcquiredError):
            s3db.connect_sync(url).lock("job", timeout=0)
        lock.extend(20.0)
    # released on exit
    second = sdb.lock("job")
    assert second.fencing_token > first
    second.release()
    second.release()
    with pytest.raises(s3db.LockLostError):
        second.extend(1.0)

    with pytest.raises(KeyError):
        with sdb.lock("job"):
            raise KeyError("inside")
    with sdb.lock("job", timeout=0) as third:  # released despite the exception
        assert third.fencing_token > second.fencing_token


def test_sync_sequence(sdb: s3db.SyncDatabase) -> None:
    seq = sdb.sequence("orders", start=10, increment=2)
    assert isinstance(seq, s3db.SyncSequence)
    assert seq.name == "orders"
    assert seq.current() is None
    assert [seq.next(), seq.next(), seq.next()] == [10, 12, 14]
    assert seq.current() == 16
    seq.reset(1)
    assert seq.next() == 1


def test_calls_from_many_threads(sdb: s3db.SyncDatabase, susers: s3db.SyncResource) -> None:
    errors: List[BaseException] = []
    seq = sdb.sequence("threads")
    values: List[int] = []

    def work(t: int) -> None:
        try:
            for i in range(5):
                susers.insert({"id": f"t{t}-{i}", "name": "x"})
                values.append(seq.next())
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert susers.count() == 30
    assert sorted(values) == list(range(1, 31))


def test_gil_is_released_while_blocking(sdb: s3db.SyncDatabase, url: str) -> None:
    """While one thread waits in a blocking call (a lock held elsewhere, timeout 1 s), the
    main thread keeps running Python code."""
    holder = s3db.connect_sync(url).lock("busy", ttl=30.0)
    outcome: List[Any] = []

    def blocked() -> None:
        started = time.monotonic()
        try:
            sdb.lock("busy", timeout=1.0)
        except s3db.LockNotAcquiredError as e:
            outcome.append(e)
        outcome.append(time.monotonic() - started)

    th = threading.Thread(target=blocked)
    th.start()
    ticks = 0
    last = time.monotonic()
    longest_gap = 0.0
    while th.is_alive():
        ticks += 1
        now = time.monotonic()
        longest_gap = max(longest_gap, now - last)
        last = now
        time.sleep(0.001)
    th.join()
    holder.release()
    assert isinstance(outcome[0], s3db.LockNotAcquiredError)
    assert outcome[1] >= 0.9
    assert ticks > 50, ticks
    assert longest_gap < 0.5, longest_gap


def test_sync_and_async_see_the_same_data(url: str) -> None:
    import asyncio

    sdb = s3db.connect_sync(url)
    res = sdb.create_resource("users", USERS)
    res.insert({"id": "shared", "name": "both"})

    async def read() -> Any:
        db = await s3db.connect(url)
        return await (await db.resource("users")).get("shared")

    assert asyncio.run(read()) == {"id": "shared", "name": "both"}


def test_sync_data_model_values(sdb: s3db.SyncDatabase) -> None:
    """The blocking twin returns plain values (the scenarios of test_data_model.py run through
    both APIs; here: the types the blocking calls return directly)."""
    res = sdb.create_resource(
        "orders",
        {"status": "string", "amount": "number", "paid": "boolean", "lines": "array|items:object"},
        partitions=["status"],
        paranoid=False,
    )
    assert isinstance(res, s3db.SyncResource)
    rec = {"id": "o1", "status": "open", "amount": 2.5, "paid": False, "lines": [{"sku": "a"}]}
    assert res.insert(dict(rec)) == rec
    got = res.get_with_etag("o1")
    assert type(got) is tuple and got[0] == rec and isinstance(got[1], str)
    res.update("o1", {"paid": True})
    with pytest.raises(s3db.PreconditionFailedError):
        res.update_if("o1", {"paid": False}, got[1])  # stale since the update
    assert res.get("o1")["paid"] is True
    items = res.insert_many([{"id": "o2", "status": "x", "amount": 1, "paid": True, "lines": []}])
    assert items == [{"index": 0, "id": "o2", "record": res.get("o2")}]
    assert res.get_many(range(0)) == {"found": [], "missing": []}  # any sequence of ids
    with pytest.raises(s3db.InvalidArgumentError):
        res.get_many(i for i in ["o1"])  # a generator is not a sequence
    with pytest.raises(s3db.InvalidArgumentError):
        res.delete_many(b"o1")
    assert res.count("byStatus", {"status": "x"}) == 1
    assert res.reindex("byStatus") == {"written": 0, "deleted": 0}
    assert res.page(1)["cursor"] is not None
    assert [r["id"] for r in res.query({"amount": {"$gt": 2}})] == ["o1"]
    with pytest.raises(s3db.ValidationError) as err:
        res.upsert({"id": "o3", "status": "x"})
    assert {i["field"] for i in err.value.details} == {"amount", "paid", "lines"}
    assert res.delete_many(["o1", "o9"])[1]["error"]["code"] == "NOT_FOUND"
    assert res.delete_all() == 1
    assert res.list() == [] and res.list_ids("byStatus") == []
