//! Progress of export/import on stderr: an indicatif bar with ETA on a terminal, a plain line
//! every few seconds otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// What the bar counts: records (export) or input bytes (import from a file).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Records,
    Bytes,
}

const PLAIN_EVERY: Duration = Duration::from_secs(2);

pub struct Progress {
    label: String,
    unit: Unit,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    plain: bool,
    started: Instant,
    last_line: Instant,
    position: u64,
    records: u64,
}

impl Progress {
    pub fn new(label: String, total: Option<u64>, unit: Unit, quiet: bool) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = (!quiet && tty).then(|| {
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = match (total.is_some(), unit) {
                (true, Unit::Records) => {
                    "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} records ({rate}, ETA {eta}) {msg}"
                }
                (true, Unit::Bytes) => {
                    "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}"
                }
                (false, _) => "{prefix} {spinner} [{elapsed_precise}] {msg}",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{:.0}/s", state.per_sec());
                    },
                ));
            }
            bar.set_prefix(label.clone());
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let now = Instant::now();
        Progress {
            label,
            unit,
            total,
            bar,
            plain: !quiet && !tty,
            started: now,
            last_line: now,
            position: 0,
            records: 0,
        }
    }

    /// `position` in the bar's unit; `records` done so far.
    pub fn update(&mut self, position: u64, records: u64) {
        self.position = position;
        self.records = records;
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            if self.unit == Unit::Bytes || self.total.is_none() {
                bar.set_message(format!("{records} records"));
            }
        } else if self.plain && self.last_line.elapsed() >= PLAIN_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line());
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.records as f64 / secs;
        let mut s = format!(
            "{}: {} records, {:.1}s, {:.0} records/s",
            self.label, self.records, secs, rate
        );
        if let Some(total) = self.total.filter(|t| *t > 0) {
            let done = self.position.min(total) as f64 / total as f64;
            s.push_str(&format!(", {:.0}%", done * 100.0));
            if done > 0.0 && done < 1.0 {
                s.push_str(&format!(", ETA {:.0}s", secs / done - secs));
            }
        }
        s
    }

    /// A line on stderr that does not tear the bar.
    pub fn println(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("{msg}")),
            None => eprintln!("{msg}"),
        }
    }

    /// Clears the bar; returns the elapsed time.
    pub fn finish(self) -> Duration {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.started.elapsed()
    }
}
