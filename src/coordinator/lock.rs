//! One coordinator per session: an exclusive `flock` on `coordinator.lock`, held for the
//! coordinator's whole life, with its pid written inside. The kernel drops the lock when the
//! process dies however it dies, so "is the lock free" is the truth about liveness.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another coordinator (pid {pid}) is already running this session")]
    Held { pid: i64 },
    #[error("cannot open {}: {source}", path.display())]
    Open {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Held while alive; released when dropped or when the process ends.
pub struct CoordinatorLock {
    _file: File,
}

impl CoordinatorLock {
    pub fn acquire(path: &Path) -> Result<CoordinatorLock, LockError> {
        let open_error = |source| LockError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(open_error)?;
        // `holder` takes the lock for an instant to look; a few tries ride over such a probe
        // so that only a live coordinator keeps another from starting.
        let mut tries = 0;
        while !try_flock(&file) {
            tries += 1;
            if tries == 25 {
                return Err(LockError::Held {
                    pid: read_pid(&mut file).unwrap_or(0),
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = std::process::id();
        file.set_len(0).map_err(open_error)?;
        file.seek(SeekFrom::Start(0)).map_err(open_error)?;
        writeln!(file, "{pid}").map_err(open_error)?;
        Ok(CoordinatorLock { _file: file })
    }
}

/// The pid of the live coordinator holding `path`, or `None` when nobody holds it.
pub fn holder(path: &Path) -> Option<i64> {
    // Read-only is enough for flock, and works on a read-only disk.
    let mut file = OpenOptions::new().read(true).open(path).ok()?;
    if try_flock(&file) {
        // Free: we took it only to look; closing the file releases it.
        return None;
    }
    Some(read_pid(&mut file).unwrap_or(0))
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a valid, open descriptor.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

fn read_pid(file: &mut File) -> Option<i64> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_the_lock_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coordinator.lock");
        assert_eq!(holder(&path), None);
        let lock = CoordinatorLock::acquire(&path).unwrap();
        assert_eq!(holder(&path), Some(i64::from(std::process::id())));
        let err = CoordinatorLock::acquire(&path).err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "another coordinator (pid {}) is already running this session",
                std::process::id()
            )
        );
        drop(lock);
        // Another test's child may hold a copy of the descriptor between its fork and exec
        // (the unit tests share this process): the lock frees once that child has exec'd.
        let freed = (0..200).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(10));
            holder(&path).is_none()
        });
        assert!(freed, "the lock is still held after its drop");
        assert!(CoordinatorLock::acquire(&path).is_ok());
    }
}
