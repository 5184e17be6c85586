//! Appending to a file on a disk that may fill up. A write that fails (ENOSPC, EIO, a
//! read-only remount) is cut back to the last whole record, so the file never holds a torn
//! line in its middle, and the record is held in memory, in order, until a later write or an
//! explicit [`HeldAppender::flush`] gets it onto the disk. Nothing is lost while memory lasts:
//! past [`HeldAppender::HOLD_LIMIT`] bytes the oldest held records are dropped and counted.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

pub struct HeldAppender {
    file: File,
    /// The file's length after the last whole record: where a failed write is cut back to.
    len: u64,
    held: VecDeque<Vec<u8>>,
    held_bytes: usize,
    dropped: u64,
    /// A failed write could not be cut back either: part of a record may end the file.
    torn: bool,
}

impl HeldAppender {
    /// Enough for minutes of a busy agent while the operator frees space.
    pub const HOLD_LIMIT: usize = 64 << 20;

    pub fn open(path: &Path) -> io::Result<HeldAppender> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(HeldAppender {
            file,
            len,
            held: VecDeque::new(),
            held_bytes: 0,
            dropped: 0,
            torn: false,
        })
    }

    /// The file's length after the last whole record written.
    pub fn written_len(&self) -> u64 {
        self.len
    }

    /// Appends `record` after whatever is held. `Err` means it is held (with everything
    /// before it), not lost.
    pub fn append(&mut self, record: Vec<u8>) -> io::Result<()> {
        self.held_bytes += record.len();
        self.held.push_back(record);
        while self.held_bytes > Self::HOLD_LIMIT && self.held.len() > 1 {
            if let Some(old) = self.held.pop_front() {
                self.held_bytes -= old.len();
                // A record may be a batch of lines (a journal's) or a chunk of output.
                let lines = old.iter().filter(|&&b| b == b'\n').count().max(1);
                self.dropped += lines as u64;
            }
        }
        self.flush()
    }

    /// [`HeldAppender::append`] for a borrowed record: copied only when it must be held.
    pub fn append_bytes(&mut self, record: &[u8]) -> io::Result<()> {
        if self.held.is_empty() && !self.torn {
            match self.file.write_all(record) {
                Ok(()) => {
                    self.len += record.len() as u64;
                    return Ok(());
                }
                Err(_) => self.cut_back(),
            }
        }
        self.append(record.to_vec())
    }

    /// Writes what is held, oldest first, stopping at the first failure.
    pub fn flush(&mut self) -> io::Result<()> {
        self.mend()?;
        while let Some(record) = self.held.front() {
            if let Err(e) = self.file.write_all(record) {
                self.cut_back();
                return Err(e);
            }
            self.len += record.len() as u64;
            self.held_bytes -= record.len();
            self.held.pop_front();
        }
        Ok(())
    }

    /// Part of a record may be on disk after a failed write: cut it off, so the next write
    /// starts at a record boundary.
    fn cut_back(&mut self) {
        if self.file.set_len(self.len).is_err() {
            self.torn = true;
        }
    }

    /// Before writing after a cut that failed: cut again, or, when the disk still refuses,
    /// end the fragment with a newline so the next record starts a line of its own (readers
    /// skip the fragment as one malformed line).
    fn mend(&mut self) -> io::Result<()> {
        if !self.torn {
            return Ok(());
        }
        if self.file.set_len(self.len).is_err() {
            self.file.write_all(b"\n")?;
            self.len = self.file.metadata()?.len();
        }
        self.torn = false;
        Ok(())
    }

    /// Records waiting for the disk.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Lines given up because too much was held (a record with no newline counts as one).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_cut_back_held_and_written_later_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let mut log = HeldAppender::open(&path).unwrap();
        log.append(b"one\n".to_vec()).unwrap();
        // /dev/full fails every write with ENOSPC: swap it in as the file for a while.
        let real = std::mem::replace(
            &mut log.file,
            OpenOptions::new().write(true).open("/dev/full").unwrap(),
        );
        let err = log.append(b"two\n".to_vec()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(log.append(b"three\n".to_vec()).is_err());
        assert_eq!(log.held(), 2);
        log.file = real;
        log.flush().unwrap();
        assert_eq!(log.held(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
        assert_eq!(log.dropped(), 0);
    }
}
