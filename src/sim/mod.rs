//! `orchestrate sim claude|codex|gemini [argv]`: stand-ins for the agent CLIs, so demos and
//! tests never need an API key. Each checks its argv like the real CLI (refusing bad flags with
//! the real error text and exit code), then plays a scenario in the CLI's native wire format,
//! doing real work in its working directory.
//!
//! The story comes from `crate::scenario`, the same one the stub model makes a real CLI act
//! out. Environment: `ORCHESTRATE_SIM_SCENARIO` (a scenario name; success by default) and
//! `ORCHESTRATE_SIM_SPEED` (1 = human-like pacing, 0 = as fast as possible).

mod argv;
mod claude;
mod codex;
mod gemini;
pub mod hooks;
pub mod mcp;
mod ordered;
mod script;
mod sessions;

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::scenario::{ApiError, Cli, Context, Scenario};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SimCli {
    Claude,
    Codex,
    Gemini,
}

/// What every CLI's argv boils down to once checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub prompt: String,
    /// Where the agent works (its cwd, or codex `-C`).
    pub workdir: PathBuf,
    /// Directories the agent may touch besides `workdir` (`--add-dir`, `--include-directories`).
    pub extra_dirs: Vec<PathBuf>,
    /// The conversation to continue, if resuming.
    pub resume: Option<String>,
    /// True when the CLI would stream JSON lines; false for its one-document or text modes.
    pub streaming: bool,
    pub model: String,
    /// The CLI's refusal when no prompt came from argv or stdin.
    pub no_input: ArgError,
    /// What the CLI does with a piped stdin.
    pub stdin: StdinUse,
    /// Pre-tool hooks from the CLI's settings, run before every tool as the real CLI does.
    pub hooks: Vec<hooks::SimHook>,
    /// The stdio MCP servers its configuration names.
    pub mcp: Vec<mcp::McpServerSpec>,
}

/// How a CLI reads a stdin that is not a terminal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StdinUse {
    /// Said (on stderr) before reading the prompt from stdin.
    pub prompt_notice: Option<&'static str>,
    /// When set, a piped stdin is read to its end even with a prompt, and appended to it;
    /// this is said first.
    pub extra_notice: Option<&'static str>,
}

/// A refusal with the real CLI's text (on stderr) and exit code.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError {
    pub message: String,
    pub code: i32,
}

impl ArgError {
    pub fn new(message: impl Into<String>, code: i32) -> Self {
        ArgError {
            message: message.into(),
            code,
        }
    }
}

/// Facts about the process the checks depend on, read once at the edge.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub cwd: PathBuf,
    pub is_root: bool,
    pub stdin_is_tty: bool,
    pub env: Vec<(String, String)>,
}

impl Host {
    pub fn current() -> Self {
        Host {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            // SAFETY: geteuid and isatty have no preconditions.
            is_root: unsafe { libc::geteuid() } == 0,
            stdin_is_tty: unsafe { libc::isatty(0) } == 1,
            env: std::env::vars().collect(),
        }
    }

    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A scenario's tool call with its paths resolved against the working directory.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolCall {
    Command {
        command: String,
    },
    Write {
        path: PathBuf,
        content: String,
    },
    Edit {
        path: PathBuf,
        old: String,
        new: String,
    },
    Read {
        path: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ToolResult {
    pub ok: bool,
    pub output: String,
    pub exit_code: Option<i32>,
}

/// Why a tool call was refused (the `blocker` scenario and Gemini's workspace check).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Headless mode denied an action that needs approval.
    NeedsApproval,
    /// Gemini: the path is outside the workspace directories.
    OutsideWorkspace { workspace: Vec<PathBuf> },
    /// The CLI's mode does not offer this tool (Gemini's headless default and auto_edit).
    NotOffered,
    /// A pre-tool hook blocked it, saying why.
    Hook { reason: String },
}

/// How a run ends, for the CLI's final event.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnd {
    pub ok: bool,
    pub summary: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cost_usd: f64,
    pub turns: u32,
    pub duration_ms: u64,
    pub denials: Vec<(String, ToolCall)>,
}

/// One CLI's wire format. The scenario runner calls these in order; each prints native lines.
pub trait Dialect {
    fn name(&self) -> &'static str;
    fn start(&mut self, out: &mut Emitter);
    fn thinking(&mut self, out: &mut Emitter, text: &str);
    fn message(&mut self, out: &mut Emitter, text: &str);
    /// The run's last message, its answer; for most CLIs one more message.
    fn answer(&mut self, out: &mut Emitter, text: &str) {
        self.message(out, text);
    }
    fn tool_started(&mut self, out: &mut Emitter, id: &str, call: &ToolCall);
    fn tool_finished(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, result: &ToolResult);
    fn tool_refused(&mut self, out: &mut Emitter, id: &str, call: &ToolCall, why: &Refusal);
    /// Prints the closing event(s) and returns the exit code.
    fn finish(&mut self, out: &mut Emitter, end: &RunEnd) -> i32;
    /// An MCP tool call the model makes: `server`'s `tool` with `arguments`, and the server's
    /// text answer (`Err` when the tool said it failed).
    fn mcp_call(
        &mut self,
        out: &mut Emitter,
        id: &str,
        server: &str,
        tool: &str,
        arguments: &Value,
        answer: &Result<String, String>,
    );
    /// How many tool rounds one run may take (Claude `--max-turns`); `None`: no limit.
    fn max_turns(&self) -> Option<u32> {
        None
    }
    /// What the CLI prints when the run used its `max` turns with the story not done; returns
    /// the exit code. Only a dialect with [`Dialect::max_turns`] is asked.
    fn out_of_turns(&mut self, out: &mut Emitter, end: &RunEnd, _max: u32) -> i32 {
        self.finish(out, end)
    }
    /// How the CLI retries a request the API refused with `error`.
    fn retry_policy(&self, error: ApiError) -> RetryPolicy;
    /// What the CLI prints before visible retry `attempt` of `max`; returns the delay it
    /// waits before that retry, in milliseconds.
    fn api_retry(&mut self, out: &mut Emitter, error: ApiError, attempt: u32, max: u32) -> u64;
    /// What the CLI prints when it gives up on `error`; returns the exit code.
    fn api_failed(&mut self, out: &mut Emitter, error: ApiError, end: &RunEnd) -> i32;
    /// Directories the CLI lets tools touch, when it checks (Gemini).
    fn workspace(&self) -> Option<Vec<PathBuf>> {
        None
    }
    /// Whether a call its hook blocks still shows as started (the model's request, for
    /// Claude and Gemini); Codex shows nothing.
    fn announces_blocked_calls(&self) -> bool {
        true
    }
    /// Whether the CLI's mode offers the model this tool.
    fn offers(&self, _call: &ToolCall) -> bool {
        true
    }
    /// What its pre-tool hook reads on stdin for `call`: the tool's name and input as this
    /// CLI names them (Claude `Bash`/`Write`/`Edit`, Codex `Bash`/`apply_patch`, Gemini
    /// `run_shell_command`/`write_file`/`replace`).
    fn hook_input(&self, call: &ToolCall, cwd: &Path) -> serde_json::Value;
    /// The conversation's id, as the CLI reports it.
    fn session_id(&self) -> &str;
    /// What the CLI prints when asked to resume a conversation it does not have; the exit code.
    fn unknown_session(&mut self, out: &mut Emitter, id: &str) -> i32;
}

/// How a CLI retries an API failure, as the real one does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Failures it absorbs without printing anything (Codex's request-level retries).
    pub silent: u32,
    /// Retries it announces before giving up.
    pub visible: u32,
}

/// Prints native JSON lines as they happen, or keeps them for a CLI's one-document modes.
pub struct Emitter {
    streaming: bool,
    kept: Vec<Value>,
}

impl Emitter {
    pub fn new(streaming: bool) -> Self {
        Emitter {
            streaming,
            kept: Vec::new(),
        }
    }

    pub fn emit(&mut self, value: Value) {
        if self.streaming {
            print_line(&value.to_string());
        } else {
            self.kept.push(value);
        }
    }

    /// A line whose fields are printed in the order given (see `ordered`).
    pub fn emit_in_order(&mut self, object: ordered::Object) {
        if self.streaming {
            print_line(&serde_json::to_string(&object).unwrap_or_default());
        } else {
            self.kept.push(object.to_value());
        }
    }

    pub fn kept(&self) -> &[Value] {
        &self.kept
    }

    /// Writes a partial line and no newline: a write torn by a crash.
    pub fn torn(&mut self, partial: &str) {
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(partial.as_bytes());
        let _ = stdout.flush();
    }
}

fn print_line(line: &str) {
    let mut stdout = io::stdout().lock();
    // A closed stdout (the reader went away) ends the agent, as it would the real CLI.
    if writeln!(stdout, "{line}")
        .and_then(|_| stdout.flush())
        .is_err()
    {
        std::process::exit(141);
    }
}

/// Plain text to stdout (the CLIs' text and one-document modes).
pub fn print_document(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

/// Runs the simulated CLI; returns the process exit code.
pub fn run(cli: SimCli, args: &[String]) -> i32 {
    let host = Host::current();
    let scenario = match host
        .env("ORCHESTRATE_SIM_SCENARIO")
        .map(str::parse::<Scenario>)
    {
        None => Scenario::Success,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            eprintln!("orchestrate sim: ORCHESTRATE_SIM_SCENARIO: {e}");
            return 2;
        }
    };
    let speed = host
        .env("ORCHESTRATE_SIM_SPEED")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    let checked = match cli {
        SimCli::Claude => claude::check_args(args, &host),
        SimCli::Codex => codex::check_args(args, &host),
        SimCli::Gemini => gemini::check_args(args, &host),
    };
    let (mut invocation, dialect, cli): (Invocation, Box<dyn Dialect>, Cli) = match checked {
        Ok(CheckedArgs::Version(text)) => {
            print_document(&text);
            return 0;
        }
        Ok(CheckedArgs::Run(invocation, dialect)) => {
            let cli = match cli {
                SimCli::Claude => Cli::Claude,
                SimCli::Codex => Cli::Codex,
                SimCli::Gemini => Cli::Gemini,
            };
            (*invocation, dialect, cli)
        }
        Err(err) => {
            eprintln!("{}", err.message);
            return err.code;
        }
    };
    if !host.stdin_is_tty {
        if invocation.prompt.is_empty() {
            if let Some(notice) = invocation.stdin.prompt_notice {
                eprintln!("{notice}");
            }
            invocation.prompt = read_stdin_prompt();
        } else if let Some(notice) = invocation.stdin.extra_notice {
            eprintln!("{notice}");
            let extra = read_stdin_prompt();
            if !extra.is_empty() {
                invocation.prompt = format!("{}\n\n<stdin>\n{extra}\n</stdin>", invocation.prompt);
            }
        }
    }
    if invocation.prompt.trim().is_empty() {
        eprintln!("{}", invocation.no_input.message);
        return invocation.no_input.code;
    }
    let mut out = Emitter::new(invocation.streaming);
    let sessions = sessions::Sessions::of(&host, cli.name());
    let mut dialect = dialect;
    // A resumed conversation continues after the tool results it already had.
    let turns_done = match invocation.resume.as_deref() {
        None => 0,
        Some(id) => {
            let id = if id == "latest" {
                sessions.latest().unwrap_or_default()
            } else {
                id.to_string()
            };
            match sessions.turns_done(&id) {
                Some(done) => done,
                None => return dialect.unknown_session(&mut out, &id),
            }
        }
    };
    // A review request is answered with the verdict the test asked for, whatever the run's
    // story: `ORCHESTRATE_SIM_VERDICT_<CLI>`, else `ORCHESTRATE_SIM_VERDICT`, else approved.
    let scenario = if invocation.prompt.contains(crate::review::REVIEW_MARKER) {
        let own = format!("ORCHESTRATE_SIM_VERDICT_{}", cli.name().to_uppercase());
        Scenario::for_verdict(
            host.env(&own)
                .or_else(|| host.env("ORCHESTRATE_SIM_VERDICT"))
                .unwrap_or_default(),
        )
    } else {
        scenario
    };
    let mut steps = scenario.steps(&Context {
        cli,
        prompt: &invocation.prompt,
    });
    if invocation
        .mcp
        .iter()
        .any(|s| s.name == crate::agents::ORCH_MCP_SERVER)
    {
        steps = crate::scenario::with_locks(steps);
    }
    let rest = crate::scenario::from_turn(&steps, turns_done);
    script::play(
        rest,
        turns_done,
        &sessions,
        &invocation,
        dialect,
        &mut out,
        Pace(speed),
    )
}

/// A checked command line: print a version, or run.
pub enum CheckedArgs {
    Version(String),
    Run(Box<Invocation>, Box<dyn Dialect>),
}

/// Reads the prompt from a piped stdin to EOF, as the CLIs do; an open pipe that never closes
/// blocks here, as it blocks the real CLIs.
fn read_stdin_prompt() -> String {
    let mut text = String::new();
    let _ = io::stdin().lock().read_to_string(&mut text);
    text.trim().to_string()
}

/// Scales the scenario's delays: 1.0 is human-like, 0.0 is instant.
#[derive(Debug, Clone, Copy)]
pub struct Pace(pub f64);

impl Pace {
    pub fn wait(self, base_ms: u64) {
        let ms = (base_ms as f64 * self.0) as u64;
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }
}

/// A UUID-shaped id, unique enough for a simulated session.
pub fn session_uuid(salt: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(std::process::id());
    for b in salt.bytes().chain(nanos.to_le_bytes()) {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let low = hash.rotate_left(29) ^ (nanos as u64);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        hash >> 32,
        (hash >> 16) & 0xffff,
        hash & 0xfff,
        low & 0xfff,
        (low >> 12) & 0xffff_ffff_ffff
    )
}

/// Whether `path` is inside one of `roots` (both made absolute and canonical where possible).
pub fn is_within(path: &Path, roots: &[PathBuf]) -> bool {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    roots.iter().any(|root| {
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
        path.starts_with(&root)
    })
}

/// Resolves `dir` against `base` when relative.
pub fn absolute(base: &Path, dir: &str) -> PathBuf {
    let p = Path::new(dir);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

#[cfg(test)]
mod tests {
    use crate::agents::AgentKind;
    use crate::agents::pins::{pin, version_in};

    #[test]
    fn the_sims_report_the_pinned_versions() {
        for (kind, version) in [
            (AgentKind::Claude, super::claude::VERSION),
            (AgentKind::Codex, super::codex::VERSION),
            (AgentKind::Gemini, super::gemini::VERSION),
        ] {
            assert_eq!(version_in(version), pin(kind).map(|(_, v)| v), "{kind}");
        }
    }
}
