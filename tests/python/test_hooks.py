"""Resource hooks (s3db.js ``hooks`` option and ``addHook``) and ``update_conditional``, on
every backend, through the asyncio API and the blocking twin."""

import inspect
import json
import os
from typing import Any, Dict, List

import pytest

import s3db
from conftest import delta, open_db

ATTRIBUTES = {"title": "string", "slug": "string|optional", "n": "number|optional"}


async def maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class Refused(Exception):
    pass


def normalize_title(data: Dict[str, Any]) -> Dict[str, Any]:
    data["slug"] = data["title"].lower().replace(" ", "-")
    return data


async def test_insert_hooks_change_the_record_in_order(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource(
        "posts",
        ATTRIBUTES,
        hooks={
            "beforeInsert": [normalize_title, lambda d: {**d, "slug": d["slug"] + "-1"}],
            "afterInsert": lambda r: {**r, "seen": True},
        },
    )
    out = await res.insert({"id": "p1", "title": "Hello World"})
    assert out["slug"] == "hello-world-1"
    assert out["seen"] is True
    stored = await res.get("p1")
    assert stored["slug"] == "hello-world-1"
    assert "seen" not in stored


async def test_a_raising_hook_aborts_and_its_exception_reaches_the_caller(api: str, url: str) -> None:
    db = await open_db(api, url)

    def refuse(data: Dict[str, Any]) -> Dict[str, Any]:
        if data["title"] == "bad":
            raise Refused("titles may not be bad")
        return data

    res = await db.create_resource("guarded", ATTRIBUTES, hooks={"beforeInsert": refuse})
    before = db.stats()
    with pytest.raises(Refused, match="titles may not be bad"):
        await res.insert({"id": "x", "title": "bad"})
    assert delta(before, db.stats()).get("put", 0) == 0
    assert not await res.exists("x")
    # An s3db error raised by a hook keeps its class.
    await maybe_await(res.add_hook("beforeUpdate", lambda d: (_ for _ in ()).throw(s3db.ConflictError("no"))))
    await res.insert({"id": "y", "title": "ok"})
    with pytest.raises(s3db.ConflictError):
        await res.update("y", {"n": 1})
    assert "n" not in await res.get("y")


async def test_update_and_delete_hooks_see_the_record(api: str, url: str) -> None:
    db = await open_db(api, url)
    seen: List[Any] = []
    res = await db.create_resource(
        "upd",
        ATTRIBUTES,
        hooks={
            "beforeUpdate": lambda v: seen.append(("beforeUpdate", dict(v))),
            "afterDelete": lambda v: seen.append(("afterDelete", dict(v))),
        },
    )
    await res.insert({"id": "a", "title": "t", "n": 1})
    await res.update("a", {"n": 2})
    before = db.stats()
    await res.delete("a")
    assert delta(before, db.stats()) == {"get": 1, "delete": 1}
    assert seen == [
        ("beforeUpdate", {"id": "a", "title": "t", "n": 2}),
        ("afterDelete", {"id": "a", "title": "t", "n": 2}),
    ]

    def keep(_: Any) -> None:
        raise RuntimeError("keep it")

    await maybe_await(res.add_hook("beforeDelete", keep))
    await res.insert({"id": "b", "title": "t"})
    with pytest.raises(RuntimeError, match="keep it"):
        await res.delete("b")
    assert await res.exists("b")


async def test_read_hooks_and_hooks_shared_by_handles(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource(
        "reads",
        ATTRIBUTES,
        hooks={
            "afterGet": lambda r: {**r, "title": r["title"].upper()},
            "afterList": lambda rs: rs[:1],
            "afterQuery": lambda rs: rs[:1],
        },
    )
    for i in ("a", "b"):
        await res.insert({"id": i, "title": "low"})
    other = await db.resource("reads")
    assert (await other.get("a"))["title"] == "LOW"
    assert len(await other.list()) == 1
    assert len(await other.query({"title": "low"})) == 1
    await maybe_await(other.add_hook("afterGet", lambda r: {**r, "tagged": True}))
    assert (await res.get("a"))["tagged"] is True

    with pytest.raises(s3db.InvalidArgumentError, match="beforeInsert"):
        await maybe_await(res.add_hook("beforeSave", lambda v: v))
    with pytest.raises(TypeError):
        await maybe_await(res.add_hook("beforeInsert", "not a function"))

    async def coroutine_hook(v: Any) -> Any:
        return v

    with pytest.raises(TypeError, match="async"):
        await maybe_await(res.add_hook("beforeInsert", coroutine_hook))
    with pytest.raises(TypeError):
        await db.create_resource("bad", ATTRIBUTES, hooks={"beforeInsert": [1]})
    with pytest.raises(TypeError):
        await db.create_resource("bad", ATTRIBUTES, hooks=[normalize_title])


async def test_the_catalog_summarises_hooks_like_s3db_js(api: str, tmp_path: Any) -> None:
    db = await open_db(api, f"file://{tmp_path}")
    await db.create_resource(
        "hooked", {"title": "string"}, hooks={"beforeInsert": [normalize_title, lambda d: d]}
    )
    with open(os.path.join(str(tmp_path), "s3db.json"), encoding="utf-8") as f:
        catalog = json.load(f)
    # s3db.js names bound JS functions "bound <name>"; a lambda has no name.
    assert catalog["resources"]["hooked"]["versions"]["v1"]["hooks"] == {
        "beforeInsert": {
            "count": 2,
            "handlers": [
                {"name": "normalize_title", "length": 1, "type": "function"},
                {"name": None, "length": 1, "type": "function"},
            ],
        }
    }


async def test_update_conditional_returns_the_next_version(api: str, url: str) -> None:
    db = await open_db(api, url)
    res = await db.create_resource("cond", ATTRIBUTES)
    await res.insert({"id": "u", "title": "t", "n": 1})
    _, etag = await res.get_with_etag("u")
    record, etag2 = await res.update_conditional("u", {"n": 2}, etag)
    assert record["n"] == 2 and etag2 != etag
    record, _ = await res.update_conditional("u", {"n": 3}, etag2)
    assert record["n"] == 3
    with pytest.raises(s3db.PreconditionFailedError):
        await res.update_conditional("u", {"n": 4}, etag2)
    assert (await res.get("u"))["n"] == 3
