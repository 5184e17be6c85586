//! `orchestrate dashboard [SESSION] [--theme NAME]`: the full-screen console on a running or
//! finished session (default: the latest). Leaving it stops nothing.

use std::path::PathBuf;

use anyhow::Result;

use super::{follow, lookup};
use crate::config::Config;
use crate::session::{SessionDir, Workspace};
use crate::tui::run::{Exit, run_dashboard};
use crate::tui::theme::Theme;

pub fn dashboard(workspace: &Workspace, session: Option<&str>, theme: Option<&str>) -> Result<u8> {
    let session = lookup::session(workspace, session.unwrap_or("latest"))?;
    open(workspace, &session, theme)
}

/// Opens the dashboard on `session`. On leaving, the exit code follows the rules of
/// `--no-dashboard`: 0 done (or still running: it goes on), 1 failed, 3 stopped, 4 the
/// coordinator died; a signal gives 128 + its number.
pub fn open(workspace: &Workspace, session: &SessionDir, theme: Option<&str>) -> Result<u8> {
    let theme = load_theme(theme);
    match run_dashboard(workspace, session, theme)? {
        Exit::Left => {
            let (history, alive) = lookup::history(session);
            match history.state(alive.is_some()) {
                "interrupted" => {
                    println!(
                        "left the dashboard; the coordinator of {id} is gone: `orchestrate resume {id}` continues it",
                        id = session.id
                    );
                    Ok(follow::EXIT_INTERRUPTED)
                }
                outcome @ ("done" | "failed" | "stopped") if alive.is_none() => {
                    println!(
                        "left the dashboard; {}",
                        finished_result(session)
                            .unwrap_or_else(|| format!("session {} {outcome}", session.id))
                    );
                    Ok(follow::exit_code(outcome))
                }
                _ => {
                    println!(
                        "left the dashboard; session {id} goes on (`orchestrate dashboard {id}` reopens it)",
                        id = session.id
                    );
                    Ok(0)
                }
            }
        }
        Exit::Signalled(signal) => {
            eprintln!(
                "orchestrate: the dashboard was closed by a signal; session {} goes on",
                session.id
            );
            Ok(128u8.saturating_add(signal as u8))
        }
    }
}

/// The theme from --theme, else the configuration; a bad one is reported and the default used.
fn load_theme(flag: Option<&str>) -> Theme {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let configured = Config::load(&Config::default_files(&cwd, &env), &env)
        .map(|c| c.theme)
        .unwrap_or_else(|_| "default".into());
    let name = flag.map(str::to_string).unwrap_or(configured);
    let user_dirs: Vec<PathBuf> = Config::default_files(&cwd, &env)
        .into_iter()
        .filter_map(|f| f.parent().map(|d| d.join("themes")))
        .rev()
        .collect();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Theme::load(&name, &user_dirs, no_color).unwrap_or_else(|e| {
        eprintln!("orchestrate: {e}; using the default theme");
        std::thread::sleep(std::time::Duration::from_millis(1500));
        Theme::load("default", &[], no_color).unwrap_or_else(|_| Theme::default_theme())
    })
}

/// For a finished session: how it ended and where its result is.
fn finished_result(session: &SessionDir) -> Option<String> {
    let (events, _) = crate::event::read_journal(&session.orchestrator_journal()).ok()?;
    // The last end, unless the session was resumed after it.
    let finished = events
        .iter()
        .rev()
        .find(|e| matches!(e.phase(), Some("session_finished" | "resumed")))
        .filter(|e| e.phase() == Some("session_finished"))?;
    let result = events
        .iter()
        .rev()
        .find(|e| e.phase() == Some("result"))
        .map(|e| format!("\n{}", e.text()))
        .unwrap_or_default();
    Some(format!(
        "session {} {}{result}",
        session.id,
        finished.str_field("outcome").unwrap_or("finished")
    ))
}
