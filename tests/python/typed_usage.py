"""Type-checked by test_typing.py (``mypy --strict``): the public API as a user writes it."""

import asyncio
from typing import Any, Dict, List, Optional, Tuple

import s3db


async def use_async(url: str) -> int:
    db: s3db.Database = await s3db.connect(url, passphrase="pw")
    users: s3db.Resource = await db.create_resource("users", {"name": "string|required"})
    rec: Dict[str, Any] = await users.insert({"name": "Ada"})
    got: Dict[str, Any] = await users.get(rec["id"])
    maybe: Optional[Dict[str, Any]] = await users.get_or_none("x")
    ok: bool = await users.exists("x")
    await users.update(got["id"], {"name": "Ada L."})
    ids: List[str] = await users.list_ids()
    records: List[Dict[str, Any]] = await users.list()
    n: int = await users.count()
    await users.delete(got["id"])
    names: List[str] = await db.list_resources()
    stats: Dict[str, int] = db.stats()
    db.reset_stats()
    async with db.lock("job", ttl=10.0, timeout=1.0) as lock:
        token: int = lock.fencing_token
        holder: str = lock.holder_id
        await lock.extend(5.0)
    lock2: s3db.Lock = await db.lock("job")
    await lock2.release()
    seq: s3db.Sequence = db.sequence("ids", start=1, increment=1)
    value: int = await seq.next()
    cur: Optional[int] = await seq.current()
    await seq.reset(1)
    results = await asyncio.gather(users.count(), seq.next())
    try:
        await users.get("missing")
    except s3db.NotFoundError as e:
        code: str = e.code
    except s3db.S3dbError as e:
        code = e.code
    del maybe, ok, ids, records, names, stats, token, holder, cur, results, code
    return n + value + await use_data_model(db) + await use_coordination(db)


async def use_coordination(db: s3db.Database) -> int:
    locked: bool = await db.is_locked("job")
    info: Optional[s3db.LockInfo] = await db.lock_info("job")
    if info is not None:
        print(info["holder_id"], info["fencing_token"], info["expires_at"])

    def on_lost(message: str) -> None:
        print("lost", message)

    async with db.lock("job", ttl=3.0, auto_renew=True, on_lost=on_lost) as lock:
        lost: bool = lock.is_lost
        ttl: float = lock.ttl
        version: str = await lock.guarded_put("doc", {"n": 1})
        lock.stop_renewing()
        lock.auto_renew()
    await db.fenced_put("doc", [1, 2], lock.fencing_token)
    fenced: Optional[s3db.Fenced] = await db.fenced_get("doc")
    seq = db.sequence("fast", batch_size=100)
    await seq.delete()
    names: List[str] = await db.list_sequences()

    state: s3db.State = db.state("app")
    v: str = await state.set("k", {"a": 1}, ttl=60)
    entry: Optional[s3db.StateEntry] = await state.get("k")
    updated: s3db.StateEntry = await state.update("k", lambda old: {"a": 2})
    cas: s3db.CasResult = await state.compare_and_swap("k", updated["version"], None)
    hits: int = await state.increment("hits") + await state.decrement("hits", by=2)
    hits += await state.counter("hits")
    await state.reset("hits")
    await state.delete("k")
    keys: List[str] = await state.keys()

    coord: s3db.Coordinator = db.coordinator("workers", heartbeat_interval=1.0, lease_timeout=5.0)

    def on_event(event: s3db.CoordinatorEvent) -> None:
        print(event["type"], event.get("epoch"))

    coord.on_event(on_event)
    events: s3db.CoordinatorEvents = coord.events()
    await coord.start()
    async for ev in events:
        kind: str = ev["type"]
        break
    leader: Optional[s3db.LeaderInfo] = coord.get_leader()
    workers: List[s3db.WorkerInfo] = await coord.active_workers()
    metrics: s3db.CoordinatorMetrics = coord.metrics()
    token: Optional[int] = coord.fencing_token
    is_leader: bool = coord.is_leader
    await coord.stop()
    healed: List[str] = db.healing_log()

    files = await db.create_resource("files", {"name": "string"}, id_generator=lambda: "f-1")
    await files.insert_with_content({"name": "a"}, b"bytes", "text/plain")
    content, content_type = await files.content("f-1")
    await files.set_content("f-1", None)
    data: bytes = content
    orders = await db.create_resource("orders", {"n": "number"}, id_generator="incremental")
    id_seq: Optional[s3db.Sequence] = orders.id_sequence()
    del locked, lost, ttl, version, fenced, names, v, entry, cas, keys, kind, leader, workers
    del metrics, token, is_leader, healed, data, content_type, id_seq
    return hits + await use_plugin_storage(db)


async def use_plugin_storage(db: s3db.Database) -> int:
    ps: s3db.PluginStorage = db.plugin_storage("my-plugin")
    key: str = ps.key("cache", "abc.json", resource="users")
    key = ps.get_plugin_key(None, "config")
    etag: str = await ps.set(key, {"a": 1}, behavior="body-only", ttl=60, if_none_match=True)
    await ps.set(key, {"a": 2}, if_match=etag, content_type="application/json")
    doc: Optional[Dict[str, Any]] = await ps.get(key)
    pair: Optional[Tuple[Dict[str, Any], str]] = await ps.get_with_etag(key)
    found: bool = await ps.has(key) and await ps.delete(key)
    keys: List[str] = await ps.list() + await ps.list_for_resource("users", "cache")
    n: int = await ps.next_sequence("counter", resource="users", initial_value=100, increment=2)
    cur: Optional[int] = await ps.get_sequence("counter", "users")
    await ps.reset_sequence("counter", 5)
    await ps.delete_sequence("counter")
    lock: Optional[s3db.PluginLock] = await ps.acquire_lock("job", ttl=30, worker_id="w")
    if lock is not None:
        expires: int = lock.expires_at
        released: bool = await ps.release_lock(lock)
        print(lock.name, lock.key, lock.token, lock.worker_id, lock.etag, expires, released)
    locked: bool = await ps.is_locked("job")
    removed: int = await ps.delete_all("users")
    slug: str = ps.slug
    del doc, pair, found, keys, cur, locked, slug
    return n + removed


async def use_data_model(db: s3db.Database) -> int:
    orders = await db.create_resource(
        "orders",
        {
            "status": "string",
            "amount": "number",
            "note": "string|optional",
            "address": {"city": "string"},
        },
        behavior="body-overflow",
        timestamps=True,
        partitions={"byStatus": {"fields": {"status": "string"}}},
        paranoid=False,
        id_size=12,
        passphrase=None,
    )
    await db.create_resource("short", {"status": "string"}, partitions=["status"])
    items: List[s3db.BatchItem] = await orders.insert_many(
        [{"id": "a", "status": "paid", "amount": 1}, {"status": "x"}]
    )
    for item in items:
        index: int = item["index"]
        rid: Optional[str] = item["id"]
        if "error" in item:
            err: s3db.BatchError = item["error"]
            print(index, rid, err["code"], err["message"])
        elif "record" in item:
            rec: Dict[str, Any] = item["record"]
            print(rec)
    many: s3db.GetManyResult = await orders.get_many(["a", "b"])
    found: List[Dict[str, Any]] = many["found"]
    missing: List[str] = many["missing"]
    await orders.replace("a", {"status": "open", "amount": 2})
    await orders.upsert({"id": "a", "amount": 3})
    await orders.patch("a", {"address.city": "Paris"})
    record, etag = await orders.get_with_etag("a")
    await orders.update_if("a", {"amount": record["amount"] + 1}, etag)
    updated, next_etag = await orders.update_conditional("a", {"amount": 5}, etag)
    next_tag: str = next_etag
    orders.add_hook("afterGet", lambda r: {**r, "seen": True})
    hooked = await db.create_resource(
        "hooked", {"title": "string"}, hooks={"beforeInsert": [lambda d: d], "afterInsert": print}
    )
    print(updated, next_tag, hooked.name)
    deleted: List[s3db.BatchItem] = await orders.delete_many(["a"])
    page: s3db.Page = await orders.page(10)
    cursor: Optional[str] = page["cursor"]
    if cursor is not None:
        await orders.page(10, cursor)
    paid: List[Dict[str, Any]] = await orders.query({"amount": {"$gte": 1}, "status": "paid"})
    in_partition: List[Dict[str, Any]] = await orders.list("byStatus", {"status": "paid"})
    n: int = await orders.count(partition="byStatus", values={"status": "paid"})
    ids: List[str] = await orders.list_ids("byStatus")
    counts: s3db.ReindexResult = await orders.reindex("byStatus")
    removed: int = await orders.delete_all()
    try:
        await orders.insert({"status": 5})
    except s3db.ValidationError as e:
        for issue in e.details:
            field: str = issue["field"]
            print(field, issue["rule"], issue["expected"], issue["actual"])
    pmap: Dict[str, str] = await orders.add_plugin_attribute("by", "string|optional", "audit")
    pmap = await orders.add_plugin_attribute("score", {"type": "number"}, "ranker")
    gone: bool = await orders.remove_plugin_attribute("score", "ranker")
    keys: Dict[str, str] = orders.plugin_map
    del found, missing, deleted, paid, in_partition, ids, pmap, gone, keys
    return n + counts["written"] + counts["deleted"] + removed


def use_sync(url: str) -> int:
    db: s3db.SyncDatabase = s3db.connect_sync(url, passphrase="pw")
    users: s3db.SyncResource = db.create_resource(
        "users", {"name": "string"}, timestamps=True, partitions=["name"], paranoid=False
    )
    rec: Dict[str, Any] = users.insert({"name": "x"})
    users.update(rec["id"], {"name": "y"})
    items: List[s3db.BatchItem] = users.insert_many([{"name": "z"}])
    many: s3db.GetManyResult = users.get_many([rec["id"]])
    users.replace(rec["id"], {"name": "r"})
    users.upsert({"id": rec["id"], "name": "u"})
    users.patch(rec["id"], {"name": "p"})
    got, etag = users.get_with_etag(rec["id"])
    users.update_if(rec["id"], {"name": got["name"]}, etag)
    again, tag = users.update_conditional(rec["id"], {"name": "c"}, etag)
    users.add_hook("beforeInsert", lambda d: d)
    print(again, tag)
    page: s3db.Page = users.page(10, None)
    found: List[Dict[str, Any]] = users.query({"name": {"$in": ["p"]}})
    by_name: int = users.count("byName", {"name": "p"})
    users.list("byName", {"name": "p"})
    users.list_ids("byName")
    counts: s3db.ReindexResult = users.reindex()
    users.delete_many([rec["id"]])
    removed: int = users.delete_all()
    pmap: Dict[str, str] = users.add_plugin_attribute("score", {"type": "number"}, "ranker")
    gone: bool = users.remove_plugin_attribute("score", "ranker") and "score" in users.plugin_map
    del items, many, page, found, counts, pmap, gone
    with db.lock("job") as lock:
        token: int = lock.fencing_token
    seq: s3db.SyncSequence = db.sequence("s", batch_size=10)
    seq.delete()
    state: s3db.SyncState = db.state("ns")
    entry: s3db.StateEntry = state.update("k", lambda old: (old or 0) + 1)
    coord: s3db.SyncCoordinator = db.coordinator("ns", heartbeat_interval=0.5)
    events: s3db.SyncCoordinatorEvents = coord.events()
    coord.start()
    ev: Optional[s3db.CoordinatorEvent] = events.wait(timeout=1.0)
    coord.stop()
    blob: bytes = users.content(rec["id"])[0] if users.exists(rec["id"]) else b""
    ps: s3db.SyncPluginStorage = db.plugin_storage("p")
    petag: str = ps.set(ps.key("k"), {"a": 1}, ttl=1.5)
    pgot: Optional[Tuple[Dict[str, Any], str]] = ps.get_with_etag(ps.key("k"))
    plock: Optional[s3db.PluginLock] = ps.acquire_lock("job", timeout=0.5)
    if plock is not None and ps.is_locked("job"):
        ps.release_lock(plock)
    seq_n: int = ps.next_sequence("n") + ps.delete_all()
    del petag, pgot, seq_n
    del entry, ev, blob
    return users.count() + seq.next() + token + by_name + removed + state.counter("c")


if __name__ == "__main__":
    print(asyncio.run(use_async("memory://typed")), use_sync("memory://typed-sync"))
