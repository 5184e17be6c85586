//! Each CLI's pre-tool hook, in its own words: the JSON it writes on the hook's stdin (read
//! here into the policy's `ToolCall`) and the answer it understands (written here from a
//! verdict). Claude and Codex speak `PreToolUse`, Gemini `BeforeTool`; see
//! research/real-cli/enforcement.md for the shapes as the pinned CLIs send and read them.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::AgentKind;
use crate::safety::ToolCall;

/// The tool call a hook's stdin describes. Unknown tools are `Other` (not the sandbox's
/// business); a shell tool without a command is an empty command, which the policy allows.
pub fn tool_call(input: &Value) -> ToolCall {
    let cwd = PathBuf::from(input["cwd"].as_str().unwrap_or("/"));
    let tool = input["tool_name"].as_str().unwrap_or("");
    let args = &input["tool_input"];
    let text = |key: &str| args[key].as_str().unwrap_or("").to_string();
    match tool {
        // Claude and Codex call their shell `Bash`. A command holding a patch envelope
        // (`apply_patch <<'EOF'`) is still a command: the policy reads both.
        "Bash" | "exec_command" | "shell" | "run_shell_command" => ToolCall::Shell {
            command: text("command"),
            cwd,
        },
        "apply_patch" => ToolCall::Patch {
            patch: [text("command"), text("input"), text("patch")].concat(),
            cwd,
        },
        "Write" | "Edit" | "MultiEdit" | "write_file" | "replace" => ToolCall::Write {
            path: PathBuf::from(text("file_path")),
            cwd,
        },
        "NotebookEdit" => ToolCall::Write {
            path: PathBuf::from(text("notebook_path")),
            cwd,
        },
        _ => ToolCall::Other,
    }
}

/// How the hook answers: what it prints on stdout, on stderr, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookAnswer {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Allowed: nothing said, exit 0 (the CLI goes on as it would; Codex accepts `allow` only
/// with a rewritten input, so silence is the one answer all three read as "go on").
pub fn allow() -> HookAnswer {
    HookAnswer {
        stdout: String::new(),
        stderr: String::new(),
        code: 0,
    }
}

/// Allowed out loud: Claude in a permission mode that would ask (the safe mode recovery uses
/// as root instead of bypass) runs the tool because the hook says so. The others: silence.
pub fn allow_explicitly(kind: AgentKind) -> HookAnswer {
    if kind != AgentKind::Claude {
        return allow();
    }
    let stdout = json!({"hookSpecificOutput": {
        "hookEventName": "PreToolUse",
        "permissionDecision": "allow",
        "permissionDecisionReason": "orchestrate sandbox: allowed by the session's policy",
    }});
    HookAnswer {
        stdout: format!("{stdout}\n"),
        stderr: String::new(),
        code: 0,
    }
}

/// Refused, with the reason the agent will read.
pub fn deny(kind: AgentKind, reason: &str) -> HookAnswer {
    let reason = format!("orchestrate sandbox: {reason}");
    let stdout = match kind {
        AgentKind::Gemini => json!({"decision": "deny", "reason": reason}),
        _ => json!({"hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": reason,
        }}),
    };
    HookAnswer {
        stdout: format!("{stdout}\n"),
        stderr: String::new(),
        code: 0,
    }
}

/// The hook itself could not decide (no coordinator, bad input): exit 2 with the reason on
/// stderr, which all three CLIs treat as a block. Never fail open.
pub fn fail_closed(reason: &str) -> HookAnswer {
    HookAnswer {
        stdout: String::new(),
        stderr: format!("orchestrate sandbox: {reason}\n"),
        code: 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_clis_hook_inputs_become_tool_calls() {
        // As captured from the pinned CLIs (research/real-cli/enforcement.md).
        let claude = json!({"session_id":"a","cwd":"/w","permission_mode":"bypassPermissions","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"rm -rf ./victim","description":"Remove victim"},"tool_use_id":"toolu_1"});
        assert_eq!(
            tool_call(&claude),
            ToolCall::Shell {
                command: "rm -rf ./victim".into(),
                cwd: "/w".into()
            }
        );
        let gemini = json!({"cwd":"/g","hook_event_name":"BeforeTool","tool_name":"write_file","tool_input":{"file_path":"/etc/x","content":"y"}});
        assert_eq!(
            tool_call(&gemini),
            ToolCall::Write {
                path: "/etc/x".into(),
                cwd: "/g".into()
            }
        );
        let patch = json!({"cwd":"/c","tool_name":"apply_patch","tool_input":{"command":"*** Begin Patch\n*** Add File: a\n*** End Patch"}});
        assert!(matches!(tool_call(&patch), ToolCall::Patch { .. }));
        assert_eq!(tool_call(&json!({"tool_name":"Read"})), ToolCall::Other);
    }

    #[test]
    fn each_cli_gets_its_own_deny_shape() {
        let claude = deny(AgentKind::Claude, "no");
        assert!(claude.stdout.contains("\"permissionDecision\":\"deny\""));
        assert!(claude.stdout.contains("orchestrate sandbox: no"));
        let gemini = deny(AgentKind::Gemini, "no");
        assert!(gemini.stdout.starts_with("{\"decision\":\"deny\""));
        assert_eq!(fail_closed("down").code, 2);
    }
}
