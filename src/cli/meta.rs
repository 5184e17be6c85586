//! `orchestrate meta ...`: the meta layer on the command line: route a request, manage user
//! sessions and locks, resolve a conflict, check health. Each prints one line (or `--json`)
//! and exits 0 on success, 1 when refused (a lock held by another, a release by a
//! non-holder, a session that does not exist) and 2 on an error (store unreachable, bad input).

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::config::Config;
use crate::mcp::Binding;
use crate::meta::locks::{Lock, LockRefusal};
use crate::meta::sessions::{SessionUpdate, UserSession};
use crate::meta::{Meta, MetaError};
use crate::session::Workspace;

/// What was asked of `orchestrate meta`.
pub enum MetaRequest {
    Route {
        text: String,
        session: Option<String>,
    },
    Acquire {
        resource: String,
        holder: String,
        ttl_secs: Option<f64>,
    },
    Release {
        resource: String,
        holder: String,
    },
    Check {
        resource: String,
    },
    Locks {
        prefix: String,
    },
    Resolve {
        conflict_type: String,
        contestants: Vec<String>,
    },
    SessionCreate {
        user: String,
    },
    SessionGet {
        id: String,
    },
    SessionUpdate {
        id: String,
        project: Option<String>,
        task: Option<String>,
        context: Option<String>,
    },
    Status,
}

const REFUSED: u8 = 1;
const ERROR: u8 = 2;

/// The holder a lock command uses when none is given: the operator, by login name.
pub fn default_holder() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map_or_else(|| "operator".to_string(), |u| format!("operator:{u}"))
}

pub fn meta(workspace: &Workspace, request: MetaRequest, json: bool) -> Result<u8> {
    let (cwd, env) = super::config::here();
    let config = match Config::load(&Config::default_files(&cwd, &env), &env) {
        Ok(config) => config,
        Err(e) => return Ok(fail(json, &e.to_string())),
    };
    if let MetaRequest::Status = request {
        return Ok(status(&config, &cwd, json));
    }
    let meta = match Meta::open(&config, &workspace.db_path()) {
        Ok(meta) => meta,
        Err(e) => return Ok(fail(json, &e.to_string())),
    };
    Ok(match answer(&meta, request, json) {
        Ok(code) => code,
        Err(MetaError::NoSession(id)) => refused(
            json,
            &format!("no user session {id} (it expired or never existed)"),
            Value::Null,
        ),
        Err(e) => fail(json, &e.to_string()),
    })
}

/// `orchestrate mcp`: the server on stdio, bound to a worker by `binding`. A worker's server reads the settings its coordinator wrote (`config`):
/// never the worker's checkout, whose orchestrate.toml the agent may have changed, nor its
/// environment.
pub fn mcp(workspace: &Workspace, binding: Binding, config: Option<&Path>) -> Result<u8> {
    let config = match config {
        Some(file) => {
            if !file.is_file() {
                anyhow::bail!("{}: no such settings file", file.display());
            }
            Config::load(&[file.to_path_buf()], &[])?
        }
        None => {
            let (cwd, env) = super::config::here();
            Config::load(&Config::default_files(&cwd, &env), &env)?
        }
    };
    let meta = Meta::open(&config, &workspace.db_path())?;
    crate::mcp::serve(meta, binding)?;
    Ok(0)
}

fn answer(meta: &Meta, request: MetaRequest, json: bool) -> Result<u8, MetaError> {
    match request {
        MetaRequest::Route { text, session } => {
            let r = meta.route(&text, session.as_deref(), None)?;
            say(json, &r, || {
                format!(
                    "{} ({}, confidence {}): {}",
                    r.target, r.action, r.confidence, r.reasoning
                )
            });
        }
        MetaRequest::Acquire {
            resource,
            holder,
            ttl_secs,
        } => {
            let ttl = ttl_secs.map(seconds).transpose()?;
            return Ok(lock_answer(
                json,
                meta.acquire(&resource, &holder, ttl)?,
                "locked",
            ));
        }
        MetaRequest::Release { resource, holder } => {
            return Ok(lock_answer(
                json,
                meta.release(&resource, &holder)?,
                "released",
            ));
        }
        MetaRequest::Check { resource } => {
            let state = meta.check(&resource)?;
            say(json, &state, || match &state.lock {
                Some(lock) => format!("{resource} is locked: {}", lease(lock)),
                None => format!("{resource} is free"),
            });
        }
        MetaRequest::Locks { prefix } => {
            let locks = meta.locks(&prefix)?;
            if json {
                println!("{}", json!({ "locks": locks }));
            } else if locks.is_empty() {
                println!("no locks held");
            } else {
                for lock in &locks {
                    println!("{}  {}", lock.resource, lease(lock));
                }
            }
        }
        MetaRequest::Resolve {
            conflict_type,
            contestants,
        } => {
            let r = meta.resolve(&conflict_type, &contestants, &json!({"source": "cli"}))?;
            say(json, &r, || {
                let losers = if r.losers.is_empty() {
                    String::new()
                } else {
                    format!(" over {}", r.losers.join(", "))
                };
                format!("{} wins{losers} ({})", r.winner, r.rule)
            });
        }
        MetaRequest::SessionCreate { user } => {
            let s = meta.create_session(&user)?;
            say(json, &s, || session_line(&s));
        }
        MetaRequest::SessionGet { id } => {
            let s = meta.get_session(&id)?;
            say(json, &s, || session_line(&s));
        }
        MetaRequest::SessionUpdate {
            id,
            project,
            task,
            context,
        } => {
            let context = context
                .map(|text| match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => Ok(map),
                    _ => Err(MetaError::BadInput(format!(
                        "--context {text:?} is not a JSON object"
                    ))),
                })
                .transpose()?;
            let update = SessionUpdate {
                context,
                current_project: project,
                current_task: task,
            };
            let s = meta.update_session(&id, &update)?;
            say(json, &s, || session_line(&s));
        }
        MetaRequest::Status => unreachable!("answered before the store opens"),
    }
    Ok(0)
}

fn seconds(secs: f64) -> Result<Duration, MetaError> {
    if secs.is_finite() && secs > 0.0 && secs <= 30.0 * 86_400.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(MetaError::BadInput(format!(
            "--ttl {secs} is not a number of seconds above 0 and at most 30 days"
        )))
    }
}

fn status(config: &Config, cwd: &std::path::Path, json: bool) -> u8 {
    let health = crate::meta::health(config, cwd);
    if json {
        println!(
            "{}",
            serde_json::to_string(&health).expect("health serialises")
        );
    } else {
        for (name, s) in &health.services {
            let state = if s.healthy { "ok  " } else { "FAIL" };
            let detail = [
                s.version.as_deref(),
                s.endpoint.as_deref(),
                s.error.as_deref(),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("  ");
            println!("{state}  {name:<10} {:<9}  {detail}", s.kind);
        }
        println!(
            "{}",
            if health.all_healthy {
                "all healthy"
            } else {
                "not all healthy"
            }
        );
    }
    if health.all_healthy { 0 } else { REFUSED }
}

fn lease(lock: &Lock) -> String {
    format!(
        "held by {} until {} (token {})",
        lock.holder, lock.expires_at, lock.token
    )
}

fn session_line(s: &UserSession) -> String {
    let mut line = format!("session {} of {}", s.id, s.user_id);
    if let Some(p) = &s.current_project {
        line.push_str(&format!(", project {p}"));
    }
    if let Some(t) = &s.current_task {
        line.push_str(&format!(", task {t}"));
    }
    line.push_str(&format!(
        ", {} history entries, updated {}",
        s.history.len(),
        s.updated_at
    ));
    line
}

/// The seed's `{success, lock?}` for a lock command, with the refusal when refused.
fn lock_answer(json: bool, outcome: Result<Lock, LockRefusal>, done: &str) -> u8 {
    match outcome {
        Ok(lock) => {
            if json {
                println!("{}", json!({"success": true, "lock": lock}));
            } else {
                println!("{done} {}: {}", lock.resource, lease(&lock));
            }
            0
        }
        Err(refusal) => {
            let detail = serde_json::to_value(&refusal).expect("a refusal serialises");
            refused(json, &refusal.to_string(), detail)
        }
    }
}

fn say<T: serde::Serialize>(json: bool, value: &T, line: impl FnOnce() -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string(value).expect("answers serialise")
        );
    } else {
        println!("{}", line());
    }
}

fn refused(json: bool, why: &str, detail: Value) -> u8 {
    if json {
        let mut answer = json!({"success": false, "error": why});
        if let Value::Object(fields) = detail {
            answer.as_object_mut().unwrap().extend(fields);
        }
        println!("{answer}");
    } else {
        eprintln!("orchestrate: {why}");
    }
    REFUSED
}

fn fail(json: bool, why: &str) -> u8 {
    if json {
        println!("{}", json!({"success": false, "error": why}));
    }
    eprintln!("orchestrate: {why}");
    ERROR
}
