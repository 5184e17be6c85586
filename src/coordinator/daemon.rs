//! Starting the coordinator detached: `orchestrate coordinator <session>` re-executed in a new
//! process session (setsid), so closing the terminal, the dashboard or the SSH link sends it
//! nothing. Its output goes to `coordinator.log`. Returns once it holds the session's lock,
//! or with the reason it died.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::lock;
use crate::session::{SessionDir, Workspace};

/// How long a new coordinator may take to take its lock.
const STARTUP_LIMIT: Duration = Duration::from_secs(15);

/// Starts the coordinator of `session` (resuming it, and running the `retry` tasks anew).
pub fn spawn_detached(
    workspace: &Workspace,
    session: &SessionDir,
    resume: bool,
    retry: &[String],
) -> Result<u32> {
    let exe = std::env::current_exe().context("cannot find the orchestrate executable")?;
    let root =
        std::fs::canonicalize(workspace.root()).unwrap_or_else(|_| workspace.root().to_path_buf());
    let log_path = session.log_path();
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--workspace")
        .arg(&root)
        .arg("coordinator")
        .arg(&session.id);
    if resume {
        cmd.arg("--resume");
    }
    for task in retry {
        cmd.arg("--retry").arg(task);
    }
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("cannot start the coordinator")?;
    let pid = child.id();
    let deadline = Instant::now() + STARTUP_LIMIT;
    loop {
        // Ours must hold the lock: another coordinator holding it (a racing `resume`) means
        // ours is about to give up, and this start did not happen.
        let holder = lock::holder(&session.lock_path());
        if holder == Some(i64::from(pid)) {
            // Reap it whenever it ends, so it never lingers as a zombie of ours.
            std::thread::spawn(move || child.wait());
            return Ok(pid);
        }
        if let Some(status) = child.try_wait()? {
            if let Some(other) = lock::holder(&session.lock_path()) {
                bail!(
                    "another coordinator (pid {other}) is already running session {}",
                    session.id
                );
            }
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = log
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output");
            bail!("the coordinator exited at once ({status}): {last}");
        }
        if Instant::now() > deadline {
            bail!(
                "the coordinator did not start within {}s; see {}",
                STARTUP_LIMIT.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
