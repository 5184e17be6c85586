//! Where meta state lives: one trait, two backends (SQLite in the workspace by default, Redis
//! for coordinators on several machines). Both pass the same suite (`tests/meta_store.rs`).
//!
//! Every operation that decides (acquire, release, update) is atomic in the backend itself: a
//! single SQLite statement or transaction, a Redis Lua script or a watched transaction. No
//! caller reads then writes.

use std::time::Duration;

use serde_json::Value;

use super::conflicts::Resolution;
use super::locks::{Lock, LockRefusal};
use super::sessions::UserSession;
use crate::timestamp::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum MetaStoreError {
    #[error("meta store {store}: {reason}")]
    Unavailable { store: String, reason: String },
    #[error("meta store {store}: damaged entry {key}: {reason}")]
    Damaged {
        store: String,
        key: String,
        reason: String,
    },
}

/// One backend. `now` is passed in (an injected clock in tests); a backend with its own
/// clock for expiry (Redis) uses `now` only for the times it reports.
pub trait MetaStore: Send + Sync {
    /// `sqlite:PATH` or the Redis URL without its password.
    fn describe(&self) -> String;

    /// Stores a new session for `ttl`.
    fn create_session(&self, session: &UserSession, ttl: Duration) -> Result<(), MetaStoreError>;
    fn get_session(&self, id: &str, now: Timestamp) -> Result<Option<UserSession>, MetaStoreError>;
    /// Changes a live session atomically and refreshes its TTL; `None` when there is none.
    fn update_session(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut UserSession),
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<UserSession>, MetaStoreError>;

    /// Grants `resource` to `holder` for `ttl` (or extends the holder's own lease), unless
    /// another holder has it.
    fn acquire(
        &self,
        resource: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError>;
    /// Frees `resource` if `holder` has it.
    fn release(
        &self,
        resource: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError>;
    /// The live lock on `resource`, if any.
    fn check(&self, resource: &str, now: Timestamp) -> Result<Option<Lock>, MetaStoreError>;
    /// Live locks on resources starting with `prefix` (all of them with ""), by resource.
    fn locks(&self, prefix: &str, now: Timestamp) -> Result<Vec<Lock>, MetaStoreError>;

    /// Keeps a resolution, with what it was about.
    fn record_resolution(
        &self,
        resolution: &Resolution,
        context: &Value,
    ) -> Result<(), MetaStoreError>;
}

/// Milliseconds of a TTL, at least one (a zero TTL would be a lock already expired).
pub fn ttl_millis(ttl: Duration) -> i64 {
    (ttl.as_millis() as i64).max(1)
}
