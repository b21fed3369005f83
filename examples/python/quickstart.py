"""s3db quickstart (Python, asyncio).

    pip install ./bindings-python
    python examples/python/quickstart.py [URL]

URL is argv[1], else $S3DB_URL, else file://<a new temp dir>. Examples:
memory://demo, file:///var/lib/app, http://KEY:SECRET@127.0.0.1:9000/bucket/prefix.
"""

import asyncio
import os
import sys
import tempfile

import s3db


def describe(url: str) -> str:
    """The connection string without its credentials, for printing."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


async def main() -> None:
    if len(sys.argv) > 1:
        url = sys.argv[1]
    elif os.environ.get("S3DB_URL"):
        url = os.environ["S3DB_URL"]
    else:
        url = "file://" + tempfile.mkdtemp(prefix="s3db-quickstart-")
    print(f"connecting to {describe(url)}")
    db = await s3db.connect(url)

    # s3db.js's data model: fields are required unless `|optional`, strings are trimmed.
    users = await db.create_resource(
        "users",
        {
            "name": "string|min:2",
            "email": "email|optional",
            "role": "string",
            "tags": "array|items:string|optional",
            "address": {"city": "string|optional"},
        },
        partitions={"byRole": {"fields": {"role": "string"}}},
        timestamps=True,
    )
    print(f"resources: {await db.list_resources()}")

    ada = await users.insert(
        {"name": "  Ada Lovelace ", "email": "ada@example.org", "role": "admin", "tags": ["math"]}
    )
    print(f"inserted {ada}")
    print(f"got      {await users.get(ada['id'])}")
    updated = await users.update(ada["id"], {"address.city": "London"})
    print(f"updated  {updated}")

    batch = await users.insert_many(
        [
            {"name": "Grace Hopper", "role": "admin"},
            {"name": "Linus", "role": "dev"},
            {"role": "dev"},
        ]
    )
    for item in batch:
        outcome = item["error"]["code"] if "error" in item else item["id"]
        print(f"insert_many[{item['index']}]: {outcome}")
    admin_count = await users.count("byRole", {"role": "admin"})  # one LIST, no GET
    print(f"count    {await users.count()}, admins {admin_count}")
    admins = await users.query({"role": "admin", "name": {"$ne": "Grace Hopper"}})
    print(f"query    {[u['name'] for u in admins]}")
    page = await users.page(2)
    print(f"page     {[u['name'] for u in page['items']]}, more: {page['cursor'] is not None}")

    try:
        await users.insert({"id": ada["id"], "name": "again", "role": "x"})
    except s3db.AlreadyExistsError as e:
        print(f"duplicate id refused: {e.code}")
    try:
        await users.insert({"name": "A", "role": "dev", "nickname": "?"})
    except s3db.ValidationError as e:
        print(f"invalid record refused: {[(i['field'], i['rule']) for i in e.details]}")

    record, etag = await users.get_with_etag(ada["id"])
    await users.update_if(ada["id"], {"tags": record["tags"] + ["engines"]}, etag)
    try:
        await users.update_if(ada["id"], {"tags": []}, etag)
    except s3db.PreconditionFailedError as e:
        print(f"stale update refused: {e.code}")

    async with db.lock("quickstart", ttl=30.0) as lock:
        print(f"holding lock {lock.name!r}, fencing token {lock.fencing_token}")

    orders = db.sequence("orders")
    values = [await orders.next() for _ in range(3)]
    print(f"sequence values {values}, next will be {await orders.current()}")

    print(f"requests sent: {db.stats()}")


if __name__ == "__main__":
    asyncio.run(main())
