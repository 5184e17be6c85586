//! The stories a simulated agent or the stub model plays, in CLI-neutral steps. One source for
//! both: `orchestrate sim` prints a story in a CLI's wire format and does the work itself;
//! `orchestrate stub-model` answers a real CLI's requests so the CLI acts the story out. Because
//! both read the same steps, the two never drift.
//!
//! A story is a list of [`Step`]s. The stub cuts it into model turns at each tool call: the
//! number of tool results already in a request says which turn comes next, so a resumed
//! conversation continues where it was.

pub mod stories;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use stories::planned_answer;

/// One thing the model does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Thinking aloud (a thinking block, a reasoning item).
    Think(String),
    /// Text the model says before its next action.
    Say(String),
    /// A tool call; the model waits for its result.
    Act(Action),
    /// A tool call that needs the operator's approval. The sim refuses it as a headless CLI
    /// does; through the stub, the real CLI's own permission system decides.
    Blocked(Action),
    /// A call to a tool of orchestrate's own MCP server (`orch`), e.g. `nexus_lock`; the
    /// model waits for its answer. See [`with_locks`].
    Mcp {
        tool: String,
        arguments: serde_json::Value,
    },
    /// The model takes this long before going on.
    Wait { ms: u64 },
    /// The final answer; the conversation ends.
    Answer(String),
    /// The API refuses the request of the turn this step is in: `times` times, then the turn
    /// goes on; or on every request when `times` is `None`.
    Fail { error: ApiError, times: Option<u32> },
    /// The model never answers.
    Hang,
    /// The sim dies by SIGABRT in the middle of a line; the stub cuts the connection.
    Crash,
}

/// A tool call in CLI-neutral terms. Paths are relative to the agent's working directory
/// unless absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run {
        command: String,
    },
    Write {
        path: String,
        content: String,
    },
    /// Replaces the first `old` in the file with `new`.
    Edit {
        path: String,
        old: String,
        new: String,
    },
    Read {
        path: String,
    },
}

impl Action {
    /// What a person reads in a log: the command, or the verb and the path.
    pub fn summary(&self) -> String {
        match self {
            Action::Run { command } => format!("run {command}"),
            Action::Write { path, .. } => format!("write {path}"),
            Action::Edit { path, .. } => format!("edit {path}"),
            Action::Read { path } => format!("read {path}"),
        }
    }
}

/// An API failure, as each service spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiError {
    /// 400: the request is malformed.
    BadRequest,
    /// 401: the key is wrong.
    Unauthorized,
    /// 429 with a `retry-after`.
    RateLimited { retry_after_secs: u32 },
    /// 500.
    ServerError,
    /// 529 (Anthropic's overload); 503 where a service has no 529.
    Overloaded,
    /// The account's usage limit, with when it resets.
    UsageLimit { resets_in_secs: u64 },
}

impl ApiError {
    pub fn http_status(self) -> u16 {
        match self {
            ApiError::BadRequest => 400,
            ApiError::Unauthorized => 401,
            ApiError::RateLimited { .. } | ApiError::UsageLimit { .. } => 429,
            ApiError::ServerError => 500,
            ApiError::Overloaded => 529,
        }
    }

    pub fn retry_after_secs(self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(u64::from(retry_after_secs)),
            ApiError::UsageLimit { resets_in_secs } => Some(resets_in_secs),
            _ => None,
        }
    }
}

/// Which agent CLI a story is told to. Tool names and a few texts differ per CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cli {
    Claude,
    Codex,
    Gemini,
}

impl Cli {
    pub fn name(self) -> &'static str {
        match self {
            Cli::Claude => "claude",
            Cli::Codex => "codex",
            Cli::Gemini => "gemini",
        }
    }
}

/// What a story may depend on: the CLI telling it and the prompt it was given.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub cli: Cli,
    pub prompt: &'a str,
}

/// The named stories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Looks around, writes and edits a notes file, checks it, answers (exit 0).
    Success,
    /// The same work, with pauses between the steps: a conversation to interrupt and resume.
    Slow,
    /// An action that needs approval, a long wait, then gives up (exit 0).
    Blocker,
    /// A command fails, then the API refuses the request (400): the CLI's error result.
    Fail,
    /// Thousands of lines as fast as the pace allows, then success.
    Chatty,
    /// Starts a long command and never answers again.
    Hang,
    /// Dies by SIGABRT in the middle of a line (the stub cuts the connection).
    Crash,
    /// Two server errors, then the success story: a run that recovers after retries.
    Flaky,
    /// Writes a notes file and commits it itself (inside a sandbox, commits need the git data).
    Commit,
    /// Every request fails with this API error.
    Api(ApiError),
    /// Tries what the sandbox must stop: `rm -rf victim`, then a write outside the allowed
    /// directories; answers with what happened.
    Risky,
    /// Pushes its branch (`git push origin HEAD`): a command that waits for the operator.
    Push,
    /// A reviewer that approves.
    Approve,
    /// A reviewer with a concern.
    Concern,
    /// A reviewer that finds a blocker.
    Reject,
    /// A reviewer whose answer holds no usable verdict.
    Garbage,
    /// A reviewer that says nothing.
    Silent,
}

impl Scenario {
    /// The story a reviewer plays for the verdict a test asked for (`concern`, `blocker`,
    /// `garbage`, `silent`, `hang`); anything else approves.
    pub fn for_verdict(verdict: &str) -> Scenario {
        match verdict {
            "concern" => Scenario::Concern,
            "blocker" => Scenario::Reject,
            "garbage" => Scenario::Garbage,
            "silent" => Scenario::Silent,
            "hang" => Scenario::Hang,
            _ => Scenario::Approve,
        }
    }

    /// Every name, for help texts and errors.
    pub const NAMES: [&'static str; 22] = [
        "success",
        "slow",
        "blocker",
        "fail",
        "chatty",
        "hang",
        "crash",
        "flaky",
        "commit",
        "api-400",
        "api-401",
        "api-429",
        "api-500",
        "api-529",
        "usage-limit",
        "risky",
        "push",
        "approve",
        "concern",
        "reject",
        "garbage",
        "silent",
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Success => "success",
            Scenario::Slow => "slow",
            Scenario::Blocker => "blocker",
            Scenario::Fail => "fail",
            Scenario::Chatty => "chatty",
            Scenario::Hang => "hang",
            Scenario::Crash => "crash",
            Scenario::Flaky => "flaky",
            Scenario::Commit => "commit",
            Scenario::Api(ApiError::BadRequest) => "api-400",
            Scenario::Api(ApiError::Unauthorized) => "api-401",
            Scenario::Api(ApiError::RateLimited { .. }) => "api-429",
            Scenario::Api(ApiError::ServerError) => "api-500",
            Scenario::Api(ApiError::Overloaded) => "api-529",
            Scenario::Api(ApiError::UsageLimit { .. }) => "usage-limit",
            Scenario::Risky => "risky",
            Scenario::Push => "push",
            Scenario::Approve => "approve",
            Scenario::Concern => "concern",
            Scenario::Reject => "reject",
            Scenario::Garbage => "garbage",
            Scenario::Silent => "silent",
        }
    }

    /// The story's steps as told to `ctx`.
    pub fn steps(self, ctx: &Context<'_>) -> Vec<Step> {
        stories::steps(self, ctx)
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // A usage limit that resets sooner than the hour: `usage-limit-5s`.
            Scenario::Api(ApiError::UsageLimit { resets_in_secs }) if *resets_in_secs != 3600 => {
                f.pad(&format!("usage-limit-{resets_in_secs}s"))
            }
            _ => f.pad(self.name()),
        }
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let scenario = match s {
            "success" => Scenario::Success,
            "slow" => Scenario::Slow,
            "blocker" => Scenario::Blocker,
            "fail" => Scenario::Fail,
            "chatty" => Scenario::Chatty,
            "hang" => Scenario::Hang,
            "crash" => Scenario::Crash,
            "flaky" => Scenario::Flaky,
            "commit" => Scenario::Commit,
            "api-400" => Scenario::Api(ApiError::BadRequest),
            "api-401" => Scenario::Api(ApiError::Unauthorized),
            "api-429" => Scenario::Api(ApiError::RateLimited {
                retry_after_secs: 2,
            }),
            "api-500" => Scenario::Api(ApiError::ServerError),
            "api-529" => Scenario::Api(ApiError::Overloaded),
            "usage-limit" => Scenario::Api(ApiError::UsageLimit {
                resets_in_secs: 3600,
            }),
            "risky" => Scenario::Risky,
            "push" => Scenario::Push,
            "approve" => Scenario::Approve,
            "concern" => Scenario::Concern,
            "reject" => Scenario::Reject,
            "garbage" => Scenario::Garbage,
            "silent" => Scenario::Silent,
            _ if s.starts_with("usage-limit-") && s.ends_with('s') => {
                let secs = &s["usage-limit-".len()..s.len() - 1];
                Scenario::Api(ApiError::UsageLimit {
                    resets_in_secs: secs.parse().map_err(|_| {
                        format!("scenario {s:?}: the reset is usage-limit-<seconds>s")
                    })?,
                })
            }
            _ => {
                return Err(format!(
                    "unknown scenario {s:?} (expected one of {})",
                    Scenario::NAMES.join(", ")
                ));
            }
        };
        Ok(scenario)
    }
}

/// A step that ends a model turn: the model waits for a tool's result, or stops talking.
fn ends_turn(step: &Step) -> bool {
    matches!(
        step,
        Step::Act(_)
            | Step::Blocked(_)
            | Step::Mcp { .. }
            | Step::Answer(_)
            | Step::Hang
            | Step::Crash
    ) || matches!(step, Step::Fail { times: None, .. })
}

/// The story of an agent that has orchestrate's MCP server: before it first writes a file,
/// it takes the lock on it (`nexus_lock`, the path as the story names it). The sim plays this
/// when its configuration names the server; the stub when the CLI offers the tool.
pub fn with_locks(steps: Vec<Step>) -> Vec<Step> {
    let mut locked = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(steps.len() + 2);
    for step in steps {
        if let Step::Act(Action::Write { path, .. } | Action::Edit { path, .. }) = &step
            && locked.insert(path.clone())
        {
            out.push(Step::Mcp {
                tool: "nexus_lock".into(),
                arguments: serde_json::json!({"action": "acquire", "resource": path}),
            });
        }
        out.push(step);
    }
    out
}

/// The steps of model turn `index` (0 is the answer to the prompt, 1 the answer to the first
/// tool result, ...). `None` once the story has nothing more to say.
pub fn turn(steps: &[Step], index: usize) -> Option<&[Step]> {
    let mut start = 0;
    for _ in 0..index {
        let end = steps[start..].iter().position(ends_turn)?;
        start += end + 1;
    }
    if start >= steps.len() {
        return None;
    }
    let end = steps[start..]
        .iter()
        .position(ends_turn)
        .map_or(steps.len(), |i| start + i + 1);
    Some(&steps[start..end])
}

/// The steps from model turn `index` on: where a conversation continues after `index` tool
/// results. Empty once the story has nothing more to say.
pub fn from_turn(steps: &[Step], index: usize) -> &[Step] {
    let mut start = 0;
    for _ in 0..index {
        match steps[start..].iter().position(ends_turn) {
            Some(end) => start += end + 1,
            None => return &[],
        }
    }
    &steps[start.min(steps.len())..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continued_conversation_starts_at_its_next_turn() {
        let steps = Scenario::Success.steps(&Context {
            cli: Cli::Claude,
            prompt: "x",
        });
        assert_eq!(from_turn(&steps, 0), &steps[..]);
        let rest = from_turn(&steps, 1);
        assert_eq!(rest[0], turn(&steps, 1).unwrap()[0]);
        assert!(from_turn(&steps, 99).is_empty());
    }

    #[test]
    fn names_round_trip() {
        for name in Scenario::NAMES {
            assert_eq!(name.parse::<Scenario>().unwrap().name(), name);
        }
        let err = "boom".parse::<Scenario>().unwrap_err();
        assert!(err.contains("expected one of success, slow"), "{err}");
    }

    #[test]
    fn turns_end_at_each_tool_call_and_at_the_answer() {
        let run = |c: &str| {
            Step::Act(Action::Run {
                command: c.to_string(),
            })
        };
        let steps = vec![
            Step::Say("a".into()),
            run("ls"),
            Step::Wait { ms: 5 },
            run("pwd"),
            Step::Answer("done".into()),
        ];
        assert_eq!(turn(&steps, 0).unwrap(), &steps[..2]);
        assert_eq!(turn(&steps, 1).unwrap(), &steps[2..4]);
        assert_eq!(turn(&steps, 2).unwrap(), &steps[4..]);
        assert_eq!(turn(&steps, 3), None);
        assert_eq!(turn(&steps, 9), None);
    }

    #[test]
    fn every_story_ends_its_last_turn() {
        for name in Scenario::NAMES {
            let scenario: Scenario = name.parse().unwrap();
            for cli in [Cli::Claude, Cli::Codex, Cli::Gemini] {
                let steps = scenario.steps(&Context {
                    cli,
                    prompt: "add a health endpoint",
                });
                assert!(!steps.is_empty(), "{name}");
                assert!(ends_turn(steps.last().unwrap()), "{name} for {cli:?}");
            }
        }
    }
}
