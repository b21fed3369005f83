"""Torture worker (Python side of tests/torture/run.sh), on the blocking API.

    python3 worker.py lock|sequence URL N LOGFILE [NAME]

Appends one line per event to LOGFILE (O_APPEND, one write per line):
lock: "<fencing_token> <pid> enter python" / "... exit python"; sequence: "<id> <pid> python".
"""

import os
import random
import sys
import time

import s3db


def main() -> int:
    if len(sys.argv) < 5 or sys.argv[1] not in ("lock", "sequence"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, url, n, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    name = sys.argv[5] if len(sys.argv) > 5 else "torture"
    db = s3db.connect_sync(url)
    pid = os.getpid()
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def append(line: str) -> None:
        os.write(fd, line.encode())

    if mode == "lock":
        for _ in range(n):
            lock = db.lock(name, ttl=30.0, timeout=600.0)
            token = lock.fencing_token
            append(f"{token} {pid} enter python\n")
            time.sleep(random.random() * 0.002)
            append(f"{token} {pid} exit python\n")
            lock.release()
    else:
        seq = db.sequence(name)
        for _ in range(n):
            append(f"{seq.next()} {pid} python\n")
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
