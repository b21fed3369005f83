"""The benchmark workload on s3db-rs through the Python binding (asyncio).

Usage: python bench.py --url URL --backend memory|file|versitygw [--n N --c C ...] --out FILE
       python bench.py seq-worker --url URL --name NAME --m M --start-at EPOCH_MS --backend B
The workload (bench/workload.json) and the operations are the ones of bench/node/common.mjs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Awaitable, Callable, Optional

import s3db

HERE = Path(__file__).resolve().parent
KINDS = ("get", "head", "put", "copy", "delete", "list")
SIZE_KEYS = ("n", "c", "budget_s", "secret", "batch", "lock_cycles", "sequence_next", "fast_next",
             "fast_batch_size", "procs", "proc_next")


def log(msg: str) -> None:
    print(f"  [python] {msg}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_record(w: dict, i: int) -> dict:
    st = w["values"]["statuses"]
    ci = w["values"]["cities"]
    r: dict[str, Any] = {
        "name": f"user-{i}",
        "email": f"user{i}@example.com",
        "status": st[i % len(st)],
        "age": 18 + i % 60,
        "score": i * 1.5,
        "active": i % 2 == 0,
        "address": {"city": ci[i % len(ci)], "zip": str(i).zfill(5)},
        "tags": [f"t{i % 5}", f"t{i % 7}"],
        "token": f"tok-{i}-s3cr3t",
    }
    if not w.get("secret", 1):
        del r["token"]
    if i % 3 == 0:
        r["note"] = f"note {i}"
    return r


def percentile(sorted_lat: list[float], p: float) -> Optional[float]:
    if not sorted_lat:
        return None
    idx = min(len(sorted_lat) - 1, max(0, math.ceil(p * len(sorted_lat)) - 1))
    return sorted_lat[idx]


def delta(after: Optional[dict], before: Optional[dict]) -> Optional[dict]:
    if after is None or before is None:
        return None
    return {k: after.get(k, 0) - before.get(k, 0) for k in KINDS}


def per_op(req: Optional[dict], units: int) -> Optional[dict]:
    if req is None or units == 0:
        return None
    out = {k: req[k] / units for k in KINDS if req[k]}
    out["total"] = sum(req[k] for k in KINDS) / units
    return out


def now() -> float:
    return time.perf_counter()


async def pool(count: int, c: int, fn: Callable[[int], Awaitable[Any]],
               budget: float = math.inf) -> dict:
    """Runs fn(i) for i in 0..count with c workers; stops starting calls once the budget
    (seconds) is spent. Returns the latencies (ms) of the first `units` calls."""
    lat: list[float] = [0.0] * count
    state = {"next": 0}
    t0 = now()
    deadline = t0 + budget

    async def worker() -> None:
        while state["next"] < count and now() <= deadline:
            i = state["next"]
            state["next"] += 1
            s = now()
            await fn(i)
            lat[i] = (now() - s) * 1000

    await asyncio.gather(*(worker() for _ in range(max(1, min(c, count)))))
    n = state["next"]
    return {"seconds": now() - t0, "lat": lat[:n], "units": n}


def chunks(xs: list, size: int) -> list[list]:
    return [xs[i:i + size] for i in range(0, len(xs), size)]


class Bench:
    def __init__(self, url: str, backend: str, w: Optional[dict]) -> None:
        self.url = url
        self.backend = backend
        self.w = w
        self.ops: list[dict] = []
        self.db: Any = None

    async def connect(self) -> None:
        if self.w is not None:
            self.db = await s3db.connect(self.url, passphrase=self.w["passphrase"])
        else:
            self.db = await s3db.connect(self.url)

    def stats(self) -> dict:
        return dict(self.db.stats())

    def skip(self, op: str, reason: str) -> None:
        log(f"{op}: skipped: {reason}")
        self.ops.append({"op": op, "skipped": reason})

    async def measure(self, op: str, unit: str, body: Callable[[], Awaitable[dict]]) -> None:
        before = self.stats()
        try:
            r = await body()
        except Exception as e:  # noqa: BLE001 - reported in the results
            msg = f"{getattr(e, 'code', type(e).__name__)}: {e}"
            log(f"{op}: FAILED: {msg}")
            self.ops.append({"op": op, "unit": unit, "error": msg[:300]})
            return
        requests = r["requests"] if "requests" in r else delta(self.stats(), before)
        lat = sorted(r["lat"])
        rec = {
            "op": op,
            "unit": unit,
            "units": r["units"],
            "calls": len(lat),
            "seconds": r["seconds"],
            "ops_per_s": r["units"] / r["seconds"] if r["seconds"] > 0 else None,
            "p50_ms": percentile(lat, 0.5),
            "p99_ms": percentile(lat, 0.99),
            "requests": requests,
            "requests_per_op": per_op(requests, r["units"]),
            "peak_rss_mb": peak_rss_mb(),
            **r.get("extra", {}),
        }
        if r.get("note"):
            rec["note"] = r["note"]
        self.ops.append(rec)
        rpo = f"{rec['requests_per_op']['total']:.2f}" if rec["requests_per_op"] else "n/a"
        log(f"{op}: {rec['ops_per_s']:.0f} {unit}/s, p50 {rec['p50_ms']:.2f} ms, "
            f"p99 {rec['p99_ms']:.2f} ms, req/{unit} {rpo}")

    async def fast_sequence(self, name: str, batch: int) -> Any:
        """Batch (fast) mode if this build has it: a second next() must send no request."""
        try:
            seq = self.db.sequence(name, batch_size=batch)
        except TypeError as e:
            return f"no batch/fast mode in this build (sequence(batch_size=...) refused: {e})"
        await seq.next()
        b = self.stats()
        await seq.next()
        sent = sum(delta(self.stats(), b).values())  # type: ignore[union-attr]
        if sent:
            return f"no batch/fast mode in this build (second next() sent {sent} requests)"
        return seq

    async def run(self) -> dict:
        w = self.w
        assert w is not None
        n_all, c, b = w["n"], w["c"], w["batch"]
        budget = w["budget_s"] if w.get("budget_s", 0) > 0 else math.inf

        def capped(units: int, of: int) -> Optional[str]:
            return f"time budget {w['budget_s']} s reached: {units} of {of}" if units < of else None

        def notes(*xs: Optional[str]) -> Optional[str]:
            return "; ".join(x for x in xs if x) or None

        await self.connect()
        res = await self.db.create_resource(w["resource"], w["attributes"],
                                            partitions=w["partitions"])
        log(f"connected to {self.backend}; N={n_all} C={c}")
        # Warm-up, not measured: one insert, get and delete (key derivation, connections).
        warm = await res.insert(make_record(w, 10 * n_all))
        await res.get(warm["id"])
        await res.delete(warm["id"])

        ids: list[Optional[str]] = [None] * n_all

        async def insert(i: int) -> None:
            ids[i] = (await res.insert(make_record(w, i)))["id"]

        async def do_insert() -> dict:
            r = await pool(n_all, c, insert, budget)
            return {**r, "note": capped(r["units"], n_all)}

        await self.measure("insert", "record", do_insert)
        got_ids = [x for x in ids if x is not None]
        n = len(got_ids)
        if n == 0:
            raise RuntimeError("nothing was inserted")

        async def get(i: int) -> None:
            rec = await res.get(got_ids[i])
            if rec["name"] != f"user-{i}" or (w.get("secret", 1)
                                               and rec["token"] != f"tok-{i}-s3cr3t"):
                raise RuntimeError(f"get {got_ids[i]}: wrong record {rec}")

        async def do_get() -> dict:
            r = await pool(n, c, get, budget)
            return {**r, "note": capped(r["units"], n)}

        await self.measure("get", "record", do_get)

        async def do_get_many() -> dict:
            parts = chunks(got_ids, b)
            done = {"units": 0}

            async def one(j: int) -> None:
                out = await res.get_many(parts[j])
                if len(out["found"]) != len(parts[j]):
                    raise RuntimeError(f"get_many: {len(out['found'])} of {len(parts[j])}")
                done["units"] += len(out["found"])

            r = await pool(len(parts), 1, one, budget)
            return {**r, "units": done["units"],
                    "note": notes(f"batches of {b}, one batch at a time; latency per batch",
                                  capped(done["units"], n))}

        await self.measure("get_many", "record", do_get_many)

        field = w["update"]["field"]

        async def update(i: int) -> None:
            await res.update(got_ids[i], {field: 99 - i % 60})

        async def do_update() -> dict:
            r = await pool(n, c, update, budget)
            return {**r, "note": capped(r["units"], n)}

        await self.measure("update", "record", do_update)

        async def list_all(_: int) -> None:
            out = await res.list()
            if len(out) != n:
                raise RuntimeError(f"list returned {len(out)} of {n}")

        async def do_list() -> dict:
            r = await pool(w["list_repeats"], 1, list_all, budget)
            return {**r, "units": n * r["units"],
                    "note": f"{r['units']} call(s) listing all {n}; latency per call"}

        await self.measure("list", "record", do_list)

        async def count(_: int) -> None:
            got = await res.count()
            if got != n:
                raise RuntimeError(f"count returned {got}, expected {n}")

        async def do_count() -> dict:
            r = await pool(w["count_repeats"], 1, count, budget)
            return {**r, "note": f"counts {n} records", "extra": {"records": n}}

        await self.measure("count", "call", do_count)

        pname, pfield = w["partition"]["name"], w["partition"]["field"]
        values = w["values"]["statuses"]

        async def do_query() -> dict:
            got = {"n": 0}

            async def one(j: int) -> None:
                v = values[j]
                rs = await res.list(partition=pname, values={pfield: v})
                for x in rs:
                    if x[pfield] != v:
                        raise RuntimeError(f"query {v}: got {x[pfield]}")
                got["n"] += len(rs)

            r = await pool(len(values), 1, one, budget)
            if r["units"] == len(values) and got["n"] != n:
                raise RuntimeError(f"query returned {got['n']} of {n}")
            return {**r, "units": got["n"],
                    "note": f"{r['units']} call(s), one per {pfield} value, through partition "
                            f"{pname}; latency per call"}

        await self.measure("query", "record", do_query)

        async def delete(i: int) -> None:
            await res.delete(got_ids[i])

        async def do_delete() -> dict:
            r = await pool(n, c, delete, budget)
            return {**r, "note": capped(r["units"], n)}

        await self.measure("delete", "record", do_delete)

        ids2: list[str] = []

        async def do_insert_many() -> dict:
            parts = chunks(list(range(n_all)), b)

            async def one(j: int) -> None:
                out = await res.insert_many([make_record(w, n_all + i) for i in parts[j]])
                bad = [x for x in out if x.get("error")]
                if bad:
                    raise RuntimeError(f"insert_many: {bad[0]['error']}")
                ids2.extend(x["id"] for x in out)

            r = await pool(len(parts), 1, one, budget)
            return {**r, "units": len(ids2),
                    "note": notes(f"batches of {b}, one batch at a time; latency per batch",
                                  capped(len(ids2), n_all))}

        await self.measure("insert_many", "record", do_insert_many)

        async def do_delete_many() -> dict:
            parts = chunks(ids2, b)
            done = {"n": 0}

            async def one(j: int) -> None:
                out = await res.delete_many(parts[j])
                bad = [x for x in out if x.get("error")]
                if bad:
                    raise RuntimeError(f"delete_many: {bad[0]['error']}")
                done["n"] += len(parts[j])

            r = await pool(len(parts), 1, one, budget)
            return {**r, "units": done["n"],
                    "note": notes(f"batches of {b}, one batch at a time; latency per batch",
                                  capped(done["n"], len(ids2)))}

        if ids2:
            await self.measure("delete_many", "record", do_delete_many)
        else:
            self.skip("delete_many", "insert_many stored nothing")

        async def lock_cycle(_: int) -> None:
            lock = await self.db.lock("bench-lock", ttl=30.0, timeout=0.0)
            await lock.release()

        async def do_lock() -> dict:
            r = await pool(w["lock_cycles"], 1, lock_cycle, budget)
            return {**r, "note": notes("acquire + release of one lock name, one at a time",
                                       capped(r["units"], w["lock_cycles"]))}

        await self.measure("lock", "cycle", do_lock)

        async def do_seq() -> dict:
            seq = self.db.sequence("bench-seq")
            seen: list[int] = []

            async def one(_: int) -> None:
                seen.append(await seq.next())

            r = await pool(w["sequence_next"], 1, one, budget)
            check_ids(seen, r["units"])
            return {**r, "note": notes("one at a time", capped(r["units"], w["sequence_next"]))}

        await self.measure("seq_next", "id", do_seq)

        fast = await self.fast_sequence("bench-seq-fast", w["fast_batch_size"])
        if isinstance(fast, str):
            self.skip("seq_fast", fast)
        else:
            async def do_fast() -> dict:
                seen: list[int] = []

                async def one(_: int) -> None:
                    seen.append(await fast.next())

                r = await pool(w["fast_next"], 1, one, budget)
                check_ids(seen, r["units"])
                return {**r, "note": notes(f"batch of {w['fast_batch_size']}, one at a time",
                                           capped(r["units"], w["fast_next"]))}

            await self.measure("seq_fast", "id", do_fast)

        await self.measure("seq_procs", "id", self.seq_procs)

        return {
            "language": "python",
            "impl": "s3db-rs",
            "backend": self.backend,
            "n": n_all,
            "c": c,
            "budget_s": w.get("budget_s"),
            "secret": bool(w.get("secret", 1)),
            "versions": {"s3db-rs": s3db.__version__},
            "runtime": f"python {sys.version.split()[0]}",
            "ops": self.ops,
            "peak_rss_mb": peak_rss_mb(),
        }

    async def seq_procs(self) -> dict:
        w = self.w
        assert w is not None
        k, m, name = w["procs"], w["proc_next"], "bench-seq-procs"
        if self.backend == "memory":
            mode = f"{k} tasks in one process (memory:// is per-process)"
            results = await asyncio.gather(*(worker_loop(self, name, m, 0) for _ in range(k)))
        else:
            mode = f"{k} OS processes"
            start_at = int(time.time() * 1000) + 2000
            results = await asyncio.gather(*(run_child(
                [sys.executable, str(Path(__file__).resolve()), "seq-worker", "--url", self.url,
                 "--name", name, "--m", str(m), "--start-at", str(start_at),
                 "--backend", self.backend]) for _ in range(k)))
        all_ids = [x for r in results for x in r["ids"]]
        errors = [e for r in results for e in r["errors"]]
        dup = len(all_ids) - len(set(all_ids))
        start = min(r["start"] for r in results)
        end = max(r["end"] for r in results)
        out: dict[str, Any] = {
            "units": len(all_ids),
            "seconds": (end - start) / 1000,
            "lat": [x for r in results for x in r["lat"]],
            "note": f"{mode} × {m} next; {len(all_ids)} ids, {dup} duplicates"
                    + (f", {len(errors)} errors ({errors[0]})" if errors else ""),
            "extra": {"duplicates": dup, "errors": len(errors), "expected": k * m},
        }
        if self.backend != "memory":
            out["requests"] = {kd: sum(r["requests"][kd] for r in results) for kd in KINDS}
        return out


def check_ids(seen: list[int], expected: int) -> None:
    if len(seen) != expected:
        raise RuntimeError(f"{len(seen)} ids, expected {expected}")
    if len(set(seen)) != len(seen):
        raise RuntimeError(f"{len(seen) - len(set(seen))} duplicate ids")


async def worker_loop(bench: Bench, name: str, m: int, start_at: int) -> dict:
    seq = bench.db.sequence(name)
    wait = start_at / 1000 - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    before = bench.stats()
    ids: list[int] = []
    lat: list[float] = []
    errors: list[str] = []
    start = time.time() * 1000
    for _ in range(m):
        s = now()
        try:
            ids.append(await seq.next())
        except Exception as e:  # noqa: BLE001
            errors.append(str(e)[:200])
        lat.append((now() - s) * 1000)
    end = time.time() * 1000
    return {"ids": ids, "lat": lat, "start": start, "end": end, "errors": errors,
            "requests": delta(bench.stats(), before)}


async def run_child(argv: list[str]) -> dict:
    p = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await p.communicate()
    lines = out.decode().strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as e:
        raise RuntimeError(f"worker exited {p.returncode}: {out[-300:]!r}") from e


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def stream(url: str, w: dict) -> dict:
    """Pages through every record of an existing resource (page size 1000), keeping none."""
    db = await s3db.connect(url, passphrase=w["passphrase"])
    res = await db.resource(w["resource"])
    rss_before = vm_rss_mb()
    t0 = now()
    records = 0
    cursor = None
    while True:
        page = await res.page(1000, cursor)
        records += len(page["items"])
        cursor = page["cursor"]
        if cursor is None:
            break
    seconds = now() - t0
    return {"language": "python", "records": records, "seconds": seconds,
            "records_per_s": records / seconds, "rss_before_mb": rss_before,
            "peak_rss_mb": peak_rss_mb(), "method": "page(1000) loop"}


def load_workload(args: argparse.Namespace) -> dict:
    w = json.loads(Path(args.workload or HERE.parent / "workload.json").read_text())
    for k in SIZE_KEYS:
        v = getattr(args, k, None)
        if v is not None:
            w[k] = int(v) if float(v).is_integer() else float(v)
    if not w.get("secret", 1):
        w["attributes"].pop("token", None)
    return w


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="run")
    ap.add_argument("--url", required=True)
    ap.add_argument("--backend", required=True)
    ap.add_argument("--workload")
    ap.add_argument("--out")
    ap.add_argument("--name")
    ap.add_argument("--m", type=int)
    ap.add_argument("--start-at", type=int, default=0)
    for k in SIZE_KEYS:
        ap.add_argument("--" + k.replace("_", "-"), dest=k, type=float)
    args = ap.parse_args()
    if args.mode == "stream":
        print(json.dumps(await stream(args.url, load_workload(args))))
        return
    if args.mode == "seq-worker":
        bench = Bench(args.url, args.backend, None)
        await bench.connect()
        r = await worker_loop(bench, args.name, args.m, args.start_at)
        print(json.dumps(r))
        return
    bench = Bench(args.url, args.backend, load_workload(args))
    result = await bench.run()
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)
