//! Process control for a worker: signals to everything it runs, exit status from `waitpid`,
//! and a look at `/proc` to see which of its processes are left.
//!
//! A PTY child is a session and group leader (portable-pty calls `setsid`), so its pid is the
//! group id and `kill(-pgid, sig)` reaches every descendant that stayed in the group. The real
//! CLIs do not all stay: Codex and Gemini start each tool command in a session of its own. So a
//! worker's processes are its group, every descendant, the groups those lead, and anything
//! that still carries the worker's mark in its environment (found even after its parent died
//! and it was reparented).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
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

/// The environment variable every process of a worker inherits: its mark.
pub const WORKER_MARK_VAR: &str = "ORCHESTRATE_WORKER_MARK";

/// What identifies one worker's processes: its leader (pid = process group; 0 when unknown or
/// no longer ours) and its mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProcs {
    pub leader: i32,
    pub mark: Option<String>,
}

impl WorkerProcs {
    /// Every live process of the worker (zombies excluded), never this process, its
    /// ancestors or init.
    pub fn members(&self) -> Vec<ProcInfo> {
        self.members_in(&ProcessTable::read())
    }

    /// [`WorkerProcs::members`] as `table` saw them.
    pub fn members_in(&self, table: &ProcessTable) -> Vec<ProcInfo> {
        let all = &table.procs;
        let protected = ancestors(all);
        let marked: Vec<i32> = match self.mark.as_deref() {
            Some(mark) => table
                .marks
                .iter()
                .filter(|(_, m)| m.as_str() == mark)
                .map(|(pid, _)| *pid)
                .collect(),
            None => Vec::new(),
        };
        // Kernel threads sit in group 0: a leader of 0 or 1 names no group.
        let mut groups = if self.leader > 1 {
            vec![self.leader]
        } else {
            Vec::new()
        };
        let mut members: Vec<i32> = Vec::new();
        loop {
            let before = members.len();
            for p in all {
                let belongs = groups.contains(&p.group)
                    || members.contains(&p.parent)
                    || marked.contains(&p.pid);
                if belongs && !members.contains(&p.pid) && !protected.contains(&p.pid) {
                    members.push(p.pid);
                    if p.group == p.pid && !groups.contains(&p.pid) {
                        groups.push(p.pid);
                    }
                }
            }
            if members.len() == before {
                break;
            }
        }
        all.iter()
            .filter(|p| members.contains(&p.pid) && p.state != 'Z')
            .cloned()
            .collect()
    }

    /// True while a live process of the worker is left.
    pub fn alive(&self) -> bool {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return group_alive(self.leader);
        }
        !self.members().is_empty()
    }

    /// Sends `signal` to the leader's group and to every other process of the worker. Errors
    /// only when nothing could be signalled.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let group = signal_group(self.leader, signal);
        let mut others = 0;
        for p in self.members() {
            if p.group != self.leader {
                // SAFETY: kill has no memory-safety preconditions; members() never lists
                // this process, its ancestors or init.
                if unsafe { libc::kill(p.pid, signal) } == 0 {
                    others += 1;
                }
            }
        }
        if others > 0 { Ok(()) } else { group }
    }

    /// Stops every process of the worker. Stopped processes cannot fork, so a second pass
    /// catches what was started while the first went round.
    pub fn pause(&self) -> io::Result<()> {
        self.signal(libc::SIGSTOP)?;
        let _ = self.signal(libc::SIGSTOP);
        Ok(())
    }

    /// SIGTERM to every process of the worker, a grace period, then SIGKILL to whatever is
    /// left. Paused processes are continued so they can act on the TERM. The members are
    /// listed before the first signal: once the leader dies its children are reparented. Returns
    /// true if KILL was needed.
    pub fn terminate(&self, grace: Duration) -> bool {
        let _ = self.signal(libc::SIGTERM);
        let _ = self.signal(libc::SIGCONT);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.alive() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.alive() {
            let _ = self.signal(libc::SIGKILL);
            return true;
        }
        false
    }
}

/// Whether `pid`'s environment holds the worker mark `mark`.
pub fn carries_mark(pid: i32, mark: &str) -> bool {
    mark_of(pid).as_deref() == Some(mark)
}

/// The worker mark in `pid`'s environment, if any.
fn mark_of(pid: i32) -> Option<String> {
    mark_in(&std::fs::read(format!("/proc/{pid}/environ")).ok()?)
}

/// The worker mark in an environment block (`/proc/PID/environ`), if any.
fn mark_in(environ: &[u8]) -> Option<String> {
    let prefix = format!("{WORKER_MARK_VAR}=");
    environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(prefix.as_bytes()))
        .map(|m| String::from_utf8_lossy(m).into_owned())
}

/// The mark (or none) of each process seen, by pid and start time.
type MarksByProcess = HashMap<(i32, u64), Option<String>>;

/// One reading of `/proc`: every process, and the worker mark of those that carry one.
pub struct ProcessTable {
    procs: Vec<ProcInfo>,
    marks: Vec<(i32, String)>,
}

impl ProcessTable {
    pub fn read() -> ProcessTable {
        // A process's mark is read once in its life (pid and start time name it): its
        // environment is fixed from its exec on, and a worker's processes inherit the mark
        // when they fork. Only a leader could gain one by its exec, and leaders are found by
        // their group. Unreadable environments are not remembered.
        static KNOWN: Mutex<Option<MarksByProcess>> = Mutex::new(None);
        let procs = all_processes();
        let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
        let before = known.take().unwrap_or_default();
        let mut now = HashMap::with_capacity(procs.len());
        for p in &procs {
            let key = (p.pid, p.start_ticks);
            let mark = match before.get(&key) {
                Some(mark) => mark.clone(),
                None => match std::fs::read(format!("/proc/{}/environ", p.pid)) {
                    Ok(environ) => mark_in(&environ),
                    Err(_) => continue,
                },
            };
            now.insert(key, mark);
        }
        let marks = now
            .iter()
            .filter_map(|((pid, _), mark)| Some((*pid, mark.clone()?)))
            .collect();
        *known = Some(now);
        ProcessTable { procs, marks }
    }

    /// A reading at most `max_age` old, shared by every caller in this process: the resource
    /// samplers of 64 workers read `/proc` once between them instead of once each (that was
    /// most of a coordinator's CPU with many idle workers). Signals use a fresh
    /// [`ProcessTable::read`].
    pub fn recent(max_age: Duration) -> Arc<ProcessTable> {
        static LAST: Mutex<Option<(Instant, Arc<ProcessTable>)>> = Mutex::new(None);
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, table)) = last.as_ref()
            && at.elapsed() <= max_age
        {
            return Arc::clone(table);
        }
        let table = Arc::new(ProcessTable::read());
        *last = Some((Instant::now(), Arc::clone(&table)));
        table
    }
}

/// This process and its ancestors, with init: never a worker's.
fn ancestors(all: &[ProcInfo]) -> Vec<i32> {
    let mut chain = vec![1, std::process::id() as i32];
    let mut next = std::process::id() as i32;
    while let Some(p) = all.iter().find(|p| p.pid == next) {
        if p.parent <= 1 || chain.contains(&p.parent) {
            break;
        }
        chain.push(p.parent);
        next = p.parent;
    }
    chain
}

fn all_processes() -> Vec<ProcInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(proc_info)
        .collect()
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
    /// CPU time used (user + system), in clock ticks.
    pub cpu_ticks: u64,
    /// When it started, in clock ticks since boot.
    pub start_ticks: u64,
    /// Resident memory, in pages.
    pub rss_pages: u64,
}

/// Every live process whose process group is `pgid` (Linux `/proc`).
pub fn group_members(pgid: i32) -> Vec<ProcInfo> {
    all_processes()
        .into_iter()
        .filter(|p| p.group == pgid)
        .collect()
}

pub fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The name is in parentheses and may itself contain spaces or parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat[open + 1..close].to_string();
    // Fields from the third (`state`) on, as proc(5) numbers them minus 3.
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let number = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Some(ProcInfo {
        pid,
        parent: rest.get(1)?.parse().ok()?,
        group: rest.get(2)?.parse().ok()?,
        state: rest.first()?.chars().next()?,
        name,
        cpu_ticks: number(11) + number(12),
        start_ticks: number(19),
        rss_pages: number(21),
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
