//! The decision policy (seeds 002/003): the verdicts of one review in, one action out. Four
//! rules, in order; pure, the same everywhere.

use serde::{Deserialize, Serialize};

use super::verdict::Verdict;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The reviewed worker is stopped, its task fails (no retry), no new task starts, the
    /// operator is alerted.
    StopAndEscalate,
    /// The reviewed worker is paused and the concerns are shown.
    PauseAndClarify,
    /// Work goes on; the warning stays visible.
    LogWarning,
    Continue,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::StopAndEscalate => "stop_and_escalate",
            Action::PauseAndClarify => "pause_and_clarify",
            Action::LogWarning => "log_warning",
            Action::Continue => "continue",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// 1 to 4, as numbered in the policy.
    pub rule: u8,
    pub action: Action,
    pub reason: String,
}

pub struct DecisionPolicy;

impl DecisionPolicy {
    /// The four rules, in order: any blocker stops and escalates; two or more concerns
    /// pause and clarify; one concern logs a warning; otherwise (all approved, or no verdict
    /// at all) work continues.
    pub fn decide(verdicts: &[Verdict]) -> Decision {
        let count = |v: Verdict| verdicts.iter().filter(|x| **x == v).count();
        let (blockers, concerns) = (count(Verdict::Blocker), count(Verdict::Concern));
        if blockers > 0 {
            Decision {
                rule: 1,
                action: Action::StopAndEscalate,
                reason: format!("{blockers} blocker(s) among {} verdict(s)", verdicts.len()),
            }
        } else if concerns >= 2 {
            Decision {
                rule: 2,
                action: Action::PauseAndClarify,
                reason: format!("{concerns} concerns among {} verdict(s)", verdicts.len()),
            }
        } else if concerns == 1 {
            Decision {
                rule: 3,
                action: Action::LogWarning,
                reason: format!("one concern among {} verdict(s)", verdicts.len()),
            }
        } else if verdicts.is_empty() {
            Decision {
                rule: 4,
                action: Action::Continue,
                reason: "no reviewers".into(),
            }
        } else {
            Decision {
                rule: 4,
                action: Action::Continue,
                reason: format!("all {} approved", verdicts.len()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Approved, Blocker, Concern};

    /// Every combination of 0 to 3 verdicts.
    fn all() -> Vec<Vec<Verdict>> {
        let mut sets = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..3 {
            let next: Vec<Vec<Verdict>> = last
                .iter()
                .flat_map(|s: &Vec<Verdict>| {
                    [Approved, Concern, Blocker].map(|v| {
                        let mut n = s.clone();
                        n.push(v);
                        n
                    })
                })
                .collect();
            sets.extend(next.iter().cloned());
            last = next;
        }
        sets
    }

    #[test]
    fn every_combination_of_up_to_three_verdicts_gets_its_rule() {
        let sets = all();
        assert_eq!(sets.len(), 1 + 3 + 9 + 27);
        for verdicts in sets {
            let d = DecisionPolicy::decide(&verdicts);
            let blockers = verdicts.iter().filter(|v| **v == Blocker).count();
            let concerns = verdicts.iter().filter(|v| **v == Concern).count();
            let expected = match (blockers, concerns) {
                (1.., _) => (1, Action::StopAndEscalate),
                (0, 2..) => (2, Action::PauseAndClarify),
                (0, 1) => (3, Action::LogWarning),
                _ => (4, Action::Continue),
            };
            assert_eq!((d.rule, d.action), expected, "{verdicts:?}");
            // Order does not matter.
            let mut reversed = verdicts.clone();
            reversed.reverse();
            assert_eq!(DecisionPolicy::decide(&reversed), d);
        }
        assert_eq!(DecisionPolicy::decide(&[]).reason, "no reviewers");
    }
}
