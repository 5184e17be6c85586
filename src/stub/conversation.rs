//! What one request asks of the story, whatever the API: the facts read from its body, and the
//! reply (a model turn, an API error, or the story being over). Pure but for the failure
//! counters, which remember how often a flaky turn has failed already.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use crate::agents::ORCH_MCP_SERVER;
use crate::scenario::{self, ApiError, Cli, Context, Scenario, Step};

/// The three APIs the stub speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Anthropic Messages (Claude Code).
    Anthropic,
    /// OpenAI Responses (Codex).
    OpenAi,
    /// Google generativelanguage v1beta (Gemini CLI).
    Gemini,
}

impl Api {
    pub fn cli(self) -> Cli {
        match self {
            Api::Anthropic => Cli::Claude,
            Api::OpenAi => Cli::Codex,
            Api::Gemini => Cli::Gemini,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
            Api::Gemini => "gemini",
        }
    }
}

/// What the stub reads from a request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub model: String,
    /// The operator's prompt: the first thing the user said, without the CLI's context blocks.
    pub prompt: String,
    /// The agent's working directory, as the CLI states it in its context.
    pub workdir: Option<String>,
    /// Tool results already in the conversation: which turn of the story comes next.
    pub tool_results: usize,
    /// The tools the CLI offers the model.
    pub tools: Vec<String>,
    /// The agent's own conversation; false for side calls (routing, titles).
    pub main: bool,
    pub stream: bool,
}

impl Facts {
    /// `path` as the CLI's tools want it: absolute against the working directory when known.
    pub fn absolute(&self, path: &str) -> String {
        match &self.workdir {
            Some(dir) if !Path::new(path).is_absolute() => {
                format!("{}/{path}", dir.trim_end_matches('/'))
            }
            _ => path.to_string(),
        }
    }

    pub fn offers(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }
}

/// The stub's answer to one request of the agent's conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The model's turn: what it says and does, after `delay_ms`. May end in `Hang` or `Crash`.
    Turn {
        steps: Vec<Step>,
        delay_ms: u64,
    },
    Error(ApiError),
    /// The story has nothing more to say: a short closing answer.
    Over,
}

/// How a streamed reply ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The stream closes normally.
    Complete,
    /// The stream stays open and silent for ever: a model that never answers.
    Hang,
    /// The connection is cut in the middle.
    Crash,
}

/// A streamed reply: its frames (SSE events) and how the stream ends after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub frames: Vec<String>,
    pub ending: Ending,
}

/// An API error as HTTP: status, headers and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpError {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
}

/// The text of a turn past the end of the story.
pub const OVER_TEXT: &str = "Done.";

/// How many times each failing turn has failed, per worker and story; and when a usage
/// limit was first hit, per worker and story (it lifts at its reset, as a real one does).
#[derive(Default)]
pub struct Failures(
    Mutex<HashMap<(String, usize), u32>>,
    Mutex<HashMap<String, std::time::Instant>>,
);

/// The reply to a request of `worker`'s conversation playing `scenario`.
pub fn decide(
    scenario: Scenario,
    api: Api,
    facts: &Facts,
    worker: &str,
    failures: &Failures,
) -> Reply {
    let mut steps = scenario.steps(&Context {
        cli: api.cli(),
        prompt: &facts.prompt,
    });
    // A Claude with orchestrate's MCP server locks what it writes, as the sim does.
    if facts.offers(&format!("mcp__{ORCH_MCP_SERVER}__nexus_lock")) {
        steps = scenario::with_locks(steps);
    }
    let Some(turn) = scenario::turn(&steps, facts.tool_results) else {
        return Reply::Over;
    };
    for step in turn {
        if let Step::Fail {
            error: ApiError::UsageLimit { resets_in_secs },
            ..
        } = step
        {
            let key = format!("{worker}/{scenario}");
            let mut since = failures.1.lock().unwrap_or_else(|p| p.into_inner());
            let first = *since.entry(key).or_insert_with(std::time::Instant::now);
            let elapsed = first.elapsed().as_secs();
            if elapsed < *resets_in_secs {
                return Reply::Error(ApiError::UsageLimit {
                    resets_in_secs: resets_in_secs - elapsed,
                });
            }
            continue;
        }
        if let Step::Fail { error, times } = step {
            let key = (format!("{worker}/{scenario}"), facts.tool_results);
            let mut counts = failures.0.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(key).or_default();
            if times.is_none_or(|limit| *count < limit) {
                *count += 1;
                return Reply::Error(*error);
            }
        }
    }
    let delay_ms = turn
        .iter()
        .map(|s| match s {
            Step::Wait { ms } => *ms,
            _ => 0,
        })
        .sum();
    let steps = turn
        .iter()
        .filter(|s| !matches!(s, Step::Wait { .. } | Step::Fail { .. }))
        .cloned()
        .collect();
    Reply::Turn { steps, delay_ms }
}

/// What follows `marker` in `text` up to the end of the line or a tag: a path the CLI states
/// in its context (`Primary working directory: /w`, `<cwd>/w</cwd>`).
pub fn value_after<'a>(text: &'a str, marker: &str) -> Option<&'a str> {
    let start = text.find(marker)? + marker.len();
    let rest = text[start..].trim_start_matches([' ', '\t']);
    let end = rest.find(['\n', '<']).unwrap_or(rest.len());
    let value = rest[..end].trim_end();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(tool_results: usize) -> Facts {
        Facts {
            prompt: "add a health endpoint".into(),
            tool_results,
            main: true,
            ..Facts::default()
        }
    }

    #[test]
    fn the_turn_follows_the_tool_results_in_the_request() {
        let failures = Failures::default();
        let first = decide(Scenario::Success, Api::Anthropic, &facts(0), "w", &failures);
        let Reply::Turn { steps, .. } = first else {
            panic!("{first:?}")
        };
        assert!(matches!(steps.last(), Some(Step::Act(_))));
        let last = decide(Scenario::Success, Api::Anthropic, &facts(4), "w", &failures);
        let Reply::Turn { steps, .. } = last else {
            panic!("{last:?}")
        };
        assert!(matches!(steps.last(), Some(Step::Answer(_))));
        assert_eq!(
            decide(Scenario::Success, Api::Anthropic, &facts(5), "w", &failures),
            Reply::Over
        );
    }

    #[test]
    fn a_flaky_turn_fails_twice_then_goes_on_per_worker() {
        let failures = Failures::default();
        let ask = |worker| decide(Scenario::Flaky, Api::OpenAi, &facts(0), worker, &failures);
        assert_eq!(ask("a"), Reply::Error(ApiError::ServerError));
        assert_eq!(ask("a"), Reply::Error(ApiError::ServerError));
        assert!(matches!(ask("a"), Reply::Turn { .. }));
        assert_eq!(ask("b"), Reply::Error(ApiError::ServerError));
    }

    #[test]
    fn slow_turns_wait_before_answering() {
        let failures = Failures::default();
        let reply = decide(Scenario::Slow, Api::Gemini, &facts(1), "w", &failures);
        let Reply::Turn { delay_ms, steps } = reply else {
            panic!()
        };
        assert!(delay_ms > 0);
        assert!(!steps.iter().any(|s| matches!(s, Step::Wait { .. })));
    }

    #[test]
    fn paths_become_absolute_in_the_workdir() {
        let f = Facts {
            workdir: Some("/w/".into()),
            ..Facts::default()
        };
        assert_eq!(f.absolute("notes/a.md"), "/w/notes/a.md");
        assert_eq!(f.absolute("/etc/x"), "/etc/x");
        assert_eq!(
            value_after("<cwd>/tmp/a b</cwd>", "<cwd>"),
            Some("/tmp/a b")
        );
        assert_eq!(value_after("dir: /x/y \n - next", "dir:"), Some("/x/y"));
        assert_eq!(value_after("dir:\n", "dir:"), None);
    }
}
