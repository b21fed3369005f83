"""Plugins: plugin-owned attributes (s3db.js ``addPluginAttribute``) on every backend,
through the asyncio API and the blocking twin."""

import json
import os
from typing import Any, Dict, Optional, Tuple
from urllib.parse import urlsplit

import pytest

import s3db
from conftest import delta, open_db

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
        import boto3  # installed with moto

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
