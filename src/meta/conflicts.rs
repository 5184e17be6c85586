//! The conflict resolver: who wins when several agents contend for the same thing.
//!
//! A priority list per conflict type (the seeds' matrix); the first listed contestant present
//! wins. The security auditor always wins, whatever the type. An unknown type, or one whose
//! list names none of the contestants, goes to the first contestant, as in the seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// `[meta.conflicts]` in orchestrate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConflictConfig {
    /// The contestant that wins every conflict it takes part in.
    pub security_auditor: String,
    /// Conflict type -> contestants, highest priority first.
    pub priorities: BTreeMap<String, Vec<String>>,
}

impl Default for ConflictConfig {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        ConflictConfig {
            security_auditor: "security-auditor".into(),
            priorities: BTreeMap::from([
                ("file_creation".into(), list(&["bolt", "bmad", "archon"])),
                ("documentation".into(), list(&["bmad", "archon", "bolt"])),
                ("knowledge_update".into(), list(&["archon", "bolt", "bmad"])),
                ("task_status".into(), list(&["archon"])),
                ("code_validation".into(), list(&["bmad", "archon"])),
                ("security".into(), list(&["security-auditor"])),
            ]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub conflict_type: String,
    pub winner: String,
    pub losers: Vec<String>,
    pub timestamp: Timestamp,
    /// Why the winner won, in words.
    pub rule: String,
}

pub struct ConflictResolver {
    config: ConflictConfig,
}

impl ConflictResolver {
    pub fn new(config: ConflictConfig) -> ConflictResolver {
        ConflictResolver { config }
    }

    /// `contestants` must not be empty (the callers check; an empty list has no winner).
    pub fn resolve(
        &self,
        conflict_type: &str,
        contestants: &[String],
        now: Timestamp,
    ) -> Resolution {
        let auditor = &self.config.security_auditor;
        let ranked = self.config.priorities.get(conflict_type);
        let (winner, rule) = if contestants.contains(auditor) {
            (auditor.clone(), format!("{auditor} always wins"))
        } else if let Some(winner) =
            ranked.and_then(|list| list.iter().find(|name| contestants.contains(name)))
        {
            (
                winner.clone(),
                format!("{conflict_type} priority: {}", ranked.unwrap().join(" > ")),
            )
        } else {
            let why = if ranked.is_some() {
                format!("no contestant is ranked for {conflict_type}: the first one wins")
            } else {
                format!("unknown conflict type {conflict_type}: the first contestant wins")
            };
            (contestants[0].clone(), why)
        };
        Resolution {
            conflict_type: conflict_type.to_string(),
            losers: contestants
                .iter()
                .filter(|c| **c != winner)
                .cloned()
                .collect(),
            winner,
            timestamp: now,
            rule,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn winner(kind: &str, contestants: &[&str]) -> String {
        let names: Vec<String> = contestants.iter().map(|c| c.to_string()).collect();
        ConflictResolver::new(ConflictConfig::default())
            .resolve(kind, &names, Timestamp(7))
            .winner
    }

    #[test]
    fn the_seed_matrix_picks_the_highest_ranked_contestant() {
        assert_eq!(winner("file_creation", &["archon", "bmad", "bolt"]), "bolt");
        assert_eq!(winner("file_creation", &["archon", "bmad"]), "bmad");
        assert_eq!(winner("documentation", &["bolt", "archon", "bmad"]), "bmad");
        assert_eq!(winner("documentation", &["bolt", "archon"]), "archon");
        assert_eq!(
            winner("knowledge_update", &["bmad", "bolt", "archon"]),
            "archon"
        );
        assert_eq!(winner("knowledge_update", &["bmad", "bolt"]), "bolt");
        assert_eq!(winner("task_status", &["bolt", "archon"]), "archon");
        assert_eq!(winner("code_validation", &["archon", "bmad"]), "bmad");
        assert_eq!(winner("code_validation", &["bolt", "archon"]), "archon");
    }

    #[test]
    fn the_security_auditor_wins_whatever_the_type() {
        for kind in ["security", "file_creation", "documentation", "made_up"] {
            assert_eq!(
                winner(kind, &["bolt", "security-auditor", "bmad"]),
                "security-auditor",
                "{kind}"
            );
        }
        // Among others, a security conflict falls back to the first contestant.
        assert_eq!(winner("security", &["bolt", "bmad"]), "bolt");
    }

    #[test]
    fn an_unknown_type_or_unranked_contestants_go_to_the_first() {
        let names = vec!["claude-t1".to_string(), "codex-t2".to_string()];
        let r = ConflictResolver::new(ConflictConfig::default()).resolve(
            "merge_order",
            &names,
            Timestamp(7),
        );
        assert_eq!(
            (r.winner.as_str(), r.losers.clone()),
            ("claude-t1", vec!["codex-t2".to_string()])
        );
        assert!(r.rule.contains("unknown conflict type"), "{}", r.rule);
        assert_eq!(r.timestamp, Timestamp(7));
        assert_eq!(winner("task_status", &["bolt", "bmad"]), "bolt");
    }

    #[test]
    fn a_configured_matrix_and_auditor_are_used() {
        let mut config = ConflictConfig {
            security_auditor: "claude-audit".into(),
            ..ConflictConfig::default()
        };
        config
            .priorities
            .insert("file_creation".into(), vec!["codex-t2".into()]);
        let resolver = ConflictResolver::new(config);
        let names = |v: &[&str]| v.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let r = resolver.resolve(
            "file_creation",
            &names(&["claude-t1", "codex-t2"]),
            Timestamp(0),
        );
        assert_eq!(r.winner, "codex-t2");
        assert_eq!(r.rule, "file_creation priority: codex-t2");
        let r = resolver.resolve(
            "file_creation",
            &names(&["codex-t2", "claude-audit"]),
            Timestamp(0),
        );
        assert_eq!(r.winner, "claude-audit");
    }
}
