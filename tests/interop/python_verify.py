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
# The schema Python defined binds every writer: undeclared fields and missing required ones
# are refused, whichever language wrote the resource.
for bad, field in (({"id": "x1", "name": "X", "age": 3}, "age"), ({"id": "x2"}, "name")):
    try:
        people.insert(bad)
    except s3db.ValidationError as e:
        assert field in str(e), e
    else:
        raise AssertionError(f"{bad} was accepted")
try:
    people.delete("x1")
except s3db.NotFoundError:
    pass
else:
    raise AssertionError("deleting a missing id succeeded")
assert db.sequence("tickets").current() == 3
with db.lock("interop", ttl=30.0) as lock:
    assert lock.fencing_token == 3
print("python verified node's writes")
