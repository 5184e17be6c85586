//! Which agent CLIs are present, and the fallback tier that follows (seed 003): roles move to
//! the agents that are installed, and the tier in use is shown to the operator.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::Path;

use super::plan::Role;
use crate::config::Config;
use crate::worker::spawn::resolve_program;

/// Profiles that exist and profiles whose command can run here.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    profiles: BTreeSet<String>,
    present: BTreeSet<String>,
}

impl Availability {
    pub fn new<P: Into<String>, Q: Into<String>>(
        profiles: impl IntoIterator<Item = P>,
        present: impl IntoIterator<Item = Q>,
    ) -> Self {
        Availability {
            profiles: profiles.into_iter().map(Into::into).collect(),
            present: present.into_iter().map(Into::into).collect(),
        }
    }

    /// Looks each profile's command up on `PATH`; under `simulate` every profile is present
    /// (it runs as `orchestrate sim`).
    pub fn detect(
        config: &Config,
        simulate: bool,
        cwd: &Path,
        path_var: Option<&OsString>,
    ) -> Self {
        let profiles: BTreeSet<String> = config.agents.keys().cloned().collect();
        let present = config
            .agents
            .iter()
            .filter(|(_, p)| {
                simulate
                    || p.command
                        .first()
                        .is_some_and(|c| resolve_program(c, cwd, path_var).is_ok())
            })
            .map(|(name, _)| name.clone())
            .collect();
        Availability { profiles, present }
    }

    pub fn has_profile(&self, name: &str) -> bool {
        self.profiles.contains(name)
    }

    pub fn is_present(&self, name: &str) -> bool {
        self.present.contains(name)
    }

    pub fn profile_names(&self) -> Vec<String> {
        self.profiles.iter().cloned().collect()
    }

    pub fn present(&self) -> Vec<String> {
        self.present.iter().cloned().collect()
    }

    /// The first present agent in the role's order of preference, else any present agent.
    pub fn agent_for(&self, role: Role) -> Option<String> {
        role.preferred_agents()
            .iter()
            .find(|a| self.present.contains(**a))
            .map(|a| a.to_string())
            .or_else(|| self.present.iter().next().cloned())
    }

    pub fn tier(&self) -> Tier {
        let has = |a: &str| self.present.contains(a);
        let (g, c, x) = (has("gemini"), has("claude"), has("codex"));
        match (g, c, x) {
            (true, true, true) => Tier {
                level: 1,
                agents: "gemini + claude + codex".into(),
            },
            (true, true, false) => Tier {
                level: 2,
                agents: "gemini + claude".into(),
            },
            (true, false, true) => Tier {
                level: 3,
                agents: "gemini + codex".into(),
            },
            (false, true, true) => Tier {
                level: 4,
                agents: "claude + codex".into(),
            },
            _ => match self.present.iter().next() {
                Some(solo) => Tier {
                    level: 5,
                    agents: format!("{solo} alone"),
                },
                None => Tier {
                    level: 0,
                    agents: "no agent CLI".into(),
                },
            },
        }
    }
}

/// Seed 003's fallback tiers: 1 is all three CLIs, 5 is one agent alone, 0 none.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tier {
    pub level: u8,
    pub agents: String,
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tier {} ({})", self.level, self.agents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_follow_seed_003() {
        let all = ["claude", "codex", "gemini"];
        let tier = |present: &[&str]| Availability::new(all, present.to_vec()).tier().to_string();
        assert_eq!(tier(&all), "tier 1 (gemini + claude + codex)");
        assert_eq!(tier(&["gemini", "claude"]), "tier 2 (gemini + claude)");
        assert_eq!(tier(&["gemini", "codex"]), "tier 3 (gemini + codex)");
        assert_eq!(tier(&["claude", "codex"]), "tier 4 (claude + codex)");
        assert_eq!(tier(&["codex"]), "tier 5 (codex alone)");
        assert_eq!(tier(&[]), "tier 0 (no agent CLI)");
    }

    #[test]
    fn detection_looks_on_path_unless_simulating() {
        let config = Config::default();
        let empty = OsString::from("/nonexistent");
        let cwd = Path::new("/");
        assert!(
            Availability::detect(&config, false, cwd, Some(&empty))
                .present()
                .is_empty()
        );
        assert_eq!(
            Availability::detect(&config, true, cwd, Some(&empty))
                .present()
                .len(),
            3
        );
    }
}
