package s3db

// Go functions libs3db calls back (through the trampolines in s3db.go). A file with //export
// may only declare things in its preamble, hence this separate file.

/*
#include <stdint.h>
#include "s3db.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime/cgo"
)

// s3dbGoJSONCallback completes an *Async call; it runs on a libs3db runtime thread.
//
//export s3dbGoJSONCallback
func s3dbGoJSONCallback(handle C.uintptr_t, status C.int, result *C.char) {
	h := cgo.Handle(handle)
	ch := h.Value().(chan AsyncResult)
	h.Delete()
	text := C.GoString(result)
	if status == C.S3DB_OK {
		ch <- AsyncResult{JSON: text}
		return
	}
	err := statusError(status, text)
	// libs3db recorded the error on this (runtime) thread just before calling back.
	if details := C.s3db_last_error_details(); details != nil {
		_ = json.Unmarshal([]byte(C.GoString(details)), &err.(*Error).Details)
	}
	ch <- AsyncResult{Err: err}
}

// s3dbGoLockBody runs WithLock's function on the calling thread while the lock is held.
//
//export s3dbGoLockBody
func s3dbGoLockBody(lock *C.s3db_lock_t, handle C.uintptr_t) (status C.int) {
	st := cgo.Handle(handle).Value().(*withLockState)
	defer func() {
		// A panic must not unwind through C: report it as the function's error.
		if p := recover(); p != nil {
			st.err = fmt.Errorf("panic in WithLock function: %v", p)
			status = C.S3DB_ERR_INTERNAL
		}
	}()
	l, err := newLock(lock, false)
	if err == nil {
		err = st.fn(l)
	}
	if err == nil {
		return C.S3DB_OK
	}
	st.err = err
	if e, ok := err.(*Error); ok {
		return C.int(e.Status)
	}
	return C.S3DB_ERR_INTERNAL
}

// s3dbGoEvent delivers a coordinator event to an OnEvent function; it runs on a libs3db
// runtime thread.
//
//export s3dbGoEvent
func s3dbGoEvent(handle C.uintptr_t, eventJSON *C.char) {
	defer func() { _ = recover() }() // a panic must not unwind through C
	fn := cgo.Handle(handle).Value().(func(CoordinatorEvent))
	var ev CoordinatorEvent
	if json.Unmarshal([]byte(C.GoString(eventJSON)), &ev) == nil {
		fn(ev)
	}
}
