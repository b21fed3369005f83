"""Gathers the programs' JSON (bench/results/raw), prints the table, the ratios against
s3db.js, the binding overhead and the targets of issue 5, and writes latest.json / latest.md.
Called by bench/run.sh; can be re-run on the raw files (python bench/report.py --raw
bench/results/raw) or on a results file (python bench/report.py --from bench/results/latest.json
--out bench/results/latest.json --md bench/results/latest.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

# "moto": the S3 server of results recorded before versitygw (re-rendered with --from).
BACKENDS = ["memory", "file", "versitygw", "moto"]
IMPLS = [("rust", "s3db-rs"), ("python", "s3db-rs"), ("node", "s3db-rs"), ("node", "s3db.js")]
OPS = ["insert", "get", "get_many", "update", "list", "count", "query", "delete",
       "insert_many", "delete_many", "lock", "seq_next", "seq_fast", "seq_procs"]
KIND_NAMES = {"get": "GET", "head": "HEAD", "put": "PUT", "copy": "COPY", "delete": "DEL",
              "list": "LIST"}


def label(lang: str, impl: str) -> str:
    return "s3db.js" if impl == "s3db.js" else lang


def num(x: Optional[float], digits: int = 0) -> str:
    if x is None:
        return "-"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def fmt_ms(x: Optional[float]) -> str:
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def fmt_req(rpo: Optional[dict]) -> str:
    if not rpo:
        return "n/a"
    parts = []
    for k, name in KIND_NAMES.items():
        v = rpo.get(k)
        if v:
            s = f"{v:.3f}".rstrip("0").rstrip(".") if v < 10 else f"{v:.1f}"
            parts.append(f"{name} {s}")
    return " + ".join(parts) if parts else "0"


def sh(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "n/a"


def machine(args: argparse.Namespace) -> dict:
    mem = "n/a"
    cpu = platform.processor() or "n/a"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1048576:.1f} GiB"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    s3dbjs = "n/a"
    pj = Path(__file__).parent / "node/s3dbjs/node_modules/s3db.js/package.json"
    if pj.exists():
        s3dbjs = json.loads(pj.read_text())["version"]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": mem,
        "kernel": platform.release(),
        "loadavg_at_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "rustc": sh(["rustc", "--version"]),
        "python": sh([args.python, "--version"]),
        "node (bindings)": sh([args.node, "--version"]),
        "node (s3db.js)": sh([args.node24, "--version"]) if args.node24 else "n/a",
        "s3db.js": s3dbjs,
        "s3 server": args.s3_server or "n/a",
        "s3db-rs commit": sh(["git", "-C", str(Path(__file__).resolve().parent.parent),
                              "describe", "--always", "--dirty"]),
    }


def load(raw: Path) -> tuple[dict, dict, list[str]]:
    results: dict[tuple[str, str, str], dict] = {}
    stream: dict[str, dict] = {}
    for p in sorted(raw.glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except json.JSONDecodeError:
            continue
        if p.name.startswith("stream-"):
            stream[p.stem.removeprefix("stream-")] = d
            continue
        results[(d["language"], d["impl"], d["backend"])] = d
    skips = []
    sp = raw / "skips.txt"
    if sp.exists():
        skips = [x for x in sp.read_text().splitlines() if x.strip()]
    return results, stream, skips


def op_of(results: dict, lang: str, impl: str, backend: str, op: str) -> Optional[dict]:
    r = results.get((lang, impl, backend))
    if not r:
        return None
    for o in r.get("ops", []):
        if o["op"] == op:
            return o
    return None


def rate(o: Optional[dict]) -> Optional[float]:
    return o.get("ops_per_s") if o and "ops_per_s" in o else None


def table(results: dict) -> tuple[list[list[str]], list[str]]:
    head = ["backend", "operation", "impl", "ops/s", "p50 ms", "p99 ms", "requests per op",
            "RSS MB", "x s3db.js"]
    rows = [head]
    foot = []
    for backend in BACKENDS:
        if not any(k[2] == backend for k in results):
            continue
        for op in OPS:
            ref = rate(op_of(results, "node", "s3db.js", backend, op))
            for lang, impl in IMPLS:
                if (lang, impl, backend) not in results:
                    continue
                r = results[(lang, impl, backend)]
                o = op_of(results, lang, impl, backend, op)
                name = label(lang, impl)
                if r.get("failed") and not o:
                    if op == OPS[0]:
                        rows.append([backend, "(all)", name, "FAILED", "", "", "", "", ""])
                        foot.append(f"{name} on {backend} failed: {r['failed']}")
                    continue
                if o is None:
                    continue
                if "skipped" in o:
                    rows.append([backend, op, name, "skipped", "", "", "", "", ""])
                    foot.append(f"{name} on {backend}, {op}: {o['skipped']}")
                    continue
                if "error" in o:
                    rows.append([backend, op, name, "FAILED", "", "", "", "", ""])
                    foot.append(f"{name} on {backend}, {op}: {o['error']}")
                    continue
                ratio = ""
                refo = op_of(results, "node", "s3db.js", backend, op)
                if ref and impl != "s3db.js" and o.get("ops_per_s"):
                    ratio = f"{o['ops_per_s'] / ref:.1f}x"
                    if o.get("records") is not None and refo and \
                            refo.get("records") not in (None, o["records"]):
                        ratio = "(n/c)"  # per call over a different number of records
                unit = o.get("unit", "op")
                rows.append([backend, op, name, f"{num(o.get('ops_per_s'))} {unit}/s",
                             fmt_ms(o.get("p50_ms")), fmt_ms(o.get("p99_ms")),
                             fmt_req(o.get("requests_per_op")), num(o.get("peak_rss_mb")), ratio])
                note = o.get("note", "")
                if ("budget" in note or o.get("duplicates") or o.get("errors")) and note:
                    foot.append(f"{name} on {backend}, {op}: {note}")
                if ratio == "(n/c)":
                    foot.append(f"{name} on {backend}, {op}: no ratio (n/c): per call over "
                                f"{o['records']} records, s3db.js counted {refo['records']}")
    return rows, foot


def render_text(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5, 7, 8}
    out = []
    prev = None
    for n, r in enumerate(rows):
        if n > 1 and (r[0], r[1]) != prev:
            out.append("")
        prev = (r[0], r[1])
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_md(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |",
           "|" + "|".join("---:" if i in {3, 4, 5, 7, 8} else "---" for i in range(len(rows[0])))
           + "|"]
    for r in rows[1:]:
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def ratios(results: dict) -> dict:
    out: dict[str, Any] = {}
    for backend in BACKENDS:
        for op in OPS:
            refo = op_of(results, "node", "s3db.js", backend, op)
            ref = rate(refo)
            if not ref:
                continue
            for lang, impl in IMPLS[:3]:
                o = op_of(results, lang, impl, backend, op)
                v = rate(o)
                if o and refo and refo.get("records") not in (None, o.get("records")):
                    continue
                if v:
                    out.setdefault(backend, {}).setdefault(op, {})[lang] = round(v / ref, 2)
    return out


def overhead(results: dict) -> dict:
    """Binding ops/s over Rust ops/s on memory:// for get and insert (single calls), and the
    batch calls (get_many / insert_many) over Rust's single calls."""
    out: dict[str, Any] = {}
    for op, batch in (("get", "get_many"), ("insert", "insert_many")):
        rs = rate(op_of(results, "rust", "s3db-rs", "memory", op))
        rb = rate(op_of(results, "rust", "s3db-rs", "memory", batch))
        for lang in ("python", "node"):
            single = rate(op_of(results, lang, "s3db-rs", "memory", op))
            many = rate(op_of(results, lang, "s3db-rs", "memory", batch))
            if not rs:
                continue
            out.setdefault(op, {})[lang] = {
                "single_vs_rust_single": round(single / rs, 3) if single else None,
                "batch_vs_rust_single": round(many / rs, 3) if many else None,
                "batch_vs_rust_batch": round(many / rb, 3) if many and rb else None,
            }
    return out


def targets(results: dict, stream: dict) -> list[dict]:
    t: list[dict] = []

    def add(name: str, ok: Optional[bool], detail: str) -> None:
        t.append({"target": name, "status": "n/a" if ok is None else ("met" if ok else "missed"),
                  "detail": detail})

    # Request floors (every s3db-rs program, every backend: the worst case is reported).
    floors = {
        "insert": ({"put": 2}, "1 PUT + 1 PUT for the one partition"),
        "get": ({"get": 1}, "1 GET"),
        "update": ({"get": 1, "put": 1}, "1 GET + 1 PUT (the field updated is not partitioned)"),
        "delete": ({"get": 1, "delete": 2},
                   "1 DELETE + 1 partition DELETE, + 1 GET to find the partition reference "
                   "(DESIGN.md)"),
        "seq_next": ({"get": 1, "put": 1}, "2 (GET + conditional PUT)"),
        "lock": (None, "acquire + release <= 3"),
        "seq_fast": (None, "<= 2 per batch per id"),
    }
    for op, (floor, what) in floors.items():
        worst = None
        where = ""
        for (lang, impl, backend), r in results.items():
            if impl != "s3db-rs":
                continue
            o = op_of(results, lang, impl, backend, op)
            if not o or not o.get("requests_per_op"):
                continue
            tot = o["requests_per_op"]["total"]
            if worst is None or tot > worst["total"]:
                worst = o["requests_per_op"]
                where = f"{lang}/{backend}"
        if worst is None:
            add(f"requests: {op}", None, "not measured")
            continue
        if op == "lock":
            ok = worst["total"] <= 3 + 1e-9
        elif op == "seq_fast":
            batch = 100
            for (lang, impl, backend), r in results.items():
                o = op_of(results, lang, impl, backend, op)
                if o and "note" in o and o["note"].startswith("batch of "):
                    batch = int(o["note"].split()[2].rstrip(","))
            ok = worst["total"] <= 2 / batch + 1e-9
        else:
            assert floor is not None
            ok = all(worst.get(k, 0) <= v + 1e-9 for k, v in floor.items()) and \
                worst["total"] <= sum(floor.values()) + 1e-9
        add(f"requests: {op}", ok, f"floor {what}; worst measured {fmt_req(worst)} ({where})")

    # Throughput against s3db.js.
    for backend, need, langs, ops in (
        ("memory", 5.0, ["node"], ["insert", "get", "update", "list"]),
        ("memory", 3.0, ["python"], ["insert", "get", "update", "list"]),
        ("versitygw", 2.0, ["rust", "python", "node"], ["insert", "get", "update"]),
    ):
        for lang in langs:
            for op in ops:
                ref = rate(op_of(results, "node", "s3db.js", backend, op))
                v = rate(op_of(results, lang, "s3db-rs", backend, op))
                if not ref or not v:
                    add(f"{lang} {op} on {backend} >= {need:g}x s3db.js", None,
                        "s3db.js or the binding was not measured")
                    continue
                x = v / ref
                add(f"{lang} {op} on {backend} >= {need:g}x s3db.js", x >= need,
                    f"{x:.1f}x ({num(v)} vs {num(ref)} per s)")

    # Binding overhead.
    ov = overhead(results)
    for op in ("get", "insert"):
        for lang in ("python", "node"):
            d = ov.get(op, {}).get(lang)
            if not d:
                add(f"{lang} {op} within 15% of Rust (memory)", None, "not measured")
                continue
            s, b = d["single_vs_rust_single"], d["batch_vs_rust_single"]
            if s is not None and s >= 0.85:
                add(f"{lang} {op} within 15% of Rust (memory)", True,
                    f"single calls at {s:.0%} of Rust's")
            elif b is not None and b >= 0.85:
                add(f"{lang} {op} within 15% of Rust (memory)", True,
                    f"through the batch call ({op}_many) at {b:.0%} of Rust's single calls; "
                    f"single calls at {s:.0%}")
            else:
                add(f"{lang} {op} within 15% of Rust (memory)", False,
                    f"single calls at {s:.0%} of Rust's" +
                    (f", batch ({op}_many) at {b:.0%}" if b is not None else ""))

    # Streaming memory.
    for lang in ("rust", "python", "node"):
        s = stream.get(lang)
        if not s:
            add(f"{lang}: streaming 100,000 records under 200 MB peak RSS", None,
                "not run (bench/run.sh --stream 100000)")
            continue
        ok = s["peak_rss_mb"] < 200 and s["records"] >= 100000
        add(f"{lang}: streaming 100,000 records under 200 MB peak RSS",
            ok if s["records"] >= 100000 else None,
            f"{s['records']:,} records by {s['method']}: peak RSS {s['peak_rss_mb']:.0f} MB "
            f"({s['rss_before_mb']:.0f} MB before), {s['records_per_s']:,.0f} records/s")
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", default=str(Path(__file__).parent / "results/raw"))
    ap.add_argument("--out")
    ap.add_argument("--md")
    ap.add_argument("--node", default="node")
    ap.add_argument("--node24", default="")
    ap.add_argument("--python", default="python3")
    ap.add_argument("--elapsed", type=int)
    ap.add_argument("--s3-server", default="", help="name and version of the S3 test server")
    ap.add_argument("--from", dest="from_json",
                    help="re-render a results JSON written earlier (its machine and results; "
                         "the streaming figures are read again from results/stream.json)")
    args = ap.parse_args()
    prev: Optional[dict] = None
    if args.from_json:
        prev = json.loads(Path(args.from_json).read_text())
        results = {(d["language"], d["impl"], d["backend"]): d for d in prev["results"]}
        stream, skips = {}, prev.get("skips", [])
        args.elapsed = prev.get("elapsed_s")
    else:
        results, stream, skips = load(Path(args.raw))
    if not stream:
        sp = Path(__file__).parent / "results/stream.json"
        if sp.exists():
            stream = json.loads(sp.read_text())
    rows, foot = table(results)
    mach = prev["machine"] if prev else machine(args)
    any_r = next(iter(results.values()), {})
    params = {"n": any_r.get("n"), "c": any_r.get("c"), "budget_s": any_r.get("budget_s"),
              "secret_field": any_r.get("secret"),
              "backends": [b for b in BACKENDS if any(k[2] == b for k in results)]}
    tg = targets(results, stream)

    text = [render_text(rows)]
    if foot or skips:
        text.append("\nNotes:")
        text += [f"  - {x}" for x in skips + foot]
    if stream:
        text.append("\nStreaming (file://, page size 1000):")
        for lang in ("rust", "python", "node"):
            s = stream.get(lang)
            if s:
                text.append(f"  {lang:7} {s['records']:>8,} records  {s['records_per_s']:>9,.0f}/s  "
                            f"peak RSS {s['peak_rss_mb']:.0f} MB (before: {s['rss_before_mb']:.0f} MB)")
    text.append("\nTargets (issue 5)" + (f" (streaming figures from results/stream.json, "
                                          f"{stream['generated']})" if stream.get("generated") else "") + ":")
    for x in tg:
        text.append(f"  [{x['status']:6}] {x['target']}: {x['detail']}")
    text.append("\nMachine: " + ", ".join(f"{k} {v}" for k, v in mach.items()))
    text.append(f"Parameters: N={params['n']} C={params['c']} budget={params['budget_s']} s per "
                f"operation, secret field {'on' if params['secret_field'] else 'off'}"
                + (f"; harness took {args.elapsed} s" if args.elapsed else ""))
    print("\n".join(text))

    if args.out:
        doc = {
            "generated": prev["generated"] if prev else
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "parameters": params,
            "elapsed_s": args.elapsed,
            "machine": mach,
            "skips": skips,
            "ratios_vs_s3dbjs": ratios(results),
            "binding_overhead_memory": overhead(results),
            "targets": tg,
            "stream": stream,
            "results": [results[k] for k in sorted(results)],
        }
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"\nwrote {args.out}")
    if args.md:
        md = [render_md(rows)]
        if foot or skips:
            md.append("")
            md += [f"- {x}" for x in skips + foot]
        md.append("\nTargets:\n")
        md += [f"- **{x['status']}**: {x['target']}: {x['detail']}" for x in tg]
        Path(args.md).write_text("\n".join(md) + "\n")
        print(f"wrote {args.md}")


if __name__ == "__main__":
    main()
