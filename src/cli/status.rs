//! `orchestrate status [SESSION] [--json]`: every session in one line each, or one session
//! with its tasks and workers. Worker state comes from the journals through the same
//! function every surface uses; task state from the coordinator's journal and the database.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{follow, lookup};
use crate::session::{SessionDir, Store, Workspace};
use crate::timestamp::Timestamp;
use crate::worker::WorkerSummary;

pub fn status(workspace: &Workspace, session: Option<&str>, as_json: bool) -> Result<u8> {
    match session {
        None => all_sessions(workspace, as_json),
        Some(name) => {
            let session = lookup::session(workspace, name)?;
            let report = one_session(workspace, &session)?;
            if as_json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print_session(&report);
            }
            Ok(0)
        }
    }
}

fn all_sessions(workspace: &Workspace, as_json: bool) -> Result<u8> {
    let ids = workspace.session_ids();
    let mut rows = Vec::new();
    for id in &ids {
        let Ok(session) = workspace.open_session(id) else {
            continue;
        };
        let report = one_session(workspace, &session)?;
        rows.push(report);
    }
    if as_json {
        println!("{}", serde_json::to_string_pretty(&Value::Array(rows))?);
        return Ok(0);
    }
    if rows.is_empty() {
        println!(
            "no sessions in {} yet; try `orchestrate demo`",
            shown_root(workspace).display()
        );
        return Ok(0);
    }
    println!("workspace {}", shown_root(workspace).display());
    println!(
        "{:<26} {:<12} {:>5} {:>6}  GOAL",
        "SESSION", "STATE", "AGE", "TASKS"
    );
    let colour = use_colour();
    let now = Timestamp::now();
    for r in rows {
        let tasks = r["tasks"].as_array().map_or(0, Vec::len);
        let done = r["tasks"].as_array().map_or(0, |t| {
            t.iter().filter(|t| t["state"] == "succeeded").count()
        });
        let goal = r["goal"].as_str().unwrap_or("");
        let goal: String = goal.chars().take(60).collect();
        let state = r["state"].as_str().unwrap_or("");
        // Running, but a task waits for the operator (recovery escalated it): say so.
        let held = r["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["needs_you"].is_string()));
        let state = if state == "running" && held {
            "needs you"
        } else {
            state
        };
        let created = serde_json::from_value::<Timestamp>(r["created_at"].clone()).ok();
        let age = created.map_or("-".into(), |c| age(now.millis() - c.millis()));
        println!(
            "{:<26} {} {:>5} {:>6}  {goal}",
            r["session"].as_str().unwrap_or(""),
            paint(state, &format!("{state:<12}"), colour),
            age,
            format!("{done}/{tasks}")
        );
    }
    Ok(0)
}

/// Everything `status` knows about one session, as JSON (the text view prints it).
pub fn one_session(workspace: &Workspace, session: &SessionDir) -> Result<Value> {
    let info = session.read_info()?;
    let (history, alive) = lookup::history(session);
    // Read-only: status works on a full or read-only disk, and never creates anything.
    let store = Store::open_read_only(&workspace.db_path())?;
    let row = store.session(&session.id)?;
    let recorded_pid = row.as_ref().and_then(|r| r.coordinator_pid);
    let tasks: Vec<Value> = store
        .tasks(&session.id)?
        .into_iter()
        .map(|t| {
            // A task recovery holds for the operator says what they must do.
            let held = history.tasks.get(&t.id);
            let needs_you = held.and_then(|h| match &h.status {
                Some(crate::coordinator::schedule::TaskStatus::Escalated { reason }) => Some(reason.clone()),
                _ => None,
            });
            let worker = held.and_then(|h| h.worker.clone());
            json!({"id": t.id, "title": t.title, "agent": t.agent, "role": t.role, "state": t.state,
                   "retries": t.retries, "branch": t.branch, "needs_you": needs_you, "worker": worker,
                   "depends_on": serde_json::from_str::<Value>(&t.depends_on).unwrap_or(Value::Null)})
        })
        .collect();
    let usage = store.worker_usage(&session.id).unwrap_or_default();
    // The path leases its workers hold (meta locks named `SESSION:path`).
    let config = info
        .config
        .get("config")
        .cloned()
        .and_then(|c| serde_json::from_value::<crate::config::Config>(c).ok())
        .unwrap_or_default();
    // Only a live session holds any: its coordinator releases them as tasks end.
    let (leases, leases_error) = match alive {
        None => (Vec::new(), None),
        Some(_) => match crate::meta::session_leases(&config, &workspace.db_path(), &session.id) {
            Ok(leases) => (leases, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        },
    };
    // From each worker's summary: constant time however long its journal (see worker::summary).
    let workers: Vec<Value> = lookup::worker_names(session)
        .into_iter()
        .map(|name| {
            let summary = WorkerSummary::load(&session.summary_path(&name), &session.events_path(&name))
                .unwrap_or_default();
            let status = &summary.status;
            let sample = usage.get(&name).copied();
            let usage = summary.usage;
            let held: Vec<&str> = leases
                .iter()
                .filter(|l| l.holder == name)
                .map(|l| l.resource.as_str())
                .collect();
            json!({"name": name, "task": summary.task, "agent": summary.agent, "leases": held,
                   "state": status.state().seen_with(alive.is_some()).as_str(), "pid": status.pid, "exit_code": status.exit.and_then(|x| x.code),
                   "signal": status.exit.and_then(|x| x.signal), "retries": status.retries(),
                   "retrying": status.retrying.as_ref().map(|r| r.text.clone()),
                   "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd,
                   "started_at": summary.first_at, "last_event_at": summary.last_at, "events": summary.events,
                   "cpu_percent": sample.map(|s| (s.0 * 10.0).round() / 10.0), "rss_mb": sample.map(|s| s.1)})
        })
        .collect();
    Ok(json!({
        "session": session.id,
        "workspace": shown_root(workspace),
        "goal": info.prompt,
        "target": info.target,
        "created_at": info.created_at,
        "state": history.state(alive.is_some()),
        "paused_for": history.disk_full.as_ref().filter(|_| alive.is_some()),
        "tier": history.tier,
        "coordinator": {"pid": alive.or(recorded_pid), "alive": alive.is_some()},
        "tasks": tasks,
        "workers": workers,
        "leases": leases.iter().map(|l| json!({"path": l.resource, "worker": l.holder,
            "token": l.token, "acquired_at": l.acquired_at, "expires_at": l.expires_at})).collect::<Vec<_>>(),
        "leases_error": leases_error,
        "limits": limits_of(&info.config),
    }))
}

fn print_session(r: &Value) {
    let s = |v: &Value| {
        v.as_str().map(str::to_string).unwrap_or_else(|| {
            if v.is_null() {
                "-".into()
            } else {
                v.to_string()
            }
        })
    };
    let id = s(&r["session"]);
    println!("session  {id}");
    println!("in       {}", s(&r["workspace"]));
    println!("goal     {}", s(&r["goal"]));
    println!("target   {}", s(&r["target"]));
    let state = s(&r["state"]);
    let pid = &r["coordinator"]["pid"];
    match state.as_str() {
        "interrupted" => println!(
            "state    interrupted: the coordinator (pid {}) died before finishing; `orchestrate resume {id}` continues",
            s(pid)
        ),
        "paused" if r["paused_for"].is_string() => println!(
            "state    paused by the coordinator: {}. Nothing is lost; free space, then `orchestrate control {id} resume`",
            s(&r["paused_for"])
        ),
        _ if r["coordinator"]["alive"] == true => {
            println!("state    {state} (coordinator pid {})", s(pid))
        }
        _ => println!("state    {state}"),
    }
    println!("tier     {}", s(&r["tier"]));
    let limits = &r["limits"];
    if !limits["cpu_percent"].is_null() {
        println!(
            "limits   {}% CPU, {} MiB, {}s per worker, {}s per command ({})",
            s(&limits["cpu_percent"]),
            s(&limits["memory_mb"]),
            s(&limits["runtime_secs"]),
            s(&limits["command_timeout_secs"]),
            s(&limits["mechanism"])
        );
    }
    println!();
    println!(
        "{:<16} {:<8} {:<10} {:>7}  BRANCH",
        "TASK", "AGENT", "STATE", "RETRIES"
    );
    for t in r["tasks"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:<8} {:<10} {:>7}  {}",
            s(&t["id"]),
            s(&t["agent"]),
            s(&t["state"]),
            s(&t["retries"]),
            s(&t["branch"])
        );
    }
    for t in r["tasks"].as_array().into_iter().flatten() {
        if let Some(fix) = t["needs_you"].as_str() {
            println!(
                "! task {} needs you: {fix}: orchestrate control {} restart --worker {}",
                s(&t["id"]),
                s(&r["session"]),
                s(&t["worker"])
            );
        }
    }
    println!();
    println!(
        "{:<22} {:<11} {:>8} {:>5} {:>16} {:>9} {:>6} {:>7}",
        "WORKER", "STATE", "PID", "EXIT", "TOKENS IN/OUT", "COST", "CPU", "MEM"
    );
    for w in r["workers"].as_array().into_iter().flatten() {
        let exit = match (&w["exit_code"], &w["signal"]) {
            (Value::Number(c), _) => c.to_string(),
            (_, Value::Number(sig)) => format!("sig{sig}"),
            _ => "-".into(),
        };
        let cost = w["cost_usd"]
            .as_f64()
            .filter(|c| *c > 0.0)
            .map_or("-".to_string(), |c| format!("${c:.4}"));
        let tokens = format!("{}/{}", w["input_tokens"], w["output_tokens"]);
        let cpu = w["cpu_percent"]
            .as_f64()
            .map_or("-".to_string(), |c| format!("{c:.0}%"));
        let mem = w["rss_mb"]
            .as_i64()
            .map_or("-".to_string(), |m| format!("{m}M"));
        println!(
            "{:<22} {:<11} {:>8} {:>5} {:>16} {:>9} {:>6} {:>7}",
            s(&w["name"]),
            s(&w["state"]),
            s(&w["pid"]),
            exit,
            tokens,
            cost,
            cpu,
            mem
        );
        if let Some(retrying) = w["retrying"].as_str() {
            println!("{:<22} {retrying}", "");
        }
        let leases: Vec<&str> = w["leases"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !leases.is_empty() {
            println!("{:<22} leases: {}", "", leases.join(", "));
        }
    }
}

/// The workspace as an absolute path: which one was read is worth knowing.
pub fn shown_root(workspace: &Workspace) -> std::path::PathBuf {
    std::fs::canonicalize(workspace.root()).unwrap_or_else(|_| workspace.root().to_path_buf())
}

/// `status --watch`: the same view, redrawn every `interval`; with a session, until it ends
/// (then the exit code says how, as with `--no-dashboard`).
pub fn watch(workspace: &Workspace, session: Option<&str>, interval: Duration) -> Result<u8> {
    let tty = std::io::stdout().is_terminal();
    loop {
        if tty {
            print!("\x1b[H\x1b[2J");
        }
        let ended = match session {
            None => {
                all_sessions(workspace, false)?;
                None
            }
            Some(name) => {
                let session = lookup::session(workspace, name)?;
                let report = one_session(workspace, &session)?;
                print_session(&report);
                match report["state"].as_str() {
                    Some(s @ ("done" | "failed" | "stopped")) => Some(follow::exit_code(s)),
                    Some("interrupted") => Some(follow::EXIT_INTERRUPTED),
                    _ => None,
                }
            }
        };
        if let Some(code) = ended {
            return Ok(code);
        }
        if !tty {
            println!();
        }
        let _ = std::io::stdout().flush();
        std::thread::sleep(interval);
    }
}

/// `42s`, `5m`, `3h`, `2d`.
fn age(millis: i64) -> String {
    let secs = millis.max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Colour for a terminal that wants it (NO_COLOR is respected).
fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the colour of `state`: the dashboard's meanings in plain ANSI.
fn paint(state: &str, text: &str, colour: bool) -> String {
    let code = match state {
        "done" => "32",
        "running" => "36",
        "paused" | "stopping" | "needs you" => "33",
        "failed" | "interrupted" => "31",
        _ => "2",
    };
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// The session's resource limits per worker and how they are enforced.
fn limits_of(settings: &Value) -> Value {
    let sandbox = &settings["config"]["sandbox"];
    json!({
        "mechanism": crate::worker::limits::MECHANISM,
        "cpu_percent": sandbox["cpu_percent"],
        "memory_mb": sandbox["memory_mb"],
        "runtime_secs": sandbox["runtime_secs"],
        "command_timeout_secs": sandbox["command_timeout_secs"],
    })
}
