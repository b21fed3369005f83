module s3db.local/s3db

go 1.22
