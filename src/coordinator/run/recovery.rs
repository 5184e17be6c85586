//! Recovery, applied: a task's failed attempt is read by the rules of `crate::recovery`, and
//! what they say is done here: the task is launched again with a change to its argv, after a
//! usage limit's reset or a backoff, told to continue, or held for the operator with the fix.
//! Every step is a `recovery` event (and a database row), so a restart keeps the budgets, the
//! changes and a pending wait.

use std::collections::BTreeMap;

use serde_json::json;

use super::tasks::stop_in_background;
use super::{Coordinator, EndedBy, RunningTask};
use crate::agents::{AgentKind, Autonomy, Draft};
use crate::coordinator::plan::Plan;
use crate::coordinator::schedule::Scheduler;
use crate::event::{AgentEvent, EventType, read_journal};
use crate::recovery::{Action, Attempt, Change, Step};
use crate::timestamp::Timestamp;

/// What a relaunch that continues the agent's conversation tells it.
pub const CONTINUE_PROMPT: &str = "You were interrupted (a usage limit, an API failure or your turn limit). Continue the task where you stopped.";

/// A task's recovery state, rebuilt from the journal on resume.
#[derive(Debug, Default, Clone)]
pub struct TaskRecovery {
    /// Times each rule acted for the task.
    pub used: BTreeMap<String, u32>,
    /// The changes to its launch so far.
    pub change: Change,
    /// Its next launch continues the agent's own conversation.
    pub continue_conversation: bool,
}

impl Coordinator {
    /// The attempt of `task_id` that `r` ran failed: when a rule knows the failure, act on it
    /// and return true (the caller does not settle the attempt).
    pub(super) fn try_recover(
        &mut self,
        task_id: &str,
        r: &RunningTask,
        exited: &AgentEvent,
        sched: &mut Scheduler,
        plan: &Plan,
    ) -> bool {
        let Some(profile) = self.settings.config.profile(&exited.agent).cloned() else {
            return false;
        };
        let (events, _) = read_journal(&self.session.events_path(&r.name)).unwrap_or_default();
        let mut attempt = attempt_of(&events, profile.kind, exited);
        if let Some(EndedBy::Unreachable(why)) = &r.ended_by {
            attempt.texts.push(why.clone());
        }
        let rules = self.recovery_rules.clone();
        let Some(detection) = rules.detect(&attempt) else {
            return false;
        };
        let rule = detection.rule.name.clone();
        let state = self.recovery.entry(task_id.to_string()).or_default();
        let used = state.used.get(&rule).copied().unwrap_or(0);
        let now = Timestamp::now();
        let dirs = self.policy_dirs(task_id);
        let allowed = |dir: &str| {
            let dir = std::path::Path::new(dir);
            dirs.iter().any(|d| dir.starts_with(d))
        };
        let step = rules.plan(&detection, &attempt, used, now, &allowed, &profile.args);
        let matched = if detection.matched.is_empty() {
            format!("exit code {}", attempt.exit_code.unwrap_or(-1))
        } else {
            detection.matched.clone()
        };
        let argv_before = events
            .iter()
            .rev()
            .find(|e| e.phase() == Some("spawned"))
            .and_then(|e| e.payload.get("argv").cloned())
            .unwrap_or(json!([]));
        let base = |text: String, phase: &str| {
            Draft::new(EventType::Recovery, text)
                .with("phase", phase)
                .with("rule", rule.clone())
                .with("worker", r.name.clone())
                .with("matched", matched.clone())
                .with("action", detection.rule.action.name())
        };
        self.record(
            Some(task_id),
            base(
                format!("{}: {} recognised: {}", r.name, rule, one_line(&matched)),
                "recovery_detected",
            ),
        );
        match step {
            Step::Relaunch(change) => {
                let state = self.recovery.entry(task_id.to_string()).or_default();
                state.change.merge(&change);
                *state.used.entry(rule.clone()).or_default() += 1;
                sched.again_at(task_id, now);
                self.record(
                    Some(task_id),
                    base(
                        format!("task {task_id} relaunches with {}", describe(&change)),
                        "recovery_relaunch",
                    )
                    .with("change", json!(change))
                    .with("argv_before", argv_before)
                    .with("retry_at_ms", now.millis()),
                );
            }
            Step::RelaunchAt { at, why } => {
                let state = self.recovery.entry(task_id.to_string()).or_default();
                *state.used.entry(rule.clone()).or_default() += 1;
                state.continue_conversation = true;
                sched.again_at(task_id, at);
                let secs = (at.millis() - now.millis()).max(0) / 1000;
                self.record(
                    Some(task_id),
                    base(
                        format!("task {task_id}: {why}; it continues in {secs}s (at {at})"),
                        "recovery_wait",
                    )
                    .with("until_ms", at.millis())
                    .with("retry_at_ms", at.millis())
                    .with("reason", why),
                );
            }
            Step::Continue => {
                let state = self.recovery.entry(task_id.to_string()).or_default();
                *state.used.entry(rule.clone()).or_default() += 1;
                state.continue_conversation = true;
                sched.again_at(task_id, now);
                self.record(
                    Some(task_id),
                    base(
                        format!(
                            "task {task_id}: the agent stopped at its turn limit; it continues"
                        ),
                        "recovery_continue",
                    )
                    .with("retry_at_ms", now.millis()),
                );
            }
            Step::Escalate { fix } => {
                sched.escalate(task_id, &format!("{rule}: {fix}"));
                self.record(
                    Some(task_id),
                    base(
                        format!("task {task_id} needs you ({rule}): {fix}"),
                        "recovery_escalated",
                    )
                    .with("fix", fix.clone())
                    .with("reason", one_line(&matched)),
                );
                notify_desktop(&format!("orchestrate: task {task_id} needs you"), &fix);
            }
        }
        self.save_all(sched, plan);
        true
    }

    /// A CLI retrying a request its API refuses for good (a bad or missing key: Claude retries
    /// even a 401) is stopped at once rather than after `agent_unreachable_secs`, when a rule
    /// that escalates recognises the retry: at its end, recovery holds the task with the fix.
    fn end_refused_retries(&mut self, task_id: &str, r: &mut RunningTask, event: &AgentEvent) {
        if event.phase() != Some("retrying") || r.ended_by.is_some() || self.stopping {
            return;
        }
        let Some(kind) = self.settings.config.profile(&event.agent).map(|p| p.kind) else {
            return;
        };
        let attempt = Attempt {
            cli: Some(kind),
            texts: vec![event.text().to_string()],
            ..Attempt::default()
        };
        let refused = self
            .recovery_rules
            .detect(&attempt)
            .is_some_and(|d| matches!(d.rule.action, Action::Escalate { .. }));
        if !refused {
            return;
        }
        self.stop_unreachable(
            task_id,
            r,
            format!("its model API refuses it: {}", event.text()),
        );
    }

    /// Stops a worker whose agent cannot reach (or is refused by) its model API, saying why:
    /// its end goes through the recovery rules with `why` among the attempt's texts.
    pub(super) fn stop_unreachable(&mut self, task_id: &str, r: &mut RunningTask, why: String) {
        self.record(
            Some(task_id),
            Draft::new(
                EventType::Status,
                format!("task {task_id}: {} {why}; stopping it", r.name),
            )
            .with("phase", "agent_unreachable")
            .with("reason", why.clone()),
        );
        r.ended_by = Some(EndedBy::Unreachable(why));
        stop_in_background(&r.worker, false);
    }

    /// Gemini refused a path outside its workspace, mid-run (its run goes on, often to a
    /// "success" that did not do the work): when the sandbox allows that directory, the
    /// worker is stopped now and launched again with the directory included, continuing its
    /// conversation. Otherwise nothing happens here (a failed run escalates at its end).
    pub(super) fn recover_mid_run(
        &mut self,
        task_id: &str,
        r: &mut RunningTask,
        event: &AgentEvent,
    ) {
        self.end_refused_retries(task_id, r, event);
        if event.kind != EventType::Blocker
            || event.str_field("reason") != Some("path_not_in_workspace")
            || r.ended_by.is_some()
            || self.stopping
        {
            return;
        }
        let mut texts = vec![event.text().to_string()];
        texts.extend(event.str_field("message").map(str::to_string));
        // The older wording names no path; the tool call's own is in `path`.
        if let Some(path) = event.str_field("path") {
            texts.push(format!("Path not in workspace: Attempted path \"{path}\""));
        }
        let attempt = Attempt {
            cli: Some(AgentKind::Gemini),
            texts,
            ..Attempt::default()
        };
        let rules = self.recovery_rules.clone();
        let Some(detection) = rules.detect(&attempt) else {
            return;
        };
        let rule = detection.rule.name.clone();
        let used = self
            .recovery
            .get(task_id)
            .and_then(|s| s.used.get(&rule).copied())
            .unwrap_or(0);
        let dirs = self.policy_dirs(task_id);
        let allowed = |dir: &str| {
            let dir = std::path::Path::new(dir);
            dirs.iter().any(|d| dir.starts_with(d))
        };
        let Step::Relaunch(change) =
            rules.plan(&detection, &attempt, used, Timestamp::now(), &allowed, &[])
        else {
            return;
        };
        let state = self.recovery.entry(task_id.to_string()).or_default();
        state.change.merge(&change);
        *state.used.entry(rule.clone()).or_default() += 1;
        state.continue_conversation = true;
        self.record(
            Some(task_id),
            Draft::new(
                EventType::Recovery,
                format!("task {task_id} relaunches with {}", describe(&change)),
            )
            .with("phase", "recovery_relaunch")
            .with("rule", rule)
            .with("worker", r.name.clone())
            .with("matched", one_line(&detection.matched))
            .with("action", detection.rule.action.name())
            .with("change", json!(change))
            .with("retry_at_ms", Timestamp::now().millis()),
        );
        r.ended_by = Some(super::EndedBy::Recovery);
        super::tasks::stop_in_background(&r.worker, false);
    }

    /// A launch of `task` as recovery left it: the profile's arguments changed, directories
    /// added, the safe mode, the trusted folder.
    pub(super) fn recovery_change(&self, task: Option<&str>) -> Change {
        task.and_then(|t| self.recovery.get(t))
            .map(|s| s.change.clone())
            .unwrap_or_default()
    }

    /// Whether the next launch of `task` continues the agent's conversation (and clears it).
    pub(super) fn take_continue(&mut self, task: &str) -> bool {
        self.recovery
            .get_mut(task)
            .map(|s| std::mem::take(&mut s.continue_conversation))
            .unwrap_or(false)
    }

    /// Claude as root refuses bypass mode unless told the machine is a sandbox: before the
    /// launch, the mode the sandbox's hooks make safe is used instead (journaled).
    pub(super) fn needs_safe_mode(
        &self,
        kind: AgentKind,
        autonomy: Autonomy,
        env: &BTreeMap<String, String>,
    ) -> bool {
        // Claude reads exactly "1" (`process.env.IS_SANDBOX === "1"`), from the profile or
        // from what the worker inherits; the simulated CLIs run as on a sandbox machine unless
        // the profile says otherwise (their launch sets IS_SANDBOX=1 when it does not).
        let declared_sandbox = match env.get("IS_SANDBOX") {
            Some(value) => value == "1",
            None => self.settings.simulate || std::env::var("IS_SANDBOX").as_deref() == Ok("1"),
        };
        kind == AgentKind::Claude
            && autonomy == Autonomy::Full
            // SAFETY: geteuid has no preconditions.
            && unsafe { libc::geteuid() } == 0
            && !declared_sandbox
    }

    /// What was prepared before a launch: one `recovery` event (kind `prepare`) naming each
    /// step (one event per launch keeps the log readable).
    pub(super) fn journal_preparation(
        &mut self,
        task: Option<&str>,
        worker: &str,
        kind: AgentKind,
        workdir: &std::path::Path,
        extra_dirs: &[std::path::PathBuf],
    ) {
        let mut steps = vec![(
            "directories",
            format!("{} exists and is writable", workdir.display()),
        )];
        match kind {
            AgentKind::Gemini => {
                steps.push((
                    "gemini_trust",
                    "the run directory is trusted (GEMINI_CLI_TRUST_WORKSPACE=true)".to_string(),
                ));
                if !extra_dirs.is_empty() {
                    let dirs: Vec<String> =
                        extra_dirs.iter().map(|d| d.display().to_string()).collect();
                    steps.push((
                        "gemini_include_directories",
                        format!("--include-directories {}", dirs.join(",")),
                    ));
                }
            }
            AgentKind::Codex if !workdir.join(".git").exists() => steps.push((
                "codex_outside_git",
                "not a git working tree: --skip-git-repo-check".to_string(),
            )),
            _ => {}
        }
        let names: Vec<&str> = steps.iter().map(|(step, _)| *step).collect();
        let said: Vec<String> = steps.into_iter().map(|(_, what)| what).collect();
        self.record(
            task,
            Draft::new(
                EventType::Recovery,
                format!("{worker}: prepared: {}", said.join("; ")),
            )
            .with("phase", "recovery_prepare")
            .with("kind", "prepare")
            .with("worker", worker.to_string())
            .with("steps", names),
        );
    }

    /// Rebuilds each task's recovery state from the coordinator's journal (resume).
    pub(super) fn restore_recovery(&mut self, events: &[AgentEvent]) {
        for e in events {
            let Some(task) = e.task.as_deref() else {
                continue;
            };
            let rule = e.str_field("rule").unwrap_or("").to_string();
            let phase = e.phase().unwrap_or("");
            if !matches!(
                phase,
                "recovery_relaunch"
                    | "recovery_wait"
                    | "recovery_continue"
                    | "task_restarted"
                    | "task_started"
            ) {
                continue;
            }
            let state = self.recovery.entry(task.to_string()).or_default();
            match phase {
                "recovery_relaunch" => {
                    *state.used.entry(rule).or_default() += 1;
                    if let Some(change) = e
                        .payload
                        .get("change")
                        .and_then(|c| serde_json::from_value::<Change>(c.clone()).ok())
                    {
                        state.change.merge(&change);
                    }
                }
                "recovery_wait" | "recovery_continue" => {
                    *state.used.entry(rule).or_default() += 1;
                    state.continue_conversation = true;
                }
                // The operator ran it again: fresh budgets.
                "task_restarted" => state.used.clear(),
                // A launch since: the conversation was continued already.
                _ => state.continue_conversation = false,
            }
        }
    }

    /// The directories the sandbox lets `task` write: where an added include directory must be.
    fn policy_dirs(&self, task: &str) -> Vec<std::path::PathBuf> {
        let mut dirs = vec![
            self.session.run_dir(task),
            self.info.target.clone(),
            self.session.path.clone(),
        ];
        dirs.extend(self.settings.config.sandbox.extra_dirs.iter().cloned());
        dirs
    }
}

/// The failed attempt as the rules read it: the errors and blockers since the last spawn,
/// the exit code, a retry-after an event named.
fn attempt_of(events: &[AgentEvent], kind: AgentKind, exited: &AgentEvent) -> Attempt {
    let start = events
        .iter()
        .rposition(|e| e.phase() == Some("spawned"))
        .unwrap_or(0);
    let mut texts = Vec::new();
    let mut retry_after_secs = None;
    let mut reset_at = None;
    for e in &events[start..] {
        if matches!(e.kind, EventType::Error | EventType::Blocker) {
            texts.push(e.text().to_string());
            for key in ["message", "reason", "subtype", "terminal_reason"] {
                if let Some(t) = e.str_field(key)
                    && !texts.iter().any(|x| x == t)
                {
                    texts.push(t.to_string());
                }
            }
        }
        if let Some(s) = e
            .payload
            .get("retry_after_secs")
            .or_else(|| e.payload.get("retry_after"))
            .and_then(|v| v.as_u64())
        {
            retry_after_secs = Some(s);
        }
        // Claude's rate_limit_event: when the limit lifts, in seconds since the epoch.
        if let Some(at) = e
            .payload
            .get("rate_limit")
            .filter(|r| r.get("status").and_then(|s| s.as_str()) != Some("allowed"))
            .and_then(|r| r.get("resetsAt"))
            .and_then(|v| v.as_i64())
        {
            reset_at = Some(Timestamp(if at > 10_000_000_000 { at } else { at * 1000 }));
        }
    }
    Attempt {
        cli: Some(kind),
        texts,
        exit_code: exited.i64_field("exit_code").map(|c| c as i32),
        retry_after_secs,
        reset_at,
        utc_offset_secs: utc_offset_secs(),
    }
}

fn describe(change: &Change) -> String {
    let mut parts = Vec::new();
    if !change.add_args.is_empty() {
        parts.push(format!("{} added", change.add_args.join(" ")));
    }
    if !change.remove_args.is_empty() {
        parts.push(format!("{} removed", change.remove_args.join(" ")));
    }
    if !change.include_dirs.is_empty() {
        parts.push(format!(
            "--include-directories {}",
            change.include_dirs.join(",")
        ));
    }
    if change.safe_mode {
        parts
            .push("the safe permission mode (the sandbox's hooks decide) instead of bypass".into());
    }
    if change.trust_folder {
        parts.push("its folder trusted".into());
    }
    if parts.is_empty() {
        return "a new conversation (its own could not be resumed)".into();
    }
    parts.join(", ")
}

/// The first line of `text`, at most 200 characters: for event texts.
fn one_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    let mut out: String = line.chars().take(200).collect();
    if out.len() < line.len() {
        out.push('…');
    }
    out
}

/// This machine's offset from UTC now, in seconds (clock times the CLIs print are local).
fn utc_offset_secs() -> i64 {
    // SAFETY: time and localtime_r only write the tm we own.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    }
}

/// `notify-send` when the machine has one (a desktop session); silent otherwise. The
/// dashboard rings the bell and sends OSC 9 itself.
fn notify_desktop(title: &str, body: &str) {
    let _ = std::process::Command::new("notify-send")
        .arg(title)
        .arg(body)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(|mut child| std::thread::spawn(move || child.wait()));
}
