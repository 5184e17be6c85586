//! Gemini CLI (`gemini -p ... --output-format stream-json`): argv and JSONL parser (formats
//! doc §3; mapping table §3.12). Workspace-path and policy denials are blockers that name the
//! path, so recovery can relaunch with `--include-directories`.

use serde_json::{Value, json};

use super::draft::{
    Draft, one_line, owned_str, plain_usage, reported_event, str_of, tail_excerpt, take, text_line,
};
use super::stream_state::{PendingTools, TextDeltas};
use super::todo::{Todo, TodoList};
use super::{Adapter, Autonomy, Launch, LaunchSpec, ORCH_MCP_SERVER, Parsed, REPORT_TOOL};
use crate::event::EventType;
use crate::worker::state::ExitFacts;

/// Messages of a tool call refused because a path lies outside the workspace, by version (§3.8).
pub const PATH_NOT_IN_WORKSPACE_MARKERS: [&str; 5] = [
    "Path not in workspace",
    "must be within one of the workspace directories",
    "not within any workspace director",
    "not within any of the registered workspace director",
    "is outside the workspace",
];

pub fn launch(spec: &LaunchSpec) -> Launch {
    let mut l = Launch::new(spec);
    l.args(["--output-format", "stream-json"]);
    l.arg(match spec.autonomy {
        Autonomy::ReadOnly => "--approval-mode=plan",
        Autonomy::Edit => "--approval-mode=auto_edit",
        Autonomy::Full => "--approval-mode=yolo",
    });
    if let Some(model) = &spec.model {
        l.args(["-m", model]);
    }
    if !spec.extra_dirs.is_empty() {
        let dirs: Vec<String> = spec
            .extra_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        l.arg(format!("--include-directories={}", dirs.join(",")));
    }
    if let Some(id) = &spec.resume {
        l.args(["--resume", id]);
    }
    // Headless Gemini refuses an untrusted folder (exit 55); the worker's folder is ours (§3.9).
    l.env
        .push(("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into()));
    if let Some(mcp) = &spec.mcp {
        // Gemini takes MCP servers only from settings files. A system settings file of our own
        // merges with the user's settings, so their auth keeps working.
        let env: serde_json::Map<String, Value> = mcp
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let settings = json!({"mcpServers": {mcp.name.clone(): {
            "command": mcp.command, "args": mcp.args, "env": env, "trust": true,
        }}});
        let path = spec.state_dir.join("gemini-system-settings.json");
        l.env.push((
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(),
            path.display().to_string(),
        ));
        l.files.push((path, format!("{settings:#}\n")));
    }
    l.args(spec.extra_args.iter().cloned());
    l.arg(format!("--prompt={}", spec.prompt));
    l
}

#[derive(Default)]
pub struct GeminiAdapter {
    pending_tools: PendingTools,
    todos: TodoList,
    deltas: TextDeltas,
}

impl Adapter for GeminiAdapter {
    fn on_json(&mut self, mut v: Value, out: &mut Vec<Draft>) -> Parsed {
        let kind = owned_str(take(&mut v, "type"));
        let is_delta = kind == "message" && str_of(&v, "role") == "assistant";
        if !is_delta {
            self.flush_delta(out);
        }
        match kind.as_str() {
            "init" => out.push(
                Draft::new(
                    EventType::Status,
                    format!("session started ({})", str_of(&v, "model")),
                )
                .native("init")
                .with("phase", "init")
                .with_some("session_id", v.get("session_id").cloned())
                .with_some("model", v.get("model").cloned()),
            ),
            "message" if is_delta => {
                let content = str_of(&v, "content");
                if v.get("delta").and_then(Value::as_bool).unwrap_or(false) {
                    self.deltas.push(content, "message", out);
                } else {
                    self.flush_delta(out);
                    out.push(
                        Draft::new(EventType::Progress, content)
                            .native("message")
                            .with("kind", "message"),
                    );
                }
            }
            "message" => out.push(
                Draft::new(
                    EventType::Status,
                    format!("prompt: {}", one_line(str_of(&v, "content"))),
                )
                .native("message/user")
                .with("phase", "prompt"),
            ),
            "tool_use" => {
                let name = str_of(&v, "tool_name").to_string();
                let id = str_of(&v, "tool_id").to_string();
                let params = take(&mut v, "parameters");
                if let Some(draft) = self.on_tool_use(&id, &name, params) {
                    out.push(draft);
                }
            }
            "tool_result" => self.on_tool_result(&v, out),
            "error" => {
                let message = str_of(&v, "message").to_string();
                let severity = v.get("severity").and_then(Value::as_str).unwrap_or("error");
                if severity == "warning" && !message.contains("Loop detected") {
                    out.push(
                        Draft::new(EventType::Status, message)
                            .native("error/warning")
                            .with("phase", "warning"),
                    );
                } else {
                    out.push(
                        Draft::new(EventType::Error, message.clone())
                            .native(&format!("error/{severity}"))
                            .with("message", message)
                            .with("fatal", false)
                            .with("severity", severity),
                    );
                }
            }
            "result" => {
                let stats = take(&mut v, "stats");
                let usage = plain_usage(&stats);
                if str_of(&v, "status") == "success" {
                    out.push(
                        Draft::new(EventType::Milestone, "run complete")
                            .native("result/success")
                            .with("final", true)
                            .with_some("usage", usage)
                            .with("stats", stats),
                    );
                } else {
                    let message = v["error"]["message"]
                        .as_str()
                        .unwrap_or("run failed")
                        .to_string();
                    out.push(
                        Draft::new(EventType::Error, message.clone())
                            .native("result/error")
                            .with("final", true)
                            .with("message", message)
                            .with("fatal", true)
                            .with_some("error_type", v["error"].get("type").cloned())
                            .with_some("usage", usage),
                    );
                }
            }
            _ => return Parsed::Unknown(kind),
        }
        Parsed::Handled
    }

    fn on_text(&mut self, line: &str, out: &mut Vec<Draft>) {
        self.flush_delta(out);
        out.push(text_line(line, &[]));
    }

    fn finish(&mut self, _exit: Option<&ExitFacts>, out: &mut Vec<Draft>) {
        self.flush_delta(out);
    }
}

impl GeminiAdapter {
    fn on_tool_use(&mut self, id: &str, name: &str, params: Value) -> Option<Draft> {
        if name == "write_todos" {
            // Its result only acknowledges the list; the task event says everything.
            self.pending_tools.insert(id, name, Value::Null);
            let todos: Vec<Todo> = params["todos"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Todo::new(str_of(t, "description"), str_of(t, "status")))
                .collect();
            return self.todos.replace(todos, "tool_use/write_todos");
        }
        if name.starts_with("tracker_") || name == "invoke_agent" {
            let what = ["title", "description", "name", "agent_name", "prompt"]
                .iter()
                .find_map(|k| params.get(*k).and_then(Value::as_str))
                .map(one_line)
                .unwrap_or_default();
            return Some(
                Draft::new(EventType::Task, format!("{name}: {what}"))
                    .native(&format!("tool_use/{name}"))
                    .with("subagent", name == "invoke_agent")
                    .with("tool", name),
            );
        }
        let detail = [
            "command",
            "file_path",
            "absolute_path",
            "path",
            "dir_path",
            "pattern",
            "query",
            "url",
        ]
        .iter()
        .find_map(|k| params.get(*k).and_then(Value::as_str))
        .map(one_line)
        .unwrap_or_default();
        self.pending_tools.insert(id, name, params);
        if is_report_tool(name) {
            return None;
        }
        let text = if detail.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {detail}")
        };
        Some(
            Draft::new(EventType::Progress, text)
                .native("tool_use")
                .with("kind", "tool_call")
                .with("tool", name)
                .with("tool_id", id)
                .with("detail", detail),
        )
    }

    fn on_tool_result(&mut self, v: &Value, out: &mut Vec<Draft>) {
        let id = str_of(v, "tool_id").to_string();
        let (tool, params) = self.pending_tools.take(&id);
        let ok = str_of(v, "status") == "success";
        if ok {
            if tool == "write_todos" {
                return;
            }
            if is_report_tool(&tool) {
                if let Some(draft) = reported_event(&params) {
                    out.push(draft.native("tool_result/report_event"));
                }
                return;
            }
            out.push(
                Draft::new(EventType::Progress, format!("{tool} done"))
                    .native("tool_result")
                    .with("kind", "tool_result")
                    .with("tool", tool)
                    .with("tool_id", id)
                    .with("ok", true)
                    .with("output", tail_excerpt(str_of(v, "output"))),
            );
            return;
        }
        let error_type = v["error"]["type"].as_str().unwrap_or("").to_string();
        let message = v["error"]["message"]
            .as_str()
            .or_else(|| v.get("output").and_then(Value::as_str))
            .unwrap_or("")
            .to_string();
        let outside_workspace = error_type == "path_not_in_workspace"
            || PATH_NOT_IN_WORKSPACE_MARKERS
                .iter()
                .any(|m| message.contains(m));
        let denied =
            error_type == "policy_violation" || message.contains("requires user confirmation");
        if outside_workspace || denied {
            let reason = if outside_workspace {
                "path_not_in_workspace"
            } else {
                "policy_violation"
            };
            let path = attempted_path(&message).or_else(|| {
                ["absolute_path", "file_path", "path", "dir_path"]
                    .iter()
                    .find_map(|k| params.get(*k).and_then(Value::as_str).map(str::to_string))
            });
            out.push(
                Draft::new(
                    EventType::Blocker,
                    format!("{tool} refused: {}", one_line(&message)),
                )
                .native("tool_result/error")
                .with("reason", reason)
                .with("tool", tool)
                .with("tool_id", id)
                .with("error_type", error_type)
                .with("message", message)
                .with_some("path", path),
            );
            return;
        }
        out.push(
            Draft::new(
                EventType::Progress,
                format!("{tool} failed: {}", one_line(&message)),
            )
            .native("tool_result/error")
            .with("kind", "tool_result")
            .with("tool", tool)
            .with("tool_id", id)
            .with("ok", false)
            .with("error_type", error_type)
            .with("output", tail_excerpt(&message)),
        );
    }

    fn flush_delta(&mut self, out: &mut Vec<Draft>) {
        self.deltas.flush("message", out);
    }
}

fn is_report_tool(name: &str) -> bool {
    name == REPORT_TOOL || name == format!("mcp_{ORCH_MCP_SERVER}_{REPORT_TOOL}")
}

/// The path in `Attempted path "<path>" resolves outside ...` (v0.27+).
fn attempted_path(message: &str) -> Option<String> {
    let start = message.find("Attempted path \"")? + "Attempted path \"".len();
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn argv_trusts_the_folder_and_joins_include_directories() {
        let spec = LaunchSpec {
            program: vec!["gemini".into()],
            prompt: "-design it".into(),
            workdir: PathBuf::from("/w"),
            extra_dirs: vec![PathBuf::from("/a"), PathBuf::from("/b")],
            state_dir: PathBuf::from("/state"),
            mcp: Some(super::super::McpServer {
                name: "orch".into(),
                command: "/o".into(),
                args: vec![],
                env: vec![],
            }),
            ..LaunchSpec::default()
        };
        let l = launch(&spec);
        assert_eq!(
            l.argv.join(" "),
            "gemini --output-format stream-json --approval-mode=yolo \
             --include-directories=/a,/b --prompt=-design it"
        );
        assert_eq!(l.env_value("GEMINI_CLI_TRUST_WORKSPACE"), Some("true"));
        assert_eq!(
            l.files[0].0,
            PathBuf::from("/state/gemini-system-settings.json")
        );
        assert!(l.files[0].1.contains("\"trust\": true"));
    }

    #[test]
    fn the_attempted_path_is_extracted() {
        let m = "Path not in workspace: Attempted path \"/etc/x\" resolves outside the allowed workspace directories: /w";
        assert_eq!(attempted_path(m).as_deref(), Some("/etc/x"));
        assert_eq!(attempted_path("nothing"), None);
    }
}
