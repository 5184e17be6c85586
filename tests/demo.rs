//! `orchestrate demo` end to end: a session on disk, three simulated agents in parallel PTYs,
//! their events printed as they land, the SQLite row updated.

mod common;

use std::process::Command;

use common::{binary, journal};
use orchestrate::session::{Store, Workspace};
use orchestrate::worker::{WorkerState, derive_state};

#[test]
fn the_demo_runs_three_agents_to_done_and_leaves_a_session_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .args([
            "--workspace",
            dir.path().to_str().unwrap(),
            "demo",
            "--speed",
            "0",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for worker in ["gemini-1", "claude-1", "codex-1"] {
        assert!(
            stdout.contains(&format!("{worker:<9} status    exited with code 0")),
            "{stdout}"
        );
    }
    assert_eq!(stdout.matches(" done ").count(), 3, "{stdout}");

    let workspace = Workspace::at(dir.path());
    let ids = workspace.session_ids();
    assert_eq!(ids.len(), 1);
    let session = workspace.open_session(&ids[0]).unwrap();
    for worker in ["gemini-1", "claude-1", "codex-1"] {
        assert_eq!(
            derive_state(&journal(&session.events_path(worker))),
            WorkerState::Done,
            "{worker}"
        );
        assert!(session.raw_path(worker).is_file());
    }
    for task in ["design", "implement", "review"] {
        assert!(
            session.run_dir(task).join("notes").is_dir(),
            "{task} wrote its notes"
        );
    }
    let row = Store::open(&workspace.db_path())
        .unwrap()
        .session(&ids[0])
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "done");
}
