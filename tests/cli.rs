//! The command line as a user meets it: `events normalize` and `sim`, through the real binary.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::binary;

fn run(args: &[&str], env: &[(&str, &str)], dir: &std::path::Path) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).current_dir(dir).stdin(Stdio::null());
    cmd.env("ORCHESTRATE_SIM_HOME", dir.join(".sim"));
    cmd.env_remove("IS_SANDBOX")
        .env_remove("GEMINI_CLI_TRUST_WORKSPACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn normalize_prints_events_and_reports_bad_lines_by_number() {
    let fixture = std::fs::canonicalize("tests/fixtures/codex-stream.jsonl").unwrap();
    let out = run(
        &[
            "events",
            "normalize",
            "--format",
            "codex",
            fixture.to_str().unwrap(),
        ],
        &[],
        std::path::Path::new("."),
    );
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 24);
    assert_eq!(events[0]["type"], "status");
    assert_eq!(events[0]["worker"], "worker");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("codex-stream.jsonl: line 3: not JSON, kept as a log line"),
        "{stderr}"
    );
    assert!(stderr.contains("line 22: not JSON"), "{stderr}");
    assert!(
        stderr.contains("28 lines, 24 events, 1 of unknown type ignored (thread.brand_new x1)"),
        "{stderr}"
    );
}

#[test]
fn normalize_reads_stdin_and_keeps_going_after_malformed_lines() {
    let mut child = Command::new(binary())
        .args([
            "events",
            "normalize",
            "--format",
            "gemini",
            "--worker",
            "g1",
            "--task",
            "t9",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"type\":\"init\",\"session_id\":\"s\"\n{\"type\":\"init\",\"session_id\":\"s2\",\"model\":\"m\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            last["payload"]["session_id"].as_str(),
            last["worker"].as_str(),
            last["task"].as_str()
        ),
        (Some("s2"), Some("g1"), Some("t9"))
    );
    assert!(
        text(&out.stderr).contains("<stdin>: line 1: malformed JSON"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn garbage_gets_twenty_line_reports_a_count_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let garbage: String = (0..100).map(|i| format!("not json {i}\n")).collect();
    std::fs::write(dir.path().join("g.txt"), garbage).unwrap();
    let out = run(
        &["events", "normalize", "--format", "codex", "g.txt"],
        &[],
        dir.path(),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches(": not JSON").count(), 20, "{stderr}");
    assert!(
        stderr.contains("100 not readable as JSON (80 more line reports not shown)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("g.txt: nothing usable: no line was a codex event (exit 2)"),
        "{stderr}"
    );
    // Empty input is nothing usable too; one good line is enough.
    let out = run(
        &["events", "normalize", "--format", "claude", "/dev/null"],
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(
        dir.path().join("one.jsonl"),
        "junk\n{\"type\":\"result\",\"subtype\":\"success\",\"result\":\"ok\"}\n",
    )
    .unwrap();
    let out = run(
        &["events", "normalize", "--format", "claude", "one.jsonl"],
        &[],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn an_unreadable_file_is_one_line_and_exit_1() {
    let out = run(
        &[
            "events",
            "normalize",
            "--format",
            "claude",
            "/no/such/file.jsonl",
        ],
        &[],
        std::path::Path::new("."),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "orchestrate: cannot read /no/such/file.jsonl: No such file or directory (os error 2)\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_sim_refuses_an_unknown_scenario() {
    // The argv cases of the real CLIs are in tests/sim_vs_real.rs.
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &["sim", "claude", "-p", "hi"],
        &[("ORCHESTRATE_SIM_SCENARIO", "explode")],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .starts_with("orchestrate sim: ORCHESTRATE_SIM_SCENARIO: unknown scenario \"explode\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn claude_bypass_as_root_needs_is_sandbox() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return; // The guard only exists for root; CI runs as root, so it is checked there.
    }
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "sim",
        "claude",
        "-p",
        "--dangerously-skip-permissions",
        "hi",
    ];
    let out = run(&args, &[("ORCHESTRATE_SIM_SPEED", "0")], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons\n"
    );
    let out = run(
        &args,
        &[("ORCHESTRATE_SIM_SPEED", "0"), ("IS_SANDBOX", "1")],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn gemini_reads_outside_its_workspace_only_with_include_directories() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("spec.md"), "the spec").unwrap();
    let work = tempfile::tempdir().unwrap();
    let prompt = format!("implement {}", outside.path().join("spec.md").display());
    let env = [
        ("ORCHESTRATE_SIM_SPEED", "0"),
        ("GEMINI_CLI_TRUST_WORKSPACE", "true"),
        ("GEMINI_API_KEY", "k"),
        ("ORCHESTRATE_SIM_HOME", "/nonexistent"),
    ];
    let base = [
        "sim",
        "gemini",
        "--output-format",
        "stream-json",
        "--prompt",
        prompt.as_str(),
    ];
    let out = run(&base, &env, work.path());
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    // 0.61's error type for it, with the text that names the path.
    assert!(
        stdout.contains("\"type\":\"invalid_tool_params\""),
        "{stdout}"
    );
    assert!(stdout.contains("Path not in workspace"), "{stdout}");

    let include = format!("--include-directories={}", outside.path().display());
    let mut args = base.to_vec();
    args.push(&include);
    let out = run(&args, &env, work.path());
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("Path not in workspace"));
    assert!(stdout.contains("the spec"), "the file was read");
}

#[test]
fn the_sims_one_document_and_text_modes_print_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("ORCHESTRATE_SIM_SPEED", "0"), ("IS_SANDBOX", "1")];
    let out = run(
        &["sim", "claude", "-p", "--output-format", "json", "go"],
        &env,
        dir.path(),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["type"].as_str(), doc["is_error"].as_bool()),
        (Some("result"), Some(false))
    );
    let out = run(
        &[
            "sim",
            "claude",
            "-p",
            "--verbose",
            "--output-format",
            "json",
            "go",
        ],
        &env,
        dir.path(),
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc.as_array().is_some_and(|a| a.len() > 5),
        "verbose json is an array of every message"
    );
    let out = run(
        &["sim", "codex", "exec", "--skip-git-repo-check", "go"],
        &env,
        dir.path(),
    );
    assert!(text(&out.stdout).starts_with("Done. I wrote notes/codex-go.md"));
}
