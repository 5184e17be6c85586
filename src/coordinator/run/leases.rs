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
use crate::agents::{Draft, McpServer, ORCH_MCP_SERVER};
use crate::event::EventType;
use crate::meta::Meta;
use crate::meta::locks::{LockRefusal, namespaced};
use crate::safety::ToolCall;
use crate::safety::paths::resolve;

/// The conflict type a contended path is resolved as.
const PATH_CONFLICT: &str = "file_creation";

/// The coordinator's side of the leases.
#[derive(Default)]
pub(super) struct Leases {
    meta: Option<Meta>,
    /// Why the store cannot be used, once said.
    unavailable: Option<String>,
    /// Grants journaled, by (worker, resource): an extension of the same token says nothing.
    granted: BTreeMap<(String, String), u64>,
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
    let run_dir = resolve(run_dir, Path::new("/"));
    let relative = |path: &Path, cwd: &Path| {
        let lands = resolve(path, cwd);
        lands
            .strip_prefix(&run_dir)
            .unwrap_or(&lands)
            .display()
            .to_string()
    };
    match call {
        ToolCall::Write { path, cwd } => vec![relative(path, cwd)],
        ToolCall::Patch { patch, cwd } => crate::safety::policy::patch_paths(patch)
            .iter()
            .map(|p| relative(Path::new(p), cwd))
            .collect(),
        ToolCall::Shell { .. } | ToolCall::Other => Vec::new(),
    }
}

impl Coordinator {
    /// The MCP server a worker gets: the meta layer bound to it (holder) and its session
    /// (namespace), on the session's store.
    pub(super) fn mcp_server(&self, worker: &str) -> Option<McpServer> {
        let meta = &self.settings.config.meta;
        if !meta.worker_mcp {
            return None;
        }
        let workspace = self.session.path.parent()?.display().to_string();
        let mut env = vec![
            ("SESSION_TTL".to_string(), meta.session_ttl_secs.to_string()),
            (
                "LOCK_DEFAULT_TTL".to_string(),
                meta.lock_ttl_secs.to_string(),
            ),
        ];
        if meta.store != "sqlite" {
            env.push(("REDIS_URL".to_string(), meta.store.clone()));
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
            ],
            env,
            exclusive: !meta.operator_mcp,
        })
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
        let Some(meta) = &self.leases.meta else {
            return Ok(());
        };
        let outcome = match meta.acquire(resource, worker, None) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.leases_unavailable(Some(task), &e.to_string());
                return Ok(());
            }
        };
        let holder = match outcome {
            Ok(lock) => {
                let key = (worker.to_string(), resource.to_string());
                if self.leases.granted.insert(key, lock.token) != Some(lock.token) {
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
                return Ok(());
            }
            Err(LockRefusal::HeldByOther { holder, .. }) => holder,
            Err(other) => return Err(other.to_string()),
        };
        // Contended: the holder first, so an unranked pair leaves it with the holder.
        let contestants = vec![holder.clone(), worker.to_string()];
        let context = json!({"resource": resource, "path": path, "session": self.session.id});
        let resolution = match meta.resolve(PATH_CONFLICT, &contestants, &context) {
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
        if resolution.winner == worker {
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
            return self.lease_one(worker, task, path, resource);
        }
        let reason = format!(
            "{path} is leased by {holder}, another worker of this session, which keeps it ({}); leave this file to it or wait for its task to end",
            resolution.rule
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
            .with("holder", holder)
            .with("path", path.to_string())
            .with("reason", reason.clone()),
        );
        Err(reason)
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

    /// Says once that leases are off for now, and why.
    fn leases_unavailable(&mut self, task: Option<&str>, why: &str) {
        if self.leases.unavailable.is_some() {
            return;
        }
        self.leases.unavailable = Some(why.to_string());
        self.record(
            task,
            Draft::new(
                EventType::Finding,
                format!("path leases are off: {why}; writes go on unleased"),
            )
            .with("phase", "leases_unavailable")
            .with("severity", "warning"),
        );
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
        let shell = ToolCall::Shell {
            command: "ls".into(),
            cwd: run.to_path_buf(),
        };
        assert!(written_paths(&shell, run).is_empty());
    }
}
