//! The sandbox policy (seeds 003 and 004): which commands are blocked, which wait for the
//! operator, which are watched, and where files may be written. `SandboxPolicy::evaluate`
//! turns one tool call into a verdict; it is pure but for reading symbolic links.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::invocation::{Invocation, SHELLS, ShellInput, invocations, shell_input};
use super::paths::{inside_any, is_harmless_device, resolve};
use super::shell::SUBSTITUTED;

/// `[sandbox]` in orchestrate.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// `policy`: everything runs but what `blocked` and `confirm` name; `allowlist` (seed
    /// 004): only the programs in `allow` run.
    pub mode: SandboxMode,
    /// Directories writable besides the workspace, the target and the task's run directory.
    pub extra_dirs: Vec<PathBuf>,
    /// Commands that never run: a program (`dd`, `mkfs*`), optionally with flags that must
    /// all be present in any order or spelling (`rm -rf`) or a subcommand (`git push`).
    pub blocked: Vec<String>,
    /// Commands that wait for the operator's approval (same syntax).
    pub confirm: Vec<String>,
    /// Commands journaled as findings: a program (`sudo`) or a pipe (`curl | sh`).
    pub watch: Vec<String>,
    /// Watched commands are refused instead of only journaled.
    pub watch_blocks: bool,
    /// Programs allowed in `allowlist` mode (added to the defaults).
    pub allow: Vec<String>,
    /// Per worker: share of one CPU, memory, run time; per command: its time limit.
    pub cpu_percent: u32,
    pub memory_mb: u64,
    pub runtime_secs: u64,
    pub command_timeout_secs: u64,
    /// An approval nobody answers is a deny after this long.
    pub approval_timeout_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    Policy,
    Allowlist,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        SandboxConfig {
            mode: SandboxMode::Policy,
            extra_dirs: Vec::new(),
            blocked: list(&["rm -rf", "dd", "mkfs*", "fdisk"]),
            confirm: list(&["git push", "npm publish", "pip install"]),
            watch: list(&["sudo", "curl | sh", "wget | sh"]),
            watch_blocks: false,
            allow: Vec::new(),
            cpu_percent: 50,
            memory_mb: 2048,
            runtime_secs: 3600,
            command_timeout_secs: 600,
            approval_timeout_secs: 600,
        }
    }
}

/// Programs `allowlist` mode lets run without being listed: seed 004's tools, plus the
/// read-only and file basics every agent uses.
pub const DEFAULT_ALLOW: [&str; 47] = [
    "git", "npm", "npx", "pnpm", "yarn", "node", "pytest", "python", "cargo", "rustc", "rustfmt",
    "go", "make", "ls", "cat", "head", "tail", "grep", "rg", "find", "sed", "awk", "wc", "sort",
    "uniq", "cut", "tr", "diff", "echo", "printf", "pwd", "cd", "mkdir", "touch", "cp", "mv",
    "test", "[", "true", "false", "which", "basename", "dirname", "realpath", "tee", "stat",
    "file",
];

/// What may happen to one tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Confirm,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub verdict: Decision,
    /// Why, naming the rule and the part of the command it matched; empty for a plain allow.
    pub reason: String,
    /// Watched patterns seen (journaled as findings even when allowed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<String>,
}

impl Verdict {
    fn allow() -> Self {
        Verdict {
            verdict: Decision::Allow,
            reason: String::new(),
            findings: Vec::new(),
        }
    }
}

/// A tool an agent is about to use, as the policy needs to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    /// A shell command line (Claude `Bash`, Codex `exec_command`, Gemini `run_shell_command`).
    Shell { command: String, cwd: PathBuf },
    /// A file written or edited (Claude `Write`/`Edit`/`MultiEdit`/`NotebookEdit`, Gemini
    /// `write_file`/`replace`).
    Write { path: PathBuf, cwd: PathBuf },
    /// A Codex `apply_patch` body: every file it adds, updates, deletes or moves to.
    Patch { patch: String, cwd: PathBuf },
    /// Anything else (reads, searches): not the sandbox's business.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("[sandbox] {list}: {rule:?} {why}")]
pub struct RuleError {
    list: &'static str,
    rule: String,
    why: &'static str,
}

/// A rule of `blocked` / `confirm`: a program pattern, the flags that must all be present,
/// and the subcommand words that must follow.
#[derive(Debug, Clone, PartialEq)]
struct CommandRule {
    text: String,
    program: String,
    flags: Vec<Flag>,
    words: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Flag {
    Short(char),
    Long(String),
}

/// A rule of `watch`: one program, or `left | right` in one pipeline.
#[derive(Debug, Clone, PartialEq)]
enum WatchRule {
    Program(String),
    Pipe(String, String),
}

#[derive(Debug, Clone)]
pub struct SandboxPolicy {
    mode: SandboxMode,
    blocked: Vec<CommandRule>,
    confirm: Vec<CommandRule>,
    watch: Vec<(String, WatchRule)>,
    watch_blocks: bool,
    allow: Vec<String>,
    /// Resolved (links followed).
    dirs: Vec<PathBuf>,
}

impl SandboxPolicy {
    /// The policy of `config` with `dirs` writable (the workspace, the target, the run
    /// directory; `extra_dirs` are added). A rule that cannot mean anything is an error.
    pub fn new(config: &SandboxConfig, dirs: &[PathBuf]) -> Result<SandboxPolicy, RuleError> {
        let rules = |list: &'static str, texts: &[String]| -> Result<Vec<CommandRule>, RuleError> {
            texts.iter().map(|t| parse_rule(list, t)).collect()
        };
        let watch = config
            .watch
            .iter()
            .map(|t| parse_watch(t).map(|w| (t.clone(), w)))
            .collect::<Result<_, _>>()?;
        let root = Path::new("/");
        Ok(SandboxPolicy {
            mode: config.mode,
            blocked: rules("blocked", &config.blocked)?,
            confirm: rules("confirm", &config.confirm)?,
            watch,
            watch_blocks: config.watch_blocks,
            allow: DEFAULT_ALLOW
                .iter()
                .map(|s| s.to_string())
                .chain(config.allow.iter().cloned())
                .collect(),
            dirs: dirs
                .iter()
                .chain(&config.extra_dirs)
                .map(|d| resolve(d, root))
                .collect(),
        })
    }

    pub fn evaluate(&self, call: &ToolCall) -> Verdict {
        match call {
            ToolCall::Shell { command, cwd } => self.evaluate_shell(command, cwd),
            ToolCall::Write { path, cwd } => self.check_writes([path.as_path()], cwd),
            ToolCall::Patch { patch, cwd } => {
                let paths = patch_paths(patch);
                self.check_writes(paths.iter().map(Path::new), cwd)
            }
            ToolCall::Other => Verdict::allow(),
        }
    }

    fn evaluate_shell(&self, command: &str, cwd: &Path) -> Verdict {
        let runs = match invocations(command) {
            Ok(runs) => runs,
            Err(e) => {
                return Verdict {
                    verdict: Decision::Deny,
                    reason: format!("the command cannot be read for sure ({e}); write it plainly"),
                    findings: Vec::new(),
                };
            }
        };
        let findings = self.findings(&runs);
        let mut confirm: Option<String> = None;
        // `apply_patch <<'EOF' ... EOF` writes the files its envelope names.
        if command.contains("*** Begin Patch") {
            let patched = patch_paths(command);
            let written = self.check_writes(patched.iter().map(Path::new), cwd);
            match written.verdict {
                Decision::Deny => {
                    return Verdict {
                        findings,
                        ..written
                    };
                }
                Decision::Confirm => confirm = Some(written.reason),
                Decision::Allow => {}
            }
        }
        // Where relative paths land: `cd` moves it for the commands after it.
        let mut cwd = Some(cwd.to_path_buf());
        for run in &runs {
            if let Some(rule) = self.blocked.iter().find(|r| r.matches(run)) {
                return deny(
                    format!("`{}` is blocked (in `{}`)", rule.text, run.display()),
                    findings,
                );
            }
            let mut writes: Vec<&str> = run.writes.iter().map(String::as_str).collect();
            writes.extend(operand_writes(run));
            let written = match &cwd {
                Some(cwd) => self.check_writes(writes.iter().map(Path::new), cwd),
                None => match writes.iter().find(|w| !w.starts_with('/')) {
                    Some(w) => Verdict {
                        verdict: Decision::Confirm,
                        reason: format!(
                            "writes to {w} in a directory only known when it runs (after `cd`)"
                        ),
                        findings: Vec::new(),
                    },
                    None => self.check_writes(writes.iter().map(Path::new), Path::new("/")),
                },
            };
            match written.verdict {
                Decision::Deny => {
                    return Verdict {
                        findings,
                        ..written
                    };
                }
                Decision::Confirm => {
                    confirm.get_or_insert(written.reason);
                }
                Decision::Allow => {}
            }
            if matches!(run.program.as_str(), "cd" | "pushd" | "popd") {
                cwd = changed_directory(run, cwd.as_deref());
            }
            if run.program.is_empty() {
                continue;
            }
            if let Some(why) = self.unseen_script(run) {
                if self.mode == SandboxMode::Allowlist {
                    return deny(why, findings);
                }
                confirm.get_or_insert(why);
                continue;
            }
            if let Some(why) = self.may_expand_into_a_rule(run) {
                confirm.get_or_insert(why);
            }
            if is_unknown_name(&run.program) {
                let why = format!(
                    "`{}` runs a program whose name is only known when it runs",
                    run.display()
                );
                if self.mode == SandboxMode::Allowlist {
                    return deny(why, findings);
                }
                confirm.get_or_insert(why);
                continue;
            }
            if self.mode == SandboxMode::Allowlist && !self.allowed(run) {
                return deny(
                    format!(
                        "`{}` is not in the allow-list (mode = \"allowlist\"); add it to [sandbox] allow",
                        run.program
                    ),
                    findings,
                );
            }
            if let Some(rule) = self.confirm.iter().find(|r| r.matches(run)) {
                confirm.get_or_insert(format!(
                    "`{}` needs the operator's approval (in `{}`)",
                    rule.text,
                    run.display()
                ));
            }
        }
        if self.watch_blocks && !findings.is_empty() {
            return deny(
                format!("watched: {} (watch_blocks = true)", findings.join("; ")),
                findings,
            );
        }
        match confirm {
            Some(reason) => Verdict {
                verdict: Decision::Confirm,
                reason,
                findings,
            },
            None => Verdict {
                findings,
                ..Verdict::allow()
            },
        }
    }

    /// Each path written must land inside the allowed directories.
    fn check_writes<'a>(&self, paths: impl IntoIterator<Item = &'a Path>, cwd: &Path) -> Verdict {
        for path in paths {
            let text = path.to_string_lossy();
            if text.contains('$') {
                return Verdict {
                    verdict: Decision::Confirm,
                    reason: format!("writes to {text}, a path only known when it runs"),
                    findings: Vec::new(),
                };
            }
            // `~` is the home directory of whoever runs it: ours, as the worker's is.
            let home;
            let path = match text.strip_prefix('~') {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                    home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                        .join(rest.trim_start_matches('/'));
                    home.as_path()
                }
                Some(_) => {
                    return deny(
                        format!("writing {text} is outside the allowed directories"),
                        Vec::new(),
                    );
                }
                None => path,
            };
            let resolved = resolve(path, cwd);
            if !is_harmless_device(&resolved) && !inside_any(&resolved, &self.dirs) {
                return deny(
                    format!(
                        "writing {} is outside the allowed directories ({})",
                        resolved.display(),
                        self.dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Vec::new(),
                );
            }
        }
        Verdict::allow()
    }

    fn allowed(&self, run: &Invocation) -> bool {
        let family = program_family(&run.program);
        self.allow
            .iter()
            .any(|a| glob_match(a, &run.program) || glob_match(a, family))
    }

    /// Commands that run code the policy cannot read: a shell fed its script on standard
    /// input (`curl | sh`, `bash <<EOF`), and git told to run a command of its choosing
    /// through `-c` (an alias, a pager, an editor, a hook directory...).
    fn unseen_script(&self, run: &Invocation) -> Option<String> {
        if SHELLS.contains(&run.program.as_str()) && shell_input(&run.args) == ShellInput::Stdin {
            return Some(format!(
                "`{}` runs a script from its input, which the sandbox cannot read",
                run.display()
            ));
        }
        if run.program == "git" {
            let mut args = run.args.iter();
            while let Some(arg) = args.next() {
                let setting = match arg.as_str() {
                    "-c" | "--config-env" => args.next().map(String::as_str),
                    other => other.strip_prefix("--config-env="),
                };
                let key = setting
                    .map(|s| s.split('=').next().unwrap_or(s).to_ascii_lowercase())
                    .unwrap_or_default();
                const RUNS_A_COMMAND: [&str; 8] = [
                    "core.pager",
                    "core.editor",
                    "core.sshcommand",
                    "core.hookspath",
                    "core.fsmonitor",
                    "diff.external",
                    "credential.helper",
                    "core.gitproxy",
                ];
                if key.starts_with("alias.")
                    || key.ends_with(".pager")
                    || key.ends_with(".textconv")
                    || key.ends_with(".command")
                    || key.ends_with(".driver")
                    || key.ends_with(".cmd")
                    || RUNS_A_COMMAND.contains(&key.as_str())
                {
                    return Some(format!(
                        "`git -c {key}` runs a command the sandbox cannot read (in `{}`)",
                        run.display()
                    ));
                }
            }
        }
        None
    }

    /// A command a rule names whose arguments are only known when it runs (`rm $FLAGS x`,
    /// `git $(echo push)`): once expanded, it may be what the rule blocks or confirms.
    fn may_expand_into_a_rule(&self, run: &Invocation) -> Option<String> {
        let unknown = |a: &String| a.starts_with(['$', '{']) || a.contains(SUBSTITUTED);
        if !run.args.iter().any(unknown) {
            return None;
        }
        let rule = self.blocked.iter().chain(&self.confirm).find(|r| {
            (!r.flags.is_empty() || !r.words.is_empty())
                && program_matches(&r.program, &run.program)
        })?;
        Some(format!(
            "`{}` may be `{}` once its arguments expand",
            run.display(),
            rule.text
        ))
    }

    /// The watched patterns among `runs`, described.
    fn findings(&self, runs: &[Invocation]) -> Vec<String> {
        let mut found = Vec::new();
        for (text, rule) in &self.watch {
            let hit = match rule {
                WatchRule::Program(p) => runs
                    .iter()
                    .find(|r| {
                        program_matches(p, &r.program)
                            || r.via.iter().any(|v| program_matches(p, v))
                    })
                    .map(Invocation::display),
                WatchRule::Pipe(left, right) => runs.iter().find_map(|r| {
                    let l = runs.iter().find(|l| {
                        l.pipeline == r.pipeline
                            && l.stage < r.stage
                            && program_matches(left, &l.program)
                    })?;
                    program_matches(right, &r.program)
                        .then(|| format!("{} | {}", l.display(), r.display()))
                }),
            };
            if let Some(shown) = hit {
                found.push(format!("`{text}` (in `{shown}`)"));
            }
        }
        found
    }
}

/// A program name only known when it runs: a variable, a substitution, a glob or a brace
/// expansion (`/bin/r? -rf x`, `{rm,-rf,x}`). `[` and `[[` are tests, not globs.
fn is_unknown_name(program: &str) -> bool {
    program.contains('$')
        || program.contains(SUBSTITUTED)
        || (!matches!(program, "[" | "[[") && program.contains(['*', '?', '[', '{']))
}

/// The working directory after `run` (a `cd`, `pushd` or `popd`), `None` when it is only
/// known when it runs.
fn changed_directory(run: &Invocation, cwd: Option<&Path>) -> Option<PathBuf> {
    // `-P` and `-L` are options; `cd -` goes back to a directory only the shell knows.
    let operands: Vec<&String> = run
        .args
        .iter()
        .filter(|a| !a.starts_with('-') || *a == "-")
        .collect();
    let target = match (run.program.as_str(), operands.as_slice()) {
        ("popd", _) => return None,
        (_, [dir]) if *dir == "-" => return None,
        (_, []) => PathBuf::from(std::env::var("HOME").ok()?),
        (_, [dir]) if !dir.contains(['$', '~', '*', '?', '[', '{']) => PathBuf::from(dir),
        _ => return None,
    };
    Some(resolve(&target, cwd?))
}

/// The files a shell command writes, each with the directory it is relative to, as far as
/// it can be read: an `apply_patch` envelope's files, redirections and `tee`, and what `cp`,
/// `mv`, `install`, `ln`, `touch` and `truncate` write. For path leases (the sandbox's own
/// verdict is `evaluate`): what cannot be named before it runs (`$VAR`, `~`, a path after a
/// `cd` into the unknown), directories and the terminal devices are left out.
pub fn shell_writes(command: &str, cwd: &Path) -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    if command.contains("*** Begin Patch") {
        found.extend(
            patch_paths(command)
                .into_iter()
                .map(|p| (p, cwd.to_path_buf())),
        );
    }
    let Ok(runs) = invocations(command) else {
        return found;
    };
    let mut dir = Some(cwd.to_path_buf());
    for run in &runs {
        let mut writes: Vec<&str> = run.writes.iter().map(String::as_str).collect();
        if matches!(
            run.program.as_str(),
            "cp" | "mv" | "install" | "ln" | "touch" | "truncate"
        ) {
            writes.extend(operand_writes(run));
        }
        for write in writes {
            let here = match &dir {
                Some(dir) => dir.clone(),
                None if write.starts_with('/') => PathBuf::from("/"),
                None => continue,
            };
            found.push((write.to_string(), here));
        }
        if matches!(run.program.as_str(), "cd" | "pushd" | "popd") {
            dir = changed_directory(run, dir.as_deref());
        }
    }
    found.retain(|(path, dir)| {
        let lands = resolve(Path::new(path), dir);
        !path.contains(['$', '~']) && !is_harmless_device(&lands) && !lands.is_dir()
    });
    found
}

/// The files a file-changing program's operands name: `rm`, `touch`, `mkdir`, `truncate`,
/// `chmod`... change all of theirs, `mv` its sources and its destination, `cp`, `ln` and
/// `install` their destination (the last operand, or `-t DIR`).
fn operand_writes(run: &Invocation) -> Vec<&str> {
    let with_value: &[&str] = match run.program.as_str() {
        "touch" => &["-d", "-r", "-t", "--date", "--reference"],
        "mkdir" => &["-m", "--mode", "--context"],
        "truncate" => &["-s", "-r", "--size", "--reference"],
        "cp" | "mv" | "ln" | "install" => &[
            "-t",
            "-S",
            "-m",
            "-o",
            "-g",
            "--target-directory",
            "--suffix",
            "--mode",
            "--owner",
            "--group",
        ],
        "rm" | "rmdir" | "unlink" | "shred" | "chmod" | "chown" | "chgrp" => &["--reference"],
        _ => return Vec::new(),
    };
    let mut operands = Vec::new();
    let mut target = None;
    let mut args = run.args.iter();
    let mut options_ended = false;
    while let Some(arg) = args.next() {
        if options_ended || !arg.starts_with('-') || arg == "-" {
            operands.push(arg.as_str());
        } else if arg == "--" {
            options_ended = true;
        } else if matches!(arg.as_str(), "-t" | "--target-directory") {
            target = args.next().map(String::as_str);
        } else if let Some(dir) = arg.strip_prefix("--target-directory=") {
            target = Some(dir);
        } else if with_value.contains(&arg.as_str()) {
            args.next();
        }
    }
    match run.program.as_str() {
        // The mode or owner comes first.
        "chmod" | "chown" | "chgrp" => operands.into_iter().skip(1).collect(),
        "cp" | "ln" | "install" => target.or(operands.last().copied()).into_iter().collect(),
        "mv" => operands.into_iter().chain(target).collect(),
        _ => operands,
    }
}

fn deny(reason: String, findings: Vec<String>) -> Verdict {
    Verdict {
        verdict: Decision::Deny,
        reason,
        findings,
    }
}

fn parse_rule(list: &'static str, text: &str) -> Result<CommandRule, RuleError> {
    let error = |why| RuleError {
        list,
        rule: text.to_string(),
        why,
    };
    let mut parts = text.split_whitespace();
    let program = parts.next().ok_or_else(|| error("is empty"))?.to_string();
    if program.starts_with('-') {
        return Err(error("must start with a program"));
    }
    let (mut flags, mut words) = (Vec::new(), Vec::new());
    for part in parts {
        if let Some(long) = part.strip_prefix("--") {
            flags.push(Flag::Long(long.to_string()));
        } else if let Some(short) = part.strip_prefix('-') {
            if short.is_empty() {
                return Err(error("has a lone '-'"));
            }
            flags.extend(short.chars().map(Flag::Short));
        } else {
            words.push(part.to_string());
        }
    }
    Ok(CommandRule {
        text: text.to_string(),
        program,
        flags,
        words,
    })
}

fn parse_watch(text: &str) -> Result<WatchRule, RuleError> {
    let error = |why| RuleError {
        list: "watch",
        rule: text.to_string(),
        why,
    };
    match text.split_once('|') {
        Some((left, right)) => {
            let first = |s: &str| s.split_whitespace().next().map(str::to_string);
            match (first(left), first(right)) {
                (Some(l), Some(r)) => Ok(WatchRule::Pipe(l, r)),
                _ => Err(error("needs a program on each side of '|'")),
            }
        }
        None => text
            .split_whitespace()
            .next()
            .map(|p| WatchRule::Program(p.to_string()))
            .ok_or_else(|| error("is empty")),
    }
}

impl CommandRule {
    /// `rm -rf` (in any spelling of the rule).
    fn is_recursive_removal(&self) -> bool {
        self.program == "rm"
            && self.words.is_empty()
            && self.flags.iter().any(|f| {
                matches!(f, Flag::Short('r' | 'R')) || *f == Flag::Long("recursive".into())
            })
    }

    fn matches(&self, run: &Invocation) -> bool {
        if self.is_recursive_removal()
            && run.program == "find"
            && run.args.iter().any(|a| a == "-delete")
        {
            // `find -delete` removes a tree as `rm -rf` does.
            return true;
        }
        if !program_matches(&self.program, &run.program) {
            return false;
        }
        let (flags, positionals) = split_arguments(&run.program, &run.args);
        let has = |flag: &Flag| match flag {
            Flag::Short(c) => flags.contains(&Flag::Short(canonical_short(&run.program, *c))),
            Flag::Long(l) => {
                let short = long_as_short(&run.program, l);
                flags.iter().any(|f| match (f, &short) {
                    (Flag::Long(x), _) if x == l => true,
                    (Flag::Short(x), Some(s)) => x == s,
                    _ => false,
                })
            }
        };
        if !self.flags.iter().all(has) {
            return false;
        }
        self.words
            .iter()
            .zip(positionals.iter())
            .all(|(want, got)| want == got)
            && positionals.len() >= self.words.len()
    }
}

/// The flags of a command (short ones one by one, in their canonical spelling) and its
/// positional words, options' values aside where the program is known.
fn split_arguments(program: &str, args: &[String]) -> (Vec<Flag>, Vec<String>) {
    let with_value: &[&str] = match program {
        "git" => &[
            "-C",
            "-c",
            "--git-dir",
            "--work-tree",
            "--namespace",
            "--exec-path",
            "--config-env",
        ],
        "npm" | "pnpm" | "yarn" => &[
            "--prefix",
            "-w",
            "--workspace",
            "--registry",
            "--userconfig",
        ],
        "pip" => &["--proxy", "--cache-dir", "--log", "--timeout", "--retries"],
        _ => &[],
    };
    let (mut flags, mut positionals) = (Vec::new(), Vec::new());
    let mut i = 0;
    let mut options_ended = false;
    while let Some(arg) = args.get(i) {
        i += 1;
        if options_ended || arg == "-" || !arg.starts_with('-') {
            positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_ended = true;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or(long);
            flags.push(match long_as_short(program, name) {
                Some(c) => Flag::Short(c),
                None => Flag::Long(name.to_string()),
            });
            if with_value.contains(&format!("--{name}").as_str()) && !long.contains('=') {
                i += 1;
            }
            continue;
        }
        if with_value.contains(&arg.as_str()) {
            i += 1;
            continue;
        }
        for c in arg[1..].chars() {
            flags.push(Flag::Short(canonical_short(program, c)));
        }
    }
    (flags, positionals)
}

/// `rm -R` is `rm -r`.
fn canonical_short(program: &str, c: char) -> char {
    match (program, c) {
        ("rm" | "cp" | "chmod" | "chown", 'R') => 'r',
        _ => c,
    }
}

/// Long options with a short twin, per program.
fn long_as_short(program: &str, long: &str) -> Option<char> {
    // GNU rm takes any unambiguous prefix: `--rec`, `--f`.
    if program == "rm" && !long.is_empty() {
        if "recursive".starts_with(long) {
            return Some('r');
        }
        if "force".starts_with(long) {
            return Some('f');
        }
    }
    match (program, long) {
        ("rm", "recursive") | ("cp", "recursive") => Some('r'),
        ("rm", "force") | ("git", "force") | ("cp", "force") => Some('f'),
        _ => None,
    }
}

/// `python3.12` belongs to `python`, `pip3` to `pip`.
fn program_family(program: &str) -> &str {
    let trimmed = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if trimmed.is_empty() { program } else { trimmed }
}

/// A rule's program against a command's: `*` at the end matches any rest (`mkfs*`), a
/// version suffix does not matter (`pip3` is `pip`), and `sh` in a rule means any shell.
fn program_matches(pattern: &str, program: &str) -> bool {
    if program.is_empty() {
        return false;
    }
    if pattern == "sh" && SHELLS.contains(&program) {
        return true;
    }
    glob_match(pattern, program) || glob_match(pattern, program_family(program))
}

fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => text.starts_with(prefix),
        None => pattern == text,
    }
}

/// The files a Codex `apply_patch` body touches.
pub fn patch_paths(patch: &str) -> Vec<String> {
    const MARKERS: [&str; 4] = [
        "*** Add File: ",
        "*** Update File: ",
        "*** Delete File: ",
        "*** Move to: ",
    ];
    patch
        .lines()
        .filter_map(|line| {
            MARKERS
                .iter()
                .find_map(|m| line.trim_start().strip_prefix(m))
                .map(|p| p.trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_rule_is_one_clear_error() {
        let config = SandboxConfig {
            blocked: vec!["-rf".into()],
            ..SandboxConfig::default()
        };
        let err = SandboxPolicy::new(&config, &[]).unwrap_err().to_string();
        assert_eq!(err, "[sandbox] blocked: \"-rf\" must start with a program");
        let config = SandboxConfig {
            watch: vec!["curl |".into()],
            ..SandboxConfig::default()
        };
        assert!(SandboxPolicy::new(&config, &[]).is_err());
    }

    #[test]
    fn patch_bodies_name_their_files() {
        let patch = "*** Begin Patch\n*** Add File: a.txt\n+x\n*** Update File: src/b.rs\n*** Move to: /etc/c\n*** Delete File: d\n*** End Patch\n";
        assert_eq!(patch_paths(patch), ["a.txt", "src/b.rs", "/etc/c", "d"]);
    }
}
