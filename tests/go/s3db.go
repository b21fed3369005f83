// Package s3db calls libs3db (include/s3db.h) through cgo: a thin Go wrapper over the C ABI.
//
// It links the debug build in target/x86_64-unknown-linux-gnu/debug (build it with
// `cargo build -p s3db-c`); with `-tags s3db_release` it links the release build instead.
// Records are map[string]any, encoded to and from the JSON text the C ABI takes.
//
// Every handle (Database, Resource, Lock, Sequence) must be closed; all are safe for
// concurrent use by several goroutines.
package s3db

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#include <stdint.h>
#include <stdlib.h>
#include "s3db.h"

// Implemented in Go (callbacks.go).
extern void s3dbGoJSONCallback(uintptr_t handle, int status, char *result);
extern int s3dbGoLockBody(s3db_lock_t *lock, uintptr_t handle);
extern void s3dbGoEvent(uintptr_t handle, char *event_json);

// user_data carries a runtime/cgo.Handle; these convert it back on the C side.
static void json_trampoline(void *user_data, int status, const char *result) {
	s3dbGoJSONCallback((uintptr_t)user_data, status, (char *)result);
}

static int lock_body_trampoline(const s3db_lock_t *lock, void *user_data) {
	return s3dbGoLockBody((s3db_lock_t *)lock, (uintptr_t)user_data);
}

static void *handle_ptr(uintptr_t h) { return (void *)h; }

static s3db_callback json_callback(void) { return json_trampoline; }

static void event_trampoline(void *user_data, const char *event_json) {
	s3dbGoEvent((uintptr_t)user_data, (char *)event_json);
}

static int go_on_event(const s3db_coordinator_t *coord, uintptr_t h) {
	return s3db_coordinator_on_event(coord, event_trampoline, handle_ptr(h));
}

static int go_with_lock(const s3db_database_t *db, const char *name, uint64_t ttl_ms,
                        uint64_t timeout_ms, uintptr_t h) {
	return s3db_with_lock(db, name, ttl_ms, timeout_ms, lock_body_trampoline, handle_ptr(h));
}
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// Status codes, the same in every binding (docs/bindings.md).
const (
	StatusOK                 = int(C.S3DB_OK)
	StatusNotFound           = int(C.S3DB_ERR_NOT_FOUND)
	StatusAlreadyExists      = int(C.S3DB_ERR_ALREADY_EXISTS)
	StatusPreconditionFailed = int(C.S3DB_ERR_PRECONDITION_FAILED)
	StatusConflict           = int(C.S3DB_ERR_CONFLICT)
	StatusValidation         = int(C.S3DB_ERR_VALIDATION)
	StatusInvalidArgument    = int(C.S3DB_ERR_INVALID_ARGUMENT)
	StatusLockNotAcquired    = int(C.S3DB_ERR_LOCK_NOT_ACQUIRED)
	StatusLockLost           = int(C.S3DB_ERR_LOCK_LOST)
	StatusCorrupt            = int(C.S3DB_ERR_CORRUPT)
	StatusStorage            = int(C.S3DB_ERR_STORAGE)
	StatusOutcomeUnknown     = 11 // S3DB_ERR_OUTCOME_UNKNOWN (go vet cannot resolve this macro of the header)
	StatusInternal           = int(C.S3DB_ERR_INTERNAL)
)

// Error is a failed call: its status, the stable code ("NOT_FOUND", …), the message and, for
// a validation error, one Issue per failing field.
type Error struct {
	Status  int
	Code    string
	Message string
	Details []Issue
}

// Issue is one problem a validation error found (s3db_last_error_details).
type Issue struct {
	Field    string `json:"field"`
	Rule     string `json:"rule"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes errors.Is(err, s3db.ErrNotFound) and friends match on the status.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Status == e.Status
}

func kind(status int) *Error {
	return &Error{Status: status, Code: C.GoString(C.s3db_status_name(C.int(status)))}
}

// Targets for errors.Is.
var (
	ErrNotFound           = kind(StatusNotFound)
	ErrAlreadyExists      = kind(StatusAlreadyExists)
	ErrPreconditionFailed = kind(StatusPreconditionFailed)
	ErrConflict           = kind(StatusConflict)
	ErrValidation         = kind(StatusValidation)
	ErrInvalidArgument    = kind(StatusInvalidArgument)
	ErrLockNotAcquired    = kind(StatusLockNotAcquired)
	ErrLockLost           = kind(StatusLockLost)
	ErrCorrupt            = kind(StatusCorrupt)
	ErrStorage            = kind(StatusStorage)
	ErrOutcomeUnknown     = kind(StatusOutcomeUnknown)
	ErrInternal           = kind(StatusInternal)
)

func statusError(status C.int, message string) error {
	if status == C.S3DB_OK {
		return nil
	}
	e := kind(int(status))
	e.Message = message
	return e
}

// call runs one C call and reads the per-thread error message on the same OS thread.
func call(f func() C.int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	status := f()
	if status == C.S3DB_OK {
		return nil
	}
	err := statusError(status, C.GoString(C.s3db_last_error()))
	if details := C.s3db_last_error_details(); details != nil {
		// Details that do not parse as issues are left out rather than failing the call.
		_ = json.Unmarshal([]byte(C.GoString(details)), &err.(*Error).Details)
	}
	return err
}

type cstr struct{ p *C.char }

func newCStr(s string) cstr { return cstr{C.CString(s)} }
func (c cstr) free()        { C.free(unsafe.Pointer(c.p)) }

// takeString copies a string returned by libs3db and frees it.
func takeString(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.s3db_string_free(p)
	return C.GoString(p)
}

func millis(d time.Duration) C.uint64_t {
	if d < 0 {
		return 0
	}
	return C.uint64_t(d / time.Millisecond)
}

// Version is libs3db's version.
func Version() string { return C.GoString(C.s3db_version()) }

// ---------------------------------------------------------------------------------------------
// Database

// Database is a connected store.
type Database struct{ p *C.s3db_database_t }

// Connect opens memory://, file://, s3:// or http(s):// connection strings.
func Connect(url string) (*Database, error) {
	u := newCStr(url)
	defer u.free()
	db := &Database{}
	if err := call(func() C.int { return C.s3db_connect(u.p, &db.p) }); err != nil {
		return nil, err
	}
	return db, nil
}

// ConnectOptions are the options of ConnectWith.
type ConnectOptions struct {
	// Passphrase of secret fields (s3db.js security.passphrase); "" keeps the default.
	Passphrase string `json:"passphrase,omitempty"`
}

// ConnectWith is Connect with options (s3db_connect_with).
func ConnectWith(url string, options ConnectOptions) (*Database, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	u, o := newCStr(url), newCStr(string(opts))
	defer u.free()
	defer o.free()
	db := &Database{}
	if err := call(func() C.int { return C.s3db_connect_with(u.p, o.p, &db.p) }); err != nil {
		return nil, err
	}
	return db, nil
}

// Close frees the handle (resources, locks and sequences taken from it stay usable).
func (db *Database) Close() {
	C.s3db_database_free(db.p)
	db.p = nil
}

// CreateResource defines (or redefines) a resource from attribute rules such as
// {"name": "string|required"}.
func (db *Database) CreateResource(name string, attributes map[string]string) (*Resource, error) {
	attrs, err := json.Marshal(attributes)
	if err != nil {
		return nil, err
	}
	n, a := newCStr(name), newCStr(string(attrs))
	defer n.free()
	defer a.free()
	r := &Resource{}
	if err := call(func() C.int { return C.s3db_create_resource(db.p, n.p, a.p, &r.p) }); err != nil {
		return nil, err
	}
	return r, nil
}

// ResourceOptions are s3db.js createResource options (docs/bindings.md, "Data model").
type ResourceOptions struct {
	// Attribute rules: "string|min:3", "number|optional", "secret", nested maps, …
	Attributes map[string]any `json:"attributes"`
	// user-managed (default), enforce-limits, truncate-data, body-overflow or body-only.
	Behavior   string `json:"behavior,omitempty"`
	Timestamps bool   `json:"timestamps,omitempty"`
	// {name: {"fields": {path: rule}}} or a list of field names.
	Partitions any `json:"partitions,omitempty"`
	// nil keeps the default (true: DeleteAll is refused).
	Paranoid   *bool  `json:"paranoid,omitempty"`
	IDSize     int    `json:"idSize,omitempty"`
	Passphrase string `json:"passphrase,omitempty"`
}

// CreateResourceWith defines (or redefines) a resource from s3db.js options.
func (db *Database) CreateResourceWith(name string, options ResourceOptions) (*Resource, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	n, o := newCStr(name), newCStr(string(opts))
	defer n.free()
	defer o.free()
	r := &Resource{}
	if err := call(func() C.int { return C.s3db_create_resource_with(db.p, n.p, o.p, &r.p) }); err != nil {
		return nil, err
	}
	return r, nil
}

// Resource opens a resource defined earlier.
func (db *Database) Resource(name string) (*Resource, error) {
	n := newCStr(name)
	defer n.free()
	r := &Resource{}
	if err := call(func() C.int { return C.s3db_resource(db.p, n.p, &r.p) }); err != nil {
		return nil, err
	}
	return r, nil
}

// ListResources returns the names in the catalog.
func (db *Database) ListResources() ([]string, error) {
	var names []string
	return names, db.jsonOut(&names, func(out **C.char) C.int { return C.s3db_list_resources(db.p, out) })
}

func (db *Database) jsonOut(v any, f func(**C.char) C.int) error {
	var out *C.char
	if err := call(func() C.int { return f(&out) }); err != nil {
		return err
	}
	return json.Unmarshal([]byte(takeString(out)), v)
}

// Stats counts the requests sent to the store, by kind.
type Stats struct {
	Get, Head, Put, Copy, Delete, List uint64
}

// Total is the number of requests of every kind.
func (s Stats) Total() uint64 { return s.Get + s.Head + s.Put + s.Copy + s.Delete + s.List }

func (s Stats) String() string {
	return fmt.Sprintf("%d GET, %d HEAD, %d PUT, %d COPY, %d DELETE, %d LIST",
		s.Get, s.Head, s.Put, s.Copy, s.Delete, s.List)
}

// Stats returns the request counters.
func (db *Database) Stats() (Stats, error) {
	var s C.s3db_stats_t
	if err := call(func() C.int { return C.s3db_request_stats(db.p, &s) }); err != nil {
		return Stats{}, err
	}
	return Stats{uint64(s.get), uint64(s.head), uint64(s.put), uint64(s.copy), uint64(s.delete_), uint64(s.list)}, nil
}

// ResetStats sets the request counters to zero.
func (db *Database) ResetStats() error {
	return call(func() C.int { return C.s3db_reset_stats(db.p) })
}

// Lock acquires a named lock held for ttl, waiting up to timeout for a held one
// (ErrLockNotAcquired after that).
func (db *Database) Lock(name string, ttl, timeout time.Duration) (*Lock, error) {
	n := newCStr(name)
	defer n.free()
	var p *C.s3db_lock_t
	if err := call(func() C.int { return C.s3db_lock(db.p, n.p, millis(ttl), millis(timeout), &p) }); err != nil {
		return nil, err
	}
	l, err := newLock(p, true)
	if err != nil {
		C.s3db_lock_free(p)
		return nil, err
	}
	return l, nil
}

type withLockState struct {
	fn  func(*Lock) error
	err error
}

// WithLock runs fn holding the lock and always releases it. fn's error is returned as is.
func (db *Database) WithLock(name string, ttl, timeout time.Duration, fn func(*Lock) error) error {
	n := newCStr(name)
	defer n.free()
	st := &withLockState{fn: fn}
	h := cgo.NewHandle(st)
	defer h.Delete()
	err := call(func() C.int {
		return C.go_with_lock(db.p, n.p, millis(ttl), millis(timeout), C.uintptr_t(h))
	})
	if st.err != nil {
		return st.err
	}
	return err
}

// Sequence returns a handle on a named counter starting at start, stepping by increment.
func (db *Database) Sequence(name string, start, increment int64) (*Sequence, error) {
	n := newCStr(name)
	defer n.free()
	s := &Sequence{}
	if err := call(func() C.int {
		return C.s3db_sequence(db.p, n.p, C.int64_t(start), C.int64_t(increment), &s.p)
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// ---------------------------------------------------------------------------------------------
// Resource

// Resource is a collection of records.
type Resource struct{ p *C.s3db_resource_t }

// Record is one record, including its "id".
type Record = map[string]any

// Close frees the handle.
func (r *Resource) Close() {
	C.s3db_resource_free(r.p)
	r.p = nil
}

func (r *Resource) record(f func(**C.char) C.int) (Record, error) {
	var out *C.char
	if err := call(func() C.int { return f(&out) }); err != nil {
		return nil, err
	}
	var rec Record
	return rec, json.Unmarshal([]byte(takeString(out)), &rec)
}

// Insert stores a new record ("id" optional) and returns it with its id.
func (r *Resource) Insert(record Record) (Record, error) {
	body, err := json.Marshal(record)
	if err != nil {
		return nil, err
	}
	j := newCStr(string(body))
	defer j.free()
	return r.record(func(out **C.char) C.int { return C.s3db_insert(r.p, j.p, out) })
}

// Get reads a record (ErrNotFound if missing).
func (r *Resource) Get(id string) (Record, error) {
	i := newCStr(id)
	defer i.free()
	return r.record(func(out **C.char) C.int { return C.s3db_get(r.p, i.p, out) })
}

// Exists tells whether a record exists.
func (r *Resource) Exists(id string) (bool, error) {
	i := newCStr(id)
	defer i.free()
	var ok C.bool
	err := call(func() C.int { return C.s3db_exists(r.p, i.p, &ok) })
	return bool(ok), err
}

// Update merges changes into a record (nil values remove fields) and returns the result.
func (r *Resource) Update(id string, changes Record) (Record, error) {
	body, err := json.Marshal(changes)
	if err != nil {
		return nil, err
	}
	i, j := newCStr(id), newCStr(string(body))
	defer i.free()
	defer j.free()
	return r.record(func(out **C.char) C.int { return C.s3db_update(r.p, i.p, j.p, out) })
}

// Delete removes a record (ErrNotFound if there is none).
func (r *Resource) Delete(id string) error {
	i := newCStr(id)
	defer i.free()
	return call(func() C.int { return C.s3db_delete(r.p, i.p) })
}

// ListIDs returns every id.
func (r *Resource) ListIDs() ([]string, error) {
	var ids []string
	return ids, jsonCall(&ids, func(out **C.char) C.int { return C.s3db_list_ids(r.p, out) })
}

// Count returns the number of records.
func (r *Resource) Count() (uint64, error) {
	var n C.uint64_t
	err := call(func() C.int { return C.s3db_count(r.p, &n) })
	return uint64(n), err
}

// jsonArg encodes v for a C call that takes JSON text.
func jsonArg(v any) (cstr, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return cstr{}, err
	}
	return newCStr(string(body)), nil
}

// jsonCall runs a C call that writes JSON text to its last argument and decodes it into v.
func jsonCall(v any, f func(**C.char) C.int) error {
	var out *C.char
	if err := call(func() C.int { return f(&out) }); err != nil {
		return err
	}
	return json.Unmarshal([]byte(takeString(out)), v)
}

// List returns every record.
func (r *Resource) List() ([]Record, error) {
	var records []Record
	return records, jsonCall(&records, func(out **C.char) C.int { return C.s3db_list(r.p, out) })
}

// BatchItem is the outcome of one item of InsertMany or DeleteMany.
type BatchItem struct {
	Index  int    `json:"index"`
	ID     string `json:"id"`
	Record Record `json:"record,omitempty"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// InsertMany inserts each record; one failure does not stop the others.
func (r *Resource) InsertMany(records []Record) ([]BatchItem, error) {
	j, err := jsonArg(records)
	if err != nil {
		return nil, err
	}
	defer j.free()
	var items []BatchItem
	return items, jsonCall(&items, func(out **C.char) C.int { return C.s3db_insert_many(r.p, j.p, out) })
}

// GetMany reads several records: those found, in the order asked, and the missing ids.
func (r *Resource) GetMany(ids []string) (found []Record, missing []string, err error) {
	j, err := jsonArg(ids)
	if err != nil {
		return nil, nil, err
	}
	defer j.free()
	var v struct {
		Found   []Record `json:"found"`
		Missing []string `json:"missing"`
	}
	err = jsonCall(&v, func(out **C.char) C.int { return C.s3db_get_many(r.p, j.p, out) })
	return v.Found, v.Missing, err
}

// idAndJSON runs a C call taking (id, json, out) with a record argument.
func (r *Resource) idAndJSON(id string, data Record, f func(id, json *C.char, out **C.char) C.int) (Record, error) {
	j, err := jsonArg(data)
	if err != nil {
		return nil, err
	}
	i := newCStr(id)
	defer i.free()
	defer j.free()
	return r.record(func(out **C.char) C.int { return f(i.p, j.p, out) })
}

// Replace replaces the whole record (it must exist).
func (r *Resource) Replace(id string, data Record) (Record, error) {
	return r.idAndJSON(id, data, func(i, j *C.char, out **C.char) C.int { return C.s3db_replace(r.p, i, j, out) })
}

// Patch merges changes like Update (dotted keys change one nested field).
func (r *Resource) Patch(id string, changes Record) (Record, error) {
	return r.idAndJSON(id, changes, func(i, j *C.char, out **C.char) C.int { return C.s3db_patch(r.p, i, j, out) })
}

// Upsert inserts the record, or merges it into the existing one with its "id".
func (r *Resource) Upsert(data Record) (Record, error) {
	j, err := jsonArg(data)
	if err != nil {
		return nil, err
	}
	defer j.free()
	return r.record(func(out **C.char) C.int { return C.s3db_upsert(r.p, j.p, out) })
}

// GetWithEtag reads a record and its version tag, for UpdateIf.
func (r *Resource) GetWithEtag(id string) (Record, string, error) {
	i := newCStr(id)
	defer i.free()
	var v struct {
		Record Record `json:"record"`
		Etag   string `json:"etag"`
	}
	err := jsonCall(&v, func(out **C.char) C.int { return C.s3db_get_with_etag(r.p, i.p, out) })
	return v.Record, v.Etag, err
}

// UpdateIf is Update applied only if the record still has version tag etag
// (ErrPreconditionFailed otherwise).
func (r *Resource) UpdateIf(id string, changes Record, etag string) (Record, error) {
	e := newCStr(etag)
	defer e.free()
	return r.idAndJSON(id, changes, func(i, j *C.char, out **C.char) C.int {
		return C.s3db_update_if(r.p, i, j, e.p, out)
	})
}

// DeleteMany deletes each id; the items say which failed and why.
func (r *Resource) DeleteMany(ids []string) ([]BatchItem, error) {
	j, err := jsonArg(ids)
	if err != nil {
		return nil, err
	}
	defer j.free()
	var items []BatchItem
	return items, jsonCall(&items, func(out **C.char) C.int { return C.s3db_delete_many(r.p, j.p, out) })
}

// DeleteAll deletes every record and returns how many; refused (ErrInvalidArgument) for
// paranoid resources.
func (r *Resource) DeleteAll() (uint64, error) {
	var n C.uint64_t
	err := call(func() C.int { return C.s3db_delete_all(r.p, &n) })
	return uint64(n), err
}

// Page is one page of records; Cursor is "" on the last page.
type Page struct {
	Items  []Record `json:"items"`
	Cursor string   `json:"cursor"`
}

// Page reads up to size records (1 to 1000) after cursor ("" for the first page).
func (r *Resource) Page(size int, cursor string) (Page, error) {
	var c cstr
	if cursor != "" {
		c = newCStr(cursor)
		defer c.free()
	}
	var p Page
	err := jsonCall(&p, func(out **C.char) C.int { return C.s3db_page(r.p, C.size_t(size), c.p, out) })
	return p, err
}

// Query returns the records matching filter ({"age": {"$gte": 18}, "address.city": "Porto"};
// operators $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options $contains $not, and
// $and $or $nor; any other operator is an error).
func (r *Resource) Query(filter map[string]any) ([]Record, error) {
	f, err := jsonArg(filter)
	if err != nil {
		return nil, err
	}
	defer f.free()
	var records []Record
	return records, jsonCall(&records, func(out **C.char) C.int { return C.s3db_query(r.p, f.p, out) })
}

// partitionArgs converts a partition name and its field values for a C call.
func partitionArgs(partition string, values map[string]any) (cstr, cstr, error) {
	if values == nil {
		values = map[string]any{}
	}
	v, err := jsonArg(values)
	if err != nil {
		return cstr{}, cstr{}, err
	}
	return newCStr(partition), v, nil
}

// ListPartition returns the records of a partition with these field values.
func (r *Resource) ListPartition(partition string, values map[string]any) ([]Record, error) {
	p, v, err := partitionArgs(partition, values)
	if err != nil {
		return nil, err
	}
	defer p.free()
	defer v.free()
	var records []Record
	return records, jsonCall(&records, func(out **C.char) C.int { return C.s3db_list_partition(r.p, p.p, v.p, out) })
}

// CountPartition counts the records of a partition with these field values.
func (r *Resource) CountPartition(partition string, values map[string]any) (uint64, error) {
	p, v, err := partitionArgs(partition, values)
	if err != nil {
		return 0, err
	}
	defer p.free()
	defer v.free()
	var n C.uint64_t
	err = call(func() C.int { return C.s3db_count_partition(r.p, p.p, v.p, &n) })
	return uint64(n), err
}

// Reindex rebuilds the references of a partition ("" for all) and returns how many were
// written and deleted.
func (r *Resource) Reindex(partition string) (written, deleted uint64, err error) {
	var p cstr
	if partition != "" {
		p = newCStr(partition)
		defer p.free()
	}
	var v struct{ Written, Deleted uint64 }
	err = jsonCall(&v, func(out **C.char) C.int { return C.s3db_reindex(r.p, p.p, out) })
	return v.Written, v.Deleted, err
}

// AsyncResult is what an *Async call delivers: the JSON text of the result, or an error.
type AsyncResult struct {
	JSON string
	Err  error
}

// async starts an _async C call whose callback sends on the returned channel.
func async(start func(cb C.s3db_callback, userData unsafe.Pointer) C.int) <-chan AsyncResult {
	ch := make(chan AsyncResult, 1)
	h := cgo.NewHandle(ch)
	if err := call(func() C.int { return start(C.json_callback(), C.handle_ptr(C.uintptr_t(h))) }); err != nil {
		h.Delete()
		ch <- AsyncResult{Err: err}
	}
	return ch
}

// InsertAsync is Insert through s3db_insert_async: the result arrives on the channel.
func (r *Resource) InsertAsync(record Record) <-chan AsyncResult {
	body, err := json.Marshal(record)
	if err != nil {
		ch := make(chan AsyncResult, 1)
		ch <- AsyncResult{Err: err}
		return ch
	}
	j := newCStr(string(body))
	defer j.free() // the C call copies its arguments before returning
	return async(func(cb C.s3db_callback, ud unsafe.Pointer) C.int { return C.s3db_insert_async(r.p, j.p, cb, ud) })
}

// GetAsync is Get through s3db_get_async.
func (r *Resource) GetAsync(id string) <-chan AsyncResult {
	i := newCStr(id)
	defer i.free()
	return async(func(cb C.s3db_callback, ud unsafe.Pointer) C.int { return C.s3db_get_async(r.p, i.p, cb, ud) })
}

// CountAsync is Count through s3db_count_async (the JSON is the number).
func (r *Resource) CountAsync() <-chan AsyncResult {
	return async(func(cb C.s3db_callback, ud unsafe.Pointer) C.int { return C.s3db_count_async(r.p, cb, ud) })
}

// ---------------------------------------------------------------------------------------------
// Lock

// Lock is a held lock.
type Lock struct {
	p            *C.s3db_lock_t
	owned        bool
	Name         string
	FencingToken uint64
	HolderID     string
}

func newLock(p *C.s3db_lock_t, owned bool) (*Lock, error) {
	l := &Lock{p: p, owned: owned}
	var name, holder *C.char
	var token C.uint64_t
	err := call(func() C.int {
		if st := C.s3db_lock_name(p, &name); st != C.S3DB_OK {
			return st
		}
		if st := C.s3db_lock_holder_id(p, &holder); st != C.S3DB_OK {
			return st
		}
		return C.s3db_lock_fencing_token(p, &token)
	})
	l.Name, l.HolderID, l.FencingToken = takeString(name), takeString(holder), uint64(token)
	return l, err
}

// Extend pushes the expiry to now + ttl (ErrLockLost if the lock is no longer held).
func (l *Lock) Extend(ttl time.Duration) error {
	return call(func() C.int { return C.s3db_lock_extend(l.p, millis(ttl)) })
}

// Release releases the lock; releasing twice is a no-op.
func (l *Lock) Release() error {
	return call(func() C.int { return C.s3db_lock_release(l.p) })
}

// Close frees the handle without releasing the lock (a no-op inside WithLock).
func (l *Lock) Close() {
	if l.owned {
		C.s3db_lock_free(l.p)
	}
	l.p = nil
}

// ---------------------------------------------------------------------------------------------
// Sequence

// Sequence is a named 64-bit counter.
type Sequence struct{ p *C.s3db_sequence_t }

// Close frees the handle.
func (s *Sequence) Close() {
	C.s3db_sequence_free(s.p)
	s.p = nil
}

// Next hands out the next value.
func (s *Sequence) Next() (int64, error) {
	var v C.int64_t
	err := call(func() C.int { return C.s3db_sequence_next(s.p, &v) })
	return int64(v), err
}

// NextAsync is Next through s3db_sequence_next_async.
func (s *Sequence) NextAsync() <-chan AsyncResult {
	return async(func(cb C.s3db_callback, ud unsafe.Pointer) C.int { return C.s3db_sequence_next_async(s.p, cb, ud) })
}

// Current is the value Next will return; ok is false before the first Next.
func (s *Sequence) Current() (value int64, ok bool, err error) {
	var v C.int64_t
	var exists C.bool
	err = call(func() C.int { return C.s3db_sequence_current(s.p, &v, &exists) })
	return int64(v), bool(exists), err
}

// Reset makes value the next value handed out.
func (s *Sequence) Reset(value int64) error {
	return call(func() C.int { return C.s3db_sequence_reset(s.p, C.int64_t(value)) })
}

// SequenceWith is Sequence with a batch size: more than 1 reserves batchSize values per
// compare-and-swap (one GET + one PUT per batch; the unused rest is a gap when the handle goes).
func (db *Database) SequenceWith(name string, start, increment int64, batchSize uint32) (*Sequence, error) {
	n := newCStr(name)
	defer n.free()
	s := &Sequence{}
	if err := call(func() C.int {
		return C.s3db_sequence_with(db.p, n.p, C.int64_t(start), C.int64_t(increment), C.uint32_t(batchSize), &s.p)
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// Delete deletes the stored counter; the next value starts again at start.
func (s *Sequence) Delete() error {
	return call(func() C.int { return C.s3db_sequence_delete(s.p) })
}

// ListSequences returns the names of the stored sequences.
func (db *Database) ListSequences() ([]string, error) {
	var names []string
	return names, jsonCall(&names, func(out **C.char) C.int { return C.s3db_list_sequences(db.p, out) })
}

// ---------------------------------------------------------------------------------------------
// State

// State is the distributed state of one namespace: JSON values with versions.
type State struct{ p *C.s3db_state_t }

// StateEntry is a live entry; ExpiresAt (ms since the epoch) is nil without a ttl.
type StateEntry struct {
	Value     any    `json:"value"`
	Version   string `json:"version"`
	ExpiresAt *int64 `json:"expiresAt"`
}

// CasResult is the outcome of CompareAndSwap: what is stored now (nil when absent).
type CasResult struct {
	Swapped        bool    `json:"swapped"`
	CurrentValue   any     `json:"currentValue"`
	CurrentVersion *string `json:"currentVersion"`
}

// State returns the state of a namespace.
func (db *Database) State(namespace string) (*State, error) {
	n := newCStr(namespace)
	defer n.free()
	s := &State{}
	if err := call(func() C.int { return C.s3db_state(db.p, n.p, &s.p) }); err != nil {
		return nil, err
	}
	return s, nil
}

// Close frees the handle.
func (s *State) Close() {
	C.s3db_state_free(s.p)
	s.p = nil
}

// Get returns the live entry, or nil when the key is absent or expired.
func (s *State) Get(key string) (*StateEntry, error) {
	k := newCStr(key)
	defer k.free()
	var e *StateEntry
	return e, jsonCall(&e, func(out **C.char) C.int { return C.s3db_state_get(s.p, k.p, out) })
}

// Set stores value (expiring after ttl unless 0) and returns its new version.
func (s *State) Set(key string, value any, ttl time.Duration) (string, error) {
	v, err := jsonArg(value)
	if err != nil {
		return "", err
	}
	defer v.free()
	k := newCStr(key)
	defer k.free()
	var version *C.char
	err = call(func() C.int { return C.s3db_state_set(s.p, k.p, v.p, millis(ttl), &version) })
	return takeString(version), err
}

// CompareAndSwap writes value only if the entry is at expectedVersion (nil: only if absent).
func (s *State) CompareAndSwap(key string, expectedVersion *string, value any) (CasResult, error) {
	v, err := jsonArg(value)
	if err != nil {
		return CasResult{}, err
	}
	defer v.free()
	k := newCStr(key)
	defer k.free()
	var e cstr
	if expectedVersion != nil {
		e = newCStr(*expectedVersion)
		defer e.free()
	}
	var r CasResult
	err = jsonCall(&r, func(out **C.char) C.int { return C.s3db_state_compare_and_swap(s.p, k.p, e.p, v.p, out) })
	return r, err
}

// Delete deletes the entry (an absent key is fine).
func (s *State) Delete(key string) error {
	k := newCStr(key)
	defer k.free()
	return call(func() C.int { return C.s3db_state_delete(s.p, k.p) })
}

// Increment adds by to the counter and returns the new value.
func (s *State) Increment(key string, by int64) (int64, error) {
	k := newCStr(key)
	defer k.free()
	var v C.int64_t
	err := call(func() C.int { return C.s3db_state_increment(s.p, k.p, C.int64_t(by), &v) })
	return int64(v), err
}

// Counter returns the counter's value (0 when absent).
func (s *State) Counter(key string) (int64, error) {
	k := newCStr(key)
	defer k.free()
	var v C.int64_t
	err := call(func() C.int { return C.s3db_state_counter(s.p, k.p, &v) })
	return int64(v), err
}

// ---------------------------------------------------------------------------------------------
// Coordinator

// CoordinatorOptions are the timings of a Coordinator; zero keeps the default (with only
// HeartbeatInterval set, the others scale with it).
type CoordinatorOptions struct {
	HeartbeatInterval, LeaseTimeout, WorkerTimeout, StartupJitter time.Duration
}

// CoordinatorEvent is one event: Type is leaderChanged, becameLeader, lostLeadership,
// circuitOpened, circuitClosed or lagged.
type CoordinatorEvent struct {
	Type     string `json:"type"`
	LeaderID string `json:"leaderId"`
	Epoch    uint64 `json:"epoch"`
	Failures uint32 `json:"failures"`
	Missed   uint64 `json:"missed"`
}

// LeaderInfo is the known leader.
type LeaderInfo struct {
	LeaderID string `json:"leaderId"`
	Epoch    uint64 `json:"epoch"`
	LeaseEnd int64  `json:"leaseEnd"`
}

// Coordinator takes part in the leader election of a namespace.
type Coordinator struct {
	p       *C.s3db_coordinator_t
	mu      sync.Mutex
	handles []cgo.Handle
}

// Coordinator returns a worker of the election of namespace (not started).
func (db *Database) Coordinator(namespace string, opts CoordinatorOptions) (*Coordinator, error) {
	o := map[string]int64{}
	for key, d := range map[string]time.Duration{
		"heartbeatIntervalMs": opts.HeartbeatInterval, "leaseTimeoutMs": opts.LeaseTimeout,
		"workerTimeoutMs": opts.WorkerTimeout, "startupJitterMs": opts.StartupJitter,
	} {
		if d > 0 {
			o[key] = d.Milliseconds()
		}
	}
	j, err := jsonArg(o)
	if err != nil {
		return nil, err
	}
	defer j.free()
	n := newCStr(namespace)
	defer n.free()
	c := &Coordinator{}
	if err := call(func() C.int { return C.s3db_coordinator(db.p, n.p, j.p, &c.p) }); err != nil {
		return nil, err
	}
	return c, nil
}

// OnEvent calls fn for every event from now on (from another thread) until Stop or Close.
func (c *Coordinator) OnEvent(fn func(CoordinatorEvent)) error {
	h := cgo.NewHandle(fn)
	if err := call(func() C.int { return C.go_on_event(c.p, C.uintptr_t(h)) }); err != nil {
		h.Delete()
		return err
	}
	c.mu.Lock()
	c.handles = append(c.handles, h)
	c.mu.Unlock()
	return nil
}

// releaseHandles forgets the OnEvent functions (libs3db no longer calls them).
func (c *Coordinator) releaseHandles() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.handles {
		h.Delete()
	}
	c.handles = nil
}

// Start joins the election.
func (c *Coordinator) Start() error {
	return call(func() C.int { return C.s3db_coordinator_start(c.p) })
}

// Stop leaves the election (releasing the lease if leading) and ends the OnEvent functions.
func (c *Coordinator) Stop() error {
	err := call(func() C.int { return C.s3db_coordinator_stop(c.p) })
	c.releaseHandles()
	return err
}

// Close frees the handle (without Stop, the worker vanishes as if it crashed).
func (c *Coordinator) Close() {
	C.s3db_coordinator_free(c.p)
	c.p = nil
	c.releaseHandles()
}

// IsLeader tells whether this worker leads now.
func (c *Coordinator) IsLeader() bool {
	var b C.bool
	if call(func() C.int { return C.s3db_coordinator_is_leader(c.p, &b) }) != nil {
		return false
	}
	return bool(b)
}

// FencingToken is the epoch of the lease while leading.
func (c *Coordinator) FencingToken() (epoch uint64, leading bool) {
	var e C.uint64_t
	var l C.bool
	if call(func() C.int { return C.s3db_coordinator_fencing_token(c.p, &e, &l) }) != nil {
		return 0, false
	}
	return uint64(e), bool(l)
}

// Leader returns the known leader, or nil.
func (c *Coordinator) Leader() (*LeaderInfo, error) {
	var l *LeaderInfo
	return l, jsonCall(&l, func(out **C.char) C.int { return C.s3db_coordinator_get_leader(c.p, out) })
}

// WorkerID is this worker's id.
func (c *Coordinator) WorkerID() (string, error) {
	var out *C.char
	err := call(func() C.int { return C.s3db_coordinator_worker_id(c.p, &out) })
	return takeString(out), err
}

// AddPluginAttribute adds an attribute owned by plugin (s3db.js addPluginAttribute):
// definition is a rule string or an object; returns the plugin map, attribute → key.
func (r *Resource) AddPluginAttribute(name string, definition any, plugin string) (map[string]string, error) {
	d, err := jsonArg(definition)
	if err != nil {
		return nil, err
	}
	defer d.free()
	n, p := newCStr(name), newCStr(plugin)
	defer n.free()
	defer p.free()
	var m map[string]string
	return m, jsonCall(&m, func(out **C.char) C.int {
		return C.s3db_resource_add_plugin_attribute(r.p, n.p, d.p, p.p, out)
	})
}

// PluginMap returns the plugin-owned attributes and their keys.
func (r *Resource) PluginMap() (map[string]string, error) {
	var m map[string]string
	return m, jsonCall(&m, func(out **C.char) C.int { return C.s3db_resource_plugin_map(r.p, out) })
}
