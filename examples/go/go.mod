module s3db.local/quickstart

go 1.22

require s3db.local/s3db v0.0.0

// The cgo wrapper over libs3db lives beside its tests.
replace s3db.local/s3db => ../../tests/go
