//! Path leases: before a worker's file tool writes, the sandbox hook's question comes here,
//! and the worker takes (or extends) its lease on the path, a meta lock named
//! `SESSION:path-in-its-checkout`. A path another worker holds goes to the conflict resolver
//! (type `file_creation`, the holder first): the holder keeps it unless the matrix ranks the
//! writer higher (or the writer is the security auditor), and the loser's write is denied
//! with a reason naming the holder. A task's leases are released when its attempt ends.
//!
//! The workers' MCP server (`orchestrate mcp --namespace SESSION`) names the same locks, so
//! an agent that took `nexus_lock` on a file before writing it holds the lease its write
//! needs. Every grant, denial, resolution and release is a `decision` event in the journal
//! (phases `lease_granted`, `lease_denied`, `conflict_resolved`, `lease_released`).
//!
//! Leases are advisory plumbing around the real guard, the sandbox: when the meta store
//! cannot be reached, writes go on and the operator is told once.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;

use super::Coordinator;
use super::tasks::worker_name;
use crate::agents::{Draft, McpServer, ORCH_MCP_SERVER};
use crate::event::EventType;
use crate::meta::conflicts::{Contestant, Resolution};
use crate::meta::locks::{Lock, LockRefusal, namespaced};
use crate::meta::{Meta, MetaError};
use crate::safety::ToolCall;
use crate::safety::paths::lease_name;

/// The conflict type a contended path is resolved as.
const PATH_CONFLICT: &str = "file_creation";

/// How long writes go unleased after the store failed before it is tried again: a store that
/// is down (Redis restarting) would otherwise hold every write for its timeouts.
const LEASE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

/// The coordinator's side of the leases.
#[derive(Default)]
pub(super) struct Leases {
    meta: Option<Meta>,
    /// Why the store cannot be used, once said.
    unavailable: Option<String>,
    /// Grants journaled, by (worker, resource): an extension of the same token says nothing.
    granted: BTreeMap<(String, String), u64>,
    /// While the store is failing: when to try it again.
    retry_at: Option<std::time::Instant>,
}

impl Leases {
    /// Leases over `meta`, or none (with why) when the store could not be opened.
    pub(super) fn new(meta: Result<Meta, String>) -> Leases {
        match meta {
            Ok(meta) => Leases {
                meta: Some(meta),
                ..Leases::default()
            },
            Err(why) => Leases {
                unavailable: Some(why),
                ..Leases::default()
            },
        }
    }
}

/// The repository-relative paths a call writes, as the worker in `run_dir` names them: where
/// each write really lands (the sandbox's own resolution), inside the checkout.
fn written_paths(call: &ToolCall, run_dir: &Path) -> Vec<String> {
    match call {
        ToolCall::Write { path, cwd } => vec![lease_name(path, cwd, run_dir)],
        ToolCall::Patch { patch, cwd } => crate::safety::policy::patch_paths(patch)
            .iter()
            .map(|p| lease_name(Path::new(p), cwd, run_dir))
            .collect(),
        ToolCall::Shell { command, cwd } => crate::safety::policy::shell_writes(command, cwd)
            .iter()
            .map(|(p, dir)| lease_name(Path::new(p), dir, run_dir))
            .collect(),
        ToolCall::Other => Vec::new(),
    }
}

impl Coordinator {
    /// The MCP server a worker gets: the meta layer bound to it (holder), its session
    /// (namespace) and its checkout (root), with the coordinator's own meta settings.
    pub(super) fn mcp_server(&mut self, worker: &str, checkout: &Path) -> Option<McpServer> {
        if !self.settings.config.meta.worker_mcp {
            return None;
        }
        let workspace = self.session.path.parent()?.display().to_string();
        let settings = self.session.meta_settings_path();
        // The settings are the session's, fixed for its life: written once, by the first
        // worker's launch (or a previous coordinator's).
        if let Err(e) = self.write_meta_settings_once(&settings) {
            self.record(
                None,
                Draft::new(
                    EventType::Finding,
                    format!(
                        "{worker} runs without the orch MCP server: cannot write {}: {e}",
                        settings.display()
                    ),
                )
                .with("phase", "mcp_unavailable")
                .with("severity", "warning"),
            );
            return None;
        }
        Some(McpServer {
            name: ORCH_MCP_SERVER.to_string(),
            command: self.exe.display().to_string(),
            args: vec![
                "--workspace".into(),
                workspace,
                "mcp".into(),
                "--holder".into(),
                worker.to_string(),
                "--namespace".into(),
                self.session.id.clone(),
                "--root".into(),
                checkout.display().to_string(),
                "--config".into(),
                settings.display().to_string(),
            ],
            env: Vec::new(),
            exclusive: !self.settings.config.meta.operator_mcp,
        })
    }

    /// `[meta]` and `[router]` as this coordinator runs with them, unless already written
    /// (the store's URL may carry a password: the file is the operator's alone).
    fn write_meta_settings_once(&self, path: &Path) -> std::io::Result<()> {
        #[derive(serde::Serialize)]
        struct MetaSettings<'a> {
            router: &'a crate::meta::router::RouterConfig,
            meta: &'a crate::meta::config::MetaConfig,
        }
        if path.is_file() {
            return Ok(());
        }
        let config = &self.settings.config;
        let text = toml::to_string(&MetaSettings {
            router: &config.router,
            meta: &config.meta,
        })
        .map_err(std::io::Error::other)?;
        crate::session::layout::write_privately(path, &text)
    }

    /// Takes or extends `worker`'s leases on the paths `call` writes. `Err` is the reason
    /// the write is denied: another worker holds one of them and keeps it.
    pub(super) fn lease_for_write(
        &mut self,
        worker: &str,
        task: Option<&str>,
        call: &ToolCall,
    ) -> Result<(), String> {
        let Some(task_id) = task else { return Ok(()) };
        let paths = written_paths(call, &self.session.run_dir(task_id));
        for path in paths {
            let resource = namespaced(&self.session.id, &path);
            self.lease_one(worker, task_id, &path, &resource)?;
        }
        Ok(())
    }

    fn lease_one(
        &mut self,
        worker: &str,
        task: &str,
        path: &str,
        resource: &str,
    ) -> Result<(), String> {
        // A store that just failed is left alone for a while: every write would wait on it.
        if self.leases.meta.is_none()
            || self
                .leases
                .retry_at
                .is_some_and(|at| std::time::Instant::now() < at)
        {
            return Ok(());
        }
        // Twice at most: a writer that outranks the holder takes the lease on the second.
        for _ in 0..2 {
            let meta = self.leases.meta.as_ref().expect("checked above");
            let holder = match meta.acquire(resource, worker, None) {
                Ok(Ok(lock)) => {
                    self.leases_available(Some(task));
                    self.granted(worker, task, path, resource, &lock);
                    return Ok(());
                }
                Ok(Err(LockRefusal::HeldByOther { holder, .. })) => holder,
                Ok(Err(other)) => return Err(other.to_string()),
                Err(MetaError::BadInput(why)) => {
                    self.record(
                        Some(task),
                        Draft::new(
                            EventType::Finding,
                            format!("{worker} writes {path} unleased: {why}"),
                        )
                        .with("phase", "lease_skipped")
                        .with("worker", worker.to_string())
                        .with("severity", "warning"),
                    );
                    return Ok(());
                }
                Err(e) => {
                    self.leases_unavailable(Some(task), &e.to_string());
                    return Ok(());
                }
            };
            let resolution = match self.contest(&holder, worker, path, resource) {
                Ok(r) => r,
                Err(e) => {
                    self.leases_unavailable(Some(task), &e.to_string());
                    return Ok(());
                }
            };
            self.record(
                Some(task),
                Draft::new(
                    EventType::Decision,
                    format!(
                        "{path}: {} wins the lease over {} ({})",
                        resolution.winner,
                        resolution.losers.join(", "),
                        resolution.rule
                    ),
                )
                .with("phase", "conflict_resolved")
                .with("rule", "lease")
                .with("action", "resolve")
                .with("conflict_type", PATH_CONFLICT)
                .with("winner", resolution.winner.clone())
                .with("losers", resolution.losers.clone())
                .with("path", path.to_string())
                .with("reason", resolution.rule.clone()),
            );
            if resolution.winner != worker {
                return Err(self.denied(worker, task, path, &holder, &resolution.rule));
            }
            // The writer outranks the holder: the lease moves to it.
            if let Some(meta) = &self.leases.meta {
                let _ = meta.release(resource, &holder);
            }
            self.leases
                .granted
                .remove(&(holder.clone(), resource.to_string()));
            self.record(
                Some(task),
                Draft::new(
                    EventType::Decision,
                    format!("{holder} loses its lease on {path} to {worker}"),
                )
                .with("phase", "lease_released")
                .with("rule", "lease")
                .with("action", "revoke")
                .with("worker", holder.clone())
                .with("paths", vec![path.to_string()]),
            );
        }
        // Someone else took it between the release and the second try.
        let holder = self
            .leases
            .meta
            .as_ref()
            .and_then(|meta| meta.check(resource).ok())
            .and_then(|state| state.holder)
            .unwrap_or_else(|| "another worker".into());
        Err(self.denied(worker, task, path, &holder, "it was taken again at once"))
    }

    /// Resolves `holder` against `writer` on a path: the holder first, so an unranked pair
    /// leaves it with the holder; each worker ranked as the router target its task's prompt
    /// goes to, so the matrix of targets (`bolt > bmad > archon` for files) decides.
    fn contest(
        &self,
        holder: &str,
        writer: &str,
        path: &str,
        resource: &str,
    ) -> Result<Resolution, MetaError> {
        let meta = self.leases.meta.as_ref().expect("leases are on");
        let contestant = |name: &str| Contestant {
            name: name.to_string(),
            ranked_as: self
                .current_plan
                .as_ref()
                .and_then(|plan| plan.tasks.iter().find(|t| worker_name(t) == name))
                .and_then(|task| meta.target_of(&task.prompt)),
        };
        let context = json!({"resource": resource, "path": path, "session": self.session.id});
        meta.resolve_ranked(
            PATH_CONFLICT,
            &[contestant(holder), contestant(writer)],
            &context,
        )
    }

    /// Journals a grant (once per token: an extension says nothing), and the end of any
    /// other worker's lease on the same path that lapsed unseen (its TTL passed).
    fn granted(&mut self, worker: &str, task: &str, path: &str, resource: &str, lock: &Lock) {
        let key = (worker.to_string(), resource.to_string());
        if self.leases.granted.insert(key, lock.token) == Some(lock.token) {
            return;
        }
        let lapsed: Vec<String> = self
            .leases
            .granted
            .keys()
            .filter(|(w, r)| r == resource && w != worker)
            .map(|(w, _)| w.clone())
            .collect();
        for other in lapsed {
            self.leases
                .granted
                .remove(&(other.clone(), resource.to_string()));
            self.record(
                Some(task),
                Draft::new(
                    EventType::Decision,
                    format!("{other}'s lease on {path} lapsed"),
                )
                .with("phase", "lease_released")
                .with("rule", "lease")
                .with("action", "expired")
                .with("worker", other)
                .with("paths", vec![path.to_string()]),
            );
        }
        self.record(
            Some(task),
            Draft::new(
                EventType::Decision,
                format!("{worker} holds the lease on {path} (token {})", lock.token),
            )
            .with("phase", "lease_granted")
            .with("rule", "lease")
            .with("action", "grant")
            .with("worker", worker.to_string())
            .with("path", path.to_string())
            .with("resource", resource.to_string())
            .with("token", lock.token)
            .with("expires_at", lock.expires_at.to_string()),
        );
    }

    /// Journals a denied write; the reason the agent is told.
    fn denied(&mut self, worker: &str, task: &str, path: &str, holder: &str, why: &str) -> String {
        let reason = format!(
            "{path} is leased by {holder}, another worker of this session, which keeps it ({why}); leave this file to it or wait for its task to end"
        );
        self.record(
            Some(task),
            Draft::new(
                EventType::Decision,
                format!("{worker} may not write {path}: leased by {holder}"),
            )
            .with("phase", "lease_denied")
            .with("rule", "lease")
            .with("action", "deny")
            .with("worker", worker.to_string())
            .with("holder", holder.to_string())
            .with("path", path.to_string())
            .with("reason", reason.clone()),
        );
        reason
    }

    /// On resume: the previous coordinator's workers are gone, and so are their leases.
    pub(super) fn release_leftover_leases(&mut self) {
        let Some(meta) = &self.leases.meta else {
            return;
        };
        let holders: std::collections::BTreeSet<String> = meta
            .locks(&namespaced(&self.session.id, ""))
            .map(|locks| locks.into_iter().map(|l| l.holder).collect())
            .unwrap_or_default();
        for holder in holders {
            self.release_leases(&holder, None);
        }
    }

    /// Releases every lease `worker` holds in this session (its task's attempt ended).
    pub(super) fn release_leases(&mut self, worker: &str, task: Option<&str>) {
        let Some(meta) = &self.leases.meta else {
            return;
        };
        let prefix = namespaced(&self.session.id, "");
        let held = match meta.locks(&prefix) {
            Ok(locks) => locks,
            Err(e) => {
                self.leases_unavailable(task, &e.to_string());
                return;
            }
        };
        let mut released = Vec::new();
        for lock in held.into_iter().filter(|l| l.holder == worker) {
            if matches!(meta.release(&lock.resource, worker), Ok(Ok(_))) {
                released.push(lock.resource[prefix.len()..].to_string());
            }
        }
        // Leases journaled as granted that lapsed on their own end here too, for whoever
        // follows the journal (the dashboard lists them until then).
        for (_, resource) in self.leases.granted.keys().filter(|(w, _)| w == worker) {
            let path = resource
                .strip_prefix(&prefix)
                .unwrap_or(resource)
                .to_string();
            if !released.contains(&path) {
                released.push(path);
            }
        }
        self.leases.granted.retain(|(w, _), _| w != worker);
        if !released.is_empty() {
            self.record(
                task,
                Draft::new(
                    EventType::Decision,
                    format!("{worker} released its leases: {}", released.join(", ")),
                )
                .with("phase", "lease_released")
                .with("rule", "lease")
                .with("action", "release")
                .with("worker", worker.to_string())
                .with("paths", released),
            );
        }
    }

    /// Says once that leases are off for now, and why; the store is tried again after
    /// `LEASE_RETRY`.
    fn leases_unavailable(&mut self, task: Option<&str>, why: &str) {
        self.leases.retry_at = Some(std::time::Instant::now() + LEASE_RETRY);
        if self.leases.unavailable.is_some() {
            return;
        }
        self.leases.unavailable = Some(why.to_string());
        self.record(
            task,
            Draft::new(
                EventType::Finding,
                format!(
                    "path leases are off: {why}; writes go on unleased (the store is tried again every {}s)",
                    LEASE_RETRY.as_secs()
                ),
            )
            .with("phase", "leases_unavailable")
            .with("severity", "warning"),
        );
    }

    /// Says that leases are back after they were off.
    fn leases_available(&mut self, task: Option<&str>) {
        self.leases.retry_at = None;
        if let Some(why) = self.leases.unavailable.take() {
            self.record(
                task,
                Draft::new(
                    EventType::Progress,
                    format!("path leases are on again (they were off: {why})"),
                )
                .with("phase", "leases_available"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn written_paths_are_named_inside_the_checkout() {
        let run = Path::new("/ws/s/runs/t1");
        let write = ToolCall::Write {
            path: PathBuf::from("/ws/s/runs/t1/src/./lib.rs"),
            cwd: run.to_path_buf(),
        };
        assert_eq!(written_paths(&write, run), ["src/lib.rs"]);
        let relative = ToolCall::Write {
            path: PathBuf::from("../docs/a.md"),
            cwd: run.join("src"),
        };
        assert_eq!(written_paths(&relative, run), ["docs/a.md"]);
        let outside = ToolCall::Write {
            path: PathBuf::from("/tmp/x"),
            cwd: run.to_path_buf(),
        };
        assert_eq!(written_paths(&outside, run), ["/tmp/x"]);
        let shell = |command: &str| ToolCall::Shell {
            command: command.into(),
            cwd: run.to_path_buf(),
        };
        assert!(written_paths(&shell("ls 2>/dev/null"), run).is_empty());
        assert_eq!(
            written_paths(
                &shell("cd src && echo x > lib.rs; cp a.md ../docs/b.md"),
                run
            ),
            ["src/lib.rs", "docs/b.md"]
        );
        let patch = "apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: docs/api.md\n+x\n*** End Patch\nEOF";
        assert_eq!(written_paths(&shell(patch), run), ["docs/api.md"]);
        assert!(written_paths(&shell("echo x > $OUT; mkdir -p src"), run).is_empty());
    }
}
