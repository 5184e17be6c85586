//! Bad input and bad luck through the real binary with simulated agents: hostile names, out of
//! range numbers, sessions started in the same second, racing resumes, a coordinator that
//! stops answering, and a coordinator crash that must not cost a task its retries.

mod common;

use std::time::Duration;

use common::{Env, hanging_session, journal, session_id, text, wait_for};

const LIMIT: Duration = Duration::from_secs(60);

fn one_line_error(out: &std::process::Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{expected}: {stderr}");
    assert!(stderr.contains(expected), "{expected}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn names_that_are_paths_are_refused_everywhere_and_nothing_is_written_outside() {
    let env = Env::new();
    let out = env.run(
        &env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n"),
        &["--no-dashboard"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    // The workspace's parent looks like a session: `..` must still not name it.
    let parent = env.workspace.parent().unwrap().to_path_buf();
    std::fs::write(parent.join("session.json"), "{}").unwrap();
    let before = listing(&parent);
    let cases: [&[&str]; 9] = [
        &["resume", ".."],
        &["coordinator", ".."],
        &["status", "../ws"],
        &["dashboard", ".."],
        &["logs", "..", "w"],
        &["logs", &id, "../../x"],
        &["attach", &id, "../x"],
        &["control", "/tmp", "pause"],
        &["kill", &id, "a/b"],
    ];
    for args in cases {
        let out = env.cmd(args).output().unwrap();
        one_line_error(&out, "is not a valid name");
    }
    assert_eq!(
        listing(&parent),
        before,
        "nothing written beside the workspace"
    );

    let profile = env.workspace.with_file_name("orchestrate.toml");
    std::fs::write(&profile, "[agents.\"../evil\"]\ncommand = [\"true\"]\n").unwrap();
    let out = env.run(
        &env.plan("[[tasks]]\nid = \"a\"\nprompt = \"p\"\n"),
        &[],
        &[],
    );
    one_line_error(&out, "agent profile \"../evil\" is not a valid name");
}

#[test]
fn numbers_from_flags_env_and_config_get_one_line_and_no_session() {
    let env = Env::new();
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n");
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 5] = [
        (
            &["--parallelism", "0"],
            &[],
            "--parallelism: 0 is out of range",
        ),
        (
            &["--retries", "1000"],
            &[],
            "--retries: 1000 is out of range",
        ),
        (
            &[],
            &[("ORCHESTRATE_TASK_TIMEOUT_SECS", "0")],
            "ORCHESTRATE_TASK_TIMEOUT_SECS=\"0\": 0 is out of range",
        ),
        (
            &[],
            &[("ORCHESTRATE_SIM_SPEED", "NaN")],
            "ORCHESTRATE_SIM_SPEED=\"NaN\": NaN is not a speed",
        ),
        (
            &[],
            &[("ORCHESTRATE_SIM_SPEED", "inf")],
            "inf is not a speed",
        ),
    ];
    for (args, vars, expected) in cases {
        one_line_error(&env.run(&plan, args, vars), expected);
    }
    assert!(
        !env.workspace.exists() || listing(&env.workspace).is_empty(),
        "no session was created"
    );
    let out = env.cmd(&["demo", "--speed", "nan"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("is not a speed"), "{}", text(&out));
    let out = env
        .cmd(&["control", "x", "pause", "--timeout", "-1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sessions_started_in_the_same_second_never_share_an_id_or_a_branch() {
    let env = Env::new();
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n");
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let mut cmd = env.cmd(&[
                "run",
                "--simulate",
                "--target",
                env.target.to_str().unwrap(),
                "--plan",
                plan.to_str().unwrap(),
                "--no-dashboard",
                "goal",
            ]);
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut ids = Vec::new();
    for child in starts {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        ids.push(session_id(&out));
    }
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{ids:?}");
    for id in &ids {
        assert!(id.starts_with("orch_") && id.len() == 25, "{id}");
    }
    let branches = std::process::Command::new("git")
        .arg("-C")
        .arg(&env.target)
        .args(["branch", "--list", "orchestrate/*"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&branches.stdout).lines().count(),
        3,
        "one branch per session"
    );
}

/// Kills the coordinator of a hanging session with SIGKILL and waits until it is gone.
fn crash_coordinator(env: &Env, id: &str) {
    let pid = env.status(id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: plain kill of a process this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the coordinator to be gone", LIMIT, || {
        env.status(id)["coordinator"]["alive"] == false
    });
}

#[test]
fn racing_resumes_start_one_coordinator_and_a_crash_costs_no_retry() {
    let env = Env::new();
    let (id, _) = hanging_session(&env);
    crash_coordinator(&env, &id);
    let resumes: Vec<_> = (0..2)
        .map(|_| {
            let mut cmd = env.cmd(&["resume", &id]);
            cmd.env("ORCHESTRATE_SIM_SCENARIO", "hang")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outs: Vec<_> = resumes
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let winners = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        winners,
        1,
        "exactly one resume wins: {}\n---\n{}",
        text(&outs[0]),
        text(&outs[1])
    );
    let loser = outs.iter().find(|o| !o.status.success()).unwrap();
    assert!(
        text(loser).contains("another coordinator") || text(loser).contains("is running"),
        "{}",
        text(loser)
    );
    wait_for("both tasks running again", LIMIT, || {
        let starts = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
            .into_iter()
            .filter(|e| e.phase() == Some("task_started"))
            .count();
        starts == 4
    });
    let attempts: Vec<i64> = journal(&env.session_dir(&id).join("orchestrator.jsonl"))
        .iter()
        .filter(|e| e.phase() == Some("task_started"))
        .filter_map(|e| e.i64_field("attempt"))
        .collect();
    assert_eq!(
        attempts,
        [1, 1, 1, 1],
        "the crash was not the tasks' failure: they run attempt 1 again"
    );
    let status = env.status(&id);
    for task in status["tasks"].as_array().unwrap() {
        assert_eq!(task["retries"], 0, "{task}");
    }
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

#[test]
fn a_request_the_client_gave_up_on_is_refused_not_applied_late() {
    let env = Env::new();
    let (id, _) = hanging_session(&env);
    let pid = env.status(&id)["coordinator"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: stopping and continuing a process this test started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let out = env
        .cmd(&["control", &id, "pause", "--timeout", "1"])
        .output()
        .unwrap();
    unsafe { libc::kill(pid, libc::SIGCONT) };
    one_line_error(&out, "did not answer within 1s");
    let journal_path = env.session_dir(&id).join("orchestrator.jsonl");
    wait_for("the late request to be refused", LIMIT, || {
        journal(&journal_path).iter().any(|e| {
            e.phase() == Some("control")
                && !e.bool_field("took_effect")
                && e.text().contains("expired")
        })
    });
    assert_eq!(
        env.status(&id)["state"],
        "running",
        "the pause was not applied"
    );
    let out = env
        .cmd(&["control", &id, "pause", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["ok"], true);
    assert!(env.cmd(&["kill", &id]).output().unwrap().status.success());
}

/// A tmpfs of `mb` MiB mounted at `path` for one test, unmounted when dropped; `None` where
/// this machine does not let us mount (not root, no CAP_SYS_ADMIN).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &std::path::Path, mb: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the filesystem of `dir` to the last byte; returns the filler to remove.
fn fill_disk(dir: &std::path::Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![7u8; 64 << 10];
    while file.write_all(&chunk).is_ok() {}
    while file.write_all(&[7u8]).is_ok() {}
    path
}

#[test]
fn a_full_disk_pauses_the_session_loses_nothing_and_resume_finishes_it() {
    let env = Env::new();
    let Some(_tmpfs) = Tmpfs::mount(&env.workspace, 8) else {
        eprintln!("SKIPPED a_full_disk_...: cannot mount a tmpfs here (needs root)");
        return;
    };
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n");
    let slow = [
        ("ORCHESTRATE_SIM_SCENARIO", "slow"),
        ("ORCHESTRATE_SIM_SPEED", "0.5"),
    ];
    let out = env.run(&plan, &[], &slow);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let events = env.session_dir(&id).join("events/claude-a.jsonl");
    wait_for("the worker to be under way", LIMIT, || {
        journal(&events).len() >= 4
    });
    let filler = fill_disk(&env.workspace);

    wait_for("the coordinator to pause the session", LIMIT, || {
        env.status(&id)["paused_for"].is_string()
    });
    let status = env.status(&id);
    assert_eq!(status["state"], "paused");
    assert_eq!(
        status["coordinator"]["alive"], true,
        "the coordinator lives"
    );
    assert!(
        status["paused_for"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{status}"
    );
    let shown = env.cmd(&["status", &id]).output().unwrap();
    assert!(
        text(&shown).contains("paused by the coordinator") && text(&shown).contains("resume"),
        "{}",
        text(&shown)
    );
    // Long enough for the story to end had it not been paused: nothing is settled meanwhile.
    std::thread::sleep(Duration::from_secs(4));
    assert_ne!(env.status(&id)["tasks"][0]["state"], "succeeded");
    let refused = env.cmd(&["control", &id, "resume"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("still cannot be written"),
        "{}",
        text(&refused)
    );

    std::fs::remove_file(filler).unwrap();
    let resumed = env.cmd(&["control", &id, "resume"]).output().unwrap();
    assert!(resumed.status.success(), "{}", text(&resumed));
    wait_for("the session to finish", LIMIT, || {
        env.status(&id)["state"] == "done"
    });
    for path in [events, env.session_dir(&id).join("orchestrator.jsonl")] {
        let seqs: Vec<u64> = journal(&path).iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{}: no event lost or torn", path.display());
    }
    let phases = common::phases(&journal(&env.session_dir(&id).join("orchestrator.jsonl")));
    assert!(phases.iter().any(|p| p == "disk_recovered"), "{phases:?}");
}

#[test]
fn a_full_or_read_only_workspace_still_reads_and_a_failed_run_leaves_nothing() {
    let env = Env::new();
    let Some(_tmpfs) = Tmpfs::mount(&env.workspace, 8) else {
        eprintln!("SKIPPED a_full_or_read_only_...: cannot mount a tmpfs here (needs root)");
        return;
    };
    let plan = env.plan("[[tasks]]\nid = \"a\"\nagent = \"claude\"\nprompt = \"p\"\n");
    let out = env.run(&plan, &["--no-dashboard"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let sessions = |env: &Env| {
        listing(&env.workspace)
            .into_iter()
            .filter(|n| n.starts_with("orch_"))
            .count()
    };
    let reads = |env: &Env| {
        for args in [
            vec!["status"],
            vec!["status", id.as_str()],
            vec!["logs", id.as_str(), "claude-a"],
        ] {
            let out = env.cmd(&args).output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", text(&out));
        }
    };

    let filler = fill_disk(&env.workspace);
    reads(&env);
    let out = env.run(&plan, &[], &[]);
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(sessions(&env), 1, "no half-created session on a full disk");
    std::fs::remove_file(filler).unwrap();

    let remount = |mode: &str| {
        assert!(
            std::process::Command::new("mount")
                .args(["-o", &format!("remount,{mode}")])
                .arg(&env.workspace)
                .status()
                .unwrap()
                .success()
        );
    };
    remount("ro");
    reads(&env);
    let out = env.run(&plan, &[], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    remount("rw");
    assert_eq!(sessions(&env), 1);
}
