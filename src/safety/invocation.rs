//! From the shell's simple commands to the programs that actually run: wrappers are seen
//! through (`sudo`, `env VAR=x`, `command`, `nice`, `timeout 5`, `xargs`, `busybox`, ...),
//! `bash -c '...'`, `eval` and `env -S` scripts are read as the commands they hold, and
//! `find -exec` runs a command of its own. Pure.

use super::shell::{self, ShellError, SimpleCommand};

/// One program that will run, as the policy judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// The program's name without its directory (`/bin/rm` is `rm`).
    pub program: String,
    pub args: Vec<String>,
    /// The wrappers it runs under, outermost first (`sudo`, `env`, `xargs`...).
    pub via: Vec<String>,
    /// Files its redirections (or `tee`) write.
    pub writes: Vec<String>,
    pub pipeline: usize,
    pub stage: usize,
}

impl Invocation {
    /// The command as a person would read it, for reasons.
    pub fn display(&self) -> String {
        let mut words = self.via.clone();
        words.push(self.program.clone());
        words.extend(self.args.iter().cloned());
        words.join(" ")
    }
}

/// Every program a shell command line runs.
pub fn invocations(line: &str) -> Result<Vec<Invocation>, ShellError> {
    let mut out = Vec::new();
    let mut pipelines = 0;
    unwrap_line(line, 0, &mut pipelines, &mut out)?;
    Ok(out)
}

fn unwrap_line(
    line: &str,
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<Invocation>,
) -> Result<(), ShellError> {
    let mut commands = Vec::new();
    shell::parse_into(line, depth, pipelines, &mut commands)?;
    for command in commands {
        unwrap_command(command, depth, pipelines, out)?;
    }
    Ok(())
}

/// Shells whose `-c` text is a script of its own.
pub const SHELLS: [&str; 7] = ["sh", "bash", "zsh", "dash", "ksh", "ash", "fish"];

fn unwrap_command(
    command: SimpleCommand,
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<Invocation>,
) -> Result<(), ShellError> {
    let SimpleCommand {
        words,
        mut writes,
        pipeline,
        stage,
    } = command;
    let mut rest: &[String] = &words;
    // Leading assignments (`FOO=1 cmd`) set the environment of what follows.
    while rest.first().is_some_and(|w| is_assignment(w)) {
        rest = &rest[1..];
    }
    let mut via = Vec::new();
    loop {
        let Some(first) = rest.first() else {
            if !writes.is_empty() {
                // `> file` alone still writes the file.
                out.push(Invocation {
                    program: String::new(),
                    args: Vec::new(),
                    via,
                    writes,
                    pipeline,
                    stage,
                });
            }
            return Ok(());
        };
        let program = base_name(first);
        let args = &rest[1..];
        if let Some(skip) = wrapper_arguments(&program, args) {
            via.push(program.clone());
            if program == "env"
                && let Some(script) = env_split_string(args)
            {
                return unwrap_line(&script, depth + 1, pipelines, out);
            }
            if program == "flock"
                && let Some(at) = args.iter().position(|a| a == "-c" || a == "--command")
            {
                // `flock FILE -c 'cmd'` runs cmd through a shell.
                return unwrap_line(&args[at + 1..].join(" "), depth + 1, pipelines, out);
            }
            rest = &args[skip.min(args.len())..];
            while rest.first().is_some_and(|w| is_assignment(w)) {
                rest = &rest[1..];
            }
            continue;
        }
        if SHELLS.contains(&program.as_str())
            && let ShellInput::Script(script) = shell_input(args)
        {
            return unwrap_line(script, depth + 1, pipelines, out);
        }
        if program == "trap"
            && let Some(action) = args.first().filter(|a| !a.starts_with('-'))
        {
            // `trap 'cmd' EXIT` runs cmd later, in this shell.
            unwrap_line(action, depth + 1, pipelines, out)?;
        }
        if program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.') == "python"
            && args.first().is_some_and(|a| a == "-m")
            && args.len() > 1
        {
            // `python -m pip install` runs pip.
            via.push(program);
            rest = &args[1..];
            continue;
        }
        if program == "eval" {
            return unwrap_line(&args.join(" "), depth + 1, pipelines, out);
        }
        if program == "find" {
            find_exec(args, &via, depth, pipelines, out)?;
        }
        if program == "tee" {
            writes.extend(args.iter().filter(|a| !a.starts_with('-')).cloned());
        }
        out.push(Invocation {
            program,
            args: args.to_vec(),
            via,
            writes,
            pipeline,
            stage,
        });
        return Ok(());
    }
}

/// `/usr/bin/rm` is `rm`.
pub fn base_name(word: &str) -> String {
    word.rsplit('/').next().unwrap_or(word).to_string()
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// For a wrapper program: how many of `args` are its own (options and their values) before
/// the command it runs. `None` when `program` is not a wrapper.
fn wrapper_arguments(program: &str, args: &[String]) -> Option<usize> {
    // Options that take a value as the next word, per wrapper.
    let with_value: &[&str] = match program {
        "sudo" | "doas" => &[
            "-u",
            "-g",
            "-C",
            "-D",
            "-h",
            "-p",
            "-r",
            "-t",
            "-U",
            "-T",
            "-R",
            "--user",
            "--group",
            "--chroot",
            "--chdir",
            "--close-from",
            "--host",
            "--other-user",
            "--prompt",
            "--role",
            "--type",
            "--command-timeout",
        ],
        "env" => &["-u", "-C", "--unset", "--chdir"],
        "nice" => &["-n", "--adjustment"],
        "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
        "timeout" => &["-s", "-k", "--signal", "--kill-after"],
        "stdbuf" => &["-i", "-o", "-e"],
        "xargs" => &[
            "-I",
            "-L",
            "-n",
            "-P",
            "-d",
            "-E",
            "-s",
            "-a",
            "--max-args",
            "--max-procs",
            "--delimiter",
            "--arg-file",
            "--max-chars",
            "--max-lines",
            "--eof",
            "--process-slot-var",
        ],
        "watch" => &["-n", "-d", "--interval"],
        "flock" => &["-w", "-E", "--timeout", "--conflict-exit-code"],
        "exec" => &["-a"],
        "command" | "builtin" | "nohup" | "setsid" | "time" | "busybox" | "unbuffer" => &[],
        _ => return None,
    };
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            break;
        }
        if program == "command" && matches!(arg.as_str(), "-v" | "-V") {
            // `command -v rm` only says where rm is.
            return Some(args.len());
        }
        i += if takes_value(with_value, arg) { 2 } else { 1 };
    }
    // Positional arguments of the wrapper itself, before the command.
    match program {
        "timeout" => i += 1, // DURATION
        "flock" => i += 1,   // FILE
        _ => {}
    }
    Some(i)
}

/// Whether option word `arg` takes the next word as its value: a listed option, or a
/// cluster of short ones whose last letter is one (`sudo -nu root`); a value attached to
/// the cluster (`-uroot`) or to a long option (`--user=root`) does not.
fn takes_value(with_value: &[&str], arg: &str) -> bool {
    if with_value.contains(&arg) {
        return true;
    }
    if arg.starts_with("--") || arg.len() < 3 {
        return false;
    }
    for (at, c) in arg[1..].char_indices() {
        if with_value.contains(&format!("-{c}").as_str()) {
            return at + c.len_utf8() == arg.len() - 1;
        }
    }
    false
}

/// The `-S STRING` of `env` (also `-S'STRING'`, `-vS STRING`, `--split-string=STRING`),
/// which it splits into a command line.
fn env_split_string(args: &[String]) -> Option<String> {
    for (at, arg) in args.iter().enumerate() {
        if !arg.starts_with('-') || arg == "--" {
            return None;
        }
        let rest = &args[at + 1..];
        if let Some(attached) = arg.strip_prefix("--split-string=") {
            return Some(
                std::iter::once(attached)
                    .chain(rest.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        if arg == "--split-string" {
            return Some(rest.join(" "));
        }
        if !arg.starts_with("--")
            && let Some((_, attached)) = arg[1..].split_once('S')
        {
            return Some(
                std::iter::once(attached)
                    .chain(rest.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
                    .trim()
                    .to_string(),
            );
        }
    }
    None
}

/// Where a shell takes the commands it runs from.
#[derive(Debug, PartialEq, Eq)]
pub enum ShellInput<'a> {
    /// `bash -c SCRIPT` (also `-lc`, `-ec`, `-o pipefail -c`).
    Script(&'a str),
    /// `bash script.sh`: a file the policy cannot read.
    File,
    /// `bash`, `bash -s`, `bash -`: its standard input (a pipe, a here-document), which the
    /// policy cannot read either.
    Stdin,
}

pub fn shell_input(args: &[String]) -> ShellInput<'_> {
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "-" || arg == "--" {
            return match arg.as_str() {
                "--" if args.get(i + 1).is_some() => ShellInput::File,
                _ => ShellInput::Stdin,
            };
        }
        if !arg.starts_with('-') && !arg.starts_with('+') {
            return ShellInput::File;
        }
        if arg.starts_with("--") {
            // `--rcfile FILE` and `--init-file FILE` take a value.
            i += if matches!(arg.as_str(), "--rcfile" | "--init-file") {
                2
            } else {
                1
            };
            continue;
        }
        let cluster = &arg[1..];
        if arg.starts_with('-') && cluster.contains('c') {
            return match args.get(i + 1) {
                Some(script) => ShellInput::Script(script),
                None => ShellInput::Stdin,
            };
        }
        if arg.starts_with('-') && cluster.contains('s') {
            return ShellInput::Stdin;
        }
        // `-o OPTION` and `-O OPTION` (and their `+` forms) take a value.
        i += if cluster.ends_with(['o', 'O']) { 2 } else { 1 };
    }
    ShellInput::Stdin
}

/// `find ... -exec CMD ... ;` (and `-execdir`, `-ok`): each runs CMD.
fn find_exec(
    args: &[String],
    via: &[String],
    depth: usize,
    pipelines: &mut usize,
    out: &mut Vec<Invocation>,
) -> Result<(), ShellError> {
    let mut i = 0;
    while i < args.len() {
        if matches!(args[i].as_str(), "-exec" | "-execdir" | "-ok" | "-okdir") {
            let end = (i + 1..args.len())
                .find(|&j| args[j] == ";" || args[j] == "+")
                .unwrap_or(args.len());
            let words = args[i + 1..end].to_vec();
            if !words.is_empty() {
                let mut nested = Vec::new();
                unwrap_command(
                    SimpleCommand {
                        words,
                        ..SimpleCommand::default()
                    },
                    depth + 1,
                    pipelines,
                    &mut nested,
                )?;
                for mut n in nested {
                    n.via
                        .splice(0..0, via.iter().cloned().chain(["find".to_string()]));
                    out.push(n);
                }
            }
            i = end;
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(line: &str) -> Vec<String> {
        invocations(line)
            .unwrap()
            .into_iter()
            .map(|i| {
                format!("{} {}", i.program, i.args.join(" "))
                    .trim()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn a_shell_reads_a_script_a_file_or_its_input() {
        let args = |line: &str| {
            line.split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(shell_input(&args("-lc x")), ShellInput::Script("x"));
        assert_eq!(shell_input(&args("-x run.sh")), ShellInput::File);
        assert_eq!(shell_input(&args("")), ShellInput::Stdin);
        assert_eq!(shell_input(&args("-s arg")), ShellInput::Stdin);
        assert_eq!(shell_input(&args("-o pipefail -")), ShellInput::Stdin);
        assert_eq!(shell_input(&args("--norc")), ShellInput::Stdin);
    }

    #[test]
    fn wrappers_and_shells_are_seen_through() {
        assert_eq!(programs("sudo -u root /bin/rm -rf /"), ["rm -rf /"]);
        assert_eq!(programs("env -i FOO=1 rm -rf x"), ["rm -rf x"]);
        assert_eq!(programs("bash -lc 'cd /; rm -rf x'"), ["cd /", "rm -rf x"]);
        assert_eq!(programs("timeout -s KILL 5 nice -n 3 dd if=a"), ["dd if=a"]);
        assert_eq!(programs("ls | xargs -0 rm -rf"), ["ls", "rm -rf"]);
        assert_eq!(
            programs("find . -name x -exec rm -rf {} \\;"),
            ["rm -rf {}", "find . -name x -exec rm -rf {} ;"]
        );
        assert_eq!(programs("command -v rm"), Vec::<String>::new());
        assert_eq!(programs("eval 'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("env -S 'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("env -S'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("env --split-string='rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("env -vS 'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("flock /tmp/l -c 'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(
            programs("trap 'rm -rf x' EXIT"),
            ["rm -rf x", "trap rm -rf x EXIT"]
        );
        assert_eq!(programs("sudo -nu root rm -rf x"), ["rm -rf x"]);
        assert_eq!(programs("sudo -uroot rm -rf x"), ["rm -rf x"]);
        assert_eq!(programs("xargs -0I {} rm -rf {}"), ["rm -rf {}"]);
        assert_eq!(programs("bash -O extglob -c 'rm -rf x'"), ["rm -rf x"]);
        assert_eq!(programs("bash --rcfile r -c 'rm -rf x'"), ["rm -rf x"]);
        let sudo = &invocations("sudo rm x").unwrap()[0];
        assert_eq!(sudo.via, ["sudo"]);
    }
}
