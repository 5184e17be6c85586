//! Configuration: built-in defaults, then the user's `orchestrate.toml` (config dir), then the
//! project's (`./orchestrate.toml`), then environment variables, then command-line flags. Each
//! layer overrides the one before; files merge table by table, so a project file can change
//! one field of one agent profile and keep the rest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::agents::{AgentKind, Autonomy};
use crate::review::ReviewConfig;
use crate::safety::{SandboxConfig, SandboxPolicy};

pub const CONFIG_FILE: &str = "orchestrate.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {reason}", path.display())]
    File { path: PathBuf, reason: String },
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        name: String,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Workers that may run at once.
    pub parallelism: usize,
    /// Relaunches of a failed task before it counts as failed.
    pub retries: u32,
    /// Delay before the first retry; each further retry doubles it.
    pub retry_backoff_ms: u64,
    /// A task running longer than this is stopped and counts as a failure.
    pub task_timeout_secs: u64,
    /// Between SIGTERM and SIGKILL when stopping a worker.
    pub stop_grace_secs: u64,
    /// A worker whose CLI has been retrying its model API this long without getting through
    /// fails, with the CLI's last reason, instead of waiting out the task timeout.
    pub agent_unreachable_secs: u64,
    /// The agent asked to break the goal into tasks when no plan is given.
    pub planner: String,
    /// A non-git target is copied per task; past this size the copy is refused.
    pub copy_limit_mb: u64,
    /// Pacing of simulated agents under `--simulate` (1 human-like, 0 instant).
    pub sim_speed: f64,
    /// Run the real agent CLIs against a local stub model (`orchestrate stub-model`) that
    /// plays a scenario: no key, no network.
    pub stub_model: bool,
    /// The dashboard's theme: a file in themes/ or the user's config dir (`themes/NAME.toml`).
    pub theme: String,
    /// Agent profiles by name.
    pub agents: BTreeMap<String, AgentProfile>,
    /// What agents may run and write, and their resource limits.
    pub sandbox: SandboxConfig,
    /// When and how the agents review each other's work.
    pub review: ReviewConfig,
    /// What is done about a failed attempt's known errors.
    pub recovery: crate::recovery::RecoveryConfig,
    /// Which target (orchestrator) a request goes to.
    pub router: crate::meta::router::RouterConfig,
    /// User sessions, locks and conflicts: where they live and their lifetimes.
    pub meta: crate::meta::config::MetaConfig,
}

/// How to run one agent CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentProfile {
    /// Which wire format it speaks.
    pub kind: AgentKind,
    /// The executable and any leading arguments.
    pub command: Vec<String>,
    /// Extra arguments before the prompt.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub model: Option<String>,
    pub autonomy: Autonomy,
}

impl Default for AgentProfile {
    fn default() -> Self {
        AgentProfile {
            kind: AgentKind::Events,
            command: Vec::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            model: None,
            autonomy: Autonomy::Full,
        }
    }
}

impl AgentProfile {
    fn builtin(kind: AgentKind) -> Self {
        AgentProfile {
            kind,
            command: vec![kind.name().to_string()],
            ..AgentProfile::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let agents = [AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini]
            .into_iter()
            .map(|k| (k.name().to_string(), AgentProfile::builtin(k)))
            .collect();
        Config {
            parallelism: 3,
            retries: 2,
            retry_backoff_ms: 2000,
            task_timeout_secs: 3600,
            stop_grace_secs: 10,
            agent_unreachable_secs: 120,
            planner: "claude".into(),
            copy_limit_mb: 500,
            sim_speed: 1.0,
            stub_model: false,
            theme: "default".into(),
            agents,
            sandbox: SandboxConfig::default(),
            review: ReviewConfig::default(),
            recovery: crate::recovery::RecoveryConfig::default(),
            router: crate::meta::router::RouterConfig::default(),
            meta: crate::meta::config::MetaConfig::default(),
        }
    }
}

/// Environment variables that override configuration fields.
pub const ENV_OVERRIDES: [(&str, &str); 6] = [
    ("ORCHESTRATE_PARALLELISM", "parallelism"),
    ("ORCHESTRATE_RETRIES", "retries"),
    ("ORCHESTRATE_RETRY_BACKOFF_MS", "retry_backoff_ms"),
    ("ORCHESTRATE_TASK_TIMEOUT_SECS", "task_timeout_secs"),
    ("ORCHESTRATE_SIM_SPEED", "sim_speed"),
    (
        "ORCHESTRATE_AGENT_UNREACHABLE_SECS",
        "agent_unreachable_secs",
    ),
];

impl Config {
    /// Loads the files that exist among `files` (lowest precedence first) over the defaults,
    /// then applies `env` overrides.
    pub fn load(files: &[PathBuf], env: &[(String, String)]) -> Result<Config, ConfigError> {
        let mut merged =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError::File {
                path: PathBuf::from("<defaults>"),
                reason: e.to_string(),
            })?;
        let mut last_path = PathBuf::from("<defaults>");
        for path in files.iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            // Each file is checked on its own text, so an error names its file, line and key.
            let own = toml::from_str::<Config>(&text).map_err(|e| file_error(path, &text, &e))?;
            if let Some((key, reason)) = own.first_problem() {
                return Err(value_error(path, &text, &key, &reason));
            }
            let table: toml::Table = text.parse().map_err(|e| file_error(path, &text, &e))?;
            merged = merge(merged, table);
            last_path = path.clone();
        }
        let mut config = Config::deserialize(merged).map_err(|e| ConfigError::File {
            path: last_path,
            reason: e.message().to_string(),
        })?;
        config.apply_env(env)?;
        config.fill_profiles();
        Ok(config)
    }

    /// The files `load` reads, lowest precedence first: the user's, then the project's.
    pub fn default_files(project_dir: &Path, env: &[(String, String)]) -> Vec<PathBuf> {
        let get = |key: &str| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let user_dir = get("XDG_CONFIG_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".config")));
        let mut files = Vec::new();
        if let Some(dir) = user_dir {
            files.push(dir.join("orchestrate").join(CONFIG_FILE));
        }
        files.push(project_dir.join(CONFIG_FILE));
        files
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        crate::meta::config::apply_env(&mut self.meta, &mut self.router, env).map_err(
            |(name, value, reason)| ConfigError::Env {
                name,
                value,
                reason,
            },
        )?;
        // The files were checked already: a problem now comes from a variable.
        if let Some((key, reason)) = self.meta.first_problem() {
            let (name, value) = match key.as_str() {
                "meta.store" => ("REDIS_URL", self.meta.store.clone()),
                "meta.session_ttl_secs" => ("SESSION_TTL", self.meta.session_ttl_secs.to_string()),
                _ => ("LOCK_DEFAULT_TTL", self.meta.lock_ttl_secs.to_string()),
            };
            return Err(ConfigError::Env {
                name: name.into(),
                value,
                reason,
            });
        }
        for (name, field) in ENV_OVERRIDES {
            let Some((_, value)) = env.iter().find(|(k, _)| k == name) else {
                continue;
            };
            let bad = |reason: &str| ConfigError::Env {
                name: name.into(),
                value: value.clone(),
                reason: reason.into(),
            };
            match field {
                "parallelism" => {
                    self.parallelism = value.parse().map_err(|_| bad("expected a whole number"))?
                }
                "retries" => {
                    self.retries = value.parse().map_err(|_| bad("expected a whole number"))?
                }
                "retry_backoff_ms" => {
                    self.retry_backoff_ms =
                        value.parse().map_err(|_| bad("expected milliseconds"))?
                }
                "task_timeout_secs" => {
                    self.task_timeout_secs = value.parse().map_err(|_| bad("expected seconds"))?
                }
                "sim_speed" => {
                    self.sim_speed = value.parse().map_err(|_| bad("expected a number"))?
                }
                "agent_unreachable_secs" => {
                    self.agent_unreachable_secs =
                        value.parse().map_err(|_| bad("expected seconds"))?
                }
                _ => {}
            }
            if let Some((_, reason)) = self.first_problem().filter(|(key, _)| key == field) {
                return Err(bad(&reason));
            }
        }
        Ok(())
    }

    /// The first setting out of its sensible range, as (key, why). Every layer is checked
    /// with this: each file on its own, each environment variable, and the flags at the end.
    pub fn first_problem(&self) -> Option<(String, String)> {
        let within = |key: &str, value: u64, low: u64, high: u64, unit: &str| {
            (value < low || value > high).then(|| {
                (
                    key.to_string(),
                    format!("{value} is out of range: {low} to {high} {unit}"),
                )
            })
        };
        self.meta
            .first_problem()
            .or_else(|| {
                crate::meta::router::Router::new(&self.router)
                    .err()
                    .map(|e| {
                        let why = e.to_string();
                        let why = why.strip_prefix("router ").unwrap_or(&why).to_string();
                        ("router".to_string(), why)
                    })
            })
            .or_else(|| within("parallelism", self.parallelism as u64, 1, 256, "workers"))
            .or_else(|| within("retries", u64::from(self.retries), 0, 100, "relaunches"))
            .or_else(|| {
                within(
                    "retry_backoff_ms",
                    self.retry_backoff_ms,
                    0,
                    3_600_000,
                    "ms",
                )
            })
            .or_else(|| {
                within(
                    "task_timeout_secs",
                    self.task_timeout_secs,
                    1,
                    7 * 86_400,
                    "seconds",
                )
            })
            .or_else(|| within("stop_grace_secs", self.stop_grace_secs, 0, 3_600, "seconds"))
            .or_else(|| {
                within(
                    "agent_unreachable_secs",
                    self.agent_unreachable_secs,
                    1,
                    86_400,
                    "seconds",
                )
            })
            .or_else(|| {
                check_speed(self.sim_speed)
                    .err()
                    .map(|r| ("sim_speed".into(), r))
            })
            .or_else(|| {
                let idle = self.review.idle_minutes;
                (!idle.is_finite() || idle <= 0.0).then(|| {
                    (
                        "review.idle_minutes".into(),
                        format!("{idle} is not a number of minutes above 0"),
                    )
                })
            })
            .or_else(|| {
                within(
                    "review.timeout_secs",
                    self.review.timeout_secs,
                    1,
                    86_400,
                    "seconds",
                )
            })
            .or_else(|| {
                within(
                    "review.diff_limit_kb",
                    self.review.diff_limit_kb,
                    1,
                    1 << 20,
                    "KiB",
                )
            })
            .or_else(|| {
                let s = &self.sandbox;
                within(
                    "sandbox.cpu_percent",
                    u64::from(s.cpu_percent),
                    1,
                    6400,
                    "percent of one CPU",
                )
                .or_else(|| within("sandbox.memory_mb", s.memory_mb, 16, 1 << 24, "MiB"))
                .or_else(|| {
                    within(
                        "sandbox.runtime_secs",
                        s.runtime_secs,
                        1,
                        30 * 86_400,
                        "seconds",
                    )
                })
                .or_else(|| {
                    within(
                        "sandbox.command_timeout_secs",
                        s.command_timeout_secs,
                        1,
                        86_400,
                        "seconds",
                    )
                })
                .or_else(|| {
                    within(
                        "sandbox.approval_timeout_secs",
                        s.approval_timeout_secs,
                        1,
                        7 * 86_400,
                        "seconds",
                    )
                })
                .or_else(|| {
                    SandboxPolicy::new(s, &[])
                        .err()
                        .map(|e| ("sandbox".to_string(), e.to_string()))
                })
                .or_else(|| {
                    crate::recovery::RecoveryRules::new(&self.recovery)
                        .err()
                        .map(|e| ("recovery".to_string(), e.to_string()))
                })
            })
            .or_else(|| {
                self.agents.keys().find_map(|name| {
                    crate::session::check_name("agent profile", name)
                        .err()
                        .map(|e| (format!("agents.{name}"), e.to_string()))
                })
            })
    }

    /// A profile named after a built-in CLI speaks that CLI's format and runs it by default.
    fn fill_profiles(&mut self) {
        for (name, profile) in &mut self.agents {
            if let Ok(kind) = name.parse::<AgentKind>() {
                if profile.kind == AgentKind::Events && kind != AgentKind::Events {
                    profile.kind = kind;
                }
                if profile.command.is_empty() {
                    profile.command = vec![name.clone()];
                }
            }
        }
    }

    pub fn profile(&self, name: &str) -> Option<&AgentProfile> {
        self.agents.get(name)
    }
}

/// How fast simulated agents go: 0 (instant) to 10 (ten times human pacing), finite.
pub fn check_speed(speed: f64) -> Result<f64, String> {
    if speed.is_finite() && (0.0..=10.0).contains(&speed) {
        Ok(speed)
    } else {
        Err(format!(
            "{speed} is not a speed: use 0 (instant) to 10 (1 is human-like)"
        ))
    }
}

/// `path:line: key: reason`, the line being where the file sets `key`.
fn value_error(path: &Path, text: &str, key: &str, reason: &str) -> ConfigError {
    let line = text.lines().position(|l| {
        let l = l.trim_start();
        match key.strip_prefix("agents.") {
            Some(profile) => l.starts_with("[agents.") && l.contains(profile),
            None => l.starts_with(key),
        }
    });
    let path = match line {
        Some(n) => PathBuf::from(format!("{}:{}", path.display(), n + 1)),
        None => path.to_path_buf(),
    };
    ConfigError::File {
        path,
        reason: format!("{key}: {reason}"),
    }
}

/// `path:line: message (key `k`)`, on one line.
fn file_error(path: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let mut reason = error.message().trim().to_string();
    if let Some(span) = error.span() {
        let line_number = text[..span.start.min(text.len())].matches('\n').count() + 1;
        let line = text.lines().nth(line_number - 1).unwrap_or("");
        if let Some((key, _)) = line
            .split_once('=')
            .filter(|(k, _)| !reason.contains(k.trim()))
        {
            reason.push_str(&format!(" (key `{}`)", key.trim()));
        }
        return ConfigError::File {
            path: PathBuf::from(format!("{}:{line_number}", path.display())),
            reason,
        };
    }
    ConfigError::File {
        path: path.to_path_buf(),
        reason,
    }
}

/// `overlay` over `base`, recursing into tables so unspecified keys keep their base value.
fn merge(mut base: toml::Table, overlay: toml::Table) -> toml::Table {
    for (key, value) in overlay {
        match (base.remove(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                base.insert(key, toml::Value::Table(merge(b, o)));
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn defaults_cover_the_three_clis() {
        let c = Config::load(&[], &[]).unwrap();
        assert_eq!(c.parallelism, 3);
        assert_eq!(c.profile("codex").unwrap().kind, AgentKind::Codex);
        assert_eq!(c.profile("gemini").unwrap().command, ["gemini"]);
    }

    #[test]
    fn project_overrides_user_overrides_defaults_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let user = write(
            dir.path(),
            "user.toml",
            "retries = 5\n[agents.claude]\nmodel = \"opus\"\nargs = [\"--max-turns=20\"]\n",
        );
        let project = write(
            dir.path(),
            "project.toml",
            "parallelism = 1\n[agents.claude]\nmodel = \"sonnet\"\n",
        );
        let c = Config::load(&[user, project], &[]).unwrap();
        assert_eq!((c.parallelism, c.retries), (1, 5));
        let claude = c.profile("claude").unwrap();
        assert_eq!(claude.model.as_deref(), Some("sonnet"));
        assert_eq!(
            claude.args,
            ["--max-turns=20"],
            "the user's field survives the project's table"
        );
        assert_eq!(claude.command, ["claude"]);
    }

    #[test]
    fn a_custom_agent_is_one_profile() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "o.toml",
            "[agents.aider]\nkind = \"events\"\ncommand = [\"./my-agent\"]\nargs = [\"{prompt}\"]\n",
        );
        let c = Config::load(&[file], &[]).unwrap();
        let aider = c.profile("aider").unwrap();
        assert_eq!(
            (aider.kind, aider.command.as_slice()),
            (AgentKind::Events, ["./my-agent".to_string()].as_slice())
        );
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "bad.toml", "paralelism = 2\n");
        let err = Config::load(std::slice::from_ref(&file), &[])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&file.display().to_string()), "{err}");
        assert!(err.contains("paralelism"), "{err}");
        let file = write(
            dir.path(),
            "bad2.toml",
            "parallelism = 2\nretries = \"many\"\n",
        );
        let err = Config::load(std::slice::from_ref(&file), &[])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}:2: invalid type: string \"many\", expected u32 (key `retries`)",
                file.display()
            )
        );
    }

    #[test]
    fn environment_overrides_files() {
        let env = vec![("ORCHESTRATE_PARALLELISM".to_string(), "7".to_string())];
        assert_eq!(Config::load(&[], &env).unwrap().parallelism, 7);
        let env = vec![("ORCHESTRATE_RETRIES".to_string(), "lots".to_string())];
        let err = Config::load(&[], &env).unwrap_err().to_string();
        assert_eq!(
            err,
            "environment variable ORCHESTRATE_RETRIES=\"lots\": expected a whole number"
        );
    }

    #[test]
    fn numbers_out_of_range_are_refused_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            (
                "task_timeout_secs = 0\n",
                ":1: task_timeout_secs: 0 is out of range: 1 to",
            ),
            (
                "retries = 1\nsim_speed = nan\n",
                ":2: sim_speed: NaN is not a speed",
            ),
            ("sim_speed = inf\n", "sim_speed: inf is not a speed"),
            ("sim_speed = 1e9\n", "sim_speed: 1000000000 is not a speed"),
            (
                "parallelism = 0\n",
                "parallelism: 0 is out of range: 1 to 256",
            ),
            ("parallelism = -2\n", "invalid value: integer `-2`"),
            (
                "[agents.\"../x\"]\nkind = \"events\"\n",
                ":1: agents.../x: agent profile \"../x\" is not a valid name",
            ),
        ] {
            let file = write(dir.path(), "o.toml", text);
            let err = Config::load(std::slice::from_ref(&file), &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
        for (name, value, expected) in [
            ("ORCHESTRATE_SIM_SPEED", "NaN", "NaN is not a speed"),
            ("ORCHESTRATE_SIM_SPEED", "-1", "-1 is not a speed"),
            ("ORCHESTRATE_TASK_TIMEOUT_SECS", "0", "0 is out of range"),
            ("ORCHESTRATE_PARALLELISM", "0", "0 is out of range"),
            ("ORCHESTRATE_RETRIES", "-1", "expected a whole number"),
        ] {
            let env = vec![(name.to_string(), value.to_string())];
            let err = Config::load(&[], &env).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(
                    "environment variable {name}={value:?}: {expected}"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn the_user_file_lives_in_the_config_dir() {
        let env = vec![("HOME".to_string(), "/home/u".to_string())];
        let files = Config::default_files(Path::new("/p"), &env);
        assert_eq!(
            files,
            [
                PathBuf::from("/home/u/.config/orchestrate/orchestrate.toml"),
                PathBuf::from("/p/orchestrate.toml")
            ]
        );
    }
}
