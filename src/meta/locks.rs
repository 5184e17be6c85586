//! Single-writer locks with a lease (TTL) and a fencing token.
//!
//! One holder at a time per resource. The same holder acquiring again extends its lease and
//! keeps its token; a new grant (free, released or expired lock) takes the resource's next
//! token, which only grows. A service that guards a resource can refuse work carrying a
//! lower token than the highest it has seen, so a holder paused past its lease cannot act
//! over its successor. orchestrate's path leases need no token check: the coordinator takes
//! the lease at each write, in the sandbox hook, before the write happens; the tokens are
//! journaled with each grant.

use serde::{Deserialize, Serialize};

use crate::timestamp::Timestamp;

/// The seed's `LOCK_DEFAULT_TTL`.
pub const DEFAULT_LOCK_TTL_SECS: u64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub resource: String,
    pub holder: String,
    pub acquired_at: Timestamp,
    pub expires_at: Timestamp,
    /// Fencing token: grows with every grant of this resource.
    pub token: u64,
}

/// Why an acquire or a release was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "refused", rename_all = "snake_case")]
pub enum LockRefusal {
    #[error("{resource} is locked by {holder} until {expires_at}")]
    HeldByOther {
        resource: String,
        holder: String,
        expires_at: Timestamp,
    },
    #[error("{resource} is not locked by {holder}{}", held_by.as_ref().map(|h| format!(" (held by {h})")).unwrap_or_else(|| " (it is free)".into()))]
    NotHolder {
        resource: String,
        holder: String,
        held_by: Option<String>,
    },
}

/// What `check` answers (the seed's `{locked, holder}`, with the lease when locked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockState {
    pub locked: bool,
    pub holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<Lock>,
}

impl LockState {
    pub fn of(lock: Option<Lock>) -> LockState {
        LockState {
            locked: lock.is_some(),
            holder: lock.as_ref().map(|l| l.holder.clone()),
            lock,
        }
    }
}

/// A session's name for `resource`: `SESSION:resource`. Path leases are named so (the path
/// relative to the worker's checkout), by the sandbox hook and by a worker's MCP server alike.
pub fn namespaced(namespace: &str, resource: &str) -> String {
    format!("{namespace}:{resource}")
}

/// The longest holder name: a worker's, a person's, an agent's.
pub const MAX_HOLDER_BYTES: usize = 256;

/// A holder names who holds a lock: a name as `check_name`, and short.
pub fn check_holder(holder: &str) -> Result<(), String> {
    check_name("holder", holder)?;
    if holder.len() > MAX_HOLDER_BYTES {
        return Err(format!(
            "the holder is longer than {MAX_HOLDER_BYTES} bytes"
        ));
    }
    Ok(())
}

/// A lock's name must say what it locks: not empty, no control characters, not huge.
pub fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if name.len() > 4096 {
        return Err(format!("the {what} is longer than 4096 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("the {what} {name:?} holds a control character"));
    }
    Ok(())
}
