// Quickstart for s3db from Go, through libs3db and cgo (the wrapper package in tests/go).
//
//	examples/go/run.sh [connection-url]
//
// The URL comes from os.Args[1], then $S3DB_URL, else a fresh temporary directory (file://).
// Examples: memory://demo, file:///tmp/s3db-demo,
// http://KEY:SECRET@127.0.0.1:5055/bucket/prefix, s3://KEY:SECRET@bucket/prefix
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"s3db.local/s3db"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "[go] quickstart failed: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	url := os.Getenv("S3DB_URL")
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	if url == "" {
		dir, err := os.MkdirTemp("", "s3db-quickstart-go-")
		if err != nil {
			return err
		}
		url = "file://" + dir
	}

	db, err := s3db.Connect(url)
	if err != nil {
		return err
	}
	defer db.Close()
	// Never print credentials: hide the user-info part of the URL.
	fmt.Println("[go] connected to", regexp.MustCompile(`//[^/@]*@`).ReplaceAllString(url, "//***@"))

	users, err := db.CreateResource("users", map[string]string{"name": "string|required", "email": "string|optional"})
	if err != nil {
		return err
	}
	defer users.Close()

	ada, err := users.Insert(s3db.Record{"name": "Ada Lovelace", "email": "ada@example.com"})
	if err != nil {
		return err
	}
	id := ada["id"].(string)
	fmt.Println("[go] inserted", asJSON(ada))

	got, err := users.Get(id)
	if err != nil {
		return err
	}
	fmt.Println("[go] read    ", asJSON(got))

	updated, err := users.Update(id, s3db.Record{"email": "ada@analytical.engine"})
	if err != nil {
		return err
	}
	fmt.Println("[go] updated ", asJSON(updated))

	count, err := users.Count()
	if err != nil {
		return err
	}
	fmt.Println("[go] count   ", count)

	// Errors carry the status code every binding shares.
	if _, err := users.Insert(s3db.Record{"id": id, "name": "Someone else"}); errors.Is(err, s3db.ErrAlreadyExists) {
		fmt.Println("[go] duplicate insert refused:", err)
	} else {
		return fmt.Errorf("duplicate insert: %v", err)
	}

	err = db.WithLock("quickstart", 10*time.Second, 5*time.Second, func(lock *s3db.Lock) error {
		fmt.Printf("[go] lock %q held with fencing token %d\n", lock.Name, lock.FencingToken)
		return nil
	})
	if err != nil {
		return err
	}

	invoices, err := db.Sequence("invoices", 1, 1)
	if err != nil {
		return err
	}
	defer invoices.Close()
	var values []int64
	for i := 0; i < 3; i++ {
		v, err := invoices.Next()
		if err != nil {
			return err
		}
		values = append(values, v)
	}
	fmt.Println("[go] sequence 'invoices' gave", values)

	stats, err := db.Stats()
	if err != nil {
		return err
	}
	fmt.Println("[go] requests", stats)
	return nil
}

func asJSON(r s3db.Record) string {
	b, _ := json.Marshal(r)
	return string(b)
}
