import assert from 'node:assert/strict';
import { Database } from '../../bindings-node/lib.mjs';

const db = await Database.connect(process.argv[2]);
assert.deepEqual(await db.listResources(), ['people']);
const people = await db.resource('people');
assert.deepEqual(await people.get('p1'), { id: 'p1', name: 'Zoë', city: 'São Paulo' });
await people.update('p1', { note: 'seen by node ✓' });
await people.insert({ id: 'n1', name: 'Node' });
await assert.rejects(people.insert({ id: 'p1', name: 'again' }), { code: 'ALREADY_EXISTS' });
// city and note are optional (Python defined them `string|optional`); undeclared fields are refused
await assert.rejects(people.insert({ id: 'n2', name: 'Nope', age: 3 }), (err) => {
  assert.equal(err.code, 'VALIDATION');
  assert.deepEqual(err.details.map((d) => [d.field, d.rule]), [['age', 'unknown']]);
  return true;
});
await assert.rejects(people.delete('n2'), { code: 'NOT_FOUND' });
assert.equal(await db.sequence('tickets').next(), 2);
const lock = await db.lock('interop', { ttl: 30 });
assert.equal(lock.fencingToken, 2);
await lock.release();
console.log('node read p1, updated it, wrote n1, ticket 2, lock token 2');
