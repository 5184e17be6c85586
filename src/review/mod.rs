//! Peer review (seeds 002 and 003): when a worker's work is reviewed (`triggers`), what a
//! reviewer answered (`verdict`), and what follows (`policy`). Pure; the coordinator runs the
//! reviewers and applies the decisions.

pub mod policy;
pub mod triggers;
pub mod verdict;

pub use policy::{Action, Decision, DecisionPolicy};
pub use triggers::{Trigger, TriggerKind, TriggerLimits, Triggers};
pub use verdict::{ReviewResponse, Verdict, VerdictError};

use serde::{Deserialize, Serialize};

/// Starts every review request: how the simulated CLIs (and the stub model) know one.
pub const REVIEW_MARKER: &str = "[orchestrate review request]";

/// `[review]` in orchestrate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Reviews run: each worker's milestones, blockers and final answer are reviewed by the
    /// other agents. Off, nothing is reviewed (`v` and `control review` are refused).
    pub enabled: bool,
    /// A running worker with no event this long is reviewed (fractions allowed).
    pub idle_minutes: f64,
    /// Automatic reviews per task at most (manual requests are not counted).
    pub max_per_task: u32,
    /// A review taking longer counts as a concern.
    pub timeout_secs: u64,
    /// Commands run in the task's directory when fewer than two other agents can review
    /// (exit 0: approved, else a concern with the output's tail), e.g. `["cargo test"]`.
    pub checks: Vec<String>,
    /// A task's final review is decided before its dependents start.
    pub gate: bool,
    /// The diff sent to reviewers is cut past this many KiB, with a note.
    pub diff_limit_kb: u64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            enabled: true,
            idle_minutes: 15.0,
            max_per_task: 6,
            timeout_secs: 600,
            checks: Vec::new(),
            gate: true,
            diff_limit_kb: 64,
        }
    }
}
