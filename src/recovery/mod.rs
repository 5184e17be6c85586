//! Recovery (seeds 002 and 003, `recovery.py`): what a failed attempt's output says went
//! wrong, and what to do about it. One table of rules, data not code paths: a signature (a
//! regex over the attempt's texts and/or its exit code, for one CLI or any) and an action.
//! Users add rules in `[[recovery.rules]]`; theirs are tried first. Pure: the coordinator
//! applies what [`RecoveryRules::plan`] returns.

mod reset;

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

pub use reset::reset_time;

use crate::agents::AgentKind;
use crate::timestamp::Timestamp;

/// `[recovery]` in orchestrate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Tried before the shipped rules, in order.
    pub rules: Vec<RuleConfig>,
    /// How often one rule may act for one task before it escalates.
    pub budget: u32,
    /// Claude stopped at its turn limit is told to go on this many times at most.
    pub max_continuations: u32,
    /// Gemini refusing an untrusted folder: trust the task's run directory (it is ours).
    pub trust_folders: bool,
    /// A usage limit whose reset is further away than this escalates instead of waiting.
    pub max_wait_secs: u64,
    /// The first wait of a transient API error; it doubles on each try.
    pub backoff_ms: u64,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            rules: Vec::new(),
            budget: 2,
            max_continuations: 3,
            trust_folders: true,
            max_wait_secs: 6 * 3600,
            backoff_ms: 5_000,
        }
    }
}

/// A rule as written in `[[recovery.rules]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// `claude`, `codex` or `gemini`; any CLI when absent.
    pub cli: Option<String>,
    /// A regex over each text of the failed attempt (its errors, blockers and output lines).
    pub pattern: Option<String>,
    pub exit_code: Option<i32>,
    pub action: ActionName,
    /// For `add_args` / `remove_args`.
    pub args: Vec<String>,
    /// For `escalate`: what the operator should do.
    pub fix: Option<String>,
    /// Overrides `[recovery] budget` for this rule.
    pub budget: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionName {
    IncludeDirectory,
    AddArgs,
    RemoveArgs,
    SafeMode,
    TrustFolder,
    Wait,
    Retry,
    Continue,
    StartOver,
    #[default]
    Escalate,
}

/// What a rule does about the failure it recognises.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Gemini refused a path outside its workspace: relaunch with `--include-directories` for
    /// the directory named by the pattern's `path` group (only inside the sandbox's
    /// directories; otherwise escalate).
    IncludeDirectory,
    /// Relaunch with these arguments added to the agent's.
    AddArgs(Vec<String>),
    /// Relaunch without these arguments (or the one the pattern's `arg` group names), when
    /// the profile is what carries them.
    RemoveArgs(Vec<String>),
    /// Claude refused bypass mode as root: relaunch in the mode the sandbox's hooks make safe.
    SafeMode,
    /// Gemini refused an untrusted folder: trust the run directory (when allowed).
    TrustFolder,
    /// A usage or rate limit: wait until its reset (or retry-after), then continue the
    /// agent's own conversation.
    Wait,
    /// A transient API failure: try again after a backoff that doubles.
    Retry,
    /// Claude stopped at its turn limit: continue the conversation.
    Continue,
    /// The agent's conversation cannot be resumed (it was never saved: the first request
    /// failed): launch again with the task's own prompt, a new conversation.
    StartOver,
    /// Only the operator can fix it.
    Escalate { fix: String },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::IncludeDirectory => "include_directory",
            Action::AddArgs(_) => "add_args",
            Action::RemoveArgs(_) => "remove_args",
            Action::SafeMode => "safe_mode",
            Action::TrustFolder => "trust_folder",
            Action::Wait => "wait",
            Action::Retry => "retry",
            Action::Continue => "continue",
            Action::StartOver => "start_over",
            Action::Escalate { .. } => "escalate",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub cli: Option<AgentKind>,
    pattern: Option<Regex>,
    exit_code: Option<i32>,
    pub action: Action,
    pub budget: u32,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("[[recovery.rules]] {rule:?}: {why}")]
pub struct RuleError {
    rule: String,
    why: String,
}

/// A shipped rule: name, CLI, pattern, exit code, action.
type ShippedRule = (
    &'static str,
    Option<AgentKind>,
    &'static str,
    Option<i32>,
    Action,
);

/// The shipped rules. The texts are what the pinned real CLIs print
/// (research/real-cli/ERRORS_TABLE.md); the simulated ones print the same.
fn shipped() -> Vec<ShippedRule> {
    use AgentKind::{Claude, Codex, Gemini};
    let escalate = |fix: &str| Action::Escalate {
        fix: fix.to_string(),
    };
    vec![
        (
            "gemini-path-outside-workspace",
            Some(Gemini),
            r#"(?:Path must be within one of the workspace directories|Path not in workspace)(?:.*?Attempted path "(?P<path>[^"]+)")?"#,
            None,
            Action::IncludeDirectory,
        ),
        (
            "codex-untrusted-directory",
            Some(Codex),
            r"Not inside a trusted directory and --skip-git-repo-check was not specified",
            None,
            Action::AddArgs(vec!["--skip-git-repo-check".into()]),
        ),
        (
            "claude-bypass-as-root",
            Some(Claude),
            r"--dangerously-skip-permissions cannot be used with root/sudo privileges",
            None,
            Action::SafeMode,
        ),
        (
            "claude-stream-json-needs-verbose",
            Some(Claude),
            r"--output-format=stream-json requires --verbose",
            None,
            Action::AddArgs(vec!["--verbose".into()]),
        ),
        (
            "codex-removed-argument",
            Some(Codex),
            r"unexpected argument '(?P<arg>--?[A-Za-z][\w-]*)' found",
            None,
            Action::RemoveArgs(Vec::new()),
        ),
        (
            "gemini-yolo-and-approval-mode",
            Some(Gemini),
            r"Cannot use both --yolo \(-y\) and --approval-mode together",
            None,
            Action::RemoveArgs(vec!["--yolo".into(), "-y".into()]),
        ),
        (
            "gemini-untrusted-folder",
            Some(Gemini),
            r"not running in a trusted directory",
            Some(55),
            Action::TrustFolder,
        ),
        (
            "claude-not-logged-in",
            Some(Claude),
            r"Not logged in|Please run /login|Invalid API key|authentication_error|authentication_failed|HTTP 401\b|OAuth token has expired",
            None,
            escalate("run `claude /login` (or set ANTHROPIC_API_KEY), then run the task again"),
        ),
        (
            "gemini-auth",
            Some(Gemini),
            r"Invalid auth method selected|GEMINI_API_KEY|API key not valid|UNAUTHENTICATED",
            Some(41),
            escalate(
                "run `gemini` once to sign in (or set GEMINI_API_KEY), then run the task again",
            ),
        ),
        (
            "codex-unauthorized",
            Some(Codex),
            r"401 Unauthorized|status 401|Missing bearer|invalid_api_key|Incorrect API key|not logged in",
            None,
            escalate("run `codex login` (or set OPENAI_API_KEY), then run the task again"),
        ),
        (
            "usage-limit",
            None,
            r"(?i)usage limit|hit your (?:session |weekly )?limit|limit reached|quota exceeded|exhausted your .*quota|RESOURCE_EXHAUSTED|resource has been exhausted|rate.?limit|\b429\b",
            None,
            Action::Wait,
        ),
        (
            "transient-api-error",
            None,
            r"(?i)overloaded|\b5\d\d\b|internal server error|service unavailable|bad gateway|high demand|temporary errors|server-side issue|at capacity|stream disconnected|connection (?:refused|reset)|ECONNREFUSED|ECONNRESET|ETIMEDOUT|unreachable|can't reach the API|fetch failed",
            None,
            Action::Retry,
        ),
        (
            "claude-max-turns",
            Some(Claude),
            r"error_max_turns|Reached max turns|maximum number of turns",
            None,
            Action::Continue,
        ),
        (
            "conversation-not-found",
            None,
            r"No conversation found with session ID|Error resuming session|No previous sessions found|no rollout found for thread id",
            None,
            Action::StartOver,
        ),
        (
            "permission-denied",
            None,
            r"Permission denied|EACCES|Operation not permitted",
            None,
            escalate(
                "check the owner and mode of the directory named above (the worker must be able to write its run directory), then run the task again",
            ),
        ),
    ]
}

/// The rules of a session: the user's first, then the shipped ones.
#[derive(Debug, Clone)]
pub struct RecoveryRules {
    rules: Vec<Rule>,
    pub config: RecoveryConfig,
}

/// One failed attempt, as recovery reads it.
#[derive(Debug, Clone, Default)]
pub struct Attempt {
    pub cli: Option<AgentKind>,
    /// Its errors', blockers' and output lines' texts, in order.
    pub texts: Vec<String>,
    pub exit_code: Option<i32>,
    /// Seconds an API asked to wait (`retry-after`), when an event said.
    pub retry_after_secs: Option<u64>,
    /// When the limit lifts, when an event said (Claude's `rate_limit_event.resetsAt`).
    pub reset_at: Option<Timestamp>,
    /// The machine's offset from UTC, in seconds: clock times in texts are local.
    pub utc_offset_secs: i64,
}

/// A rule recognised a failure.
#[derive(Debug, Clone)]
pub struct Detection<'a> {
    pub rule: &'a Rule,
    /// The text it matched (empty when only the exit code did).
    pub matched: String,
    /// The pattern's named groups.
    pub captures: BTreeMap<String, String>,
}

/// What to do now, given the rule's budget already used.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Launch again at once with this change.
    Relaunch(Change),
    /// Launch again at `at`, continuing the conversation (a usage limit's reset, a backoff).
    RelaunchAt { at: Timestamp, why: String },
    /// Continue the conversation at once (turn limit).
    Continue,
    /// Hand over to the operator.
    Escalate { fix: String },
}

/// A change to a task's launch, kept for all its later launches.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Change {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub add_args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub remove_args: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub include_dirs: Vec<String>,
    /// Claude in the mode the sandbox's hooks make safe, not bypass.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub safe_mode: bool,
    /// Gemini told to trust the folder (`GEMINI_CLI_TRUST_WORKSPACE=true`).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub trust_folder: bool,
}

impl Change {
    /// This change on top of `self`.
    pub fn merge(&mut self, other: &Change) {
        for a in &other.add_args {
            if !self.add_args.contains(a) {
                self.add_args.push(a.clone());
            }
        }
        for a in &other.remove_args {
            if !self.remove_args.contains(a) {
                self.remove_args.push(a.clone());
            }
        }
        for d in &other.include_dirs {
            if !self.include_dirs.contains(d) {
                self.include_dirs.push(d.clone());
            }
        }
        self.safe_mode |= other.safe_mode;
        self.trust_folder |= other.trust_folder;
    }

    pub fn is_empty(&self) -> bool {
        *self == Change::default()
    }

    /// `args` with this change: removed arguments gone (with the value of a `--flag=value`
    /// spelling), added ones appended once.
    pub fn apply_to_args(&self, args: &[String]) -> Vec<String> {
        let removed = |a: &String| {
            self.remove_args
                .iter()
                .any(|r| a == r || a.starts_with(&format!("{r}=")))
        };
        let mut out: Vec<String> = args.iter().filter(|a| !removed(a)).cloned().collect();
        for a in &self.add_args {
            if !out.contains(a) {
                out.push(a.clone());
            }
        }
        out
    }
}

impl RecoveryRules {
    /// The session's rules; a user rule that cannot mean anything is one clear error.
    pub fn new(config: &RecoveryConfig) -> Result<RecoveryRules, RuleError> {
        let mut rules = Vec::new();
        for r in &config.rules {
            rules.push(user_rule(r, config.budget)?);
        }
        for (name, cli, pattern, exit_code, action) in shipped() {
            // Going on after the turn limit has its own count.
            let budget = match action {
                Action::Continue => config.max_continuations,
                _ => config.budget,
            };
            rules.push(Rule {
                name: name.to_string(),
                cli,
                pattern: Some(Regex::new(pattern).expect("shipped patterns compile")),
                exit_code,
                action,
                budget,
            });
        }
        Ok(RecoveryRules {
            rules,
            config: config.clone(),
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule that recognises `attempt`. A rule with a pattern and an exit code needs
    /// the pattern, or the exit code alone when no text matched it (Gemini's exit 55 says it
    /// all, whatever its wording).
    pub fn detect<'a>(&'a self, attempt: &Attempt) -> Option<Detection<'a>> {
        for rule in &self.rules {
            if rule.cli.is_some_and(|c| Some(c) != attempt.cli) {
                continue;
            }
            if let Some(pattern) = &rule.pattern {
                for text in &attempt.texts {
                    if let Some(caps) = pattern.captures(text) {
                        let captures = pattern
                            .capture_names()
                            .flatten()
                            .filter_map(|n| {
                                caps.name(n)
                                    .map(|m| (n.to_string(), m.as_str().to_string()))
                            })
                            .collect();
                        return Some(Detection {
                            rule,
                            matched: text.clone(),
                            captures,
                        });
                    }
                }
            }
            if rule.exit_code.is_some() && rule.exit_code == attempt.exit_code {
                return Some(Detection {
                    rule,
                    matched: String::new(),
                    captures: BTreeMap::new(),
                });
            }
        }
        None
    }

    /// What to do about `detection`, the rule having acted `used` times for this task.
    /// `allowed_dir` says whether a directory may be added to the agent's workspace (the
    /// sandbox's call); `profile_args` are the arguments the profile (not orchestrate) gives.
    pub fn plan(
        &self,
        detection: &Detection<'_>,
        attempt: &Attempt,
        used: u32,
        now: Timestamp,
        allowed_dir: &dyn Fn(&str) -> bool,
        profile_args: &[String],
    ) -> Step {
        let rule = detection.rule;
        let escalate = |fix: String| Step::Escalate { fix };
        if used >= rule.budget && !matches!(rule.action, Action::Escalate { .. }) {
            return escalate(format!(
                "recovery rule {} already acted {used} time(s) for this task; look at the worker's log, fix the cause, then run the task again",
                rule.name
            ));
        }
        match &rule.action {
            Action::Escalate { fix } => escalate(fix.clone()),
            Action::AddArgs(args) => Step::Relaunch(Change {
                add_args: args.clone(),
                ..Change::default()
            }),
            Action::RemoveArgs(args) => {
                let mut remove = args.clone();
                if let Some(arg) = detection.captures.get("arg") {
                    remove.push(arg.clone());
                }
                // Only what the profile adds can go: orchestrate's own arguments are right.
                let from_profile: Vec<String> = remove
                    .into_iter()
                    .filter(|r| profile_args.iter().any(|a| a == r || a.starts_with(&format!("{r}="))))
                    .collect();
                if from_profile.is_empty() {
                    escalate(format!(
                        "the CLI refused an argument orchestrate did not take from your profile ({}); check the CLI's version against the pins",
                        detection.matched.trim()
                    ))
                } else {
                    Step::Relaunch(Change {
                        remove_args: from_profile,
                        ..Change::default()
                    })
                }
            }
            Action::IncludeDirectory => {
                let Some(path) = detection.captures.get("path") else {
                    return escalate(
                        "the agent needs a directory outside its workspace and did not say which; add it to the task's directories or to [sandbox] extra_dirs, then run the task again".into(),
                    );
                };
                let dir = parent_dir(path);
                if allowed_dir(&dir) {
                    Step::Relaunch(Change {
                        include_dirs: vec![dir],
                        ..Change::default()
                    })
                } else {
                    escalate(format!(
                        "the agent wants {path}, outside the sandbox's directories; add its directory to [sandbox] extra_dirs if it may, then run the task again"
                    ))
                }
            }
            // The bypass flags a profile may carry go too.
            Action::SafeMode => Step::Relaunch(Change {
                safe_mode: true,
                remove_args: [
                    "--dangerously-skip-permissions",
                    "--allow-dangerously-skip-permissions",
                    "--permission-mode=bypassPermissions",
                ]
                .into_iter()
                .filter(|flag| profile_args.iter().any(|a| a == flag))
                .map(String::from)
                .collect(),
                ..Change::default()
            }),
            Action::TrustFolder if self.config.trust_folders => Step::Relaunch(Change {
                trust_folder: true,
                ..Change::default()
            }),
            Action::TrustFolder => escalate(
                "trust the task's directory for Gemini (or set [recovery] trust_folders = true), then run the task again".into(),
            ),
            Action::Wait => {
                let reset = attempt
                    .reset_at
                    .or_else(|| {
                        attempt
                            .texts
                            .iter()
                            .rev()
                            .find_map(|t| reset_time(t, now, attempt.utc_offset_secs))
                    })
                    .or_else(|| {
                        attempt
                            .retry_after_secs
                            .map(|s| Timestamp(now.millis() + s as i64 * 1000))
                    });
                match reset {
                    Some(at) if at.millis() - now.millis() > self.config.max_wait_secs as i64 * 1000 => escalate(format!(
                        "the usage limit resets at {at}, past [recovery] max_wait_secs; run the task again then (or raise the limit)"
                    )),
                    Some(at) => Step::RelaunchAt {
                        at: Timestamp(at.millis().max(now.millis()) + 1000),
                        why: format!("usage limit: waiting until {at}"),
                    },
                    // A limit with no reset time: back off as for a transient error.
                    None => Step::RelaunchAt {
                        at: Timestamp(now.millis() + self.backoff_ms(used)),
                        why: "rate limited; no reset time given: backing off".into(),
                    },
                }
            }
            Action::Retry => Step::RelaunchAt {
                at: Timestamp(now.millis() + self.backoff_ms(used)),
                why: format!("transient API error: trying again (try {} of {})", used + 1, rule.budget),
            },
            Action::Continue if used < self.config.max_continuations => Step::Continue,
            Action::Continue => escalate(format!(
                "the agent hit its turn limit {used} time(s); raise --max-turns in the profile or split the task, then run it again"
            )),
            // The continuation flag was spent on the launch that failed: a plain relaunch
            // starts the conversation anew.
            Action::StartOver => Step::Relaunch(Change::default()),
        }
    }

    fn backoff_ms(&self, used: u32) -> i64 {
        self.config.backoff_ms.saturating_mul(1 << used.min(10)) as i64
    }
}

/// The directory to add for a path: the path itself when it looks like one (no extension),
/// else its parent.
fn parent_dir(path: &str) -> String {
    let p = std::path::Path::new(path);
    let is_file = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains('.'));
    match (is_file, p.parent()) {
        (true, Some(parent)) if !parent.as_os_str().is_empty() => parent.display().to_string(),
        _ => path.trim_end_matches('/').to_string(),
    }
}

fn user_rule(r: &RuleConfig, default_budget: u32) -> Result<Rule, RuleError> {
    let error = |why: String| RuleError {
        rule: r.name.clone(),
        why,
    };
    if r.name.trim().is_empty() {
        return Err(error("needs a name".into()));
    }
    let cli = match &r.cli {
        None => None,
        Some(c) => Some(
            c.parse::<AgentKind>()
                .map_err(|_| error(format!("cli {c:?} is not claude, codex or gemini")))?,
        ),
    };
    let pattern = match &r.pattern {
        None => None,
        Some(p) => {
            Some(Regex::new(p).map_err(|e| error(format!("pattern {p:?} is not a regex: {e}")))?)
        }
    };
    if pattern.is_none() && r.exit_code.is_none() {
        return Err(error("needs a pattern or an exit_code".into()));
    }
    let action = match r.action {
        ActionName::IncludeDirectory => Action::IncludeDirectory,
        ActionName::AddArgs | ActionName::RemoveArgs if r.args.is_empty() => {
            return Err(error("add_args and remove_args need args".into()));
        }
        ActionName::AddArgs => Action::AddArgs(r.args.clone()),
        ActionName::RemoveArgs => Action::RemoveArgs(r.args.clone()),
        ActionName::SafeMode => Action::SafeMode,
        ActionName::TrustFolder => Action::TrustFolder,
        ActionName::Wait => Action::Wait,
        ActionName::Retry => Action::Retry,
        ActionName::Continue => Action::Continue,
        ActionName::StartOver => Action::StartOver,
        ActionName::Escalate => Action::Escalate {
            fix: r.fix.clone().unwrap_or_else(|| {
                format!(
                    "see the worker's log (rule {}), fix the cause, then run the task again",
                    r.name
                )
            }),
        },
    };
    Ok(Rule {
        name: r.name.clone(),
        cli,
        pattern,
        exit_code: r.exit_code,
        action,
        budget: r.budget.unwrap_or(default_budget),
    })
}

#[cfg(test)]
mod tests;
