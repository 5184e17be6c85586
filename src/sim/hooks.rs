//! The simulated CLIs' pre-tool hooks, run as the real ones run theirs (research/real-cli/
//! enforcement.md): Claude's `PreToolUse` from `--settings`, Codex's from `CODEX_HOME/hooks.json`
//! (only with `--dangerously-bypass-hook-trust`), Gemini's `BeforeTool` from its settings. The
//! hook gets the CLI's JSON on stdin; exit 2 or a JSON deny blocks; any other failure lets the
//! tool run, unless the hook says `onFailure: "block"` (Claude).

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct SimHook {
    /// Tool names, `|`-separated; empty or `*` for every tool.
    pub matcher: String,
    pub command: String,
    pub timeout: Duration,
    /// A crash or timeout blocks instead of letting the tool run.
    pub fail_closed: bool,
}

/// The hooks of `event` in a settings document (`{"hooks": {"PreToolUse": [...]}}`);
/// `timeout_in_ms` for Gemini, which counts its hook timeouts in milliseconds.
pub fn from_settings(settings: &Value, event: &str, timeout_in_ms: bool) -> Vec<SimHook> {
    let mut hooks = Vec::new();
    for group in settings["hooks"][event].as_array().into_iter().flatten() {
        let matcher = group["matcher"].as_str().unwrap_or("").to_string();
        for hook in group["hooks"].as_array().into_iter().flatten() {
            let Some(command) = hook["command"].as_str() else {
                continue;
            };
            let timeout = hook["timeout"]
                .as_u64()
                .map_or(Duration::from_secs(600), |t| {
                    if timeout_in_ms {
                        Duration::from_millis(t)
                    } else {
                        Duration::from_secs(t)
                    }
                });
            hooks.push(SimHook {
                matcher: matcher.clone(),
                command: command.to_string(),
                timeout,
                fail_closed: hook["onFailure"] == "block",
            });
        }
    }
    hooks
}

/// The settings document at `path`, or the JSON itself (Claude's `--settings` takes both).
pub fn read_settings(path_or_json: &str) -> Value {
    let text = if path_or_json.trim_start().starts_with('{') {
        path_or_json.to_string()
    } else {
        std::fs::read_to_string(Path::new(path_or_json)).unwrap_or_default()
    };
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Runs the hooks matching `tool`; the first that blocks says why.
pub fn check(hooks: &[SimHook], tool: &str, input: &Value) -> Option<String> {
    hooks
        .iter()
        .filter(|h| matches(&h.matcher, tool))
        .find_map(|h| run(h, input))
}

fn matches(matcher: &str, tool: &str) -> bool {
    matcher.is_empty() || matcher == "*" || matcher.split('|').any(|m| m == tool)
}

/// One hook: `Some(reason)` when it blocks.
fn run(hook: &SimHook, input: &Value) -> Option<String> {
    let failed = |why: String| hook.fail_closed.then_some(why);
    let mut child = match Command::new("sh")
        .arg("-c")
        .arg(&hook.command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return failed(format!("hook could not start: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.to_string().as_bytes());
    }
    let deadline = Instant::now() + hook.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return failed("timed out".into());
            }
        }
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut stdout);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    match status.code() {
        Some(2) if !stderr.trim().is_empty() => Some(stderr.trim().to_string()),
        Some(0) => {
            let answer: Value = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
            let specific = &answer["hookSpecificOutput"];
            if specific["permissionDecision"] == "deny" {
                return Some(
                    specific["permissionDecisionReason"]
                        .as_str()
                        .unwrap_or("denied")
                        .to_string(),
                );
            }
            if matches!(answer["decision"].as_str(), Some("deny" | "block")) {
                return Some(answer["reason"].as_str().unwrap_or("denied").to_string());
            }
            None
        }
        _ => failed(format!("hook failed: {}", stderr.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(command: &str, fail_closed: bool) -> SimHook {
        SimHook {
            matcher: "Bash|Write".into(),
            command: command.into(),
            timeout: Duration::from_secs(5),
            fail_closed,
        }
    }

    #[test]
    fn hooks_block_by_exit_2_or_json_and_fail_open_unless_told() {
        let input = json!({"tool_name": "Bash"});
        assert_eq!(
            check(&[hook("echo no >&2; exit 2", false)], "Bash", &input).as_deref(),
            Some("no")
        );
        let deny = r#"echo '{"hookSpecificOutput":{"permissionDecision":"deny","permissionDecisionReason":"nope"}}'"#;
        assert_eq!(
            check(&[hook(deny, false)], "Bash", &input).as_deref(),
            Some("nope")
        );
        let gemini = r#"echo '{"decision":"deny","reason":"g"}'"#;
        assert_eq!(
            check(&[hook(gemini, false)], "Write", &input).as_deref(),
            Some("g")
        );
        assert_eq!(
            check(&[hook("exit 1", false)], "Bash", &input),
            None,
            "fails open"
        );
        assert!(
            check(&[hook("exit 1", true)], "Bash", &input).is_some(),
            "onFailure block"
        );
        assert_eq!(
            check(&[hook(deny, false)], "Read", &input),
            None,
            "not matched"
        );
        assert_eq!(
            check(&[hook("cat >/dev/null; exit 0", false)], "Bash", &input),
            None
        );
    }

    #[test]
    fn settings_name_their_hooks() {
        let settings = json!({"hooks": {"BeforeTool": [{"matcher": "run_shell_command", "hooks": [
            {"type": "command", "command": "x", "timeout": 5000}]}]}});
        let hooks = from_settings(&settings, "BeforeTool", true);
        assert_eq!(hooks[0].timeout, Duration::from_secs(5));
        assert!(from_settings(&settings, "PreToolUse", false).is_empty());
    }
}
