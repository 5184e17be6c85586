//! `[meta]` in orchestrate.toml, and the seeds' environment variables over it and `[router]`:
//! `REDIS_URL`, `SESSION_TTL`, `LOCK_DEFAULT_TTL`, `META_ORCHESTRATOR_PORT` and one
//! `<TARGET>_URL` per router target (`BMAD_URL`, `ARCHON_URL`, `BOLT_URL`, ...).

use serde::{Deserialize, Serialize};

use super::conflicts::ConflictConfig;
use super::locks::DEFAULT_LOCK_TTL_SECS;
use super::router::RouterConfig;

/// The seed's `SESSION_TTL`.
pub const DEFAULT_SESSION_TTL_SECS: u64 = 3600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetaConfig {
    /// Where sessions, locks and resolutions live: `sqlite` (the workspace's orchestrate.db)
    /// or a `redis://` URL shared by coordinators on several machines.
    pub store: String,
    /// A user session lives this long after its last write.
    pub session_ttl_secs: u64,
    /// A lock's lease when the caller names none.
    pub lock_ttl_secs: u64,
    /// The port of the HTTP API (`orchestrate serve`).
    pub port: u16,
    /// How long a health check waits for a target.
    pub health_timeout_ms: u64,
    /// Give every worker the `orch` MCP server (`orchestrate mcp`): nexus_* tools and
    /// report_event, its locks held in the worker's name.
    pub worker_mcp: bool,
    /// Keep loading the operator's own MCP servers beside it (false: only `orch`).
    pub operator_mcp: bool,
    /// Who wins a conflict.
    pub conflicts: ConflictConfig,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            store: "sqlite".into(),
            session_ttl_secs: DEFAULT_SESSION_TTL_SECS,
            lock_ttl_secs: DEFAULT_LOCK_TTL_SECS,
            port: 8100,
            health_timeout_ms: 2000,
            worker_mcp: true,
            operator_mcp: true,
            conflicts: ConflictConfig::default(),
        }
    }
}

impl MetaConfig {
    /// The first setting out of range, as (key, why).
    pub fn first_problem(&self) -> Option<(String, String)> {
        let store = &self.store;
        if store != "sqlite" && !store.starts_with("redis://") && !store.starts_with("rediss://") {
            return Some((
                "meta.store".into(),
                format!("{store:?} is neither \"sqlite\" nor a redis:// URL"),
            ));
        }
        let day = 86_400 * 30;
        for (key, value) in [
            ("meta.session_ttl_secs", self.session_ttl_secs),
            ("meta.lock_ttl_secs", self.lock_ttl_secs),
        ] {
            if value == 0 || value > day {
                return Some((
                    key.into(),
                    format!("{value} is out of range: 1 to {day} seconds"),
                ));
            }
        }
        if self.health_timeout_ms == 0 || self.health_timeout_ms > 60_000 {
            return Some((
                "meta.health_timeout_ms".into(),
                format!("{} is out of range: 1 to 60000 ms", self.health_timeout_ms),
            ));
        }
        None
    }
}

/// The variable that sets `target`'s URL: `BMAD_URL` for `bmad`.
pub fn url_variable(target: &str) -> String {
    let name: String = target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{name}_URL")
}

/// Applies the seeds' variables found in `env`; a bad number is (variable, value, why).
pub fn apply_env(
    meta: &mut MetaConfig,
    router: &mut RouterConfig,
    env: &[(String, String)],
) -> Result<(), (String, String, String)> {
    let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let number = |name: &str| -> Result<Option<u64>, (String, String, String)> {
        get(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| (name.to_string(), v.clone(), "expected seconds".to_string()))
            })
            .transpose()
    };
    if let Some(url) = get("REDIS_URL").filter(|u| !u.is_empty()) {
        meta.store = url;
    }
    if let Some(secs) = number("SESSION_TTL")? {
        meta.session_ttl_secs = secs;
    }
    if let Some(secs) = number("LOCK_DEFAULT_TTL")? {
        meta.lock_ttl_secs = secs;
    }
    if let Some(port) = get("META_ORCHESTRATOR_PORT") {
        meta.port = port.trim().parse().map_err(|_| {
            (
                "META_ORCHESTRATOR_PORT".to_string(),
                port.clone(),
                "expected a port number".to_string(),
            )
        })?;
    }
    for (name, target) in router.targets.iter_mut() {
        if let Some(url) = get(&url_variable(name)).filter(|u| !u.is_empty()) {
            target.url = Some(url);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_seeds_variables_set_the_store_ttls_port_and_target_urls() {
        let mut meta = MetaConfig::default();
        let mut router = RouterConfig::default();
        apply_env(
            &mut meta,
            &mut router,
            &env(&[
                ("REDIS_URL", "redis://127.0.0.1:6380/0"),
                ("SESSION_TTL", "60"),
                ("LOCK_DEFAULT_TTL", "5"),
                ("META_ORCHESTRATOR_PORT", "9100"),
                ("BMAD_URL", "http://localhost:8052"),
                ("BOLT_URL", "http://localhost:5173"),
            ]),
        )
        .unwrap();
        assert_eq!(meta.store, "redis://127.0.0.1:6380/0");
        assert_eq!(
            (meta.session_ttl_secs, meta.lock_ttl_secs, meta.port),
            (60, 5, 9100)
        );
        assert_eq!(
            router.targets["bmad"].url.as_deref(),
            Some("http://localhost:8052")
        );
        assert_eq!(
            router.targets["bolt"].url.as_deref(),
            Some("http://localhost:5173")
        );
        assert_eq!(router.targets["archon"].url, None);
    }

    #[test]
    fn a_bad_number_names_its_variable() {
        let err = apply_env(
            &mut MetaConfig::default(),
            &mut RouterConfig::default(),
            &env(&[("SESSION_TTL", "an hour")]),
        )
        .unwrap_err();
        assert_eq!(err.0, "SESSION_TTL");
        assert_eq!(url_variable("my-docs"), "MY_DOCS_URL");
    }
}
