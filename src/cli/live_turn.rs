//! One offline turn of each installed CLI, the way the coordinator runs it: the profile's argv
//! and environment, a private home, a real PTY, the adapter and the journal, against an
//! in-process stub model. Used by `doctor --live`, and by the script that records the real
//! CLIs' fixtures (`--keep` leaves the journals and the raw PTY bytes behind).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::agents::Autonomy;
use crate::config::AgentProfile;
use crate::coordinator::launch::{AgentSource, SCENARIO_VAR, WorkerLaunch};
use crate::event::{EventType, read_journal};
use crate::scenario::Scenario;
use crate::stub::{StubConfig, StubModel};
use crate::timestamp::Timestamp;
use crate::worker::{Worker, WorkerSpec, WorkerStatus};

/// The prompt of a live turn unless one is given.
const DEFAULT_PROMPT: &str = "Check that orchestrate can run you: write a short note.";

/// One CLI to try.
pub struct LiveTurn {
    /// The profile's name; also the worker's.
    pub name: String,
    pub profile: AgentProfile,
    /// Instead of the profile's own autonomy.
    pub autonomy: Option<Autonomy>,
}

/// How a live turn went.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveOutcome {
    pub passed: bool,
    /// Why it failed: the agent's own error, the exit, or the timeout. Empty on success.
    pub reason: String,
    pub seconds: f64,
    /// Requests the stub model answered for it.
    pub requests: usize,
}

/// Why a turn failed, in the agent's own words where it gave any: its last fatal error, else
/// its last error line, else how it exited; with the fix when the failure is a known one.
fn failure_reason(events: &[crate::event::AgentEvent]) -> String {
    let errors = || {
        events
            .iter()
            .rev()
            .filter(|e| e.kind == EventType::Error && e.phase() != Some("exited"))
    };
    let text = errors()
        .find(|e| e.bool_field("fatal"))
        .or_else(|| errors().next())
        .or_else(|| events.iter().rev().find(|e| e.phase() == Some("exited")))
        .map_or_else(|| "no result".to_string(), |e| e.text().to_string());
    if text.contains("cannot be used with root/sudo privileges") {
        return format!(
            "{text} (as root, add env = {{ IS_SANDBOX = \"1\" }} to [agents.claude] if this machine is a sandbox, or set autonomy = \"edit\")"
        );
    }
    text
}

/// Runs every turn at once against one stub playing `scenario`; files go under `keep` when
/// given (one folder per CLI), else into a scratch folder removed at the end.
pub fn run_all(
    turns: &[LiveTurn],
    scenario: Scenario,
    prompt: Option<&str>,
    keep: Option<&Path>,
    timeout: Duration,
) -> Result<Vec<(String, LiveOutcome)>> {
    let scratch = match keep {
        Some(dir) => dir.to_path_buf(),
        None => std::env::temp_dir().join(format!(
            "orchestrate-doctor-{}-{}",
            std::process::id(),
            Timestamp::now().millis()
        )),
    };
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;
    let log = scratch.join("stub-model.jsonl");
    let stub = StubModel::start(StubConfig {
        port: 0,
        scenario,
        log: Some(log.clone()),
    })
    .context("cannot start the stub model")?;
    let prompt = prompt.unwrap_or(DEFAULT_PROMPT);
    let outcomes = std::thread::scope(|scope| {
        let handles: Vec<_> = turns
            .iter()
            .map(|turn| {
                let dir = scratch.join(&turn.name);
                let addr = stub.addr();
                scope.spawn(move || one_turn(turn, scenario, prompt, &dir, addr, timeout))
            })
            .collect();
        handles
            .into_iter()
            .zip(turns)
            .map(|(h, turn)| {
                let outcome = h.join().unwrap_or_else(|_| {
                    Err(anyhow::anyhow!("the live turn of {} panicked", turn.name))
                });
                (turn.name.clone(), outcome)
            })
            .collect::<Vec<_>>()
    });
    let requests = std::fs::read_to_string(&log).unwrap_or_default();
    let result = outcomes
        .into_iter()
        .map(|(name, outcome)| {
            let mut outcome = outcome.unwrap_or_else(|e| LiveOutcome {
                passed: false,
                reason: format!("{e:#}"),
                seconds: 0.0,
                requests: 0,
            });
            let route = format!("\"worker\":\"{name}\"");
            outcome.requests = requests.lines().filter(|l| l.contains(&route)).count();
            (name, outcome)
        })
        .collect();
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(result)
}

fn one_turn(
    turn: &LiveTurn,
    scenario: Scenario,
    prompt: &str,
    dir: &Path,
    stub: std::net::SocketAddr,
    timeout: Duration,
) -> Result<LiveOutcome> {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    // A git repository, as a task's worktree is (Codex checks for one).
    let _ = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(&work)
        .status();
    let mut profile = turn.profile.clone();
    profile
        .env
        .insert(SCENARIO_VAR.into(), scenario.name().into());
    let launch = WorkerLaunch {
        profile: &profile,
        name: &turn.name,
        prompt,
        workdir: &work,
        extra_dirs: Vec::new(),
        autonomy: turn.autonomy.unwrap_or(profile.autonomy),
        commit_dirs: Vec::new(),
        resume: None,
        state_dir: dir.join("state"),
        source: AgentSource::Stub { addr: stub },
        guard: None,
        output_schema: None,
        mcp: None,
    }
    .build()?;
    let events_path = dir.join("events.jsonl");
    let spec = WorkerSpec {
        name: turn.name.clone(),
        agent: profile.kind,
        task: None,
        launch,
        events_path: events_path.clone(),
        raw_path: dir.join("raw.log"),
        rows: 40,
        cols: 120,
        first_seq: 0,
        stop_grace: Duration::from_secs(2),
        summary_path: None,
    };
    let started = Instant::now();
    let worker = Worker::spawn(spec, None)?;
    let timed_out = worker.wait_timeout(timeout).is_none();
    if timed_out {
        worker.kill();
    }
    let seconds = started.elapsed().as_secs_f64();
    let (events, _) = read_journal(&events_path).unwrap_or_default();
    let mut status = WorkerStatus::default();
    events.iter().for_each(|e| status.observe(e));
    let passed = !timed_out && status.reported_success() && status.state().as_str() == "done";
    let reason = if passed {
        String::new()
    } else if timed_out {
        format!("no result within {}s", timeout.as_secs())
    } else {
        failure_reason(&events)
    };
    Ok(LiveOutcome {
        passed,
        reason,
        seconds,
        requests: 0,
    })
}
