"""Plugins: plugin-owned attributes (s3db.js ``addPluginAttribute``) and PluginStorage on
every backend, through the asyncio API and the blocking twin; the plugin-storage vector."""

import asyncio
import json
import os
import re
import time
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

import pytest

import s3db
from conftest import Blocking, delta, open_db

BEHAVIORS = ["user-managed", "body-overflow", "body-only"]
ATTRIBUTES = {"title": "string", "body": "string|optional"}
MAP = {"auditedBy": "pkdv", "score": "p4sy"}
BIG = "Lorem ipsum dolor sit amet, " * 89 + "consectetur."  # 2504 chars, past 2 KB


async def add_plugin_attributes(res: Any) -> None:
    """The two attributes of the plugin-attributes vector, as its plugins add them."""
    first = await res.add_plugin_attribute("auditedBy", "string|optional", "audit")
    assert first == {"auditedBy": "pkdv"}
    second = await res.add_plugin_attribute("score", {"type": "number", "optional": True}, "ranker")
    assert second == MAP
    assert res.plugin_map == MAP


def raw_object(url: str, key: str) -> Optional[Tuple[Dict[str, str], bytes]]:
    """Metadata and body of a stored object (file and S3 backends; None for memory)."""
    if url.startswith("file://"):
        path = os.path.join(url[len("file://") :], *key.split("/"))
        with open(path + ".meta.json", encoding="utf-8") as f:
            meta = json.load(f)["metadata"]
        with open(path, "rb") as f:
            return meta, f.read()
    if url.startswith("http"):
        import boto3

        u = urlsplit(url)
        bucket, _, prefix = u.path.lstrip("/").partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=f"{u.scheme}://{u.hostname}:{u.port}",
            aws_access_key_id=u.username,
            aws_secret_access_key=u.password,
            region_name="us-east-1",
        )
        obj = client.get_object(Bucket=bucket, Key=f"{prefix}/{key}")
        return obj["Metadata"], obj["Body"].read()
    return None


@pytest.mark.parametrize("behavior", BEHAVIORS)
async def test_plugin_fields_are_stored_under_plugin_keys_and_read_back(
    behavior: str, api: str, url: str
) -> None:
    db = await open_db(api, url)
    name = f"pa-{behavior}"
    res = await db.create_resource(name, ATTRIBUTES, behavior=behavior)
    await add_plugin_attributes(res)
    small = {"id": "small", "title": "T", "auditedBy": "alice", "score": 7}
    big = {"id": "big", "title": "T", "body": BIG, "auditedBy": "bob", "score": 8.5}
    for rec in (small, big):
        assert await res.insert(rec) == rec
        assert await res.get(rec["id"]) == rec
        raw = raw_object(url, f"resource={name}/data/id={rec['id']}")
        if raw is not None:
            meta, body = raw
            for key in ("pkdv", "p4sy"):
                assert key in meta or f'"{key}"' in body.decode(), (key, meta, body[:200])
            assert not {"auditedBy", "auditedby", "score"} & set(meta), meta

    # A connection that never registered the plugin reads the fields back, and writes them.
    other = await open_db(api, url)
    theirs = await other.resource(name)
    assert theirs.plugin_map == MAP
    assert await theirs.get("small") == small
    assert await theirs.get("big") == big
    assert (await theirs.update("small", {"score": 9}))["score"] == 9
    assert await res.get("small") == {**small, "score": 9}
    updated = await res.update("big", {"auditedBy": "carol"})
    assert updated == {**big, "auditedBy": "carol"}
    assert await theirs.get("big") == updated


async def test_adding_the_same_attribute_again_writes_nothing(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource("again", ATTRIBUTES)
    await add_plugin_attributes(res)
    before = db.stats()
    again = await res.add_plugin_attribute("score", {"type": "number", "optional": True}, "ranker")
    assert again == MAP
    assert delta(before, db.stats()).get("put", 0) == 0
    # Nor does redefining the resource with its own attributes: the plugin's stay.
    redefined = await db.create_resource("again", ATTRIBUTES)
    assert delta(before, db.stats()).get("put", 0) == 0
    assert redefined.plugin_map == MAP


async def test_plugin_attribute_errors_are_typed_and_change_nothing(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource("errs", ATTRIBUTES)
    await add_plugin_attributes(res)
    before = db.stats()
    cases: Any = [
        (("title", "string", "audit"), s3db.ConflictError),  # the resource's own
        (("score", "number", "other"), s3db.ConflictError),  # another plugin's
        (("bad", "strng|optional", "audit"), s3db.ValidationError),
        (("x", "string", "../p"), s3db.InvalidArgumentError),
        (("x", 42, "audit"), TypeError),
        ((None, "string", "audit"), TypeError),
        (("x", "string", b"audit"), TypeError),
        (("x", {"type": object()}, "audit"), TypeError),
    ]
    for args, error in cases:
        with pytest.raises(error):
            await res.add_plugin_attribute(*args)
    with pytest.raises(s3db.ConflictError):
        await res.remove_plugin_attribute("score", "other")
    with pytest.raises(TypeError):
        await res.remove_plugin_attribute(1, "ranker")
    assert delta(before, db.stats()).get("put", 0) == 0
    assert res.plugin_map == MAP
    # Plugin fields are validated like any other.
    with pytest.raises(s3db.ValidationError) as err:
        await res.insert({"title": "t", "score": "high"})
    assert "score" in str(err.value)


async def test_removed_plugin_attributes_still_read_and_keep_their_key(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource("burn", ATTRIBUTES)
    await add_plugin_attributes(res)
    await res.insert({"id": "a", "title": "t", "score": 3})
    assert await res.remove_plugin_attribute("score", "ranker") is True
    assert await res.remove_plugin_attribute("score", "ranker") is False
    assert res.plugin_map == {"auditedBy": "pkdv"}
    assert await res.get("a") == {"id": "a", "title": "t", "score": 3}
    with pytest.raises(s3db.ValidationError):
        await res.insert({"id": "b", "title": "t", "score": 4})
    assert await res.add_plugin_attribute("score", "number|optional", "ranker") == MAP
    assert (await (await (await open_db(api, url)).resource("burn")).get("a"))["score"] == 3


# --- PluginStorage ----------------------------------------------------------------------------


class BlockingStorage(Blocking):
    """``SyncPluginStorage`` behind the async shape; ``key`` is not awaited in either API."""

    def key(self, *parts: str, resource: Optional[str] = None) -> str:
        return self._target.key(*parts, resource=resource)  # type: ignore[no-any-return]

    def get_plugin_key(self, resource: Optional[str], *parts: str) -> str:
        return self._target.get_plugin_key(resource, *parts)  # type: ignore[no-any-return]


def plugin_storage(db: Any, slug: str) -> Any:
    if isinstance(db, Blocking):
        return BlockingStorage(db._target.plugin_storage(slug))
    return db.plugin_storage(slug)


async def test_plugin_storage_documents(mdb: Any) -> None:
    ps = plugin_storage(mdb, "my-plugin")
    assert ps.slug == "my-plugin"
    config = ps.key("config")
    assert config == ps.get_plugin_key(None, "config") == "plugin=my-plugin/config"
    cached = ps.key("cache", "abc.json", resource="users")
    assert cached == "resource=users/plugin=my-plugin/cache/abc.json"
    doc = {"a": 1, "name": "x", "flag": True, "list": [1, 2], "nested": {"b": 2}, "text": "héllo"}
    for behavior in (None, "body-overflow", "body-only", "enforce-limits"):
        etag = await ps.set(config, doc, behavior=behavior)
        assert isinstance(etag, str) and etag
        assert await ps.get(config) == doc
    big = {"small": "s", "large": "L" * 2500}
    await ps.set(ps.key("big"), big)
    await ps.set(cached, {"value": 42}, ttl=60)
    assert await ps.get(ps.key("big")) == big
    assert await ps.get(cached) == {"value": 42}
    assert await ps.get(ps.key("missing")) is None
    assert await ps.has(config) and not await ps.has(ps.key("missing"))
    assert await ps.list() == ["plugin=my-plugin/big", "plugin=my-plugin/config"]
    assert await ps.list("co") == ["plugin=my-plugin/config"]
    assert await ps.list_for_resource("users") == [cached]
    assert await ps.list_for_resource("users", "nothing/") == []

    # Conditional writes.
    got = await ps.get_with_etag(config)
    assert got is not None and got[0] == doc
    with pytest.raises(s3db.PreconditionFailedError):
        await ps.set(config, {"a": 2}, if_none_match=True)
    etag = await ps.set(config, {"a": 2}, if_match=got[1])
    with pytest.raises(s3db.PreconditionFailedError):
        await ps.set(config, {"a": 3}, if_match=got[1])
    assert await ps.get_with_etag(config) == ({"a": 2}, etag)
    assert await ps.get_with_etag(ps.key("missing")) is None
    await ps.set(ps.key("new"), {"n": 1}, if_none_match=True)

    assert await ps.delete(ps.key("new")) is True
    assert await ps.delete(ps.key("new")) is False
    assert await ps.delete_all("users") == 1
    assert await ps.delete_all() == 2
    assert await ps.list() == [] and await ps.list_for_resource("users") == []


async def test_plugin_storage_ttl_expires_documents(mdb: Any) -> None:
    ps = plugin_storage(mdb, "ttl")
    key = ps.key("short")
    await ps.set(key, {"v": 1}, ttl=0.3)
    await ps.set(ps.key("long"), {"v": 2}, ttl=60.0)
    assert await ps.get(key) == {"v": 1}
    await asyncio.sleep(0.5)
    assert await ps.get(key) is None
    assert not await ps.has(key)
    # Deleted on read where its etag names its version; on S3 an empty-bodied document's etag
    # (the MD5 of nothing) does not, so it is left for the next write (docs/reliability.md).
    assert await ps.list() in (["plugin=ttl/long"], ["plugin=ttl/long", "plugin=ttl/short"])
    assert await ps.get(ps.key("long")) == {"v": 2}


async def test_plugin_storage_sequences_and_locks(mdb: Any) -> None:
    ps = plugin_storage(mdb, "seq")
    assert await ps.get_sequence("counter") is None
    assert [await ps.next_sequence("counter") for _ in range(3)] == [1, 2, 3]
    assert await ps.get_sequence("counter") == 4
    orders = [
        await ps.next_sequence("orders", resource="users", initial_value=100, increment=5)
        for _ in range(2)
    ]
    assert orders == [100, 105]
    assert await ps.get_sequence("orders", "users") == 110
    assert await ps.get_sequence("orders") is None
    await ps.reset_sequence("counter", 50)
    assert await ps.next_sequence("counter") == 50
    await ps.delete_sequence("orders", "users")
    assert await ps.next_sequence("orders", resource="users", initial_value=7) == 7

    lock = await ps.acquire_lock("job-1", ttl=30, worker_id="worker-A")
    assert isinstance(lock, s3db.PluginLock)
    assert (lock.name, lock.key, lock.worker_id) == ("job-1", "plugin=seq/locks/job-1", "worker-A")
    assert len(lock.token) == 22 and lock.etag
    assert abs(lock.expires_at - (time.time() + 30) * 1000) < 10_000
    assert await ps.is_locked("job-1")
    assert await ps.acquire_lock("job-1", timeout=0.2) is None
    assert await ps.release_lock(lock) is True
    assert await ps.release_lock(lock) is False
    assert not await ps.is_locked("job-1")
    again = await ps.acquire_lock("job-1", ttl=0.2)
    assert again is not None and again.worker_id == "unknown"
    await asyncio.sleep(0.4)
    taken = await ps.acquire_lock("job-1")  # the expired lock is taken over
    assert taken is not None and taken.token != again.token
    assert await ps.release_lock(again) is False


async def test_plugin_storage_errors(mdb: Any) -> None:
    for slug in ("", "a/b", ".."):
        with pytest.raises(s3db.InvalidArgumentError):
            plugin_storage(mdb, slug)
    ps = plugin_storage(mdb, "errs")
    with pytest.raises(s3db.InvalidArgumentError):
        ps.key("a", "..")
    with pytest.raises(TypeError):
        ps.key("a", 1)
    with pytest.raises(TypeError):
        ps.key("a", resource=5)
    key = ps.key("k")
    bad_calls: List[Tuple[Any, Any, type]] = [
        ((key, 42), {}, TypeError),
        ((key, [1]), {}, TypeError),
        ((None, {}), {}, TypeError),
        ((key, {"a": 1}), {"behavior": "nope"}, s3db.InvalidArgumentError),
        ((key, {"a": 1}), {"ttl": -1}, s3db.InvalidArgumentError),
        ((key, {"a": 1}), {"ttl": "1"}, TypeError),
        ((key, {"a": 1}), {"if_match": "x", "if_none_match": True}, s3db.InvalidArgumentError),
        ((key, {"a": 1}), {"if_none_match": 1}, TypeError),
        (("plugin=errs//x", {"a": 1}), {}, s3db.InvalidArgumentError),
        ((key, {"x": "v" * 3000}), {"behavior": "enforce-limits"}, s3db.ValidationError),
    ]
    for args, kwargs, error in bad_calls:
        with pytest.raises(error):
            await ps.set(*args, **kwargs)
    assert await ps.list() == []
    with pytest.raises(TypeError):
        await ps.next_sequence("n", initial_value=1.5)
    with pytest.raises(s3db.InvalidArgumentError):
        await ps.next_sequence("a/b")
    with pytest.raises(TypeError):
        await ps.release_lock("job")
    with pytest.raises(TypeError):
        await ps.acquire_lock("job", ttl="30")


# --- the plugin-storage vector ----------------------------------------------------------------

VECTORS = os.environ.get("S3DB_VECTORS") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors"
)
ISO_TIMES = re.compile(r'"(createdAt|updatedAt)":"[^"]*"')


def stored_objects(root: str) -> Dict[str, Tuple[Dict[str, str], Optional[str], bytes]]:
    """key → (metadata, content type, body) of a ``file://`` store, ``s3db.json`` left out."""
    out = {}
    for d, _, files in os.walk(root):
        for name in files:
            if name.endswith(".meta.json"):
                path = os.path.join(d, name[: -len(".meta.json")])
                key = os.path.relpath(path, root).replace(os.sep, "/")
                with open(path + ".meta.json", encoding="utf-8") as f:
                    side = json.load(f)
                with open(path, "rb") as f:
                    out[key] = (side["metadata"], side.get("contentType"), f.read())
    out.pop("s3db.json", None)
    return out


async def test_plugin_storage_vector(api: str, tmp_path: Any) -> None:
    """Every PluginStorage step of s3db.js's plugin-storage vector through the binding, on a
    ``file://`` store: same keys, same results, and each object stored as s3db.js stored it
    (metadata, content type, body). The times are the vector's fake clock there and the
    real clock here: they are checked against it and then compared as recorded."""
    with open(os.path.join(VECTORS, "plugin-storage.json"), encoding="utf-8") as f:
        v = json.load(f)
    steps = {s["label"]: s.get("result") for s in v["steps"]}
    ops = v["operations"]
    root = str(tmp_path / "store")
    db = await open_db(api, "file://" + root)
    ps = plugin_storage(db, "my-plugin")

    keys = steps["getPluginKey examples"]
    assert ps.key("config") == keys["global"]
    assert ps.get_plugin_key("users", "cache", "abc.json") == keys["perResource"]
    assert ps.key("sequence=counter", "value") == keys["seqGlobal"]
    assert ps.key("sequence=counter", "lock", resource="users") == keys["seqResource"]

    # The inputs, as the recorded PUTs show them before encoding.
    (big_put,) = [o for o in ops if o["op"] == "putObject" and o["key"] == "plugin=my-plugin/big"]
    big = {
        "small": big_put["metadata"]["small"],
        "large": json.loads(big_put["body"])["large"],
        "mid": big_put["metadata"]["mid"],
    }
    config = steps["get config"]
    started = int(time.time() * 1000)
    await ps.set(ps.key("config"), config)
    await ps.set(ps.key("big"), big)
    await ps.set(ps.key("bodyonly"), {"a": 1, "b": "two"}, behavior="body-only")
    await ps.set(ps.key("enforced"), {"a": 1, "b": "two"}, behavior="enforce-limits")
    await ps.set(ps.key("cache", "abc.json", resource="users"), {"value": 42}, ttl=60)
    ended = int(time.time() * 1000)

    assert await ps.get("plugin=my-plugin/config") == steps["get config"]
    got = await ps.get("plugin=my-plugin/big")
    want = steps["get big"]
    assert (got["small"], len(got["large"]), len(got["mid"]), len(got)) == (
        want["small"],
        want["largeLength"],
        want["midLength"],
        3,
    )
    assert await ps.list() == steps["list()"]
    for n in ("#1", "#2", "#3"):
        assert await ps.next_sequence("counter") == steps[f"nextSequence counter {n}"]
    orders = await ps.next_sequence("orders", resource="users", initial_value=100)
    assert orders == steps["nextSequence per-resource"]
    lock = await ps.acquire_lock("job-1", ttl=30, worker_id="worker-A")
    want = steps["acquireLock job-1 ttl 30 (kept held)"]
    assert (lock.name, lock.key, lock.worker_id) == (want["name"], want["key"], want["workerId"])
    assert len(lock.token) == len(want["token"])

    recorded = {
        o["key"]: o
        for o in v["objects"]
        if o["key"].startswith(("plugin=my-plugin/", "resource=users/plugin=my-plugin/"))
        and o["key"] != "plugin=my-plugin/sequence=global/value"  # DistributedSequence
    }
    ours = stored_objects(root)
    assert len(recorded) == 8 and sorted(ours) == sorted(recorded)
    for key, o in recorded.items():
        meta, content_type, body = ours[key]
        text = body.decode()
        if "_expiresat" in meta:  # set with ttl 60
            assert started + 60_000 <= int(meta["_expiresat"]) <= ended + 60_000
            meta = {**meta, "_expiresat": o["metadata"]["_expiresat"]}
        if key.endswith("/value"):
            text = ISO_TIMES.sub(lambda m: f'"{m[1]}":"<time>"', text)
            o = {**o, "body": ISO_TIMES.sub(lambda m: f'"{m[1]}":"<time>"', o["body"])}
        if "/locks/" in key:
            doc, theirs = json.loads(text), json.loads(o["body"])
            assert doc["_expiresAt"] == lock.expires_at == doc["acquiredAt"] + 30_000
            assert theirs["_expiresAt"] == theirs["acquiredAt"] + 30_000
            assert doc["token"] == lock.token
            recorded_times = {k: theirs[k] for k in ("token", "acquiredAt", "_expiresAt")}
            text = json.dumps({**doc, **recorded_times}, separators=(",", ":"))
        assert meta == o["metadata"], key
        assert content_type == o["contentType"], key
        assert text == o["body"], key
