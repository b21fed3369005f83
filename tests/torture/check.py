"""Checks a torture log written by the workers of tests/torture/run.sh.

    python3 check.py lock LOGFILE EXPECTED_ACQUISITIONS
    python3 check.py sequence LOGFILE EXPECTED_IDS

lock: lines "<token> <pid> enter|exit <language>" in the order they happened (O_APPEND).
Proves: every enter is followed by the exit of the same holder before any other line (no
overlapping critical sections), fencing tokens strictly increase from one holder to the next,
every critical section closed, the expected number of acquisitions.

sequence: lines "<id> <pid> <language>". Proves: no duplicate ids and no gaps (the ids are
exactly 1..EXPECTED_IDS for a fresh sequence).

Prints one summary line; exits 1 when any violation is found.
"""

import collections
import sys


def check_lock(lines, expected):
    violations = []
    holder = None  # (token, pid) inside the critical section
    last_token = None
    acquisitions = 0
    pids, langs = collections.Counter(), set()
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 3 or parts[2] not in ("enter", "exit"):
            violations.append(f"line {n}: malformed {line!r}")
            continue
        token, pid, what = int(parts[0]), parts[1], parts[2]
        langs.add(parts[3] if len(parts) > 3 else "?")
        if what == "enter":
            if holder is not None:
                violations.append(f"line {n}: {pid} entered (token {token}) while {holder} inside")
            if last_token is not None and token <= last_token:
                violations.append(f"line {n}: token {token} not above previous {last_token}")
            holder, last_token = (token, pid), token
            acquisitions += 1
            pids[pid] += 1
        else:
            if holder != (token, pid):
                violations.append(f"line {n}: exit of {(token, pid)} while holder is {holder}")
            holder = None
    if holder is not None:
        violations.append(f"critical section of {holder} never closed")
    if acquisitions != expected:
        violations.append(f"{acquisitions} acquisitions, expected {expected}")
    summary = (
        f"lock: {acquisitions} acquisitions, {len(pids)} processes, languages "
        f"{','.join(sorted(langs))}, tokens {lines and lines[0].split()[0]}..{last_token}, "
        f"violations {len(violations)}"
    )
    return summary, violations


def check_sequence(lines, expected):
    violations = []
    ids, pids, langs = [], set(), set()
    for n, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) < 2:
            violations.append(f"line {n}: malformed {line!r}")
            continue
        ids.append(int(parts[0]))
        pids.add(parts[1])
        langs.add(parts[2] if len(parts) > 2 else "?")
    counts = collections.Counter(ids)
    dups = sorted(i for i, c in counts.items() if c > 1)
    if dups:
        violations.append(f"{len(dups)} duplicate ids, e.g. {dups[:10]}")
    missing = sorted(set(range(1, expected + 1)) - set(ids))
    if missing:
        violations.append(f"{len(missing)} gaps, e.g. {missing[:10]}")
    extra = sorted(i for i in set(ids) if not 1 <= i <= expected)
    if extra:
        violations.append(f"ids outside 1..{expected}: {extra[:10]}")
    summary = (
        f"sequence: {len(ids)} ids ({len(counts)} distinct), {len(pids)} processes, "
        f"languages {','.join(sorted(langs))}, duplicates {len(dups)}, gaps {len(missing)}, "
        f"violations {len(violations)}"
    )
    return summary, violations


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("lock", "sequence"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, path, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(path) as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    check = check_lock if mode == "lock" else check_sequence
    summary, violations = check(lines, expected)
    print(summary)
    for v in violations[:20]:
        print("  VIOLATION", v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
