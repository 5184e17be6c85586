//! `orchestrate reviews SESSION [--json]`: the session's reviews, each reviewer's verdict,
//! and the decision taken, from `reviews/<id>.json`.

use anyhow::Result;
use serde_json::Value;

use super::lookup;
use crate::session::Workspace;

pub fn reviews(workspace: &Workspace, session: &str, json: bool) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let mut records: Vec<Value> = std::fs::read_dir(session.reviews_dir())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect();
    // r2 before r10.
    records.sort_by_key(|r| {
        r["id"]
            .as_str()
            .and_then(|id| id.trim_start_matches('r').parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&records)?);
        return Ok(0);
    }
    if records.is_empty() {
        println!("no review finished in session {} yet", session.id);
        return Ok(0);
    }
    for r in &records {
        let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
        println!(
            "{}  {} ({}: {})  -> {} (rule {}: {})",
            s(&r["id"]),
            s(&r["worker"]),
            s(&r["trigger"]["kind"]),
            s(&r["trigger"]["reason"]),
            s(&r["decision"]["action"]),
            r["decision"]["rule"],
            s(&r["decision"]["reason"])
        );
        for response in r["responses"].as_array().into_iter().flatten() {
            println!(
                "    {:<8} {:<9} {}",
                s(&response["reviewer"]),
                s(&response["verdict"]),
                s(&response["summary"])
            );
            for f in response["findings"].as_array().into_iter().flatten() {
                println!(
                    "             - [{}] {}:{} {}",
                    s(&f["severity"]),
                    s(&f["file"]),
                    f["line"],
                    s(&f["text"])
                );
            }
        }
    }
    Ok(0)
}
