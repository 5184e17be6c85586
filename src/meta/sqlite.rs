//! The embedded backend: meta tables in `workspace/orchestrate.db` (migration 5).
//!
//! Atomicity comes from SQLite itself: an acquire is one UPSERT whose WHERE clause lets it
//! through only for a free, expired or own lock, a release one conditional UPDATE, a session
//! update one IMMEDIATE transaction. Each process (or thread) opens its own store; SQLite's
//! write lock serialises them.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::Value;

use super::conflicts::Resolution;
use super::locks::{Lock, LockRefusal};
use super::sessions::UserSession;
use super::store::{MetaStore, MetaStoreError, ttl_millis};
use crate::session::store::Store;
use crate::timestamp::Timestamp;

pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

const LOCK_COLUMNS: &str = "resource, holder, acquired_at, expires_at, token";

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, MetaStoreError> {
        let unavailable = |reason: String| MetaStoreError::Unavailable {
            store: format!("sqlite:{}", path.display()),
            reason,
        };
        let conn = Store::open(path)
            .map_err(|e| unavailable(e.to_string()))?
            .into_connection();
        // Leases live minutes; a power cut may lose the last few grants but never corrupts the
        // file (WAL). Skipping the fsync per grant is what makes thousands per second possible.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| unavailable(e.to_string()))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    /// Opens for reading only (`status` on a full or read-only disk); a database without
    /// the meta tables yet reads as holding nothing.
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, MetaStoreError> {
        let conn = Store::open_read_only(path)
            .map_err(|e| MetaStoreError::Unavailable {
                store: format!("sqlite:{}", path.display()),
                reason: e.to_string(),
            })?
            .into_connection();
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn error(&self, e: rusqlite::Error) -> MetaStoreError {
        MetaStoreError::Unavailable {
            store: self.describe(),
            reason: e.to_string(),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, MetaStoreError> {
        // A thread that panicked holding the connection left no half-done transaction behind
        // (rusqlite rolls back on drop): the connection is still good.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| self.error(e))
    }

    fn damaged(&self, key: &str, e: serde_json::Error) -> MetaStoreError {
        MetaStoreError::Damaged {
            store: self.describe(),
            key: key.to_string(),
            reason: e.to_string(),
        }
    }

    fn session_from(
        &self,
        id: &str,
        body: Option<String>,
    ) -> Result<Option<UserSession>, MetaStoreError> {
        body.map(|b| serde_json::from_str(&b).map_err(|e| self.damaged(id, e)))
            .transpose()
    }
}

fn lock_from(row: &rusqlite::Row) -> rusqlite::Result<Lock> {
    Ok(Lock {
        resource: row.get(0)?,
        holder: row.get(1)?,
        acquired_at: Timestamp(row.get(2)?),
        expires_at: Timestamp(row.get(3)?),
        token: row.get::<_, i64>(4)? as u64,
    })
}

/// The current (live or not) holder of `resource` and its expiry.
fn current(conn: &Connection, resource: &str) -> rusqlite::Result<Option<(Option<String>, i64)>> {
    conn.prepare_cached("SELECT holder, expires_at FROM meta_locks WHERE resource = ?1")?
        .query_row(params![resource], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
}

impl MetaStore for SqliteStore {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn create_session(&self, session: &UserSession, ttl: Duration) -> Result<(), MetaStoreError> {
        let body = serde_json::to_string(session).expect("a session serialises");
        let now = session.updated_at.millis();
        let expires = now + ttl_millis(ttl);
        self.with(|conn| {
            // Expired sessions are cleared as new ones come, so the table stays small.
            conn.prepare_cached("DELETE FROM meta_sessions WHERE expires_at <= ?1")?
                .execute(params![now])?;
            conn.prepare_cached(
                "INSERT INTO meta_sessions (id, body, expires_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![session.id, body, expires])?;
            Ok(())
        })
    }

    fn get_session(&self, id: &str, now: Timestamp) -> Result<Option<UserSession>, MetaStoreError> {
        let body = self.with(|conn| {
            conn.prepare_cached("SELECT body FROM meta_sessions WHERE id = ?1 AND expires_at > ?2")?
                .query_row(params![id, now.millis()], |r| r.get::<_, String>(0))
                .optional()
        })?;
        self.session_from(id, body)
    }

    fn update_session(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut UserSession),
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Option<UserSession>, MetaStoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.error(e))?;
        let body: Option<String> = tx
            .prepare_cached("SELECT body FROM meta_sessions WHERE id = ?1 AND expires_at > ?2")
            .and_then(|mut s| {
                s.query_row(params![id, now.millis()], |r| r.get(0))
                    .optional()
            })
            .map_err(|e| self.error(e))?;
        let Some(mut session) = self.session_from(id, body)? else {
            return Ok(None);
        };
        change(&mut session);
        let body = serde_json::to_string(&session).expect("a session serialises");
        tx.prepare_cached("UPDATE meta_sessions SET body = ?2, expires_at = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, body, now.millis() + ttl_millis(ttl)]))
            .map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))?;
        Ok(Some(session))
    }

    fn acquire(
        &self,
        resource: &str,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError> {
        let now = now.millis();
        let expires = now + ttl_millis(ttl);
        self.with(|conn| {
            loop {
                // One statement: a free, released or expired lock is granted with the next
                // token; the holder's own live lock is extended with its token kept; anyone
                // else's live lock makes the WHERE false and nothing returns.
                let granted = conn
                    .prepare_cached(&format!(
                        "INSERT INTO meta_locks ({LOCK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 1)
                         ON CONFLICT(resource) DO UPDATE SET
                           token = CASE WHEN holder = ?2 AND expires_at > ?3 THEN token ELSE token + 1 END,
                           acquired_at = CASE WHEN holder = ?2 AND expires_at > ?3 THEN acquired_at ELSE ?3 END,
                           holder = ?2,
                           expires_at = ?4
                         WHERE holder IS NULL OR holder = ?2 OR expires_at <= ?3
                         RETURNING {LOCK_COLUMNS}"
                    ))?
                    .query_row(params![resource, holder, now, expires], lock_from)
                    .optional()?;
                if let Some(lock) = granted {
                    return Ok(Ok(lock));
                }
                // Refused: say by whom. Had it been freed in between, try again.
                if let Some((Some(other), until)) = current(conn, resource)?
                    && until > now
                {
                    return Ok(Err(LockRefusal::HeldByOther {
                        resource: resource.to_string(),
                        holder: other,
                        expires_at: Timestamp(until),
                    }));
                }
            }
        })
    }

    fn release(
        &self,
        resource: &str,
        holder: &str,
        now: Timestamp,
    ) -> Result<Result<Lock, LockRefusal>, MetaStoreError> {
        let now = now.millis();
        self.with(|conn| {
            let released = conn
                .prepare_cached(
                    "UPDATE meta_locks SET holder = NULL
                     WHERE resource = ?1 AND holder = ?2 AND expires_at > ?3
                     RETURNING resource, ?2, acquired_at, expires_at, token",
                )?
                .query_row(params![resource, holder, now], lock_from)
                .optional()?;
            if let Some(lock) = released {
                return Ok(Ok(lock));
            }
            let held_by = current(conn, resource)?
                .filter(|(_, until)| *until > now)
                .and_then(|(h, _)| h);
            Ok(Err(LockRefusal::NotHolder {
                resource: resource.to_string(),
                holder: holder.to_string(),
                held_by,
            }))
        })
    }

    fn check(&self, resource: &str, now: Timestamp) -> Result<Option<Lock>, MetaStoreError> {
        self.with(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {LOCK_COLUMNS} FROM meta_locks
                 WHERE resource = ?1 AND holder IS NOT NULL AND expires_at > ?2"
            ))?
            .query_row(params![resource, now.millis()], lock_from)
            .optional()
        })
    }

    fn locks(&self, prefix: &str, now: Timestamp) -> Result<Vec<Lock>, MetaStoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {LOCK_COLUMNS} FROM meta_locks
                 WHERE holder IS NOT NULL AND expires_at > ?1 AND substr(resource, 1, length(?2)) = ?2
                 ORDER BY resource"
            ))?;
            let rows = stmt.query_map(params![now.millis(), prefix], lock_from)?;
            rows.collect()
        })
    }

    fn record_resolution(
        &self,
        resolution: &Resolution,
        context: &Value,
    ) -> Result<(), MetaStoreError> {
        let losers = serde_json::to_string(&resolution.losers).expect("names serialise");
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO meta_resolutions (at, conflict_type, winner, losers, rule, context)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                resolution.timestamp.millis(),
                resolution.conflict_type,
                resolution.winner,
                losers,
                resolution.rule,
                context.to_string()
            ])?;
            Ok(())
        })
    }
}
