//! Plays a scenario's steps as a simulated CLI: the dialect prints each step in the CLI's wire
//! format, and the side effects are real (files written, commands run in the agent's working
//! directory), as they are when a real CLI acts the same story out against the stub model.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::mcp::McpClient;
use super::sessions::Sessions;
use super::{Dialect, Emitter, Invocation, Pace, Refusal, RunEnd, ToolCall, ToolResult, is_within};
use crate::agents::ORCH_MCP_SERVER;
use crate::scenario::{Action, ApiError, Step};

struct Run<'a> {
    dialect: Box<dyn Dialect>,
    out: &'a mut Emitter,
    pace: Pace,
    inv: &'a Invocation,
    sessions: &'a Sessions,
    next_tool: u32,
    messages: u32,
    last_message: String,
    denials: Vec<(String, ToolCall)>,
    started: Instant,
    /// orchestrate's MCP server, when the configuration names one: started at its first
    /// call.
    orch: Option<McpClient>,
}

/// Plays `steps`, the story from the turn after `turns_done` tool results; remembers the
/// conversation in `sessions` as it goes. Returns the exit code.
pub fn play(
    steps: &[Step],
    turns_done: usize,
    sessions: &Sessions,
    inv: &Invocation,
    dialect: Box<dyn Dialect>,
    out: &mut Emitter,
    pace: Pace,
) -> i32 {
    // Tool rounds this run took; the turn limit counts only those, a resumed run starts again.
    let mut rounds = 0;
    let mut run = Run {
        dialect,
        out,
        pace,
        inv,
        sessions,
        next_tool: turns_done as u32,
        messages: 0,
        last_message: String::new(),
        denials: Vec::new(),
        started: Instant::now(),
        orch: None,
    };
    run.dialect.start(run.out);
    run.sessions.save(run.dialect.session_id(), turns_done);
    run.pace.wait(500);
    for (i, step) in steps.iter().enumerate() {
        let burst = matches!(steps.get(i + 1), Some(Step::Say(_)));
        match step {
            Step::Think(text) => {
                run.dialect.thinking(run.out, text);
                run.pace.wait(700);
            }
            Step::Say(text) => {
                run.message(text);
                // Text that streams on (the chatty story) comes fast; a sentence before an
                // action takes a moment.
                run.pace.wait(if burst { 2 } else { 600 });
            }
            Step::Act(action) => {
                run.tool(action);
                run.remember();
                rounds += 1;
            }
            Step::Blocked(action) => {
                run.refused(action);
                run.remember();
                rounds += 1;
            }
            Step::Mcp { tool, arguments } => {
                run.mcp(tool, arguments);
                run.remember();
                rounds += 1;
            }
            Step::Wait { ms } => run.pace.wait(*ms),
            Step::Answer(text) => {
                run.answer(text);
                return run.finish(true, text.clone());
            }
            Step::Fail { error, times } => {
                if let Some(code) = run.api_failure(*error, *times) {
                    return code;
                }
            }
            Step::Hang => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            Step::Crash => {
                run.out.torn(
                    r#"{"type":"assistant","message":{"content":[{"type":"text","text":"half a li"#,
                );
                std::process::abort();
            }
        }
        // After its last allowed tool round Claude does not ask the model again.
        let tool_round = matches!(step, Step::Act(_) | Step::Blocked(_) | Step::Mcp { .. });
        if let Some(max) = run.dialect.max_turns()
            && tool_round
            && rounds >= max
            && i + 1 < steps.len()
        {
            let end = run.run_end(false, String::new());
            return run.dialect.out_of_turns(run.out, &end, max);
        }
    }
    let summary = run.last_message.clone();
    run.finish(true, summary)
}

impl Run<'_> {
    /// The conversation now has one more tool result.
    fn remember(&self) {
        self.sessions
            .save(self.dialect.session_id(), self.next_tool as usize);
    }

    fn message(&mut self, text: &str) {
        self.messages += 1;
        self.last_message = text.to_string();
        self.dialect.message(self.out, text);
    }

    /// The last message, the run's answer.
    fn answer(&mut self, text: &str) {
        self.messages += 1;
        self.last_message = text.to_string();
        self.dialect.answer(self.out, text);
    }

    fn tool_id(&mut self) -> String {
        self.next_tool += 1;
        format!("{:03}", self.next_tool)
    }

    /// Runs one tool call for real, announcing it before and its result after.
    fn tool(&mut self, action: &Action) -> ToolResult {
        let call = ToolCall::resolve(action, &self.inv.workdir);
        let id = self.tool_id();
        let refusal = if !self.dialect.offers(&call) {
            Some(Refusal::NotOffered)
        } else {
            match (call.path(), self.dialect.workspace()) {
                (Some(path), Some(workspace)) if !is_within(path, &workspace) => {
                    Some(Refusal::OutsideWorkspace { workspace })
                }
                _ => None,
            }
        };
        // Then its pre-tool hooks, which may hold the call for a while (an approval).
        let refusal = refusal.or_else(|| {
            if self.inv.hooks.is_empty() {
                return None;
            }
            let input = self.dialect.hook_input(&call, &self.inv.workdir);
            let tool = input["tool_name"].as_str().unwrap_or("").to_string();
            super::hooks::check(&self.inv.hooks, &tool, &input)
                .map(|reason| Refusal::Hook { reason })
        });
        // Codex announces a command only when it runs: one its hook blocked never shows.
        if !matches!(refusal, Some(Refusal::Hook { .. })) || self.dialect.announces_blocked_calls()
        {
            self.dialect.tool_started(self.out, &id, &call);
        }
        self.pace.wait(400);
        if let Some(why) = refusal {
            self.dialect.tool_refused(self.out, &id, &call, &why);
            self.pace.wait(400);
            return ToolResult::default();
        }
        let result = perform(&call, &self.inv.workdir);
        self.dialect.tool_finished(self.out, &id, &call, &result);
        self.pace.wait(400);
        result
    }

    /// A call to orchestrate's MCP server, through the real `orchestrate mcp` its
    /// configuration names. A lock refused is said, and the story goes on: the sandbox's
    /// lease check decides the write, as it would for a real agent that tried.
    fn mcp(&mut self, tool: &str, arguments: &serde_json::Value) {
        let id = self.tool_id();
        let answer = match self.orch_client() {
            Ok(client) => client.call(tool, arguments.clone()),
            Err(why) => Err(why),
        };
        self.dialect
            .mcp_call(self.out, &id, ORCH_MCP_SERVER, tool, arguments, &answer);
        self.pace.wait(200);
        let refused = answer
            .as_ref()
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .filter(|v| v["success"] == false);
        if let Some(refusal) = refused {
            let holder = refusal["holder"].as_str().unwrap_or("another agent");
            let resource = arguments["resource"].as_str().unwrap_or("the file");
            self.message(&format!(
                "{holder} holds the lock on {resource}; I'll try the write anyway."
            ));
        }
    }

    /// The `orch` server, started on first use.
    fn orch_client(&mut self) -> Result<&mut McpClient, String> {
        if self.orch.is_none() {
            let spec = self
                .inv
                .mcp
                .iter()
                .find(|s| s.name == ORCH_MCP_SERVER)
                .ok_or_else(|| format!("no MCP server {ORCH_MCP_SERVER} is configured"))?;
            self.orch = Some(McpClient::start(spec)?);
        }
        Ok(self.orch.as_mut().expect("started above"))
    }

    /// A call the headless CLI refuses because it would need the operator's approval.
    fn refused(&mut self, action: &Action) {
        let call = ToolCall::resolve(action, &self.inv.workdir);
        let id = self.tool_id();
        self.dialect.tool_started(self.out, &id, &call);
        self.dialect
            .tool_refused(self.out, &id, &call, &Refusal::NeedsApproval);
        self.denials.push((id, call));
    }

    /// The API refuses `times` requests (or every one). The CLI retries as the real one does;
    /// the exit code when it gives up, `None` when a retry got through.
    fn api_failure(&mut self, error: ApiError, times: Option<u32>) -> Option<i32> {
        // A usage limit lifts its seconds after this host first hit it, whatever the run.
        if let ApiError::UsageLimit { resets_in_secs } = error
            && times.is_none()
            && self
                .sessions
                .since_limit_hit(&format!("usage-limit-{resets_in_secs}s"))
                .is_some_and(|since| since.as_secs() >= resets_in_secs)
        {
            return None;
        }
        let policy = self.dialect.retry_policy(error);
        let failures = times.unwrap_or(u32::MAX);
        if failures <= policy.silent {
            return None;
        }
        let shown = failures - policy.silent;
        for attempt in 1..=policy.visible.min(shown) {
            let delay = self
                .dialect
                .api_retry(self.out, error, attempt, policy.visible);
            self.pace.wait(delay);
        }
        if shown <= policy.visible {
            return None;
        }
        let end = self.run_end(false, String::new());
        Some(self.dialect.api_failed(self.out, error, &end))
    }

    fn finish(&mut self, ok: bool, summary: String) -> i32 {
        let end = self.run_end(ok, summary);
        self.dialect.finish(self.out, &end)
    }

    fn run_end(&mut self, ok: bool, summary: String) -> RunEnd {
        let tools = u64::from(self.next_tool);
        let input = 1500 + 4 * self.inv.prompt.len() as u64 + 600 * tools;
        let output = 200 + 80 * u64::from(self.messages);
        RunEnd {
            ok,
            summary,
            input_tokens: input,
            output_tokens: output,
            cached_tokens: input / 2,
            cost_usd: ((input as f64 * 3e-6 + output as f64 * 15e-6) * 1e4).round() / 1e4,
            turns: self.next_tool + 1,
            duration_ms: self.started.elapsed().as_millis() as u64,
            denials: std::mem::take(&mut self.denials),
        }
    }
}

impl ToolCall {
    /// The action with its paths made absolute against `workdir`.
    pub fn resolve(action: &Action, workdir: &Path) -> ToolCall {
        let path = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                workdir.join(p)
            }
        };
        match action {
            Action::Run { command } => ToolCall::Command {
                command: command.clone(),
            },
            Action::Write { path: p, content } => ToolCall::Write {
                path: path(p),
                content: content.clone(),
            },
            Action::Edit { path: p, old, new } => ToolCall::Edit {
                path: path(p),
                old: old.clone(),
                new: new.clone(),
            },
            Action::Read { path: p } => ToolCall::Read { path: path(p) },
        }
    }

    /// The file the call touches, if any.
    pub fn path(&self) -> Option<&PathBuf> {
        match self {
            ToolCall::Command { .. } => None,
            ToolCall::Write { path, .. }
            | ToolCall::Edit { path, .. }
            | ToolCall::Read { path } => Some(path),
        }
    }
}

/// Does what the tool call says, in `workdir`.
pub fn perform(call: &ToolCall, workdir: &Path) -> ToolResult {
    match call {
        ToolCall::Command { command } => {
            let output = Command::new("sh")
                .arg("-c")
                .arg(command)
                .current_dir(workdir)
                .stdin(Stdio::null())
                .output();
            match output {
                Ok(o) => {
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&o.stderr));
                    ToolResult {
                        ok: o.status.success(),
                        output: text,
                        exit_code: o.status.code(),
                    }
                }
                Err(e) => failed(format!("sh: {e}"), Some(127)),
            }
        }
        ToolCall::Write { path, content } => {
            let written = path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::write(path, content));
            match written {
                Ok(()) => succeeded(format!("File created successfully at: {}", path.display())),
                Err(e) => failed(e.to_string(), None),
            }
        }
        ToolCall::Edit { path, old, new } => match fs::read_to_string(path) {
            Ok(text) if text.contains(old.as_str()) => {
                match fs::write(path, text.replacen(old.as_str(), new, 1)) {
                    Ok(()) => succeeded(format!("The file {} has been updated.", path.display())),
                    Err(e) => failed(e.to_string(), None),
                }
            }
            Ok(_) => failed(format!("String to replace not found in file: {old}"), None),
            Err(e) => failed(format!("{}: {e}", path.display()), None),
        },
        ToolCall::Read { path } => {
            let read = if path.is_dir() {
                fs::read_dir(path).map(|entries| {
                    let mut names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    names.join("\n")
                })
            } else {
                fs::read(path)
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(2048)]).into_owned())
            };
            match read {
                Ok(text) => succeeded(text),
                Err(e) => failed(format!("{}: {e}", path.display()), None),
            }
        }
    }
}

fn succeeded(output: String) -> ToolResult {
    ToolResult {
        ok: true,
        output,
        exit_code: None,
    }
}

fn failed(output: String, exit_code: Option<i32>) -> ToolResult {
    ToolResult {
        ok: false,
        output,
        exit_code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_replace_text_and_say_when_it_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("n.md");
        std::fs::write(&file, "- [ ] done\n").unwrap();
        let edit = |old: &str| ToolCall::Edit {
            path: file.clone(),
            old: old.into(),
            new: "- [x] done".into(),
        };
        assert!(perform(&edit("- [ ] done"), dir.path()).ok);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "- [x] done\n");
        let missing = perform(&edit("- [ ] done"), dir.path());
        assert!(!missing.ok);
        assert!(missing.output.starts_with("String to replace not found"));
    }

    #[test]
    fn relative_paths_resolve_against_the_workdir() {
        let call = ToolCall::resolve(
            &Action::Read {
                path: "notes/a.md".into(),
            },
            Path::new("/w"),
        );
        assert_eq!(call.path(), Some(&PathBuf::from("/w/notes/a.md")));
    }
}
