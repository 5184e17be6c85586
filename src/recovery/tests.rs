//! Every shipped rule against the exact texts the real CLIs print (and the sim prints the
//! same: see tests/sim_vs_real.rs), the user rules' errors, and the reset-time reader.

use super::*;

fn rules() -> RecoveryRules {
    RecoveryRules::new(&RecoveryConfig::default()).unwrap()
}

fn attempt(cli: AgentKind, text: &str, exit_code: Option<i32>) -> Attempt {
    Attempt {
        cli: Some(cli),
        texts: vec!["starting".into(), text.to_string()],
        exit_code,
        ..Attempt::default()
    }
}

const NOW: Timestamp = Timestamp(1_796_212_800_000); // 2026-12-02 12:00:00 UTC

fn step(
    cli: AgentKind,
    text: &str,
    exit_code: Option<i32>,
    profile_args: &[&str],
) -> (String, Step) {
    let r = rules();
    let a = attempt(cli, text, exit_code);
    let d = r
        .detect(&a)
        .unwrap_or_else(|| panic!("no rule for {text:?}"));
    let args: Vec<String> = profile_args.iter().map(|s| s.to_string()).collect();
    let inside = |dir: &str| dir.starts_with("/work");
    (d.rule.name.clone(), r.plan(&d, &a, 0, NOW, &inside, &args))
}

fn relaunch(change: Change) -> Step {
    Step::Relaunch(change)
}

#[test]
fn each_known_launch_error_relaunches_with_the_fix() {
    use AgentKind::{Claude, Codex, Gemini};
    assert_eq!(
        step(
            Gemini,
            "Path not in workspace: Attempted path \"/work/shared/notes.md\" resolves outside the allowed workspace directories: /w/run or the project temp directory: /tmp/gemini/1234",
            None,
            &[]
        ),
        (
            "gemini-path-outside-workspace".into(),
            relaunch(Change {
                include_dirs: vec!["/work/shared".into()],
                ..Change::default()
            })
        )
    );
    let (name, outside) = step(
        Gemini,
        "Path not in workspace: Attempted path \"/etc/hosts\" resolves outside the allowed workspace directories",
        None,
        &[],
    );
    assert_eq!(name, "gemini-path-outside-workspace");
    assert!(matches!(outside, Step::Escalate { fix } if fix.contains("/etc/hosts")));
    // The old wording names the allowed directories, not the path: the operator decides.
    assert!(matches!(
        step(
            Gemini,
            "Path must be within one of the workspace directories: /w/run",
            None,
            &[]
        )
        .1,
        Step::Escalate { .. }
    ));
    assert_eq!(
        step(
            Codex,
            "Not inside a trusted directory and --skip-git-repo-check was not specified.",
            Some(1),
            &[]
        )
        .1,
        relaunch(Change {
            add_args: vec!["--skip-git-repo-check".into()],
            ..Change::default()
        })
    );
    assert_eq!(
        step(Claude, "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons", Some(1), &[]).1,
        relaunch(Change { safe_mode: true, ..Change::default() })
    );
    assert_eq!(
        step(
            Claude,
            "Error: When using --print, --output-format=stream-json requires --verbose",
            Some(1),
            &[]
        )
        .1,
        relaunch(Change {
            add_args: vec!["--verbose".into()],
            ..Change::default()
        })
    );
    assert_eq!(
        step(
            Codex,
            "error: unexpected argument '--full-auto' found",
            Some(2),
            &["--full-auto"]
        )
        .1,
        relaunch(Change {
            remove_args: vec!["--full-auto".into()],
            ..Change::default()
        })
    );
    // An argument orchestrate gave itself is not the profile's to drop.
    assert!(matches!(
        step(
            Codex,
            "error: unexpected argument '--json' found",
            Some(2),
            &[]
        )
        .1,
        Step::Escalate { .. }
    ));
    assert_eq!(
        step(Gemini, "Cannot use both --yolo (-y) and --approval-mode together. Use --approval-mode=yolo instead.", Some(1), &["--yolo"]).1,
        relaunch(Change { remove_args: vec!["--yolo".into()], ..Change::default() })
    );
    assert_eq!(
        step(Gemini, "Gemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`", Some(55), &[]).1,
        relaunch(Change { trust_folder: true, ..Change::default() })
    );
    // Exit 55 alone says it too.
    assert_eq!(
        step(Gemini, "something else", Some(55), &[]).0,
        "gemini-untrusted-folder"
    );
}

#[test]
fn logins_escalate_with_the_command_that_fixes_them() {
    use AgentKind::{Claude, Codex, Gemini};
    for (cli, text, code, command) in [
        (
            Claude,
            "Not logged in · Please run /login",
            Some(1),
            "claude /login",
        ),
        (
            Claude,
            "Invalid API key · Fix external API key",
            Some(1),
            "claude /login",
        ),
        (Gemini, "Invalid auth method selected.", Some(41), "gemini"),
        (
            Codex,
            "unexpected status 401 Unauthorized: Missing bearer or basic authentication in header",
            Some(1),
            "codex login",
        ),
    ] {
        match step(cli, text, code, &[]).1 {
            Step::Escalate { fix } => assert!(fix.contains(command), "{cli}: {fix}"),
            other => panic!("{cli} {text}: {other:?}"),
        }
    }
}

#[test]
fn limits_wait_for_their_reset_and_transient_errors_back_off() {
    use AgentKind::{Claude, Codex, Gemini};
    match step(
        Codex,
        "You've hit your usage limit. Try again in 5 minutes.",
        Some(1),
        &[],
    )
    .1
    {
        Step::RelaunchAt { at, .. } => assert_eq!(at.millis() - NOW.millis(), 301_000),
        other => panic!("{other:?}"),
    }
    match step(
        Claude,
        "Claude AI usage limit reached|1796216400",
        Some(1),
        &[],
    )
    .1
    {
        Step::RelaunchAt { at, .. } => assert_eq!(at.millis(), 1_796_216_401_000),
        other => panic!("{other:?}"),
    }
    // No reset time: a backoff.
    match step(
        Gemini,
        "[API Error: You have exhausted your daily quota on this model.]",
        Some(173),
        &[],
    )
    .1
    {
        Step::RelaunchAt { at, .. } => assert_eq!(at.millis() - NOW.millis(), 5_000),
        other => panic!("{other:?}"),
    }
    // A reset too far away escalates.
    assert!(matches!(
        step(
            Codex,
            "usage limit reached; try again in 30 hours",
            Some(1),
            &[]
        )
        .1,
        Step::Escalate { .. }
    ));
    assert_eq!(
        step(
            Codex,
            "We\u{2019}re currently experiencing high demand, which may cause temporary errors.",
            Some(1),
            &[]
        )
        .0,
        "transient-api-error"
    );
    match step(
        Claude,
        "API Error: 529 Overloaded. This is a server-side issue",
        Some(1),
        &[],
    )
    .1
    {
        Step::RelaunchAt { at, why } => {
            assert_eq!(at.millis() - NOW.millis(), 5_000);
            assert!(why.contains("try 1 of 2"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        step(Claude, "error_max_turns", Some(1), &[]).1,
        Step::Continue
    );
    assert!(matches!(
        step(
            Codex,
            "mkdir: cannot create directory 'x': Permission denied",
            Some(1),
            &[]
        )
        .1,
        Step::Escalate { .. }
    ));
}

#[test]
fn a_rule_past_its_budget_escalates_and_unknown_failures_are_not_recognised() {
    let r = rules();
    let a = attempt(
        AgentKind::Claude,
        "API Error: 500 Internal server error.",
        Some(1),
    );
    let d = r.detect(&a).unwrap();
    let inside = |_: &str| true;
    assert!(matches!(
        r.plan(&d, &a, 1, NOW, &inside, &[]),
        Step::RelaunchAt { .. }
    ));
    match r.plan(&d, &a, 2, NOW, &inside, &[]) {
        Step::Escalate { fix } => {
            assert!(fix.contains("transient-api-error already acted 2"), "{fix}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        r.detect(&attempt(AgentKind::Claude, "the tests fail", Some(1)))
            .is_none()
    );
    // The turn limit counts continuations, not the budget.
    let a = attempt(
        AgentKind::Claude,
        "Reached maximum number of turns (1)",
        Some(1),
    );
    let d = r.detect(&a).unwrap();
    assert_eq!(r.plan(&d, &a, 2, NOW, &inside, &[]), Step::Continue);
    assert!(matches!(
        r.plan(&d, &a, 3, NOW, &inside, &[]),
        Step::Escalate { .. }
    ));
    // A rule for one CLI does not fire for another.
    assert!(
        r.detect(&attempt(
            AgentKind::Claude,
            "Cannot use both --yolo (-y) and --approval-mode together",
            Some(1)
        ))
        .is_none()
    );
}

#[test]
fn user_rules_come_first_and_a_bad_one_is_one_clear_error() {
    let config = RecoveryConfig {
        rules: vec![RuleConfig {
            name: "flaky-proxy".into(),
            pattern: Some("proxy said no".into()),
            action: ActionName::Retry,
            ..RuleConfig::default()
        }],
        ..RecoveryConfig::default()
    };
    let r = RecoveryRules::new(&config).unwrap();
    let d = r
        .detect(&attempt(
            AgentKind::Codex,
            "the proxy said no (500)",
            Some(1),
        ))
        .unwrap();
    assert_eq!(d.rule.name, "flaky-proxy");
    let bad = RecoveryConfig {
        rules: vec![RuleConfig {
            name: "broken".into(),
            pattern: Some("(unclosed".into()),
            ..RuleConfig::default()
        }],
        ..RecoveryConfig::default()
    };
    let err = RecoveryRules::new(&bad).unwrap_err().to_string();
    assert!(
        err.starts_with("[[recovery.rules]] \"broken\": pattern \"(unclosed\" is not a regex"),
        "{err}"
    );
    let no_signature = RecoveryConfig {
        rules: vec![RuleConfig {
            name: "x".into(),
            ..RuleConfig::default()
        }],
        ..RecoveryConfig::default()
    };
    assert_eq!(
        RecoveryRules::new(&no_signature).unwrap_err().to_string(),
        "[[recovery.rules]] \"x\": needs a pattern or an exit_code"
    );
}

#[test]
fn changes_apply_to_the_profiles_arguments() {
    let mut c = Change {
        remove_args: vec!["--yolo".into()],
        ..Change::default()
    };
    c.merge(&Change {
        add_args: vec!["--verbose".into()],
        ..Change::default()
    });
    let args: Vec<String> = ["--yolo", "--model=x", "--verbose"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(c.apply_to_args(&args), ["--model=x", "--verbose"]);
}

#[test]
fn reset_times_are_read_in_every_spelling() {
    let after = |text: &str| reset_time(text, NOW, 0).map(|t| (t.millis() - NOW.millis()) / 1000);
    assert_eq!(after("try again in 5 minutes"), Some(300));
    assert_eq!(after("Suggested retry after 12s."), Some(12));
    assert_eq!(after("resets in 3h 20m"), Some(12_000));
    assert_eq!(after("limit reached|1796216400"), Some(3600));
    assert_eq!(after("try again at 3:04 PM"), Some(3 * 3600 + 4 * 60));
    // 11 am has passed today: tomorrow's.
    assert_eq!(after("resets at 11am"), Some(23 * 3600));
    assert_eq!(after("at 12:30"), Some(1800));
    assert_eq!(
        after("You've hit your limit \u{b7} resets 1pm (Europe/Berlin)"),
        Some(3600)
    );
    // 2026-12-02 is a Wednesday: Friday 9am is two days less three hours away.
    assert_eq!(
        after("You've hit your weekly limit \u{b7} resets Fri 9am (Asia/Tokyo)"),
        Some(2 * 86_400 - 3 * 3600)
    );
    assert_eq!(
        after("You\u{2019}ve hit your usage limit. Try again at 2:10 PM."),
        Some(2 * 3600 + 600)
    );
    // Local times: at UTC+1, 2pm local is 1pm UTC, an hour away.
    let local = reset_time("resets 2pm", NOW, 3600).map(|t| (t.millis() - NOW.millis()) / 1000);
    assert_eq!(local, Some(3600));
    // Printed during the minute it names: the end of that minute.
    assert_eq!(after("Try again at 12:00 PM."), Some(60));
    assert_eq!(after("tried 3 times"), None);
    assert_eq!(after("at 99:99"), None);
}

#[test]
fn gemini_retrying_an_exhausted_quota_is_a_limit() {
    // What a real gemini 0.61 says while it retries a 429 (seen through agent_unreachable).
    let text = "cannot reach its model API: still retrying (1/10): Resource has been exhausted (e.g. check quota). after 4s";
    assert_eq!(step(AgentKind::Gemini, text, None, &[]).0, "usage-limit");
}

#[test]
fn a_conversation_that_cannot_be_resumed_starts_over() {
    for (cli, text, code) in [
        (
            AgentKind::Claude,
            "No conversation found with session ID: 22222222-2222-4222-8222-222222222222",
            Some(1),
        ),
        (
            AgentKind::Codex,
            "Error: thread/resume: thread/resume failed: no rollout found for thread id 33333333-3333-4333-8333-333333333333 (code -32600)",
            Some(1),
        ),
        (
            AgentKind::Gemini,
            "Error resuming session: No previous sessions found for this project.",
            Some(42),
        ),
    ] {
        assert_eq!(
            step(cli, text, code, &[]),
            (
                "conversation-not-found".to_string(),
                relaunch(Change::default())
            ),
            "{cli:?}"
        );
    }
}
