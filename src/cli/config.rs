//! `orchestrate config show|path`: the configuration in effect here, and the files it comes
//! from, so "why does it do that" has an answer.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::{Config, ENV_OVERRIDES};

/// This directory and this process's environment, which the configuration is read with.
pub(super) fn here() -> (PathBuf, Vec<(String, String)>) {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    (cwd, std::env::vars().collect())
}

/// The merged configuration as TOML, with the environment overrides that applied.
pub fn show() -> Result<u8> {
    let (cwd, env) = here();
    let config = Config::load(&Config::default_files(&cwd, &env), &env)?;
    for (name, field) in ENV_OVERRIDES {
        if let Some((_, value)) = env.iter().find(|(k, _)| k == name) {
            println!("# {field} = {value} comes from {name}");
        }
    }
    print!(
        "{}",
        toml::to_string(&config).context("cannot print the configuration")?
    );
    Ok(0)
}

/// The files `show` merges, lowest precedence first.
pub fn path() -> Result<u8> {
    let (cwd, env) = here();
    for file in Config::default_files(&cwd, &env) {
        let state = if file.is_file() { "" } else { "  (absent)" };
        println!("{}{state}", file.display());
    }
    Ok(0)
}
