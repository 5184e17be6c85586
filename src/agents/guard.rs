//! Making each CLI ask orchestrate before a tool runs, through its own channel, with a static
//! layer behind the hook (a hook that crashes or times out lets the command run on all three
//! CLIs: research/real-cli/enforcement.md):
//! - Claude: a `PreToolUse` command hook with `onFailure: "block"`, and `permissions.deny`
//!   rules, in a `--settings` file.
//! - Codex: a `PreToolUse` hook in `hooks.json` (run only with `--dangerously-bypass-hook-trust`)
//!   and `forbidden` prefix rules in `rules/`, both in the worker's own `CODEX_HOME`.
//! - Gemini: a `BeforeTool` hook in settings kept in a private directory (it skips settings
//!   under a world-writable one), and `deny` rules in a `--policy` file.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{AgentKind, Launch};

/// What the worker's CLI is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// The hook's command line for a shell: `'/abs/orchestrate' hook claude --socket ... --worker ...`.
    pub hook: String,
    /// The policy's `blocked` rules, for the static layer.
    pub blocked: Vec<String>,
    /// How long the CLI waits for the hook: an approval can take the operator a while.
    pub hook_timeout_secs: u64,
}

/// `word` quoted for a POSIX shell.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Adds the guard to `launch`. `codex_home` and `gemini_home` are the CLI's private homes
/// when it has one (under the stub model), else the guard makes its own in `state_dir`.
pub fn install(
    kind: AgentKind,
    launch: &mut Launch,
    guard: &Guard,
    state_dir: &Path,
    private_home: Option<&Path>,
) {
    match kind {
        AgentKind::Claude => claude(launch, guard, state_dir),
        AgentKind::Codex => codex(launch, guard, state_dir, private_home),
        AgentKind::Gemini => gemini(launch, guard, state_dir, private_home),
        AgentKind::Events => {}
    }
}

/// Where flags go: before the prompt (Claude `--`, Codex `resume` or `--`, Gemini `--prompt=`).
fn flag_position(launch: &Launch) -> usize {
    let argv = &launch.argv;
    argv.iter()
        .position(|a| a == "resume" || a.starts_with("--prompt="))
        .or_else(|| argv.iter().rposition(|a| a == "--"))
        .unwrap_or(argv.len())
}

fn insert_flags(launch: &mut Launch, flags: &[String]) {
    let at = flag_position(launch);
    for (i, flag) in flags.iter().enumerate() {
        launch.argv.insert(at + i, flag.clone());
    }
}

/// A rule's program and flags: `rm -rf` is (`rm`, [r, f], []).
struct Rule {
    program: String,
    flags: Vec<String>,
    words: Vec<String>,
}

fn rule(text: &str) -> Option<Rule> {
    let mut parts = text.split_whitespace();
    let program = parts.next()?.to_string();
    let (mut flags, mut words) = (Vec::new(), Vec::new());
    for part in parts {
        match part.strip_prefix("--") {
            Some(long) => flags.push(long.to_string()),
            None => match part.strip_prefix('-') {
                Some(short) => flags.extend(short.chars().map(String::from)),
                None => words.push(part.to_string()),
            },
        }
    }
    Some(Rule {
        program,
        flags,
        words,
    })
}

/// The usual spellings of a flag set, for prefix-matching layers: `rm -rf` and `rm -fr`.
fn spellings(rule: &Rule) -> Vec<String> {
    let shorts: Vec<&String> = rule.flags.iter().filter(|f| f.len() == 1).collect();
    let mut prefixes = vec![rule.program.trim_end_matches('*').to_string()];
    if !shorts.is_empty() {
        let forward: String = shorts.iter().map(|s| s.as_str()).collect();
        let backward: String = shorts.iter().rev().map(|s| s.as_str()).collect();
        prefixes = [forward, backward]
            .into_iter()
            .map(|f| format!("{} -{f}", rule.program))
            .collect();
        prefixes.dedup();
    }
    for p in &mut prefixes {
        for w in &rule.words {
            p.push(' ');
            p.push_str(w);
        }
    }
    prefixes
}

fn claude(launch: &mut Launch, guard: &Guard, state_dir: &Path) {
    let mut deny = Vec::new();
    for text in &guard.blocked {
        let Some(rule) = rule(text) else { continue };
        for prefix in spellings(&rule) {
            if rule.program.ends_with('*') && rule.flags.is_empty() {
                deny.push(format!("Bash({prefix}*)"));
            } else {
                deny.push(format!("Bash({prefix})"));
                deny.push(format!("Bash({prefix} *)"));
            }
        }
    }
    let settings = json!({
        "hooks": {"PreToolUse": [{
            "matcher": "Bash|Write|Edit|MultiEdit|NotebookEdit",
            "hooks": [{
                "type": "command",
                "command": guard.hook,
                "timeout": guard.hook_timeout_secs,
                "onFailure": "block",
            }],
        }]},
        "permissions": {"deny": deny},
    });
    let path = state_dir.join("claude-settings.json");
    launch.files.push((path.clone(), format!("{settings:#}\n")));
    insert_flags(launch, &[format!("--settings={}", path.display())]);
}

fn codex(launch: &mut Launch, guard: &Guard, state_dir: &Path, private_home: Option<&Path>) {
    let home = match private_home {
        Some(home) => home.join(".codex"),
        None => {
            // The operator's login and settings, linked (never copied or changed) into a home
            // of the worker's own that also holds the guard.
            let home = state_dir.join("codex-home");
            let own = std::env::var_os("CODEX_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".codex")));
            if let Some(own) = own {
                for name in ["auth.json", "config.toml"] {
                    let _ = std::fs::create_dir_all(&home);
                    let link = home.join(name);
                    if own.join(name).exists() && !link.exists() {
                        let _ = std::os::unix::fs::symlink(own.join(name), &link);
                    }
                }
            }
            launch
                .env
                .push(("CODEX_HOME".into(), home.display().to_string()));
            home
        }
    };
    let mut rules = String::from("# orchestrate's sandbox: the static layer behind its hook\n");
    for text in &guard.blocked {
        let Some(rule) = rule(text) else { continue };
        let program = rule.program.trim_end_matches('*');
        let programs: Vec<String> = if rule.program.ends_with('*') {
            [
                "", ".ext2", ".ext3", ".ext4", ".xfs", ".btrfs", ".vfat", ".fat",
            ]
            .iter()
            .map(|s| format!("{program}{s}"))
            .collect()
        } else {
            vec![program.to_string()]
        };
        let mut pattern = vec![json!(programs)];
        let shorts: Vec<&String> = rule.flags.iter().filter(|f| f.len() == 1).collect();
        if !shorts.is_empty() {
            let spelled: Vec<String> = spellings(&rule)
                .iter()
                .filter_map(|s| s.split_whitespace().nth(1).map(str::to_string))
                .collect();
            pattern.push(json!(spelled));
        }
        pattern.extend(rule.words.iter().map(|w| json!(w)));
        rules.push_str(&format!(
            "prefix_rule(pattern={}, decision=\"forbidden\", justification={})\n",
            Value::Array(pattern),
            json!(format!("orchestrate sandbox: {text} is blocked"))
        ));
    }
    launch
        .files
        .push((home.join("rules").join("orchestrate.rules"), rules));
    let hooks = json!({"hooks": {"PreToolUse": [{
        "matcher": "Bash|apply_patch|Edit|Write",
        "hooks": [{"type": "command", "command": guard.hook, "timeout": guard.hook_timeout_secs}],
    }]}});
    launch
        .files
        .push((home.join("hooks.json"), format!("{hooks:#}\n")));
    // Without it Codex skips hooks it has not been told to trust, silently.
    insert_flags(launch, &["--dangerously-bypass-hook-trust".to_string()]);
}

fn gemini(launch: &mut Launch, guard: &Guard, state_dir: &Path, private_home: Option<&Path>) {
    let mut policy = String::from("# orchestrate's sandbox: the static layer behind its hook\n");
    for text in &guard.blocked {
        let Some(rule) = rule(text) else { continue };
        policy.push_str(&format!(
            "\n[[rule]]\ntoolName = \"run_shell_command\"\ncommandRegex = {}\ndecision = \"deny\"\npriority = 900\ndenyMessage = {}\n",
            json!(command_regex(&rule)),
            json!(format!("orchestrate sandbox: {text} is blocked"))
        ));
    }
    let policy_path = state_dir.join("gemini-policy.toml");
    launch.files.push((policy_path.clone(), policy));
    let hooks = json!({"BeforeTool": [{
        "matcher": "run_shell_command|write_file|replace",
        "sequential": true,
        "hooks": [{
            "type": "command",
            "command": guard.hook,
            "name": "orchestrate",
            "timeout": guard.hook_timeout_secs * 1000,
        }],
    }]});
    match private_home {
        // Its own user settings (the stub's home): the hooks join what is there.
        Some(home) => {
            let path = home.join(".gemini").join("settings.json");
            let mut settings = launch
                .files
                .iter()
                .find(|(p, _)| *p == path)
                .and_then(|(_, text)| serde_json::from_str::<Value>(text).ok())
                .unwrap_or_else(|| json!({}));
            settings["hooks"] = hooks;
            launch.files.retain(|(p, _)| *p != path);
            launch.files.push((path, format!("{settings:#}\n")));
        }
        // The operator's home: system settings in the worker's private directory, which
        // take precedence and leave theirs alone. The launch may have written them already
        // (its MCP server): the hooks join that file. A system settings file the operator's
        // profile names is read, never written: its settings are carried into ours.
        None => {
            const VAR: &str = "GEMINI_CLI_SYSTEM_SETTINGS_PATH";
            let named = launch
                .env
                .iter()
                .find(|(k, _)| k == VAR)
                .map(|(_, v)| PathBuf::from(v));
            let written = named
                .as_ref()
                .and_then(|p| launch.files.iter().find(|(f, _)| f == p))
                .map(|(p, text)| (p.clone(), text.clone()));
            let (path, base) = match (written, named) {
                (Some((path, text)), _) => (path, Some(text)),
                (None, operators) => (
                    state_dir.join("gemini-system.json"),
                    operators.and_then(|p| std::fs::read_to_string(p).ok()),
                ),
            };
            let mut settings = base
                .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            settings["hooks"] = hooks;
            launch.files.retain(|(p, _)| *p != path);
            launch.files.push((path.clone(), format!("{settings:#}\n")));
            launch.env.retain(|(k, _)| k != VAR);
            launch.env.push((VAR.into(), path.display().to_string()));
        }
    }
    insert_flags(launch, &[format!("--policy={}", policy_path.display())]);
}

/// A regex (JavaScript) for a rule: its program as a word, then each flag anywhere after it.
/// A Gemini policy `commandRegex` for `rule`. Gemini matches it right after `"command":"` in
/// the call's JSON arguments (so no `^`), and refuses, as a possible ReDoS, any pattern with a
/// quantified group that holds a quantifier (`(\S*/)?`): the optional path before the program
/// is spelled as an alternative with the empty string instead.
fn command_regex(rule: &Rule) -> String {
    let escape = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c.to_string()
                } else {
                    format!("\\{c}")
                }
            })
            .collect::<String>()
    };
    let program = match rule.program.strip_suffix('*') {
        Some(prefix) => format!("{}\\S*", escape(prefix)),
        None => escape(&rule.program),
    };
    let mut regex = format!("\\s*([^\\s\"]*/|){program}");
    for flag in &rule.flags {
        if flag.len() == 1 {
            let c = escape(flag);
            let (upper, long) = match flag.as_str() {
                "r" => ("R", "|--recursive"),
                "f" => ("", "|--force"),
                _ => ("", ""),
            };
            regex.push_str(&format!("(?=.*\\s(-[A-Za-z]*[{c}{upper}]{long}))"));
        } else {
            regex.push_str(&format!("(?=.*\\s--{})", escape(flag)));
        }
    }
    for word in &rule.words {
        regex.push_str(&format!("(?=.*\\s{}(\\s|$))", escape(word)));
    }
    regex.push_str("(\\s|$)");
    regex
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(argv: &[&str]) -> Launch {
        Launch {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Launch::default()
        }
    }

    fn guard() -> Guard {
        Guard {
            hook: "'/bin/orchestrate' hook claude".into(),
            blocked: vec!["rm -rf".into(), "dd".into(), "mkfs*".into()],
            hook_timeout_secs: 660,
        }
    }

    #[test]
    fn claude_gets_a_blocking_hook_and_deny_rules_in_its_settings() {
        let dir = Path::new("/s");
        let mut l = launch(&["claude", "-p", "--", "prompt"]);
        install(AgentKind::Claude, &mut l, &guard(), dir, None);
        assert_eq!(
            l.argv,
            [
                "claude",
                "-p",
                "--settings=/s/claude-settings.json",
                "--",
                "prompt"
            ]
        );
        let settings: Value = serde_json::from_str(&l.files[0].1).unwrap();
        let hook = &settings["hooks"]["PreToolUse"][0]["hooks"][0];
        assert_eq!(hook["onFailure"], "block");
        assert_eq!(hook["timeout"], 660);
        let deny: Vec<&str> = settings["permissions"]["deny"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(deny.contains(&"Bash(rm -rf *)") && deny.contains(&"Bash(rm -fr *)"));
        assert!(deny.contains(&"Bash(dd *)") && deny.contains(&"Bash(mkfs*)"));
    }

    #[test]
    fn codex_gets_forbidden_rules_a_hook_and_the_trust_flag() {
        let home = Path::new("/h");
        let mut l = launch(&["codex", "exec", "--json", "resume", "id", "--", "p"]);
        install(
            AgentKind::Codex,
            &mut l,
            &guard(),
            Path::new("/s"),
            Some(home),
        );
        assert_eq!(l.argv[3], "--dangerously-bypass-hook-trust");
        let rules = &l
            .files
            .iter()
            .find(|(p, _)| p.ends_with("rules/orchestrate.rules"))
            .unwrap()
            .1;
        assert!(
            rules.contains(r#"prefix_rule(pattern=[["rm"],["-rf","-fr"]], decision="forbidden""#),
            "{rules}"
        );
        assert!(rules.contains(r#"pattern=[["dd"]]"#), "{rules}");
        assert!(
            l.files
                .iter()
                .any(|(p, _)| p == Path::new("/h/.codex/hooks.json"))
        );
    }

    #[test]
    fn gemini_gets_a_policy_and_a_hook_in_private_settings() {
        let home = Path::new("/h");
        let mut l = launch(&["gemini", "--output-format", "stream-json", "--prompt=p"]);
        l.files.push((
            home.join(".gemini/settings.json"),
            r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#.into(),
        ));
        install(
            AgentKind::Gemini,
            &mut l,
            &guard(),
            Path::new("/s"),
            Some(home),
        );
        assert_eq!(l.argv[3], "--policy=/s/gemini-policy.toml");
        let settings: Value = serde_json::from_str(
            &l.files
                .iter()
                .find(|(p, _)| p.ends_with(".gemini/settings.json"))
                .unwrap()
                .1,
        )
        .unwrap();
        assert_eq!(
            settings["security"]["auth"]["selectedType"],
            "gemini-api-key"
        );
        assert_eq!(
            settings["hooks"]["BeforeTool"][0]["hooks"][0]["timeout"],
            660_000
        );
        let rm = rule("rm -rf").unwrap();
        assert_eq!(
            command_regex(&rm),
            r#"\s*([^\s"]*/|)rm(?=.*\s(-[A-Za-z]*[rR]|--recursive))(?=.*\s(-[A-Za-z]*[f]|--force))(\s|$)"#
        );
    }

    #[test]
    fn an_operators_gemini_system_settings_are_read_and_never_written() {
        let dir = std::env::temp_dir().join(format!("orch-guard-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let operators = dir.join("system.json");
        let theirs = r#"{"general":{"vimMode":true}}"#;
        std::fs::write(&operators, theirs).unwrap();
        let mut l = launch(&["gemini", "--output-format", "stream-json", "--prompt=p"]);
        l.env.push((
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(),
            operators.display().to_string(),
        ));
        install(AgentKind::Gemini, &mut l, &guard(), Path::new("/s"), None);
        assert!(!l.files.iter().any(|(p, _)| *p == operators));
        let (path, text) = l
            .files
            .iter()
            .find(|(p, _)| p.ends_with("gemini-system.json"))
            .unwrap();
        assert_eq!(path, Path::new("/s/gemini-system.json"));
        let settings: Value = serde_json::from_str(text).unwrap();
        assert_eq!(settings["general"]["vimMode"], true);
        assert!(settings["hooks"]["BeforeTool"].is_array());
        assert!(l.env.contains(&(
            "GEMINI_CLI_SYSTEM_SETTINGS_PATH".into(),
            "/s/gemini-system.json".into()
        )));
        assert_eq!(std::fs::read_to_string(&operators).unwrap(), theirs);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// What Gemini 0.61 checks before it takes a policy's pattern (its `isSafeRegExp`), and how
    /// it uses it: a pattern it refuses is dropped with a warning and blocks nothing.
    #[test]
    fn gemini_takes_every_pattern_and_each_blocks_what_it_names() {
        let unsafe_to_gemini = regex::Regex::new(r"\([^)]*[*+?{].*\)[*+?{]").unwrap();
        for (blocked, command, allowed) in [
            ("rm -rf", "rm -rf /tmp/x", "rm notes.txt"),
            ("rm -rf", "/bin/rm -fr build", "echo rm -rf"),
            ("mkfs*", "mkfs.ext4 /dev/sda1", "echo mkfs"),
            ("dd", "dd if=/dev/zero of=/dev/sda", "add x"),
            (
                "git push --force",
                "git push origin main --force",
                "git push origin main",
            ),
        ] {
            let pattern = command_regex(&rule(blocked).unwrap());
            assert!(!unsafe_to_gemini.is_match(&pattern), "{pattern}");
            assert!(!pattern.starts_with('^'), "{pattern}");
            // As Gemini applies it, in JavaScript (the `regex` crate has no lookahead): after
            // `"command":"` in the arguments' JSON. Node comes with the pinned CLIs.
            let script = format!(
                "const r = new RegExp({}); const a = c => JSON.stringify({{command: c, dir_path: '.'}}); \
                 process.exit(r.test(a({})) && !r.test(a({})) ? 0 : 1)",
                serde_json::json!(format!("\"command\":\"{pattern}")),
                serde_json::json!(command),
                serde_json::json!(allowed)
            );
            match std::process::Command::new("node")
                .args(["-e", &script])
                .status()
            {
                Ok(status) => assert!(
                    status.success(),
                    "{blocked}: should block {command:?} and allow {allowed:?} ({pattern})"
                ),
                Err(_) => eprintln!("node not found: the patterns' matching is not checked"),
            }
        }
    }
}
