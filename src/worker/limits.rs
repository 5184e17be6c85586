//! Resource limits of one worker's whole process tree, from /proc (no root, no cgroups):
//! a sampler once a second publishes its CPU share and resident memory, holds the tree near
//! `cpu_percent` of one CPU by SIGSTOP/SIGCONT duty cycling when it runs over, and reports a
//! tree over `memory_mb` (the coordinator stops it). An operator's pause is left alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{ProcessTable, WorkerProcs};

/// What the sampler enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Percent of one CPU; 0 for none.
    pub cpu_percent: u32,
    /// MiB of resident memory; 0 for none.
    pub memory_mb: u64,
}

/// The latest sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Percent of one CPU over the last period.
    pub cpu_percent: f64,
    pub rss_mb: u64,
    /// True while the sampler is holding the tree back.
    pub throttled: bool,
}

/// The limit a tree went over (once: the sampler then stops).
#[derive(Debug, Clone, PartialEq)]
pub enum Breach {
    Memory { rss_mb: u64, limit_mb: u64 },
}

/// How limits are enforced here, for `status`.
pub const MECHANISM: &str = "/proc sampling, SIGSTOP/SIGCONT duty cycling";

/// One sampling period: the duty cycle's too.
const PERIOD: Duration = Duration::from_millis(500);

/// The period without a CPU limit: samples only feed the usage shown and the memory limit,
/// and reading `/proc` is not free (a scan of 300 processes costs milliseconds).
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// The CPU share of a period that the tree may run for to average `limit` when it would
/// use `demand` (both in percent of one CPU) if left alone. Pure.
pub fn run_fraction(limit: f64, demand: f64) -> f64 {
    if demand <= limit || demand <= 0.0 {
        1.0
    } else {
        (limit / demand).clamp(0.05, 1.0)
    }
}

/// The sampler of one worker; it ends when the tree is gone or `stop` is set.
pub struct Limiter {
    pub usage: Arc<Mutex<Usage>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Limiter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Limiter {
    /// Starts sampling `procs`. `paused` is the operator's pause (never undone here);
    /// `on_breach` is called once, from the sampler's thread.
    pub fn start(
        procs: WorkerProcs,
        limits: Limits,
        paused: Arc<AtomicBool>,
        on_breach: impl FnOnce(Breach) + Send + 'static,
    ) -> Limiter {
        let usage = Arc::new(Mutex::new(Usage::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&usage), Arc::clone(&stop));
        let _ = thread::Builder::new()
            .name("limits".into())
            .spawn(move || sample(procs, limits, paused, shared, stopped, on_breach));
        Limiter { usage, stop }
    }
}

fn sample(
    procs: WorkerProcs,
    limits: Limits,
    paused: Arc<AtomicBool>,
    usage: Arc<Mutex<Usage>>,
    stop: Arc<AtomicBool>,
    on_breach: impl FnOnce(Breach),
) {
    // SAFETY: sysconf reads a constant.
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    let mut last: Option<(Instant, u64)> = None;
    let mut fraction = 1.0;
    let mut on_breach = Some(on_breach);
    while !stop.load(Ordering::SeqCst) {
        let period = if limits.cpu_percent == 0 {
            WATCH_PERIOD
        } else {
            PERIOD
        };
        let mut members = procs.members_in(&ProcessTable::recent(period));
        if members.is_empty() {
            // The shared reading may predate the worker: only a fresh one says it is gone.
            members = procs.members();
        }
        if members.is_empty() {
            return;
        }
        let ticks: u64 = members.iter().map(|p| p.cpu_ticks).sum();
        let rss_mb = members.iter().map(|p| p.rss_pages * page).sum::<u64>() >> 20;
        let now = Instant::now();
        let share = last.map_or(0.0, |(at, before)| {
            let ran = now.duration_since(at).as_secs_f64() * fraction;
            (ticks.saturating_sub(before) as f64 / ticks_per_sec) / ran.max(0.001) * 100.0
        });
        last = Some((now, ticks));
        let limit = f64::from(limits.cpu_percent);
        let operator_paused = paused.load(Ordering::SeqCst);
        // The demand while running, not averaged down by our own stops.
        fraction = if limits.cpu_percent == 0 || operator_paused {
            1.0
        } else {
            run_fraction(limit, share)
        };
        if let Ok(mut u) = usage.lock() {
            *u = Usage {
                cpu_percent: share * if fraction < 1.0 { fraction } else { 1.0 },
                rss_mb,
                throttled: fraction < 1.0,
            };
        }
        if limits.memory_mb > 0
            && rss_mb > limits.memory_mb
            && let Some(report) = on_breach.take()
        {
            report(Breach::Memory {
                rss_mb,
                limit_mb: limits.memory_mb,
            });
            return;
        }
        if fraction < 1.0 {
            thread::sleep(PERIOD.mul_f64(fraction));
            if paused.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
                continue;
            }
            let _ = procs.signal(libc::SIGSTOP);
            thread::sleep(PERIOD.mul_f64(1.0 - fraction));
            // Only what we stopped: an operator's pause since then stays.
            if !paused.load(Ordering::SeqCst) {
                let _ = procs.signal(libc::SIGCONT);
            }
        } else {
            thread::sleep(period);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duty_cycle_runs_the_share_the_limit_allows() {
        assert_eq!(run_fraction(50.0, 30.0), 1.0);
        assert_eq!(run_fraction(50.0, 100.0), 0.5);
        assert_eq!(run_fraction(50.0, 200.0), 0.25);
        assert_eq!(run_fraction(1.0, 1000.0), 0.05, "never stopped for good");
    }
}
