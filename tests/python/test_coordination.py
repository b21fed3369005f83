"""Coordination on every backend, through the asyncio API and the blocking twin: lock
inspection, auto-renewal and fencing, sequences in fast mode, distributed state (CAS,
counters, ttl, update(fn)), the leader-election coordinator and its events, catalog healing,
binary content and id generators."""

import asyncio
import threading
import time
from typing import Any, Callable, Dict, List

import pytest

import s3db
from conftest import delta


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        await asyncio.sleep(0.02)


def wait_for_sync(pred: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or pred}")
        time.sleep(0.02)


def now_ms() -> int:
    return int(time.time() * 1000)


def field(found: Any, name: str) -> Any:
    """``found[name]``, or None when ``found`` is None (a missing entry, no leader)."""
    return None if found is None else found[name]


# --- locks: inspection ----------------------------------------------------------------------


async def test_lock_info_and_is_locked(db: s3db.Database) -> None:
    assert await db.is_locked("job") is False
    assert await db.lock_info("job") is None
    before = now_ms()
    lock = await db.lock("job", ttl=10.0)
    assert await db.is_locked("job") is True
    info = await db.lock_info("job")
    assert info is not None
    assert info["holder_id"] == lock.holder_id
    assert info["fencing_token"] == lock.fencing_token
    assert info["expires_at"] - info["acquired_at"] == 10_000
    assert before - 1000 <= info["acquired_at"] <= now_ms() + 1000
    assert await lock.expires_at() == info["expires_at"]
    assert lock.ttl == 10.0
    assert lock.is_lost is False
    await lock.release()
    assert await db.is_locked("job") is False
    assert await db.lock_info("job") is None


async def test_lock_argument_errors(db: s3db.Database) -> None:
    with pytest.raises(s3db.InvalidArgumentError):
        await db.is_locked("a/b")
    with pytest.raises(s3db.InvalidArgumentError):
        await db.lock_info(7)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError, match="auto_renew"):
        db.lock("x", on_lost=print)
    with pytest.raises(s3db.InvalidArgumentError, match="callable"):
        db.lock("x", auto_renew=True, on_lost=42)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        db.lock("x", auto_renew=1)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        await db.fenced_put("doc", 1, -1)
    with pytest.raises(s3db.InvalidArgumentError):
        await db.fenced_put("doc", {1, 2}, 1)
    with pytest.raises(s3db.InvalidArgumentError):
        await db.fenced_get("..")


def test_sync_lock_info_and_is_locked(sdb: s3db.SyncDatabase) -> None:
    assert sdb.is_locked("job") is False
    assert sdb.lock_info("job") is None
    with sdb.lock("job", ttl=5.0) as lock:
        assert sdb.is_locked("job") is True
        info = sdb.lock_info("job")
        assert info is not None
        assert info["holder_id"] == lock.holder_id
        assert info["fencing_token"] == lock.fencing_token
        assert info["expires_at"] - info["acquired_at"] == 5_000
        assert lock.expires_at() == info["expires_at"]
        assert lock.is_lost is False
    assert sdb.is_locked("job") is False
    assert sdb.lock_info("job") is None
    with pytest.raises(s3db.InvalidArgumentError):
        sdb.lock("x", on_lost=print)
    with pytest.raises(s3db.InvalidArgumentError):
        sdb.is_locked("a/b")


# --- locks: auto-renewal ----------------------------------------------------------------------


# A 1.5 s ttl is renewed every 0.5 s, so a stall of the whole process longer than 1 s (a
# loaded machine) loses the lease legitimately: each scenario gets up to RENEW_TRIES tries on
# fresh lock names. Renewal that does not work fails every try.
RENEW_TRIES = 3


async def test_auto_renew_keeps_the_lock_past_its_ttl(db: s3db.Database, url: str) -> None:
    other = await s3db.connect(url)

    async def attempt(name: str) -> bool:
        lost: List[str] = []
        lock = await db.lock(name, ttl=1.5, auto_renew=True, on_lost=lost.append)
        first_expiry = await lock.expires_at()
        await asyncio.sleep(2.5)
        try:
            taken = await other.lock(name, timeout=0)
        except s3db.LockNotAcquiredError:
            pass
        else:
            await taken.release()
            return False
        assert await other.is_locked(name) is True
        assert await lock.expires_at() > first_expiry
        assert lock.is_lost is False and lost == []
        await lock.release()
        taken = await other.lock(name, timeout=0)
        assert taken.fencing_token > lock.fencing_token
        await taken.release()
        return True

    assert await _tries(attempt)


async def _tries(attempt: Callable[[str], Any]) -> bool:
    for i in range(RENEW_TRIES):
        if await attempt(f"renewed-{i}"):
            return True
    return False


def _tries_sync(attempt: Callable[[str], bool]) -> bool:
    return any(attempt(f"renewed-{i}") for i in range(RENEW_TRIES))


async def test_async_with_auto_renew(db: s3db.Database, url: str) -> None:
    other = await s3db.connect(url)

    async def attempt(name: str) -> bool:
        async with db.lock(name, ttl=1.5, auto_renew=True) as lock:
            await asyncio.sleep(2.2)
            try:
                taken = await other.lock(name)
            except s3db.LockNotAcquiredError:
                assert lock.is_lost is False
            else:
                await taken.release()
                return False
        assert await other.is_locked(name) is False
        return True

    assert await _tries(attempt)


def test_sync_auto_renew(sdb: s3db.SyncDatabase, url: str) -> None:
    other = s3db.connect_sync(url)

    def attempt(name: str) -> bool:
        lock = sdb.lock(name, ttl=1.5, auto_renew=True)
        time.sleep(2.5)
        try:
            other.lock(name).release()
            return False
        except s3db.LockNotAcquiredError:
            pass
        assert lock.is_lost is False
        lock.stop_renewing()
        lock.release()
        assert other.is_locked(name) is False
        return True

    assert _tries_sync(attempt)


async def test_on_lost_runs_when_renewal_fails(db: s3db.Database, url: str) -> None:
    lock = await db.lock("short", ttl=0.3)
    await asyncio.sleep(0.5)
    other = await s3db.connect(url)
    thief = await other.lock("short")
    called = threading.Event()
    messages: List[Any] = []

    def on_lost(message: str) -> None:
        messages.append(message)
        called.set()

    lock.auto_renew(on_lost)
    await wait_for(called.is_set, what="on_lost")
    assert len(messages) == 1 and isinstance(messages[0], str) and "short" in messages[0]
    assert lock.is_lost is True
    with pytest.raises(s3db.LockLostError):
        await lock.guarded_put("doc", 1)
    with pytest.raises(s3db.InvalidArgumentError):
        lock.auto_renew(on_lost=42)  # type: ignore[arg-type]
    await thief.release()


# --- locks: fencing ---------------------------------------------------------------------------


async def test_guarded_put_after_the_lease_was_lost(db: s3db.Database, url: str) -> None:
    old = await db.lock("fence", ttl=0.5)
    v1 = await old.guarded_put("doc", {"v": 1})
    assert isinstance(v1, str)
    got = await db.fenced_get("doc")
    assert got == {"value": {"v": 1}, "fencing_token": old.fencing_token, "version": v1}
    await asyncio.sleep(0.8)
    other = await s3db.connect(url)
    new = await other.lock("fence")
    assert new.fencing_token > old.fencing_token
    await new.guarded_put("doc", {"v": 2})
    # The stale holder does not know yet; the fenced object refuses its lower token.
    assert old.is_lost is False
    with pytest.raises((s3db.LockLostError, s3db.PreconditionFailedError)):
        await old.guarded_put("doc", {"v": 3})
    with pytest.raises(s3db.LockLostError):
        await db.fenced_put("doc", {"v": 3}, old.fencing_token)
    with pytest.raises(s3db.LockLostError):
        await old.extend(5.0)
    assert old.is_lost is True
    with pytest.raises(s3db.LockLostError):
        await old.guarded_put("other-doc", {"v": 3})
    got = await db.fenced_get("doc")
    assert got is not None
    assert got["value"] == {"v": 2} and got["fencing_token"] == new.fencing_token
    assert isinstance(await db.fenced_put("doc", [1, "two"], new.fencing_token), str)
    assert field(await db.fenced_get("doc"), "value") == [1, "two"]
    assert await db.fenced_get("nothing") is None
    await new.release()
    with pytest.raises(s3db.LockLostError):
        await new.guarded_put("doc", 0)


def test_sync_guarded_put(sdb: s3db.SyncDatabase, url: str) -> None:
    old = sdb.lock("fence", ttl=0.5)
    old.guarded_put("doc", "first")
    time.sleep(0.8)
    other = s3db.connect_sync(url)
    new = other.lock("fence")
    new.guarded_put("doc", "second")
    with pytest.raises((s3db.LockLostError, s3db.PreconditionFailedError)):
        old.guarded_put("doc", "third")
    got = sdb.fenced_get("doc")
    assert got is not None and got["value"] == "second"
    assert got["fencing_token"] == new.fencing_token
    with pytest.raises(s3db.LockLostError):
        sdb.fenced_put("doc", "x", old.fencing_token)
    assert isinstance(sdb.fenced_put("doc", "y", new.fencing_token + 1), str)
    new.release()


# --- sequences --------------------------------------------------------------------------------


async def test_sequence_batch_size(db: s3db.Database) -> None:
    seq = db.sequence("fast", batch_size=10)
    db.reset_stats()
    assert [await seq.next() for _ in range(10)] == list(range(1, 11))
    assert delta({k: 0 for k in db.stats()}, db.stats()) == {"get": 1, "put": 1}
    before = db.stats()
    assert await seq.next() == 11
    assert delta(before, db.stats()) == {"get": 1, "put": 1}
    # Another handle on the same name continues after the reserved batch.
    assert await db.sequence("fast").next() == 21
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("bad", batch_size=-1)
    with pytest.raises(s3db.InvalidArgumentError):
        db.sequence("bad", batch_size=2**32)


async def test_sequence_delete_and_list(db: s3db.Database) -> None:
    assert await db.list_sequences() == []
    a = db.sequence("alpha", start=100)
    b = db.sequence("beta")
    assert await a.next() == 100
    assert await a.next() == 101
    assert await b.next() == 1
    assert await db.list_sequences() == ["alpha", "beta"]
    assert await a.delete() is None
    assert await db.list_sequences() == ["beta"]
    assert await a.current() is None
    assert await a.next() == 100


def test_sync_sequences(sdb: s3db.SyncDatabase) -> None:
    seq = sdb.sequence("fast", batch_size=10)
    sdb.reset_stats()
    assert [seq.next() for _ in range(10)] == list(range(1, 11))
    assert {k: v for k, v in sdb.stats().items() if v} == {"get": 1, "put": 1}
    sdb.sequence("other").next()
    assert sdb.list_sequences() == ["fast", "other"]
    seq.delete()
    assert sdb.list_sequences() == ["other"]
    assert seq.next() == 1
    with pytest.raises(s3db.InvalidArgumentError):
        sdb.sequence("bad", batch_size="10")  # type: ignore[arg-type]


# --- state ------------------------------------------------------------------------------------


async def test_state_get_set_and_cas(db: s3db.Database) -> None:
    st = db.state("app")
    assert isinstance(st, s3db.State) and st.namespace == "app"
    assert await st.get("k") is None
    v1 = await st.set("k", {"n": 1})
    entry = await st.get("k")
    assert entry == {"value": {"n": 1}, "version": v1, "expires_at": None}
    v2 = await st.set("k", {"n": 2})
    assert v2 != v1
    stale = await st.compare_and_swap("k", v1, {"n": 3})
    assert stale == {"swapped": False, "current_value": {"n": 2}, "current_version": v2}
    done = await st.compare_and_swap("k", v2, {"n": 3})
    assert done["swapped"] is True and done["current_value"] == {"n": 3}
    assert field(await st.get("k"), "version") == done["current_version"]
    # expected None: only when absent.
    assert (await st.compare_and_swap("new", None, [1]))["swapped"] is True
    again = await st.compare_and_swap("new", None, [2])
    assert again["swapped"] is False and again["current_value"] == [1]
    missing = await st.compare_and_swap("absent", v1, 1)
    assert missing == {"swapped": False, "current_value": None, "current_version": None}
    assert sorted(await st.keys()) == ["k", "new"]
    assert await st.delete("k") is None
    assert await st.get("k") is None
    assert await st.keys() == ["new"]


async def test_state_concurrent_increments(db: s3db.Database) -> None:
    st = db.state("counters")
    results = await asyncio.gather(*(st.increment("hits") for _ in range(20)))
    assert sorted(results) == list(range(1, 21))
    assert await st.counter("hits") == 20
    assert await st.increment("hits", by=5) == 25
    assert await st.decrement("hits") == 24
    assert await st.decrement("hits", by=4) == 20
    assert await st.counter("never") == 0
    assert await st.reset("hits") is None
    assert await st.counter("hits") == 0
    await st.set("text", "not a number")
    with pytest.raises(s3db.S3dbError):
        await st.increment("text")
    with pytest.raises(s3db.InvalidArgumentError):
        await st.increment("hits", by=1.5)  # type: ignore[arg-type]


async def test_state_ttl_expiry(db: s3db.Database) -> None:
    st = db.state("ttl")
    before = now_ms()
    await st.set("session", {"user": "ada"}, ttl=1.0)
    entry = await st.get("session")
    assert entry is not None and entry["value"] == {"user": "ada"}
    assert entry["expires_at"] is not None and entry["expires_at"] >= before + 1000
    await st.set("forever", 1)
    await asyncio.sleep(1.3)
    assert await st.get("session") is None
    assert field(await st.get("forever"), "value") == 1
    seen: List[Any] = []

    def fresh(old: Any) -> Any:
        seen.append(old)
        return "fresh"

    out = await st.update("session", fresh)
    assert seen == [None] and out["value"] == "fresh"
    with pytest.raises(s3db.InvalidArgumentError):
        await st.set("x", 1, ttl=-1)


async def test_state_update_with_a_function(db: s3db.Database) -> None:
    st = db.state("upd")
    first = await st.update("doc", lambda old: {"n": 1} if old is None else old)
    assert first["value"] == {"n": 1} and isinstance(first["version"], str)
    second = await st.update("doc", lambda old: {"n": old["n"] + 1})
    assert second["value"] == {"n": 2}
    assert field(await st.get("doc"), "version") == second["version"]

    # Concurrent updates: the function runs again after each lost race.
    results = await asyncio.gather(
        *(st.update("n", lambda old: (old or 0) + 1) for _ in range(10))
    )
    assert sorted(r["value"] for r in results) == list(range(1, 11))

    # An exception from fn is raised as is and nothing is written.
    class Boom(Exception):
        pass

    def boom(old: Any) -> Any:
        raise Boom("no")

    with pytest.raises(Boom):
        await st.update("doc", boom)
    assert field(await st.get("doc"), "value") == {"n": 2}
    with pytest.raises(s3db.InvalidArgumentError):
        await st.update("doc", lambda old: {1, 2})
    with pytest.raises(s3db.InvalidArgumentError):
        st.update("doc", 42)  # type: ignore[arg-type]

    async def coroutine_fn(old: Any) -> Any:
        return old

    with pytest.raises(s3db.InvalidArgumentError, match="async"):
        await st.update("doc", coroutine_fn)
    # The ttl is kept.
    await st.set("leased", 1, ttl=30)
    out = await st.update("leased", lambda old: old + 1)
    assert out["value"] == 2 and out["expires_at"] is not None


async def test_state_errors(db: s3db.Database) -> None:
    with pytest.raises(s3db.InvalidArgumentError):
        db.state("a/b")
    st = db.state("e")
    with pytest.raises(s3db.InvalidArgumentError):
        await st.get("..")
    with pytest.raises(s3db.InvalidArgumentError):
        await st.set("k", object())
    with pytest.raises(s3db.InvalidArgumentError):
        await st.compare_and_swap("k", 5, 1)  # type: ignore[arg-type]


def test_sync_state(sdb: s3db.SyncDatabase) -> None:
    st = sdb.state("app")
    assert isinstance(st, s3db.SyncState)
    v1 = st.set("k", 1)
    v2 = st.set("k", 2)
    stale = st.compare_and_swap("k", v1, 3)
    assert stale == {"swapped": False, "current_value": 2, "current_version": v2}
    assert st.compare_and_swap("k", v2, 3)["swapped"] is True

    threads = [threading.Thread(target=st.increment, args=("hits",)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert st.counter("hits") == 20
    assert st.decrement("hits", by=20) == 0

    assert st.update("k", lambda old: old * 10)["value"] == 30
    with pytest.raises(ZeroDivisionError):
        st.update("k", lambda old: old / 0)
    entry = st.get("k")
    assert entry is not None and entry["value"] == 30

    st.set("t", "x", ttl=1.0)
    assert st.get("t") is not None
    time.sleep(1.3)
    assert st.get("t") is None
    st.reset("hits")
    st.delete("k")
    assert st.keys() == ["t"] or st.keys() == []


# --- coordinator ------------------------------------------------------------------------------


async def test_coordinator_election_and_failover(db: s3db.Database, url: str) -> None:
    other = await s3db.connect(url)
    # A 2 s lease (and worker timeout) keeps a scheduling stall on a loaded machine from changing leaders; the
    # failover below does not wait for it (stop() releases the lease).
    a = db.coordinator("workers", heartbeat_interval=0.2, lease_timeout=2.0, worker_timeout=2.5)
    b = other.coordinator("workers", heartbeat_interval=0.2, lease_timeout=2.0, worker_timeout=2.5)
    assert isinstance(a, s3db.Coordinator)
    assert a.worker_id != b.worker_id and a.namespace == "workers"
    assert a.is_leader is False and a.fencing_token is None and a.get_leader() is None

    seen: Dict[str, List[s3db.CoordinatorEvent]] = {a.worker_id: [], b.worker_id: []}
    a.on_event(seen[a.worker_id].append)
    b.on_event(seen[b.worker_id].append)
    iterated: List[s3db.CoordinatorEvent] = []
    events = a.events()

    async def consume() -> None:
        async for ev in events:
            iterated.append(ev)

    consumer = asyncio.ensure_future(consume())
    try:
        await asyncio.gather(a.start(), b.start())
        assert await a.is_running() is True
        await wait_for(lambda: a.is_leader or b.is_leader, what="a leader")
        await asyncio.sleep(0.6)  # a few heartbeats: nobody else may win meanwhile
        leader, follower = (a, b) if a.is_leader else (b, a)
        assert leader.is_leader and not follower.is_leader
        became = [
            (w, e) for w, evs in seen.items() for e in evs if e["type"] == "became_leader"
        ]
        assert became == [(leader.worker_id, {"type": "became_leader", "epoch": became[0][1]["epoch"]})]
        epoch = leader.fencing_token
        assert epoch is not None and became[0][1]["epoch"] == epoch
        await wait_for(lambda: follower.get_leader() is not None, what="follower sees the leader")
        assert field(follower.get_leader(), "leader_id") == leader.worker_id
        assert field(leader.get_leader(), "epoch") == epoch
        workers = await leader.active_workers()
        assert sorted(w["worker_id"] for w in workers) == sorted([a.worker_id, b.worker_id])
        metrics = leader.metrics()
        assert metrics["heartbeats"] >= 1 and metrics["elections"] >= 1

        await leader.stop()
        assert leader.is_leader is False
        await wait_for(lambda: follower.is_leader, what="failover")
        new_epoch = follower.fencing_token
        assert new_epoch is not None and new_epoch > epoch
        await wait_for(
            lambda: any(e["type"] == "became_leader" for e in seen[follower.worker_id]),
            what="became_leader event",
        )
        fe = seen[follower.worker_id]
        assert {"type": "became_leader", "epoch": new_epoch} in fe
        assert any(
            e["type"] == "leader_changed" and e["leader_id"] == follower.worker_id
            and e["epoch"] == new_epoch
            for e in fe
        )
        assert {"type": "lost_leadership", "epoch": epoch} in seen[leader.worker_id]
        await wait_for(lambda: len(iterated) >= 2, what="async iterator events")
        assert all("type" in e for e in iterated)
        assert any(e["type"] == "leader_changed" for e in iterated)
    finally:
        consumer.cancel()
        await asyncio.gather(a.stop(), b.stop())


async def test_coordinator_errors(db: s3db.Database) -> None:
    with pytest.raises(s3db.InvalidArgumentError):
        db.coordinator("a/b")
    with pytest.raises(s3db.InvalidArgumentError):
        db.coordinator("ns", heartbeat_interval=0)
    with pytest.raises(s3db.InvalidArgumentError):
        db.coordinator("ns", heartbeat_interval=1.0, lease_timeout=0.5)
    with pytest.raises(s3db.InvalidArgumentError):
        db.coordinator("ns", strategy="coin-toss")
    with pytest.raises(s3db.InvalidArgumentError):
        db.coordinator("ns", heartbeat_interval="fast")  # type: ignore[arg-type]
    coord = db.coordinator("ns", strategy="alphabetical", circuit_breaker_threshold=3)
    with pytest.raises(s3db.InvalidArgumentError):
        coord.on_event(42)  # type: ignore[arg-type]
    # stop() before start() does nothing.
    assert await coord.stop() is None


def test_sync_coordinator(sdb: s3db.SyncDatabase, url: str) -> None:
    other = s3db.connect_sync(url)
    timing: Dict[str, Any] = dict(
        heartbeat_interval=0.2, lease_timeout=2.0, worker_timeout=2.5, startup_jitter=0
    )
    a = sdb.coordinator("jobs", **timing)
    b = other.coordinator("jobs", **timing)
    assert isinstance(a, s3db.SyncCoordinator)
    seen: List[s3db.CoordinatorEvent] = []
    b.on_event(seen.append)
    events = a.events()
    mine: List[s3db.CoordinatorEvent] = []

    def until(kind: str) -> s3db.CoordinatorEvent:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ev = events.wait(timeout=0.5)
            if ev is not None:
                mine.append(ev)
                if ev["type"] == kind:
                    return ev
        raise AssertionError(f"no {kind} event; got {mine}")

    try:
        a.start()  # no lease yet: the first round elects it
        assert a.is_running() is True
        assert a.is_leader is True
        epoch = a.fencing_token
        assert epoch is not None
        assert until("became_leader") == {"type": "became_leader", "epoch": epoch}
        b.start()
        wait_for_sync(lambda: field(b.get_leader(), "leader_id") == a.worker_id)
        assert b.is_leader is False
        a.stop()
        assert until("lost_leadership") == {"type": "lost_leadership", "epoch": epoch}
        wait_for_sync(lambda: b.is_leader, what="failover")
        assert (b.fencing_token or 0) > epoch
        wait_for_sync(lambda: any(e["type"] == "became_leader" for e in seen))
        assert {"type": "became_leader", "epoch": b.fencing_token} in seen
        assert [w["worker_id"] for w in b.active_workers()] == [b.worker_id]
        assert b.metrics()["elections"] >= 1
    finally:
        a.stop()
        b.stop()


def test_sync_coordinator_events_iterator(sdb: s3db.SyncDatabase) -> None:
    coord = sdb.coordinator("solo", heartbeat_interval=0.2, startup_jitter=0)
    events = coord.events()
    assert iter(events) is events
    coord.start()
    try:
        kinds = {next(events)["type"], next(events)["type"]}
        assert kinds == {"became_leader", "leader_changed"}
    finally:
        coord.stop()
    assert next(events) == {"type": "lost_leadership", "epoch": 1}


# --- healing ----------------------------------------------------------------------------------


async def test_healing_log_is_empty_on_a_clean_store(db: s3db.Database, url: str) -> None:
    assert db.healing_log() == []
    await db.create_resource("users", {"name": "string"})
    again = await s3db.connect(url)
    assert again.healing_log() == []
    assert s3db.connect_sync(url).healing_log() == []


@pytest.mark.parametrize("mode", ["async", "sync"])
async def test_healing_log_after_a_trailing_comma(tmp_path: Any, mode: str) -> None:
    url = f"file://{tmp_path}/healed"
    first = s3db.connect_sync(url)
    first.create_resource("users", {"name": "string"})
    catalog = tmp_path / "healed" / "s3db.json"
    text = catalog.read_text().rstrip()
    assert text.endswith("}")
    catalog.write_text(text[:-1].rstrip() + ",\n}\n")
    if mode == "async":
        db: Any = await s3db.connect(url)
        assert await db.list_resources() == ["users"]
    else:
        db = s3db.connect_sync(url)
        assert db.list_resources() == ["users"]
    log = db.healing_log()
    assert isinstance(log, list) and log and all(isinstance(line, str) for line in log)
    assert any("comma" in line for line in log)


# --- binary content ---------------------------------------------------------------------------


async def test_content_round_trip(db: s3db.Database) -> None:
    files = await db.create_resource("files", {"name": "string"})
    payload = bytes(range(256)) * 4
    rec = await files.insert_with_content({"name": "blob"}, payload, "application/x-test")
    assert rec["name"] == "blob" and isinstance(rec["id"], str)
    assert await files.content(rec["id"]) == (payload, "application/x-test")
    assert await files.get(rec["id"]) == rec

    await files.set_content(rec["id"], bytearray(b"hello"), "text/plain")
    assert await files.content(rec["id"]) == (b"hello", "text/plain")
    await files.set_content(rec["id"], memoryview(b"raw"))
    assert await files.content(rec["id"]) == (b"raw", "application/octet-stream")
    assert await files.set_content(rec["id"], None) is None
    with pytest.raises(s3db.NotFoundError):
        await files.content(rec["id"])
    assert (await files.get(rec["id"]))["name"] == "blob"

    plain = await files.insert_with_content({"id": "p", "name": "p"}, b"plain")
    assert await files.content(plain["id"]) == (b"plain", "application/octet-stream")

    with pytest.raises(s3db.InvalidArgumentError):
        await files.insert_with_content({"name": "s"}, "text", "text/plain")  # type: ignore[arg-type]
    with pytest.raises(s3db.NotFoundError):
        await files.content("missing")
    with pytest.raises(s3db.NotFoundError):
        await files.set_content("missing", b"x")
    with pytest.raises(s3db.AlreadyExistsError):
        await files.insert_with_content({"id": "p", "name": "p"}, b"again")
    with pytest.raises(s3db.ValidationError):
        await files.insert_with_content({"nom": "x"}, b"x")


def test_sync_content_round_trip(sdb: s3db.SyncDatabase) -> None:
    files = sdb.create_resource("files", {"name": "string"})
    rec = files.insert_with_content({"name": "a"}, b"\x00\xff\x10", "application/octet-stream")
    assert files.content(rec["id"]) == (b"\x00\xff\x10", "application/octet-stream")
    files.set_content(rec["id"], b"new", "text/plain")
    assert files.content(rec["id"]) == (b"new", "text/plain")
    files.set_content(rec["id"], None)
    with pytest.raises(s3db.NotFoundError):
        files.content(rec["id"])
    with pytest.raises(s3db.InvalidArgumentError):
        files.set_content(rec["id"], 5)  # type: ignore[arg-type]


# --- id generators ----------------------------------------------------------------------------


async def test_incremental_id_generator(db: s3db.Database) -> None:
    orders = await db.create_resource(
        "orders", {"item": "string"}, id_generator="incremental:ORD-0001"
    )
    assert (await orders.insert({"item": "a"}))["id"] == "ORD-0001"
    assert (await orders.insert({"item": "b"}))["id"] == "ORD-0002"
    assert (await orders.insert({"id": "custom", "item": "c"}))["id"] == "custom"
    seq = orders.id_sequence()
    assert isinstance(seq, s3db.Sequence)
    assert await seq.current() == 3
    again = await db.resource("orders")
    assert (await again.insert({"item": "d"}))["id"] == "ORD-0003"

    invoices = await db.create_resource(
        "invoices",
        {"n": "number"},
        id_generator={"type": "incremental", "start": 100, "increment": 10},
    )
    assert [(await invoices.insert({"n": i}))["id"] for i in range(2)] == ["100", "110"]

    sized = await db.create_resource("sized", {"n": "number"}, id_generator=8)
    assert len((await sized.insert({"n": 1}))["id"]) == 8
    assert sized.id_sequence() is None

    with pytest.raises(s3db.ValidationError):
        await db.create_resource("bad", {"n": "number"}, id_generator="sequential")
    with pytest.raises(s3db.InvalidArgumentError):
        await db.create_resource("bad", {"n": "number"}, id_generator=True)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError):
        await db.create_resource("bad", {"n": "number"}, id_generator=1.5)  # type: ignore[arg-type]


async def test_callable_id_generator(db: s3db.Database) -> None:
    counter = iter(range(1, 100))
    things = await db.create_resource(
        "things", {"n": "number"}, id_generator=lambda: f"T-{next(counter)}"
    )
    assert (await things.insert({"n": 1}))["id"] == "T-1"
    assert (await things.insert({"id": None, "n": 2}))["id"] == "T-2"
    assert (await things.insert({"id": "mine", "n": 3}))["id"] == "mine"
    batch = await things.insert_many([{"n": 4}, {"n": 5}])
    assert [item["id"] for item in batch] == ["T-3", "T-4"]
    assert (await things.upsert({"n": 6}))["id"] == "T-5"
    rec = await things.insert_with_content({"n": 7}, b"x")
    assert rec["id"] == "T-6"
    # The same handle remembers the generator.
    assert (await (await db.resource("things")).insert({"n": 8}))["id"] == "T-7"

    numeric = await db.create_resource("numeric", {"n": "number"}, id_generator=lambda: 42)
    assert (await numeric.insert({"n": 1}))["id"] == "42"

    bad = await db.create_resource("bad", {"n": "number"}, id_generator=lambda: None)  # type: ignore[arg-type]
    with pytest.raises(s3db.InvalidArgumentError, match="id_generator"):
        await bad.insert({"n": 1})

    def failing() -> str:
        raise KeyError("no id today")

    failing_res = await db.create_resource("failing", {"n": "number"}, id_generator=failing)
    with pytest.raises(KeyError):
        await failing_res.insert({"n": 1})
    assert await failing_res.count() == 0

    # Redefining without a callable drops it.
    plain = await db.create_resource("things", {"n": "number"})
    assert (await plain.insert({"n": 9}))["id"] != "T-8"


def test_sync_id_generators(sdb: s3db.SyncDatabase) -> None:
    orders = sdb.create_resource("orders", {"item": "string"}, id_generator="incremental:ORD-0001")
    assert orders.insert({"item": "a"})["id"] == "ORD-0001"
    assert orders.insert({"item": "b"})["id"] == "ORD-0002"
    seq = orders.id_sequence()
    assert isinstance(seq, s3db.SyncSequence) and seq.current() == 3

    ids = iter(["x-1", "x-2", "x-3"])
    things = sdb.create_resource("things", {"n": "number"}, id_generator=lambda: next(ids))
    assert things.insert({"n": 1})["id"] == "x-1"
    assert [i["id"] for i in things.insert_many([{"n": 2}])] == ["x-2"]
    assert sdb.resource("things").insert({"n": 3})["id"] == "x-3"
    with pytest.raises(StopIteration):
        things.insert({"n": 4})
