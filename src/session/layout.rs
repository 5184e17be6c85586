//! The workspace and session directory layout (DESIGN.md "Three processes, one directory"):
//! where every file of a session lives, and creating a session with a unique id.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::names::{BadName, check_name};
use crate::timestamp::Timestamp;

/// Environment variables naming the workspace root: ours, and the seeds' (seed 003).
pub const WORKSPACE_ENV: &str = "ORCHESTRATE_WORKSPACE";
pub const SEED_WORKSPACE_ENV: &str = "ORCHESTRATOR_WORKSPACE";
pub const DEFAULT_WORKSPACE: &str = "workspace";

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("cannot create {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
    #[error("no session {id:?} in {}", workspace.display())]
    NoSuchSession { id: String, workspace: PathBuf },
    #[error("cannot read {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    BadName(#[from] BadName),
}

/// The root that holds `orchestrate.db` and one directory per session.
#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Where sessions live, so that they are found from any directory: `--workspace`, else
    /// `ORCHESTRATE_WORKSPACE` (or the seeds' `ORCHESTRATOR_WORKSPACE`), else the nearest
    /// `workspace/` holding an `orchestrate.db` in the current directory or above it (a
    /// worker's run directory finds its own session's), else the user's data directory
    /// (`$XDG_DATA_HOME/orchestrate/workspace`, `~/.local/share/orchestrate/workspace`), else
    /// `./workspace`.
    pub fn resolve(
        flag: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Workspace {
        let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(root) = flag
            .map(Path::to_path_buf)
            .or_else(|| set(WORKSPACE_ENV))
            .or_else(|| set(SEED_WORKSPACE_ENV))
        {
            return Workspace { root };
        }
        for dir in cwd.ancestors() {
            if dir.join("orchestrate.db").is_file()
                && dir.file_name().is_some_and(|n| n == DEFAULT_WORKSPACE)
            {
                return Workspace::at(dir);
            }
            let candidate = dir.join(DEFAULT_WORKSPACE);
            if candidate.join("orchestrate.db").is_file() {
                return Workspace::at(candidate);
            }
        }
        let data =
            set("XDG_DATA_HOME").or_else(|| set("HOME").map(|h| h.join(".local").join("share")));
        match data {
            Some(dir) => Workspace::at(dir.join("orchestrate").join(DEFAULT_WORKSPACE)),
            None => Workspace::at(DEFAULT_WORKSPACE),
        }
    }

    pub fn at(root: impl Into<PathBuf>) -> Workspace {
        Workspace { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn db_path(&self) -> PathBuf {
        self.root.join("orchestrate.db")
    }

    /// Creates `<root>/orch_YYYYMMDD_HHMMSS_xxxx`, its subdirectories and `session.json`. The
    /// random suffix keeps ids (and so branch names, `orchestrate/<id>/<task>`) apart across
    /// workspaces sharing a target; within one workspace a taken id just draws again.
    pub fn create_session(
        &self,
        prompt: &str,
        target: &Path,
        config: Value,
        now: Timestamp,
    ) -> Result<SessionDir, LayoutError> {
        fs::create_dir_all(&self.root).map_err(|source| LayoutError::Create {
            path: self.root.clone(),
            source,
        })?;
        let base = format!("orch_{}", now.compact());
        let mut draw = 0u64;
        let session = loop {
            let id = format!("{base}_{:04x}", random_u16(draw));
            let path = self.root.join(&id);
            // create_dir (not _all) fails if the directory exists: the id is ours alone.
            match fs::create_dir(&path) {
                Ok(()) => break SessionDir { id, path },
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => draw += 1,
                Err(source) => return Err(LayoutError::Create { path, source }),
            }
        };
        let filled = session.fill(prompt, target, config, now);
        if filled.is_err() {
            // A full or read-only disk: no half-created session is left behind.
            let _ = fs::remove_dir_all(&session.path);
        }
        filled.map(|()| session)
    }

    pub fn open_session(&self, id: &str) -> Result<SessionDir, LayoutError> {
        check_name("session", id)?;
        let path = self.root.join(id);
        if !path.join("session.json").is_file() {
            return Err(LayoutError::NoSuchSession {
                id: id.to_string(),
                workspace: self.root.clone(),
            });
        }
        Ok(SessionDir {
            id: id.to_string(),
            path,
        })
    }

    /// Session ids, oldest first (ids sort by creation time).
    pub fn session_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().join("session.json").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| name.starts_with("orch_"))
            .collect();
        ids.sort();
        ids
    }
}

/// What `session.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub prompt: String,
    pub target: PathBuf,
    pub created_at: Timestamp,
    /// The configuration the session was started with, for `resume`.
    pub config: Value,
}

/// One session's directory and the paths inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionDir {
    pub id: String,
    pub path: PathBuf,
}

impl SessionDir {
    /// The subdirectories and `session.json` of a new session.
    fn fill(
        &self,
        prompt: &str,
        target: &Path,
        config: Value,
        now: Timestamp,
    ) -> Result<(), LayoutError> {
        for dir in [
            self.events_dir(),
            self.raw_dir(),
            self.runs_dir(),
            self.reviews_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(|source| LayoutError::Create {
                path: dir.clone(),
                source,
            })?;
        }
        let info = SessionInfo {
            id: self.id.clone(),
            prompt: prompt.to_string(),
            target: target.to_path_buf(),
            created_at: now,
            config,
        };
        write_atomically(
            &self.info_path(),
            &format!("{:#}\n", serde_json::to_value(&info).unwrap_or(Value::Null)),
        )
        .map_err(|source| LayoutError::Create {
            path: self.info_path(),
            source,
        })
    }

    pub fn info_path(&self) -> PathBuf {
        self.path.join("session.json")
    }
    pub fn lock_path(&self) -> PathBuf {
        self.path.join("coordinator.lock")
    }
    /// The meta layer's settings as the coordinator runs with them, for its workers' MCP
    /// servers (`orchestrate mcp --config`).
    pub fn meta_settings_path(&self) -> PathBuf {
        self.path.join("meta.toml")
    }
    pub fn log_path(&self) -> PathBuf {
        self.path.join("coordinator.log")
    }
    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }
    pub fn orchestrator_journal(&self) -> PathBuf {
        self.path.join("orchestrator.jsonl")
    }
    pub fn events_dir(&self) -> PathBuf {
        self.path.join("events")
    }
    pub fn events_path(&self, worker: &str) -> PathBuf {
        self.events_dir().join(format!("{worker}.jsonl"))
    }
    /// What each worker's journal adds up to (see `worker::summary`).
    pub fn summary_path(&self, worker: &str) -> PathBuf {
        self.path.join("summaries").join(format!("{worker}.json"))
    }
    pub fn raw_dir(&self) -> PathBuf {
        self.path.join("raw")
    }
    pub fn raw_path(&self, worker: &str) -> PathBuf {
        self.raw_dir().join(format!("{worker}.log"))
    }
    pub fn runs_dir(&self) -> PathBuf {
        self.path.join("runs")
    }
    pub fn run_dir(&self, task: &str) -> PathBuf {
        self.runs_dir().join(task)
    }
    pub fn reviews_dir(&self) -> PathBuf {
        self.path.join("reviews")
    }
    /// A worker's private files: launch settings and, under the stub model, its CLI's home.
    pub fn state_dir(&self, worker: &str) -> PathBuf {
        self.path.join("state").join(worker)
    }
    /// The stub model's request log, when the session runs against it.
    pub fn stub_log_path(&self) -> PathBuf {
        self.path.join("stub-model.jsonl")
    }

    pub fn read_info(&self) -> Result<SessionInfo, LayoutError> {
        let path = self.info_path();
        let text = fs::read_to_string(&path).map_err(|e| LayoutError::Read {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| LayoutError::Read {
            path,
            reason: e.to_string(),
        })
    }
}

/// Sixteen random bits from the kernel; should /dev/urandom be unreadable, the clock, the pid
/// and `draw` still make successive draws differ.
fn random_u16(draw: u64) -> u16 {
    use std::io::Read;
    let mut bytes = [0u8; 2];
    if fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok()
    {
        return u16::from_le_bytes(bytes);
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ u64::from(std::process::id()) << 20 ^ draw.wrapping_mul(0x9E37_79B9))
        .wrapping_mul(0x2545_F491_4F6C_DD1D);
    (mixed >> 48) as u16
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new file,
/// never half of one.
pub fn write_atomically(path: &Path, contents: &str) -> io::Result<()> {
    write_atomically_with_mode(path, contents, 0o666)
}

/// As `write_atomically`, for a file only its owner may read (it may carry a password).
pub fn write_privately(path: &Path, contents: &str) -> io::Result<()> {
    write_atomically_with_mode(path, contents, 0o600)
}

/// The temporary file is created with `mode` (less the umask), so the file never has wider
/// permissions than asked, not even for a moment.
fn write_atomically_with_mode(path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_workspace_is_found_from_any_directory() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        let deep = project.join("workspace/orch_x/runs/a/src");
        fs::create_dir_all(&deep).unwrap();
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let home = env(&[("HOME", "/home/u")]);
        let resolve = |flag, cwd: &Path| Workspace::resolve(flag, home, cwd);
        // Nothing there yet: the user's data directory.
        assert_eq!(
            resolve(None, &deep).root(),
            Path::new("/home/u/.local/share/orchestrate/workspace")
        );
        fs::write(project.join("workspace/orchestrate.db"), "").unwrap();
        for cwd in [&project, &deep, &project.join("workspace")] {
            assert_eq!(
                resolve(None, cwd).root(),
                project.join("workspace"),
                "{cwd:?}"
            );
        }
        let flag = Path::new("/f");
        assert_eq!(resolve(Some(flag), &deep).root(), flag);
        let both = env(&[
            ("ORCHESTRATE_WORKSPACE", "/ours"),
            ("ORCHESTRATOR_WORKSPACE", "/seed"),
        ]);
        assert_eq!(
            Workspace::resolve(None, both, &deep).root(),
            Path::new("/ours")
        );
        let seed = env(&[("ORCHESTRATOR_WORKSPACE", "/seed")]);
        assert_eq!(
            Workspace::resolve(None, seed, &deep).root(),
            Path::new("/seed")
        );
        let xdg = env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/home/u")]);
        assert_eq!(
            Workspace::resolve(None, xdg, dir.path()).root(),
            Path::new("/x/orchestrate/workspace")
        );
        assert_eq!(
            Workspace::resolve(None, env(&[]), dir.path()).root(),
            Path::new("workspace")
        );
    }

    #[test]
    fn sessions_in_the_same_second_get_distinct_ids_and_the_full_layout() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::at(dir.path().join("ws"));
        let now = Timestamp::from_secs(1_795_284_000);
        let a = ws
            .create_session("goal", Path::new("/t"), json!({}), now)
            .unwrap();
        let b = ws
            .create_session("goal", Path::new("/t"), json!({}), now)
            .unwrap();
        assert!(a.id.starts_with("orch_20261121_180000_"), "{}", a.id);
        assert!(b.id.starts_with("orch_20261121_180000_"), "{}", b.id);
        assert_ne!(a.id, b.id);
        assert_eq!(a.id.len(), "orch_20261121_180000_a3f9".len());
        for sub in ["events", "raw", "runs", "reviews"] {
            assert!(a.path.join(sub).is_dir(), "{sub}");
        }
        let info = a.read_info().unwrap();
        assert_eq!((info.prompt.as_str(), info.created_at), ("goal", now));
        let mut both = vec![a.id.clone(), b.id.clone()];
        both.sort();
        assert_eq!(ws.session_ids(), both);
        assert_eq!(ws.open_session(&a.id).unwrap(), a);
        let missing = ws.open_session("orch_nope").unwrap_err().to_string();
        assert!(
            missing.starts_with("no session \"orch_nope\" in"),
            "{missing}"
        );
        assert!(ws.open_session("../x").is_err());
        // `..` would name the workspace's parent, which may well hold a session.json.
        fs::write(dir.path().join("session.json"), "{}").unwrap();
        let parent = ws.open_session("..").unwrap_err().to_string();
        assert!(parent.contains("not a valid name"), "{parent}");
    }
}
