//! A running worker: one PTY, a reader thread that never stops draining it (raw bytes to
//! `raw/<worker>.log`, lines through the adapter to `events/<worker>.jsonl`), a waiter thread
//! that reaps the process and journals how it ended, and the controls (pause, resume, stop,
//! input, resize). Lifecycle facts go into the same journal as the agent's events, in order.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use portable_pty::{MasterPty, PtySize};

use super::limits::{Breach, Limiter, Limits};
use super::process::{self, signal_name};
use super::spawn::{SpawnError, spawn_in_pty};
use super::state::ExitFacts;
use super::summary::WorkerSummary;
use crate::agents::{AgentKind, Draft, Launch, LineIssue, Normalizer};
use crate::event::{AgentEvent, EventType, JournalWriter};
use crate::session::append::HeldAppender;
use crate::timestamp::Timestamp;

/// How long after the process exits the reader may take to drain what is left in the PTY, when
/// nothing is waiting in it (a grandchild holding the PTY open must not hold up the exit).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How long, at most, while the PTY still has bytes (or its end) waiting to be read: a reader
/// starved of CPU on a loaded machine gets the time to take the last line.
const DRAIN_WHILE_WAITING: Duration = Duration::from_secs(15);

/// Everything needed to start one worker.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// The worker's name (`claude-1`); also its journal file names.
    pub name: String,
    pub agent: AgentKind,
    pub task: Option<String>,
    pub launch: Launch,
    pub events_path: PathBuf,
    pub raw_path: PathBuf,
    pub rows: u16,
    pub cols: u16,
    /// Sequence number of the first event, to continue an existing journal. With a
    /// `summary_path`, the journal's own next number when that is higher (the summary knows it).
    pub first_seq: u64,
    /// Time between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
    /// Where the worker keeps its journal's summary (see `worker::summary`); `None` keeps none.
    pub summary_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("worker {worker}: {source}")]
    Spawn {
        worker: String,
        #[source]
        source: SpawnError,
    },
    #[error("worker {worker}: cannot open {}: {source}", path.display())]
    Journal {
        worker: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Called with each event right after it is journaled (never before: the journal is the record).
pub type Observer = Box<dyn FnMut(AgentEvent) + Send>;

/// An observer that forwards events into a channel.
pub fn channel_observer(tx: Sender<AgentEvent>) -> Observer {
    Box::new(move |event| {
        let _ = tx.send(event);
    })
}

/// The journal files of one worker and the normaliser that feeds them.
struct Journal {
    normalizer: Normalizer,
    events: JournalWriter,
    raw: HeldAppender,
    observer: Option<Observer>,
    /// Why writes are failing (a full disk), while they are: records wait in memory and the
    /// worker is never blocked on the disk. Cleared by a successful [`Journal::flush`].
    blocked: Option<String>,
    pending: Vec<AgentEvent>,
    issues: Vec<LineIssue>,
    events_path: PathBuf,
    summary: KeptSummary,
}

/// The journal's summary as the worker keeps it: every journaled event folded in, saved when
/// the supervisor records a fact and otherwise at most every [`SUMMARY_EVERY`] or
/// [`SUMMARY_BYTES`] of journal, so a reader never has much left to fold.
struct KeptSummary {
    path: Option<PathBuf>,
    summary: WorkerSummary,
    saved_at: Instant,
}

const SUMMARY_EVERY: Duration = Duration::from_millis(250);
const SUMMARY_BYTES: u64 = 1 << 20;

impl KeptSummary {
    fn open(path: Option<PathBuf>, journal: &Path) -> KeptSummary {
        let summary = match &path {
            Some(path) => WorkerSummary::load(path, journal).unwrap_or_default(),
            None => WorkerSummary::default(),
        };
        KeptSummary {
            path,
            summary,
            saved_at: Instant::now(),
        }
    }

    /// Saves the summary as of `journal_len` bytes of journal, when due (or `now`). Only with
    /// nothing held: then every folded event is in the file.
    fn save(&mut self, journal_len: u64, held: bool, now: bool) {
        let Some(path) = &self.path else { return };
        let due = self.saved_at.elapsed() >= SUMMARY_EVERY
            || journal_len >= self.summary.offset + SUMMARY_BYTES;
        if held || !(now || due) {
            return;
        }
        self.summary.offset = journal_len;
        // A summary that cannot be written (a full disk) only makes readers fold more.
        let _ = self.summary.save(path);
        self.saved_at = Instant::now();
    }
}

impl Journal {
    fn ingest(&mut self, bytes: &[u8]) {
        if let Err(e) = self.raw.append_bytes(bytes) {
            self.block(format!("cannot write the raw log: {e}"));
        }
        self.normalizer
            .push(bytes, Timestamp::now(), &mut self.pending, &mut self.issues);
        self.issues.clear();
        self.append_pending();
        self.save_summary(false);
    }

    fn record(&mut self, draft: Draft) -> AgentEvent {
        let event = self.normalizer.stamp(draft, Timestamp::now());
        self.pending.push(event.clone());
        self.append_pending();
        self.save_summary(true);
        event
    }

    fn save_summary(&mut self, now: bool) {
        let held = self.held();
        self.summary.save(self.events.written_len(), held, now);
    }

    fn finish(&mut self, exit: &ExitFacts) {
        self.normalizer.finish(
            Some(exit),
            Timestamp::now(),
            &mut self.pending,
            &mut self.issues,
        );
        self.issues.clear();
        self.append_pending();
        self.save_summary(true);
    }

    /// Journals what the last read gave, in one write, then hands each event on.
    fn append_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let written = self.events.append_all(&self.pending);
        let mut pending = std::mem::take(&mut self.pending);
        for event in pending.drain(..) {
            self.summary.summary.observe(&event);
            if let Some(observer) = &mut self.observer {
                observer(event);
            }
        }
        self.pending = pending;
        if let Err(e) = written {
            self.block(format!("cannot write the event journal: {e}"));
        }
    }

    /// The first failed write says so once, as a `journal_blocked` event (held like the
    /// rest, and seen at once by the observer: the coordinator pauses the session).
    fn block(&mut self, reason: String) {
        if self.blocked.is_some() {
            return;
        }
        self.blocked = Some(reason.clone());
        let event = self.normalizer.stamp(
            Draft::new(
                EventType::Error,
                format!("{reason}; its events are held in memory until the disk has room"),
            )
            .with("phase", "journal_blocked")
            .with("reason", reason)
            .with("fatal", false),
            Timestamp::now(),
        );
        let _ = self.events.append(&event);
        self.summary.summary.observe(&event);
        if let Some(observer) = &mut self.observer {
            observer(event);
        }
    }

    /// Writes what is held; after a block, says how much came through (`journal_recovered`).
    fn flush(&mut self) -> Result<(), String> {
        let raw = self.raw.flush();
        let events = self.events.flush();
        if let Err(e) = raw.and(events) {
            return Err(self
                .blocked
                .clone()
                .unwrap_or_else(|| format!("cannot write the journal: {e}")));
        }
        if self.blocked.take().is_some() {
            let lost = self.events.dropped() + self.raw.dropped();
            if self.events.dropped() > 0 {
                // Events held too long never reached the file: the summary must not count them.
                let fresh = WorkerSummary::default().caught_up(&self.events_path);
                self.summary.summary = fresh.unwrap_or_default();
            }
            let text = if lost == 0 {
                "the journal is written again; nothing was lost".to_string()
            } else {
                format!("the journal is written again; {lost} lines held too long were dropped")
            };
            self.record(
                Draft::new(EventType::Status, text)
                    .with("phase", "journal_recovered")
                    .with("dropped", lost),
            );
        }
        if self.blocked.is_some() {
            return Err(self.blocked.clone().unwrap_or_default());
        }
        Ok(())
    }

    fn held(&self) -> bool {
        self.events.held() > 0 || self.raw.held() > 0
    }
}

/// Shared state between the handle and the waiter thread.
struct ExitCell {
    exit: Mutex<Option<ExitFacts>>,
    changed: Condvar,
}

pub struct Worker {
    name: String,
    pid: i32,
    /// Everything the worker runs, for signals: its group, descendants and marked processes.
    procs: process::WorkerProcs,
    stop_grace: Duration,
    journal: Arc<Mutex<Journal>>,
    master: Mutex<Box<dyn MasterPty + Send>>,
    input: Mutex<Box<dyn Write + Send>>,
    exit: Arc<ExitCell>,
    /// Set while the operator has it paused: the resource limiter never continues it then.
    operator_paused: Arc<AtomicBool>,
}

/// Locks a mutex even if a thread panicked while holding it: the journal stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Worker {
    /// Starts the worker. A launch that cannot start is journaled as a `spawn_failed` error
    /// (so every reader sees a failed worker) and returned as an error.
    pub fn spawn(spec: WorkerSpec, observer: Option<Observer>) -> Result<Worker, WorkerError> {
        let journal_error = |path: &PathBuf, source| WorkerError::Journal {
            worker: spec.name.clone(),
            path: path.clone(),
            source,
        };
        for path in [&spec.events_path, &spec.raw_path] {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| journal_error(path, e))?;
            }
        }
        let events = JournalWriter::open(&spec.events_path)
            .map_err(|e| journal_error(&spec.events_path, e))?;
        let raw =
            HeldAppender::open(&spec.raw_path).map_err(|e| journal_error(&spec.raw_path, e))?;
        let summary = KeptSummary::open(spec.summary_path.clone(), &spec.events_path);
        let normalizer = Normalizer::new(spec.agent, &spec.name, spec.task.as_deref())
            .starting_at(spec.first_seq.max(summary.summary.next_seq));
        let mut journal = Journal {
            normalizer,
            events,
            raw,
            observer,
            blocked: None,
            pending: Vec::new(),
            issues: Vec::new(),
            summary,
            events_path: spec.events_path.clone(),
        };

        // Every process the worker starts inherits this mark, even those that leave its group.
        // Unique on the machine: two sessions' workers of the same name started in the same
        // millisecond must never share it (signalling one would reach the other).
        static SPAWNED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let mark = format!(
            "{}-{}-{}-{}",
            spec.name,
            std::process::id(),
            Timestamp::now().millis(),
            SPAWNED.fetch_add(1, Ordering::SeqCst)
        );
        let mut launch = spec.launch.clone();
        launch
            .env
            .push((process::WORKER_MARK_VAR.into(), mark.clone()));
        let pty = match spawn_in_pty(&launch, spec.rows, spec.cols) {
            Ok(pty) => pty,
            Err(source) => {
                let message = source.to_string();
                journal.record(
                    Draft::new(EventType::Error, format!("could not start: {message}"))
                        .with("phase", "spawn_failed")
                        .with("message", message)
                        .with("fatal", true),
                );
                return Err(WorkerError::Spawn {
                    worker: spec.name,
                    source,
                });
            }
        };
        journal.record(
            Draft::new(
                EventType::Status,
                format!("started {} (pid {})", spec.agent, pty.pid),
            )
            .with("phase", "spawned")
            .with("pid", pty.pid)
            .with("mark", mark.clone())
            .with("argv", spec.launch.redacted_argv())
            .with("cwd", spec.launch.cwd.display().to_string()),
        );

        let spawn_error = |reason: String| WorkerError::Spawn {
            worker: spec.name.clone(),
            source: SpawnError::Pty {
                program: spec.launch.argv[0].clone(),
                reason,
            },
        };
        let reader = pty
            .master
            .try_clone_reader()
            .map_err(|e| spawn_error(format!("{e:#}")))?;
        // Descriptors of the reader's and the waiter's own, to ask whether bytes are waiting.
        let ready = master_clone(&*pty.master);
        let waiter_ready = master_clone(&*pty.master);
        let input = pty
            .master
            .take_writer()
            .map_err(|e| spawn_error(format!("{e:#}")))?;
        let journal = Arc::new(Mutex::new(journal));
        let exit = Arc::new(ExitCell {
            exit: Mutex::new(None),
            changed: Condvar::new(),
        });

        let (drained_tx, drained_rx) = mpsc::channel::<()>();
        let reader_journal = Arc::clone(&journal);
        thread::Builder::new()
            .name(format!("pty-read-{}", spec.name))
            .spawn(move || drain_pty(reader, ready, &reader_journal, drained_tx))
            .map_err(|e| spawn_error(format!("cannot start the reader thread: {e}")))?;

        let waiter_journal = Arc::clone(&journal);
        let waiter_exit = Arc::clone(&exit);
        let pid = pty.pid;
        thread::Builder::new()
            .name(format!("pty-wait-{}", spec.name))
            .spawn(move || {
                let facts = process::wait_exit(pid).unwrap_or(ExitFacts {
                    code: None,
                    signal: None,
                });
                // Let the reader take what the process wrote last.
                let exited = Instant::now();
                let mut drained = drained_rx.recv_timeout(DRAIN_AFTER_EXIT).is_ok();
                while !drained
                    && exited.elapsed() < DRAIN_WHILE_WAITING
                    && waiter_ready.as_ref().is_some_and(reader_has_work)
                {
                    drained = drained_rx.recv_timeout(Duration::from_millis(100)).is_ok();
                }
                let mut journal = lock(&waiter_journal);
                journal.finish(&facts);
                let unwritten = journal.held().then(|| journal.blocked.clone()).flatten();
                journal.record(exit_draft(&facts, unwritten));
                drop(journal);
                *lock(&waiter_exit.exit) = Some(facts);
                waiter_exit.changed.notify_all();
            })
            .map_err(|e| spawn_error(format!("cannot start the waiter thread: {e}")))?;

        Ok(Worker {
            name: spec.name,
            pid,
            procs: process::WorkerProcs {
                leader: pid,
                mark: Some(mark),
            },
            stop_grace: spec.stop_grace,
            journal,
            master: Mutex::new(pty.master),
            input: Mutex::new(input),
            exit,
            operator_paused: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Samples the worker's process tree and holds it to `limits` until it ends.
    pub fn limit(
        &self,
        limits: Limits,
        on_breach: impl FnOnce(Breach) + Send + 'static,
    ) -> Limiter {
        Limiter::start(
            self.procs.clone(),
            limits,
            Arc::clone(&self.operator_paused),
            on_breach,
        )
    }

    /// Journals an event about the worker from outside its stream (the coordinator: an
    /// approval it waits for, the answer), in order with what the worker prints.
    pub fn note(&self, draft: Draft) -> AgentEvent {
        lock(&self.journal).record(draft)
    }

    /// Retries the journal writes a full disk held back; `Err` with the reason while the
    /// disk still refuses them.
    pub fn flush_journal(&self) -> Result<(), String> {
        lock(&self.journal).flush()
    }

    /// True while some of the worker's records wait in memory for the disk.
    pub fn journal_held(&self) -> bool {
        lock(&self.journal).held()
    }

    /// The process id, which is also the process group id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// SIGSTOP to every process of the worker.
    pub fn pause(&self) -> io::Result<()> {
        self.ensure_running()?;
        self.operator_paused.store(true, Ordering::SeqCst);
        self.procs.pause()?;
        self.journal_lifecycle("paused", "paused (SIGSTOP to every process of the worker)");
        Ok(())
    }

    /// SIGCONT to every process of the worker.
    pub fn resume(&self) -> io::Result<()> {
        self.ensure_running()?;
        self.operator_paused.store(false, Ordering::SeqCst);
        self.procs.signal(libc::SIGCONT)?;
        self.journal_lifecycle(
            "resumed",
            "resumed (SIGCONT to every process of the worker)",
        );
        Ok(())
    }

    /// SIGTERM to every process of the worker, the grace period, then SIGKILL; waits until
    /// the exit is journaled.
    pub fn stop(&self) -> ExitFacts {
        if let Some(exit) = self.try_exit() {
            // The leader is gone; make sure nothing it started survives.
            self.procs.terminate(Duration::ZERO);
            return exit;
        }
        self.journal_lifecycle(
            "stopping",
            "stopping (SIGTERM, then SIGKILL after the grace period)",
        );
        self.procs.terminate(self.stop_grace);
        self.wait()
    }

    /// SIGKILL to every process of the worker at once.
    pub fn kill(&self) -> ExitFacts {
        if self.try_exit().is_none() {
            self.journal_lifecycle(
                "stopping",
                "killing (SIGKILL to every process of the worker)",
            );
        }
        let _ = self.procs.signal(libc::SIGKILL);
        self.wait()
    }

    /// What identifies the worker's processes, to signal what it left behind.
    pub fn procs(&self) -> &process::WorkerProcs {
        &self.procs
    }

    /// Bytes for the worker's terminal, as if typed.
    pub fn write_input(&self, bytes: &[u8]) -> io::Result<()> {
        let mut input = lock(&self.input);
        input.write_all(bytes)?;
        input.flush()
    }

    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        let size = PtySize {
            rows: rows.max(1),
            cols: cols.max(1),
            pixel_width: 0,
            pixel_height: 0,
        };
        lock(&self.master)
            .resize(size)
            .map_err(|e| io::Error::other(format!("{e:#}")))
    }

    pub fn try_exit(&self) -> Option<ExitFacts> {
        *lock(&self.exit.exit)
    }

    /// Blocks until the process has exited and its end is journaled.
    pub fn wait(&self) -> ExitFacts {
        let mut exit = lock(&self.exit.exit);
        loop {
            if let Some(facts) = *exit {
                return facts;
            }
            exit = self
                .exit
                .changed
                .wait(exit)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitFacts> {
        let exit = lock(&self.exit.exit);
        let (exit, _) = self
            .exit
            .changed
            .wait_timeout_while(exit, timeout, |e| e.is_none())
            .unwrap_or_else(|p| p.into_inner());
        *exit
    }

    /// The next sequence number in this worker's journal.
    pub fn next_seq(&self) -> u64 {
        lock(&self.journal).normalizer.next_seq()
    }

    fn ensure_running(&self) -> io::Result<()> {
        if self.try_exit().is_some() {
            return Err(io::Error::other(format!(
                "worker {} has already exited",
                self.name
            )));
        }
        Ok(())
    }

    fn journal_lifecycle(&self, phase: &str, text: &str) {
        lock(&self.journal).record(Draft::new(EventType::Status, text).with("phase", phase));
    }
}

/// Reads the PTY until EOF. Never stops early: a PTY nobody drains blocks its writer.
/// Reads the PTY until it closes. A PTY hands over at most about 4 KiB per read; while more is
/// waiting at once, it is read too (up to the buffer) before the batch is journaled: under a
/// busy agent that is one raw-log write, one journal write and one hand-over per batch instead
/// of per 4 KiB. A quiet agent's bytes are journaled as soon as they are read, as before.
fn drain_pty(
    mut reader: Box<dyn Read + Send>,
    ready: Option<OwnedFd>,
    journal: &Mutex<Journal>,
    drained: Sender<()>,
) {
    const BATCH: usize = 64 * 1024;
    /// Room a further read needs to be worth it (a PTY read gives up to about 4 KiB).
    const READ_ROOM: usize = 4096;
    let mut buf = vec![0u8; BATCH];
    let mut closed = false;
    while !closed {
        let mut filled = 0;
        loop {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => closed = true,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // EIO once the last slave fd closes is how a PTY says EOF.
                Err(_) => closed = true,
            }
            let more =
                !closed && BATCH - filled >= READ_ROOM && ready.as_ref().is_some_and(bytes_waiting);
            if !more {
                break;
            }
        }
        if filled > 0 {
            lock(journal).ingest(&buf[..filled]);
        }
    }
    let _ = drained.send(());
}

/// A descriptor of the PTY's master of the caller's own (closed when dropped).
fn master_clone(master: &dyn MasterPty) -> Option<OwnedFd> {
    let fd = master.as_raw_fd()?;
    // SAFETY: the master is open while its owner holds it; the clone is independent of it.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .ok()
}

/// Whether bytes are waiting to be read from `fd`.
fn bytes_waiting(fd: &OwnedFd) -> bool {
    poll_now(fd) & libc::POLLIN != 0
}

/// Whether the reader of `fd` has something to take: bytes, or the end (every slave closed),
/// which it reads at once.
fn reader_has_work(fd: &OwnedFd) -> bool {
    poll_now(fd) & (libc::POLLIN | libc::POLLHUP) != 0
}

/// `fd`'s readiness now, without waiting (0 when nothing, or on an error).
fn poll_now(fd: &OwnedFd) -> libc::c_short {
    let mut poll = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    match unsafe { libc::poll(&mut poll, 1, 0) } {
        1 => poll.revents,
        _ => 0,
    }
}

fn exit_draft(exit: &ExitFacts, write_error: Option<String>) -> Draft {
    let text = match (exit.code, exit.signal) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(sig)) => format!("killed by {} (signal {sig})", signal_name(sig)),
        (None, None) => "exited (status unknown)".to_string(),
    };
    let kind = if exit.success() {
        EventType::Status
    } else {
        EventType::Error
    };
    Draft::new(kind, text)
        .with("phase", "exited")
        .with_some("exit_code", exit.code)
        .with_some("signal", exit.signal)
        .with("fatal", !exit.success())
        .with_some("journal_error", write_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portable_pty::native_pty_system;

    /// Waits (up to 10 s) for `ready` to hold.
    fn until(ready: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        ready()
    }

    #[test]
    fn a_pty_says_when_its_reader_has_bytes_or_its_end_waiting() {
        let pair = native_pty_system()
            .openpty(PtySize::default())
            .expect("a PTY");
        let master = master_clone(&*pair.master).expect("a master descriptor");
        let mut reader = pair.master.try_clone_reader().unwrap();
        let mut child = pair
            .slave
            .spawn_command({
                let mut cmd = portable_pty::CommandBuilder::new("sh");
                cmd.args(["-c", "printf 'last line\\n'; read _ignored"]);
                cmd
            })
            .expect("sh in the PTY");
        drop(pair.slave);

        assert!(until(|| bytes_waiting(&master)), "the line is waiting");
        assert!(reader_has_work(&master));
        let mut buf = [0u8; 256];
        let n = reader.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("last line"));
        // Read, and the child still holds the PTY open, quiet: nothing to wait for.
        assert!(!bytes_waiting(&master) && !reader_has_work(&master));

        child.kill().unwrap();
        let _ = child.wait();
        assert!(
            until(|| reader_has_work(&master)),
            "every slave closed: the end is the reader's to take"
        );
    }
}
