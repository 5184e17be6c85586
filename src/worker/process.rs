//! Process-group control for a worker: signals to the whole group, exit status from
//! `waitpid`, and a look at `/proc` to see which processes a group still has.
//!
//! A PTY child is a session and group leader (portable-pty calls `setsid`), so its pid is the
//! group id and `kill(-pgid, sig)` reaches every descendant that did not leave the group.

use std::io;
use std::time::{Duration, Instant};

use super::state::ExitFacts;

/// Sends `signal` to every process in the group.
pub fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    if pgid <= 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to signal group <= 1",
        ));
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid addresses the group.
    if unsafe { libc::kill(-pgid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// True while a live process is left in the group. Zombies do not count: an orphan's zombie
/// waits for init to reap it, and some container inits never do.
pub fn group_alive(pgid: i32) -> bool {
    let signalable = match signal_group(pgid, 0) {
        Ok(()) => true,
        // EPERM: something is there that we may not signal; it is still alive.
        Err(e) => e.raw_os_error() == Some(libc::EPERM),
    };
    signalable
        && (!std::path::Path::new("/proc/self/stat").exists()
            || group_members(pgid).iter().any(|p| p.state != 'Z'))
}

/// SIGTERM to the group, a grace period, then SIGKILL to whatever is left. A stopped (paused)
/// group is continued so it can act on the TERM. Returns true if KILL was needed.
pub fn terminate_group(pgid: i32, grace: Duration) -> bool {
    let _ = signal_group(pgid, libc::SIGTERM);
    let _ = signal_group(pgid, libc::SIGCONT);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if !group_alive(pgid) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if group_alive(pgid) {
        let _ = signal_group(pgid, libc::SIGKILL);
        return true;
    }
    false
}

/// Blocks until `pid` (our child) exits and reaps it.
pub fn wait_exit(pid: i32) -> io::Result<ExitFacts> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: status is a valid out-pointer; pid is our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(decode_wait_status(status))
}

fn decode_wait_status(status: libc::c_int) -> ExitFacts {
    if libc::WIFEXITED(status) {
        ExitFacts {
            code: Some(i64::from(libc::WEXITSTATUS(status))),
            signal: None,
        }
    } else if libc::WIFSIGNALED(status) {
        ExitFacts {
            code: None,
            signal: Some(i64::from(libc::WTERMSIG(status))),
        }
    } else {
        ExitFacts {
            code: None,
            signal: None,
        }
    }
}

/// A process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub parent: i32,
    pub group: i32,
    /// `R` running, `S` sleeping, `T` stopped, `Z` zombie, ...
    pub state: char,
    pub name: String,
}

/// Every live process whose process group is `pgid` (Linux `/proc`).
pub fn group_members(pgid: i32) -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .filter(|p| p.group == pgid)
        .collect()
}

pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may itself contain spaces or parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.chars().next()?;
    let parent = rest.next()?.parse().ok()?;
    let group = rest.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        parent,
        group,
        state,
        name,
    })
}

/// A human name for a signal number (for messages; the number is what gets journaled).
pub fn signal_name(signal: i64) -> &'static str {
    match signal as i32 {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_exit_codes_and_signals() {
        // Encodings per Linux wait(2): code in bits 8..15, signal in the low 7 bits.
        assert_eq!(
            decode_wait_status(3 << 8),
            ExitFacts {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(
            decode_wait_status(libc::SIGKILL),
            ExitFacts {
                code: None,
                signal: Some(9)
            }
        );
    }

    #[test]
    fn reads_our_own_proc_entry() {
        let me = proc_info(std::process::id() as i32).unwrap();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(matches!(me.state, 'R' | 'S'));
    }

    #[test]
    fn never_signals_init_or_everyone() {
        assert!(signal_group(1, 0).is_err());
        assert!(signal_group(0, 0).is_err());
    }
}
