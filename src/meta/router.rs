//! The router: which target (orchestrator) a request goes to, scored by weighted patterns.
//!
//! Each target has patterns with a weight; a target's score is the highest weight among its
//! patterns that match the request (lowercased, as the seeds do). The best score wins; ties go
//! to the target with the lowest `order`, then by name. Below the clarify threshold (0.5 in
//! the seeds) the answer is `meta` / `clarify` with confidence 0.3: the request is ambiguous.

use std::collections::BTreeMap;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The seeds' threshold: a best score under this asks for clarification.
pub const CLARIFY_BELOW: f64 = 0.5;
/// The target of a request no pattern routes with confidence: it needs clarifying.
pub const CLARIFY_TARGET: &str = "meta";
/// The confidence the seeds give a `clarify` answer.
const CLARIFY_CONFIDENCE: f64 = 0.3;

/// `[router]` in orchestrate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// A best score below this answers `meta` / `clarify`.
    pub clarify_below: f64,
    /// Targets by name. The shipped ones are the seeds' (bmad, archon, bolt); a file can
    /// change one field of one of them, add targets, or empty a target's patterns to drop it.
    pub targets: BTreeMap<String, TargetConfig>,
}

/// `[router.targets.NAME]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// Patterns and their weights (0 to 1). Matched against the lowercased request; write
    /// `\b` for word boundaries as the seeds do.
    pub patterns: Vec<WeightedPattern>,
    /// Where its service answers, for health checks (`meta status`). Unset: not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The plan role (`design`, `implement` or `review`) a task that names neither an agent
    /// nor a role takes when its prompt routes here: which agent runs it follows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Ties between equal scores go to the lowest order.
    pub order: u32,
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            patterns: Vec::new(),
            url: None,
            role: None,
            order: 100,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeightedPattern {
    pub pattern: String,
    pub weight: f64,
}

impl Default for RouterConfig {
    /// Seed 000's wider table with seed 001's weights where the two meet. Seed 000 names
    /// patterns without weights; those get the weight of their neighbours in seed 001 minus a
    /// little, so seed 001's answers are unchanged.
    fn default() -> Self {
        let target = |order, role: &str, patterns: &[(&str, f64)]| TargetConfig {
            patterns: patterns
                .iter()
                .map(|(p, w)| WeightedPattern {
                    pattern: p.to_string(),
                    weight: *w,
                })
                .collect(),
            url: None,
            role: Some(role.to_string()),
            order,
        };
        let targets = BTreeMap::from([
            (
                "bmad".to_string(),
                target(
                    1,
                    "design",
                    &[
                        (r"\b(workflow|prd|architecture|story|sprint|backlog)\b", 0.9),
                        (r"\b(plan|design|spec)\b", 0.8),
                        (r"\b(pm|architect|developer|tester)\b", 0.7),
                    ],
                ),
            ),
            (
                "archon".to_string(),
                target(
                    2,
                    "design",
                    &[
                        (r"\b(search|find|query|knowledge|kb)\b", 0.9),
                        (r"\b(task|project|documentation)\b", 0.85),
                        (r"\b(index|ingest|crawl)\b", 0.8),
                    ],
                ),
            ),
            (
                "bolt".to_string(),
                target(
                    3,
                    "implement",
                    &[
                        (r"\b(code|generate|implement)\b", 0.9),
                        (r"\b(deploy|git|file)\b", 0.85),
                        (r"\b(terminal|run|execute)\b", 0.8),
                    ],
                ),
            ),
        ]);
        RouterConfig {
            clarify_below: CLARIFY_BELOW,
            targets,
        }
    }
}

/// What the router answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteResult {
    pub target: String,
    pub action: String,
    pub confidence: f64,
    pub reasoning: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouterError {
    #[error("router target {target:?}: pattern {pattern:?} is not a valid regex: {reason}")]
    BadPattern {
        target: String,
        pattern: String,
        reason: String,
    },
    #[error("router target {target:?}: weight {weight} of {pattern:?} is not between 0 and 1")]
    BadWeight {
        target: String,
        pattern: String,
        weight: f64,
    },
    #[error("router: clarify_below = {0} is not between 0 and 1")]
    BadThreshold(f64),
}

struct Target {
    name: String,
    order: u32,
    patterns: Vec<(Regex, f64)>,
}

/// The compiled router.
pub struct Router {
    targets: Vec<Target>,
    clarify_below: f64,
}

impl Router {
    /// Compiles every pattern; the first bad one is an error naming its target.
    pub fn new(config: &RouterConfig) -> Result<Router, RouterError> {
        if !(0.0..=1.0).contains(&config.clarify_below) {
            return Err(RouterError::BadThreshold(config.clarify_below));
        }
        let mut targets = Vec::new();
        for (name, target) in &config.targets {
            let mut patterns = Vec::new();
            for p in &target.patterns {
                if !(0.0..=1.0).contains(&p.weight) || p.weight.is_nan() {
                    return Err(RouterError::BadWeight {
                        target: name.clone(),
                        pattern: p.pattern.clone(),
                        weight: p.weight,
                    });
                }
                let regex = Regex::new(&p.pattern).map_err(|e| RouterError::BadPattern {
                    target: name.clone(),
                    pattern: p.pattern.clone(),
                    reason: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .to_string(),
                })?;
                patterns.push((regex, p.weight));
            }
            targets.push(Target {
                name: name.clone(),
                order: target.order,
                patterns,
            });
        }
        // Ties go to the lowest order, then the name: sort once, keep the first best.
        targets.sort_by(|a, b| (a.order, &a.name).cmp(&(b.order, &b.name)));
        Ok(Router {
            targets,
            clarify_below: config.clarify_below,
        })
    }

    pub fn route(&self, request: &str) -> RouteResult {
        let request = request.to_lowercase();
        let mut best: Option<(&Target, f64, &str)> = None;
        for target in &self.targets {
            let top = target
                .patterns
                .iter()
                .filter_map(|(regex, weight)| regex.find(&request).map(|m| (*weight, m.as_str())))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((score, word)) = top
                && best.is_none_or(|(_, s, _)| score > s)
            {
                best = Some((target, score, word));
            }
        }
        match best {
            Some((target, score, word)) if score >= self.clarify_below => RouteResult {
                target: target.name.clone(),
                action: "process".into(),
                confidence: score,
                reasoning: format!("matched {word:?} (weight {score}) for {}", target.name),
            },
            _ => RouteResult {
                target: CLARIFY_TARGET.into(),
                action: "clarify".into(),
                confidence: CLARIFY_CONFIDENCE,
                reasoning: match best {
                    Some((t, score, word)) => format!(
                        "ambiguous: the best match, {word:?} for {} (weight {score}), is under {}",
                        t.name, self.clarify_below
                    ),
                    None => "ambiguous: no target's pattern matched".into(),
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new(&RouterConfig::default()).unwrap()
    }

    fn target(request: &str) -> (String, f64) {
        let r = router().route(request);
        (r.target, r.confidence)
    }

    #[test]
    fn every_word_of_both_seeds_routes_to_its_target_with_its_weight() {
        let table: &[(&str, &[&str], f64)] = &[
            (
                "bmad",
                &[
                    "workflow",
                    "prd",
                    "architecture",
                    "story",
                    "sprint",
                    "backlog",
                ],
                0.9,
            ),
            ("bmad", &["plan", "design", "spec"], 0.8),
            ("bmad", &["pm", "architect", "developer", "tester"], 0.7),
            (
                "archon",
                &["search", "find", "query", "knowledge", "kb"],
                0.9,
            ),
            ("archon", &["task", "project", "documentation"], 0.85),
            ("archon", &["index", "ingest", "crawl"], 0.8),
            ("bolt", &["code", "generate", "implement"], 0.9),
            ("bolt", &["deploy", "git", "file"], 0.85),
            ("bolt", &["terminal", "run", "execute"], 0.8),
        ];
        for (expected, words, weight) in table {
            for word in *words {
                let request = format!("please {word} this now");
                assert_eq!(
                    target(&request),
                    (expected.to_string(), *weight),
                    "{request}"
                );
            }
        }
    }

    #[test]
    fn the_highest_weight_wins_and_case_does_not_matter() {
        // bolt 0.9 (implement) beats bmad 0.8 (plan).
        assert_eq!(target("Implement the PLAN"), ("bolt".into(), 0.9));
        // archon 0.9 (search) beats bolt 0.85 (git).
        assert_eq!(target("search the git history"), ("archon".into(), 0.9));
        // A tie at 0.9 goes to the seeds' first target: bmad, then archon, then bolt.
        assert_eq!(target("write the prd and the code"), ("bmad".into(), 0.9));
        assert_eq!(target("search the code"), ("archon".into(), 0.9));
    }

    #[test]
    fn words_match_only_whole() {
        // "planet", "decoded", "profile" and "gitignore" hold pattern words but not as words.
        let r = router().route("the planet decoded my profile and gitignore");
        assert_eq!((r.target.as_str(), r.action.as_str()), ("meta", "clarify"));
        assert_eq!(r.confidence, 0.3);
    }

    #[test]
    fn nothing_or_little_asks_for_clarification() {
        let r = router().route("hello there");
        assert_eq!(
            (r.target.as_str(), r.action.as_str(), r.confidence),
            ("meta", "clarify", 0.3)
        );
        assert!(r.reasoning.contains("no target"), "{}", r.reasoning);
        let mut config = RouterConfig::default();
        config.targets.get_mut("bolt").unwrap().patterns[0].weight = 0.4;
        let r = Router::new(&config).unwrap().route("generate it");
        assert_eq!(r.target, "meta");
        assert!(r.reasoning.contains("under 0.5"), "{}", r.reasoning);
        // Exactly at the threshold is enough.
        config.targets.get_mut("bolt").unwrap().patterns[0].weight = 0.5;
        assert_eq!(
            Router::new(&config).unwrap().route("generate it").target,
            "bolt"
        );
    }

    #[test]
    fn a_configured_target_routes_and_a_bad_pattern_is_one_clear_error() {
        let mut config = RouterConfig::default();
        config.targets.insert(
            "review".into(),
            TargetConfig {
                patterns: vec![WeightedPattern {
                    pattern: r"\breview\b".into(),
                    weight: 0.95,
                }],
                ..TargetConfig::default()
            },
        );
        let r = Router::new(&config).unwrap().route("review the code");
        assert_eq!((r.target.as_str(), r.confidence), ("review", 0.95));
        assert!(r.reasoning.contains("\"review\""), "{}", r.reasoning);

        config.targets.get_mut("review").unwrap().patterns[0].pattern = r"\b(review".into();
        let e = Router::new(&config).err().unwrap().to_string();
        assert!(
            e.starts_with(
                "router target \"review\": pattern \"\\\\b(review\" is not a valid regex"
            ),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        config.targets.get_mut("review").unwrap().patterns[0] = WeightedPattern {
            pattern: "x".into(),
            weight: 2.0,
        };
        assert!(matches!(
            Router::new(&config),
            Err(RouterError::BadWeight { .. })
        ));
    }
}
