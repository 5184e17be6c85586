//! Simulated `gemini`: yargs-style argv, headless folder trust, the workspace-path check that
//! refuses reads outside cwd and `--include-directories`, and the stream-json event stream.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::argv::ArgWalker;
use super::ordered::Object;
use super::{
    ApiError, ArgError, CheckedArgs, Dialect, Emitter, Host, Invocation, Refusal, RetryPolicy,
    RunEnd, StdinUse, ToolCall, ToolResult, absolute, print_document, session_uuid,
};
use crate::timestamp::Timestamp;

/// The pinned version (`.ci/agent-clis.pins`); its model is chosen per request ("auto").
pub const VERSION: &str = "0.61.0";
const MODEL: &str = "auto";
/// yargs prints this (then every option) after a refusal.
const USAGE: &str = "Usage: gemini [options] [command]";
/// The tools each headless approval mode offers the model; yolo offers all.
const READ_TOOLS: [&str; 1] = ["read_file"];
const EDIT_TOOLS: [&str; 3] = ["read_file", "write_file", "replace"];

/// yargs' refusal: its message, then the usage.
fn yargs_error(message: String) -> ArgError {
    ArgError::new(format!("{message}\n{USAGE}"), 1)
}

pub fn check_args(args: &[String], host: &Host) -> Result<CheckedArgs, ArgError> {
    let mut prompt: Option<String> = None;
    let mut query: Vec<String> = Vec::new();
    let mut output_format = "text".to_string();
    let mut model = MODEL.to_string();
    let mut yolo = false;
    let mut approval_mode: Option<String> = None;
    let mut include: Vec<PathBuf> = Vec::new();
    let mut skip_trust = false;
    let mut resume: Option<String> = None;
    let mut walker = ArgWalker::new(args);
    while let Some((name, inline, _)) = walker.next_option(&mut query) {
        let missing = || {
            let flag = name.trim_start_matches('-');
            yargs_error(format!("Not enough arguments following: {flag}"))
        };
        let mut value = || walker.value(inline).map(str::to_string).ok_or_else(missing);
        match name {
            "-p" | "--prompt" => prompt = Some(value()?),
            "-o" | "--output-format" => output_format = value()?,
            "-m" | "--model" => model = value()?,
            "-y" | "--yolo" => yolo = true,
            "--approval-mode" => approval_mode = Some(value()?),
            "--include-directories" => {
                for dir in value()?.split(',').filter(|d| !d.trim().is_empty()) {
                    include.push(absolute(&host.cwd, dir.trim()));
                }
            }
            "--skip-trust" => skip_trust = true,
            "-s" | "--sandbox" | "-d" | "--debug" | "--raw-output" | "--accept-raw-output-risk" => {
            }
            "-r" | "--resume" => {
                // yargs: the value is optional; a bare --resume means the latest session.
                let value = inline.or_else(|| walker.take_plain()).unwrap_or("latest");
                resume = Some(value.to_string());
            }
            "--session-id" | "--allowed-mcp-server-names" | "-e" | "--extensions" | "--policy" => {
                value()?;
            }
            "-v" | "--version" => return Ok(CheckedArgs::Version(VERSION.into())),
            "-h" | "--help" => {
                return Ok(CheckedArgs::Version(
                    "Usage: gemini [options] [query..]\n\n(simulated by orchestrate sim)".into(),
                ));
            }
            _ => {
                return Err(yargs_error(format!(
                    "Unknown argument: {}",
                    name.trim_start_matches('-')
                )));
            }
        }
    }
    if yolo && approval_mode.is_some() {
        return Err(yargs_error(
            "Cannot use both --yolo (-y) and --approval-mode together. Use --approval-mode=yolo instead."
                .into(),
        ));
    }
    if let Some(mode) = &approval_mode
        && !matches!(mode.as_str(), "default" | "auto_edit" | "yolo" | "plan")
    {
        return Err(ArgError::new(
            format!(
                "Invalid values:\n  Argument: approval-mode, Given: \"{mode}\", Choices: \"default\", \"auto_edit\", \"yolo\", \"plan\""
            ),
            1,
        ));
    }
    if !matches!(output_format.as_str(), "text" | "json" | "stream-json") {
        return Err(ArgError::new(
            format!(
                "Invalid values:\n  Argument: output-format, Given: \"{output_format}\", Choices: \"text\", \"json\", \"stream-json\""
            ),
            1,
        ));
    }
    // 0.61 checks the auth method before folder trust (exit 41 before 55).
    check_auth(host)?;
    if !skip_trust && host.env("GEMINI_CLI_TRUST_WORKSPACE") != Some("true") {
        // Red even on a dumb terminal and a non-TTY stderr, as the real one prints it.
        return Err(ArgError::new(
            "\u{1b}[31mGemini CLI is not running in a trusted directory. To proceed, either use `--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, or trust this directory in interactive mode. For more details, see https://geminicli.com/docs/cli/trusted-folders/#headless-and-automated-environments\u{1b}[0m",
            55,
        ));
    }
    let prompt = match (prompt, query.is_empty()) {
        (Some(p), true) => p,
        (Some(p), false) => format!("{} {p}", query.join(" ")),
        (None, _) => query.join(" "),
    };
    let no_input = ArgError::new(
        "No input provided via stdin. Input can be provided by piping data into gemini or using the --prompt option.",
        42,
    );
    if prompt.trim().is_empty() && host.stdin_is_tty {
        return Err(no_input);
    }
    let mut workspace = vec![host.cwd.clone()];
    workspace.extend(include.iter().cloned());
    let session_id = resume
        .clone()
        .filter(|r| r != "latest")
        .unwrap_or_else(|| session_uuid("gemini"));
    let invocation = Invocation {
        prompt: prompt.clone(),
        workdir: host.cwd.clone(),
        extra_dirs: include,
        resume,
        streaming: output_format == "stream-json",
        model: model.clone(),
        no_input,
        stdin: StdinUse::default(),
        hooks: gemini_hooks(host),
        mcp: gemini_settings(host)
            .iter()
            .flat_map(super::mcp::from_mcp_servers)
            .collect(),
    };
    let mode = if yolo {
        "yolo".to_string()
    } else {
        approval_mode.unwrap_or_else(|| "default".into())
    };
    let dialect = GeminiDialect {
        session_id,
        model,
        prompt,
        output_format,
        workspace,
        mode,
        epoch: Timestamp::now().millis(),
        response: String::new(),
        tool_calls: 0,
    };
    Ok(CheckedArgs::Run(Box::new(invocation), Box::new(dialect)))
}

/// Gemini's auth check: an API key, Vertex or GCA in the environment, or an auth type in
/// `~/.gemini/settings.json`. A set `GOOGLE_GEMINI_BASE_URL` without a settings type makes
/// 0.61 pick the `gateway` type, which it then refuses.
fn check_auth(host: &Host) -> Result<(), ArgError> {
    let home = host.env("HOME").unwrap_or("~");
    let settings = PathBuf::from(home).join(".gemini").join("settings.json");
    let selected = std::fs::read_to_string(&settings)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .is_some_and(|v| v["security"]["auth"]["selectedType"].is_string());
    if selected {
        return Ok(());
    }
    if host.env("GOOGLE_GEMINI_BASE_URL").is_some() {
        return Err(ArgError::new("Invalid auth method selected.", 41));
    }
    let has_env = [
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_GCA",
    ]
    .iter()
    .any(|k| host.env(k).is_some_and(|v| !v.is_empty()));
    if has_env {
        return Ok(());
    }
    Err(ArgError::new(
        format!(
            "Please set an Auth method in your {} or specify one of the following environment variables before running: GEMINI_API_KEY, GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_GENAI_USE_GCA",
            settings.display()
        ),
        41,
    ))
}

pub struct GeminiDialect {
    session_id: String,
    model: String,
    prompt: String,
    output_format: String,
    workspace: Vec<PathBuf>,
    /// The approval mode, which decides the tools the model is offered.
    mode: String,
    /// When the run started, in its tool ids.
    epoch: i64,
    response: String,
    tool_calls: u64,
}

/// A line of the stream: its type and time first, as the real CLI writes every line.
fn line(kind: &str) -> Object {
    Object::new().with("type", kind).with("timestamp", now())
}

/// A tool's or the run's `error`.
fn tool_error(kind: &str, message: &str) -> Object {
    Object::new().with("type", kind).with("message", message)
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// BeforeTool hooks from the system settings (GEMINI_CLI_SYSTEM_SETTINGS_PATH) and the user's
/// (`$HOME/.gemini/settings.json`), as 0.61 merges them.
/// Its settings files, user then system, as read.
fn gemini_settings(host: &Host) -> Vec<Value> {
    let mut files = Vec::new();
    if let Some(home) = host.env("HOME") {
        files.push(std::path::Path::new(home).join(".gemini/settings.json"));
    }
    if let Some(system) = host.env("GEMINI_CLI_SYSTEM_SETTINGS_PATH") {
        files.push(std::path::PathBuf::from(system));
    }
    files
        .iter()
        .map(|f| super::hooks::read_settings(&f.display().to_string()))
        .collect()
}

fn gemini_hooks(host: &Host) -> Vec<super::hooks::SimHook> {
    gemini_settings(host)
        .iter()
        .flat_map(|settings| super::hooks::from_settings(settings, "BeforeTool", true))
        .collect()
}

fn tool_name_and_params(call: &ToolCall) -> (&'static str, Value) {
    match call {
        ToolCall::Command { command } => (
            "run_shell_command",
            // What the model (the stub) asks for, which the real CLI echoes.
            json!({"command": command, "description": format!("Run {command}")}),
        ),
        ToolCall::Write { path, content } => (
            "write_file",
            json!({"file_path": path.display().to_string(), "content": content}),
        ),
        ToolCall::Edit { path, old, new } => (
            "replace",
            json!({"file_path": path.display().to_string(), "old_string": old, "new_string": new,
                   "instruction": format!("Replace {old:?} with {new:?}.")}),
        ),
        ToolCall::Read { path } => (
            "read_file",
            json!({"file_path": path.display().to_string()}),
        ),
    }
}

impl GeminiDialect {
    /// `<tool>__<tool>_<epoch-ms>_<n>`, as 0.61 names its calls: the time the model asked for
    /// it, and its place among the calls asked for at once (one at a time here).
    fn tool_id(&self, name: &str, id: &str) -> String {
        let asked_at = self.epoch + id.parse::<i64>().unwrap_or(0);
        format!("{name}__{name}_{asked_at}_0")
    }

    /// Assistant text as the real CLI relays it: the model's chunks (four words each, from
    /// the stub model), a line that leads to a tool call ending in a newline, the answer not.
    fn assistant_text(&mut self, out: &mut Emitter, text: &str, answer: bool) {
        self.response.push_str(text);
        self.response.push('\n');
        let text = if answer {
            text.to_string()
        } else {
            format!("{text}\n")
        };
        for piece in crate::stub::anthropic::pieces(&text) {
            out.emit_in_order(
                line("message")
                    .with("role", "assistant")
                    .with("content", piece)
                    .with("delta", true),
            );
        }
    }

    /// The real CLI's order; its per-model breakdown (`models`) is not played.
    fn stats(&self, end: &RunEnd) -> Object {
        Object::new()
            .with("total_tokens", end.input_tokens + end.output_tokens)
            .with("input_tokens", end.input_tokens)
            .with("output_tokens", end.output_tokens)
            .with("cached", end.cached_tokens)
            .with("input", end.input_tokens - end.cached_tokens)
            .with("duration_ms", end.duration_ms)
            .with("tool_calls", self.tool_calls)
    }
}

impl Dialect for GeminiDialect {
    fn name(&self) -> &'static str {
        "gemini"
    }

    fn workspace(&self) -> Option<Vec<PathBuf>> {
        Some(self.workspace.clone())
    }

    fn offers(&self, call: &ToolCall) -> bool {
        let (name, _) = tool_name_and_params(call);
        match self.mode.as_str() {
            "yolo" => true,
            "auto_edit" | "plan" => EDIT_TOOLS.contains(&name),
            _ => READ_TOOLS.contains(&name),
        }
    }

    fn hook_input(&self, call: &ToolCall, cwd: &std::path::Path) -> Value {
        let (tool, input) = tool_name_and_params(call);
        json!({"session_id": self.session_id, "cwd": cwd.display().to_string(),
               "hook_event_name": "BeforeTool", "timestamp": now(), "tool_name": tool, "tool_input": input})
    }

    fn session_id(&self) -> &str {
        &self.session_id
    }

    fn unknown_session(&mut self, _out: &mut Emitter, _id: &str) -> i32 {
        eprintln!("Error resuming session: No previous sessions found for this project.");
        42
    }

    fn start(&mut self, out: &mut Emitter) {
        if self.mode == "yolo" {
            for _ in 0..2 {
                eprintln!("YOLO mode is enabled. All tool calls will be automatically approved.");
            }
        }
        out.emit_in_order(
            line("init")
                .with("session_id", self.session_id.as_str())
                .with("model", self.model.as_str()),
        );
        out.emit_in_order(
            line("message")
                .with("role", "user")
                .with("content", self.prompt.as_str()),
        );
    }

    /// The model's thoughts are not in the real CLI's stream.
    fn thinking(&mut self, _out: &mut Emitter, _text: &str) {}

    fn message(&mut self, out: &mut Emitter, text: &str) {
        self.assistant_text(out, text, false);
    }

    fn answer(&mut self, out: &mut Emitter, text: &str) {
        self.assistant_text(out, text, true);
    }

    fn tool_started(&mut self, out: &mut Emitter, id: &str, call: &ToolCall) {
        self.tool_calls += 1;
        let (name, params) = tool_name_and_params(call);
        out.emit_in_order(
            line("tool_use")
                .with("tool_name", name)
                .with("tool_id", self.tool_id(name, id))
                .with("parameters", params),
        );
    }

    fn tool_finished(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, result: &ToolResult) {
        let (name, _) = tool_name_and_params(call);
        let mut event = line("tool_result")
            .with("tool_id", self.tool_id(name, id))
            .with("status", if result.ok { "success" } else { "error" });
        // A file tool that succeeded says nothing more; any other result carries its output.
        if !(result.ok && matches!(call, ToolCall::Write { .. } | ToolCall::Edit { .. })) {
            event.set("output", result.output.as_str());
        }
        if !result.ok {
            event.set("error", tool_error("execution_failed", &result.output));
        }
        out.emit_in_order(event);
    }

    fn mcp_call(
        &mut self,
        out: &mut Emitter,
        id: &str,
        server: &str,
        tool: &str,
        arguments: &Value,
        answer: &Result<String, String>,
    ) {
        self.tool_calls += 1;
        let name = format!("mcp_{server}_{tool}");
        let tool_id = self.tool_id(&name, id);
        out.emit_in_order(
            line("tool_use")
                .with("tool_name", name.as_str())
                .with("tool_id", tool_id.as_str())
                .with("parameters", arguments.clone()),
        );
        let mut event = line("tool_result")
            .with("tool_id", tool_id)
            .with("status", if answer.is_ok() { "success" } else { "error" });
        match answer {
            Ok(text) => event.set("output", text.as_str()),
            Err(text) => event.set("error", tool_error("execution_failed", text)),
        }
        out.emit_in_order(event);
    }

    fn tool_refused(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, why: &Refusal) {
        let (name, _) = tool_name_and_params(call);
        let (kind, message) = match (why, call.path()) {
            (Refusal::OutsideWorkspace { workspace }, Some(path)) => {
                let dirs: Vec<String> = workspace.iter().map(|d| d.display().to_string()).collect();
                (
                    "invalid_tool_params",
                    format!(
                        "Path not in workspace: Attempted path \"{}\" resolves outside the allowed workspace directories: {} or the project temp directory: /tmp/gemini/{}",
                        path.display(),
                        dirs.join(", "),
                        &self.session_id[..8]
                    ),
                )
            }
            (Refusal::Hook { reason }, _) => (
                "policy_violation",
                format!("Tool execution blocked: {reason}"),
            ),
            (Refusal::NotOffered, _) => (
                "tool_not_registered",
                format!(
                    "Tool \"{name}\" not found. Did you mean one of: \"update_topic\", \"grep_search\", \"invoke_agent\"?"
                ),
            ),
            _ => (
                "policy_violation",
                format!(
                    "Tool execution for \"{name}\" requires user confirmation, which is not supported in non-interactive mode."
                ),
            ),
        };
        // Gemini echoes a failed tool on stderr too.
        eprintln!("Error executing tool {name}: {message}");
        out.emit_in_order(
            line("tool_result")
                .with("tool_id", self.tool_id(name, id))
                .with("status", "error")
                .with("output", message.as_str())
                .with("error", tool_error(kind, &message)),
        );
    }

    fn retry_policy(&self, error: ApiError) -> RetryPolicy {
        // Ten attempts for server errors and rate limits; a client error, a bad key or a daily
        // quota end the run at once.
        let visible = match error {
            ApiError::ServerError | ApiError::Overloaded | ApiError::RateLimited { .. } => 9,
            _ => 0,
        };
        RetryPolicy { silent: 0, visible }
    }

    fn api_retry(&mut self, _out: &mut Emitter, error: ApiError, attempt: u32, _max: u32) -> u64 {
        // Gemini reports retries on stderr only; stdout stays silent.
        let status = crate::stub::gemini::http_status(error);
        match error {
            ApiError::RateLimited { .. } => {
                eprintln!("Attempt {attempt} failed: {}", gemini_error_message(error))
            }
            _ => eprintln!(
                "Attempt {attempt} failed with status {status}. Retrying with backoff... _ApiError: {}\n  status: {status}\n}}",
                crate::stub::gemini::error_body(error)
            ),
        }
        (1000u64 << attempt.min(5)).min(30_000)
    }

    fn api_failed(&mut self, out: &mut Emitter, error: ApiError, end: &RunEnd) -> i32 {
        let status = crate::stub::gemini::http_status(error);
        let detail = gemini_error_message(error);
        if self.retry_policy(error).visible > 0 {
            eprintln!("Attempt 10 failed: {detail}. Max attempts reached");
        }
        eprintln!(
            "Error when talking to Gemini API Full report available at: /tmp/gemini-client-error-Turn.run-sendMessageStream-{}.json {detail}",
            self.session_id
        );
        let quota_hint = "\nPlease wait and try again later. To increase your limits, request a quota increase through AI Studio, or switch to another /auth method";
        let message = match error {
            ApiError::RateLimited { retry_after_secs } => format!(
                "[API Error: {detail}\nSuggested retry after {retry_after_secs}s.]{quota_hint}"
            ),
            ApiError::UsageLimit { .. } => {
                format!(
                    "[API Error: You have exhausted your daily quota on this model.]{quota_hint}"
                )
            }
            _ => format!("[API Error: {detail}]"),
        };
        let result = line("result")
            .with("status", "error")
            .with("error", tool_error("unknown", &message))
            .with("stats", self.stats(end));
        match self.output_format.as_str() {
            "stream-json" => out.emit_in_order(result),
            _ => eprintln!("{message}"),
        }
        // Gemini exits with the HTTP status, modulo 256 (400 gives 144).
        i32::from(status % 256)
    }

    fn finish(&mut self, out: &mut Emitter, end: &RunEnd) -> i32 {
        let stats = self.stats(end);
        let mut result = line("result").with("status", if end.ok { "success" } else { "error" });
        if !end.ok {
            result.set("error", tool_error("FatalToolExecutionError", &end.summary));
        }
        match self.output_format.as_str() {
            "stream-json" => out.emit_in_order(result.with("stats", stats)),
            "json" => {
                let mut doc = json!({"session_id": self.session_id, "response": self.response.trim(), "stats": stats.to_value()});
                if !end.ok {
                    doc["error"] = json!({"type": "FatalToolExecutionError", "message": end.summary, "code": 1});
                }
                print_document(&format!("{doc:#}"));
            }
            _ if end.ok => print_document(self.response.trim()),
            _ => eprintln!("[ERROR] {}", end.summary),
        }
        if end.ok { 0 } else { 1 }
    }
}

/// What Gemini quotes of an API error: the body, or its message for the errors it retries.
fn gemini_error_message(error: ApiError) -> String {
    let body = crate::stub::gemini::error_body(error);
    match error {
        ApiError::Overloaded | ApiError::RateLimited { .. } => {
            body["error"]["message"].as_str().unwrap_or("").to_string()
        }
        _ => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(trusted: bool) -> Host {
        let mut env = vec![("GEMINI_API_KEY".to_string(), "k".to_string())];
        if trusted {
            env.push(("GEMINI_CLI_TRUST_WORKSPACE".into(), "true".into()));
        }
        Host {
            cwd: PathBuf::from("/w"),
            is_root: false,
            stdin_is_tty: true,
            env,
        }
    }
    fn check(args: &[&str], host: &Host) -> Result<CheckedArgs, ArgError> {
        check_args(
            &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            host,
        )
    }

    #[test]
    fn an_untrusted_folder_exits_55() {
        let Err(e) = check(&["-p", "hi"], &host(false)) else {
            panic!()
        };
        assert_eq!(e.code, 55);
        assert!(
            e.message
                .starts_with("\u{1b}[31mGemini CLI is not running in a trusted directory.")
        );
        assert!(check(&["-p", "hi", "--skip-trust"], &host(false)).is_ok());
    }

    #[test]
    fn the_auth_method_is_checked_before_trust() {
        let mut h = host(false);
        h.env.clear();
        let Err(e) = check(&["-p", "hi"], &h) else {
            panic!()
        };
        assert_eq!(e.code, 41);
        assert!(e.message.starts_with("Please set an Auth method in your"));
        h.env
            .push(("GOOGLE_GEMINI_BASE_URL".into(), "http://x".into()));
        let Err(e) = check(&["-p", "hi"], &h) else {
            panic!()
        };
        assert_eq!(
            (e.code, e.message.as_str()),
            (41, "Invalid auth method selected.")
        );
    }

    #[test]
    fn yolo_and_approval_mode_conflict() {
        let Err(e) = check(&["-p", "hi", "-y", "--approval-mode=yolo"], &host(true)) else {
            panic!()
        };
        assert!(
            e.message
                .starts_with("Cannot use both --yolo (-y) and --approval-mode together.")
        );
    }

    #[test]
    fn include_directories_join_the_workspace() {
        let Ok(CheckedArgs::Run(_, dialect)) =
            check(&["--prompt=hi", "--include-directories=/a,b"], &host(true))
        else {
            panic!()
        };
        assert_eq!(
            dialect.workspace().unwrap(),
            [
                PathBuf::from("/w"),
                PathBuf::from("/a"),
                PathBuf::from("/w/b")
            ]
        );
        let Err(e) = check(&[], &host(true)) else {
            panic!()
        };
        assert_eq!(e.code, 42);
    }
}
