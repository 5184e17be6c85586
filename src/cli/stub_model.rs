//! `orchestrate stub-model`: the scripted model server in the foreground.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::scenario::Scenario;
use crate::stub::{StubConfig, serve_blocking};

pub fn serve(
    port: u16,
    scenario: &str,
    log: Option<PathBuf>,
    port_file: Option<&Path>,
) -> Result<u8> {
    let scenario: Scenario = scenario.parse().map_err(|e| anyhow!("--scenario: {e}"))?;
    let config = StubConfig {
        port,
        scenario,
        log,
    };
    serve_blocking(config, |addr| {
        println!("stub model listening on http://{addr} (scenario {scenario})");
        let _ = std::io::stdout().flush();
        if let Some(path) = port_file
            && let Err(e) = std::fs::write(path, addr.port().to_string())
        {
            eprintln!("orchestrate: cannot write {}: {e}", path.display());
        }
    })
    .with_context(|| format!("stub model on 127.0.0.1:{port}"))?;
    Ok(0)
}
