//! What the simulated CLIs remember between runs: their conversations. `--resume` of an unknown
//! id is refused as the real CLI refuses it, and a resumed run continues its story after the
//! tool results it already had, as a real CLI does against the stub model. One small file per
//! conversation under `$ORCHESTRATE_SIM_HOME` (default `$HOME/.orchestrate/sim`), never in the
//! agent's working directory.

use std::path::PathBuf;

use super::Host;

pub struct Sessions {
    /// `None` when there is nowhere to keep them (no home): nothing is remembered.
    dir: Option<PathBuf>,
}

impl Sessions {
    /// The conversations of `cli` on this host.
    pub fn of(host: &Host, cli: &str) -> Sessions {
        let root = host
            .env("ORCHESTRATE_SIM_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                host.env("HOME")
                    .map(|h| PathBuf::from(h).join(".orchestrate").join("sim"))
            });
        Sessions {
            dir: root.map(|r| r.join(cli)),
        }
    }

    /// How many tool results conversation `id` has had; `None` when it is unknown.
    pub fn turns_done(&self, id: &str) -> Option<usize> {
        let path = self.path(id)?;
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// The conversation saved last, for a bare `--resume`.
    pub fn latest(&self) -> Option<String> {
        let entries = std::fs::read_dir(self.dir.as_ref()?).ok()?;
        entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.file_name())))
            .max()
            .and_then(|(_, name)| name.into_string().ok())
    }

    /// Remembers that conversation `id` has had `turns_done` tool results. Best effort: a sim
    /// that cannot write its memory still runs.
    pub fn save(&self, id: &str, turns_done: usize) {
        if let (Some(dir), Some(path)) = (&self.dir, self.path(id)) {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::write(path, format!("{turns_done}\n"));
        }
    }

    /// How long ago this host first hit the usage limit named `key`, remembered from the first
    /// call on: a limit that lifts some seconds after its first hit lifts across runs, as the
    /// stub's does. `None` when there is nowhere to remember it.
    pub fn since_limit_hit(&self, key: &str) -> Option<std::time::Duration> {
        let dir = self.dir.as_ref()?.with_file_name("limits");
        let _ = std::fs::create_dir_all(&dir);
        let marker = dir.join(key);
        if !marker.exists() {
            std::fs::write(&marker, "").ok()?;
        }
        std::fs::metadata(&marker)
            .ok()?
            .modified()
            .ok()?
            .elapsed()
            .ok()
    }

    /// Ids are the sim's own UUIDs, or what an operator typed: never a path.
    fn path(&self, id: &str) -> Option<PathBuf> {
        let safe = !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        safe.then(|| self.dir.as_ref().map(|d| d.join(id)))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(home: &std::path::Path) -> Host {
        Host {
            cwd: home.to_path_buf(),
            is_root: false,
            stdin_is_tty: true,
            env: vec![("HOME".into(), home.display().to_string())],
        }
    }

    #[test]
    fn conversations_are_remembered_per_cli_and_ids_are_never_paths() {
        let dir = tempfile::tempdir().unwrap();
        let claude = Sessions::of(&host(dir.path()), "claude");
        assert_eq!(claude.turns_done("abc-1"), None);
        claude.save("abc-1", 3);
        assert_eq!(claude.turns_done("abc-1"), Some(3));
        assert_eq!(claude.latest().as_deref(), Some("abc-1"));
        assert_eq!(
            Sessions::of(&host(dir.path()), "codex").turns_done("abc-1"),
            None
        );
        claude.save("../escape", 1);
        assert_eq!(claude.turns_done("../escape"), None);
        assert!(!dir.path().join(".orchestrate/sim/escape").exists());
    }
}
