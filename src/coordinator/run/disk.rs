//! A full disk (or any journal write error): the coordinator stays alive, pauses the session,
//! says so plainly (journal, coordinator.log, status, dashboard), holds the unwritten records
//! in memory, never settles a task whose events are not on disk, and continues when the
//! operator resumes after freeing space.
//!
//! A small reserve file is kept in the session directory and given up at the moment of the
//! failure, so the notice that the session is paused has room to be written.

use std::collections::BTreeMap;
use std::io::Write;

use super::{Coordinator, Inbox, RunningTask};
use crate::agents::Draft;
use crate::coordinator::control::ControlReply;
use crate::event::EventType;
use crate::timestamp::Timestamp;

/// Room for the pause notice and a few control replies.
const RESERVE_BYTES: usize = 256 << 10;
/// Free space below which a resume is refused.
const MIN_FREE_TO_RESUME: u64 = 4 * RESERVE_BYTES as u64;

impl Coordinator {
    fn reserve_path(&self) -> std::path::PathBuf {
        self.session.path.join(".reserve")
    }

    /// Sets the reserve aside (best effort: on a disk already full there is none).
    pub(super) fn make_reserve(&self) {
        let path = self.reserve_path();
        if std::fs::write(&path, vec![0u8; RESERVE_BYTES]).is_err() {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// A write failed somewhere (a worker's journal said `journal_blocked`, or the
    /// coordinator's own journal refused an event): acted on by the loop, which has the
    /// running workers at hand.
    pub(super) fn note_write_failure(&mut self, reason: String) {
        if self.disk_blocked.is_none() {
            self.write_failure.get_or_insert(reason);
        }
    }

    /// Pauses every running worker and the scheduler, gives up the reserve and says why.
    pub(super) fn block_on_disk(&mut self, running: &BTreeMap<String, RunningTask>) {
        let Some(reason) = self.write_failure.take() else {
            return;
        };
        if self.disk_blocked.is_some() {
            return;
        }
        self.disk_blocked = Some(reason.clone());
        self.paused = true;
        for r in running.values().filter(|r| r.pending_exit.is_none()) {
            let _ = r.worker.pause();
        }
        let _ = std::fs::remove_file(self.reserve_path());
        let text = format!(
            "session paused: {reason}. Nothing is lost: unwritten events wait in memory. Free space on the disk of {}, then `orchestrate control {} resume`",
            self.session.path.display(),
            self.session.id
        );
        log_line(&text);
        self.record(
            None,
            Draft::new(EventType::Control, text)
                .with("phase", "control")
                .with("command", "pause")
                .with("took_effect", true)
                .with("disk_full", true)
                .with("reason", reason),
        );
        let _ = self.store.set_session_state(
            &self.session.id,
            "paused",
            Some(i64::from(std::process::id())),
            Timestamp::now(),
        );
    }

    /// Before a session resume: writes everything held. `Err` (the reply) while the disk
    /// still refuses; on success the workers' held exits are handled again.
    pub(super) fn unblock_disk(
        &mut self,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> Result<(), ControlReply> {
        let Some(reason) = self.disk_blocked.clone() else {
            return Ok(());
        };
        let mut still = Vec::new();
        // The reserve given up at the failure may hold what was waiting; resuming on it
        // would only fill the disk again at once.
        let free = free_bytes(&self.session.path);
        if free.is_some_and(|f| f < MIN_FREE_TO_RESUME) {
            still.push(format!(
                "only {} KiB free, {} KiB needed",
                free.unwrap_or(0) >> 10,
                MIN_FREE_TO_RESUME >> 10
            ));
        } else if let Err(e) = self.journal.flush() {
            still.push(format!("coordinator journal: {e}"));
        }
        if still.is_empty() {
            for r in running.values() {
                if let Err(e) = r.worker.flush_journal() {
                    still.push(format!("{}: {e}", r.name));
                }
            }
        }
        if !still.is_empty() {
            return Err(ControlReply::refused(format!(
                "the journals still cannot be written ({}); free space on the disk of {} and resume again",
                still.join("; "),
                self.session.path.display()
            )));
        }
        self.disk_blocked = None;
        self.write_failure = None;
        self.make_reserve();
        let text = format!("the journals are written again (they had stopped: {reason})");
        log_line(&text);
        self.record(
            None,
            Draft::new(EventType::Status, text).with("phase", "disk_recovered"),
        );
        for r in running.values_mut() {
            if let Some(exit) = r.pending_exit.take() {
                let _ = self.inbox_tx.send(Inbox::Event(exit));
            }
        }
        Ok(())
    }
}

/// One line in coordinator.log, which may be on the full disk itself: a failure to write it
/// is ignored (eprintln! would panic and take the coordinator down).
pub(super) fn log_line(text: &str) {
    let _ = writeln!(std::io::stderr(), "{}: {text}", Timestamp::now());
}

/// Bytes an unprivileged writer may still use on the filesystem of `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we own from a valid C string.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return None;
    }
    Some(stats.f_bavail as u64 * stats.f_frsize as u64)
}
