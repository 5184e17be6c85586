//! How each CLI is pointed at the stub model: its base URL and a dummy key in the environment,
//! and a fresh private home holding the CLI's own config files (Codex's custom provider,
//! Gemini's auth type). The operator's own configuration and credentials are never read or
//! changed: `HOME` and every config directory point into the worker's private home, and
//! inherited credentials are removed. Telemetry and update checks are off.

use std::path::Path;

use serde_json::json;

use super::{AgentKind, Launch};

/// The key the CLIs send the stub; it checks nothing.
pub const STUB_KEY: &str = "orchestrate-stub-key";
/// Codex's model when none is configured: the one the pinned Codex has metadata for, so it
/// offers `apply_patch`.
pub const CODEX_STUB_MODEL: &str = "gpt-5.5";

/// Inherited variables that would point a CLI at a real account or another configuration.
const FOREIGN_ENV: [&str; 16] = [
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_USE_VERTEX",
    "ANTHROPIC_MODEL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CODEX_API_KEY",
    "GOOGLE_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_GENAI_USE_GCA",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GEMINI_MODEL",
    "XDG_RUNTIME_DIR",
    "GEMINI_CLI_SYSTEM_DEFAULTS_PATH",
];

/// Points `launch` at the stub under `base_url` (`http://127.0.0.1:PORT/s/<scenario>/w/<name>`),
/// with `home` as the CLI's private home. `launch.files` gets the config files to write.
pub fn point_at_stub(kind: AgentKind, launch: &mut Launch, base_url: &str, home: &Path) {
    let dir = |sub: &str| home.join(sub).display().to_string();
    launch.env_remove.extend(FOREIGN_ENV.map(String::from));
    let env = &mut launch.env;
    env.push(("HOME".into(), home.display().to_string()));
    env.push(("XDG_CONFIG_HOME".into(), dir(".config")));
    env.push(("XDG_DATA_HOME".into(), dir(".local/share")));
    env.push(("XDG_CACHE_HOME".into(), dir(".cache")));
    env.push(("XDG_STATE_HOME".into(), dir(".local/state")));
    // Scratch files (Gemini's error reports, Claude's sockets) stay in the worker's home too.
    env.push(("TMPDIR".into(), dir("tmp")));
    match kind {
        AgentKind::Claude => {
            env.push(("ANTHROPIC_BASE_URL".into(), base_url.into()));
            env.push(("ANTHROPIC_API_KEY".into(), STUB_KEY.into()));
            env.push(("CLAUDE_CONFIG_DIR".into(), dir(".claude")));
            for flag in [
                "DISABLE_TELEMETRY",
                "DISABLE_AUTOUPDATER",
                "DISABLE_ERROR_REPORTING",
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            ] {
                env.push((flag.into(), "1".into()));
            }
        }
        AgentKind::Codex => {
            let codex_home = home.join(".codex");
            env.push(("CODEX_HOME".into(), codex_home.display().to_string()));
            env.push(("ORCHESTRATE_STUB_KEY".into(), STUB_KEY.into()));
            let config = format!(
                "# Written by orchestrate: this worker talks to the local stub model only.\n\
                 model = \"{CODEX_STUB_MODEL}\"\n\
                 model_provider = \"orchestrate-stub\"\n\
                 check_for_update_on_startup = false\n\n\
                 [analytics]\nenabled = false\n\n\
                 [model_providers.orchestrate-stub]\n\
                 name = \"orchestrate stub model\"\n\
                 base_url = \"{base_url}/v1\"\n\
                 wire_api = \"responses\"\n\
                 env_key = \"ORCHESTRATE_STUB_KEY\"\n"
            );
            launch.files.push((codex_home.join("config.toml"), config));
        }
        AgentKind::Gemini => {
            env.push(("GOOGLE_GEMINI_BASE_URL".into(), base_url.into()));
            env.push(("GEMINI_API_KEY".into(), STUB_KEY.into()));
            env.push(("GEMINI_TELEMETRY_ENABLED".into(), "false".into()));
            // A set base URL makes Gemini 0.61 pick the `gateway` auth type, which it then
            // refuses (exit 41); the settings pin the API-key type.
            let settings = json!({
                "security": {"auth": {"selectedType": "gemini-api-key"}},
                "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
                "privacy": {"usageStatisticsEnabled": false},
                "telemetry": {"enabled": false},
            });
            launch.files.push((
                home.join(".gemini").join("settings.json"),
                format!("{settings:#}\n"),
            ));
        }
        AgentKind::Events => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn each_cli_gets_its_base_url_a_dummy_key_and_a_private_home() {
        let home = PathBuf::from("/s/state/w/home");
        let url = "http://127.0.0.1:9/s/success/w/w";
        let mut claude = Launch::default();
        point_at_stub(AgentKind::Claude, &mut claude, url, &home);
        assert_eq!(claude.env_value("ANTHROPIC_BASE_URL"), Some(url));
        assert_eq!(claude.env_value("HOME"), Some("/s/state/w/home"));
        assert!(
            claude
                .env_remove
                .contains(&"CLAUDE_CODE_OAUTH_TOKEN".to_string())
        );

        let mut codex = Launch::default();
        point_at_stub(AgentKind::Codex, &mut codex, url, &home);
        let (path, config) = &codex.files[0];
        assert_eq!(path, &home.join(".codex/config.toml"));
        assert!(config.contains(&format!("base_url = \"{url}/v1\"")));
        toml::from_str::<toml::Table>(config).expect("valid TOML");

        let mut gemini = Launch::default();
        point_at_stub(AgentKind::Gemini, &mut gemini, url, &home);
        assert_eq!(gemini.env_value("GOOGLE_GEMINI_BASE_URL"), Some(url));
        assert!(gemini.files[0].1.contains("gemini-api-key"));
    }
}
