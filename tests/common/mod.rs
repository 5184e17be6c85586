//! Helpers shared by the integration tests: the real binary, temporary session folders,
//! bounded waiting, and reading journals back.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestrate::agents::{AgentKind, Launch, LaunchSpec};
use orchestrate::event::{AgentEvent, EventType, read_journal};
use orchestrate::worker::WorkerSpec;

/// The `orchestrate` binary cargo built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_orchestrate"))
}

/// `orchestrate sim <cli>` as an agent program.
pub fn sim_program(cli: &str) -> Vec<String> {
    vec![binary().display().to_string(), "sim".into(), cli.into()]
}

/// Polls `check` until it holds or `limit` passes; a hang fails the test instead of blocking.
pub fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

pub fn journal(path: &Path) -> Vec<AgentEvent> {
    match read_journal(path) {
        Ok((events, bad)) => {
            assert!(bad.is_empty(), "unreadable journal lines: {bad:?}");
            events
        }
        Err(_) => Vec::new(),
    }
}

pub fn types(events: &[AgentEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.kind).collect()
}

pub fn phases(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e.phase().map(String::from))
        .collect()
}

/// A worker spec with its journals in `dir`, for `launch`.
pub fn worker_spec(dir: &Path, name: &str, agent: AgentKind, launch: Launch) -> WorkerSpec {
    WorkerSpec {
        name: name.into(),
        agent,
        task: Some("t1".into()),
        launch,
        events_path: dir.join("events").join(format!("{name}.jsonl")),
        raw_path: dir.join("raw").join(format!("{name}.log")),
        rows: 24,
        cols: 80,
        first_seq: 0,
        stop_grace: Duration::from_secs(2),
    }
}

/// The launch of a simulated agent in `workdir`, at full speed, playing `scenario`.
pub fn sim_launch(
    agent: AgentKind,
    workdir: &Path,
    prompt: &str,
    scenario: &str,
    speed: &str,
) -> Launch {
    let spec = LaunchSpec {
        program: sim_program(agent.name()),
        prompt: prompt.into(),
        workdir: workdir.to_path_buf(),
        state_dir: workdir.join(".state"),
        ..LaunchSpec::default()
    };
    let mut launch = agent.launch(&spec);
    launch
        .env
        .push(("ORCHESTRATE_SIM_SCENARIO".into(), scenario.into()));
    launch
        .env
        .push(("ORCHESTRATE_SIM_SPEED".into(), speed.into()));
    // The tests run as root on CI; Claude refuses bypass mode as root without this.
    launch.env.push(("IS_SANDBOX".into(), "1".into()));
    launch
}

/// Writes `dir/orchestrate.toml` with a custom agent profile, `echo`: it answers every line
/// it reads with a progress event "got <line>".
pub fn write_echo_agent(dir: &Path) {
    let script = r#"while read line; do echo "{\"type\":\"progress\",\"payload\":{\"text\":\"got $line\"}}"; done"#;
    let config =
        format!("[agents.echo]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {script:?}]\n");
    std::fs::write(dir.join("orchestrate.toml"), config).unwrap();
}

/// A plain command run through the `events` adapter.
pub fn command_launch(workdir: &Path, argv: &[&str]) -> Launch {
    Launch {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: workdir.to_path_buf(),
        ..Launch::default()
    }
}
