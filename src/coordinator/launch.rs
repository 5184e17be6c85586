//! How a worker of an agent profile is launched: the CLI's argv for the task, the profile's
//! environment, and where the agent runs: the installed CLI, the simulated one (`--simulate`),
//! or the installed CLI against the stub model with a private home (`--stub-model`). The
//! coordinator and `doctor --live` launch this one way.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::agents::guard::{self, Guard};
use crate::agents::{AgentKind, Autonomy, Launch, LaunchSpec, stub_env};
use crate::config::AgentProfile;
use crate::scenario::Scenario;

/// The variable that names the story simulated agents and the stub model play.
pub const SCENARIO_VAR: &str = "ORCHESTRATE_SIM_SCENARIO";

/// Which program answers for the profile's CLI.
#[derive(Debug, Clone)]
pub enum AgentSource {
    /// The installed CLI, with the operator's own configuration.
    Installed,
    /// `orchestrate sim <cli>` at this pace.
    Simulated { exe: PathBuf, speed: f64 },
    /// The installed CLI talking to the stub model at `addr`.
    Stub { addr: SocketAddr },
}

/// One worker to launch.
#[derive(Debug, Clone)]
pub struct WorkerLaunch<'a> {
    pub profile: &'a AgentProfile,
    /// The worker's name: its journals, its stub route and its private files.
    pub name: &'a str,
    pub prompt: &'a str,
    pub workdir: &'a Path,
    pub extra_dirs: Vec<PathBuf>,
    pub autonomy: Autonomy,
    /// Where a commit in `workdir` writes outside it (`runs::commit_dirs`).
    pub commit_dirs: Vec<PathBuf>,
    /// The agent's own conversation to continue.
    pub resume: Option<String>,
    /// The worker's private directory (`<session>/state/<worker>`).
    pub state_dir: PathBuf,
    pub source: AgentSource,
    /// The sandbox's hook and static rules for the CLI, when the session enforces one.
    pub guard: Option<Guard>,
    /// The JSON Schema of the answer (a reviewer's verdict), for CLIs that can enforce one.
    pub output_schema: Option<String>,
    /// The MCP server it gets (`orch`, the meta layer bound to it), if any.
    pub mcp: Option<crate::agents::McpServer>,
}

impl WorkerLaunch<'_> {
    /// The ready-to-spawn command. Under the stub model this creates the private home.
    pub fn build(self) -> Result<Launch> {
        let profile = self.profile;
        let program = match &self.source {
            AgentSource::Simulated { exe, .. } if profile.kind != AgentKind::Events => vec![
                exe.display().to_string(),
                "sim".into(),
                profile.kind.name().into(),
            ],
            _ => profile.command.clone(),
        };
        let spec = LaunchSpec {
            program,
            prompt: self.prompt.to_string(),
            workdir: self.workdir.to_path_buf(),
            extra_dirs: self.extra_dirs,
            model: profile.model.clone(),
            autonomy: self.autonomy,
            mcp: self.mcp,
            resume: self.resume,
            extra_args: profile.args.clone(),
            state_dir: self.state_dir.clone(),
            commit_dirs: self.commit_dirs,
            output_schema: self.output_schema,
        };
        let mut launch = profile.kind.launch(&spec);
        launch
            .env
            .extend(profile.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        match self.source {
            AgentSource::Installed => {}
            AgentSource::Simulated { speed, .. } => {
                launch
                    .env
                    .push(("ORCHESTRATE_SIM_SPEED".into(), speed.to_string()));
                // The simulated CLIs, like the real ones, refuse bypass mode as root without
                // IS_SANDBOX (Claude) and want an auth method (Gemini). A profile that sets
                // IS_SANDBOX itself plays a machine that is not a sandbox.
                if !profile.env.contains_key("IS_SANDBOX") {
                    launch.env.push(("IS_SANDBOX".into(), "1".into()));
                }
                launch
                    .env
                    .push(("GEMINI_API_KEY".into(), "orchestrate-sim".into()));
                // Its conversations live with the worker, for a resume to continue them.
                launch.env.push((
                    "ORCHESTRATE_SIM_HOME".into(),
                    self.state_dir.join("sim").display().to_string(),
                ));
            }
            AgentSource::Stub { addr } => {
                // A reviewer plays the verdict it was told, as the simulated ones do.
                let scenario = if self.prompt.contains(crate::review::REVIEW_MARKER) {
                    review_scenario(profile.kind)
                } else {
                    scenario_for(&profile.env)?
                };
                let home = private_dir(&self.state_dir.join("home"))?;
                let url = crate::stub::base_url(addr, scenario, self.name);
                stub_env::point_at_stub(profile.kind, &mut launch, &url, &home);
            }
        }
        if let Some(g) = &self.guard {
            // The stub's private home is where the CLI reads its settings.
            let home = matches!(self.source, AgentSource::Stub { .. })
                .then(|| self.state_dir.join("home"));
            let private = crate::coordinator::launch::private_dir(&self.state_dir)?;
            guard::install(profile.kind, &mut launch, g, &private, home.as_deref());
        }
        Ok(launch)
    }
}

/// The story the stub plays for a worker: its profile's `ORCHESTRATE_SIM_SCENARIO`, else this
/// process's, else success (the same variable the simulated agents read).
pub fn scenario_for(profile_env: &BTreeMap<String, String>) -> Result<Scenario> {
    let name = profile_env
        .get(SCENARIO_VAR)
        .cloned()
        .or_else(|| std::env::var(SCENARIO_VAR).ok());
    match name {
        None => Ok(Scenario::Success),
        Some(name) => name.parse().map_err(|e| anyhow!("{SCENARIO_VAR}: {e}")),
    }
}

/// The story a reviewer of `kind` plays: `ORCHESTRATE_SIM_VERDICT_<CLI>`, else
/// `ORCHESTRATE_SIM_VERDICT`, else approved (the same variables the simulated CLIs read).
pub fn review_scenario(kind: AgentKind) -> Scenario {
    let own = format!("ORCHESTRATE_SIM_VERDICT_{}", kind.name().to_uppercase());
    let verdict = std::env::var(own)
        .or_else(|_| std::env::var("ORCHESTRATE_SIM_VERDICT"))
        .unwrap_or_default();
    Scenario::for_verdict(&verdict)
}

/// Creates `dir` (and its parents) for its owner only: Gemini ignores settings in a directory
/// others can write to.
pub fn private_dir(dir: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {}", dir.display()))?;
    std::fs::create_dir_all(dir.join("tmp"))
        .with_context(|| format!("cannot create {}/tmp", dir.display()))?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_the_stub_a_worker_gets_a_private_home_and_its_route() {
        let dir = tempfile::tempdir().unwrap();
        let profile = AgentProfile {
            kind: AgentKind::Gemini,
            command: vec!["gemini".into()],
            env: [(SCENARIO_VAR.to_string(), "hang".to_string())].into(),
            ..AgentProfile::default()
        };
        let launch = WorkerLaunch {
            profile: &profile,
            name: "gemini-a",
            prompt: "p",
            workdir: dir.path(),
            extra_dirs: Vec::new(),
            autonomy: Autonomy::Full,
            commit_dirs: Vec::new(),
            resume: None,
            state_dir: dir.path().join("state/gemini-a"),
            source: AgentSource::Stub {
                addr: "127.0.0.1:9".parse().unwrap(),
            },
            guard: None,
            output_schema: None,
            mcp: None,
        }
        .build()
        .unwrap();
        assert_eq!(
            launch.env_value("GOOGLE_GEMINI_BASE_URL"),
            Some("http://127.0.0.1:9/s/hang/w/gemini-a")
        );
        let home = dir.path().join("state/gemini-a/home");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&home).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
