//! Follows append-only JSONL files (a session's journals) and hands over each complete line
//! exactly once, in file order.
//!
//! One `notify` watcher on the directories (never on the files, which may be replaced); every
//! notification means "read to EOF now". Each file keeps its own offset, inode and partial
//! line; truncation (`len < offset`) and replacement (a new inode) are detected; a rescan flag
//! re-reads everything; and a slow poll catches whatever notifications miss.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::agents::{Frame, LineFramer};

/// Default safety-net poll: slow, because notifications do the real work.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailEvent {
    /// A complete line, without its newline.
    Line { path: PathBuf, line: Vec<u8> },
    /// A line over the size limit was skipped.
    Oversize { path: PathBuf, bytes: usize },
    /// The file shrank: it is read again from the start.
    Truncated { path: PathBuf },
    /// Another file now has this name: the old one was read to its end first.
    Replaced { path: PathBuf },
}

/// Which files to follow: every file in `dirs` whose name passes `accept`.
pub struct TailSpec {
    pub dirs: Vec<PathBuf>,
    pub accept: fn(&Path) -> bool,
    pub poll: Duration,
    /// For files that exist at the start: begin this many bytes before their end (at the next
    /// whole line) rather than at their start, so a long history is not read first.
    pub backlog: Option<u64>,
}

/// Accepts `*.jsonl`.
pub fn jsonl_files(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "jsonl")
}

/// Reading state of one followed file.
struct FileTail {
    path: PathBuf,
    file: Option<File>,
    identity: Option<(u64, u64)>,
    offset: u64,
    framer: LineFramer,
    /// The first bytes read are the end of a line begun before the offset: drop them.
    skip_partial: bool,
}

impl FileTail {
    fn new(path: PathBuf) -> Self {
        FileTail {
            path,
            file: None,
            identity: None,
            offset: 0,
            framer: LineFramer::default(),
            skip_partial: false,
        }
    }

    /// Starts `backlog` bytes before the end, dropping the partial line that lands in.
    fn from_end(path: PathBuf, backlog: u64) -> Self {
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        let mut tail = FileTail::new(path);
        if len > backlog {
            tail.offset = len - backlog;
            tail.skip_partial = true;
        }
        tail
    }

    /// Reads whatever is new, handling replacement and truncation first.
    fn read_new(&mut self, sink: &mut dyn FnMut(TailEvent)) {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return; // Not there (yet, or any more): nothing to read.
        };
        let identity = (meta.dev(), meta.ino());
        if self.identity.is_some_and(|id| id != identity) {
            // Finish the old file first: lines written before the rename still count.
            self.read_to_end(sink);
            self.framer.finish(|f| emit(&self.path, f, sink));
            sink(TailEvent::Replaced {
                path: self.path.clone(),
            });
            self.file = None;
            self.offset = 0;
            self.framer = LineFramer::default();
        }
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(file) => {
                    self.file = Some(file);
                    self.identity = Some(identity);
                }
                Err(_) => return,
            }
        }
        if meta.len() < self.offset {
            sink(TailEvent::Truncated {
                path: self.path.clone(),
            });
            self.offset = 0;
            self.framer = LineFramer::default();
        }
        self.read_to_end(sink);
    }

    fn read_to_end(&mut self, sink: &mut dyn FnMut(TailEvent)) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut buf = [0u8; 64 * 1024];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.offset += n as u64;
                    let mut chunk = &buf[..n];
                    if self.skip_partial {
                        match chunk.iter().position(|&b| b == b'\n') {
                            Some(i) => {
                                chunk = &chunk[i + 1..];
                                self.skip_partial = false;
                            }
                            None => continue,
                        }
                    }
                    let path = &self.path;
                    self.framer.push(chunk, |f| emit(path, f, sink));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
}

fn emit(path: &Path, frame: Frame<'_>, sink: &mut dyn FnMut(TailEvent)) {
    match frame {
        Frame::Line(line) => {
            let line = crate::event::trim_line_end(line);
            if !line.is_empty() {
                sink(TailEvent::Line {
                    path: path.to_path_buf(),
                    line: line.to_vec(),
                });
            }
        }
        Frame::Oversize { bytes } => sink(TailEvent::Oversize {
            path: path.to_path_buf(),
            bytes,
        }),
    }
}

/// All followed files.
struct TailSet {
    spec: TailSpec,
    files: BTreeMap<PathBuf, FileTail>,
    /// True during the first pass: only files present then start from their backlog.
    starting: bool,
}

impl TailSet {
    /// Discovers new files and reads every file: the start, a rescan, the safety-net poll.
    fn read_all(&mut self, sink: &mut dyn FnMut(TailEvent)) {
        for dir in &self.spec.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for path in entries.filter_map(Result::ok).map(|e| e.path()) {
                if (self.spec.accept)(&path) && !self.files.contains_key(&path) {
                    let tail = match self.spec.backlog.filter(|_| self.starting) {
                        Some(backlog) => FileTail::from_end(path.clone(), backlog),
                        None => FileTail::new(path.clone()),
                    };
                    self.files.insert(path, tail);
                }
            }
        }
        for tail in self.files.values_mut() {
            tail.read_new(sink);
        }
        self.starting = false;
    }

    fn read_paths(&mut self, paths: &BTreeSet<PathBuf>, sink: &mut dyn FnMut(TailEvent)) {
        for path in paths {
            if !(self.spec.accept)(path) || !self.spec.dirs.iter().any(|d| path.parent() == Some(d))
            {
                continue;
            }
            self.files
                .entry(path.clone())
                .or_insert_with(|| FileTail::new(path.clone()))
                .read_new(sink);
        }
    }
}

/// Follows every journal of a session (the coordinator's and each worker's) and hands over
/// each line that is an event. `backlog` starts existing journals near their end.
pub fn follow_session(
    session: &super::SessionDir,
    backlog: Option<u64>,
    mut on_event: impl FnMut(crate::event::AgentEvent) + Send + 'static,
) -> notify::Result<Tailer> {
    let spec = TailSpec {
        dirs: vec![session.path.clone(), session.events_dir()],
        accept: jsonl_files,
        poll: DEFAULT_POLL,
        backlog,
    };
    let mut names = crate::event::SharedNames::default();
    Tailer::spawn(spec, move |e| {
        if let TailEvent::Line { line, .. } = e
            && let Ok(event) = crate::event::AgentEvent::from_line(&line, &mut names)
        {
            on_event(event);
        }
    })
}

enum Wake {
    Fs(notify::Result<notify::Event>),
    Stop,
}

/// The running follower. Dropping it (or `stop`) ends its thread.
pub struct Tailer {
    wake: Sender<Wake>,
    thread: Option<JoinHandle<()>>,
}

impl Tailer {
    /// Starts following; `sink` gets every event on the tailer's own thread. Files that exist
    /// now are read from their start.
    pub fn spawn(
        mut spec: TailSpec,
        mut sink: impl FnMut(TailEvent) + Send + 'static,
    ) -> notify::Result<Tailer> {
        // Notifications name files by absolute path; relative directories would never match.
        for dir in &mut spec.dirs {
            if let Ok(absolute) = std::fs::canonicalize(&*dir) {
                *dir = absolute;
            }
        }
        let (wake_tx, wake_rx) = mpsc::channel::<Wake>();
        let fs_tx = wake_tx.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            // Never block in notify's thread: hand over and return.
            let _ = fs_tx.send(Wake::Fs(event));
        })?;
        // Watch first, then read: whatever is appended in between is seen by both, never by
        // neither, and offsets make reading twice harmless.
        for dir in &spec.dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        let poll = spec.poll;
        let mut set = TailSet {
            spec,
            files: BTreeMap::new(),
            starting: true,
        };
        let thread = thread::Builder::new()
            .name("jsonl-tailer".into())
            .spawn(move || {
                let _watcher = watcher; // Lives as long as the loop.
                set.read_all(&mut sink);
                let mut last_full_read = Instant::now();
                loop {
                    // The safety net runs on time, even while notifications keep coming.
                    if last_full_read.elapsed() >= poll {
                        set.read_all(&mut sink);
                        last_full_read = Instant::now();
                    }
                    let first =
                        match wake_rx.recv_timeout(poll.saturating_sub(last_full_read.elapsed())) {
                            Ok(Wake::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                            Ok(wake) => wake,
                            Err(RecvTimeoutError::Timeout) => continue,
                        };
                    // Take every waiting notification before reading: one read serves many.
                    let mut paths = BTreeSet::new();
                    let mut rescan = false;
                    for wake in std::iter::once(first).chain(wake_rx.try_iter()) {
                        match wake {
                            Wake::Stop => return,
                            Wake::Fs(Ok(event)) if !event.need_rescan() => {
                                paths.extend(event.paths)
                            }
                            Wake::Fs(_) => rescan = true,
                        }
                    }
                    if rescan {
                        set.read_all(&mut sink);
                    } else {
                        set.read_paths(&paths, &mut sink);
                    }
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Tailer {
            wake: wake_tx,
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(tail: &mut FileTail) -> Vec<TailEvent> {
        let mut out = Vec::new();
        tail.read_new(&mut |e| out.push(e));
        out
    }
    fn line(path: &Path, text: &str) -> TailEvent {
        TailEvent::Line {
            path: path.to_path_buf(),
            line: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_rescan_discovers_new_files_and_reads_only_what_is_new() {
        // The same pass serves notify's rescan flag and the safety-net poll.
        let dir = tempfile::tempdir().unwrap();
        let spec = TailSpec {
            dirs: vec![dir.path().to_path_buf()],
            accept: jsonl_files,
            poll: DEFAULT_POLL,
            backlog: None,
        };
        let mut set = TailSet {
            spec,
            files: BTreeMap::new(),
            starting: true,
        };
        let a = dir.path().join("a.jsonl");
        std::fs::write(&a, b"1\n").unwrap();
        std::fs::write(dir.path().join("skip.txt"), b"x\n").unwrap();
        let mut out = Vec::new();
        set.read_all(&mut |e| out.push(e));
        assert_eq!(out, vec![line(&a, "1")]);
        let b = dir.path().join("b.jsonl");
        std::fs::write(&b, b"2\n").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&a)
            .unwrap()
            .write_all(b"3\n")
            .unwrap();
        out.clear();
        set.read_all(&mut |e| out.push(e));
        assert_eq!(out, vec![line(&a, "3"), line(&b, "2")]);
        out.clear();
        set.read_all(&mut |e| out.push(e));
        assert!(out.is_empty(), "nothing twice");
    }

    #[test]
    fn a_backlog_starts_near_the_end_at_a_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        let text: String = (0..100).map(|n| format!("line {n:03}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let spec = TailSpec {
            dirs: vec![dir.path().to_path_buf()],
            accept: jsonl_files,
            poll: DEFAULT_POLL,
            backlog: Some(25),
        };
        let mut set = TailSet {
            spec,
            files: BTreeMap::new(),
            starting: true,
        };
        let mut out = Vec::new();
        set.read_all(&mut |e| out.push(e));
        assert_eq!(out, vec![line(&path, "line 098"), line(&path, "line 099")]);
        let late = dir.path().join("late.jsonl");
        std::fs::write(&late, b"first\nsecond\n").unwrap();
        out.clear();
        set.read_all(&mut |e| out.push(e));
        assert_eq!(
            out,
            vec![line(&late, "first"), line(&late, "second")],
            "files created later are read whole"
        );
    }

    #[test]
    fn a_file_is_read_incrementally_with_truncation_and_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.jsonl");
        let mut tail = FileTail::new(path.clone());
        assert!(
            collect(&mut tail).is_empty(),
            "a missing file is not an error"
        );
        let mut f = File::create(&path).unwrap();
        f.write_all(b"one\ntw").unwrap();
        assert_eq!(collect(&mut tail), vec![line(&path, "one")]);
        f.write_all(b"o\r\n").unwrap();
        assert_eq!(collect(&mut tail), vec![line(&path, "two")]);
        f.set_len(0).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"x\n").unwrap();
        assert_eq!(
            collect(&mut tail),
            vec![
                TailEvent::Truncated { path: path.clone() },
                line(&path, "x")
            ]
        );
        // A writer renames a new file over the old one after one last append to the old.
        let fresh = dir.path().join("w.tmp");
        std::fs::write(&fresh, b"new\n").unwrap();
        f.write_all(b"last-old\n").unwrap();
        std::fs::rename(&fresh, &path).unwrap();
        assert_eq!(
            collect(&mut tail),
            vec![
                line(&path, "last-old"),
                TailEvent::Replaced { path: path.clone() },
                line(&path, "new")
            ]
        );
    }
}
