//! Progress of a validation on stderr: an indicatif bar on a terminal, plain log lines
//! otherwise (CI), both with the time left for the probes at the rate so far.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};
use simulator::{Progress, ProgressEvent};

/// Progress: an indicatif bar on a terminal, plain log lines otherwise. Both give the time left
/// for the probes from the rate shards have finished at so far — on a log, a line at every
/// tenth of the fleet and at least every 10 s, so a long run in CI is never silent.
pub(crate) struct CliProgress {
    bar: Option<ProgressBar>,
    log: std::sync::Mutex<LogProgress>,
}

/// What the plain log lines count.
struct LogProgress {
    started: std::time::Instant,
    total: usize,
    done: usize,
    /// Of `done`, the shards found unreachable (no probe time: left out of the rate).
    unreachable: usize,
    last_line: std::time::Instant,
}

/// How often the log says how far the probes are, at least.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl LogProgress {
    /// One more shard finished: the line to print, if one is due.
    fn shard_finished(&mut self, unreachable: bool) -> Option<String> {
        self.done += 1;
        self.unreachable += usize::from(unreachable);
        let now = std::time::Instant::now();
        let step = (self.total / 10).max(1);
        let due = self.done == self.total
            || self.done.is_multiple_of(step)
            || now.duration_since(self.last_line) >= LOG_EVERY;
        if !due || self.total < 2 {
            return None;
        }
        self.last_line = now;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let probed = self.done - self.unreachable;
        let left = if self.done == self.total {
            "probes done".to_string()
        } else if probed == 0 {
            "time left not known yet".to_string()
        } else {
            let rate = probed as f64 / elapsed.max(1e-3);
            format!(
                "about {} left for the probes at the rate so far",
                fmt_secs((self.total - self.done) as f64 / rate)
            )
        };
        Some(format!(
            "deployclaw: {}/{} shards probed ({} %) in {}, {left}",
            self.done,
            self.total,
            self.done * 100 / self.total,
            fmt_secs(elapsed),
        ))
    }
}

/// `4.2 s`, `3 min 12 s`.
fn fmt_secs(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    }
}

impl CliProgress {
    pub(crate) fn new() -> CliProgress {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} shards, ~{eta} left {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(b)
        } else {
            None
        };
        let now = std::time::Instant::now();
        CliProgress {
            bar,
            log: std::sync::Mutex::new(LogProgress {
                started: now,
                total: 0,
                done: 0,
                unreachable: 0,
                last_line: now,
            }),
        }
    }
    pub(crate) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for CliProgress {
    fn event(&self, event: ProgressEvent) {
        match (&self.bar, event) {
            (Some(b), ProgressEvent::Started { shards, .. }) => b.set_length(shards as u64),
            (Some(b), ProgressEvent::ShardFinished { .. }) => b.inc(1),
            (Some(b), ProgressEvent::RehearsalStarted { shard, .. }) => {
                b.set_message(format!("rehearsing {shard}"))
            }
            (Some(b), ProgressEvent::RehearsalFinished { .. }) => b.set_message(String::new()),
            (Some(_), _) => {}
            (None, ProgressEvent::Started { shards, rehearsals }) => {
                if let Ok(mut l) = self.log.lock() {
                    let now = std::time::Instant::now();
                    (l.started, l.last_line, l.total, l.done, l.unreachable) =
                        (now, now, shards, 0, 0);
                }
                eprintln!(
                    "deployclaw: probing {shards} shards, rehearsing {rehearsals} schema shape(s)"
                )
            }
            (None, ProgressEvent::ShardFinished { unreachable, .. }) => {
                let line = self
                    .log
                    .lock()
                    .ok()
                    .and_then(|mut l| l.shard_finished(unreachable));
                if let Some(line) = line {
                    eprintln!("{line}");
                }
            }
            (None, ProgressEvent::RehearsalFinished { fingerprint, ok }) => eprintln!(
                "deployclaw: rehearsal of shape {} {}",
                &fingerprint[..fingerprint.len().min(12)],
                if ok { "succeeded" } else { "had failures" }
            ),
            (
                None,
                ProgressEvent::Calibrated {
                    rewrite_mb_per_s,
                    scan_mb_per_s,
                    ..
                },
            ) => eprintln!(
                "deployclaw: calibrated on the shadow: rewrite {rewrite_mb_per_s:.0} MB/s, scan {scan_mb_per_s:.0} MB/s"
            ),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod progress_tests {
    use super::LogProgress;
    use std::time::{Duration, Instant};

    fn log(total: usize, started_ago: Duration) -> LogProgress {
        let now = Instant::now();
        LogProgress {
            started: now - started_ago,
            total,
            done: 0,
            unreachable: 0,
            last_line: now,
        }
    }

    #[test]
    fn a_line_every_tenth_of_the_fleet_with_the_time_left_at_the_rate_so_far() {
        let mut l = log(100, Duration::from_secs(10));
        let lines: Vec<String> = (0..100).filter_map(|_| l.shard_finished(false)).collect();
        assert_eq!(lines.len(), 10, "{lines:#?}");
        // 10 shards in ~10 s: ~90 s left.
        assert!(
            lines[0].starts_with("deployclaw: 10/100 shards probed (10 %) in 10.")
                && lines[0].contains("about 1 min 29 s left")
                || lines[0].contains("about 1 min 30 s left"),
            "{}",
            lines[0]
        );
        assert!(lines[9].ends_with("probes done"), "{}", lines[9]);
    }

    #[test]
    fn unreachable_shards_do_not_make_the_rest_look_fast() {
        let mut l = log(10, Duration::from_secs(5));
        // Five shards found unreachable at once, then one probed in the 5 s.
        let lines: Vec<String> = (0..5).filter_map(|_| l.shard_finished(true)).collect();
        assert!(
            lines.iter().all(|x| x.ends_with("time left not known yet")),
            "{lines:#?}"
        );
        let line = l.shard_finished(false).expect("a line per tenth");
        // 1 probed shard in ~5 s, 4 left: ~20 s.
        assert!(
            line.contains("about 20.0 s left") || line.contains("about 19.9 s left"),
            "{line}"
        );
    }
}
