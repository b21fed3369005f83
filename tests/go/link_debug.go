//go:build !s3db_release

package s3db

// #cgo LDFLAGS: -L${SRCDIR}/../../target/x86_64-unknown-linux-gnu/debug -Wl,-rpath,${SRCDIR}/../../target/x86_64-unknown-linux-gnu/debug -ls3db
import "C"
