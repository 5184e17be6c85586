//! `orchestrate demo`: the whole product with simulated agents, on a fresh temporary git
//! repository, so a new user sees it work in one command with no keys and no agent CLI.
//! Its plan uses all three agents and runs two workers at once; those two both want to write
//! `docs/api.md`, so the demo shows a path lease, the conflict resolver and a denied write.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::run::{RunRequest, run};
use crate::session::Workspace;

pub const GOAL: &str =
    "Add a /health endpoint to the service, with a design note, tests and a review";

const PLAN: &str = r#"# The demo's plan: design and tests run at once; implement waits for the design; review waits for both.
[[tasks]]
id = "design"
title = "Design the endpoint"
agent = "gemini"
prompt = "Write a short design note for a /health endpoint: what it reports and how it is tested. Record the endpoint in `docs/api.md`."

[[tasks]]
id = "tests"
title = "Write the tests"
agent = "codex"
prompt = "Write tests for a /health endpoint that reports status and uptime. Record the tests in `docs/api.md`."

[[tasks]]
id = "implement"
title = "Implement the endpoint"
agent = "claude"
prompt = "Implement the /health endpoint following the design note."
depends_on = ["design"]

[[tasks]]
id = "review"
title = "Review the change"
agent = "codex"
prompt = "Review the implementation and the tests; report anything risky."
depends_on = ["implement", "tests"]
"#;

pub fn demo(workspace: &Workspace, speed: f64, no_dashboard: bool) -> Result<u8> {
    let root = std::env::temp_dir().join(format!(
        "orchestrate-demo-{}-{}",
        std::process::id(),
        crate::timestamp::Timestamp::now().millis()
    ));
    let target = root.join("service");
    std::fs::create_dir_all(&target)
        .with_context(|| format!("cannot create {}", target.display()))?;
    std::fs::write(
        target.join("README.md"),
        "# service\n\nA small web service.\n",
    )?;
    std::fs::write(
        target.join("app.py"),
        "def handle(path):\n    return 404, 'not found'\n",
    )?;
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=orchestrate demo",
            "-c",
            "user.email=demo@localhost",
            "commit",
            "-q",
            "-m",
            "A small web service",
        ],
    ] {
        git(&target, args)?;
    }
    let plan = root.join("demo-plan.toml");
    std::fs::write(&plan, PLAN)?;
    std::fs::write(root.join(super::housekeeping::DEMO_MARK), "")?;
    println!(
        "demo: simulated gemini, claude and codex on a fresh repository at {} (`orchestrate rm SESSION` or `orchestrate prune` removes it with the session)",
        target.display()
    );
    // The simulated reviewers' verdicts, read by the coordinator started below.
    if std::env::var_os("ORCHESTRATE_SIM_VERDICT_CODEX").is_none() {
        // SAFETY: set before this process starts any thread.
        unsafe { std::env::set_var("ORCHESTRATE_SIM_VERDICT_CODEX", "concern") };
    }
    let started = run(
        workspace,
        RunRequest {
            goal: GOAL.into(),
            target: Some(target),
            agents: None,
            plan_file: Some(plan),
            simulate: true,
            stub_model: false,
            // Without a terminal to draw on, the demo follows here.
            no_dashboard: no_dashboard || !is_terminal(),
            parallelism: None,
            retries: None,
            sim_speed: Some(speed),
            // The agents review each other: codex raises a concern (a warning), the others
            // approve.
            review: true,
        },
    );
    if started.is_err()
        && !workspace.session_ids().iter().any(|id| {
            workspace
                .open_session(id)
                .and_then(|s| s.read_info())
                .is_ok_and(|i| i.target.starts_with(&root))
        })
    {
        // No session was made: nothing will ever point at the repository.
        let _ = std::fs::remove_dir_all(&root);
    }
    started
}

fn is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::io::stdin().is_terminal()
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .context("the demo needs git, which was not found")?;
    if !status.success() {
        bail!("git {} failed in {}", args.join(" "), dir.display());
    }
    Ok(())
}
