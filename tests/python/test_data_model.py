"""The s3db.js data model through the binding: resource options, every attribute type,
behaviors, partitions, secrets and the full Resource API, errors included.

Every test runs on each backend (memory, file, S3) through both APIs: ``mdb`` is an
``s3db.Database`` or an ``s3db.SyncDatabase`` behind the async shape (see conftest.py).
"""

import asyncio
import datetime
import os
import pickle
import re
from typing import Any, Dict, List

import pytest

import s3db
from conftest import USERS, delta, open_db

# --- attribute types ------------------------------------------------------------------------

TYPES = {
    "s": "string",
    "n": "number",
    "i": "number|integer:true",
    "b": "boolean",
    "tags": "array|items:string",
    "nums": "array|items:number",
    "objs": "array|items:object",
    "nested": {"a": "string", "deep": {"x": "number"}},
    "js": "json",
    "dt": "datetime",
    "d": "dateonly",
    "u": "uuid",
    "ip": "ip4",
    "ip6": "ip6",
    "money": "money",
    "dec": "decimal:4",
    "lat": "geo:lat",
    "emb": "embedding:3",
    "sec": "secret",
}

PLAINTEXT = "hunter2 ✓ s3cr3t"

SAMPLES: List[Dict[str, Any]] = [
    {
        "s": "plain text, ünïcödé 東京 🚀",
        "n": 1234.5678,
        "i": -7,
        "b": True,
        "tags": ["a|b", "c\\d", "", "x"],
        "nums": [1.5, -2, 0, 1000000, 0.25],
        "objs": [{"k": [1, None]}, {"q": "x", "deep": {"n": 2}}],
        "nested": {"a": "x", "deep": {"x": -0.5}},
        "js": {"z": [True, None, {"q": "é"}], "n": 2},
        "dt": "2024-03-05T10:20:30.123Z",
        "d": "2024-03-05",
        "u": "0190f5c4-7c3b-7d2e-9a1b-123456789abc",
        "ip": "192.168.1.1",
        "ip6": "2001:db8::1",
        "money": 19.99,
        "dec": 1.2345,
        "lat": -23.5505,
        "emb": [0.1, -0.2, 0.3],
        "sec": PLAINTEXT,
    },
    {
        "s": "",
        "n": 0,
        "i": 9007199254740991,
        "b": False,
        "tags": [],
        "nums": [],
        "objs": [],
        "nested": {"a": "", "deep": {"x": 1e21}},
        "js": [],
        "dt": "1970-01-01T00:00:00.000Z",
        "d": "1999-12-31",
        "u": "00000000-0000-0000-0000-000000000000",
        "ip": "0.0.0.0",
        "ip6": "::1",
        "money": 0.01,
        "dec": -0.0001,
        "lat": 90,
        "emb": [1, 0, -1],
        "sec": "",
    },
]


def same(a: Any, b: Any) -> bool:
    """Equal, with floats compared to 1e-9 relative precision (geo, embeddings)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


async def test_every_attribute_type_round_trips(mdb: Any, url: str, api: str) -> None:
    res = await mdb.create_resource("typed", TYPES)
    for n, sample in enumerate(SAMPLES):
        want = {"id": f"r{n}", **sample}
        inserted = await res.insert(dict(want))
        got = await res.get(f"r{n}")
        assert same(inserted, want), (inserted, want)
        assert same(got, want), (got, want)
    got = await res.get("r0")
    # native Python values, not strings
    assert got["b"] is True and got["i"] == -7 and isinstance(got["i"], int)
    assert isinstance(got["n"], float) and isinstance(got["lat"], float)
    assert isinstance(got["nested"], dict) and isinstance(got["nested"]["deep"]["x"], float)
    assert isinstance(got["tags"], list) and isinstance(got["objs"][1]["deep"], dict)
    assert got["js"]["z"][1] is None
    assert (await res.get("r1"))["b"] is False

    # the secret is stored encrypted: another connection with another passphrase cannot read it
    other = await (await open_db(api, url, passphrase="not-the-passphrase")).resource("typed")
    try:
        seen = (await other.get("r0"))["sec"]
    except s3db.S3dbError:
        seen = None
    assert seen != PLAINTEXT
    same_pass = await (await open_db(api, url)).resource("typed")
    assert (await same_pass.get("r0"))["sec"] == PLAINTEXT
    if url.startswith("file://"):
        for root, _, files in os.walk(url[len("file://") :]):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    assert PLAINTEXT.encode() not in fh.read(), f


async def test_passphrases(api: str, url: str) -> None:
    db = await open_db(api, url, passphrase="connection-pass")
    vault = await db.create_resource("vault", {"key": "secret"})
    await vault.insert({"id": "k", "key": PLAINTEXT})
    # a resource can have its own passphrase, overriding the connection's
    own = await db.create_resource("own", {"key": "secret"}, passphrase="resource-pass")
    await own.insert({"id": "k", "key": PLAINTEXT})
    assert (await own.get("k"))["key"] == PLAINTEXT

    again = await open_db(api, url, passphrase="connection-pass")
    assert (await (await again.resource("vault")).get("k"))["key"] == PLAINTEXT
    assert (await (await again.resource("own")).get("k"))["key"] != PLAINTEXT
    with_resource_pass = await open_db(api, url, passphrase="resource-pass")
    assert (await (await with_resource_pass.resource("own")).get("k"))["key"] == PLAINTEXT
    default = await open_db(api, url)  # s3db.js's default passphrase: not this one
    assert (await (await default.resource("vault")).get("k"))["key"] != PLAINTEXT

    with pytest.raises(s3db.InvalidArgumentError):
        await open_db(api, url, passphrase=5)  # type: ignore[arg-type]


# --- validation: s3db.js (fastest-validator) semantics ----------------------------------------


async def test_required_optional_trim_and_details(mdb: Any) -> None:
    res = await mdb.create_resource(
        "people",
        {"name": "string|min:2", "raw": "string|trim:false|optional", "age": "number|optional"},
    )
    rec = await res.insert({"id": "p", "name": "  Ada  ", "raw": "  kept  "})
    assert rec == {"id": "p", "name": "Ada", "raw": "  kept  "}
    assert await res.get("p") == rec

    with pytest.raises(s3db.ValidationError) as err:
        await res.insert({"age": "old", "bogus": 1})
    e = err.value
    assert e.code == "VALIDATION"
    assert isinstance(e.details, list) and e.details
    for issue in e.details:
        assert set(issue) == {"field", "rule", "expected", "actual"}
        assert all(isinstance(v, str) for v in issue.values())
    by_field = {i["field"]: i for i in e.details}
    assert by_field["name"]["rule"] == "required"
    assert by_field["age"]["rule"] == "type"
    assert by_field["bogus"]["rule"] == "unknown"
    # details survive pickling (multiprocessing, logging handlers ...)
    again = pickle.loads(pickle.dumps(e))
    assert again.details == e.details and str(again) == str(e)

    with pytest.raises(s3db.ValidationError) as err:
        await res.insert({"name": "x"})  # min:2
    assert [i["rule"] for i in err.value.details] == ["min"]
    for lost in ("null", "undefined"):
        with pytest.raises(s3db.ValidationError) as err:
            await res.insert({"name": lost})
        assert err.value.details[0]["field"] == "name"
    with pytest.raises(s3db.ValidationError) as err:
        await res.update("p", {"age": "NaN"})
    assert err.value.details[0]["field"] == "age"
    with pytest.raises(s3db.ValidationError) as err:
        await res.update("p", {"undeclared": 1})
    assert err.value.details[0]["rule"] == "unknown"
    assert await res.get("p") == rec

    # an invalid schema is a validation error without record details
    with pytest.raises(s3db.ValidationError) as err:
        await mdb.create_resource("broken", {"n": "string|min:abc"})
    assert err.value.details == []


def test_validation_error_details_default() -> None:
    assert s3db.ValidationError("m").details == []
    issue: s3db.ValidationIssue = {"field": "f", "rule": "r", "expected": "e", "actual": "a"}
    err = s3db.ValidationError("m", details=[issue])
    assert err.details == [issue] and str(err) == "m" and err.args == ("m",)


# --- resource options -------------------------------------------------------------------------


async def test_create_resource_options(mdb: Any) -> None:
    short = await mdb.create_resource("short", {"name": "string"}, id_size=8)
    assert len((await short.insert({"name": "x"}))["id"]) == 8

    bad_types: List[Dict[str, Any]] = [
        {"behavior": 5},
        {"timestamps": "yes"},
        {"timestamps": 1},
        {"paranoid": 1},
        {"paranoid": "false"},
        {"id_size": "8"},
        {"id_size": 2.5},
        {"id_size": True},
        {"partitions": "status"},
        {"partitions": 5},
        {"passphrase": b"pw"},
    ]
    for kwargs in bad_types:
        with pytest.raises(s3db.InvalidArgumentError):
            await mdb.create_resource("opts", {"status": "string"}, **kwargs)
    bad_values: List[Dict[str, Any]] = [
        {"behavior": "nope"},
        {"id_size": 0},
        {"id_size": 1000},
        {"partitions": {"byX": {"fields": {"missing": "string"}}}},
        {"partitions": {"byX": {}}},
        {"partitions": ["missing"]},
    ]
    for kwargs in bad_values:
        with pytest.raises(s3db.ValidationError):
            await mdb.create_resource("opts", {"status": "string"}, **kwargs)
    with pytest.raises(TypeError):
        await mdb.create_resource("opts", {"status": "string"}, bogus=True)
    with pytest.raises(TypeError):  # the options are keyword-only
        await mdb.create_resource("opts", {"status": "string"}, "body-only")
    assert "opts" not in await mdb.list_resources()


async def test_nested_and_object_notation_attributes(mdb: Any) -> None:
    res = await mdb.create_resource(
        "places",
        {
            "title": {"type": "string", "min": 2},
            "address": {"city": "string", "geo": {"lat": "number", "lng": "number"}},
            "prefs": {"$$type": "object|optional", "theme": "string|optional"},
            "tags": {"type": "array", "items": "string", "optional": True},
        },
    )
    rec = {
        "id": "n1",
        "title": "Home",
        "address": {"city": "São Paulo", "geo": {"lat": -23.5, "lng": -46.25}},
        "prefs": {"theme": "dark"},
        "tags": ["a", "b"],
    }
    assert await res.insert(dict(rec)) == rec
    assert await res.get("n1") == rec
    sparse = {"id": "n2", "title": "Sparse", "address": {"city": "c", "geo": {"lat": 0, "lng": 0}}}
    assert await res.insert(dict(sparse)) == sparse
    assert await res.get("n2") == sparse
    # nested objects are optional (s3db.js's allNestedObjectsOptional), their fields are not
    assert await res.insert({"id": "n3", "title": "No geo", "address": {"city": "c"}}) == {
        "id": "n3",
        "title": "No geo",
        "address": {"city": "c"},
    }
    with pytest.raises(s3db.ValidationError) as err:
        await res.insert(
            {"title": "Bad", "address": {"city": "c", "geo": {"lat": "north", "lng": 0}}}
        )
    assert [i["field"] for i in err.value.details] == ["address.geo.lat"]
    with pytest.raises(s3db.ValidationError) as err:
        await res.insert({"title": "No city", "address": {"geo": {"lat": 1, "lng": 0}}})
    assert [i["field"] for i in err.value.details] == ["address.city"]


# --- behaviors --------------------------------------------------------------------------------


async def test_behaviors(mdb: Any) -> None:
    long = "".join(chr(ord("a") + i % 26) for i in range(3000))
    attrs = {"title": "string", "text": "string"}

    over = await mdb.create_resource("over", attrs, behavior="body-overflow")
    assert (await over.insert({"id": "big", "title": "t", "text": long}))["text"] == long
    assert await over.get("big") == {"id": "big", "title": "t", "text": long}
    assert (await over.update("big", {"title": "t2"}))["text"] == long
    assert await over.get("big") == {"id": "big", "title": "t2", "text": long}
    await over.insert({"id": "small", "title": "t", "text": "short"})
    assert (await over.get("small"))["text"] == "short"

    only = await mdb.create_resource("only", attrs, behavior="body-only")
    await only.insert({"id": "big", "title": "t", "text": long})
    assert (await only.get("big"))["text"] == long

    strict = await mdb.create_resource("strict", attrs, behavior="enforce-limits")
    await strict.insert({"id": "small", "title": "t", "text": "fits"})
    with pytest.raises(s3db.ValidationError) as err:
        await strict.insert({"id": "big", "title": "t", "text": long})
    sizes = [int(n) for n in re.findall(r"\d+", str(err.value))]
    assert any(n > 3000 for n in sizes), str(err.value)  # what the record needs
    assert any(1900 < n <= 2048 for n in sizes), str(err.value)  # the budget
    assert await strict.get_or_none("big") is None
    with pytest.raises(s3db.ValidationError):
        await strict.update("small", {"text": long})
    assert (await strict.get("small"))["text"] == "fits"

    cut = await mdb.create_resource("cut", attrs, behavior="truncate-data")
    await cut.insert({"id": "big", "title": "t", "text": long})
    stored = (await cut.get("big"))["text"]
    assert len(stored) < len(long) and long.startswith(stored)

    managed = await mdb.create_resource("managed", attrs)  # user-managed: stored as given
    await managed.insert({"id": "big", "title": "t", "text": long})
    assert (await managed.get("big"))["text"] == long


# --- partitions -------------------------------------------------------------------------------

ORDERS = {"status": "string", "region": "string", "amount": "number"}
ORDER_PARTITIONS = {
    "byStatus": {"fields": {"status": "string"}},
    "byRegionStatus": {"fields": {"region": "string", "status": "string"}},
}


async def orders_with_partitions(mdb: Any, **options: Any) -> Any:
    res = await mdb.create_resource("orders", ORDERS, partitions=ORDER_PARTITIONS, **options)
    await asyncio.gather(
        res.insert({"id": "o1", "status": "active", "region": "eu", "amount": 10}),
        res.insert({"id": "o2", "status": "act", "region": "eu", "amount": 20}),
        res.insert({"id": "o3", "status": "active", "region": "us", "amount": 30}),
        res.insert({"id": "o4", "status": "inactive", "region": "us", "amount": 40}),
    )
    return res


async def test_partitions(mdb: Any) -> None:
    res = await orders_with_partitions(mdb)
    assert await res.list_ids("byStatus", {"status": "act"}) == ["o2"]  # never "active"
    assert sorted(await res.list_ids("byStatus", {"status": "active"})) == ["o1", "o3"]
    assert await res.count("byStatus", {"status": "active"}) == 2
    assert await res.count("byStatus", {"status": "nothing"}) == 0
    assert await res.list("byStatus", {"status": "inactive"}) == [
        {"id": "o4", "status": "inactive", "region": "us", "amount": 40}
    ]
    assert await res.count("byStatus") == 4  # no values: every reference of the partition
    # leading fields only, or all of them
    assert sorted(await res.list_ids("byRegionStatus", {"region": "eu"})) == ["o1", "o2"]
    assert await res.list_ids("byRegionStatus", {"region": "us", "status": "active"}) == ["o3"]
    # keyword arguments work too
    assert await res.count(partition="byStatus", values={"status": "act"}) == 1

    # an update moves the reference
    await res.update("o2", {"status": "active"})
    assert await res.list_ids("byStatus", {"status": "act"}) == []
    assert sorted(await res.list_ids("byStatus", {"status": "active"})) == ["o1", "o2", "o3"]
    assert sorted(await res.list_ids("byRegionStatus", {"region": "eu", "status": "active"})) == [
        "o1",
        "o2",
    ]
    # a delete removes it
    await res.delete("o1")
    assert sorted(await res.list_ids("byStatus", {"status": "active"})) == ["o2", "o3"]
    assert await res.count("byStatus") == 3

    with pytest.raises(s3db.NotFoundError):
        await res.list_ids("noSuchPartition", {"status": "active"})
    with pytest.raises(s3db.InvalidArgumentError):
        await res.list_ids(values={"status": "active"})  # values need a partition
    with pytest.raises(s3db.InvalidArgumentError):
        await res.count("byStatus", {"status": "a/b"})  # would change the key's shape
    with pytest.raises(s3db.InvalidArgumentError):
        await res.list("byStatus", ["active"])
    with pytest.raises(s3db.InvalidArgumentError):
        await res.insert({"status": "x/y", "region": "eu", "amount": 1})
    assert await res.count() == 3


async def test_partition_shorthand_and_reindex(mdb: Any) -> None:
    res = await mdb.create_resource("orders", ORDERS, partitions=["status"])
    await res.insert({"id": "o1", "status": "active", "region": "eu", "amount": 1})
    assert await res.list_ids("byStatus", {"status": "active"}) == ["o1"]
    assert await res.reindex() == {"written": 0, "deleted": 0}

    plain = await mdb.create_resource("plain", ORDERS)
    for i in range(3):
        await plain.insert({"id": f"p{i}", "status": "s", "region": f"r{i}", "amount": i})
    # defining a partition later: references are missing until reindexed
    plain = await mdb.create_resource(
        "plain", ORDERS, partitions={"byRegion": {"fields": {"region": "string"}}}
    )
    assert await plain.count("byRegion") == 0
    assert await plain.reindex("byRegion") == {"written": 3, "deleted": 0}
    assert await plain.list_ids("byRegion", {"region": "r1"}) == ["p1"]
    assert await plain.reindex() == {"written": 0, "deleted": 0}
    # the same partition on another field: the old references are stale
    plain = await mdb.create_resource(
        "plain", ORDERS, partitions={"byRegion": {"fields": {"status": "string"}}}
    )
    assert await plain.reindex("byRegion") == {"written": 3, "deleted": 3}
    assert sorted(await plain.list_ids("byRegion", {"status": "s"})) == ["p0", "p1", "p2"]
    with pytest.raises(s3db.NotFoundError):
        await plain.reindex("nope")
    with pytest.raises(s3db.InvalidArgumentError):
        await plain.reindex(5)


# --- query ------------------------------------------------------------------------------------


async def test_query(mdb: Any) -> None:
    res = await mdb.create_resource(
        "people",
        {
            "name": "string",
            "age": "number",
            "status": "string",
            "nickname": "string|optional",
            "address": {"city": "string"},
        },
        partitions=["status"],
    )
    await asyncio.gather(
        res.insert(
            {"id": "q1", "name": "a", "age": 10, "status": "on", "address": {"city": "Paris"}}
        ),
        res.insert(
            {"id": "q2", "name": "b", "age": 20, "status": "off", "address": {"city": "Rome"}}
        ),
        res.insert(
            {
                "id": "q3",
                "name": "c",
                "age": 30,
                "status": "on",
                "nickname": "cc",
                "address": {"city": "Paris"},
            }
        ),
    )

    async def ids(flt: Dict[str, Any]) -> List[str]:
        return sorted(r["id"] for r in await res.query(flt))

    assert await ids({}) == ["q1", "q2", "q3"]
    assert await ids({"age": 20}) == ["q2"]
    assert await ids({"age": {"$eq": 20}}) == ["q2"]
    assert await ids({"age": {"$ne": 20}}) == ["q1", "q3"]
    assert await ids({"age": {"$gt": 10}}) == ["q2", "q3"]
    assert await ids({"age": {"$gte": 10, "$lt": 30}}) == ["q1", "q2"]
    assert await ids({"age": {"$lte": 10}}) == ["q1"]
    assert await ids({"name": {"$in": ["a", "c", "z"]}}) == ["q1", "q3"]
    assert await ids({"name": {"$nin": ["a"]}}) == ["q2", "q3"]
    assert await ids({"nickname": {"$exists": True}}) == ["q3"]
    assert await ids({"nickname": {"$exists": False}}) == ["q1", "q2"]
    assert await ids({"address.city": "Paris"}) == ["q1", "q3"]
    assert await ids({"address.city": {"$in": ["Rome"]}, "age": {"$gt": 5}}) == ["q2"]
    assert await ids({"status": "on", "age": {"$gt": 15}}) == ["q3"]  # through byStatus
    assert await ids({"age": {"$gt": 100}}) == []
    full = await res.query({"name": "c"})
    assert full == [await res.get("q3")]

    assert await ids({"name": {"$regex": "^[AB]$", "$options": "i"}}) == ["q1", "q2"]
    assert await ids({"$or": [{"age": 10}, {"nickname": "cc"}]}) == ["q1", "q3"]
    with pytest.raises(s3db.InvalidArgumentError):
        await res.query({"name": {"$startsWith": "a"}})
    with pytest.raises(s3db.InvalidArgumentError):
        await res.query({"name": {"$in": "a"}})
    with pytest.raises(s3db.InvalidArgumentError):
        await res.query("name = 'a'")
    with pytest.raises(s3db.InvalidArgumentError):
        await res.query({"age": {"$gt": {1, 2}}})


# --- pages ------------------------------------------------------------------------------------


async def test_page_through_25_records(mdb: Any) -> None:
    res = await mdb.create_resource("items", {"n": "number"})
    await res.insert_many([{"id": f"p{i:02d}", "n": i} for i in range(25)])
    pages: List[List[str]] = []
    cursor = None
    while True:
        before = mdb.stats()
        page = await res.page(10, cursor)
        got = [r["id"] for r in page["items"]]
        assert delta(before, mdb.stats()) == {"list": 1, "get": len(got)}
        assert set(page) == {"items", "cursor"}
        assert all(r["n"] == int(r["id"][1:]) for r in page["items"])
        pages.append(got)
        cursor = page["cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert [len(p) for p in pages] == [10, 10, 5]
    flat = [i for p in pages for i in p]
    assert len(set(flat)) == 25 and sorted(flat) == [f"p{i:02d}" for i in range(25)]

    first = await res.page(size=10)
    assert len(first["items"]) == 10 and first["cursor"]
    # a cursor survives records added meanwhile
    await res.insert({"id": "p99", "n": 99})
    rest = await res.page(100, first["cursor"])
    assert rest["cursor"] is None
    assert {r["id"] for r in rest["items"]}.isdisjoint(r["id"] for r in first["items"])
    assert len(rest["items"]) == 16

    for size in (0, -1, 1001):
        with pytest.raises(s3db.InvalidArgumentError):
            await res.page(size)
    with pytest.raises(s3db.InvalidArgumentError):
        await res.page("10")
    with pytest.raises(s3db.InvalidArgumentError):
        await res.page(10, "not a cursor!")
    other = await mdb.create_resource("other", {"n": "number"})
    with pytest.raises(s3db.InvalidArgumentError):
        await other.page(10, first["cursor"])  # a cursor of another listing
    assert await other.page(10) == {"items": [], "cursor": None}


# --- batches ----------------------------------------------------------------------------------


async def test_insert_many(mdb: Any) -> None:
    res = await mdb.create_resource("users", USERS)
    await res.insert({"id": "taken", "name": "first"})
    items = await res.insert_many(
        [
            {"id": "m1", "name": "Ann"},
            {"name": "x", "bogus": 1},
            {"id": "taken", "name": "again"},
            {"name": "Generated"},
            {"id": "a/b", "name": "bad id"},
        ]
    )
    assert [i["index"] for i in items] == [0, 1, 2, 3, 4]
    assert items[0] == {"index": 0, "id": "m1", "record": {"id": "m1", "name": "Ann"}}
    assert items[1]["id"] is None and "record" not in items[1]
    assert items[1]["error"]["code"] == "VALIDATION" and "bogus" in items[1]["error"]["message"]
    assert items[2]["id"] == "taken" and items[2]["error"]["code"] == "ALREADY_EXISTS"
    assert "error" not in items[3] and items[3]["record"]["id"] == items[3]["id"]
    assert items[4]["error"]["code"] == "INVALID_ARGUMENT"
    assert await res.count() == 3
    assert (await res.get("taken"))["name"] == "first"

    assert await res.insert_many([]) == []
    assert (await res.insert_many(({"id": "t1", "name": "tuple"},)))[0]["record"]["id"] == "t1"
    # wrong Python types: nothing is sent
    with pytest.raises(s3db.InvalidArgumentError):
        await res.insert_many({"name": "not a list"})
    with pytest.raises(s3db.InvalidArgumentError):
        await res.insert_many("abc")
    with pytest.raises(s3db.InvalidArgumentError, match=r"\[1\]"):
        await res.insert_many([{"id": "never", "name": "ok"}, 5])
    with pytest.raises(s3db.InvalidArgumentError, match=r"\[0\]\.name"):
        await res.insert_many([{"id": "never", "name": {1, 2}}])
    assert await res.get_or_none("never") is None


async def test_get_many(mdb: Any) -> None:
    res = await mdb.create_resource("users", USERS)
    await res.insert_many([{"id": f"g{i}", "name": f"n{i}"} for i in range(3)])
    got = await res.get_many(["g2", "ghost", "g0"])
    assert got == {
        "found": [{"id": "g2", "name": "n2"}, {"id": "g0", "name": "n0"}],
        "missing": ["ghost"],
    }
    assert await res.get_many([]) == {"found": [], "missing": []}
    assert (await res.get_many(("g1",)))["found"] == [{"id": "g1", "name": "n1"}]
    with pytest.raises(s3db.InvalidArgumentError):
        await res.get_many(["g0", "a/b"])
    with pytest.raises(s3db.InvalidArgumentError):
        await res.get_many("g0")  # a str is not a list of ids
    with pytest.raises(s3db.InvalidArgumentError, match=r"\[1\]"):
        await res.get_many(["g0", 1])


async def test_delete_many_and_delete(mdb: Any) -> None:
    res = await mdb.create_resource("users", USERS)
    await res.insert_many([{"id": f"d{i}", "name": "x"} for i in range(3)])
    items = await res.delete_many(["d0", "ghost", "d2", "a/b"])
    assert items[0] == {"index": 0, "id": "d0"}
    assert items[1]["id"] == "ghost" and items[1]["error"]["code"] == "NOT_FOUND"
    assert items[2] == {"index": 2, "id": "d2"}
    assert items[3]["error"]["code"] == "INVALID_ARGUMENT"
    assert await res.list_ids() == ["d1"]
    assert await res.delete_many([]) == []
    with pytest.raises(s3db.InvalidArgumentError):
        await res.delete_many("d1")

    before = mdb.stats()
    await res.delete("d1")
    assert delta(before, mdb.stats()) == {"head": 1, "delete": 1}
    with pytest.raises(s3db.NotFoundError):
        await res.delete("d1")


async def test_delete_all(mdb: Any) -> None:
    guarded = await orders_with_partitions(mdb)  # paranoid by default
    with pytest.raises(s3db.InvalidArgumentError, match="paranoid"):
        await guarded.delete_all()
    assert await guarded.count() == 4

    res = await mdb.create_resource("scratch", ORDERS, partitions=ORDER_PARTITIONS, paranoid=False)
    await res.insert_many(
        [{"id": f"x{i}", "status": "s", "region": "r", "amount": i} for i in range(3)]
    )
    assert await res.delete_all() == 3
    assert await res.count() == 0
    assert await res.count("byStatus") == 0 and await res.count("byRegionStatus") == 0
    assert await res.delete_all() == 0
    assert await guarded.count() == 4  # other resources are untouched
    await res.insert({"id": "x0", "status": "s", "region": "r", "amount": 0})
    assert await res.list_ids("byStatus", {"status": "s"}) == ["x0"]


# --- writes -----------------------------------------------------------------------------------


async def test_replace_upsert_patch(mdb: Any) -> None:
    res = await mdb.create_resource(
        "users",
        {
            "name": "string",
            "email": "string|optional",
            "profile": {"city": "string|optional", "zip": "string|optional"},
        },
    )
    await res.insert(
        {"id": "u", "name": "Ada", "email": "a@x", "profile": {"city": "L", "zip": "1"}}
    )

    # replace: the whole record, fields not given are gone
    assert await res.replace("u", {"name": "Ada L."}) == {"id": "u", "name": "Ada L."}
    assert await res.get("u") == {"id": "u", "name": "Ada L."}
    with pytest.raises(s3db.NotFoundError):
        await res.replace("ghost", {"name": "x"})
    with pytest.raises(s3db.ValidationError):
        await res.replace("u", {"email": "no name"})
    with pytest.raises(s3db.InvalidArgumentError):
        await res.replace("u", ["name"])

    # patch: merges; dotted keys change one nested field
    await res.update("u", {"profile": {"city": "London", "zip": "NW1"}})
    patched = await res.patch("u", {"profile.city": "Paris", "email": "ada@x"})
    assert patched == {
        "id": "u",
        "name": "Ada L.",
        "email": "ada@x",
        "profile": {"city": "Paris", "zip": "NW1"},
    }
    assert await res.get("u") == patched
    with pytest.raises(s3db.NotFoundError):
        await res.patch("ghost", {"name": "x"})
    with pytest.raises(s3db.ValidationError):
        await res.patch("u", {"name": None})

    # upsert: inserts, or merges into the existing record
    assert await res.upsert({"id": "v", "name": "Grace"}) == {"id": "v", "name": "Grace"}
    merged = await res.upsert({"id": "v", "email": "g@x"})
    assert merged == {"id": "v", "name": "Grace", "email": "g@x"}
    assert await res.get("v") == merged
    generated = await res.upsert({"name": "NoId"})
    assert await res.get(generated["id"]) == generated
    with pytest.raises(s3db.ValidationError):
        await res.upsert({"id": "w", "email": "missing name"})


async def test_get_with_etag_and_update_if(mdb: Any) -> None:
    res = await mdb.create_resource("users", USERS)
    await res.insert({"id": "e", "name": "v1"})
    got = await res.get_with_etag("e")
    assert isinstance(got, tuple) and len(got) == 2
    record, etag = got
    assert record == {"id": "e", "name": "v1"}
    assert isinstance(etag, str) and etag

    assert await res.update_if("e", {"name": "v2"}, etag) == {"id": "e", "name": "v2"}
    with pytest.raises(s3db.PreconditionFailedError) as err:
        await res.update_if("e", {"name": "v3"}, etag)  # stale
    assert err.value.code == "PRECONDITION_FAILED"
    assert (await res.get("e"))["name"] == "v2"
    _, fresh = await res.get_with_etag("e")
    assert fresh != etag
    assert (await res.update_if("e", {"email": "x"}, fresh))["email"] == "x"

    with pytest.raises(s3db.NotFoundError):
        await res.get_with_etag("ghost")
    with pytest.raises(s3db.NotFoundError):
        await res.update_if("ghost", {"name": "x"}, fresh)
    with pytest.raises(s3db.InvalidArgumentError):
        await res.update_if("e", {"name": "x"}, None)


def iso(ts: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))


async def test_timestamps(mdb: Any) -> None:
    res = await mdb.create_resource("events", {"title": "string"}, timestamps=True)
    rec = await res.insert({"id": "ev", "title": "t"})
    assert set(rec) == {"id", "title", "createdAt", "updatedAt"}
    created = iso(rec["createdAt"])
    assert iso(rec["updatedAt"]) == created
    assert abs((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds()) < 600
    assert await res.get("ev") == rec

    await asyncio.sleep(0.01)
    updated = await res.update("ev", {"title": "t2"})
    assert updated["createdAt"] == rec["createdAt"]
    assert iso(updated["updatedAt"]) > created
    replaced = await res.replace("ev", {"title": "t3"})
    assert replaced["createdAt"] == rec["createdAt"]
    # the date partitions s3db.js adds with timestamps
    day = rec["createdAt"][:10]
    assert await res.list_ids("byCreatedDate", {"createdAt": day}) == ["ev"]
    assert await res.count("byUpdatedDate") == 1

    plain = await mdb.create_resource("plain", {"title": "string"})
    assert await plain.insert({"id": "p", "title": "t"}) == {"id": "p", "title": "t"}
