//! `workspace/orchestrate.db`: the SQLite index of sessions, tasks, workers and reviews (WAL mode,
//! schema versioned by `PRAGMA user_version` and applied by ordered migrations). The JSONL
//! journals stay the record of what happened; this is the fast place to look things up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use super::layout::SessionInfo;
use crate::timestamp::Timestamp;

/// Each entry moves the schema one version up. Never edit a released entry; add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, tasks, workers, reviews, decisions.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        prompt TEXT NOT NULL,
        target TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'created',
        coordinator_pid INTEGER
    );
    CREATE TABLE tasks (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        title TEXT NOT NULL,
        prompt TEXT NOT NULL,
        agent TEXT,
        role TEXT,
        depends_on TEXT NOT NULL DEFAULT '[]',
        state TEXT NOT NULL DEFAULT 'pending',
        retries INTEGER NOT NULL DEFAULT 0,
        branch TEXT,
        PRIMARY KEY (session_id, id)
    );
    CREATE TABLE workers (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        task_id TEXT,
        agent TEXT NOT NULL,
        pid INTEGER,
        state TEXT NOT NULL DEFAULT 'pending',
        exit_code INTEGER,
        signal INTEGER,
        agent_session_id TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (session_id, name)
    );
    CREATE TABLE reviews (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        id TEXT NOT NULL,
        worker TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        verdict TEXT,
        summary TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, id)
    );
    CREATE TABLE decisions (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        rule TEXT NOT NULL,
        action TEXT NOT NULL,
        reason TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    );",
    // 2: each worker's latest resource sample.
    "ALTER TABLE workers ADD COLUMN cpu_percent REAL;
     ALTER TABLE workers ADD COLUMN rss_mb INTEGER;",
    // 3: reviews as they run and decide: their task, trigger and decision, each reviewer's
    // verdict, and the review a decision came from. `reviews.reviewer` lists the reviewers,
    // `reviews.verdict` the verdicts, `reviews.summary` the decision's reason.
    "ALTER TABLE reviews ADD COLUMN task TEXT;
     ALTER TABLE reviews ADD COLUMN trigger TEXT;
     ALTER TABLE reviews ADD COLUMN action TEXT;
     ALTER TABLE reviews ADD COLUMN rule INTEGER;
     ALTER TABLE decisions ADD COLUMN review TEXT;
     CREATE TABLE verdicts (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        review TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        verdict TEXT NOT NULL,
        summary TEXT NOT NULL,
        findings TEXT NOT NULL,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, review, reviewer)
    );",
    // 4: what recovery recognised and did, one row per `recovery` event.
    "CREATE TABLE recoveries (
        session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        task TEXT,
        worker TEXT,
        phase TEXT NOT NULL,
        rule TEXT,
        text TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    );",
    // 5: the meta layer's user sessions, locks (with their fencing counters, kept after a
    // release so tokens only grow) and conflict resolutions. Times are Unix milliseconds.
    "CREATE TABLE meta_sessions (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX meta_sessions_expiry ON meta_sessions(expires_at);
    CREATE TABLE meta_locks (
        resource TEXT PRIMARY KEY,
        holder TEXT,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        token INTEGER NOT NULL
    );
    CREATE TABLE meta_resolutions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        conflict_type TEXT NOT NULL,
        winner TEXT NOT NULL,
        losers TEXT NOT NULL,
        rule TEXT NOT NULL,
        context TEXT NOT NULL
    );",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {} has schema version {found}, newer than this orchestrate understands ({known}); upgrade orchestrate",
        path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// A task row; `depends_on` is a JSON array.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskRow {
    pub id: String,
    pub title: String,
    pub prompt: String,
    pub agent: Option<String>,
    pub role: Option<String>,
    pub depends_on: String,
    pub state: String,
    pub retries: i64,
    pub branch: Option<String>,
}

/// A worker row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkerRow {
    pub name: String,
    pub task: Option<String>,
    pub agent: String,
    pub pid: Option<i64>,
    pub state: String,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    pub agent_session_id: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
}

/// A recovery row: (task, phase, rule, text).
pub type RecoveryRow = (Option<String>, String, Option<String>, String);

/// A review: requested (no decision yet) or decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReviewRow {
    pub id: String,
    pub worker: String,
    pub task: String,
    pub trigger: String,
    pub reviewers: Vec<String>,
    pub started: String,
    pub decision: Option<DecisionRow>,
    pub verdicts: Vec<VerdictRow>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecisionRow {
    pub rule: i64,
    pub action: String,
    pub reason: String,
}

/// One reviewer's answer (`orchestrator` for the checks' seat); `findings` is a JSON array.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerdictRow {
    pub reviewer: String,
    pub verdict: String,
    pub summary: String,
    pub findings: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: f64,
    pub duration_ms: i64,
}

/// A session row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub prompt: String,
    pub target: String,
    pub created_at: String,
    pub state: String,
    pub coordinator_pid: Option<i64>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        // Several processes (coordinators, dashboards, CLI commands) share the file.
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        // Switching a new file to WAL does not wait on the busy handler: another process
        // creating the same database at that instant is waited for here.
        let mut tries = 0;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => {
                    other.map_err(wrap)?;
                    break;
                }
            }
        }
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(wrap)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Opens for reading only, creating and changing nothing: for `status` and the
    /// dashboard, which must work on a full or read-only disk. A database that does not exist
    /// yet reads as empty.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let wrap = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let empty = || {
            let mut store = Store {
                conn: Connection::open_in_memory().map_err(wrap)?,
                path: path.to_path_buf(),
            };
            store.migrate()?;
            Ok(store)
        };
        if !path.exists() {
            return empty();
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        let store = Store {
            conn,
            path: path.to_path_buf(),
        };
        match store.schema_version() {
            // Created this instant by a coordinator that has not made its tables yet (its
            // first migration is one transaction): nothing to read so far.
            Ok(0) => return empty(),
            Ok(_) => return Ok(store),
            Err(_) => {}
        }
        // A WAL database in a directory we cannot write (no -shm to create): read the file
        // as it stands.
        let uri = format!("file:{}?immutable=1", path.display());
        let conn = Connection::open_with_flags(uri, flags).map_err(wrap)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// False for what `open_read_only` gives while there is no database to read yet: an
    /// empty stand-in, not worth keeping open (the file may appear at any moment).
    pub fn reads_the_file(&self) -> bool {
        self.conn.path().is_some_and(|p| !p.is_empty())
    }

    /// The migrated connection, for a room that keeps its own tables in the same file (meta).
    pub fn into_connection(self) -> Connection {
        self.conn
    }

    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.error(e))
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        loop {
            // One transaction per step: a crash leaves the previous version intact. IMMEDIATE
            // takes the write lock before reading the version, so two processes opening a
            // new database at once apply each step once (the second sees it done).
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(wrap)?;
            let version: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(wrap)?;
            let Some(sql) = MIGRATIONS.get(version as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql).map_err(wrap)?;
            tx.pragma_update(None, "user_version", version + 1)
                .map_err(wrap)?;
            tx.commit().map_err(wrap)?;
        }
    }

    pub fn insert_session(&self, info: &SessionInfo) -> Result<(), StoreError> {
        let created = info.created_at.to_string();
        self.conn
            .execute(
                "INSERT INTO sessions (id, prompt, target, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
                params![info.id, info.prompt, info.target.display().to_string(), created],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Removes a session and (by cascade) its tasks, workers, reviews and decisions.
    pub fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM sessions WHERE id = ?1", params![id])
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn set_session_state(
        &self,
        id: &str,
        state: &str,
        coordinator_pid: Option<i64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET state = ?2, coordinator_pid = ?3, updated_at = ?4 WHERE id = ?1",
                params![id, state, coordinator_pid, now.to_string()],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.conn
            .query_row(
                "SELECT id, prompt, target, created_at, state, coordinator_pid FROM sessions WHERE id = ?1",
                [id],
                session_row,
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, prompt, target, created_at, state, coordinator_pid FROM sessions ORDER BY id")
            .map_err(|e| self.error(e))?;
        let rows = stmt.query_map([], session_row).map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    pub fn upsert_task(&self, session: &str, task: &TaskRow) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO tasks (session_id, id, title, prompt, agent, role, depends_on, state, retries, branch)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (session_id, id) DO UPDATE SET agent = ?5, state = ?8, retries = ?9, branch = ?10",
                params![
                    session, task.id, task.title, task.prompt, task.agent, task.role,
                    task.depends_on, task.state, task.retries, task.branch
                ],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    pub fn tasks(&self, session: &str) -> Result<Vec<TaskRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, title, prompt, agent, role, depends_on, state, retries, branch FROM tasks
                 WHERE session_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([session], |r| {
                Ok(TaskRow {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    prompt: r.get(2)?,
                    agent: r.get(3)?,
                    role: r.get(4)?,
                    depends_on: r.get(5)?,
                    state: r.get(6)?,
                    retries: r.get(7)?,
                    branch: r.get(8)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    pub fn upsert_worker(
        &self,
        session: &str,
        w: &WorkerRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO workers (session_id, name, task_id, agent, pid, state, exit_code, signal,
                                      agent_session_id, input_tokens, output_tokens, cost_usd, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (session_id, name) DO UPDATE SET pid = ?5, state = ?6, exit_code = ?7,
                     signal = ?8, agent_session_id = ?9, input_tokens = ?10, output_tokens = ?11,
                     cost_usd = ?12, updated_at = ?13",
                params![
                    session, w.name, w.task, w.agent, w.pid, w.state, w.exit_code, w.signal,
                    w.agent_session_id, w.input_tokens, w.output_tokens, w.cost_usd, now.to_string()
                ],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// A worker's latest resource sample (its row exists once it started).
    pub fn set_worker_usage(
        &self,
        session: &str,
        worker: &str,
        cpu_percent: f64,
        rss_mb: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE workers SET cpu_percent = ?3, rss_mb = ?4 WHERE session_id = ?1 AND name = ?2",
                params![session, worker, cpu_percent, rss_mb],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// Each worker's latest sample: (cpu percent of one CPU, resident MiB), by name.
    pub fn worker_usage(
        &self,
        session: &str,
    ) -> Result<std::collections::BTreeMap<String, (f64, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT name, cpu_percent, rss_mb FROM workers WHERE session_id = ?1 AND cpu_percent IS NOT NULL",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map(params![session], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// Writes a review as it stands: its row, its verdicts and, once decided, its decision
    /// (one transaction; saving the same decision twice adds no second decision row).
    pub fn save_review(
        &mut self,
        session: &str,
        review: &ReviewRow,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let error = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(error)?;
        let verdicts: Vec<&str> = review.verdicts.iter().map(|v| v.verdict.as_str()).collect();
        let decision = review.decision.as_ref();
        tx.execute(
            "INSERT INTO reviews (session_id, id, worker, reviewer, verdict, summary, created_at, task, trigger, action, rule)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (session_id, id) DO UPDATE SET reviewer = ?4, verdict = ?5, summary = ?6,
                 action = ?10, rule = ?11",
            params![
                session, review.id, review.worker, review.reviewers.join(","), verdicts.join(","),
                decision.map(|d| d.reason.as_str()), review.started, review.task, review.trigger,
                decision.map(|d| d.action.as_str()), decision.map(|d| d.rule)
            ],
        )
        .map_err(error)?;
        for v in &review.verdicts {
            tx.execute(
                "INSERT OR REPLACE INTO verdicts (session_id, review, reviewer, verdict, summary, findings,
                     input_tokens, output_tokens, cost_usd, duration_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    session, review.id, v.reviewer, v.verdict, v.summary, v.findings,
                    v.input_tokens, v.output_tokens, v.cost_usd, v.duration_ms
                ],
            )
            .map_err(error)?;
        }
        if let Some(d) = decision {
            tx.execute(
                "INSERT INTO decisions (session_id, seq, rule, action, reason, created_at, review)
                 SELECT ?1, COALESCE((SELECT MAX(seq) FROM decisions WHERE session_id = ?1), 0) + 1,
                        ?2, ?3, ?4, ?5, ?6
                 WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE session_id = ?1 AND review = ?6)",
                params![
                    session,
                    d.rule.to_string(),
                    d.action,
                    d.reason,
                    now.to_string(),
                    review.id
                ],
            )
            .map_err(error)?;
        }
        tx.commit().map_err(error)
    }

    /// The reviews of a session, oldest first, with their verdicts and decisions.
    pub fn reviews(&self, session: &str) -> Result<Vec<ReviewRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, worker, COALESCE(task, ''), COALESCE(trigger, ''), reviewer, created_at,
                        action, rule, summary
                 FROM reviews WHERE session_id = ?1 ORDER BY rowid",
            )
            .map_err(|e| self.error(e))?;
        let mut reviews = stmt
            .query_map([session], |r| {
                let action: Option<String> = r.get(6)?;
                let reviewers: String = r.get(4)?;
                Ok(ReviewRow {
                    id: r.get(0)?,
                    worker: r.get(1)?,
                    task: r.get(2)?,
                    trigger: r.get(3)?,
                    reviewers: reviewers
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect(),
                    started: r.get(5)?,
                    decision: match action {
                        Some(action) => Some(DecisionRow {
                            action,
                            rule: r.get::<_, Option<i64>>(7)?.unwrap_or(0),
                            reason: r.get::<_, Option<String>>(8)?.unwrap_or_default(),
                        }),
                        None => None,
                    },
                    verdicts: Vec::new(),
                })
            })
            .map_err(|e| self.error(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.error(e))?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT reviewer, verdict, summary, findings, input_tokens, output_tokens, cost_usd, duration_ms
                 FROM verdicts WHERE session_id = ?1 AND review = ?2 ORDER BY rowid",
            )
            .map_err(|e| self.error(e))?;
        for review in &mut reviews {
            review.verdicts = stmt
                .query_map(params![session, review.id], |r| {
                    Ok(VerdictRow {
                        reviewer: r.get(0)?,
                        verdict: r.get(1)?,
                        summary: r.get(2)?,
                        findings: r.get(3)?,
                        input_tokens: r.get(4)?,
                        output_tokens: r.get(5)?,
                        cost_usd: r.get(6)?,
                        duration_ms: r.get(7)?,
                    })
                })
                .map_err(|e| self.error(e))?
                .collect::<Result<_, _>>()
                .map_err(|e| self.error(e))?;
        }
        Ok(reviews)
    }

    /// One `recovery` event of a session (`detail`: its whole payload, as JSON).
    pub fn insert_recovery(
        &self,
        session: &str,
        task: Option<&str>,
        detail: &crate::event::Payload,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let text = |key: &str| detail.get(key).and_then(|v| v.as_str());
        self.conn
            .execute(
                "INSERT INTO recoveries (session_id, seq, task, worker, phase, rule, text, detail, created_at)
                 SELECT ?1, COALESCE((SELECT MAX(seq) FROM recoveries WHERE session_id = ?1), 0) + 1,
                        ?2, ?3, ?4, ?5, ?6, ?7, ?8",
                params![
                    session, task, text("worker"), text("phase").unwrap_or(""), text("rule"),
                    text("text").unwrap_or(""), serde_json::to_string(detail).unwrap_or_default(),
                    now.to_string()
                ],
            )
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    /// A session's recovery rows, oldest first.
    pub fn recoveries(&self, session: &str) -> Result<Vec<RecoveryRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT task, phase, rule, text FROM recoveries WHERE session_id = ?1 ORDER BY seq",
            )
            .map_err(|e| self.error(e))?;
        let rows = stmt
            .query_map([session], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.error(e))
    }

    /// How many decisions a session has taken.
    pub fn decision_count(&self, session: &str) -> Result<i64, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM decisions WHERE session_id = ?1",
                [session],
                |r| r.get(0),
            )
            .map_err(|e| self.error(e))
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        prompt: r.get(1)?,
        target: r.get(2)?,
        created_at: r.get(3)?,
        state: r.get(4)?,
        coordinator_pid: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(id: &str) -> SessionInfo {
        SessionInfo {
            id: id.into(),
            prompt: "goal".into(),
            target: PathBuf::from("/t"),
            created_at: Timestamp::from_secs(1_795_284_000),
            config: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_review_is_saved_requested_then_decided_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("orchestrate.db")).unwrap();
        store.insert_session(&info("s")).unwrap();
        let mut review = ReviewRow {
            id: "r1".into(),
            worker: "w".into(),
            task: "t".into(),
            trigger: "milestone".into(),
            reviewers: vec!["codex".into(), "gemini".into()],
            started: "2026-12-02T10:00:00Z".into(),
            ..ReviewRow::default()
        };
        let now = Timestamp::from_secs(1_795_284_000);
        store.save_review("s", &review, now).unwrap();
        assert_eq!(store.reviews("s").unwrap(), [review.clone()]);
        review.verdicts = vec![VerdictRow {
            reviewer: "codex".into(),
            verdict: "concern".into(),
            summary: "no test".into(),
            findings: "[]".into(),
            input_tokens: 10,
            output_tokens: 2,
            cost_usd: 0.5,
            duration_ms: 1200,
        }];
        review.decision = Some(DecisionRow {
            rule: 3,
            action: "log_warning".into(),
            reason: "one concern".into(),
        });
        store.save_review("s", &review, now).unwrap();
        store.save_review("s", &review, now).unwrap();
        assert_eq!(store.reviews("s").unwrap(), [review]);
        assert_eq!(store.decision_count("s").unwrap(), 1);
    }

    #[test]
    fn a_reader_sees_a_database_not_yet_migrated_as_empty() {
        // What `status` meets while a coordinator has created the file but not its tables
        // (it failed with "no such table: sessions" once under the full suite's load).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestrate.db");
        drop(Connection::open(&path).unwrap());
        let store = Store::open_read_only(&path).unwrap();
        assert!(store.sessions().unwrap().is_empty());
        assert!(!store.reads_the_file());
        drop(store);
        // Once the writer has migrated it, the file itself is read.
        Store::open(&path)
            .unwrap()
            .insert_session(&info("orch_1"))
            .unwrap();
        let store = Store::open_read_only(&path).unwrap();
        assert!(store.reads_the_file());
        assert_eq!(store.sessions().unwrap().len(), 1);
    }

    #[test]
    fn migrates_once_in_wal_mode_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestrate.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), MIGRATIONS.len() as i64);
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        store.insert_session(&info("orch_1")).unwrap();
        store
            .set_session_state("orch_1", "running", Some(42), Timestamp(0))
            .unwrap();
        drop(store);
        let again = Store::open(&path).unwrap();
        let row = again.session("orch_1").unwrap().unwrap();
        assert_eq!(
            (row.state.as_str(), row.coordinator_pid),
            ("running", Some(42))
        );
        assert_eq!(again.sessions().unwrap().len(), 1);
        assert!(again.session("nope").unwrap().is_none());
        let mut task = TaskRow {
            id: "t1".into(),
            title: "T".into(),
            prompt: "p".into(),
            depends_on: "[]".into(),
            state: "pending".into(),
            ..TaskRow::default()
        };
        again.upsert_task("orch_1", &task).unwrap();
        task.state = "succeeded".into();
        task.retries = 1;
        again.upsert_task("orch_1", &task).unwrap();
        assert_eq!(again.tasks("orch_1").unwrap(), vec![task]);
        let worker = WorkerRow {
            name: "claude-t1".into(),
            agent: "claude".into(),
            state: "running".into(),
            ..WorkerRow::default()
        };
        again
            .upsert_worker("orch_1", &worker, Timestamp(0))
            .unwrap();
        again
            .upsert_worker(
                "orch_1",
                &WorkerRow {
                    state: "done".into(),
                    ..worker
                },
                Timestamp(1),
            )
            .unwrap();
    }

    #[test]
    fn a_database_from_a_newer_version_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestrate.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("schema version 99, newer than this orchestrate understands"),
            "{err}"
        );
    }
}
