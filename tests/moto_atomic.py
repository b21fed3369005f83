"""moto's S3 server with atomic conditional writes.

moto (5.2.x) checks `If-Match` / `If-None-Match` on PutObject, CopyObject and DeleteObject
and then writes, with nothing held in between, while its server runs requests in threads:
two compare-and-swaps from the same etag can both succeed. Real S3 lets exactly one win.
Seen here: duplicate ids from a multi-process sequence torture, reproduced with plain boto3
clients and no s3db code. A GET racing an overwrite also fails with 500 ("I/O operation on
closed file": the old object's buffer is closed under it). This launcher serialises those
handlers (object PUT, COPY, DELETE, GET, HEAD) under one lock, then runs moto's own server;
everything else is untouched.

Usage: same arguments as `moto_server` (e.g. `python3 moto_atomic.py -H 127.0.0.1 -p 5000`).
"""

import functools
import sys
import threading

from moto import server
from moto.s3.responses import S3Response

_write_lock = threading.RLock()


def _atomic(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _write_lock:
            return method(self, *args, **kwargs)

    return wrapper


for _name in ("put_object", "copy_object", "delete_object", "get_object", "head_object"):
    setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    sys.exit(server.main(sys.argv[1:]))
