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
        self.resolve_ranked(conflict_type, &Contestant::unranked(contestants), now)
    }

    /// As `resolve`, for contestants that are also ranked under another name: a worker
    /// under the router target its task routes to, so the matrix of targets (`bolt > bmad`)
    /// decides between workers.
    pub fn resolve_ranked(
        &self,
        conflict_type: &str,
        contestants: &[Contestant],
        now: Timestamp,
    ) -> Resolution {
        let auditor = &self.config.security_auditor;
        let ranked = self.config.priorities.get(conflict_type);
        let named = |rank: &str| contestants.iter().find(|c| c.answers_to(rank));
        let (winner, rule) = if let Some(c) = named(auditor) {
            (c.name.clone(), format!("{} always wins", c.described()))
        } else if let Some((list, c)) =
            ranked.and_then(|list| Some((list, list.iter().find_map(|rank| named(rank))?)))
        {
            let mut rule = format!("{conflict_type} priority: {}", list.join(" > "));
            if contestants.iter().any(|c| c.ranked_as.is_some()) {
                let who: Vec<String> = contestants.iter().map(Contestant::described).collect();
                rule.push_str(&format!(" ({})", who.join(", ")));
            }
            (c.name.clone(), rule)
        } else {
            let why = if ranked.is_some() {
                format!("no contestant is ranked for {conflict_type}: the first one wins")
            } else {
                format!("unknown conflict type {conflict_type}: the first contestant wins")
            };
            (contestants[0].name.clone(), why)
        };
        Resolution {
            conflict_type: conflict_type.to_string(),
            losers: contestants
                .iter()
                .filter(|c| c.name != winner)
                .map(|c| c.name.clone())
                .collect(),
            winner,
            timestamp: now,
            rule,
        }
    }
}

/// One side of a conflict: a name, and the name it is ranked under when that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contestant {
    pub name: String,
    pub ranked_as: Option<String>,
}

impl Contestant {
    /// Contestants ranked under their own names.
    pub fn unranked(names: &[String]) -> Vec<Contestant> {
        names
            .iter()
            .map(|name| Contestant {
                name: name.clone(),
                ranked_as: None,
            })
            .collect()
    }

    fn answers_to(&self, rank: &str) -> bool {
        self.name == rank || self.ranked_as.as_deref() == Some(rank)
    }

    /// `claude-design` (bmad), or just the name.
    fn described(&self) -> String {
        match &self.ranked_as {
            Some(rank) if *rank != self.name => format!("{} as {rank}", self.name),
            _ => self.name.clone(),
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

    #[test]
    fn workers_are_ranked_as_the_targets_their_tasks_route_to() {
        let resolver = ConflictResolver::new(ConflictConfig::default());
        let worker = |name: &str, rank: Option<&str>| Contestant {
            name: name.into(),
            ranked_as: rank.map(str::to_string),
        };
        // The designer (bmad) holds the file; the implementer (bolt) outranks it for a file.
        let r = resolver.resolve_ranked(
            "file_creation",
            &[
                worker("claude-design", Some("bmad")),
                worker("codex-build", Some("bolt")),
            ],
            Timestamp(0),
        );
        assert_eq!(r.winner, "codex-build");
        assert_eq!(r.losers, ["claude-design"]);
        assert_eq!(
            r.rule,
            "file_creation priority: bolt > bmad > archon (claude-design as bmad, codex-build as bolt)"
        );
        // A ranked worker beats an unranked one, holder or not.
        let r = resolver.resolve_ranked(
            "file_creation",
            &[
                worker("gemini-tests", None),
                worker("claude-design", Some("bmad")),
            ],
            Timestamp(0),
        );
        assert_eq!(r.winner, "claude-design");
        // Same rank: the first (the holder) keeps it.
        let r = resolver.resolve_ranked(
            "file_creation",
            &[worker("a", Some("bolt")), worker("b", Some("bolt"))],
            Timestamp(0),
        );
        assert_eq!(r.winner, "a");
        // The auditor wins under its own name.
        let r = resolver.resolve_ranked(
            "file_creation",
            &[worker("a", Some("bolt")), worker("security-auditor", None)],
            Timestamp(0),
        );
        assert_eq!(r.winner, "security-auditor");
    }
}
