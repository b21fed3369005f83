package s3db

// Runs against memory://, file://<temp dir> and, when S3DB_TEST_S3_URL is set,
// <S3DB_TEST_S3_URL>/<random prefix>. Build libs3db first: cargo build -p s3db-c.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func backends(t *testing.T) map[string]string {
	urls := map[string]string{
		"memory": "memory://go-test-" + randomHex(t),
		"file":   "file://" + t.TempDir(),
	}
	if s3 := os.Getenv("S3DB_TEST_S3_URL"); s3 != "" {
		urls["s3"] = s3 + "/go-" + randomHex(t)
	}
	return urls
}

// must(f())(t) is f()'s value, failing the test if f returned an error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func expectErr(t *testing.T, err error, target *Error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %s", err, target.Code)
	}
	var e *Error
	if !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("error %v has no message", err)
	}
}

// expectIssue checks that err is a validation error naming field (and rule, unless "").
func expectIssue(t *testing.T, err error, field, rule string) {
	t.Helper()
	expectErr(t, err, ErrValidation)
	for _, i := range err.(*Error).Details {
		if i.Field == field && (rule == "" || i.Rule == rule) {
			return
		}
	}
	t.Fatalf("no issue %s/%s in %+v", field, rule, err.(*Error).Details)
}

func ids(records []Record) []string {
	out := []string{}
	for _, r := range records {
		out = append(out, r["id"].(string))
	}
	sort.Strings(out)
	return out
}

func expectIDs(t *testing.T, records []Record, want ...string) {
	t.Helper()
	if got := ids(records); !reflect.DeepEqual(got, want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
}

func expectRequests(t *testing.T, db *Database, want Stats) {
	t.Helper()
	got := must(db.Stats())(t)
	if got != want {
		t.Fatalf("requests: got %v, want %v", got, want)
	}
}

func TestBackends(t *testing.T) {
	if Version() == "" {
		t.Fatal("no version")
	}
	for name, url := range backends(t) {
		t.Run(name, func(t *testing.T) {
			db := must(Connect(url))(t)
			defer db.Close()
			users := must(db.CreateResource("users", map[string]string{
				"name": "string|required", "email": "string|optional",
			}))(t)
			defer users.Close()

			t.Run("records", func(t *testing.T) { testRecords(t, url, db, users) })
			t.Run("errors", func(t *testing.T) { testErrors(t, db, users) })
			t.Run("locks", func(t *testing.T) { testLocks(t, db) })
			t.Run("sequences", func(t *testing.T) { testSequences(t, db) })
			t.Run("async", func(t *testing.T) { testAsync(t, db, users) })
			t.Run("data model", func(t *testing.T) { testDataModel(t, db) })
			t.Run("etags", func(t *testing.T) { testEtags(t, users) })
			t.Run("secrets", func(t *testing.T) { testSecrets(t, url) })
			t.Run("sequence batch", func(t *testing.T) { testSequenceBatch(t, db) })
			t.Run("state", func(t *testing.T) { testState(t, db) })
			t.Run("coordinator", func(t *testing.T) { testCoordinator(t, url, db) })
			t.Run("plugin attributes", func(t *testing.T) { testPluginAttributes(t, url, db) })
		})
	}
}

func testRecords(t *testing.T, url string, db *Database, users *Resource) {
	ok(t, db.ResetStats())
	ada := must(users.Insert(Record{"id": "ada", "name": "Ada", "email": "ada@example.com"}))(t)
	if ada["id"] != "ada" || ada["name"] != "Ada" {
		t.Fatalf("insert returned %v", ada)
	}
	expectRequests(t, db, Stats{Put: 1})

	grace := must(users.Insert(Record{"name": "Grace"}))(t)
	if id, _ := grace["id"].(string); id == "" {
		t.Fatalf("no generated id in %v", grace)
	}

	ok(t, db.ResetStats())
	got := must(users.Get("ada"))(t)
	if got["email"] != "ada@example.com" {
		t.Fatalf("get returned %v", got)
	}
	expectRequests(t, db, Stats{Get: 1})

	ok(t, db.ResetStats())
	upd := must(users.Update("ada", Record{"email": "ada@analytical.engine"}))(t)
	if upd["email"] != "ada@analytical.engine" || upd["name"] != "Ada" {
		t.Fatalf("update returned %v", upd)
	}
	expectRequests(t, db, Stats{Get: 1, Put: 1})

	if n := must(users.Count())(t); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	ids := must(users.ListIDs())(t)
	sort.Strings(ids)
	if len(ids) != 2 || !(ids[0] == "ada" || ids[1] == "ada") {
		t.Fatalf("ids = %v", ids)
	}
	if !must(users.Exists("ada"))(t) {
		t.Fatal("ada does not exist")
	}
	ok(t, db.ResetStats())
	ok(t, users.Delete(grace["id"].(string)))
	expectRequests(t, db, Stats{Head: 1, Delete: 1})
	if n := must(users.Count())(t); n != 1 {
		t.Fatalf("count after delete = %d, want 1", n)
	}
	expectErr(t, users.Delete(grace["id"].(string)), ErrNotFound)
	names := must(db.ListResources())(t)
	if len(names) != 1 || names[0] != "users" {
		t.Fatalf("resources = %v", names)
	}

	// A second connection sees the same data.
	db2 := must(Connect(url))(t)
	defer db2.Close()
	users2 := must(db2.Resource("users"))(t)
	defer users2.Close()
	if got := must(users2.Get("ada"))(t); got["email"] != "ada@analytical.engine" {
		t.Fatalf("second connection read %v", got)
	}
}

func testErrors(t *testing.T, db *Database, users *Resource) {
	_, err := users.Insert(Record{"id": "dup", "name": "One"})
	ok(t, err)
	_, err = users.Insert(Record{"id": "dup", "name": "Two"})
	expectErr(t, err, ErrAlreadyExists)
	_, err = users.Get("missing")
	expectErr(t, err, ErrNotFound)
	_, err = users.Update("missing", Record{"name": "x"})
	expectErr(t, err, ErrNotFound)
	_, err = users.Get("a/b")
	expectErr(t, err, ErrInvalidArgument)
	_, err = users.Get("\xff\xfe")
	expectErr(t, err, ErrInvalidArgument)
	_, err = users.Insert(Record{"email": "no-name@example.com"})
	expectErr(t, err, ErrValidation)
	expectIssue(t, err, "name", "required")
	_, err = users.Insert(Record{"name": "X", "age": 3})
	expectIssue(t, err, "age", "")
	_, err = users.Insert(Record{"name": "null"})
	expectErr(t, err, ErrValidation)
	trimmed := must(users.Insert(Record{"id": "trim", "name": "  Trim  "}))(t)
	if trimmed["name"] != "Trim" {
		t.Fatalf("name not trimmed: %v", trimmed)
	}
	ok(t, users.Delete("trim"))
	_, err = users.Get("missing")
	if e := err.(*Error); e.Details != nil {
		t.Fatalf("NOT_FOUND with details %v", e.Details)
	}
	_, err = db.Resource("nope")
	expectErr(t, err, ErrNotFound)
	_, err = Connect("nope://where")
	expectErr(t, err, ErrInvalidArgument)
	_, err = db.Sequence("s", 1, 0)
	expectErr(t, err, ErrInvalidArgument)

	// A closed handle is a NULL handle: an error, not a crash.
	r := must(db.Resource("users"))(t)
	r.Close()
	_, err = r.Count()
	expectErr(t, err, ErrInvalidArgument)
	ok(t, users.Delete("dup"))
}

func testLocks(t *testing.T, db *Database) {
	ok(t, db.ResetStats())
	l1 := must(db.Lock("job", 10*time.Second, 0))(t)
	defer l1.Close()
	if s := must(db.Stats())(t); s.Total() > 2 {
		t.Fatalf("lock acquire sent %v", s)
	}
	if l1.Name != "job" || l1.FencingToken < 1 || l1.HolderID == "" {
		t.Fatalf("lock = %+v", l1)
	}
	_, err := db.Lock("job", 10*time.Second, 0)
	expectErr(t, err, ErrLockNotAcquired)
	ok(t, l1.Extend(20*time.Second))
	ok(t, l1.Release())
	ok(t, l1.Release())
	expectErr(t, l1.Extend(time.Second), ErrLockLost)

	l2 := must(db.Lock("job", 10*time.Second, 0))(t)
	defer l2.Close()
	if l2.FencingToken <= l1.FencingToken {
		t.Fatalf("fencing token %d after %d", l2.FencingToken, l1.FencingToken)
	}
	ok(t, l2.Release())

	var token uint64
	ok(t, db.WithLock("job", 10*time.Second, 0, func(l *Lock) error {
		token = l.FencingToken
		_, err := db.Lock("job", time.Second, 0)
		if !errors.Is(err, ErrLockNotAcquired) {
			t.Errorf("lock inside WithLock: %v", err)
		}
		return nil
	}))
	if token <= l2.FencingToken {
		t.Fatalf("WithLock token %d after %d", token, l2.FencingToken)
	}
	boom := errors.New("boom")
	if err := db.WithLock("job", 10*time.Second, 0, func(*Lock) error { return boom }); err != boom {
		t.Fatalf("WithLock returned %v, want boom", err)
	}
	// Released after the failure too.
	l3 := must(db.Lock("job", 10*time.Second, 0))(t)
	defer l3.Close()
	ok(t, l3.Release())
}

func testSequences(t *testing.T, db *Database) {
	seq := must(db.Sequence("orders", 100, 5))(t)
	defer seq.Close()
	if _, exists, err := seq.Current(); err != nil || exists {
		t.Fatalf("current before next: exists=%v err=%v", exists, err)
	}
	ok(t, db.ResetStats())
	if v := must(seq.Next())(t); v != 100 {
		t.Fatalf("next = %d, want 100", v)
	}
	expectRequests(t, db, Stats{Get: 1, Put: 1})
	if v := must(seq.Next())(t); v != 105 {
		t.Fatalf("next = %d, want 105", v)
	}
	if v, exists, err := seq.Current(); err != nil || !exists || v != 110 {
		t.Fatalf("current = %d %v %v, want 110", v, exists, err)
	}
	ok(t, seq.Reset(1))
	if v := must(seq.Next())(t); v != 1 {
		t.Fatalf("next after reset = %d, want 1", v)
	}

	// Goroutines sharing one handle never see the same value.
	counter := must(db.Sequence("goroutines", 1, 1))(t)
	defer counter.Close()
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				v, err := counter.Next()
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[v] {
					t.Errorf("duplicate %d", v)
				}
				seen[v] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != 32 {
		t.Fatalf("%d distinct values, want 32", len(seen))
	}
}

func wait(t *testing.T, ch <-chan AsyncResult) AsyncResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("callback did not arrive within 30 s")
		return AsyncResult{}
	}
}

func testAsync(t *testing.T, db *Database, users *Resource) {
	r := wait(t, users.InsertAsync(Record{"id": "async", "name": "Async"}))
	if r.Err != nil || r.JSON != `{"id":"async","name":"Async"}` {
		t.Fatalf("InsertAsync: %+v", r)
	}
	r = wait(t, users.GetAsync("async"))
	if r.Err != nil || r.JSON == "" {
		t.Fatalf("GetAsync: %+v", r)
	}
	r = wait(t, users.GetAsync("missing"))
	expectErr(t, r.Err, ErrNotFound)
	r = wait(t, users.InsertAsync(Record{"email": "no-name@example.com"}))
	expectIssue(t, r.Err, "name", "required")
	r = wait(t, users.CountAsync())
	if r.Err != nil || r.JSON != "2" {
		t.Fatalf("CountAsync: %+v", r)
	}
	seq := must(db.Sequence("async", 7, 1))(t)
	defer seq.Close()
	r = wait(t, seq.NextAsync())
	if r.Err != nil || r.JSON != "7" {
		t.Fatalf("NextAsync: %+v", r)
	}
	// An invalid id fails in the engine (through the callback), a non-UTF-8 one at the call:
	// both arrive on the channel.
	r = wait(t, users.GetAsync("a/b"))
	expectErr(t, r.Err, ErrInvalidArgument)
	r = wait(t, users.GetAsync("\xff"))
	expectErr(t, r.Err, ErrInvalidArgument)
	ok(t, users.Delete("async"))
}

func testDataModel(t *testing.T, db *Database) {
	_, err := db.CreateResourceWith("bad", ResourceOptions{Attributes: map[string]any{}, Behavior: "nope"})
	expectErr(t, err, ErrValidation)

	off := false
	people := must(db.CreateResourceWith("people", ResourceOptions{
		Attributes: map[string]any{
			"name": "string|min:2", "country": "string", "age": "number|integer:true",
			"address": map[string]any{"city": "string|optional"},
		},
		Partitions: map[string]any{"byCountry": map[string]any{"fields": map[string]any{"country": "string"}}},
		Paranoid:   &off,
	}))(t)
	defer people.Close()

	items := must(people.InsertMany([]Record{
		{"id": "p1", "name": "Ana", "country": "PT", "age": 31, "address": map[string]any{"city": "Porto"}},
		{"id": "p2", "name": "Bruno", "country": "PT", "age": 25},
		{"id": "p3", "name": "Carla", "country": "BR", "age": 40},
		{"id": "p4", "name": "Dan", "country": "US", "age": 19},
		{"id": "bad", "name": "X", "country": "US", "age": 1.5},
	}))(t)
	if len(items) != 5 || items[4].Error == nil || items[4].Error.Code != "VALIDATION" || items[0].Error != nil {
		t.Fatalf("InsertMany: %+v", items)
	}
	// Native JSON types come back.
	if r := items[0].Record; r["age"] != float64(31) || r["address"].(map[string]any)["city"] != "Porto" {
		t.Fatalf("inserted %v", r)
	}

	// Validation details name the fields.
	_, err = people.Insert(Record{"name": "Z", "country": "PT", "age": "old"})
	expectIssue(t, err, "name", "min")
	expectIssue(t, err, "age", "")
	_, err = people.Patch("p1", Record{"age": 1.5})
	expectIssue(t, err, "age", "integer")

	// Queries, through the partition when equalities fix its fields.
	expectIDs(t, must(people.Query(map[string]any{"age": map[string]any{"$gte": 25}}))(t), "p1", "p2", "p3")
	ok(t, db.ResetStats())
	expectIDs(t, must(people.Query(map[string]any{"country": "PT", "age": map[string]any{"$lt": 30}}))(t), "p2")
	expectRequests(t, db, Stats{Get: 2, List: 1})
	expectIDs(t, must(people.Query(map[string]any{"address.city": map[string]any{"$in": []string{"Porto"}}}))(t), "p1")
	_, err = people.Query(map[string]any{"age": map[string]any{"$like": 1}})
	expectErr(t, err, ErrInvalidArgument)

	// Partitions.
	if n := must(people.CountPartition("byCountry", map[string]any{"country": "PT"}))(t); n != 2 {
		t.Fatalf("PT count = %d", n)
	}
	expectIDs(t, must(people.ListPartition("byCountry", map[string]any{"country": "BR"}))(t), "p3")
	_, err = people.CountPartition("nope", nil)
	expectErr(t, err, ErrNotFound)
	if w, d, err := people.Reindex(""); err != nil || w != 0 || d != 0 {
		t.Fatalf("Reindex: %d %d %v", w, d, err)
	}

	// Pages.
	var seen []Record
	cursor, pages := "", 0
	for {
		p := must(people.Page(3, cursor))(t)
		pages++
		seen = append(seen, p.Items...)
		if p.Cursor == "" || pages > 5 {
			break
		}
		cursor = p.Cursor
	}
	expectIDs(t, seen, "p1", "p2", "p3", "p4")
	_, err = people.Page(0, "")
	expectErr(t, err, ErrInvalidArgument)

	// Replace, upsert, get_many, delete_many, delete_all.
	rep := must(people.Replace("p4", Record{"name": "Dana", "country": "US", "age": 20}))(t)
	if rep["name"] != "Dana" {
		t.Fatalf("Replace: %v", rep)
	}
	up := must(people.Upsert(Record{"id": "p4", "age": 21}))(t)
	if up["name"] != "Dana" || up["age"] != float64(21) {
		t.Fatalf("Upsert: %v", up)
	}
	found, missing := must2(people.GetMany([]string{"p4", "zz"}))(t)
	if len(found) != 1 || found[0]["id"] != "p4" || !reflect.DeepEqual(missing, []string{"zz"}) {
		t.Fatalf("GetMany: %v %v", found, missing)
	}
	del := must(people.DeleteMany([]string{"p4", "zz"}))(t)
	if len(del) != 2 || del[0].Error != nil || del[1].Error == nil || del[1].Error.Code != "NOT_FOUND" {
		t.Fatalf("DeleteMany: %+v", del)
	}
	if n := must(people.DeleteAll())(t); n != 3 {
		t.Fatalf("DeleteAll = %d, want 3", n)
	}
	// Paranoid resources (the default) refuse DeleteAll.
	kept := must(db.CreateResourceWith("kept", ResourceOptions{Attributes: map[string]any{"name": "string"}}))(t)
	defer kept.Close()
	_, err = kept.DeleteAll()
	expectErr(t, err, ErrInvalidArgument)
}

func must2[A, B any](a A, b B, err error) func(*testing.T) (A, B) {
	return func(t *testing.T) (A, B) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

func testEtags(t *testing.T, users *Resource) {
	must(users.Insert(Record{"id": "v", "name": "Versioned"}))(t)
	_, etag := must2(users.GetWithEtag("v"))(t)
	if etag == "" {
		t.Fatal("no etag")
	}
	must(users.UpdateIf("v", Record{"email": "v1@example.com"}, etag))(t)
	_, err := users.UpdateIf("v", Record{"email": "stale@example.com"}, etag)
	expectErr(t, err, ErrPreconditionFailed)
	if got := must(users.Get("v"))(t); got["email"] != "v1@example.com" {
		t.Fatalf("after a stale UpdateIf: %v", got)
	}
	ok(t, users.Delete("v"))
}

func testSecrets(t *testing.T, url string) {
	db := must(ConnectWith(url, ConnectOptions{Passphrase: "go passphrase"}))(t)
	defer db.Close()
	vault := must(db.CreateResourceWith("vault", ResourceOptions{
		Attributes: map[string]any{"owner": "string", "pin": "secret"},
	}))(t)
	defer vault.Close()
	must(vault.Insert(Record{"id": "s1", "owner": "Ada", "pin": "1234"}))(t)
	if got := must(vault.Get("s1"))(t); got["pin"] != "1234" {
		t.Fatalf("read back %v", got)
	}
	other := must(Connect(url))(t)
	defer other.Close()
	r := must(other.Resource("vault"))(t)
	defer r.Close()
	if got := must(r.Get("s1"))(t); got["pin"] == "1234" || got["owner"] != "Ada" {
		t.Fatalf("read with the default passphrase: %v", got)
	}
}

func testSequenceBatch(t *testing.T, db *Database) {
	_, err := db.SequenceWith("go-b", 1, 0, 10)
	expectErr(t, err, ErrInvalidArgument)
	seq := must(db.SequenceWith("go-batched", 1, 1, 10))(t)
	defer seq.Close()
	ok(t, db.ResetStats())
	for want := int64(1); want <= 10; want++ {
		if v := must(seq.Next())(t); v != want {
			t.Fatalf("next = %d, want %d", v, want)
		}
	}
	expectRequests(t, db, Stats{Get: 1, Put: 1})
	other := must(db.SequenceWith("go-batched", 1, 1, 10))(t)
	defer other.Close()
	if v := must(other.Next())(t); v != 11 {
		t.Fatalf("second handle's first value = %d, want 11", v)
	}
	names := must(db.ListSequences())(t)
	if !slices.Contains(names, "go-batched") {
		t.Fatalf("sequences %v", names)
	}
	ok(t, seq.Delete())
	if names := must(db.ListSequences())(t); slices.Contains(names, "go-batched") {
		t.Fatalf("deleted sequence still listed: %v", names)
	}
	if v := must(seq.Next())(t); v != 1 {
		t.Fatalf("next after delete = %d, want 1", v)
	}
}

func testState(t *testing.T, db *Database) {
	_, err := db.State("a/b")
	expectErr(t, err, ErrInvalidArgument)
	st := must(db.State("go-state"))(t)
	defer st.Close()
	if e := must(st.Get("cfg"))(t); e != nil {
		t.Fatalf("absent key read %+v", e)
	}
	v1 := must(st.Set("cfg", map[string]any{"mode": "a"}, 0))(t)
	e := must(st.Get("cfg"))(t)
	if e == nil || e.Version != v1 || e.ExpiresAt != nil || e.Value.(map[string]any)["mode"] != "a" {
		t.Fatalf("get = %+v, want version %s", e, v1)
	}
	v2 := must(st.Set("cfg", map[string]any{"mode": "b"}, 0))(t)

	// A stale version does not swap, and shows what is there.
	r := must(st.CompareAndSwap("cfg", &v1, "stale"))(t)
	if r.Swapped || r.CurrentVersion == nil || *r.CurrentVersion != v2 ||
		r.CurrentValue.(map[string]any)["mode"] != "b" {
		t.Fatalf("stale CAS = %+v", r)
	}
	r = must(st.CompareAndSwap("cfg", &v2, "fresh"))(t)
	if !r.Swapped || r.CurrentValue != "fresh" || r.CurrentVersion == nil || *r.CurrentVersion == v2 {
		t.Fatalf("CAS = %+v", r)
	}
	if r := must(st.CompareAndSwap("cfg", nil, 1))(t); r.Swapped {
		t.Fatalf("CAS expecting absence swapped: %+v", r)
	}
	if r := must(st.CompareAndSwap("new", nil, 1))(t); !r.Swapped {
		t.Fatalf("CAS on an absent key: %+v", r)
	}
	ok(t, st.Delete("new"))
	if e := must(st.Get("new"))(t); e != nil {
		t.Fatalf("deleted key read %+v", e)
	}

	// Concurrent increments all count.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				if _, err := st.Increment("hits", 1); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := must(st.Counter("hits"))(t); n != 20 {
		t.Fatalf("counter = %d, want 20", n)
	}
	_, err = st.Increment("cfg", 1)
	expectErr(t, err, ErrValidation)

	v3 := must(st.Set("short", true, 300*time.Millisecond))(t)
	if e := must(st.Get("short"))(t); e == nil || e.Version != v3 || e.ExpiresAt == nil {
		t.Fatalf("ttl entry %+v", e)
	}
	time.Sleep(500 * time.Millisecond)
	if e := must(st.Get("short"))(t); e != nil {
		t.Fatalf("expired entry read %+v", e)
	}
}

type eventLog struct {
	mu     sync.Mutex
	events []CoordinatorEvent
}

func (l *eventLog) add(ev CoordinatorEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) count(typ string) (n int, lastEpoch uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events {
		if ev.Type == typ {
			n++
			lastEpoch = ev.Epoch
		}
	}
	return n, lastEpoch
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testCoordinator(t *testing.T, url string, db *Database) {
	_, err := db.Coordinator("go-coord", CoordinatorOptions{HeartbeatInterval: 200 * time.Millisecond, LeaseTimeout: 100 * time.Millisecond})
	expectErr(t, err, ErrInvalidArgument)
	db2 := must(Connect(url))(t)
	defer db2.Close()
	// A lease longer than the scaled default (600 ms): scheduling stalls on a loaded machine
	// must not make the leader step down. Stop releases it at once anyway.
	opts := CoordinatorOptions{HeartbeatInterval: 200 * time.Millisecond, LeaseTimeout: 2 * time.Second, WorkerTimeout: 3 * time.Second}
	a := must(db.Coordinator("go-coord", opts))(t)
	defer a.Close()
	b := must(db2.Coordinator("go-coord", opts))(t)
	defer b.Close()
	logs := map[*Coordinator]*eventLog{a: {}, b: {}}
	for c, l := range logs {
		ok(t, c.OnEvent(l.add))
	}
	ok(t, a.Start())
	ok(t, b.Start())

	eventually(t, 5*time.Second, "a leader", func() bool { return a.IsLeader() || b.IsLeader() })
	for i := 0; i < 10; i++ {
		if a.IsLeader() == b.IsLeader() {
			t.Fatalf("leaders: a=%v b=%v", a.IsLeader(), b.IsLeader())
		}
		time.Sleep(100 * time.Millisecond)
	}
	leader, follower := a, b
	if b.IsLeader() {
		leader, follower = b, a
	}
	epoch1, leading := leader.FencingToken()
	if !leading || epoch1 == 0 {
		t.Fatalf("leader's token %d %v", epoch1, leading)
	}
	id := must(leader.WorkerID())(t)
	eventually(t, 3*time.Second, "the follower sees the leader", func() bool {
		l, err := follower.Leader()
		return err == nil && l != nil && l.LeaderID == id && l.Epoch == epoch1
	})
	eventually(t, 3*time.Second, "becameLeader event", func() bool {
		n, e := logs[leader].count("becameLeader")
		return n == 1 && e == epoch1
	})

	ok(t, leader.Stop())
	if n, _ := logs[leader].count("lostLeadership"); n != 1 {
		t.Fatalf("%d lostLeadership events delivered by Stop", n)
	}
	eventually(t, 5*time.Second, "the other takes over", follower.IsLeader)
	epoch2, _ := follower.FencingToken()
	if epoch2 <= epoch1 {
		t.Fatalf("new epoch %d, old %d", epoch2, epoch1)
	}
	eventually(t, 3*time.Second, "becameLeader event of the new leader", func() bool {
		n, e := logs[follower].count("becameLeader")
		return n == 1 && e == epoch2
	})
	if leader.IsLeader() {
		t.Fatal("the stopped coordinator still leads")
	}
	ok(t, follower.Stop())
}

func testPluginAttributes(t *testing.T, url string, db *Database) {
	res := must(db.CreateResourceWith("pa", ResourceOptions{
		Attributes: map[string]any{"title": "string", "body": "string|optional"},
		Behavior:   "body-overflow",
	}))(t)
	defer res.Close()
	m := must(res.AddPluginAttribute("auditedBy", "string|optional", "audit"))(t)
	if m["auditedBy"] != "pkdv" {
		t.Fatalf("plugin map %v", m)
	}
	must(res.AddPluginAttribute("score", map[string]any{"type": "number", "optional": true}, "ranker"))(t)
	if m := must(res.PluginMap())(t); m["score"] != "p4sy" || len(m) != 2 {
		t.Fatalf("plugin map %v", m)
	}
	big := strings.Repeat("x", 2500)
	must(res.Insert(Record{"id": "big", "title": "T", "body": big, "auditedBy": "bob", "score": 8}))(t)

	other := must(Connect(url))(t)
	defer other.Close()
	again := must(other.Resource("pa"))(t)
	defer again.Close()
	got := must(again.Get("big"))(t)
	if got["auditedBy"] != "bob" || got["score"] != float64(8) || got["body"] != big {
		t.Fatalf("read back %v", got["auditedBy"])
	}
	_, err := res.AddPluginAttribute("title", "string", "p")
	expectErr(t, err, ErrConflict)
	_, err = res.AddPluginAttribute("x", 42, "p")
	expectErr(t, err, ErrInvalidArgument)
}
