//! `orchestrate recoveries SESSION [--json]`: what recovery recognised and did in a session
//! (relaunches with their change, waits, escalations with the fix), from its journal.

use anyhow::Result;

use super::lookup;
use crate::event::{EventType, read_journal};
use crate::session::Workspace;

pub fn recoveries(workspace: &Workspace, session: &str, json: bool) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let (events, _) = read_journal(&session.path.join("orchestrator.jsonl"))?;
    let steps: Vec<_> = events
        .into_iter()
        .filter(|e| e.kind == EventType::Recovery)
        .filter(|e| e.phase().is_some_and(|p| p.starts_with("recovery_")))
        .collect();
    if json {
        for e in &steps {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(0);
    }
    if steps.is_empty() {
        println!("nothing recovered in session {}", session.id);
        return Ok(0);
    }
    for e in &steps {
        let phase = e.phase().unwrap_or("").trim_start_matches("recovery_");
        let c = e.timestamp.civil();
        println!(
            "{:02}:{:02}:{:02}  {:<10} {:<9} {:<30} {}",
            c.hour,
            c.minute,
            c.second,
            e.task.as_deref().unwrap_or("-"),
            phase,
            e.str_field("rule").or(e.str_field("step")).unwrap_or("-"),
            e.text()
        );
        if let Some(fix) = e.str_field("fix") {
            println!("{:>10}fix: {fix}", "");
        }
    }
    Ok(0)
}
