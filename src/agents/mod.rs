//! One adapter per agent CLI: how to launch it (argv) and how to read what it prints
//! (native stream -> `AgentEvent`s). Nothing outside this module parses a native format.
//!
//! The facts behind every flag and mapping are in `shared/research/agent-cli-formats.md`.

pub mod claude;
pub mod codex;
mod draft;
pub mod events;
mod framing;
pub mod gemini;
pub mod guard;
pub mod hook;
mod normalize;
pub mod pins;
mod stream_state;
pub mod stub_env;
mod todo;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use draft::Draft;
pub use framing::{Frame, LineFramer, MAX_LINE_BYTES};
pub use normalize::{LineIssue, NormalizeStats, Normalizer, Problem, strip_terminal_escapes};

use crate::worker::state::ExitFacts;

/// The name of the orchestrator's own MCP server as workers see it. No underscore: Gemini's
/// policy parser splits tool names on the first `_` after `mcp_`.
pub const ORCH_MCP_SERVER: &str = "orch";
/// The tool through which a worker reports semantic events (finding, review, milestone...).
pub const REPORT_TOOL: &str = "report_event";

/// The CLIs' tools that write the file they name (Claude's, then Gemini's): what counts as an
/// edit in a worker's progress, and what the sandbox's stream check reads as a write.
pub const FILE_WRITING_TOOLS: [&str; 6] = [
    "Write",
    "Edit",
    "MultiEdit",
    "NotebookEdit",
    "write_file",
    "replace",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    Claude,
    Codex,
    Gemini,
    /// Any command that already prints `AgentEvent` JSON lines.
    Events,
}

impl AgentKind {
    pub const ALL: [AgentKind; 4] = [
        AgentKind::Claude,
        AgentKind::Codex,
        AgentKind::Gemini,
        AgentKind::Events,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
            AgentKind::Events => "events",
        }
    }

    pub fn adapter(self) -> Box<dyn Adapter> {
        match self {
            AgentKind::Claude => Box::<claude::ClaudeAdapter>::default(),
            AgentKind::Codex => Box::<codex::CodexAdapter>::default(),
            AgentKind::Gemini => Box::<gemini::GeminiAdapter>::default(),
            AgentKind::Events => Box::<events::EventsAdapter>::default(),
        }
    }

    /// The argv, environment and files that launch `spec` with this CLI.
    pub fn launch(self, spec: &LaunchSpec) -> Launch {
        match self {
            AgentKind::Claude => claude::launch(spec),
            AgentKind::Codex => codex::launch(spec),
            AgentKind::Gemini => gemini::launch(spec),
            AgentKind::Events => events::launch(spec),
        }
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for AgentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                format!("unknown agent {s:?} (expected claude, codex, gemini or events)")
            })
    }
}

/// How much a worker may do without asking. Each CLI spells it differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Autonomy {
    /// Reads and plans only.
    ReadOnly,
    /// Edits files in its workspace; anything else needs approval (denied when headless).
    Edit,
    /// No approvals and no CLI sandbox: our own sandbox is the guard.
    #[default]
    Full,
}

/// A stdio MCP server handed to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpServer {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Only this server: the CLI's own configured servers do not load (Claude
    /// `--strict-mcp-config`). Otherwise it joins them.
    pub exclusive: bool,
}

/// What a task asks of a CLI, independent of how that CLI spells it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LaunchSpec {
    /// The executable and any leading arguments: `["claude"]`, or
    /// `["/path/orchestrate", "sim", "claude"]` for the simulated agent.
    pub program: Vec<String>,
    pub prompt: String,
    pub workdir: PathBuf,
    pub extra_dirs: Vec<PathBuf>,
    pub model: Option<String>,
    pub autonomy: Autonomy,
    pub mcp: Option<McpServer>,
    /// The agent's own conversation id, to continue it.
    pub resume: Option<String>,
    /// Extra arguments from the agent profile, placed before the prompt.
    pub extra_args: Vec<String>,
    /// A private directory for files the launch needs (Gemini's MCP settings).
    pub state_dir: PathBuf,
    /// Where a commit in `workdir` writes outside it (a worktree's git data), for CLIs whose
    /// sandbox must be told.
    pub commit_dirs: Vec<PathBuf>,
    /// A JSON Schema the final answer must follow, for CLIs with a structured-output option
    /// (Claude `--json-schema`, Codex `--output-schema FILE`; Gemini has none).
    pub output_schema: Option<String>,
}

/// A ready-to-spawn command. There is never a shell in between: `argv[0]` is executed directly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Launch {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Inherited variables the process must not see (credentials of a real account).
    pub env_remove: Vec<String>,
    pub cwd: PathBuf,
    /// Files to write before spawning: `(path, contents)`.
    pub files: Vec<(PathBuf, String)>,
    /// Indexes into `argv` of arguments that carry secrets (an MCP server's environment);
    /// they are never journaled.
    pub secret_args: Vec<usize>,
}

impl Launch {
    pub(crate) fn new(spec: &LaunchSpec) -> Self {
        Launch {
            argv: spec.program.clone(),
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: spec.workdir.clone(),
            files: Vec::new(),
            secret_args: Vec::new(),
        }
    }

    /// Adds an argument that must not be journaled.
    pub(crate) fn secret_arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.secret_args.push(self.argv.len());
        self.arg(arg)
    }

    /// `argv` as it may be shown and journaled: secret arguments replaced.
    pub fn redacted_argv(&self) -> Vec<String> {
        self.argv
            .iter()
            .enumerate()
            .map(|(i, a)| {
                if self.secret_args.contains(&i) {
                    "<redacted>".to_string()
                } else {
                    a.clone()
                }
            })
            .collect()
    }

    pub(crate) fn arg(&mut self, arg: impl Into<String>) -> &mut Self {
        self.argv.push(arg.into());
        self
    }

    pub(crate) fn args<I: IntoIterator<Item = S>, S: Into<String>>(
        &mut self,
        args: I,
    ) -> &mut Self {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env_value(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Which of `types` the line names first as a `"type":"..."` value, at any depth, written
/// compactly as the CLIs write it. A cheap look before a typed parse that would be wasted:
/// None only sends the line the general way.
pub(crate) fn type_among(line: &str, types: &[&str]) -> Option<usize> {
    const KEY: &[u8] = b"\"type\":\"";
    // Built once: a `&str` pattern would set up its searcher again for every line.
    static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(KEY));
    let bytes = line.as_bytes();
    FINDER.find_iter(bytes).find_map(|at| {
        let rest = &bytes[at + KEY.len()..];
        // The whole name, so each candidate costs a length comparison, not a byte compare.
        let name = &rest[..memchr::memchr(b'"', rest)?];
        types.iter().position(|t| t.as_bytes() == name)
    })
}

/// Whether an adapter understood a native message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Handled,
    /// A message type this adapter does not know; it is ignored and counted.
    Unknown(String),
}

/// Reads one CLI's native stream. Stateful per stream (tool calls are paired with their
/// results, todo lists are diffed), pure otherwise: no clock, no I/O.
pub trait Adapter: Send {
    /// One JSON object from the stream.
    fn on_json(&mut self, value: Value, out: &mut Vec<Draft>) -> Parsed;

    /// A JSON line read straight from its text, for the CLI's hottest messages: typed and
    /// borrowed, it skips building a `Value`. An answer is exactly what `on_json` would give
    /// for the line; None sends it the general way (parsed, then `on_json`).
    fn on_line(&mut self, _line: &str, _out: &mut Vec<Draft>) -> Option<Parsed> {
        None
    }

    /// A line that is not JSON: stderr merged by the PTY, banners, debug output.
    fn on_text(&mut self, line: &str, out: &mut Vec<Draft>) {
        out.push(draft::text_line(line, &[]));
    }

    /// The stream ended; `exit` is how the process ended, when known.
    fn finish(&mut self, _exit: Option<&ExitFacts>, _out: &mut Vec<Draft>) {}
}

#[cfg(test)]
mod tests {
    use super::type_among;

    #[test]
    fn type_among_names_the_first_listed_type_at_any_depth() {
        let types = ["turn.started", "reasoning", "web_search"];
        let item = r#"{"type":"item.completed","item":{"type":"reasoning","text":"x"}}"#;
        assert_eq!(type_among(item, &types), Some(1));
        assert_eq!(type_among(r#"{"type":"turn.started"}"#, &types), Some(0));
        // A prefix, a longer name, a spaced or escaped value: not a match.
        assert_eq!(type_among(r#"{"type":"turn.started.x"}"#, &types), None);
        assert_eq!(type_among(r#"{"type":"turn"}"#, &types), None);
        assert_eq!(type_among(r#"{"type": "reasoning"}"#, &types), None);
        assert_eq!(type_among(r#"{"type":"reason\"ing"}"#, &types), None);
        // Cut short (a truncated line) is no match, and no panic.
        assert_eq!(type_among(r#"{"type":"reasoning"#, &types), None);
        assert_eq!(type_among(r#"{"type":""#, &types), None);
        // The first listed name in the line wins.
        let both = r#"{"type":"web_search","x":{"type":"reasoning"}}"#;
        assert_eq!(type_among(both, &types), Some(2));
    }
}
