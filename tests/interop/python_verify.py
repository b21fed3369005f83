import sys

import s3db

db = s3db.connect_sync(sys.argv[1])
people = db.resource("people")
assert people.get("p1") == {
    "id": "p1",
    "name": "Zoë",
    "city": "São Paulo",
    "note": "seen by node ✓",
}, people.get("p1")
assert people.get("n1") == {"id": "n1", "name": "Node"}
assert people.count() == 2
assert sorted(people.list_ids()) == ["n1", "p1"]
assert db.sequence("tickets").current() == 3
with db.lock("interop", ttl=30.0) as lock:
    assert lock.fencing_token == 3
print("python verified node's writes")
