//! `orchestrate doctor`: each agent CLI found on PATH with its version against the tested pin,
//! whether credentials are configured (never printing them), and the tier that follows. With
//! `--live`, one offline turn of each installed CLI through orchestrate's own argv and PTY path
//! against the stub model (`live_turn`), pass or fail with the reason.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::live_turn::{self, LiveOutcome, LiveTurn};
use crate::agents::pins::{installed, pin};
use crate::agents::{AgentKind, Autonomy};
use crate::config::{AgentProfile, Config};
use crate::coordinator::tiers::Availability;
use crate::scenario::Scenario;

/// What `doctor` was asked.
pub struct DoctorRequest {
    pub live: bool,
    pub json: bool,
    pub scenario: String,
    /// Only these CLIs (default: claude, codex and gemini).
    pub clis: Option<Vec<String>>,
    /// The live turn's autonomy instead of each profile's.
    pub autonomy: Option<Autonomy>,
    /// The live turn's prompt.
    pub prompt: Option<String>,
    /// Keep the live turns' files (journals, raw PTY bytes, the CLI's home) here.
    pub keep: Option<PathBuf>,
    pub timeout_secs: u64,
}

/// What doctor found out about one CLI.
struct Finding {
    name: String,
    kind: AgentKind,
    command: Vec<String>,
    path: Option<PathBuf>,
    version: Option<String>,
    pin: Option<(&'static str, &'static str)>,
    credentials: Option<String>,
    live: Option<LiveOutcome>,
}

pub fn doctor(request: DoctorRequest) -> Result<u8> {
    let scenario: Scenario = request
        .scenario
        .parse()
        .map_err(|e| anyhow::anyhow!("--scenario: {e}"))?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let config = Config::load(&Config::default_files(&cwd, &env), &env)?;
    let wanted: Vec<String> = request
        .clis
        .clone()
        .unwrap_or_else(|| vec!["claude".into(), "codex".into(), "gemini".into()]);
    let mut findings = Vec::new();
    for name in &wanted {
        let profile = config
            .profile(name)
            .with_context(|| format!("no agent profile named {name:?}"))?;
        findings.push(inspect(name, profile, &cwd, &env));
    }
    let tier = Availability::detect(&config, false, &cwd, None).tier();
    if request.live {
        let turns: Vec<LiveTurn> = findings
            .iter()
            .filter(|f| f.path.is_some())
            .map(|f| LiveTurn {
                name: f.name.clone(),
                profile: config.profile(&f.name).cloned().unwrap_or_default(),
                autonomy: request.autonomy,
            })
            .collect();
        let outcomes = live_turn::run_all(
            &turns,
            scenario,
            request.prompt.as_deref(),
            request.keep.as_deref(),
            Duration::from_secs(request.timeout_secs),
        )?;
        for (name, outcome) in outcomes {
            if let Some(f) = findings.iter_mut().find(|f| f.name == name) {
                f.live = Some(outcome);
            }
        }
    }
    let any_found = findings.iter().any(|f| f.path.is_some());
    let live_failed = findings
        .iter()
        .any(|f| f.live.as_ref().is_some_and(|l| !l.passed));
    if request.json {
        let report = json!({
            "clis": findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
            "tier": {"level": tier.level, "agents": tier.agents, "text": tier.to_string()},
            "live_scenario": request.live.then(|| scenario.name()),
        });
        println!("{report:#}");
    } else {
        print_report(
            &findings,
            &tier.to_string(),
            request.live.then_some(scenario),
        );
    }
    Ok(if !any_found || live_failed { 1 } else { 0 })
}

fn inspect(name: &str, profile: &AgentProfile, cwd: &Path, env: &[(String, String)]) -> Finding {
    let (path, version) = installed(&profile.command, cwd);
    Finding {
        name: name.to_string(),
        kind: profile.kind,
        command: profile.command.clone(),
        path,
        version,
        pin: pin(profile.kind),
        credentials: credentials(profile.kind, env),
        live: None,
    }
}

/// Where the CLI would find credentials: the variable or file's name, never its value.
fn credentials(kind: AgentKind, env: &[(String, String)]) -> Option<String> {
    let get = |k: &str| {
        env.iter()
            .find(|(key, v)| key == k && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let home = PathBuf::from(get("HOME").unwrap_or("/"));
    let (vars, files): (&[&str], Vec<PathBuf>) = match kind {
        AgentKind::Claude => (
            &[
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_AUTH_TOKEN",
                "CLAUDE_CODE_OAUTH_TOKEN",
                "CLAUDE_CODE_USE_BEDROCK",
                "CLAUDE_CODE_USE_VERTEX",
            ],
            vec![
                get("CLAUDE_CONFIG_DIR")
                    .map_or_else(|| home.join(".claude"), PathBuf::from)
                    .join(".credentials.json"),
            ],
        ),
        AgentKind::Codex => (
            &["OPENAI_API_KEY", "CODEX_API_KEY"],
            vec![
                get("CODEX_HOME")
                    .map_or_else(|| home.join(".codex"), PathBuf::from)
                    .join("auth.json"),
            ],
        ),
        AgentKind::Gemini => (
            &[
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
                "GOOGLE_GENAI_USE_VERTEXAI",
                "GOOGLE_GENAI_USE_GCA",
            ],
            vec![home.join(".gemini").join("oauth_creds.json")],
        ),
        AgentKind::Events => return None,
    };
    if let Some(var) = vars.iter().find(|v| get(v).is_some()) {
        return Some((*var).to_string());
    }
    if let Some(file) = files.iter().find(|f| f.is_file()) {
        return Some(file.display().to_string());
    }
    if kind == AgentKind::Gemini {
        let settings = home.join(".gemini").join("settings.json");
        let selected = std::fs::read_to_string(&settings)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| {
                v["security"]["auth"]["selectedType"]
                    .as_str()
                    .map(str::to_string)
            });
        if let Some(kind) = selected {
            return Some(format!("{} (auth type {kind})", settings.display()));
        }
    }
    None
}

impl Finding {
    fn pin_note(&self) -> String {
        match (&self.version, self.pin) {
            (_, None) => String::new(),
            (Some(v), Some((_, p))) if v == p => format!("tested pin {p}: same"),
            (Some(_), Some((_, p))) => format!("tested pin {p}: differs, expect surprises"),
            (None, Some((_, p))) => format!("tested pin {p}: version unknown"),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind.name(),
            "command": self.command,
            "path": self.path.as_ref().map(|p| p.display().to_string()),
            "version": self.version,
            "pin": self.pin.map(|(_, v)| v),
            "pin_matches": match (&self.version, self.pin) {
                (Some(v), Some((_, p))) => Some(v == p),
                _ => None,
            },
            "credentials": self.credentials,
            "live": self.live.as_ref().map(|l| json!({
                "passed": l.passed, "reason": l.reason, "seconds": l.seconds,
                "requests": l.requests,
            })),
        })
    }
}

fn print_report(findings: &[Finding], tier: &str, live: Option<Scenario>) {
    for f in findings {
        match &f.path {
            None => {
                let install = f.pin.map_or(String::new(), |(package, version)| {
                    format!(": npm install -g {package}@{version}")
                });
                println!(
                    "{:<8} not found on PATH ({}){install}",
                    f.name,
                    f.command.join(" ")
                );
            }
            Some(path) => {
                println!(
                    "{:<8} {:<10} {}  ({})",
                    f.name,
                    f.version.as_deref().unwrap_or("?"),
                    path.display(),
                    f.pin_note()
                );
                let credentials = f.credentials.as_deref().map_or_else(
                    || {
                        "none found (the stub model needs none: orchestrate run --stub-model)"
                            .into()
                    },
                    |c| format!("configured ({c})"),
                );
                println!("{:<8} credentials: {credentials}", "");
            }
        }
    }
    println!("{tier}");
    let Some(scenario) = live else {
        return;
    };
    println!("\none offline turn against the stub model (scenario {scenario}):");
    for f in findings {
        match &f.live {
            Some(l) => println!(
                "{:<8} {}  {:.1}s, {} request(s){}",
                f.name,
                if l.passed { "pass" } else { "FAIL" },
                l.seconds,
                l.requests,
                if l.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", l.reason)
                }
            ),
            None => println!("{:<8} skipped: not installed", f.name),
        }
    }
}
