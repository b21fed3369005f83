//! The benchmark workload on the Rust engine (the reference for the binding overhead).
//!
//! Usage: s3db-bench --url URL --backend memory|file|versitygw [--n N --c C ...] --out FILE
//!        s3db-bench seq-worker --url URL --name NAME --m M --start-at EPOCH_MS --backend B
//! The workload (bench/workload.json) and the operations are those of bench/node/common.mjs.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use s3db::{ConnectOptions, Database, LockOptions, Resource, ResourceConfig, Stats};
use serde_json::{json, Map, Value};

const SIZE_KEYS: [&str; 11] = [
    "n",
    "c",
    "budget_s",
    "secret",
    "batch",
    "lock_cycles",
    "sequence_next",
    "fast_next",
    "fast_batch_size",
    "procs",
    "proc_next",
];
const KINDS: [&str; 6] = ["get", "head", "put", "copy", "delete", "list"];

type BoxErr = Box<dyn std::error::Error + Send + Sync>;
type Res<T> = std::result::Result<T, BoxErr>;

fn log(msg: &str) {
    eprintln!("  [rust] {msg}");
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn make_record(w: &Value, i: usize) -> Value {
    let st = w["values"]["statuses"].as_array().expect("statuses");
    let ci = w["values"]["cities"].as_array().expect("cities");
    let mut r = json!({
        "name": format!("user-{i}"),
        "email": format!("user{i}@example.com"),
        "status": st[i % st.len()],
        "age": 18 + i % 60,
        "score": i as f64 * 1.5,
        "active": i.is_multiple_of(2),
        "address": {"city": ci[i % ci.len()], "zip": format!("{i:05}")},
        "tags": [format!("t{}", i % 5), format!("t{}", i % 7)],
        "token": format!("tok-{i}-s3cr3t"),
    });
    if w["secret"].as_i64() == Some(0) {
        if let Some(o) = r.as_object_mut() {
            o.remove("token");
        }
    }
    if i.is_multiple_of(3) {
        r["note"] = json!(format!("note {i}"));
    }
    r
}

fn stats_value(s: Stats) -> BTreeMap<&'static str, i64> {
    let v = [s.get, s.head, s.put, s.copy, s.delete, s.list];
    KINDS.iter().zip(v).map(|(k, n)| (*k, n as i64)).collect()
}

fn delta(after: Stats, before: Stats) -> BTreeMap<&'static str, i64> {
    let a = stats_value(after);
    let b = stats_value(before);
    KINDS.iter().map(|k| (*k, a[k] - b[k])).collect()
}

fn per_op(req: &BTreeMap<&'static str, i64>, units: usize) -> Value {
    if units == 0 {
        return Value::Null;
    }
    let mut out = Map::new();
    let mut total = 0i64;
    for k in KINDS {
        total += req[k];
        if req[k] != 0 {
            out.insert(k.into(), json!(req[k] as f64 / units as f64));
        }
    }
    out.insert("total".into(), json!(total as f64 / units as f64));
    Value::Object(out)
}

fn percentile(sorted: &[f64], p: f64) -> Value {
    if sorted.is_empty() {
        return Value::Null;
    }
    let idx = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    json!(sorted[idx])
}

/// What a measured body reports.
#[derive(Default)]
struct Run {
    units: usize,
    seconds: f64,
    lat: Vec<f64>,
    note: Option<String>,
    requests: Option<BTreeMap<&'static str, i64>>,
    extra: Map<String, Value>,
}

/// Runs `f(i)` for i in 0..count with `c` tasks on the multi-threaded runtime; stops starting
/// calls once `budget` is spent (the first `units` indexes ran).
async fn pool<F, Fut>(count: usize, c: usize, budget: Duration, f: F) -> Res<Run>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Res<()>> + Send + 'static,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let lat = Arc::new(Mutex::new(vec![0.0f64; count]));
    let t0 = Instant::now();
    let deadline = t0 + budget;
    let mut tasks = Vec::new();
    for _ in 0..c.min(count).max(1) {
        let (f, next, lat) = (f.clone(), next.clone(), lat.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                if Instant::now() > deadline {
                    return Ok::<(), BoxErr>(());
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return Ok(());
                }
                let s = Instant::now();
                f(i).await?;
                lat.lock().unwrap()[i] = s.elapsed().as_secs_f64() * 1000.0;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let units = next.load(Ordering::SeqCst).min(count);
    let mut lat = lat.lock().unwrap().clone();
    lat.truncate(units);
    Ok(Run {
        units,
        seconds: t0.elapsed().as_secs_f64(),
        lat,
        ..Default::default()
    })
}

struct Bench {
    db: Database,
    url: String,
    backend: String,
    w: Value,
    ops: Vec<Value>,
}

fn capped(w: &Value, units: usize, of: usize) -> Option<String> {
    (units < of).then(|| format!("time budget {} s reached: {units} of {of}", w["budget_s"]))
}

fn notes(xs: &[Option<String>]) -> Option<String> {
    let v: Vec<&str> = xs.iter().flatten().map(String::as_str).collect();
    (!v.is_empty()).then(|| v.join("; "))
}

impl Bench {
    fn skip(&mut self, op: &str, reason: &str) {
        log(&format!("{op}: skipped: {reason}"));
        self.ops.push(json!({"op": op, "skipped": reason}));
    }

    async fn measure<Fut>(&mut self, op: &str, unit: &str, before: Stats, body: Fut)
    where
        Fut: Future<Output = Res<Run>>,
    {
        let r = match body.await {
            Ok(r) => r,
            Err(e) => {
                log(&format!("{op}: FAILED: {e}"));
                let msg: String = e.to_string().chars().take(300).collect();
                self.ops.push(json!({"op": op, "unit": unit, "error": msg}));
                return;
            }
        };
        let requests = r
            .requests
            .clone()
            .unwrap_or_else(|| delta(self.db.stats(), before));
        let mut lat = r.lat.clone();
        lat.sort_by(|a, b| a.total_cmp(b));
        let mut rec = json!({
            "op": op,
            "unit": unit,
            "units": r.units,
            "calls": lat.len(),
            "seconds": r.seconds,
            "ops_per_s": r.units as f64 / r.seconds,
            "p50_ms": percentile(&lat, 0.5),
            "p99_ms": percentile(&lat, 0.99),
            "requests": requests,
            "requests_per_op": per_op(&requests, r.units),
            "peak_rss_mb": peak_rss_mb(),
        });
        for (k, v) in r.extra {
            rec[k] = v;
        }
        if let Some(n) = &r.note {
            rec["note"] = json!(n);
        }
        log(&format!(
            "{op}: {:.0} {unit}/s, p50 {:.2} ms, p99 {:.2} ms, req/{unit} {:.2}",
            rec["ops_per_s"].as_f64().unwrap_or(0.0),
            rec["p50_ms"].as_f64().unwrap_or(0.0),
            rec["p99_ms"].as_f64().unwrap_or(0.0),
            rec["requests_per_op"]["total"].as_f64().unwrap_or(0.0),
        ));
        self.ops.push(rec);
    }

    fn size(&self, k: &str) -> usize {
        self.w[k].as_u64().unwrap_or(0) as usize
    }

    async fn run(&mut self) -> Res<Value> {
        let w = self.w.clone();
        let (n_all, c, b) = (self.size("n"), self.size("c"), self.size("batch"));
        let budget = match w["budget_s"].as_f64() {
            Some(s) if s > 0.0 => Duration::from_secs_f64(s),
            _ => Duration::from_secs(86400 * 365),
        };
        let mut opts = Map::new();
        opts.insert("attributes".into(), w["attributes"].clone());
        opts.insert("partitions".into(), w["partitions"].clone());
        let res: Resource = self
            .db
            .create_resource_with(
                w["resource"].as_str().unwrap_or("bench_users"),
                ResourceConfig::from_json(&Value::Object(opts))?,
            )
            .await?;
        log(&format!("connected to {}; N={n_all} C={c}", self.backend));
        // Warm-up, not measured: one insert, get and delete (key derivation, connections).
        let warm = res.insert(make_record(&w, 10 * n_all)).await?;
        let warm_id = warm["id"].as_str().unwrap_or_default().to_string();
        res.get(&warm_id).await?;
        res.delete(&warm_id).await?;
        let wa = Arc::new(w.clone());

        // insert
        let ids = Arc::new(Mutex::new(vec![None::<String>; n_all]));
        let (r2, i2, w2) = (res.clone(), ids.clone(), wa.clone());
        let before = self.db.stats();
        let run = pool(n_all, c, budget, move |i| {
            let (res, ids, w) = (r2.clone(), i2.clone(), w2.clone());
            async move {
                let rec = res.insert(make_record(&w, i)).await?;
                ids.lock().unwrap()[i] = rec["id"].as_str().map(str::to_string);
                Ok(())
            }
        })
        .await;
        self.measure("insert", "record", before, async {
            let mut r = run?;
            r.note = capped(&w, r.units, n_all);
            Ok(r)
        })
        .await;
        let ids: Arc<Vec<String>> =
            Arc::new(ids.lock().unwrap().iter().flatten().cloned().collect());
        let n = ids.len();
        if n == 0 {
            return Err("nothing was inserted".into());
        }

        // get
        let (r2, i2, w2) = (res.clone(), ids.clone(), wa.clone());
        let before = self.db.stats();
        let run = pool(n, c, budget, move |i| {
            let (res, ids, w) = (r2.clone(), i2.clone(), w2.clone());
            async move {
                let rec = res.get(&ids[i]).await?;
                let secret = w["secret"].as_i64() != Some(0);
                if rec["name"] != json!(format!("user-{i}"))
                    || (secret && rec["token"] != json!(format!("tok-{i}-s3cr3t")))
                {
                    return Err(format!("get {}: wrong record {rec}", ids[i]).into());
                }
                Ok(())
            }
        })
        .await;
        self.measure("get", "record", before, async {
            let mut r = run?;
            r.note = capped(&w, r.units, n);
            Ok(r)
        })
        .await;

        // get_many
        let parts: Arc<Vec<Vec<String>>> = Arc::new(ids.chunks(b).map(|c| c.to_vec()).collect());
        let got = Arc::new(AtomicUsize::new(0));
        let (r2, p2, g2) = (res.clone(), parts.clone(), got.clone());
        let before = self.db.stats();
        let run = pool(parts.len(), 1, budget, move |j| {
            let (res, parts, got) = (r2.clone(), p2.clone(), g2.clone());
            async move {
                let (found, _) = res.get_many(&parts[j]).await?;
                if found.len() != parts[j].len() {
                    return Err(format!("get_many: {} of {}", found.len(), parts[j].len()).into());
                }
                got.fetch_add(found.len(), Ordering::SeqCst);
                Ok(())
            }
        })
        .await;
        self.measure("get_many", "record", before, async {
            let mut r = run?;
            r.units = got.load(Ordering::SeqCst);
            r.note = notes(&[
                Some(format!(
                    "batches of {b}, one batch at a time; latency per batch"
                )),
                capped(&w, r.units, n),
            ]);
            Ok(r)
        })
        .await;

        // update
        let field = w["update"]["field"].as_str().unwrap_or("age").to_string();
        let (r2, i2) = (res.clone(), ids.clone());
        let before = self.db.stats();
        let run = pool(n, c, budget, move |i| {
            let (res, ids, field) = (r2.clone(), i2.clone(), field.clone());
            async move {
                let mut ch = Map::new();
                ch.insert(field, json!(99 - i % 60));
                res.update(&ids[i], Value::Object(ch)).await?;
                Ok(())
            }
        })
        .await;
        self.measure("update", "record", before, async {
            let mut r = run?;
            r.note = capped(&w, r.units, n);
            Ok(r)
        })
        .await;

        // list
        let r2 = res.clone();
        let before = self.db.stats();
        let run = pool(self.size("list_repeats"), 1, budget, move |_| {
            let res = r2.clone();
            async move {
                let all = res.list().await?;
                if all.len() != n {
                    return Err(format!("list returned {} of {n}", all.len()).into());
                }
                Ok(())
            }
        })
        .await;
        self.measure("list", "record", before, async {
            let mut r = run?;
            r.note = Some(format!(
                "{} call(s) listing all {n}; latency per call",
                r.units
            ));
            r.units *= n;
            Ok(r)
        })
        .await;

        // count
        let r2 = res.clone();
        let before = self.db.stats();
        let run = pool(self.size("count_repeats"), 1, budget, move |_| {
            let res = r2.clone();
            async move {
                let got = res.count().await?;
                if got as usize != n {
                    return Err(format!("count returned {got}, expected {n}").into());
                }
                Ok(())
            }
        })
        .await;
        self.measure("count", "call", before, async {
            let mut r = run?;
            r.note = Some(format!("counts {n} records"));
            r.extra.insert("records".into(), json!(n));
            Ok(r)
        })
        .await;

        // query by the partition field
        let pname = w["partition"]["name"].as_str().unwrap_or("").to_string();
        let pfield = w["partition"]["field"].as_str().unwrap_or("").to_string();
        let values: Arc<Vec<Value>> = Arc::new(
            w["values"]["statuses"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        let got = Arc::new(AtomicUsize::new(0));
        let (r2, v2, g2, pn, pf) = (
            res.clone(),
            values.clone(),
            got.clone(),
            pname.clone(),
            pfield.clone(),
        );
        let before = self.db.stats();
        let run = pool(values.len(), 1, budget, move |j| {
            let (res, values, got, pn, pf) =
                (r2.clone(), v2.clone(), g2.clone(), pn.clone(), pf.clone());
            async move {
                let mut vals = Map::new();
                vals.insert(pf.clone(), values[j].clone());
                let rs = res.list_in(Some((&pn, &vals))).await?;
                for x in &rs {
                    if x[&pf] != values[j] {
                        return Err(format!("query {}: got {}", values[j], x[&pf]).into());
                    }
                }
                got.fetch_add(rs.len(), Ordering::SeqCst);
                Ok(())
            }
        })
        .await;
        let nvals = values.len();
        self.measure("query", "record", before, async {
            let mut r = run?;
            let g = got.load(Ordering::SeqCst);
            if r.units == nvals && g != n {
                return Err(format!("query returned {g} of {n}").into());
            }
            r.note = Some(format!(
                "{} call(s), one per {pfield} value, through partition {pname}; latency per call",
                r.units
            ));
            r.units = g;
            Ok(r)
        })
        .await;

        // delete
        let (r2, i2) = (res.clone(), ids.clone());
        let before = self.db.stats();
        let run = pool(n, c, budget, move |i| {
            let (res, ids) = (r2.clone(), i2.clone());
            async move {
                res.delete(&ids[i]).await?;
                Ok(())
            }
        })
        .await;
        self.measure("delete", "record", before, async {
            let mut r = run?;
            r.note = capped(&w, r.units, n);
            Ok(r)
        })
        .await;

        // insert_many + delete_many
        let idx: Vec<usize> = (0..n_all).collect();
        let parts: Arc<Vec<Vec<usize>>> = Arc::new(idx.chunks(b).map(|c| c.to_vec()).collect());
        let ids2 = Arc::new(Mutex::new(Vec::<String>::new()));
        let (r2, p2, i2, w2) = (res.clone(), parts.clone(), ids2.clone(), wa.clone());
        let before = self.db.stats();
        let run = pool(parts.len(), 1, budget, move |j| {
            let (res, parts, ids2, w) = (r2.clone(), p2.clone(), i2.clone(), w2.clone());
            async move {
                let items = parts[j]
                    .iter()
                    .map(|i| make_record(&w, n_all + i))
                    .collect();
                let out = res.insert_many(items).await;
                if let Some(e) = out.iter().find_map(|x| x.error.as_ref()) {
                    return Err(format!("insert_many: {}: {}", e.code, e.message).into());
                }
                ids2.lock()
                    .unwrap()
                    .extend(out.into_iter().filter_map(|x| x.id));
                Ok(())
            }
        })
        .await;
        self.measure("insert_many", "record", before, async {
            let mut r = run?;
            r.units = ids2.lock().unwrap().len();
            r.note = notes(&[
                Some(format!(
                    "batches of {b}, one batch at a time; latency per batch"
                )),
                capped(&w, r.units, n_all),
            ]);
            Ok(r)
        })
        .await;
        let ids2: Vec<String> = ids2.lock().unwrap().clone();
        if ids2.is_empty() {
            self.skip("delete_many", "insert_many stored nothing");
        } else {
            let parts: Arc<Vec<Vec<String>>> =
                Arc::new(ids2.chunks(b).map(|c| c.to_vec()).collect());
            let done = Arc::new(AtomicUsize::new(0));
            let (r2, p2, d2) = (res.clone(), parts.clone(), done.clone());
            let before = self.db.stats();
            let run = pool(parts.len(), 1, budget, move |j| {
                let (res, parts, done) = (r2.clone(), p2.clone(), d2.clone());
                async move {
                    let out = res.delete_many(&parts[j]).await;
                    if let Some(e) = out.iter().find_map(|x| x.error.as_ref()) {
                        return Err(format!("delete_many: {}: {}", e.code, e.message).into());
                    }
                    done.fetch_add(parts[j].len(), Ordering::SeqCst);
                    Ok(())
                }
            })
            .await;
            let total = ids2.len();
            self.measure("delete_many", "record", before, async {
                let mut r = run?;
                r.units = done.load(Ordering::SeqCst);
                r.note = notes(&[
                    Some(format!(
                        "batches of {b}, one batch at a time; latency per batch"
                    )),
                    capped(&w, r.units, total),
                ]);
                Ok(r)
            })
            .await;
        }

        // lock cycles
        let cycles = self.size("lock_cycles");
        let db = self.db.clone();
        let before = self.db.stats();
        let run = pool(cycles, 1, budget, move |_| {
            let db = db.clone();
            async move {
                let lock = db
                    .lock(
                        "bench-lock",
                        LockOptions {
                            ttl: Duration::from_secs(30),
                            timeout: Duration::ZERO,
                        },
                    )
                    .await?;
                lock.release().await?;
                Ok(())
            }
        })
        .await;
        self.measure("lock", "cycle", before, async {
            let mut r = run?;
            r.note = notes(&[
                Some("acquire + release of one lock name, one at a time".into()),
                capped(&w, r.units, cycles),
            ]);
            Ok(r)
        })
        .await;

        // sequence next
        let count = self.size("sequence_next");
        let seq = self.db.sequence("bench-seq")?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let before = self.db.stats();
        let run = pool(count, 1, budget, move |_| {
            let (seq, seen) = (seq.clone(), s2.clone());
            async move {
                let v = seq.next().await?;
                seen.lock().unwrap().push(v);
                Ok(())
            }
        })
        .await;
        self.measure("seq_next", "id", before, async {
            let mut r = run?;
            check_ids(&seen.lock().unwrap(), r.units)?;
            r.note = notes(&[Some("one at a time".into()), capped(&w, r.units, count)]);
            Ok(r)
        })
        .await;

        self.seq_fast(budget).await;

        let k = self.size("procs");
        let m = self.size("proc_next");
        let before = self.db.stats();
        let run = self.seq_procs(k, m).await;
        self.measure("seq_procs", "id", before, async { run }).await;

        Ok(json!({
            "language": "rust",
            "impl": "s3db-rs",
            "backend": self.backend,
            "n": n_all,
            "c": c,
            "budget_s": w["budget_s"],
            "secret": w["secret"].as_i64() != Some(0),
            "versions": {"s3db-rs": env!("CARGO_PKG_VERSION")},
            "runtime": "rust (release, tokio multi-thread)",
            "ops": self.ops,
            "peak_rss_mb": peak_rss_mb(),
        }))
    }

    #[cfg(s3db_seq_batch)]
    async fn seq_fast(&mut self, budget: Duration) {
        let w = self.w.clone();
        let batch = self.size("fast_batch_size");
        let count = self.size("fast_next");
        let opts = s3db::SequenceOptions {
            batch_size: batch as _,
            ..Default::default()
        };
        let seq = match self.db.sequence_with("bench-seq-fast", opts) {
            Ok(s) => s,
            Err(e) => return self.skip("seq_fast", &format!("sequence with batch_size: {e}")),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let before = self.db.stats();
        let run = pool(count, 1, budget, move |_| {
            let (seq, seen) = (seq.clone(), s2.clone());
            async move {
                let v = seq.next().await?;
                seen.lock().unwrap().push(v);
                Ok(())
            }
        })
        .await;
        self.measure("seq_fast", "id", before, async {
            let mut r = run?;
            check_ids(&seen.lock().unwrap(), r.units)?;
            r.note = notes(&[
                Some(format!("batch of {batch}, one at a time")),
                capped(&w, r.units, count),
            ]);
            Ok(r)
        })
        .await;
    }

    #[cfg(not(s3db_seq_batch))]
    async fn seq_fast(&mut self, _budget: Duration) {
        self.skip(
            "seq_fast",
            "no batch/fast mode in this build (SequenceOptions has no batch_size)",
        );
    }

    /// K workers × M next on one sequence: OS processes on shared backends, tasks on memory://.
    async fn seq_procs(&self, k: usize, m: usize) -> Res<Run> {
        let name = "bench-seq-procs";
        let (mode, results) = if self.backend == "memory" {
            let mut tasks = Vec::new();
            for _ in 0..k {
                let db = self.db.clone();
                tasks.push(tokio::spawn(
                    async move { worker_loop(&db, name, m, 0.0).await },
                ));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await??);
            }
            (
                format!("{k} tasks in one process (memory:// is per-process)"),
                out,
            )
        } else {
            let exe = std::env::current_exe()?;
            let start_at = epoch_ms() + 1000.0;
            let mut tasks = Vec::new();
            for _ in 0..k {
                let argv: Vec<String> = vec![
                    "seq-worker".into(),
                    "--url".into(),
                    self.url.clone(),
                    "--name".into(),
                    name.into(),
                    "--m".into(),
                    m.to_string(),
                    "--start-at".into(),
                    format!("{start_at:.0}"),
                    "--backend".into(),
                    self.backend.clone(),
                ];
                let exe: PathBuf = exe.clone();
                tasks.push(tokio::task::spawn_blocking(move || -> Res<Value> {
                    let out = std::process::Command::new(exe)
                        .args(argv)
                        .stderr(std::process::Stdio::inherit())
                        .output()?;
                    let text = String::from_utf8_lossy(&out.stdout);
                    let line = text.trim().lines().last().unwrap_or("");
                    serde_json::from_str(line)
                        .map_err(|e| format!("worker exited {}: {e}: {text}", out.status).into())
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await??);
            }
            (format!("{k} OS processes"), out)
        };
        let mut all = Vec::new();
        let mut errors = Vec::new();
        let mut lat = Vec::new();
        let (mut start, mut end) = (f64::MAX, 0f64);
        let mut req: BTreeMap<&'static str, i64> = KINDS.iter().map(|k| (*k, 0)).collect();
        for r in &results {
            all.extend(
                r["ids"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_i64),
            );
            errors.extend(r["errors"].as_array().into_iter().flatten().cloned());
            lat.extend(
                r["lat"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64),
            );
            start = start.min(r["start"].as_f64().unwrap_or(0.0));
            end = end.max(r["end"].as_f64().unwrap_or(0.0));
            for kd in KINDS {
                *req.get_mut(kd).unwrap() += r["requests"][kd].as_i64().unwrap_or(0);
            }
        }
        let uniq: HashSet<i64> = all.iter().copied().collect();
        let dup = all.len() - uniq.len();
        let mut note = format!("{mode} × {m} next; {} ids, {dup} duplicates", all.len());
        if let Some(e) = errors.first() {
            note.push_str(&format!(", {} errors ({e})", errors.len()));
        }
        let mut extra = Map::new();
        extra.insert("duplicates".into(), json!(dup));
        extra.insert("errors".into(), json!(errors.len()));
        extra.insert("expected".into(), json!(k * m));
        Ok(Run {
            units: all.len(),
            seconds: (end - start).max(0.0) / 1000.0,
            lat,
            note: Some(note),
            requests: (self.backend != "memory").then_some(req),
            extra,
        })
    }
}

fn check_ids(seen: &[i64], expected: usize) -> Res<()> {
    if seen.len() != expected {
        return Err(format!("{} ids, expected {expected}", seen.len()).into());
    }
    let uniq: HashSet<&i64> = seen.iter().collect();
    if uniq.len() != seen.len() {
        return Err(format!("{} duplicate ids", seen.len() - uniq.len()).into());
    }
    Ok(())
}

async fn worker_loop(db: &Database, name: &str, m: usize, start_at: f64) -> Res<Value> {
    let seq = db.sequence(name)?;
    let now = epoch_ms();
    if start_at > now {
        tokio::time::sleep(Duration::from_secs_f64((start_at - now) / 1000.0)).await;
    }
    let before = db.stats();
    let (mut ids, mut lat, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let start = epoch_ms();
    for _ in 0..m {
        let s = Instant::now();
        match seq.next().await {
            Ok(v) => ids.push(v),
            Err(e) => errors.push(e.to_string()),
        }
        lat.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    let end = epoch_ms();
    Ok(
        json!({"ids": ids, "lat": lat, "start": start, "end": end, "errors": errors,
              "requests": delta(db.stats(), before)}),
    )
}

fn vm_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// `populate`: writes `count` workload records (insert_many, batches of 1000).
/// `stream`: pages through every record (page size 1000) and reports the peak RSS.
async fn stream_mode(mode: &str, url: &str, w: &Value, count: usize) -> Res<Value> {
    let db = Database::connect_with(
        url,
        ConnectOptions {
            passphrase: w["passphrase"].as_str().map(str::to_string),
        },
    )
    .await?;
    let name = w["resource"].as_str().unwrap_or("bench_users");
    let t0 = Instant::now();
    if mode == "populate" {
        let mut opts = Map::new();
        opts.insert("attributes".into(), w["attributes"].clone());
        opts.insert("partitions".into(), w["partitions"].clone());
        let res = db
            .create_resource_with(name, ResourceConfig::from_json(&Value::Object(opts))?)
            .await?;
        let mut done = 0;
        while done < count {
            let end = (done + 1000).min(count);
            let out = res
                .insert_many((done..end).map(|i| make_record(w, i)).collect())
                .await;
            if let Some(e) = out.iter().find_map(|x| x.error.as_ref()) {
                return Err(format!("populate: {}: {}", e.code, e.message).into());
            }
            done = end;
        }
        return Ok(json!({"populated": done, "seconds": t0.elapsed().as_secs_f64()}));
    }
    let res = db.resource(name).await?;
    let rss_before = vm_rss_mb();
    let mut cursor: Option<String> = None;
    let mut records = 0usize;
    loop {
        let page = res.page(1000, cursor.as_deref()).await?;
        records += page.items.len();
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let seconds = t0.elapsed().as_secs_f64();
    Ok(
        json!({"language": "rust", "records": records, "seconds": seconds,
              "records_per_s": records as f64 / seconds, "rss_before_mb": rss_before,
              "peak_rss_mb": peak_rss_mb(), "method": "page(1000) loop"}),
    )
}

fn parse_args() -> (String, BTreeMap<String, String>) {
    let mut mode = "run".to_string();
    let mut kv = BTreeMap::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if let Some(k) = a.strip_prefix("--") {
            kv.insert(k.to_string(), it.next().unwrap_or_default());
        } else {
            mode = a;
        }
    }
    (mode, kv)
}

fn main() -> Res<()> {
    let (mode, args) = parse_args();
    let url = args.get("url").cloned().ok_or("--url is required")?;
    let backend = args
        .get("backend")
        .cloned()
        .unwrap_or_else(|| "memory".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        if mode == "seq-worker" {
            let db = Database::connect(&url).await?;
            let m: usize = args.get("m").and_then(|v| v.parse().ok()).unwrap_or(1);
            let start_at: f64 = args
                .get("start-at")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            let r = worker_loop(
                &db,
                args.get("name").map(String::as_str).unwrap_or("seq"),
                m,
                start_at,
            )
            .await?;
            println!("{r}");
            return Ok(());
        }
        let path = args
            .get("workload")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../workload.json"));
        if mode == "populate" || mode == "stream" {
            let w: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
            let count: usize = args
                .get("count")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100_000);
            let r = stream_mode(&mode, &url, &w, count).await?;
            println!("{r}");
            return Ok(());
        }
        let mut w: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        for k in SIZE_KEYS {
            if let Some(v) = args.get(&k.replace('_', "-")) {
                let f: f64 = v.parse()?;
                w[k] = if f.fract() == 0.0 {
                    json!(f as i64)
                } else {
                    json!(f)
                };
            }
        }
        if w["secret"].as_i64() == Some(0) {
            if let Some(a) = w["attributes"].as_object_mut() {
                a.remove("token");
            }
        }
        let db = Database::connect_with(
            &url,
            ConnectOptions {
                passphrase: w["passphrase"].as_str().map(str::to_string),
            },
        )
        .await?;
        let mut bench = Bench {
            db,
            url,
            backend,
            w,
            ops: Vec::new(),
        };
        let result = bench.run().await?;
        let text = serde_json::to_string_pretty(&result)?;
        match args.get("out") {
            Some(p) => std::fs::write(p, text)?,
            None => println!("{text}"),
        }
        Ok(())
    })
}
