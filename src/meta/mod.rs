//! The meta layer (seeds 000 and 001): a router, user sessions, single-writer locks with
//! leases and fencing tokens, a conflict resolver and health, over one storage trait.
//!
//! The rules are pure (`router`, `sessions`, `locks`, `conflicts`); `store` is the one trait
//! the state goes through, with `sqlite` (the default, in the workspace's orchestrate.db) and
//! `redis` (for several machines) behind it; `health` does the network checks. [`Meta`] puts
//! them together for the command line (`orchestrate meta`) and the MCP server.

pub mod config;
pub mod conflicts;
pub mod health;
pub mod locks;
pub mod redis;
pub mod router;
pub mod sessions;
pub mod sqlite;
pub mod store;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use self::conflicts::{ConflictResolver, Contestant, Resolution};
use self::locks::{Lock, LockRefusal, LockState, check_holder, check_name};
use self::router::{RouteResult, Router, RouterError};
use self::sessions::{SessionUpdate, UserSession, new_session_id};
use self::store::{MetaStore, MetaStoreError};
use crate::config::Config;
use crate::timestamp::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error(transparent)]
    Store(#[from] MetaStoreError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("{0}")]
    BadInput(String),
    #[error("no user session {0} (it expired or never existed)")]
    NoSession(String),
}

/// Where time comes from: the wall clock, or a test's.
pub type Clock = Box<dyn Fn() -> Timestamp + Send + Sync>;

pub struct Meta {
    router: Router,
    resolver: ConflictResolver,
    store: Box<dyn MetaStore>,
    session_ttl: Duration,
    lock_ttl: Duration,
    clock: Clock,
    config: Config,
}

impl Meta {
    /// The store `config` names: the workspace's database (`db`) or Redis.
    pub fn open(config: &Config, db: &Path) -> Result<Meta, MetaError> {
        let store: Box<dyn MetaStore> = if config.meta.store == "sqlite" {
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir).map_err(|e| MetaStoreError::Unavailable {
                    store: format!("sqlite:{}", db.display()),
                    reason: format!("cannot create {}: {e}", dir.display()),
                })?;
            }
            Box::new(sqlite::SqliteStore::open(db)?)
        } else {
            Box::new(redis::RedisStore::open(&config.meta.store)?)
        };
        Meta::with_store(config, store, Box::new(Timestamp::now))
    }

    pub fn with_store(
        config: &Config,
        store: Box<dyn MetaStore>,
        clock: Clock,
    ) -> Result<Meta, MetaError> {
        Ok(Meta {
            router: Router::new(&config.router)?,
            resolver: ConflictResolver::new(config.meta.conflicts.clone()),
            store,
            session_ttl: Duration::from_secs(config.meta.session_ttl_secs),
            lock_ttl: Duration::from_secs(config.meta.lock_ttl_secs),
            clock,
            config: config.clone(),
        })
    }

    pub fn store(&self) -> &dyn MetaStore {
        self.store.as_ref()
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Routes `request`; with a session, the request and the answer join its history.
    pub fn route(
        &self,
        request: &str,
        session_id: Option<&str>,
        context: Option<&Value>,
    ) -> Result<RouteResult, MetaError> {
        let result = self.router.route(request);
        if let Some(id) = session_id {
            let now = (self.clock)();
            let entry = json!({
                "at": now,
                "request": request,
                "target": result.target,
                "action": result.action,
                "confidence": result.confidence,
                "context": context,
            });
            self.store
                .update_session(
                    id,
                    &mut |s| s.remember(entry.clone(), now),
                    self.session_ttl,
                    now,
                )?
                .ok_or_else(|| MetaError::NoSession(id.to_string()))?;
        }
        Ok(result)
    }

    pub fn create_session(&self, user_id: &str) -> Result<UserSession, MetaError> {
        check_name("user id", user_id).map_err(MetaError::BadInput)?;
        let session = UserSession::new(new_session_id(), user_id.to_string(), (self.clock)());
        self.store.create_session(&session, self.session_ttl)?;
        Ok(session)
    }

    pub fn get_session(&self, id: &str) -> Result<UserSession, MetaError> {
        self.store
            .get_session(id, (self.clock)())?
            .ok_or_else(|| MetaError::NoSession(id.to_string()))
    }

    pub fn update_session(
        &self,
        id: &str,
        update: &SessionUpdate,
    ) -> Result<UserSession, MetaError> {
        let now = (self.clock)();
        self.store
            .update_session(id, &mut |s| s.apply(update, now), self.session_ttl, now)?
            .ok_or_else(|| MetaError::NoSession(id.to_string()))
    }

    /// Locks `resource` for `holder` for `ttl` (the configured default when `None`).
    pub fn acquire(
        &self,
        resource: &str,
        holder: &str,
        ttl: Option<Duration>,
    ) -> Result<Result<Lock, LockRefusal>, MetaError> {
        check_name("resource", resource).map_err(MetaError::BadInput)?;
        check_holder(holder).map_err(MetaError::BadInput)?;
        let ttl = ttl.unwrap_or(self.lock_ttl);
        if ttl.is_zero() {
            return Err(MetaError::BadInput(
                "a lock's ttl must be above zero".into(),
            ));
        }
        Ok(self.store.acquire(resource, holder, ttl, (self.clock)())?)
    }

    pub fn release(
        &self,
        resource: &str,
        holder: &str,
    ) -> Result<Result<Lock, LockRefusal>, MetaError> {
        check_name("resource", resource).map_err(MetaError::BadInput)?;
        check_holder(holder).map_err(MetaError::BadInput)?;
        Ok(self.store.release(resource, holder, (self.clock)())?)
    }

    pub fn check(&self, resource: &str) -> Result<LockState, MetaError> {
        check_name("resource", resource).map_err(MetaError::BadInput)?;
        Ok(LockState::of(self.store.check(resource, (self.clock)())?))
    }

    /// Live locks on resources starting with `prefix`.
    pub fn locks(&self, prefix: &str) -> Result<Vec<Lock>, MetaError> {
        Ok(self.store.locks(prefix, (self.clock)())?)
    }

    /// Picks the winner among `contestants` and records the resolution with `context`.
    pub fn resolve(
        &self,
        conflict_type: &str,
        contestants: &[String],
        context: &Value,
    ) -> Result<Resolution, MetaError> {
        self.resolve_ranked(conflict_type, &Contestant::unranked(contestants), context)
    }

    /// As `resolve`, with contestants ranked under another name (a worker as its target).
    pub fn resolve_ranked(
        &self,
        conflict_type: &str,
        contestants: &[Contestant],
        context: &Value,
    ) -> Result<Resolution, MetaError> {
        if contestants.is_empty() {
            return Err(MetaError::BadInput(
                "a conflict needs at least one contestant".into(),
            ));
        }
        check_name("conflict type", conflict_type).map_err(MetaError::BadInput)?;
        let resolution = self
            .resolver
            .resolve_ranked(conflict_type, contestants, (self.clock)());
        self.store.record_resolution(&resolution, context)?;
        Ok(resolution)
    }

    /// The router target `request` goes to, when one is confident (not `meta`).
    pub fn target_of(&self, request: &str) -> Option<String> {
        let routed = self.router.route(request);
        (routed.target != router::CLARIFY_TARGET).then_some(routed.target)
    }
}

/// The live path leases of `session` (resources `SESSION:path`), read without writing
/// anything: for `status` and the dashboard.
pub fn session_leases(
    config: &Config,
    db: &Path,
    session: &str,
) -> Result<Vec<Lock>, MetaStoreError> {
    let store: Box<dyn MetaStore> = if config.meta.store == "sqlite" {
        if !db.exists() {
            return Ok(Vec::new());
        }
        Box::new(sqlite::SqliteStore::open_read_only(db)?)
    } else {
        Box::new(redis::RedisStore::open(&config.meta.store)?)
    };
    let prefix = locks::namespaced(session, "");
    let mut leases = match store.locks(&prefix, Timestamp::now()) {
        Ok(leases) => leases,
        // An older database without the meta tables holds none.
        Err(MetaStoreError::Unavailable { reason, .. }) if reason.contains("no such table") => {
            Vec::new()
        }
        Err(e) => return Err(e),
    };
    for lease in &mut leases {
        lease.resource = lease.resource[prefix.len()..].to_string();
    }
    Ok(leases)
}

/// What `meta status` checks: the router targets with a URL, and the agent profiles' CLIs.
pub fn health(config: &Config, cwd: &Path) -> health::Health {
    let targets: Vec<(String, String)> = config
        .router
        .targets
        .iter()
        .filter_map(|(name, t)| t.url.clone().map(|url| (name.clone(), url)))
        .collect();
    let clis: Vec<(String, Vec<String>)> = config
        .agents
        .iter()
        .filter(|(_, p)| p.kind != crate::agents::AgentKind::Events && !p.command.is_empty())
        .map(|(name, p)| (name.clone(), p.command.clone()))
        .collect();
    health::check(
        &targets,
        &clis,
        cwd,
        Duration::from_millis(config.meta.health_timeout_ms),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    /// A `Meta` on a fresh SQLite store whose clock the test moves (milliseconds).
    fn meta(config: &Config) -> (tempfile::TempDir, Meta, Arc<AtomicI64>) {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite::SqliteStore::open(&dir.path().join("orchestrate.db")).unwrap();
        let now = Arc::new(AtomicI64::new(1_000_000));
        let clock = now.clone();
        let meta = Meta::with_store(
            config,
            Box::new(store),
            Box::new(move || Timestamp(clock.load(Ordering::SeqCst))),
        )
        .unwrap();
        (dir, meta, now)
    }

    #[test]
    fn a_session_lives_its_ttl_after_its_last_write() {
        let mut config = Config::default();
        config.meta.session_ttl_secs = 60;
        let (_dir, meta, now) = meta(&config);
        let start = now.load(Ordering::SeqCst);
        let s = meta.create_session("alice").unwrap();
        now.store(start + 59_999, Ordering::SeqCst);
        assert_eq!(meta.get_session(&s.id).unwrap().user_id, "alice");
        // Routing with it is a write: the TTL starts again.
        now.store(start + 30_000, Ordering::SeqCst);
        meta.route("implement it", Some(&s.id), None).unwrap();
        now.store(start + 89_999, Ordering::SeqCst);
        let kept = meta.get_session(&s.id).unwrap();
        assert_eq!(kept.history[0]["target"], "bolt");
        assert_eq!(kept.updated_at, Timestamp(start + 30_000));
        now.store(start + 90_000, Ordering::SeqCst);
        assert!(matches!(
            meta.get_session(&s.id),
            Err(MetaError::NoSession(_))
        ));
        assert!(matches!(
            meta.route("x", Some(&s.id), None),
            Err(MetaError::NoSession(_))
        ));
    }

    #[test]
    fn routing_with_a_session_keeps_its_last_hundred_requests() {
        let (_dir, meta, now) = meta(&Config::default());
        let s = meta.create_session("bob").unwrap();
        for i in 0..120 {
            now.fetch_add(1, Ordering::SeqCst);
            meta.route(
                &format!("search item {i}"),
                Some(&s.id),
                Some(&json!({"i": i})),
            )
            .unwrap();
        }
        let s = meta.get_session(&s.id).unwrap();
        assert_eq!(s.history.len(), 100);
        assert_eq!(s.history[0]["request"], "search item 20");
        assert_eq!(s.history[99]["context"]["i"], 119);
    }

    #[test]
    fn a_lease_expires_on_the_clock_and_the_next_grant_has_a_higher_token() {
        let mut config = Config::default();
        config.meta.lock_ttl_secs = 300;
        let (_dir, meta, now) = meta(&config);
        let start = now.load(Ordering::SeqCst);
        let first = meta.acquire("r", "w1", None).unwrap().unwrap();
        assert_eq!(first.expires_at, Timestamp(start + 300_000));
        now.store(start + 299_999, Ordering::SeqCst);
        assert!(meta.acquire("r", "w2", None).unwrap().is_err());
        assert!(meta.check("r").unwrap().locked);
        now.store(start + 300_000, Ordering::SeqCst);
        assert!(!meta.check("r").unwrap().locked);
        let second = meta.acquire("r", "w2", None).unwrap().unwrap();
        assert_eq!((second.holder.as_str(), second.token), ("w2", 2));
        assert_eq!(meta.locks("").unwrap().len(), 1);
    }

    #[test]
    fn bad_input_is_one_clear_error_and_reaches_no_store() {
        let (_dir, meta, _) = meta(&Config::default());
        let bad = |r: Result<Result<Lock, LockRefusal>, MetaError>| r.unwrap_err().to_string();
        assert_eq!(bad(meta.acquire("", "w", None)), "the resource is empty");
        assert!(bad(meta.acquire("a\nb", "w", None)).contains("control character"));
        assert_eq!(
            bad(meta.acquire("r", "w", Some(Duration::ZERO))),
            "a lock's ttl must be above zero"
        );
        assert!(meta.resolve("file_creation", &[], &json!({})).is_err());
        assert!(meta.create_session("").is_err());
        let mut config = Config::default();
        config.router.targets.get_mut("bolt").unwrap().patterns[0].pattern = "(".into();
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite::SqliteStore::open(&dir.path().join("o.db")).unwrap();
        let err = Meta::with_store(&config, Box::new(store), Box::new(Timestamp::now))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.starts_with("router target \"bolt\": pattern \"(\""),
            "{err}"
        );
    }

    #[test]
    fn a_resolution_is_recorded() {
        let (dir, meta, _) = meta(&Config::default());
        let names = vec!["archon".to_string(), "bolt".to_string()];
        let r = meta
            .resolve("file_creation", &names, &json!({"path": "src/a.rs"}))
            .unwrap();
        assert_eq!(r.winner, "bolt");
        let conn = rusqlite::Connection::open(dir.path().join("orchestrate.db")).unwrap();
        let (winner, context): (String, String) = conn
            .query_row("SELECT winner, context FROM meta_resolutions", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!(winner, "bolt");
        assert!(context.contains("src/a.rs"));
    }
}
