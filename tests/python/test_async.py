"""The asyncio API against every backend (see conftest.py)."""

import asyncio
from typing import Any

import pytest

import s3db
from conftest import USERS, delta

# --- resources ------------------------------------------------------------------------------


async def test_create_and_look_up_resources(db: s3db.Database) -> None:
    assert await db.list_resources() == []
    users = await db.create_resource("users", USERS)
    assert isinstance(users, s3db.Resource)
    assert users.name == "users"
    await db.create_resource("orders", {"ref": "string"})
    assert sorted(await db.list_resources()) == ["orders", "users"]
    again = await db.resource("users")
    assert again.name == "users"
    with pytest.raises(s3db.NotFoundError) as err:
        await db.resource("nope")
    assert err.value.code == "NOT_FOUND"


async def test_resource_is_seen_by_a_second_connection(
    db: s3db.Database, users: s3db.Resource, url: str
) -> None:
    rec = await users.insert({"id": "u1", "name": "Ada"})
    other = await s3db.connect(url)
    other_users = await other.resource("users")
    assert await other_users.get("u1") == rec


async def test_crud(users: s3db.Resource) -> None:
    rec = await users.insert({"id": "ada", "name": "Ada", "email": "ada@example.org"})
    assert rec == {"id": "ada", "name": "Ada", "email": "ada@example.org"}
    assert await users.get("ada") == rec
    assert await users.get_or_none("ada") == rec
    assert await users.exists("ada") is True

    updated = await users.update("ada", {"email": "ada@lovelace.org"})
    assert updated == {"id": "ada", "name": "Ada", "email": "ada@lovelace.org"}
    assert await users.get("ada") == updated

    # None removes an optional field
    assert await users.update("ada", {"email": None}) == {"id": "ada", "name": "Ada"}

    assert await users.delete("ada") is None
    assert await users.exists("ada") is False
    assert await users.get_or_none("ada") is None
    with pytest.raises(s3db.NotFoundError):
        await users.get("ada")
    with pytest.raises(s3db.NotFoundError):
        await users.delete("ada")  # deleting a missing id is NOT_FOUND


async def test_insert_generates_an_id(users: s3db.Resource) -> None:
    rec = await users.insert({"name": "Grace"})
    assert isinstance(rec["id"], str) and len(rec["id"]) == 22
    assert await users.get(rec["id"]) == rec
    rec2 = await users.insert({"id": None, "name": "Linus"})
    assert rec2["id"] != rec["id"]


async def test_unicode_round_trip(users: s3db.Resource) -> None:
    name = "Zoë Ångström 東京 🚀 \"quotes\" and\ttabs"
    rec = await users.insert({"id": "uni", "name": name})
    assert (await users.get("uni"))["name"] == name
    assert rec["name"] == name


async def test_duplicate_id_is_already_exists(users: s3db.Resource) -> None:
    await users.insert({"id": "dup", "name": "first"})
    with pytest.raises(s3db.AlreadyExistsError) as err:
        await users.insert({"id": "dup", "name": "second"})
    assert err.value.code == "ALREADY_EXISTS"
    assert isinstance(err.value, s3db.S3dbError)
    assert (await users.get("dup"))["name"] == "first"


async def test_missing_is_not_found(users: s3db.Resource) -> None:
    with pytest.raises(s3db.NotFoundError) as err:
        await users.get("ghost")
    assert err.value.code == "NOT_FOUND"
    assert "ghost" in str(err.value)
    with pytest.raises(s3db.NotFoundError):
        await users.update("ghost", {"name": "x"})
    with pytest.raises(s3db.NotFoundError):
        await users.delete("ghost")


@pytest.mark.parametrize("bad", ["a/b", "..", "", ".", "a=b", "x\ny"])
async def test_invalid_ids(users: s3db.Resource, bad: str) -> None:
    for call in (
        lambda: users.get(bad),
        lambda: users.get_or_none(bad),
        lambda: users.exists(bad),
        lambda: users.delete(bad),
        lambda: users.update(bad, {"name": "x"}),
        lambda: users.insert({"id": bad, "name": "x"}),
    ):
        with pytest.raises(s3db.InvalidArgumentError) as err:
            await call()
        assert err.value.code == "INVALID_ARGUMENT"


async def test_invalid_names(db: s3db.Database) -> None:
    with pytest.raises(s3db.InvalidArgumentError):
        await db.create_resource("a/b", USERS)
    with pytest.raises(s3db.InvalidArgumentError):
        await db.resource("")
    with pytest.raises(s3db.InvalidArgumentError):
        await db.lock("..")
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("a/b")
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("ok", increment=0)


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"age": "integer"},
        {"age": "number|min:abc"},
        {"name": "string|bogus"},
        {"name": 5},
        {"_hidden": "string"},
        {"id": "string"},
    ],
)
async def test_invalid_schema_is_validation_error(db: s3db.Database, attributes: Any) -> None:
    with pytest.raises(s3db.ValidationError) as err:
        await db.create_resource("things", attributes)
    assert err.value.code == "VALIDATION"
    assert err.value.details == []  # a schema error names no record field


async def test_records_are_validated(users: s3db.Resource) -> None:
    with pytest.raises(s3db.ValidationError):
        await users.insert({"email": "no-name@example.org"})  # name is required
    with pytest.raises(s3db.ValidationError):
        await users.insert({"name": "x", "unknown": "y"})  # undeclared fields are refused
    for lost in ("null", "undefined"):  # s3db.js would read these back as absent
        with pytest.raises(s3db.ValidationError):
            await users.insert({"name": lost})
    with pytest.raises(s3db.ValidationError):
        await users.insert({"name": 5})  # a dict of the wrong shape: schema, not argument
    with pytest.raises(s3db.ValidationError):
        await users.insert({"name": "x", "id": ["7"]})
    assert (await users.insert({"name": "x", "id": 7}))["id"] == "7"  # as s3db.js: a str id
    await users.insert({"id": "v", "name": "ok"})
    with pytest.raises(s3db.ValidationError):
        await users.update("v", {"name": None})  # required
    with pytest.raises(s3db.ValidationError):
        await users.update("v", {"id": "other"})
    assert await users.update("v", {"id": "v", "email": "e"}) == {
        "id": "v",
        "name": "ok",
        "email": "e",
    }


# --- wrong Python types: InvalidArgumentError (also TypeError and ValueError) -----------------


@pytest.mark.parametrize("record", [42, "name", None, ["name", "x"], 1.5, b"{}"])
async def test_record_must_be_a_dict(users: s3db.Resource, record: Any) -> None:
    with pytest.raises(s3db.InvalidArgumentError) as err:
        await users.insert(record)
    assert isinstance(err.value, TypeError)
    assert "dict" in str(err.value)


@pytest.mark.parametrize(
    "record, where",
    [
        ({"name": {1, 2}}, "name"),
        ({"name": b"bytes"}, "name"),
        ({"name": object()}, "name"),
        ({"name": ["ok", {"deep": {3j}}]}, "name[1].deep"),
        ({1: "x"}, "keys must be str"),
        ({"name": float("nan")}, "name"),
        ({"name": float("inf")}, "name"),
        ({"name": 2**70}, "name"),
        ({"name": "\udcff"}, "name"),
    ],
)
async def test_unsupported_values(users: s3db.Resource, record: Any, where: str) -> None:
    with pytest.raises(s3db.InvalidArgumentError) as err:
        await users.insert(record)
    assert where in str(err.value)
    assert await users.count() == 0


async def test_deep_nesting_is_refused(users: s3db.Resource) -> None:
    value: Any = "leaf"
    for _ in range(200):
        value = [value]
    with pytest.raises(s3db.InvalidArgumentError, match="deeper"):
        await users.insert({"name": value})
    cyclic: Any = []
    cyclic.append(cyclic)
    with pytest.raises(s3db.InvalidArgumentError):
        await users.insert({"name": cyclic})


async def test_mappings_and_tuples_are_accepted(users: s3db.Resource) -> None:
    from collections import OrderedDict
    from types import MappingProxyType

    rec = await users.insert(MappingProxyType({"id": "m", "name": "proxy"}))
    assert rec == {"id": "m", "name": "proxy"}
    assert await users.update("m", OrderedDict(email="e")) == {
        "id": "m",
        "name": "proxy",
        "email": "e",
    }
    # a tuple converts to a JSON array (which this string-only schema then refuses)
    with pytest.raises(s3db.ValidationError, match=r"expected string, got \[") as err:
        await users.insert({"name": ("a", "b")})
    assert err.value.details[0]["field"] == "name"


@pytest.mark.parametrize("bad_id", [123, None, b"id", ["x"]])
async def test_ids_must_be_str(users: s3db.Resource, bad_id: Any) -> None:
    with pytest.raises(s3db.InvalidArgumentError, match="expected str"):
        await users.get(bad_id)
    with pytest.raises(TypeError):
        await users.exists(bad_id)


async def test_wrong_argument_types_elsewhere(db: s3db.Database) -> None:
    with pytest.raises(s3db.InvalidArgumentError):
        await db.create_resource("users", ["name"])  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        await db.create_resource(5, USERS)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        db.lock("l", ttl="30")  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        db.lock("l", ttl=-1)
    with pytest.raises(s3db.InvalidArgumentError):
        db.lock("l", timeout=float("nan"))
    with pytest.raises(s3db.InvalidArgumentError):
        db.lock("l", ttl=True)
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("s", start=1.5)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("s", increment=2**64)
    with pytest.raises(s3db.InvalidArgumentError):
        await db.sequence("s").reset("1")  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        await s3db.connect(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await db.create_resource("users")  # type: ignore[call-arg]


# --- request counts ---------------------------------------------------------------------------


async def test_request_counts(db: s3db.Database, users: s3db.Resource) -> None:
    # The futures start when the method is called, so each call is made inside measured().
    async def measured(call: Any) -> Any:
        before = db.stats()
        await call()
        return delta(before, db.stats())

    assert await measured(lambda: users.insert({"id": "r", "name": "n"})) == {"put": 1}
    assert await measured(lambda: users.get("r")) == {"get": 1}
    assert await measured(lambda: users.get_or_none("r")) == {"get": 1}
    assert await measured(lambda: users.exists("r")) == {"head": 1}
    assert await measured(lambda: users.update("r", {"email": "e"})) == {"get": 1, "put": 1}
    assert await measured(users.count) == {"list": 1}
    assert await measured(lambda: users.delete("r")) == {"head": 1, "delete": 1}

    seq = db.sequence("ids")
    assert await measured(seq.next) == {"get": 1, "put": 1}
    assert await measured(seq.next) == {"get": 1, "put": 1}
    assert await measured(seq.current) == {"get": 1}


async def test_stats_and_reset(db: s3db.Database, users: s3db.Resource) -> None:
    stats = db.stats()
    assert set(stats) == {"get", "head", "put", "copy", "delete", "list"}
    assert all(isinstance(v, int) for v in stats.values())
    db.reset_stats()
    assert sum(db.stats().values()) == 0
    await users.insert({"name": "x"})
    assert db.stats()["put"] == 1


# --- listing ----------------------------------------------------------------------------------


async def test_list_and_count(users: s3db.Resource) -> None:
    assert await users.count() == 0
    assert await users.list_ids() == []
    assert await users.list() == []
    ids = [f"id-{i:02d}" for i in range(12)]
    await asyncio.gather(*(users.insert({"id": i, "name": f"n{i}"}) for i in ids))
    assert await users.count() == 12
    assert sorted(await users.list_ids()) == ids
    records = await users.list()
    assert sorted(r["id"] for r in records) == ids
    assert all(r["name"] == f"n{r['id']}" for r in records)
    await users.delete("id-00")
    assert await users.count() == 11


# --- locks ------------------------------------------------------------------------------------


async def test_lock_is_exclusive(db: s3db.Database) -> None:
    lock = await db.lock("job", ttl=30.0)
    assert isinstance(lock, s3db.Lock)
    assert lock.name == "job"
    assert lock.fencing_token >= 1
    assert isinstance(lock.holder_id, str) and lock.holder_id
    with pytest.raises(s3db.LockNotAcquiredError) as err:
        await db.lock("job", timeout=0)
    assert err.value.code == "LOCK_NOT_ACQUIRED"
    await lock.release()
    again = await db.lock("job")
    assert again.fencing_token > lock.fencing_token
    await again.release()


async def test_fencing_tokens_increase(db: s3db.Database, url: str) -> None:
    other = await s3db.connect(url)
    tokens = []
    for i in range(4):
        lock = await (db if i % 2 else other).lock("fenced")
        tokens.append(lock.fencing_token)
        await lock.release()
    assert tokens == sorted(tokens) and len(set(tokens)) == 4


async def test_async_with_lock(db: s3db.Database) -> None:
    async with db.lock("ctx", ttl=10.0) as lock:
        assert isinstance(lock, s3db.Lock)
        with pytest.raises(s3db.LockNotAcquiredError):
            await db.lock("ctx")
        first = lock.fencing_token
    # released on exit
    async with db.lock("ctx") as lock2:
        assert lock2.fencing_token > first

    with pytest.raises(RuntimeError, match="boom"):
        async with db.lock("ctx"):
            raise RuntimeError("boom")
    # released even though the block raised
    lock3 = await db.lock("ctx")
    async with lock3:  # a Lock is an async context manager too
        pass
    relock = await db.lock("ctx")
    assert relock.fencing_token > lock3.fencing_token
    await relock.release()


async def test_lock_context_enters_once(db: s3db.Database) -> None:
    ctx = db.lock("once")
    async with ctx:
        pass
    with pytest.raises(s3db.InvalidArgumentError):
        async with ctx:
            pass


async def test_lock_extend_release(db: s3db.Database) -> None:
    lock = await db.lock("ext", ttl=5.0)
    await lock.extend(60.0)
    await lock.release()
    await lock.release()  # twice: no-op
    with pytest.raises(s3db.LockLostError) as err:
        await lock.extend(5.0)
    assert err.value.code == "LOCK_LOST"


async def test_expired_lock_is_taken_over(db: s3db.Database) -> None:
    old = await db.lock("short", ttl=0.3)
    new = await db.lock("short", timeout=5.0)  # waits for the expiry, then takes over
    assert new.fencing_token > old.fencing_token
    with pytest.raises(s3db.LockLostError):
        await old.extend(10.0)
    await new.release()


async def test_lock_waits_for_release(db: s3db.Database) -> None:
    held = await db.lock("wait")

    async def release_soon() -> None:
        await asyncio.sleep(0.2)
        await held.release()

    _, waited = await asyncio.gather(release_soon(), db.lock("wait", timeout=5.0))
    assert waited.fencing_token > held.fencing_token
    await waited.release()


# --- sequences --------------------------------------------------------------------------------


async def test_sequence(db: s3db.Database) -> None:
    seq = db.sequence("orders")
    assert isinstance(seq, s3db.Sequence)
    assert seq.name == "orders"
    assert await seq.current() is None
    assert [await seq.next() for _ in range(3)] == [1, 2, 3]
    assert await seq.current() == 4
    assert await seq.reset(100) is None
    assert await seq.current() == 100
    assert await seq.next() == 100
    assert await seq.next() == 101


async def test_sequence_start_and_increment(db: s3db.Database) -> None:
    seq = db.sequence("tickets", start=1000, increment=10)
    assert [await seq.next() for _ in range(3)] == [1000, 1010, 1020]
    down = db.sequence("countdown", start=3, increment=-1)
    assert [await down.next() for _ in range(4)] == [3, 2, 1, 0]


async def test_sequence_concurrent_next_is_unique(db: s3db.Database) -> None:
    seq = db.sequence("shared")
    values = await asyncio.gather(*(seq.next() for _ in range(10)))
    assert sorted(values) == list(range(1, 11))


# --- concurrency ------------------------------------------------------------------------------


async def test_concurrent_updates_of_different_fields_all_survive(db: s3db.Database) -> None:
    fields = [f"f{i}" for i in range(10)]
    res = await db.create_resource("wide", {f: "string|optional" for f in fields})
    await res.insert({"id": "w"})
    await asyncio.gather(*(res.update("w", {f: f"value-{f}"}) for f in fields))
    rec = await res.get("w")
    assert rec == {"id": "w", **{f: f"value-{f}" for f in fields}}


async def test_concurrent_inserts_of_one_id_have_one_winner(users: s3db.Resource) -> None:
    results = await asyncio.gather(
        *(users.insert({"id": "race", "name": f"n{i}"}) for i in range(8)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, s3db.AlreadyExistsError)]
    assert len(winners) == 1 and len(losers) == 7


async def test_futures_start_eagerly_and_can_be_gathered(users: s3db.Resource) -> None:
    fut = users.insert({"id": "eager", "name": "x"})
    assert isinstance(fut, asyncio.Future)
    assert (await fut)["id"] == "eager"
