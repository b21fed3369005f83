"""s3db.js 21.6.2 storage vectors through the Python binding.

The vectors (``$S3DB_VECTORS``, else ``<repo>/tests/vectors``; see their README) record
what s3db.js stored and returned. Two directions, on a ``file://`` store laid out as s3db.js's
FileSystemClient lays it out (the body at ``<dir>/<key>``, a ``<dir>/<key>.meta.json`` sidecar):

- reads: a store holding the recorded catalog and objects; every record ``get`` returns what
  s3db.js's last insert/update of it returned;
- writes: a store holding only the recorded catalog; inserting the recorded input of a record
  that s3db.js never rewrote stores exactly the metadata s3db.js stored.

The adjustments for what s3db.js cannot read back (docs/compat.md) are those of the engine's
own conformance test (core/tests/conformance.rs).
"""

import base64
import datetime
import hashlib
import json
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import open_db

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
VECTORS = os.environ.get("S3DB_VECTORS") or os.path.join(REPO, "tests", "vectors")

SCENARIOS = ["basic", "nested", "arrays", "types-extra"]

# (scenario, key): not compared, with the reason (as in core/tests/conformance.rs).
SKIPPED = {
    ("basic", "resource=users/data/id=user-0002"): "s3db.js stored 1e-7 as '' (data loss)",
    ("types-extra", "resource=ty-buf/data/id=x"): "buffer fields are stored per byte by 21.6.2",
    ("types-extra", "resource=ty-bits/data/id=x"): "bits fields are stored per byte by 21.6.2",
}

def load(name: str) -> Any:
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


# --- the FileSystemClient layout --------------------------------------------------------------


def put_file_object(
    root: str, key: str, body: bytes, metadata: Dict[str, str], content_type: Optional[str]
) -> None:
    path = os.path.join(root, *key.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(body)
    sidecar = {
        "metadata": metadata,
        "contentType": content_type,
        "etag": hashlib.md5(body).hexdigest(),
        "lastModified": datetime.datetime(2024, 1, 15, 12, 0, tzinfo=datetime.timezone.utc)
        .isoformat()
        .replace("+00:00", ".000Z"),
        "size": len(body),
        "contentLength": len(body),
        "compressed": False,
    }
    with open(path + ".meta.json", "w", encoding="utf-8") as f:
        json.dump(sidecar, f)


def body_of(obj: Dict[str, Any]) -> bytes:
    body = obj.get("body") or ""
    if obj.get("bodyEncoding") == "base64":
        return base64.b64decode(body)
    return str(body).encode("utf-8")


def store_with(root: str, scenario: str, objects: List[Dict[str, Any]]) -> str:
    """A file store holding ``<scenario>.s3db.json`` as ``s3db.json`` and ``objects``."""
    with open(os.path.join(VECTORS, f"{scenario}.s3db.json"), "rb") as f:
        catalog = f.read()
    put_file_object(root, "s3db.json", catalog, {}, "application/json")
    for o in objects:
        meta = {k: str(v) for k, v in (o.get("metadata") or {}).items()}
        put_file_object(root, o["key"], body_of(o), meta, o.get("contentType"))
    return "file://" + root


# --- what s3db.js recorded --------------------------------------------------------------------


def record_part(key: str) -> Optional[Tuple[str, str]]:
    """(resource, id) of a record key ``resource=R/data/id=ID``."""
    if not key.startswith("resource=") or "/data/id=" not in key or "/partition=" in key:
        return None
    resource, rid = key[len("resource=") :].split("/data/id=", 1)
    return resource, rid


def steps_by_resource(
    steps: List[Dict[str, Any]],
) -> Iterator[Tuple[Optional[str], Dict[str, Any]]]:
    """Steps with the resource each acted on: a label prefix ("uuid: insert x") is bound to
    the resource created just before its first use."""
    current: Optional[str] = None
    pending = False
    bound: Dict[str, Optional[str]] = {}
    for s in steps:
        label = s.get("label", "")
        if "createResource" in label:
            current = (s.get("input") or {}).get("name") or current
            pending = True
            continue
        prefix = label.split(": ", 1)[0] if ": " in label else ""
        if pending:
            bound[prefix] = current
            pending = False
        yield bound.get(prefix, current), s


def is_write(label: str) -> bool:
    return any(w in label for w in ("insert", "update", "replace", "patch"))


def recorded(steps: List[Dict[str, Any]], resource: str, rid: str, inserts_only: bool) -> Any:
    """The value s3db.js returned from the last write (or the insert) of a record."""
    found = None
    for res, s in steps_by_resource(steps):
        label = s.get("label", "")
        ok = "insert" in label if inserts_only else is_write(label)
        result = s.get("result")
        if (
            (res is None or res == resource)
            and ok
            and isinstance(result, dict)
            and result.get("id") == rid
        ):
            found = result
            if inserts_only:
                return found
    return found


def is_undefined(v: Any) -> bool:
    return v is None or (isinstance(v, dict) and v.get("$undefined") is True)


def strip_undefined(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: strip_undefined(x) for k, x in v.items() if not is_undefined(x)}
    if isinstance(v, list):
        return [strip_undefined(x) for x in v]
    return v


def comparable(expected: Dict[str, Any], ours: Dict[str, Any]) -> Dict[str, Any]:
    """What s3db.js returned, minus what it cannot read back: bookkeeping keys (``_``/``$``),
    the strings "null"/"undefined"; a ``date|convert`` string comes back quoted, and a string
    holding JSON text comes back parsed."""
    e = {
        k: v
        for k, v in strip_undefined(expected).items()
        if not k.startswith(("_", "$")) and v not in ("null", "undefined")
    }
    for k, v in list(e.items()):
        mine = ours.get(k)
        if isinstance(mine, str) and isinstance(v, str) and v.strip('"') == mine:
            e[k] = mine
        if isinstance(mine, str) and isinstance(v, (dict, list)):
            try:
                if json.loads(mine) == v:
                    e[k] = mine
            except ValueError:
                pass
    return e


def same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def records_of(v: Dict[str, Any], scenario: str) -> List[Tuple[Dict[str, Any], str, str]]:
    out = []
    for o in v["objects"]:
        part = record_part(o["key"])
        if part and (scenario, o["key"]) not in SKIPPED:
            out.append((o, part[0], part[1]))
    return out


def written_once(v: Dict[str, Any], key: str) -> bool:
    """True when the only write of ``key`` was its create-only insert (never rewritten)."""
    writes = [
        op
        for op in v["operations"]
        if op.get("op") in ("putObject", "copyObject")
        and key in (op.get("key"), op.get("to"), op.get("destination"))
    ]
    return len(writes) == 1 and writes[0].get("ifNoneMatch") == "*"


def string_attributes(scenario: str, resource: str) -> List[str]:
    """Top-level attributes of the recorded catalog declared as plain strings."""
    cat = load(f"{scenario}.s3db.json")
    res = cat["resources"][resource]
    attrs = res["versions"][res["currentVersion"]]["attributes"]
    return [k for k, r in attrs.items() if isinstance(r, str) and r.split("|")[0] == "string"]


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_stored_records_read_back_as_s3db_js_returned_them(
    scenario: str, api: str, tmp_path: Any
) -> None:
    v = load(f"{scenario}.json")
    records = records_of(v, scenario)
    url = store_with(str(tmp_path / "store"), scenario, [o for o, _, _ in records])
    db = await open_db(api, url)
    checked = 0
    failures = []
    for o, resource, rid in records:
        expected = recorded(v["steps"], resource, rid, inserts_only=False)
        if expected is None:
            continue
        ours = await (await db.resource(resource)).get(rid)
        want = comparable(expected, ours)
        if same(strip_undefined(ours), want):
            checked += 1
        else:
            failures.append(f"{o['key']}:\n  ours    {ours}\n  s3db.js {want}")
    assert not failures, "\n".join(failures)
    assert checked >= {"basic": 1, "nested": 4, "arrays": 2, "types-extra": 20}[scenario]


def plain(metadata: Dict[str, Any]) -> bool:
    """Values the metadata encoding leaves as they are: printable ASCII strings that do not
    look encoded (``u:``/``b:``/``d:`` prefixes are forced to base64)."""
    return all(
        isinstance(x, str)
        and all(" " <= c <= "~" for c in x)
        and x[:2] not in ("u:", "b:", "d:")
        and x not in ("null", "undefined")
        for x in metadata.values()
    )


def expected_writes(
    v: Dict[str, Any], scenario: str
) -> Iterator[Tuple[str, str, str, Dict[str, str], bytes]]:
    """(key, resource, id, metadata, body) s3db.js stored for each create-only record insert:
    the stored object when it was never rewritten, else the insert's own metadata (recorded
    before encoding) when encoding leaves it unchanged."""
    objects = {o["key"]: o for o in v["objects"]}
    for op in v["operations"]:
        if op.get("op") != "putObject" or op.get("ifNoneMatch") != "*":
            continue
        key = op["key"]
        part = record_part(key)
        if part is None or (scenario, key) in SKIPPED:
            continue
        obj = objects.get(key)
        if obj is not None and written_once(v, key):
            meta = obj.get("metadata") or {}
            body = body_of(obj)
        elif plain(op.get("metadata") or {}):
            meta = op.get("metadata") or {}
            body = body_of(op)
        else:
            continue
        # s3db.js stores "undefined" for absent custom-typed optionals; the engine stores nothing.
        want = {k: str(x) for k, x in meta.items() if x not in ("undefined", "null")}
        yield key, part[0], part[1], want, body


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_inserts_store_the_metadata_s3db_js_stored(
    scenario: str, api: str, tmp_path: Any
) -> None:
    v = load(f"{scenario}.json")
    root = str(tmp_path / "store")
    db = await open_db(api, store_with(root, scenario, []))
    checked = []
    failures = []
    for key, resource, rid, want, want_body in expected_writes(v, scenario):
        result = recorded(v["steps"], resource, rid, inserts_only=True)
        if result is None:
            continue
        # The recorded result is the insert input as s3db.js returned it: without its
        # bookkeeping flags and the strings it cannot read back; a string field holding
        # JSON text is shown parsed.
        data = {
            k: x
            for k, x in strip_undefined(result).items()
            if not k.startswith("$") and x not in ("null", "undefined")
        }
        for k in string_attributes(scenario, resource):
            if isinstance(data.get(k), (dict, list)):
                data[k] = json.dumps(data[k], separators=(",", ":"), ensure_ascii=False)
        res = await db.resource(resource)
        await res.insert(data)
        path = os.path.join(root, *key.split("/"))
        with open(path + ".meta.json", encoding="utf-8") as f:
            stored = json.load(f)["metadata"]
        with open(path, "rb") as f:
            body = f.read()
        if stored == want and body == want_body:
            checked.append(key)
        else:
            failures.append(f"{key}:\n  ours    {stored} {body!r}\n  s3db.js {want} {want_body!r}")
    assert not failures, "\n".join(failures)
    # basic: user-0001 (later updated) and user-0003 (later deleted) from their inserts
    minimum = {"basic": 2, "nested": 4, "arrays": 2, "types-extra": 20}[scenario]
    assert len(checked) >= minimum, checked


# (name, definition, plugin) of the plugin-attributes vector's addPluginAttribute steps.
PLUGIN_ATTRIBUTES = [
    ("auditedBy", "string|optional", "audit"),
    ("score", {"type": "number", "optional": True}, "ranker"),
]


async def register_plugin_attributes(res: Any, steps: List[Dict[str, Any]], prefix: str) -> None:
    """Adds the vector's plugin attributes to ``res`` as its plugins did (the recorded catalog
    may hold them already: then the maps returned hold more); the last call returns the plugin
    map s3db.js's last call returned."""
    got: Dict[str, str] = {}
    want: Dict[str, str] = {}
    for name, definition, plugin in PLUGIN_ATTRIBUTES:
        label = f"{prefix}: addPluginAttribute('{name}', "
        (step,) = [s for s in steps if s["label"].startswith(label) and plugin in s["label"]]
        got = await res.add_plugin_attribute(name, definition, plugin)
        want = step["result"]
        assert want.items() <= got.items(), (got, want)
    assert got == want == res.plugin_map


async def test_plugin_attributes_vector(api: str, tmp_path: Any) -> None:
    """Reads: the recorded catalog and records, the plugin attributes registered again (a
    plugin does at every start), read back as s3db.js returned them. Writes: the recorded
    inserts store s3db.js's metadata and body, except ``_v``: s3db.js versions the catalog at
    its next upload, after these writes, this engine at once."""
    scenario = "plugin-attributes"
    v = load(f"{scenario}.json")
    records = records_of(v, scenario)
    assert len(records) == 6
    seeded = store_with(str(tmp_path / "reads"), scenario, [o for o, _, _ in records])
    reads = await open_db(api, seeded)
    root = str(tmp_path / "writes")
    writes = await open_db(api, store_with(root, scenario, []))
    objects = {o["key"]: o for o in v["objects"]}
    checked = []
    for behavior in ("user-managed", "body-overflow", "body-only"):
        resource = f"pa-{behavior}"
        for db in (reads, writes):
            await register_plugin_attributes(await db.resource(resource), v["steps"], behavior)
        with open(os.path.join(root, "s3db.json"), encoding="utf-8") as f:
            version = json.load(f)["resources"][resource]["currentVersion"]
        for rid in ("small", "big"):
            key = f"resource={resource}/data/id={rid}"
            expected = recorded(v["steps"], resource, rid, inserts_only=True)
            ours = await (await reads.resource(resource)).get(rid)
            assert same(ours, comparable(expected, ours)), (key, ours, expected)
            data = {k: x for k, x in expected.items() if not k.startswith("$")}
            await (await writes.resource(resource)).insert(data)
            obj = objects[key]
            want = {k.lower(): str(x) for k, x in obj["metadata"].items()}
            want["_v"] = version
            want_body = body_of(obj).replace(b'"_v":"v1"', f'"_v":"{version}"'.encode())
            path = os.path.join(root, *key.split("/"))
            with open(path + ".meta.json", encoding="utf-8") as f:
                stored = json.load(f)["metadata"]
            with open(path, "rb") as f:
                assert (stored, f.read()) == (want, want_body), key
            checked.append(key)
    assert len(checked) == 6
