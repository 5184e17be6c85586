//! `orchestrate attach SESSION WORKER`: this terminal connected to a worker's PTY. What the
//! worker prints is shown (from its raw log, which the coordinator writes as it reads the
//! PTY); what is typed goes to the worker through the control socket. Ctrl-] detaches and
//! leaves the worker running.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::lookup;
use crate::coordinator::control::{ControlCommand, ControlRequest, send};
use crate::coordinator::lock;
use crate::event::read_journal;
use crate::session::Workspace;
use crate::worker::WorkerStatus;

/// Ctrl-] (group separator), as telnet and docker use it.
pub const DETACH_KEY: u8 = 0x1d;
/// How much of the worker's past output is shown on attaching.
const BACKLOG_BYTES: u64 = 16 * 1024;
const POLL: Duration = Duration::from_millis(30);

pub fn attach(workspace: &Workspace, session: &str, worker: &str) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let worker = lookup::worker(&session, worker)?;
    if lock::holder(&session.lock_path()).is_none() {
        bail!(
            "the coordinator of {} is not running; `orchestrate resume {}` restarts it",
            session.id,
            session.id
        );
    }
    if worker_finished(&session.events_path(&worker)) {
        bail!(
            "worker {worker} has finished; `orchestrate logs {} {worker} --raw` shows what it printed",
            session.id
        );
    }
    let raw_path = session.raw_path(&worker);
    let mut raw = std::fs::File::open(&raw_path)
        .with_context(|| format!("cannot read {}", raw_path.display()))?;
    let len = raw.metadata()?.len();
    let mut offset = len.saturating_sub(BACKLOG_BYTES);
    eprint!(
        "attached to {worker} in {} (Ctrl-] detaches; the worker keeps running)\r\n",
        session.id
    );
    let raw_mode = RawMode::enable();
    let detached = Arc::new(AtomicBool::new(false));
    spawn_key_forwarder(
        session.control_socket(),
        session.id.clone(),
        worker.clone(),
        Arc::clone(&detached),
    );
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        raw.seek(SeekFrom::Start(offset))?;
        loop {
            let n = raw.read(&mut buf)?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                return Ok(0);
            }
        }
        if detached.load(Ordering::SeqCst) {
            drop(raw_mode);
            eprint!("\r\ndetached from {worker}; it keeps running\r\n");
            return Ok(0);
        }
        if worker_finished(&session.events_path(&worker))
            || lock::holder(&session.lock_path()).is_none()
        {
            drop(raw_mode);
            eprint!("\r\n{worker} has ended\r\n");
            return Ok(0);
        }
        std::thread::sleep(POLL);
    }
}

fn worker_finished(events_path: &std::path::Path) -> bool {
    let (events, _) = read_journal(events_path).unwrap_or_default();
    let mut status = WorkerStatus::default();
    events.iter().for_each(|e| status.observe(e));
    status.state().is_finished()
}

/// Reads keys on a thread; each read goes to the worker as one `input` request. The detach
/// key ends it (bytes typed before it in the same read still go).
fn spawn_key_forwarder(
    socket: std::path::PathBuf,
    session: String,
    worker: String,
    detached: Arc<AtomicBool>,
) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 1024];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let (keys, detach) = match buf[..n].iter().position(|&b| b == DETACH_KEY) {
                Some(i) => (&buf[..i], true),
                None => (&buf[..n], false),
            };
            if !keys.is_empty() {
                let data = String::from_utf8_lossy(keys).into_owned();
                let request = ControlRequest {
                    data: Some(data),
                    ..ControlRequest::new(ControlCommand::Input, Some(worker.clone()))
                };
                if send(&socket, &session, &request).is_err() {
                    break;
                }
            }
            if detach {
                break;
            }
        }
        detached.store(true, Ordering::SeqCst);
    });
}

/// The terminal in raw mode while it lives (keys arrive one by one, unechoed, Ctrl-C
/// included); restored when dropped, which every exit path does.
struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    fn enable() -> RawMode {
        // SAFETY: termios calls on fd 0 with a zeroed struct they fill in; a non-terminal
        // stdin makes tcgetattr fail and nothing changes.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::isatty(0) != 1 || libc::tcgetattr(0, &mut saved) != 0 {
                return RawMode { saved: None };
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            libc::tcsetattr(0, libc::TCSANOW, &raw);
            RawMode { saved: Some(saved) }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = self.saved.take() {
            // SAFETY: restoring the attributes read in `enable`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &saved);
            }
        }
    }
}
