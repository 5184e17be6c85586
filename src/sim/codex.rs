//! Simulated `codex exec`: clap-style argv (usage errors exit 2), the git-repository check,
//! removed flags, and the `--json` thread/turn/item stream.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::argv::ArgWalker;
use super::ordered::{Field, Object};
use super::{
    ApiError, ArgError, CheckedArgs, Dialect, Emitter, Host, Invocation, Refusal, RetryPolicy,
    RunEnd, StdinUse, ToolCall, ToolResult, absolute, print_document, session_uuid,
};

/// The pinned version (`.ci/agent-clis.pins`).
pub const VERSION: &str = "codex-cli 0.169.0";
const MODEL: &str = "gpt-5.5";
const USAGE: &str =
    "Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]";

/// clap's refusal of an argument it does not know, with its tip.
fn unexpected(arg: &str) -> ArgError {
    ArgError::new(
        format!(
            "error: unexpected argument '{arg}' found\n\n  tip: to pass '{arg}' as a value, use '-- {arg}'\n\n{USAGE}\n\nFor more information, try '--help'."
        ),
        2,
    )
}

/// Options `codex` takes before its subcommand; `-a` only there.
const GLOBAL_VALUE_FLAGS: [&str; 12] = [
    "-a",
    "--ask-for-approval",
    "-c",
    "--config",
    "-m",
    "--model",
    "-s",
    "--sandbox",
    "-C",
    "--cd",
    "-p",
    "--profile",
];

pub fn check_args(args: &[String], host: &Host) -> Result<CheckedArgs, ArgError> {
    // `codex [global options] exec [options] [PROMPT]`: the global options apply to exec.
    let Some(exec_at) = args.iter().position(|a| a == "exec" || a == "e") else {
        return match args.first().map(String::as_str) {
            Some("--version" | "-V") => Ok(CheckedArgs::Version(VERSION.into())),
            other => Err(ArgError::new(
                format!(
                    "orchestrate sim codex: only `codex exec` is simulated, not {:?}",
                    other.unwrap_or("")
                ),
                2,
            )),
        };
    };
    let mut exec_args: Vec<String> = Vec::new();
    let mut global = args[..exec_at].iter();
    while let Some(arg) = global.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        if GLOBAL_VALUE_FLAGS.contains(&name) {
            let value = inline.or_else(|| global.next().cloned()).ok_or_else(|| {
                ArgError::new(
                    format!(
                        "error: a value is required for '{name} <VALUE>' but none was supplied"
                    ),
                    2,
                )
            })?;
            if matches!(name, "-a" | "--ask-for-approval") {
                if !matches!(
                    value.as_str(),
                    "untrusted" | "on-failure" | "on-request" | "never"
                ) {
                    return Err(ArgError::new(
                        format!(
                            "error: invalid value '{value}' for '--ask-for-approval <APPROVAL_POLICY>'\n  [possible values: untrusted, on-failure, on-request, never]\n\nFor more information, try '--help'."
                        ),
                        2,
                    ));
                }
                continue;
            }
            exec_args.push(name.to_string());
            exec_args.push(value);
        } else if matches!(
            name,
            "--dangerously-bypass-approvals-and-sandbox" | "--yolo" | "--oss" | "--search"
        ) {
            exec_args.push(name.to_string());
        } else {
            return Err(unexpected(arg));
        }
    }
    exec_args.extend(args[exec_at + 1..].iter().cloned());
    check_exec_args(&exec_args, host)
}

fn check_exec_args(args: &[String], host: &Host) -> Result<CheckedArgs, ArgError> {
    let mut json_output = false;
    let mut skip_git_check = false;
    let mut bypass = false;
    let mut trust_hooks = false;
    let mut last = false;
    let mut cd: Option<String> = None;
    let mut add_dirs = Vec::new();
    let mut overrides: Vec<String> = Vec::new();
    let mut model = MODEL.to_string();
    let mut positional: Vec<String> = Vec::new();
    let mut walker = ArgWalker::new(args);
    while let Some((name, inline, raw)) = walker.next_option(&mut positional) {
        let mut take_value = |label: &str| -> Result<String, ArgError> {
            let missing = || {
                ArgError::new(
                    format!(
                        "error: a value is required for '{name} <{label}>' but none was supplied\n\nFor more information, try '--help'."
                    ),
                    2,
                )
            };
            walker.value(inline).map(str::to_string).ok_or_else(missing)
        };
        match name {
            "--json" | "--experimental-json" => json_output = true,
            "--skip-git-repo-check" => skip_git_check = true,
            "--dangerously-bypass-approvals-and-sandbox" | "--yolo" => bypass = true,
            "--dangerously-bypass-hook-trust" => trust_hooks = true,
            "--last" => last = true,
            "--ephemeral"
            | "--oss"
            | "--search"
            | "--ignore-user-config"
            | "--ignore-rules"
            | "--all"
            | "--strict-config"
            | "--approve-for-me"
            | "--trust" => {}
            "-h" | "--help" => {
                return Ok(CheckedArgs::Version(format!(
                    "Run Codex non-interactively\n\n{USAGE}\n\n(simulated by orchestrate sim)"
                )));
            }
            "-V" | "--version" => return Ok(CheckedArgs::Version(VERSION.into())),
            "-C" | "--cd" => cd = Some(take_value("DIR")?),
            "--add-dir" => add_dirs.push(take_value("DIR")?),
            "-m" | "--model" => model = take_value("MODEL")?,
            "-s" | "--sandbox" => {
                let mode = take_value("SANDBOX_MODE")?;
                if !matches!(
                    mode.as_str(),
                    "read-only" | "workspace-write" | "danger-full-access"
                ) {
                    return Err(ArgError::new(
                        format!(
                            "error: invalid value '{mode}' for '--sandbox <SANDBOX_MODE>'\n  [possible values: read-only, workspace-write, danger-full-access]\n\nFor more information, try '--help'."
                        ),
                        2,
                    ));
                }
            }
            "-c" | "--config" => {
                let kv = take_value("key=value")?;
                if !kv.contains('=') {
                    return Err(ArgError::new(
                        format!("Error parsing -c overrides: Invalid override (missing '='): {kv}"),
                        1,
                    ));
                }
                overrides.push(kv.to_string());
            }
            "--output-schema" => {
                let path = take_value("FILE")?;
                if let Err(e) = std::fs::read(absolute(&host.cwd, &path)) {
                    return Err(ArgError::new(
                        format!("Failed to read output schema file {path}: {e}"),
                        1,
                    ));
                }
            }
            "-p"
            | "--profile"
            | "-i"
            | "--image"
            | "-o"
            | "--output-last-message"
            | "--color"
            | "--local-provider"
            | "--worktree"
            | "--thread-source" => {
                take_value("VALUE")?;
            }
            // Removed in 0.147.0; `-a` is only a top-level flag.
            _ => return Err(unexpected(raw)),
        }
    }
    let mut resume = None;
    if positional.first().map(String::as_str) == Some("resume") {
        positional.remove(0);
        // The thread id is optional (`--last`); without one the prompt comes from stdin.
        resume = Some(if last || positional.is_empty() {
            "latest".to_string()
        } else {
            positional.remove(0)
        });
    }
    if positional.len() > 1 {
        return Err(unexpected(&positional[1]));
    }
    let workdir = cd.map_or_else(|| host.cwd.clone(), |d| absolute(&host.cwd, &d));
    if !skip_git_check && !bypass && !inside_git_repo(&workdir) {
        return Err(ArgError::new(
            "Not inside a trusted directory and --skip-git-repo-check was not specified.",
            1,
        ));
    }
    let prompt = positional.pop().filter(|p| p != "-").unwrap_or_default();
    let no_input = if host.stdin_is_tty {
        ArgError::new(
            "No prompt provided. Either specify one as an argument or pipe the prompt into stdin.",
            1,
        )
    } else {
        ArgError::new("No prompt provided via stdin.", 1)
    };
    if prompt.is_empty() && host.stdin_is_tty {
        return Err(no_input);
    }
    let thread_id = resume
        .clone()
        .filter(|r| r != "latest")
        .unwrap_or_else(|| session_uuid("codex"));
    let invocation = Invocation {
        mcp: super::mcp::from_codex_overrides(&overrides),
        prompt,
        workdir: workdir.clone(),
        extra_dirs: add_dirs.iter().map(|d| absolute(&host.cwd, d)).collect(),
        resume,
        streaming: json_output,
        model,
        no_input,
        // Codex reads a piped stdin to its end, prompt or not, and says so.
        stdin: StdinUse {
            prompt_notice: Some("Reading prompt from stdin..."),
            extra_notice: Some("Reading additional input from stdin..."),
        },
        // Hooks it has not been told to trust are skipped, silently, as the real one does.
        hooks: if trust_hooks {
            let home = host
                .env("CODEX_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    host.env("HOME")
                        .map(|h| std::path::Path::new(h).join(".codex"))
                });
            home.map(|h| {
                let settings =
                    super::hooks::read_settings(&h.join("hooks.json").display().to_string());
                super::hooks::from_settings(&settings, "PreToolUse", false)
            })
            .unwrap_or_default()
        } else {
            Vec::new()
        },
    };
    let dialect = CodexDialect {
        thread_id,
        json_output,
        last_message: String::new(),
        items: 0,
        tool_items: HashMap::new(),
    };
    Ok(CheckedArgs::Run(Box::new(invocation), Box::new(dialect)))
}

fn inside_git_repo(dir: &Path) -> bool {
    let start: PathBuf = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    start.ancestors().any(|d| d.join(".git").exists())
}

pub struct CodexDialect {
    thread_id: String,
    json_output: bool,
    last_message: String,
    /// Items so far: the real CLI numbers every item of a turn, `item_0` on.
    items: usize,
    /// The item id of each of the script's tool calls.
    tool_items: HashMap<String, String>,
}

impl CodexDialect {
    fn new_item(&mut self) -> String {
        let item = format!("item_{}", self.items);
        self.items += 1;
        item
    }

    /// The item of the script's tool call `id`: the one it started, or a new one.
    fn tool_item(&mut self, id: &str) -> String {
        if let Some(item) = self.tool_items.get(id) {
            return item.clone();
        }
        let item = self.new_item();
        self.tool_items.insert(id.to_string(), item.clone());
        item
    }
}

/// The real CLI's fields, in its order; `exit_code` null until the command ends.
fn command_item(item_id: String, call: &ToolCall) -> Object {
    let command = match call {
        ToolCall::Command { command } => command.clone(),
        ToolCall::Read { path } => format!("cat {}", path.display()),
        _ => String::new(),
    };
    Object::new()
        .with("id", item_id)
        .with("type", "command_execution")
        // The user's shell, as the real CLI runs it (bash where the recordings were made).
        .with("command", format!("/bin/bash -lc '{command}'"))
        .with("aggregated_output", "")
        .with("exit_code", Value::Null)
        .with("status", "in_progress")
}

fn file_change_item(item_id: String, call: &ToolCall, status: &str) -> Object {
    let (ToolCall::Write { path, .. } | ToolCall::Edit { path, .. }) = call else {
        unreachable!("only writes and edits are file changes");
    };
    let kind = if matches!(call, ToolCall::Write { .. }) {
        "add"
    } else {
        "update"
    };
    Object::new()
        .with("id", item_id)
        .with("type", "file_change")
        .with(
            "changes",
            Field::Objects(vec![
                Object::new()
                    .with("path", path.display().to_string())
                    .with("kind", kind),
            ]),
        )
        .with("status", status)
}

fn line(kind: &str) -> Object {
    Object::new().with("type", kind)
}

fn error_line(kind: &str, message: &str) -> Object {
    line(kind).with("error", Object::new().with("message", message))
}

impl Dialect for CodexDialect {
    fn mcp_call(
        &mut self,
        out: &mut Emitter,
        id: &str,
        server: &str,
        tool: &str,
        arguments: &Value,
        answer: &Result<String, String>,
    ) {
        let item_id = self.tool_item(id);
        let item = |status: &str| {
            Object::new()
                .with("id", item_id.clone())
                .with("type", "mcp_tool_call")
                .with("server", server)
                .with("tool", tool)
                .with("arguments", arguments.clone())
                .with("result", Value::Null)
                .with("error", Value::Null)
                .with("status", status)
        };
        out.emit_in_order(line("item.started").with("item", item("in_progress")));
        let mut done = item(if answer.is_ok() {
            "completed"
        } else {
            "failed"
        });
        match answer {
            Ok(text) => done.set(
                "result",
                json!({"content": [{"type": "text", "text": text}], "structured_content": null}),
            ),
            Err(text) => done.set("error", Object::new().with("message", text.as_str())),
        }
        out.emit_in_order(line("item.completed").with("item", done));
    }

    fn name(&self) -> &'static str {
        "codex"
    }

    fn announces_blocked_calls(&self) -> bool {
        false
    }

    fn hook_input(&self, call: &ToolCall, cwd: &std::path::Path) -> Value {
        let (tool, input) = hook_tool(call);
        json!({"session_id": self.thread_id, "cwd": cwd.display().to_string(),
               "hook_event_name": "PreToolUse", "model": "gpt-5.5", "tool_name": tool, "tool_input": input})
    }

    fn session_id(&self) -> &str {
        &self.thread_id
    }

    fn unknown_session(&mut self, _out: &mut Emitter, id: &str) -> i32 {
        eprintln!(
            "Error: thread/resume: thread/resume failed: no rollout found for thread id {id} (code -32600)"
        );
        1
    }

    fn start(&mut self, out: &mut Emitter) {
        out.emit_in_order(line("thread.started").with("thread_id", self.thread_id.as_str()));
        out.emit_in_order(line("turn.started"));
    }

    fn thinking(&mut self, out: &mut Emitter, text: &str) {
        let item = Object::new()
            .with("id", self.new_item())
            .with("type", "reasoning")
            .with("text", text);
        out.emit_in_order(line("item.completed").with("item", item));
    }

    fn message(&mut self, out: &mut Emitter, text: &str) {
        self.last_message = text.to_string();
        let item = Object::new()
            .with("id", self.new_item())
            .with("type", "agent_message")
            .with("text", text);
        out.emit_in_order(line("item.completed").with("item", item));
    }

    fn tool_started(&mut self, out: &mut Emitter, id: &str, call: &ToolCall) {
        let item_id = self.tool_item(id);
        let item = match call {
            ToolCall::Command { .. } | ToolCall::Read { .. } => command_item(item_id, call),
            // Announced in progress, then completed: 0.169 says a change twice.
            ToolCall::Write { .. } | ToolCall::Edit { .. } => {
                file_change_item(item_id, call, "in_progress")
            }
        };
        out.emit_in_order(line("item.started").with("item", item));
    }

    fn tool_finished(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, result: &ToolResult) {
        let item_id = self.tool_item(id);
        let status = if result.ok { "completed" } else { "failed" };
        let item = match call {
            ToolCall::Command { .. } | ToolCall::Read { .. } => {
                let mut item = command_item(item_id, call);
                item.set("aggregated_output", result.output.as_str());
                item.set(
                    "exit_code",
                    result.exit_code.unwrap_or(if result.ok { 0 } else { 1 }),
                );
                item.set("status", status);
                item
            }
            ToolCall::Write { .. } | ToolCall::Edit { .. } => {
                file_change_item(item_id, call, status)
            }
        };
        out.emit_in_order(line("item.completed").with("item", item));
    }

    fn tool_refused(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, why: &Refusal) {
        if let Refusal::Hook { reason } = why {
            // Nothing in --json: the refusal is only on stderr (and in what the model reads).
            eprintln!(
                "{} ERROR codex_core::tools::router: error={}",
                crate::timestamp::Timestamp::now(),
                hook_block_message(call, reason)
            );
            return;
        }
        let mut item = command_item(self.tool_item(id), call);
        item.set(
            "aggregated_output",
            format!(
                "command execution approval is not supported in exec mode for thread `{}`",
                self.thread_id
            ),
        );
        item.set("exit_code", 1);
        item.set("status", "declined");
        out.emit_in_order(line("item.completed").with("item", item));
    }

    fn retry_policy(&self, error: ApiError) -> RetryPolicy {
        // Four request retries nobody sees, then five stream reconnects that say so; a bad
        // request, an overloaded model and a usage limit end the turn at once.
        match error {
            ApiError::ServerError | ApiError::RateLimited { .. } | ApiError::Unauthorized => {
                RetryPolicy {
                    silent: 4,
                    visible: 5,
                }
            }
            _ => RetryPolicy {
                silent: 0,
                visible: 0,
            },
        }
    }

    fn api_retry(&mut self, out: &mut Emitter, error: ApiError, attempt: u32, max: u32) -> u64 {
        let message = format!(
            "Reconnecting... {attempt}/{max} ({})",
            api_error_text(error)
        );
        out.emit_in_order(line("error").with("message", message));
        200 << attempt.min(6)
    }

    fn api_failed(&mut self, out: &mut Emitter, error: ApiError, _end: &RunEnd) -> i32 {
        let message = api_error_text(error);
        out.emit_in_order(line("error").with("message", message.as_str()));
        out.emit_in_order(error_line("turn.failed", &message));
        if !self.json_output {
            eprintln!("ERROR: {message}");
        }
        1
    }

    fn finish(&mut self, out: &mut Emitter, end: &RunEnd) -> i32 {
        if end.ok {
            let usage = Object::new()
                .with("input_tokens", end.input_tokens)
                .with("cached_input_tokens", end.cached_tokens)
                .with("cache_write_input_tokens", 0)
                .with("output_tokens", end.output_tokens)
                .with("reasoning_output_tokens", 0);
            out.emit_in_order(line("turn.completed").with("usage", usage));
            if !self.json_output {
                print_document(&self.last_message);
            }
            0
        } else {
            out.emit_in_order(line("error").with("message", end.summary.as_str()));
            out.emit_in_order(error_line("turn.failed", &end.summary));
            if !self.json_output {
                eprintln!("ERROR: {}", end.summary);
            }
            1
        }
    }
}

/// How Codex 0.169 words an API failure (the texts of the real CLI against the stub model).
fn api_error_text(error: ApiError) -> String {
    use crate::stub::openai;
    let status = openai::http_status(error);
    match error {
        ApiError::ServerError => {
            "We\u{2019}re currently experiencing high demand, which may cause temporary errors."
                .into()
        }
        ApiError::Overloaded => {
            "Selected model is at capacity. Please try a different model.".into()
        }
        ApiError::RateLimited { .. } => format!(
            "exceeded retry limit, last status: {status} {}, request id: req_sim",
            openai::status_reason(status)
        ),
        ApiError::Unauthorized => format!(
            "unexpected status {status} {}: {}, url: https://api.openai.com/v1/responses, request id: req_sim",
            openai::status_reason(status),
            openai::error_body(error)["error"]["message"]
                .as_str()
                .unwrap_or("")
        ),
        ApiError::BadRequest => openai::error_body(error).to_string(),
        ApiError::UsageLimit { .. } => {
            "You\u{2019}ve hit your usage limit. Try again later.".into()
        }
    }
}

/// The tool name and input Codex gives a `PreToolUse` hook: a shell command as `Bash`, a file
/// write or edit as `apply_patch` with its patch envelope as the command.
fn hook_tool(call: &ToolCall) -> (&'static str, Value) {
    match call {
        ToolCall::Command { command } => ("Bash", json!({"command": command})),
        ToolCall::Write { path, content } => {
            let added: String = content.lines().map(|l| format!("+{l}\n")).collect();
            let patch = format!(
                "*** Begin Patch\n*** Add File: {}\n{added}*** End Patch",
                path.display()
            );
            ("apply_patch", json!({"command": patch}))
        }
        ToolCall::Edit { path, .. } => {
            let patch = format!(
                "*** Begin Patch\n*** Update File: {}\n*** End Patch",
                path.display()
            );
            ("apply_patch", json!({"command": patch}))
        }
        ToolCall::Read { path } => ("Read", json!({"path": path.display().to_string()})),
    }
}

/// What Codex 0.169 tells the model (and logs) when a `PreToolUse` hook blocks a call: the
/// command form for `Bash` and `apply_patch` (the patch is the command), the tool form else.
fn hook_block_message(call: &ToolCall, reason: &str) -> String {
    let (tool, input) = hook_tool(call);
    match input["command"].as_str() {
        Some(command) if matches!(tool, "Bash" | "apply_patch") => {
            format!("Command blocked by PreToolUse hook: {reason}. Command: {command}")
        }
        _ => format!("Tool call blocked by PreToolUse hook: {reason}. Tool: {tool}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(cwd: &Path) -> Host {
        Host {
            cwd: cwd.to_path_buf(),
            is_root: false,
            stdin_is_tty: true,
            env: vec![],
        }
    }
    fn check(s: &str, host: &Host) -> Result<CheckedArgs, ArgError> {
        check_args(&s.split(' ').map(String::from).collect::<Vec<_>>(), host)
    }

    #[test]
    fn outside_git_needs_the_skip_flag_unless_bypassing() {
        let dir = tempfile::tempdir().unwrap();
        let h = host(dir.path());
        let Err(e) = check("exec --json hi", &h) else {
            panic!("should refuse")
        };
        assert_eq!(
            e.message,
            "Not inside a trusted directory and --skip-git-repo-check was not specified."
        );
        assert_eq!(e.code, 1);
        assert!(check("exec --json --skip-git-repo-check hi", &h).is_ok());
        assert!(
            check(
                "exec --json --dangerously-bypass-approvals-and-sandbox hi",
                &h
            )
            .is_ok()
        );
        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert!(check("exec --json hi", &h).is_ok());
    }

    #[test]
    fn removed_flags_are_clap_errors() {
        let dir = tempfile::tempdir().unwrap();
        for flag in ["--full-auto", "--ask-for-approval", "-a"] {
            let Err(e) = check(
                &format!("exec --skip-git-repo-check {flag} hi"),
                &host(dir.path()),
            ) else {
                panic!()
            };
            assert!(
                e.message
                    .starts_with(&format!("error: unexpected argument '{flag}' found")),
                "{}",
                e.message
            );
            assert!(e.message.contains(USAGE));
            assert_eq!(e.code, 2);
        }
    }

    #[test]
    fn resume_takes_a_thread_id_and_a_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let argv: Vec<String> = [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "resume",
            "t-1",
            "--",
            "go on",
        ]
        .map(String::from)
        .to_vec();
        let Ok(CheckedArgs::Run(inv, _)) = check_args(&argv, &host(dir.path())) else {
            panic!()
        };
        assert_eq!(inv.resume.as_deref(), Some("t-1"));
        assert_eq!(inv.prompt, "go on");
    }

    /// The two messages Codex 0.169 has for a hook's block (both are strings in its binary).
    #[test]
    fn a_hook_block_reads_as_codex_words_it() {
        let command = ToolCall::Command {
            command: "rm -r ./victim".into(),
        };
        assert_eq!(
            hook_block_message(&command, "no"),
            "Command blocked by PreToolUse hook: no. Command: rm -r ./victim"
        );
        let write = ToolCall::Write {
            path: "notes/a.md".into(),
            content: "one\ntwo\n".into(),
        };
        assert_eq!(
            hook_block_message(&write, "leased"),
            "Command blocked by PreToolUse hook: leased. Command: *** Begin Patch\n\
             *** Add File: notes/a.md\n+one\n+two\n*** End Patch"
        );
        let read = ToolCall::Read {
            path: "a.md".into(),
        };
        assert_eq!(
            hook_block_message(&read, "no"),
            "Tool call blocked by PreToolUse hook: no. Tool: Read"
        );
    }
}
