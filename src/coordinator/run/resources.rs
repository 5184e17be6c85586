//! Resource limits in the coordinator ([sandbox] cpu_percent, memory_mb, runtime_secs,
//! command_timeout_secs): each worker's tree is sampled and held to its CPU share by
//! `worker::limits`; a tree over its memory is stopped; a tool command running past its
//! time has its processes killed (the agent sees the command fail and goes on). The samples
//! go to the database for `status` and the dashboard.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Coordinator, EndedBy, RunningTask};
use crate::agents::Draft;
use crate::event::{AgentEvent, EventType};
use crate::timestamp::Timestamp;
use crate::worker::Worker;
use crate::worker::limits::{Breach, Limiter, Limits};
use crate::worker::process::ProcInfo;

/// Shell commands of one worker still running, from its stream: started, not yet answered.
#[derive(Debug, Default)]
pub(super) struct RunningCommands {
    by_id: BTreeMap<String, (Timestamp, String)>,
}

impl RunningCommands {
    pub fn observe(&mut self, e: &AgentEvent) {
        if e.kind != EventType::Progress {
            return;
        }
        let id = e
            .str_field("tool_id")
            .or_else(|| e.str_field("item_id"))
            .unwrap_or("")
            .to_string();
        match e.str_field("kind") {
            Some("tool_call") => {
                if let Some(command) = e.str_field("command") {
                    self.by_id.insert(id, (e.timestamp, command.to_string()));
                }
            }
            Some("tool_result") => {
                self.by_id.remove(&id);
            }
            Some("command") if !e.payload.contains_key("ok") => {
                let command = e.str_field("command").unwrap_or("").to_string();
                self.by_id.insert(id, (e.timestamp, command));
            }
            Some("command") => {
                self.by_id.remove(&id);
            }
            _ => {}
        }
    }

    /// The commands started before `cutoff`, taken out.
    fn overdue(&mut self, cutoff: Timestamp) -> Vec<(Timestamp, String)> {
        let late: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, (at, _))| at.millis() < cutoff.millis())
            .map(|(id, _)| id.clone())
            .collect();
        late.iter().filter_map(|id| self.by_id.remove(id)).collect()
    }
}

impl Coordinator {
    /// Starts the sampler of a new worker; a memory breach is journaled in the worker's own
    /// journal, where `on_worker_event` finds it.
    pub(super) fn limit_worker(&self, worker: &Arc<Worker>) -> Limiter {
        let sandbox = &self.settings.config.sandbox;
        let limits = Limits {
            cpu_percent: sandbox.cpu_percent,
            memory_mb: sandbox.memory_mb,
        };
        let journal = Arc::clone(worker);
        worker.limit(limits, move |breach| {
            let Breach::Memory { rss_mb, limit_mb } = breach;
            journal.note(
                Draft::new(
                    EventType::Error,
                    format!("uses {rss_mb} MiB, over its memory limit of {limit_mb} MiB (sandbox.memory_mb)"),
                )
                .with("phase", "limit_exceeded")
                .with("limit", "memory_mb")
                .with("rss_mb", rss_mb)
                .with("fatal", true),
            );
        })
    }

    /// A worker over a limit: stopped, its task failed with the reason.
    pub(super) fn on_limit_event(&mut self, task: &str, r: &mut RunningTask, e: &AgentEvent) {
        if e.phase() != Some("limit_exceeded") || r.ended_by.is_some() {
            return;
        }
        let why = format!("{}: {}", r.name, e.text());
        self.record(
            Some(task),
            Draft::new(
                EventType::Status,
                format!("task {task}: {why}; stopping it"),
            )
            .with("phase", "limit_exceeded")
            .with("reason", why.clone()),
        );
        r.ended_by = Some(EndedBy::Limit(why));
        super::tasks::stop_in_background(&r.worker, false);
    }

    /// Each tick: commands past `command_timeout_secs` lose their processes, and the samples
    /// are saved for `status`.
    pub(super) fn check_resources(&mut self, running: &mut BTreeMap<String, RunningTask>) {
        let now = Timestamp::now();
        let limit_ms = self.settings.config.sandbox.command_timeout_secs as i64 * 1000;
        let cutoff = Timestamp(now.millis() - limit_ms);
        let mut late = Vec::new();
        for (task, r) in running.iter_mut() {
            for (started, command) in r.commands.overdue(cutoff) {
                let killed =
                    kill_started_since(&r.worker.procs().members(), r.worker.pid(), started);
                late.push((task.clone(), r.name.clone(), command, killed));
            }
        }
        for (task, worker, command, killed) in late {
            self.record(
                Some(&task),
                Draft::new(
                    EventType::Error,
                    format!(
                        "{worker}: `{command}` ran past its {}s (sandbox.command_timeout_secs); {killed} process(es) killed",
                        limit_ms / 1000
                    ),
                )
                .with("phase", "command_timeout")
                .with("worker", worker)
                .with("command", command)
                .with("fatal", false),
            );
        }
        if now.millis() - self.last_usage_save.millis() >= 2000 {
            self.last_usage_save = now;
            for r in running.values() {
                if let Some(usage) = r
                    .limiter
                    .as_ref()
                    .and_then(|l| l.usage.lock().ok().map(|u| *u))
                {
                    let _ = self.store.set_worker_usage(
                        &self.session.id,
                        &r.name,
                        usage.cpu_percent,
                        usage.rss_mb as i64,
                    );
                }
            }
        }
    }
}

/// SIGKILL to the processes of `members` started at or after `since` (the command's own),
/// never the CLI itself (`leader`). Returns how many.
fn kill_started_since(members: &[ProcInfo], leader: i32, since: Timestamp) -> usize {
    let Some(boot) = boot_time_ms() else {
        return 0;
    };
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as i64;
    let mut killed = 0;
    for p in members {
        let started = boot + p.start_ticks as i64 * 1000 / ticks;
        // A little slack: the stream line comes just after the command starts.
        if p.pid != leader && started + 1000 >= since.millis() {
            // SAFETY: kill of a member of the worker's own tree.
            if unsafe { libc::kill(p.pid, libc::SIGKILL) } == 0 {
                killed += 1;
            }
        }
    }
    killed
}

/// When the machine booted, in Unix milliseconds.
fn boot_time_ms() -> Option<i64> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(Timestamp::now().millis() - (uptime * 1000.0) as i64)
}
