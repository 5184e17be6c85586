//! Starting a `Launch` in a fresh PTY: resolve the program first (so a missing binary is a
//! clear message, not a stack of errors), write the launch's files, set the environment, spawn
//! directly (no shell), and hand back the master side.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};

use crate::agents::Launch;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "`{program}` was not found on PATH; install it or set its command in the agent profile"
    )]
    NotFound { program: String },
    #[error("`{}` is not executable (check its permissions)", path.display())]
    NotExecutable { path: PathBuf },
    #[error("working directory {} does not exist", path.display())]
    NoWorkdir { path: PathBuf },
    #[error("empty command line")]
    EmptyCommand,
    #[error("cannot write {}: {source}", path.display())]
    LaunchFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{program}` in a PTY: {reason}")]
    Pty { program: String, reason: String },
}

/// The terminal type workers see; vt100 (the dashboard's PTY view) emulates xterm.
pub const WORKER_TERM: &str = "xterm-256color";

pub struct PtyProcess {
    pub pid: i32,
    pub master: Box<dyn MasterPty + Send>,
}

/// Finds the executable for `program`: a path is checked as given (relative to `cwd`), a bare
/// name is searched on `path_var`.
pub fn resolve_program(
    program: &str,
    cwd: &Path,
    path_var: Option<&OsString>,
) -> Result<PathBuf, SpawnError> {
    let candidate = Path::new(program);
    if program.contains('/') {
        let full = if candidate.is_absolute() {
            candidate.to_path_buf()
        } else {
            cwd.join(candidate)
        };
        return check_executable(&full, program);
    }
    let search = path_var
        .cloned()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let mut found_not_executable = None;
    for dir in std::env::split_paths(&search) {
        let full = dir.join(program);
        match check_executable(&full, program) {
            Ok(path) => return Ok(path),
            Err(e @ SpawnError::NotExecutable { .. }) => {
                found_not_executable = found_not_executable.or(Some(e))
            }
            Err(_) => {}
        }
    }
    Err(found_not_executable.unwrap_or(SpawnError::NotFound {
        program: program.to_string(),
    }))
}

fn check_executable(path: &Path, program: &str) -> Result<PathBuf, SpawnError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => {
            Ok(path.to_path_buf())
        }
        Ok(_) => Err(SpawnError::NotExecutable {
            path: path.to_path_buf(),
        }),
        Err(_) => Err(SpawnError::NotFound {
            program: program.to_string(),
        }),
    }
}

/// Spawns `launch` in a new PTY of `rows` x `cols`.
pub fn spawn_in_pty(launch: &Launch, rows: u16, cols: u16) -> Result<PtyProcess, SpawnError> {
    let program = launch.argv.first().ok_or(SpawnError::EmptyCommand)?;
    if !launch.cwd.is_dir() {
        return Err(SpawnError::NoWorkdir {
            path: launch.cwd.clone(),
        });
    }
    let path_var = launch.env_value("PATH").map(OsString::from);
    let executable = resolve_program(program, &launch.cwd, path_var.as_ref())?;
    for (path, contents) in &launch.files {
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(path, contents));
        written.map_err(|source| SpawnError::LaunchFile {
            path: path.clone(),
            source,
        })?;
    }
    let pty_error = |reason: String| SpawnError::Pty {
        program: program.clone(),
        reason,
    };
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: rows.max(1),
            cols: cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| pty_error(format!("{e:#}")))?;
    // Every worker speaks a JSON stream: keys typed into it (attach) must not be echoed
    // into that stream, where they would glue onto the next line.
    if let Some(fd) = pair.master.as_raw_fd() {
        echo_off(fd);
    }
    let mut cmd = CommandBuilder::new(&executable);
    cmd.args(&launch.argv[1..]);
    cmd.cwd(&launch.cwd);
    cmd.env("TERM", WORKER_TERM);
    // A worker is not inside the operator's tmux, whatever the coordinator inherited.
    cmd.env_remove("TMUX");
    cmd.env_remove("TMUX_PANE");
    for key in &launch.env_remove {
        cmd.env_remove(key);
    }
    for (key, value) in &launch.env {
        cmd.env(key, value);
    }
    let child = pair
        .slave
        .spawn_command(cmd)
        .map_err(|e| pty_error(format!("{e:#}")))?;
    // The parent's copy of the slave must close, or the reader never sees EOF.
    drop(pair.slave);
    let pid = child
        .process_id()
        .ok_or_else(|| pty_error("no process id".into()))? as i32;
    // We reap the child with waitpid ourselves (exact signal numbers); the std handle is
    // dropped without waiting, which neither kills nor reaps.
    drop(child);
    Ok(PtyProcess {
        pid,
        master: pair.master,
    })
}

/// Clears ECHO on the terminal of `fd` (the master of a PTY shares its slave's settings).
fn echo_off(fd: std::os::fd::RawFd) {
    // SAFETY: tcgetattr/tcsetattr on an open descriptor with a termios we own.
    unsafe {
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut tio) == 0 {
            tio.c_lflag &= !(libc::ECHO | libc::ECHONL);
            libc::tcsetattr(fd, libc::TCSANOW, &tio);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_on_path_and_explains_what_is_missing() {
        let cwd = std::env::current_dir().unwrap();
        assert!(resolve_program("sh", &cwd, None).is_ok());
        let err = resolve_program("no-such-agent-cli", &cwd, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`no-such-agent-cli` was not found on PATH; install it or set its command in the agent profile"
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("agent");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let err = resolve_program(script.to_str().unwrap(), &cwd, None).unwrap_err();
        assert!(matches!(err, SpawnError::NotExecutable { .. }), "{err}");
    }
}
