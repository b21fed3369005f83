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

    users = await db.create_resource("users", {"name": "string|required", "email": "string"})
    print(f"resources: {await db.list_resources()}")

    ada = await users.insert({"name": "Ada Lovelace", "email": "ada@example.org"})
    print(f"inserted {ada}")
    print(f"got      {await users.get(ada['id'])}")
    updated = await users.update(ada["id"], {"email": "ada@analytical.engine"})
    print(f"updated  {updated}")
    await users.insert({"name": "Grace Hopper"})
    print(f"count    {await users.count()}")

    try:
        await users.insert({"id": ada["id"], "name": "again"})
    except s3db.AlreadyExistsError as e:
        print(f"duplicate id refused: {e.code}")

    async with db.lock("quickstart", ttl=30.0) as lock:
        print(f"holding lock {lock.name!r}, fencing token {lock.fencing_token}")

    orders = db.sequence("orders")
    values = [await orders.next() for _ in range(3)]
    print(f"sequence values {values}, next will be {await orders.current()}")

    print(f"requests sent: {db.stats()}")


if __name__ == "__main__":
    asyncio.run(main())
