//! `orchestrate sandbox check`: one command line (or one file write) against the configured
//! policy, without a session, so an operator can try a policy before trusting it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::config::Config;
use crate::safety::{Decision, SandboxPolicy, ToolCall};

pub struct CheckRequest<'a> {
    pub command: Option<&'a str>,
    pub write: Option<&'a Path>,
    /// Instead of the user's and the project's orchestrate.toml.
    pub config: Option<&'a Path>,
    /// The directory the command runs in, and the writable one [default: the current one].
    pub cwd: Option<&'a Path>,
    pub json: bool,
}

/// Exit 0 allow, 1 deny, 3 confirm.
pub fn check(request: CheckRequest) -> Result<u8> {
    let here = std::env::current_dir().context("cannot read the current directory")?;
    let cwd = request.cwd.map_or(here.clone(), Path::to_path_buf);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let files = match request.config {
        Some(file) if !file.is_file() => bail!("--config: {} does not exist", file.display()),
        Some(file) => vec![file.to_path_buf()],
        None => Config::default_files(&here, &env),
    };
    let config = Config::load(&files, &env)?;
    let policy = SandboxPolicy::new(&config.sandbox, std::slice::from_ref(&cwd))?;
    let call = match (request.command, request.write) {
        (Some(command), None) => ToolCall::Shell {
            command: command.to_string(),
            cwd: cwd.clone(),
        },
        (None, Some(path)) => ToolCall::Write {
            path: PathBuf::from(path),
            cwd: cwd.clone(),
        },
        _ => bail!(
            "give one shell command line after `--` (orchestrate sandbox check -- 'rm -rf x') or --write PATH"
        ),
    };
    let verdict = policy.evaluate(&call);
    if request.json {
        println!("{}", serde_json::to_string(&verdict)?);
    } else {
        let word = match verdict.verdict {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::Confirm => "confirm",
        };
        if verdict.reason.is_empty() {
            println!("{word}");
        } else {
            println!("{word}: {}", verdict.reason);
        }
        for finding in &verdict.findings {
            println!("watched: {finding}");
        }
    }
    Ok(match verdict.verdict {
        Decision::Allow => 0,
        Decision::Deny => 1,
        Decision::Confirm => 3,
    })
}
