//! The second line of defence: a worker's own stream, read for a tool call the policy forbids
//! that ran anyway (a hook that crashed, a CLI that skipped it). Pure: events in, the breach
//! out; the coordinator stops the worker.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use super::policy::{Decision, SandboxPolicy, ToolCall};
use crate::agents::FILE_WRITING_TOOLS;
use crate::event::{AgentEvent, EventType};

#[derive(Debug, Default)]
pub struct StreamWatch {
    /// Announced calls, by tool id, until their result says whether they ran.
    announced: HashMap<String, ToolCall>,
    /// Codex commands already judged (it reports a command when it starts and again when done).
    judged: BTreeSet<String>,
}

impl StreamWatch {
    /// The breach this event shows, if it shows a forbidden call that ran or is running;
    /// `cwd` is the worker's directory, for relative paths.
    pub fn observe(
        &mut self,
        event: &AgentEvent,
        cwd: &Path,
        policy: &SandboxPolicy,
    ) -> Option<String> {
        if event.kind != EventType::Progress {
            return None;
        }
        let id = event
            .str_field("tool_id")
            .or_else(|| event.str_field("item_id"))
            .unwrap_or("");
        let call = match event.str_field("kind") {
            Some("tool_call") => {
                let call = if let Some(command) = event.str_field("command") {
                    ToolCall::Shell {
                        command: command.to_string(),
                        cwd: cwd.to_path_buf(),
                    }
                } else if let (Some(path), true) = (
                    event.str_field("path"),
                    FILE_WRITING_TOOLS.contains(&event.str_field("tool").unwrap_or("")),
                ) {
                    ToolCall::Write {
                        path: PathBuf::from(path),
                        cwd: cwd.to_path_buf(),
                    }
                } else {
                    return None;
                };
                self.announced.insert(id.to_string(), call);
                return None;
            }
            // It ran: its result came back without an error.
            Some("tool_result") if event.bool_field("ok") => self.announced.remove(id)?,
            Some("tool_result") => {
                self.announced.remove(id);
                return None;
            }
            // Codex reports a command as it starts: it is running already.
            Some("command") => {
                if !self.judged.insert(id.to_string()) && !id.is_empty() {
                    return None;
                }
                ToolCall::Shell {
                    command: event.str_field("command")?.to_string(),
                    cwd: cwd.to_path_buf(),
                }
            }
            _ => return None,
        };
        let verdict = policy.evaluate(&call);
        (verdict.verdict == Decision::Deny).then_some(verdict.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::SandboxConfig;
    use crate::timestamp::Timestamp;
    use serde_json::{Value, json};

    fn progress(payload: Value) -> AgentEvent {
        AgentEvent {
            kind: EventType::Progress,
            agent: "claude".into(),
            worker: "w".into(),
            task: None,
            seq: 0,
            timestamp: Timestamp(0),
            payload: payload.as_object().unwrap().clone().into(),
        }
    }

    #[test]
    fn a_forbidden_call_that_ran_is_a_breach_one_that_was_refused_is_not() {
        let policy = SandboxPolicy::new(&SandboxConfig::default(), &[PathBuf::from("/w")]).unwrap();
        let cwd = Path::new("/w");
        let mut watch = StreamWatch::default();
        let call = |id: &str, command: &str| {
            progress(
                json!({"kind": "tool_call", "tool": "Bash", "tool_id": id, "command": command}),
            )
        };
        let result =
            |id: &str, ok: bool| progress(json!({"kind": "tool_result", "tool_id": id, "ok": ok}));
        assert_eq!(
            watch.observe(&call("1", "rm -rf x"), cwd, &policy),
            None,
            "announced only"
        );
        assert_eq!(
            watch.observe(&result("1", false), cwd, &policy),
            None,
            "refused: fine"
        );
        watch.observe(&call("2", "rm -rf x"), cwd, &policy);
        let breach = watch.observe(&result("2", true), cwd, &policy).unwrap();
        assert!(breach.contains("`rm -rf` is blocked"), "{breach}");
        watch.observe(&call("3", "ls"), cwd, &policy);
        assert_eq!(watch.observe(&result("3", true), cwd, &policy), None);
        let write = progress(
            json!({"kind": "tool_call", "tool": "Write", "tool_id": "4", "path": "/etc/x"}),
        );
        watch.observe(&write, cwd, &policy);
        assert!(watch.observe(&result("4", true), cwd, &policy).is_some());
        let codex = progress(
            json!({"kind": "command", "item_id": "i1", "command": "/bin/bash -lc 'dd if=a of=b'"}),
        );
        assert!(
            watch.observe(&codex, cwd, &policy).is_some(),
            "running already"
        );
        assert_eq!(watch.observe(&codex, cwd, &policy), None, "judged once");
    }
}
