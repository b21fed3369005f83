import sys

import s3db

db = s3db.connect_sync(sys.argv[1])
people = db.create_resource(
    "people",
    {"name": "string|required", "city": "string|optional", "note": "string|optional"},
)
people.insert({"id": "p1", "name": "Zoë", "city": "São Paulo"})
assert db.sequence("tickets").next() == 1
with db.lock("interop", ttl=30.0) as lock:
    assert lock.fencing_token == 1, lock.fencing_token
print("python wrote p1, ticket 1, lock token 1")
