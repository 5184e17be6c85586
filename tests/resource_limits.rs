//! Resource limits per worker through the real binary: a tree over `memory_mb` is stopped
//! with that reason, a busy loop is held near `cpu_percent`, and the run time and command
//! time limits fire. The agents are plain commands speaking the `events` format.

mod common;

use std::time::Duration;

use common::{Env, journal, session_id, text, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

/// A project config with `[sandbox]` settings and one `events` agent running `script`.
fn agent(env: &Env, sandbox: &str, script: &str) -> std::path::PathBuf {
    std::fs::write(
        env.workspace.with_file_name("orchestrate.toml"),
        format!(
            "[sandbox]\n{sandbox}\n\n[agents.tool]\nkind = \"events\"\ncommand = [\"sh\", \"-c\", {script:?}]\n"
        ),
    )
    .unwrap();
    env.plan("[[tasks]]\nid = \"t\"\nagent = \"tool\"\nprompt = \"p\"\n")
}

#[test]
fn a_worker_over_its_memory_limit_is_stopped_with_that_reason() {
    let env = Env::new();
    // awk doubling a string past 300 MB holds it while it sleeps.
    let plan = agent(
        &env,
        "memory_mb = 100",
        r#"awk 'BEGIN { s = "x"; while (length(s) < 300000000) s = s s; system("sleep 30") }'"#,
    );
    let out = env.run(&plan, &["--retries", "0", "--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("over its memory limit of 100 MiB"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_busy_loop_is_held_near_its_cpu_share_and_status_shows_it() {
    let env = Env::new();
    let plan = agent(&env, "cpu_percent = 25", "while :; do :; done");
    let out = env.run(&plan, &[], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let mut samples = Vec::new();
    wait_for("six samples", LIMIT, || {
        if let Some(cpu) = env.status(&id)["workers"][0]["cpu_percent"].as_f64() {
            samples.push(cpu);
        }
        std::thread::sleep(Duration::from_millis(500));
        samples.len() >= 6
    });
    // Unthrottled it would take a whole CPU; the last samples are after the first period.
    let held: f64 = samples[3..].iter().sum::<f64>() / (samples.len() - 3) as f64;
    assert!(held < 60.0, "held near 25%: {samples:?}");
    let shown = env.cmd(&["status", &id]).output().unwrap();
    assert!(
        text(&shown).contains("limits   25% CPU"),
        "{}",
        text(&shown)
    );
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn run_time_and_command_time_limits_fire() {
    let env = Env::new();
    let plan = agent(&env, "runtime_secs = 1", "sleep 30");
    let out = env.run(&plan, &["--retries", "0", "--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("timed out after 1s"), "{}", text(&out));

    let env = Env::new();
    // It says it runs a command, runs it, and reports how it ended.
    let script = r#"echo '{"type":"progress","payload":{"kind":"command","item_id":"c1","command":"sleep 30","text":"$ sleep 30"}}'; sleep 30; echo '{"type":"progress","payload":{"kind":"command","item_id":"c1","command":"sleep 30","ok":false,"text":"sleep ended"}}'; echo '{"type":"milestone","payload":{"text":"done","final":true}}'"#;
    let plan = agent(&env, "command_timeout_secs = 1", script);
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = session_id(&out);
    let timeout = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .into_iter()
        .find(|e| e.phase() == Some("command_timeout"))
        .expect("the command's time limit fired");
    assert!(
        timeout.text().contains("`sleep 30` ran past its 1s"),
        "{}",
        timeout.text()
    );
}
