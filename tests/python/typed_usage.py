"""Type-checked by test_typing.py (``mypy --strict``): the public API as a user writes it."""

import asyncio
from typing import Any, Dict, List, Optional

import s3db


async def use_async(url: str) -> int:
    db: s3db.Database = await s3db.connect(url)
    users: s3db.Resource = await db.create_resource("users", {"name": "string|required"})
    rec: Dict[str, Any] = await users.insert({"name": "Ada"})
    got: Dict[str, Any] = await users.get(rec["id"])
    maybe: Optional[Dict[str, Any]] = await users.get_or_none("x")
    ok: bool = await users.exists("x")
    await users.update(got["id"], {"name": "Ada L."})
    ids: List[str] = await users.list_ids()
    records: List[Dict[str, Any]] = await users.list()
    n: int = await users.count()
    await users.delete("x")
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
    return n + value


def use_sync(url: str) -> int:
    db: s3db.SyncDatabase = s3db.connect_sync(url)
    users: s3db.SyncResource = db.create_resource("users", {"name": "string"})
    rec: Dict[str, Any] = users.insert({"name": "x"})
    users.update(rec["id"], {"name": "y"})
    with db.lock("job") as lock:
        token: int = lock.fencing_token
    seq: s3db.SyncSequence = db.sequence("s")
    return users.count() + seq.next() + token


if __name__ == "__main__":
    print(asyncio.run(use_async("memory://typed")), use_sync("memory://typed-sync"))
