package s3db

// Runs against memory://, file://<temp dir> and, when S3DB_TEST_S3_URL is set,
// <S3DB_TEST_S3_URL>/<random prefix>. Build libs3db first: cargo build -p s3db-c.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sort"
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
				"name": "string|required", "email": "string",
			}))(t)
			defer users.Close()

			t.Run("records", func(t *testing.T) { testRecords(t, url, db, users) })
			t.Run("errors", func(t *testing.T) { testErrors(t, db, users) })
			t.Run("locks", func(t *testing.T) { testLocks(t, db) })
			t.Run("sequences", func(t *testing.T) { testSequences(t, db) })
			t.Run("async", func(t *testing.T) { testAsync(t, db, users) })
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
	ok(t, users.Delete(grace["id"].(string)))
	if n := must(users.Count())(t); n != 1 {
		t.Fatalf("count after delete = %d, want 1", n)
	}
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
