//! Every user-visible dashboard state as an insta snapshot of a TestBackend. The app is fed
//! only through `App::update`, with journal events and key presses, the same entry point the
//! terminal loop uses. Times are fixed, so nothing volatile reaches a snapshot.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use orchestrate::coordinator::control::{ControlCommand, ControlReply};
use orchestrate::event::{AgentEvent, EventType};
use orchestrate::timestamp::Timestamp;
use orchestrate::tui::app::{Action, App, Focus, Msg, OpenWith};
use orchestrate::tui::theme::Theme;
use orchestrate::tui::view;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::{Value, json};

const T0: i64 = 1_795_284_000_000; // 2026-11-21T18:00:00Z

fn ev(
    kind: EventType,
    worker: &str,
    agent: &str,
    task: Option<&str>,
    secs: i64,
    payload: Value,
) -> AgentEvent {
    AgentEvent {
        kind,
        agent: agent.into(),
        worker: worker.into(),
        task: task.map(Into::into),
        seq: 0,
        timestamp: Timestamp(T0 + secs * 1000),
        payload: payload.as_object().unwrap().clone().into(),
    }
}

fn coord(kind: EventType, task: Option<&str>, secs: i64, payload: Value) -> AgentEvent {
    ev(kind, "coordinator", "orchestrator", task, secs, payload)
}

fn app() -> App {
    App::new(
        "orch_20261121_180000",
        "Add a /health endpoint with a design note, tests and a review",
        Theme::default_theme(),
        Timestamp(T0),
    )
}

fn feed(app: &mut App, events: Vec<AgentEvent>) {
    for e in events {
        app.update(Msg::Event(e));
    }
}

fn key(app: &mut App, code: KeyCode) -> Vec<Action> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
        .0
}

fn render(app: &mut App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(f, app)).unwrap();
    terminal.backend().to_string()
}

/// A session with three workers at work: design running, tests running, implement pending.
fn three_running() -> App {
    let mut a = app();
    feed(
        &mut a,
        vec![
            coord(
                EventType::Status,
                None,
                0,
                json!({"phase": "session_started", "text": "session started", "tier": "tier 1 (gemini + claude + codex)"}),
            ),
            coord(
                EventType::Status,
                None,
                1,
                json!({"phase": "planned", "text": "planned 3 tasks"}),
            ),
            coord(
                EventType::Status,
                Some("design"),
                2,
                json!({"phase": "task_started", "text": "task design started: gemini-design (attempt 1)", "attempt": 1, "worker": "gemini-design"}),
            ),
            ev(
                EventType::Status,
                "gemini-design",
                "gemini",
                Some("design"),
                2,
                json!({"phase": "spawned", "text": "started gemini (pid 4242)", "pid": 4242}),
            ),
            ev(
                EventType::Status,
                "gemini-design",
                "gemini",
                Some("design"),
                3,
                json!({"phase": "init", "text": "session started (gemini-2.5-pro)"}),
            ),
            ev(
                EventType::Task,
                "gemini-design",
                "gemini",
                Some("design"),
                4,
                json!({"text": "todo 1/3: Write the note", "progress": 33}),
            ),
            ev(
                EventType::Progress,
                "gemini-design",
                "gemini",
                Some("design"),
                5,
                json!({"text": "write_file: notes/design.md", "kind": "tool_call"}),
            ),
            ev(
                EventType::Progress,
                "gemini-design",
                "gemini",
                Some("design"),
                6,
                json!({"text": "The endpoint reports status and uptime.", "kind": "message"}),
            ),
            coord(
                EventType::Status,
                Some("tests"),
                2,
                json!({"phase": "task_started", "text": "task tests started: codex-tests (attempt 1)", "attempt": 1, "worker": "codex-tests"}),
            ),
            ev(
                EventType::Status,
                "codex-tests",
                "codex",
                Some("tests"),
                2,
                json!({"phase": "spawned", "text": "started codex (pid 4243)", "pid": 4243}),
            ),
            ev(
                EventType::Task,
                "codex-tests",
                "codex",
                Some("tests"),
                7,
                json!({"text": "todo 2/3 done", "progress": 66}),
            ),
            ev(
                EventType::Progress,
                "codex-tests",
                "codex",
                Some("tests"),
                8,
                json!({"text": "$ cargo test health", "kind": "command"}),
            ),
            ev(
                EventType::Progress,
                "codex-tests",
                "codex",
                Some("tests"),
                9,
                json!({"text": "Adding a test for the uptime field.", "kind": "message"}),
            ),
            coord(
                EventType::Status,
                Some("implement"),
                10,
                json!({"phase": "task_started", "text": "task implement started: claude-implement (attempt 1)", "attempt": 1, "worker": "claude-implement"}),
            ),
            ev(
                EventType::Status,
                "claude-implement",
                "claude",
                Some("implement"),
                10,
                json!({"phase": "spawned", "text": "started claude (pid 4244)", "pid": 4244, "cwd": "/ws/orch_20261121_180000/runs/implement"}),
            ),
            ev(
                EventType::Progress,
                "claude-implement",
                "claude",
                Some("implement"),
                11,
                json!({"text": "Bash: cargo build", "kind": "tool_call"}),
            ),
        ],
    );
    a.update(Msg::Tick(Timestamp(T0 + 75_000)));
    a
}

fn assert_screen(name: &str, app: &mut App, width: u16, height: u16) {
    insta::assert_snapshot!(name, render(app, width, height));
}

#[test]
fn empty_session() {
    let mut a = app();
    feed(
        &mut a,
        vec![coord(
            EventType::Status,
            None,
            0,
            json!({"phase": "session_started", "text": "session started", "tier": "tier 1 (gemini + claude + codex)"}),
        )],
    );
    assert_screen("empty_session", &mut a, 120, 40);
}

#[test]
fn three_running_workers() {
    assert_screen("three_running_workers", &mut three_running(), 120, 40);
}

#[test]
fn paused_session() {
    let mut a = three_running();
    let actions = a
        .update(Msg::Key(KeyEvent::new(
            KeyCode::Char('P'),
            KeyModifiers::SHIFT,
        )))
        .0;
    assert!(
        matches!(&actions[..], [Action::Control(r)] if r.cmd == ControlCommand::Pause && r.worker.is_none())
    );
    a.update(Msg::Reply(ControlReply::done(
        "session paused; no new task starts (3 worker(s) stopped)",
    )));
    feed(
        &mut a,
        vec![
            coord(
                EventType::Control,
                None,
                70,
                json!({"phase": "control", "command": "pause", "took_effect": true, "text": "pause session: paused"}),
            ),
            ev(
                EventType::Status,
                "gemini-design",
                "gemini",
                Some("design"),
                70,
                json!({"phase": "paused", "text": "paused"}),
            ),
            ev(
                EventType::Status,
                "codex-tests",
                "codex",
                Some("tests"),
                70,
                json!({"phase": "paused", "text": "paused"}),
            ),
            ev(
                EventType::Status,
                "claude-implement",
                "claude",
                Some("implement"),
                70,
                json!({"phase": "paused", "text": "paused"}),
            ),
        ],
    );
    assert_eq!(a.state(), "paused");
    assert_screen("paused_session", &mut a, 120, 40);
}

#[test]
fn a_waiting_worker_stands_out() {
    let mut a = three_running();
    feed(
        &mut a,
        vec![ev(
            EventType::Blocker,
            "codex-tests",
            "codex",
            Some("tests"),
            12,
            json!({"text": "command refused: git push origin HEAD", "reason": "declined"}),
        )],
    );
    assert_eq!(a.workers[1].state().as_str(), "waiting");
    assert_screen("waiting_worker", &mut a, 120, 40);
}

#[test]
fn a_worker_retrying_its_api_says_so_in_its_pane() {
    let mut a = three_running();
    let retry = |seq, attempt| {
        ev(
            EventType::Status,
            "claude-implement",
            "claude",
            Some("implement"),
            seq,
            json!({"phase": "retrying", "text": format!("retrying ({attempt}/10): HTTP 529 overloaded"),
                   "attempt": attempt, "max_attempts": 10}),
        )
    };
    feed(&mut a, vec![retry(20, 1), retry(21, 2), retry(22, 3)]);
    assert_eq!(a.workers[2].state().as_str(), "retrying");
    assert_screen("retrying_worker", &mut a, 120, 40);
}

fn with_failed_implement(mut a: App) -> App {
    feed(
        &mut a,
        vec![
            ev(
                EventType::Error,
                "claude-implement",
                "claude",
                Some("implement"),
                20,
                json!({"text": "Reached maximum number of turns (2)", "fatal": true}),
            ),
            ev(
                EventType::Error,
                "claude-implement",
                "claude",
                Some("implement"),
                21,
                json!({"phase": "exited", "text": "exited with code 1", "exit_code": 1, "fatal": true}),
            ),
            coord(
                EventType::Error,
                Some("implement"),
                21,
                json!({"phase": "task_failed", "text": "task implement failed: Reached maximum number of turns (2)", "fatal": true}),
            ),
        ],
    );
    a
}

#[test]
fn a_failed_worker() {
    let mut a = with_failed_implement(three_running());
    assert_screen("failed_worker", &mut a, 120, 40);
}

#[test]
fn a_failed_task_runs_again_with_r_and_attach_to_it_is_refused_in_the_footer() {
    let mut a = with_failed_implement(three_running());
    render(&mut a, 120, 40);
    key(&mut a, KeyCode::Down);
    assert_eq!(a.selected, 2, "down goes to the card below");
    assert_screen("failed_worker_selected", &mut a, 120, 40);
    let actions = key(&mut a, KeyCode::Char('r'));
    assert!(
        matches!(&actions[..], [Action::Control(r)] if r.cmd == ControlCommand::Restart && r.worker.as_deref() == Some("claude-implement")),
        "{actions:?}"
    );
    let actions = key(&mut a, KeyCode::Char('e'));
    assert_eq!(
        actions,
        vec![Action::Open {
            program: OpenWith::Editor,
            dir: "/ws/orch_20261121_180000/runs/implement".into()
        }]
    );
    assert!(matches!(
        &key(&mut a, KeyCode::Char('o'))[..],
        [Action::Open {
            program: OpenWith::Shell,
            ..
        }]
    ));
    key(&mut a, KeyCode::Enter);
    assert!(
        key(&mut a, KeyCode::Char('a')).is_empty(),
        "no attach to a finished worker"
    );
    assert_screen("attach_refused", &mut a, 120, 40);

    // The coordinator gone: R resumes the session, r resumes it running the task again.
    key(&mut a, KeyCode::Esc);
    a.update(Msg::Liveness(false));
    assert_eq!(
        key(&mut a, KeyCode::Char('r')),
        vec![Action::Resume {
            retry: vec!["implement".into()]
        }]
    );
    assert_eq!(
        key(&mut a, KeyCode::Char('R')),
        vec![Action::Resume { retry: vec![] }]
    );
}

#[test]
fn the_grid_moves_as_drawn_and_tab_reaches_every_panel() {
    let mut a = three_running();
    render(&mut a, 120, 40);
    assert_eq!(a.grid_columns, 2);
    key(&mut a, KeyCode::Down);
    assert_eq!(a.selected, 2);
    key(&mut a, KeyCode::Char('k'));
    assert_eq!(a.selected, 0);
    key(&mut a, KeyCode::Char('l'));
    key(&mut a, KeyCode::Char('j'));
    assert_eq!(a.selected, 1, "nothing below the second card: it stays");
    key(&mut a, KeyCode::Up);
    assert_eq!(a.selected, 1, "nothing above the top row");
    let mut seen = Vec::new();
    for _ in 0..4 {
        key(&mut a, KeyCode::Tab);
        seen.push(a.focus);
    }
    assert_eq!(
        seen,
        [Focus::Log, Focus::Reviews, Focus::Decisions, Focus::Workers]
    );
    key(&mut a, KeyCode::BackTab);
    assert_eq!(a.focus, Focus::Decisions);
    key(&mut a, KeyCode::BackTab);
    assert_screen("reviews_focused", &mut a, 120, 40);
    // Narrow: the side panels take the log's place while focused.
    assert_screen("reviews_focused_narrow", &mut a, 80, 24);
}

#[test]
fn review_verdicts_and_decisions() {
    let mut a = three_running();
    feed(
        &mut a,
        vec![
            coord(
                EventType::Review,
                Some("design"),
                30,
                json!({"text": "review", "reviewer": "codex", "verdict": "approved", "summary": "The design covers status and uptime."}),
            ),
            coord(
                EventType::Review,
                Some("design"),
                31,
                json!({"text": "review", "reviewer": "claude", "verdict": "concern", "summary": "No timeout on the health probe."}),
            ),
        ],
    );
    assert_screen("review_verdicts", &mut a, 140, 40);
    feed(
        &mut a,
        vec![coord(
            EventType::Decision,
            None,
            32,
            json!({"text": "decision", "rule": "single concern", "action": "LOG_WARNING", "reason": "one reviewer raised a concern; continuing and watching"}),
        )],
    );
    assert_screen("decisions", &mut a, 140, 40);
}

#[test]
fn zoomed_transcript_and_pty_screen() {
    let mut a = three_running();
    key(&mut a, KeyCode::Enter);
    assert_screen("zoomed_transcript", &mut a, 120, 40);
    let actions = key(&mut a, KeyCode::Char('t'));
    assert_eq!(actions, vec![Action::WatchScreen("gemini-design".into())]);
    a.update(Msg::Raw {
        worker: "gemini-design".into(),
        bytes: b"\x1b[1mgemini\x1b[0m> thinking about /health\r\n$ ls\r\nsrc  Cargo.toml\r\n"
            .to_vec(),
    });
    assert_screen("zoomed_pty_screen", &mut a, 120, 40);
    assert_eq!(
        key(&mut a, KeyCode::Char('a')),
        vec![Action::Attach("gemini-design".into())]
    );
    key(&mut a, KeyCode::Esc);
    assert!(a.zoom.is_none());
}

#[test]
fn help_overlay() {
    let mut a = three_running();
    key(&mut a, KeyCode::Char('?'));
    assert_screen("help_overlay", &mut a, 120, 40);
    key(&mut a, KeyCode::Esc);
    assert!(a.overlay.is_none());
}

#[test]
fn filter_and_search() {
    let mut a = three_running();
    key(&mut a, KeyCode::Tab);
    for c in "/uptime".chars() {
        key(&mut a, KeyCode::Char(c));
    }
    assert_screen("search_typing", &mut a, 120, 40);
    key(&mut a, KeyCode::Enter);
    assert_screen("search_applied", &mut a, 120, 40);
    key(&mut a, KeyCode::Esc);
    key(&mut a, KeyCode::Char('t')); // first type: status
    key(&mut a, KeyCode::Char('t')); // progress
    assert_eq!(a.log_type, Some(EventType::Progress));
    assert_screen("type_filter", &mut a, 120, 40);
}

#[test]
fn the_stop_confirm_dialog() {
    let mut a = three_running();
    assert!(
        key(&mut a, KeyCode::Char('s')).is_empty(),
        "stop asks first"
    );
    assert_screen("confirm_dialog", &mut a, 120, 40);
    let actions = key(&mut a, KeyCode::Char('y'));
    assert!(
        matches!(&actions[..], [Action::Control(r)] if r.cmd == ControlCommand::Stop && r.worker.as_deref() == Some("gemini-design"))
    );
    key(&mut a, KeyCode::Char('S'));
    assert!(key(&mut a, KeyCode::Char('n')).is_empty(), "n cancels");
}

#[test]
fn terminal_sizes() {
    assert_screen("size_80x24", &mut three_running(), 80, 24);
    assert_screen("size_200x60", &mut three_running(), 200, 60);
    assert_screen("too_small", &mut three_running(), 30, 8);
}

#[test]
fn a_dead_coordinator_is_shown_plainly() {
    let mut a = three_running();
    a.update(Msg::Liveness(false));
    assert_eq!(a.state(), "interrupted");
    assert_screen("dead_coordinator", &mut a, 120, 40);
}

#[test]
fn keys_move_select_and_quit() {
    let mut a = three_running();
    key(&mut a, KeyCode::Down);
    key(&mut a, KeyCode::Char('l'));
    assert_eq!(a.selected, 2);
    key(&mut a, KeyCode::Right);
    assert_eq!(a.selected, 2, "selection stays on the last worker");
    let actions = key(&mut a, KeyCode::Char('p'));
    assert!(
        matches!(&actions[..], [Action::Control(r)] if r.cmd == ControlCommand::Pause && r.worker.as_deref() == Some("claude-implement"))
    );
    assert_eq!(key(&mut a, KeyCode::Char('q')), vec![Action::Quit]);
    assert_eq!(
        a.update(Msg::Key(KeyEvent::new(
            KeyCode::Char('c'),
            KeyModifiers::CONTROL
        )))
        .0,
        vec![Action::Quit]
    );
}

#[test]
fn the_log_is_one_timeline_whatever_order_files_arrive_in() {
    let mut a = app();
    feed(
        &mut a,
        vec![
            ev(
                EventType::Progress,
                "b",
                "codex",
                None,
                5,
                json!({"text": "five"}),
            ),
            ev(
                EventType::Progress,
                "a",
                "claude",
                None,
                2,
                json!({"text": "two"}),
            ),
            ev(
                EventType::Progress,
                "b",
                "codex",
                None,
                7,
                json!({"text": "seven"}),
            ),
            ev(
                EventType::Progress,
                "a",
                "claude",
                None,
                3,
                json!({"text": "three"}),
            ),
        ],
    );
    let texts: Vec<&str> = a.log.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["two", "three", "five", "seven"]);
}

#[test]
fn a_pending_approval_is_shown_and_answered_with_y_or_n() {
    let mut a = three_running();
    let requested = coord(
        EventType::Decision,
        Some("tests"),
        20,
        json!({"phase": "approval_requested", "text": "codex-tests waits for approval a1: git push origin main",
               "rule": "sandbox", "action": "confirm", "approval": "a1", "worker": "codex-tests",
               "what": "git push origin main",
               "reason": "`git push` needs the operator's approval (in `git push origin main`)"}),
    );
    let actions = a.update(Msg::Event(requested)).0;
    assert!(
        actions.is_empty(),
        "history older than a few seconds does not ring"
    );
    feed(
        &mut a,
        vec![ev(
            EventType::Blocker,
            "codex-tests",
            "codex",
            Some("tests"),
            20,
            json!({"phase": "approval_requested", "approval": "a1",
                   "text": "waiting for approval a1: git push origin main (orchestrate approve orch_20261121_180000 a1)"}),
        )],
    );
    key(&mut a, KeyCode::Right);
    assert_eq!(a.selected_approval().map(|x| x.id.as_str()), Some("a1"));
    assert_screen("pending_approval", &mut a, 120, 40);
    let actions = key(&mut a, KeyCode::Char('y'));
    assert!(
        matches!(&actions[..], [Action::Control(r)] if r.cmd == ControlCommand::Approve && r.data.as_deref() == Some("a1")),
        "{actions:?}"
    );
    assert!(matches!(
        &key(&mut a, KeyCode::Char('n'))[..],
        [Action::Control(r)] if r.cmd == ControlCommand::Deny
    ));
    feed(
        &mut a,
        vec![coord(
            EventType::Decision,
            Some("tests"),
            25,
            json!({"phase": "approval_answered", "text": "approval a1 approved by ops", "rule": "sandbox",
                   "action": "approved", "approval": "a1", "worker": "codex-tests", "reason": "by ops"}),
        )],
    );
    assert!(a.approvals.is_empty());
    assert_screen("approval_answered", &mut a, 120, 40);
}

#[test]
fn a_live_approval_rings_the_bell() {
    let mut a = three_running();
    a.update(Msg::Tick(Timestamp(T0 + 30_000)));
    let actions = a
        .update(Msg::Event(coord(
            EventType::Decision,
            None,
            29,
            json!({"phase": "approval_requested", "approval": "a2", "worker": "claude-implement",
                   "what": "npm publish", "reason": "needs approval", "rule": "sandbox", "action": "confirm"}),
        )))
        .0;
    assert_eq!(actions, vec![Action::Bell]);
}

#[test]
fn each_pane_shows_its_cpu_and_memory() {
    let mut a = three_running();
    let (_, changed) = a.update(Msg::Usage(
        [
            ("codex-tests".to_string(), (24.6, 118)),
            ("gemini-design".to_string(), (3.0, 240)),
        ]
        .into(),
    ));
    assert!(changed);
    let (_, again) = a.update(Msg::Usage(a.usage.clone()));
    assert!(!again, "the same sample draws nothing");
    assert_screen("worker_resources", &mut a, 120, 40);
}

/// Every journal of a session a real run wrote (`tests/fixtures/reviewed`: a review whose
/// blocker stopped the worker), fed in time order.
fn recorded_review_session() -> App {
    let dir = std::path::Path::new("tests/fixtures/reviewed");
    let mut events: Vec<AgentEvent> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .flat_map(|e| orchestrate::event::read_journal(&e.path()).unwrap().0)
        .collect();
    events.sort_by_key(|e| e.timestamp);
    let last = events.last().unwrap().timestamp;
    let mut a = App::new(
        "orch_20261202_113830_725c",
        "add a /health endpoint",
        Theme::default_theme(),
        last,
    );
    feed(&mut a, events);
    a.update(Msg::Tick(last));
    a
}

#[test]
fn a_reviews_blocker_fills_the_panels_and_raises_the_banner() {
    let mut a = recorded_review_session();
    assert!(a.escalation.is_some());
    assert_eq!(a.reviews.len(), 3, "one verdict per reviewer");
    assert_eq!(a.state(), "paused");
    assert_screen("review_escalation", &mut a, 160, 45);
}

#[test]
fn enter_on_a_review_shows_its_findings() {
    let mut a = recorded_review_session();
    for _ in 0..2 {
        key(&mut a, KeyCode::Tab);
    }
    assert_eq!(a.focus, Focus::Reviews);
    // The newest verdict first: gemini's blocker, with its two findings.
    key(&mut a, KeyCode::Enter);
    assert_screen("review_findings", &mut a, 160, 45);
    key(&mut a, KeyCode::Down);
    let screen = render(&mut a, 160, 45);
    assert!(screen.contains("Review r1 (2 of 3)"), "{screen}");
    key(&mut a, KeyCode::Esc);
    assert!(a.overlay.is_none());
}

#[test]
fn a_worker_paused_by_a_review_is_sent_its_concerns_with_c() {
    let mut a = three_running();
    let worker = a.workers[0].name.clone();
    feed(
        &mut a,
        vec![
            coord(
                EventType::Decision,
                None,
                40,
                json!({"text": "decision", "phase": "review_decision", "rule": 2,
                       "action": "pause_and_clarify", "worker": worker, "review": "r1",
                       "reason": "2 concerns among 2 verdicts"}),
            ),
            ev(
                EventType::Status,
                &worker,
                "gemini",
                None,
                41,
                json!({"text": "paused", "phase": "paused"}),
            ),
        ],
    );
    a.selected = 0;
    assert!(a.selected_awaits_clarify());
    let screen = render(&mut a, 140, 40);
    assert!(screen.contains("send the review's concerns"), "{screen}");
    let actions = key(&mut a, KeyCode::Char('c'));
    match actions.as_slice() {
        [Action::Control(request)] => {
            assert_eq!(request.cmd, ControlCommand::Clarify);
            assert_eq!(request.worker.as_deref(), Some(worker.as_str()));
        }
        other => panic!("{other:?}"),
    }
}

/// What a real (simulated) run wrote: codex relaunched without a removed flag, claude's login
/// failure held for the operator.
fn recorded_recovery_session() -> App {
    let dir = std::path::Path::new("tests/fixtures/recovered");
    let mut events: Vec<AgentEvent> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .flat_map(|e| orchestrate::event::read_journal(&e.path()).unwrap().0)
        .collect();
    events.sort_by_key(|e| e.timestamp);
    let last = events.last().unwrap().timestamp;
    let mut a = App::new(
        "orch_20261202_121212_482e",
        "add a /health endpoint",
        Theme::default_theme(),
        last,
    );
    feed(&mut a, events);
    a.update(Msg::Tick(last));
    a
}

#[test]
fn recovery_fills_the_decisions_and_a_held_task_raises_the_banner() {
    let mut a = recorded_recovery_session();
    assert!(a.held.contains_key("docs"), "{:?}", a.held);
    assert!(
        a.decisions
            .iter()
            .any(|d| d.action == "recovery: relaunch" && d.rule == "codex-removed-argument")
    );
    assert_screen("recovery_escalated", &mut a, 160, 40);
    // The task running again takes the banner down.
    feed(
        &mut a,
        vec![coord(
            EventType::Status,
            Some("docs"),
            0,
            json!({"phase": "task_restarted", "text": "task docs will run again"}),
        )],
    );
    assert!(a.held.is_empty());
}

#[test]
fn an_escalation_as_it_happens_rings_and_notifies_the_desktop() {
    let mut a = app();
    let actions = a
        .update(Msg::Event(coord(
            EventType::Recovery,
            Some("t"),
            0,
            json!({"phase": "recovery_escalated", "rule": "codex-unauthorized",
                   "fix": "run `codex login`, then resume the task", "text": "task t needs you"}),
        )))
        .0;
    assert!(actions.contains(&Action::Bell), "{actions:?}");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Notify(t) if t.contains("codex login"))),
        "{actions:?}"
    );
}

/// `n` workers of the three CLIs, each started, at work on a tool call, a few done.
fn crowd(n: usize) -> App {
    let mut a = app();
    let clis = ["claude", "codex", "gemini"];
    let mut events = vec![coord(
        EventType::Status,
        None,
        0,
        json!({"phase": "session_started", "text": "session started", "tier": "tier 1 (gemini + claude + codex)"}),
    )];
    for i in 0..n {
        let cli = clis[i % 3];
        let name = format!("{cli}-t{i:02}");
        let task = format!("t{i:02}");
        events.push(ev(
            EventType::Status,
            &name,
            cli,
            Some(&task),
            1,
            json!({"phase": "spawned", "text": format!("started {cli} (pid {})", 5000 + i), "pid": 5000 + i}),
        ));
        events.push(ev(
            EventType::Progress,
            &name,
            cli,
            Some(&task),
            2 + i as i64 % 7,
            json!({"text": format!("Bash: cargo test -p crate{i:02}"), "kind": "tool_call", "tool": "Bash"}),
        ));
        if i % 9 == 4 {
            events.push(ev(
                EventType::Status,
                &name,
                cli,
                Some(&task),
                20,
                json!({"phase": "exited", "text": "exited with code 0", "exit_code": 0}),
            ));
        }
    }
    feed(&mut a, events);
    a.update(Msg::Tick(Timestamp(T0 + 75_000)));
    a
}

#[test]
fn sixty_four_workers_are_a_scrolling_list_with_the_selected_one_beside_it() {
    let mut a = crowd(64);
    assert_screen("crowd_64_at_200x60", &mut a, 200, 60);
    // Moving down scrolls the list and the detail follows the selection.
    for _ in 0..40 {
        key(&mut a, KeyCode::Down);
    }
    assert_eq!(a.selected, 40);
    let screen = render(&mut a, 200, 60);
    assert!(screen.contains("Workers 41/64"), "{screen}");
    assert!(screen.contains("codex-t40 · codex · t40"), "{screen}");
}

#[test]
fn sixteen_workers_on_a_small_terminal_are_one_line_each() {
    let mut a = crowd(16);
    assert_screen("crowd_16_at_80x24", &mut a, 80, 24);
}

#[test]
fn durations_are_right_when_only_the_journals_tails_were_read() {
    let mut a = app();
    // The first lines of the journals: the session began 118 s before the tail's events, the
    // worker 100 s before.
    a.update(Msg::Origins(
        [
            ("coordinator".to_string(), Timestamp(T0 - 118_000)),
            ("claude-x".to_string(), Timestamp(T0 - 100_000)),
        ]
        .into(),
    ));
    feed(
        &mut a,
        vec![
            coord(
                EventType::Status,
                Some("x"),
                0,
                json!({"phase": "task_committed", "text": "task x: work committed"}),
            ),
            ev(
                EventType::Progress,
                "claude-x",
                "claude",
                Some("x"),
                0,
                json!({"text": "Bash: cargo test", "kind": "tool_call", "tool": "Bash"}),
            ),
        ],
    );
    a.update(Msg::Tick(Timestamp(T0 + 1_000)));
    let screen = render(&mut a, 140, 40);
    assert!(screen.contains("00:01:59"), "the session's age:\n{screen}");
    assert!(screen.contains("00:01:41"), "the worker's time:\n{screen}");
}

#[test]
fn totals_and_state_come_from_the_summary_when_the_tail_does_not_reach_back() {
    let mut a = app();
    let numbered = |kind, secs, seq, payload| {
        let mut e = ev(kind, "claude-x", "claude", Some("x"), secs, payload);
        e.seq = seq;
        e
    };
    let report = |input: u64, output: u64, cost: f64| json!({"text": "done", "final": true, "usage": {"input_tokens": input, "output_tokens": output}, "cost_usd": cost});
    // The worker's summary: 500 events so far, among them its spawn and a final report.
    let mut summary = orchestrate::worker::WorkerSummary::default();
    summary.observe(&numbered(
        EventType::Status,
        -300,
        0,
        json!({"phase": "spawned", "text": "started", "pid": 42, "cwd": "/w/x"}),
    ));
    summary.observe(&numbered(
        EventType::Milestone,
        -299,
        1,
        report(120_000, 3_000, 1.25),
    ));
    summary.next_seq = 500;
    a.update(Msg::Summaries([("claude-x".to_string(), summary)].into()));
    // The tail repeats the last event the summary counted, then goes on.
    let repeated = numbered(EventType::Milestone, 0, 499, report(120_000, 3_000, 1.25));
    let next = numbered(EventType::Milestone, 1, 500, report(1_000, 500, 0.25));
    feed(&mut a, vec![repeated, next]);
    let pane = &a.workers[0];
    assert_eq!(pane.counted.usage.input_tokens, 121_000);
    assert_eq!(pane.counted.usage.output_tokens, 3_500);
    assert!((pane.counted.usage.cost_usd - 1.5).abs() < 1e-9);
    assert_eq!(
        pane.counted.status.pid,
        Some(42),
        "from the spawned event the tail never saw"
    );
    a.update(Msg::Tick(Timestamp(T0 + 1_000)));
    let screen = render(&mut a, 140, 40);
    assert!(
        screen.contains("121.0k/3.5k"),
        "the totals on screen:\n{screen}"
    );
    assert!(
        screen.contains("00:05:01"),
        "the run's time from its spawn:\n{screen}"
    );
}

#[test]
fn a_worker_s_leases_show_in_its_pane_and_a_denied_write_in_the_decisions() {
    let mut a = three_running();
    let lease = |secs, phase: &str, worker: &str, extra: Value| {
        let mut payload = json!({"phase": phase, "rule": "lease", "worker": worker});
        payload
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        coord(EventType::Decision, Some("design"), secs, payload)
    };
    feed(
        &mut a,
        vec![
            lease(
                12,
                "lease_granted",
                "gemini-design",
                json!({"action": "grant", "path": "docs/health.md",
                "text": "gemini-design holds the lease on docs/health.md (token 1)"}),
            ),
            lease(
                13,
                "lease_granted",
                "gemini-design",
                json!({"action": "grant", "path": "src/health.rs",
                "text": "gemini-design holds the lease on src/health.rs (token 3)"}),
            ),
            lease(
                14,
                "lease_denied",
                "codex-tests",
                json!({"action": "deny", "path": "src/health.rs",
                "holder": "gemini-design",
                "reason": "src/health.rs is leased by gemini-design, another worker of this session, which keeps it",
                "text": "codex-tests may not write src/health.rs: leased by gemini-design"}),
            ),
        ],
    );
    assert_eq!(a.leases["gemini-design"].len(), 2);
    assert_screen("leases_in_a_pane", &mut a, 120, 40);
    // Released with its task: the pane no longer shows them.
    feed(
        &mut a,
        vec![lease(
            20,
            "lease_released",
            "gemini-design",
            json!({"action": "release",
            "paths": ["docs/health.md", "src/health.rs"], "text": "gemini-design released its leases"}),
        )],
    );
    assert!(a.leases.is_empty());
}

/// The screen as a full frame of `app` would draw it.
fn full_frame(app: &mut App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(f, app)).unwrap();
    terminal.backend().buffer().clone()
}

/// A second that moves only the running counters redraws their cells alone, and the screen is
/// then exactly the full frame of that second, in the cards, in the crowded list's detail and
/// after a full frame that follows.
#[test]
fn a_second_that_moves_only_the_clocks_redraws_their_cells_as_a_full_frame_would() {
    use orchestrate::tui::view::clocks::Shown;
    for (width, height) in [(200u16, 60u16), (120, 40)] {
        let mut a = three_running();
        a.update(Msg::Tick(Timestamp(T0 + 65_000)));
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        let mut shown = Shown::default();
        let full = |terminal: &mut Terminal<TestBackend>, a: &mut App, shown: &mut Shown| {
            shown.restore(terminal).unwrap();
            let frame = terminal.draw(|f| view::draw(f, a)).unwrap();
            shown.remember(&a.clock_spots, frame.buffer);
        };
        full(&mut terminal, &mut a, &mut shown);
        // The session's counter and each running worker's.
        assert!(a.clock_spots.len() >= 3, "{:?}", a.clock_spots);
        for second in [66, 67, 3_599, 3_600] {
            let (_, moved) = a.update(Msg::Tick(Timestamp(T0 + second * 1000)));
            assert!(moved);
            assert!(shown.draw_clocks(&mut terminal, &a).unwrap());
            assert_eq!(
                *terminal.backend().buffer(),
                full_frame(&mut a, width, height),
                "{width}x{height} at {second} s"
            );
        }
        // Something else changes: a full frame over the counters' cells is exact too.
        feed(
            &mut a,
            vec![ev(
                EventType::Progress,
                "gemini-design",
                "gemini",
                Some("design"),
                3_600,
                json!({"text": "Writing the uptime test", "kind": "message"}),
            )],
        );
        full(&mut terminal, &mut a, &mut shown);
        assert_eq!(
            *terminal.backend().buffer(),
            full_frame(&mut a, width, height)
        );
    }
    // Past 99:59:59 a counter is wider than its cells: a full frame is asked for.
    let mut a = three_running();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    let mut shown = Shown::default();
    let frame = terminal.draw(|f| view::draw(f, &mut a)).unwrap();
    shown.remember(&a.clock_spots, frame.buffer);
    a.update(Msg::Tick(Timestamp(T0 + 100 * 3_600_000)));
    assert!(!shown.draw_clocks(&mut terminal, &a).unwrap());
}
