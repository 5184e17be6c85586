//! `orchestrate demo`: the event pipeline end to end with simulated agents, no keys needed.
//! Creates a session, runs one worker per CLI in parallel (each in its own PTY and run
//! directory), follows their journals with the tailer and prints every event as it lands.
//!
//! The coordinator (planning, dependencies, worktrees, the dashboard) will drive this later;
//! today the three tasks are fixed and independent.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use crate::agents::{AgentKind, LaunchSpec};
use crate::event::{AgentEvent, EventType, read_journal};
use crate::session::tailer::{DEFAULT_POLL, TailEvent, TailSpec, Tailer, jsonl_files};
use crate::session::{SessionDir, Store, Workspace};
use crate::timestamp::Timestamp;
use crate::worker::{Worker, WorkerSpec, WorkerStatus};

const GOAL: &str = "Add a /health endpoint to the service, with a design note and a review";

/// The demo's three tasks: (task id, agent, prompt).
const TASKS: [(&str, AgentKind, &str); 3] = [
    (
        "design",
        AgentKind::Gemini,
        "Write a short design note for a /health endpoint",
    ),
    (
        "implement",
        AgentKind::Claude,
        "Implement a /health endpoint that reports uptime",
    ),
    (
        "review",
        AgentKind::Codex,
        "Review the service for missing health checks",
    ),
];

pub fn run(workspace: &Workspace, speed: f64) -> Result<u8> {
    let exe = std::env::current_exe().context("cannot find the orchestrate executable")?;
    let target = std::env::temp_dir().join(format!("orchestrate-demo-{}", std::process::id()));
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    let session = workspace
        .create_session(
            GOAL,
            &target,
            json!({"demo": true, "speed": speed}),
            Timestamp::now(),
        )
        .context("cannot create the demo session")?;
    let store = Store::open(&workspace.db_path())?;
    store.insert_session(&session.read_info()?)?;
    store.set_session_state(
        &session.id,
        "running",
        Some(i64::from(std::process::id())),
        Timestamp::now(),
    )?;

    println!("session {}  ({})", session.id, session.path.display());
    println!("goal    {GOAL}\n");
    let exited = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tailer = follow(&session, Arc::clone(&exited), started)?;

    let mut workers = Vec::new();
    for (task, agent, prompt) in TASKS {
        let name = format!("{agent}-1");
        let workdir = session.run_dir(task);
        std::fs::create_dir_all(&workdir)
            .with_context(|| format!("cannot create {}", workdir.display()))?;
        let spec = LaunchSpec {
            program: vec![exe.display().to_string(), "sim".into(), agent.name().into()],
            prompt: prompt.into(),
            workdir: workdir.clone(),
            state_dir: session.path.join("state").join(&name),
            ..LaunchSpec::default()
        };
        let mut launch = agent.launch(&spec);
        launch
            .env
            .push(("ORCHESTRATE_SIM_SPEED".into(), speed.to_string()));
        // The simulated Claude, like the real one, refuses bypass mode as root without this.
        launch.env.push(("IS_SANDBOX".into(), "1".into()));
        let worker = Worker::spawn(
            WorkerSpec {
                name: name.clone(),
                agent,
                task: Some(task.into()),
                launch,
                events_path: session.events_path(&name),
                raw_path: session.raw_path(&name),
                rows: 40,
                cols: 120,
                first_seq: 0,
                stop_grace: Duration::from_secs(5),
            },
            None,
        )?;
        workers.push(worker);
    }
    for worker in &workers {
        worker.wait();
    }
    // The tailer sees each exit a moment after it is journaled; wait for all of them.
    let deadline = Instant::now() + Duration::from_secs(5);
    while exited.load(Ordering::SeqCst) < workers.len() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    tailer.stop();

    let all_done = summarize(&session)?;
    let state = if all_done { "done" } else { "failed" };
    store.set_session_state(&session.id, state, None, Timestamp::now())?;
    println!(
        "\nfiles the agents wrote are under {}",
        session.runs_dir().display()
    );
    Ok(if all_done { 0 } else { 1 })
}

/// Prints every journaled event as it arrives; counts worker exits.
fn follow(session: &SessionDir, exited: Arc<AtomicUsize>, started: Instant) -> Result<Tailer> {
    let spec = TailSpec {
        dirs: vec![session.events_dir()],
        accept: jsonl_files,
        poll: DEFAULT_POLL,
    };
    let tailer = Tailer::spawn(spec, move |event| {
        let TailEvent::Line { line, .. } = event else {
            return;
        };
        let Ok(event) = serde_json::from_slice::<AgentEvent>(&line) else {
            return;
        };
        if event.phase() == Some("exited") {
            exited.fetch_add(1, Ordering::SeqCst);
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{elapsed:6.1}s  {:<9} {:<9} {}",
            event.worker,
            event.kind,
            event.text()
        );
    })
    .context("cannot watch the session's journals")?;
    Ok(tailer)
}

/// One line per worker from its journal; true when every worker is done.
fn summarize(session: &SessionDir) -> Result<bool> {
    println!(
        "\n{:<10} {:<10} {:>8} {:>8} {:>9}",
        "worker", "state", "in tok", "out tok", "cost"
    );
    let mut all_done = true;
    for (_, agent, _) in TASKS {
        let name = format!("{agent}-1");
        let path = session.events_path(&name);
        let (events, _) =
            read_journal(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut status = WorkerStatus::default();
        events.iter().for_each(|e| status.observe(e));
        let last_final = events
            .iter()
            .rev()
            .find(|e| e.kind == EventType::Milestone && e.bool_field("final"));
        let usage = |key: &str| {
            last_final
                .and_then(|e| e.payload["usage"][key].as_u64())
                .unwrap_or(0)
        };
        let cost = last_final
            .and_then(|e| e.payload.get("cost_usd"))
            .and_then(|c| c.as_f64());
        let cost = cost.map_or("-".to_string(), |c| format!("${c:.4}"));
        println!(
            "{name:<10} {:<10} {:>8} {:>8} {cost:>9}",
            status.state(),
            usage("input_tokens"),
            usage("output_tokens")
        );
        all_done &= status.state() == crate::worker::WorkerState::Done;
    }
    Ok(all_done)
}
