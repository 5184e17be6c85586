//! Helpers shared by the integration tests: the real binary, temporary session folders,
//! bounded waiting, and reading journals back.
#![allow(dead_code)]

pub mod redis;
pub mod tmux;

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
        summary_path: Some(dir.join("summaries").join(format!("{name}.json"))),
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
    // The tests run as root on CI; Claude refuses bypass mode as root without this, and
    // Gemini wants an auth method.
    launch.env.push(("IS_SANDBOX".into(), "1".into()));
    launch
        .env
        .push(("GEMINI_API_KEY".into(), "orchestrate-sim".into()));
    launch.env.push((
        "ORCHESTRATE_SIM_HOME".into(),
        workdir.join(".state").join("sim").display().to_string(),
    ));
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

/// A workspace, a target git repository with one commit, and a home of its own, for driving
/// the real binary: with simulated agents, or with the real pinned CLIs against the stub model.
pub struct Env {
    _dir: tempfile::TempDir,
    pub workspace: PathBuf,
    pub target: PathBuf,
    /// `HOME` of every command: the operator's own configuration is never read.
    pub home: PathBuf,
    /// The pinned CLIs' directory when the agents are real.
    real: Option<PathBuf>,
}

/// A test that fails (or holds a session for the operator) must not leave its coordinators and
/// their agents running: they would slow every test after it. Each session still alive is
/// killed when the env goes.
impl Drop for Env {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.workspace) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let lock = entry.path().join("coordinator.lock");
            if id.starts_with("orch_") && orchestrate::coordinator::lock::holder(&lock).is_some() {
                let _ = self.cmd(&["kill", &id]).output();
            }
        }
    }
}

impl Env {
    /// Simulated agents (`run --simulate`).
    pub fn new() -> Env {
        Env::with_agents(None)
    }

    /// The real pinned CLIs against the stub model (`run --stub-model`), cut off from every
    /// network but loopback when the machine allows it.
    pub fn real(clis: PathBuf) -> Env {
        let env = Env::with_agents(Some(clis));
        // Claude refuses bypass mode as root unless told the machine is a sandbox; the tests
        // run as root on CI, in a throwaway directory.
        let config = env.home.join(".config").join("orchestrate");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("orchestrate.toml"),
            "[agents.claude]\nenv = { IS_SANDBOX = \"1\" }\n",
        )
        .unwrap();
        env
    }

    fn with_agents(real: Option<PathBuf>) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let workspace = dir.path().join("ws");
        let target = dir.path().join("repo");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(target.join("README.md"), "# repo\n").unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "commit",
                "-q",
                "-m",
                "init",
            ],
        ] {
            assert!(
                std::process::Command::new("git")
                    .arg("-C")
                    .arg(&target)
                    .args(args)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        Env {
            _dir: dir,
            workspace,
            target,
            home,
            real,
        }
    }

    /// `orchestrate --workspace WS ARGS`, fast pacing, this env's home and agents.
    pub fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = match &self.real {
            Some(_) => offline(&binary()),
            None => std::process::Command::new(binary()),
        };
        cmd.arg("--workspace")
            .arg(&self.workspace)
            .args(args)
            .stdin(std::process::Stdio::null())
            .current_dir(self.workspace.parent().unwrap());
        cmd.env("ORCHESTRATE_SIM_SPEED", "0")
            .env("ORCHESTRATE_RETRY_BACKOFF_MS", "50")
            .env("HOME", &self.home)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("ORCHESTRATE_SIM_SCENARIO");
        if let Some(clis) = &self.real {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{}:{path}", clis.display()));
        }
        cmd
    }

    pub fn plan(&self, toml: &str) -> PathBuf {
        let path = self.workspace.with_file_name("plan.toml");
        std::fs::write(&path, toml).unwrap();
        path
    }

    /// `run --simulate|--stub-model --plan ...` with extra arguments; returns the output.
    pub fn run(&self, plan: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mode = if self.real.is_some() {
            "--stub-model"
        } else {
            "--simulate"
        };
        let mut args = vec![
            "run",
            mode,
            "--target",
            self.target.to_str().unwrap(),
            "--plan",
            plan.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args.push("build the thing");
        let mut cmd = self.cmd(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    pub fn status(&self, session: &str) -> serde_json::Value {
        let out = self.cmd(&["status", session, "--json"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn session_dir(&self, session: &str) -> PathBuf {
        self.workspace.join(session)
    }
}

/// A session of two simulated workers (claude x, codex y) that hang, each with a child
/// `sleep`; returns its id and the workers' pids once all are up.
pub fn hanging_session(env: &Env) -> (String, Vec<i32>) {
    let plan = env.plan("[[tasks]]\nid = \"x\"\nagent = \"claude\"\nprompt = \"p\"\n\n[[tasks]]\nid = \"y\"\nagent = \"codex\"\nprompt = \"q\"\n");
    let out = env.run(&plan, &[], &[("ORCHESTRATE_SIM_SCENARIO", "hang")]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let mut pids = Vec::new();
    wait_for(
        "two workers with their children",
        Duration::from_secs(60),
        || {
            let status = env.status(&id);
            pids = status["workers"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|w| w["pid"].as_i64())
                .map(|p| p as i32)
                .collect();
            pids.len() == 2
                && pids.iter().all(|p| {
                    orchestrate::worker::process::group_members(*p)
                        .iter()
                        .any(|m| m.name == "sleep")
                })
        },
    );
    (id, pids)
}

pub fn session_id(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("session "))
        .unwrap_or_else(|| {
            panic!(
                "no session line in {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    line.split_whitespace().nth(1).unwrap().to_string()
}

pub fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The pinned agent CLIs' directory, if `.ci/install-agent-clis` (or `ORCHESTRATE_AGENT_CLIS`)
/// provides all three.
pub fn agent_clis() -> Option<PathBuf> {
    let dir = std::env::var_os("ORCHESTRATE_AGENT_CLIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".agent-clis/node_modules/.bin")
        });
    ["claude", "codex", "gemini"]
        .iter()
        .all(|cli| dir.join(cli).is_file())
        .then_some(dir)
}

/// The pinned CLIs for a test that needs them. Without them the test says it is skipped and
/// returns `None`; under `CI=true` their absence fails it.
pub fn require_agent_clis(test: &str) -> Option<PathBuf> {
    if let Some(dir) = agent_clis() {
        return Some(dir);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "{test}: the pinned agent CLIs are not installed, and CI must run the real-CLI tests (.ci/run installs them with .ci/install-agent-clis)"
        );
    }
    eprintln!(
        "SKIPPED {test}: the pinned agent CLIs are not installed (run .ci/install-agent-clis)"
    );
    None
}

/// A command for `program` that sees only the loopback network (`unshare -n`, then `lo` up),
/// when this machine allows it (root, util-linux, iproute2); otherwise a plain command. The
/// stub model is on 127.0.0.1 either way, and nothing else is ever contacted.
pub fn offline(program: &Path) -> std::process::Command {
    static CAN_UNSHARE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let can = *CAN_UNSHARE.get_or_init(|| {
        std::process::Command::new("unshare")
            .args(["-n", "--", "ip", "link", "set", "lo", "up"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if !can {
        return std::process::Command::new(program);
    }
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "-n",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
    ])
    .arg(program);
    cmd
}

/// `cmd` as one line for `sh -c` (a tmux pane): its directory, environment and arguments.
pub fn shell_line(cmd: &std::process::Command) -> String {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_string_lossy().replace('\'', r"'\''"));
    let mut line = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        line.push_str(&format!("cd {} && ", quote(dir.as_os_str())));
    }
    line.push_str("env");
    // env takes its options (-u) before the assignments.
    for (key, _) in cmd.get_envs().filter(|(_, v)| v.is_none()) {
        line.push_str(&format!(" -u {}", key.to_string_lossy()));
    }
    for (key, value) in cmd.get_envs() {
        if let Some(v) = value {
            line.push_str(&format!(" {}={}", key.to_string_lossy(), quote(v)));
        }
    }
    line.push(' ');
    line.push_str(&quote(cmd.get_program()));
    for arg in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    line
}

/// What identifies a worker's processes, from its journal: its pid and mark.
pub fn worker_procs(events: &[AgentEvent]) -> Option<orchestrate::worker::process::WorkerProcs> {
    let spawned = events.iter().rev().find(|e| e.phase() == Some("spawned"))?;
    Some(orchestrate::worker::process::WorkerProcs {
        leader: spawned.i64_field("pid")? as i32,
        mark: spawned.str_field("mark").map(str::to_string),
    })
}

/// The stub model's request log of a session, one JSON object per request.
pub fn stub_log(session_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(session_dir.join("stub-model.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
