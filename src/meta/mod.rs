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

use self::conflicts::{ConflictResolver, Resolution};
use self::locks::{Lock, LockRefusal, LockState, check_name};
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
        check_name("holder", holder).map_err(MetaError::BadInput)?;
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
        if contestants.is_empty() {
            return Err(MetaError::BadInput(
                "a conflict needs at least one contestant".into(),
            ));
        }
        check_name("conflict type", conflict_type).map_err(MetaError::BadInput)?;
        let resolution = self
            .resolver
            .resolve(conflict_type, contestants, (self.clock)());
        self.store.record_resolution(&resolution, context)?;
        Ok(resolution)
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
