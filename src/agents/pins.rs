//! The agent CLI versions orchestrate is tested against: `.ci/agent-clis.pins`, compiled in.
//! `doctor` compares what is installed with them; the simulated CLIs report them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::AgentKind;

const PINS: &str = include_str!("../../.ci/agent-clis.pins");

/// The npm package and tested version of `kind`'s CLI, e.g.
/// `("@openai/codex", "0.169.0")`.
pub fn pin(kind: AgentKind) -> Option<(&'static str, &'static str)> {
    let package = match kind {
        AgentKind::Claude => "@anthropic-ai/claude-code",
        AgentKind::Codex => "@openai/codex",
        AgentKind::Gemini => "@google/gemini-cli",
        AgentKind::Events => return None,
    };
    PINS.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once('@'))
        .find(|(name, _)| *name == package)
}

/// The first `x.y.z` in a `--version` answer (`2.1.330 (Claude Code)`, `codex-cli 0.169.0`).
pub fn version_in(text: &str) -> Option<&str> {
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == 'v')
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() >= 3
                && parts
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// Where `command`'s program is (resolved from `cwd` and PATH) and the version its
/// `--version` answers, each `None` when missing. A CLI that does not answer within 20 s has
/// no version.
pub fn installed(command: &[String], cwd: &Path) -> (Option<PathBuf>, Option<String>) {
    let path = command
        .first()
        .and_then(|c| crate::worker::spawn::resolve_program(c, cwd, None).ok());
    let version = path.as_ref().and_then(|_| {
        let output = run_with_timeout(command, "--version", Duration::from_secs(20))?;
        version_in(&output).map(str::to_string)
    });
    (path, version)
}

/// Runs `command arg`, returning what it printed, or `None` after `limit`.
fn run_with_timeout(command: &[String], arg: &str, limit: Duration) -> Option<String> {
    let (program, args) = command.split_first()?;
    let mut child = Command::new(program)
        .args(args)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take()?, &mut text).ok()?;
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cli_has_a_pin() {
        for kind in [AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini] {
            let (package, version) = pin(kind).unwrap();
            assert!(package.starts_with('@'), "{package}");
            assert_eq!(version_in(version), Some(version));
        }
        assert_eq!(pin(AgentKind::Events), None);
    }

    #[test]
    fn versions_are_found_in_each_cli_answer() {
        assert_eq!(version_in("2.1.330 (Claude Code)"), Some("2.1.330"));
        assert_eq!(version_in("codex-cli 0.169.0"), Some("0.169.0"));
        assert_eq!(version_in("0.61.0\n"), Some("0.61.0"));
        assert_eq!(version_in("v20.20.2"), Some("20.20.2"));
        assert_eq!(version_in("no version"), None);
    }
}
