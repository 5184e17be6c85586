//! Behaviour under load, through the real binary with simulated agents: what `status` says of a
//! long session comes from the summaries the workers keep, and must agree exactly with a fold of
//! the whole journals, even when the summaries are stale, missing or damaged.

mod common;

use std::path::Path;

use common::{Env, journal, session_id, text};
use orchestrate::event::UsageTotals;
use orchestrate::worker::WorkerStatus;
use serde_json::{Value, json};

/// What reading every journal whole gives for each worker, in `status --json`'s terms.
fn folded_from_journals(session_dir: &Path) -> Vec<Value> {
    let mut names: Vec<String> = std::fs::read_dir(session_dir.join("events"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".jsonl").map(str::to_string)
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let events = journal(&session_dir.join("events").join(format!("{name}.jsonl")));
            let mut status = WorkerStatus::default();
            events.iter().for_each(|e| status.observe(e));
            let usage = UsageTotals::of(&events);
            json!({"name": name, "task": events[0].task.as_deref(), "agent": &*events[0].agent,
                   "state": status.state().as_str(), "pid": status.pid,
                   "exit_code": status.exit.and_then(|x| x.code), "retries": status.retries(),
                   "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                   "cost_usd": usage.cost_usd, "events": events.len(),
                   "started_at": events[0].timestamp, "last_event_at": events.last().unwrap().timestamp})
        })
        .collect()
}

/// The same fields from `status --json`.
fn from_status(status: &Value) -> Vec<Value> {
    let keys = [
        "name",
        "task",
        "agent",
        "state",
        "pid",
        "exit_code",
        "retries",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "events",
        "started_at",
        "last_event_at",
    ];
    status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            Value::Object(
                keys.iter()
                    .map(|k| (k.to_string(), w[*k].clone()))
                    .collect(),
            )
        })
        .collect()
}

#[test]
fn status_agrees_with_the_journals_however_stale_the_summaries() {
    let env = Env::new();
    // Three long, chatty workers (megabytes of journal each) and the reviewers of each.
    let plan = env.plan(
        "[[tasks]]\nid = \"long\"\nagent = \"claude\"\nprompt = \"p\"\n\n\
         [[tasks]]\nid = \"second\"\nagent = \"codex\"\nprompt = \"q\"\n\n\
         [[tasks]]\nid = \"third\"\nagent = \"gemini\"\nprompt = \"r\"\n",
    );
    let out = env.run(
        &plan,
        &["--no-dashboard"],
        &[
            ("ORCHESTRATE_SIM_SCENARIO", "chatty"),
            ("ORCHESTRATE_SIM_LINES", "8000"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let id = session_id(&out);
    let dir = env.session_dir(&id);
    let long = std::fs::metadata(dir.join("events/claude-long.jsonl"))
        .unwrap()
        .len();
    assert!(long > 1 << 20, "a long journal: {long} bytes");
    let expected = folded_from_journals(&dir);
    assert!(expected.len() >= 3, "{expected:#?}");
    assert!(
        expected
            .iter()
            .any(|w| w["input_tokens"].as_u64() > Some(0)),
        "some usage to agree on: {expected:#?}"
    );

    // As the workers left them: saved when each finished.
    assert_eq!(from_status(&env.status(&id)), expected, "as saved");

    // Stale: the long worker's summary taken back to its first kilobyte's worth.
    let summaries = dir.join("summaries");
    let saved = summaries.join("claude-long.json");
    let long_journal = dir.join("events/claude-long.jsonl");
    let mut early = orchestrate::worker::WorkerSummary::default();
    early.observe(&journal(&long_journal)[0]);
    let bytes = std::fs::read(&long_journal).unwrap();
    early.offset = bytes.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
    std::fs::write(&saved, serde_json::to_vec(&early).unwrap()).unwrap();
    assert_eq!(from_status(&env.status(&id)), expected, "stale");

    // Damaged and missing.
    std::fs::write(&saved, b"{\"offset\": 12, \"events\": tru").unwrap();
    assert_eq!(from_status(&env.status(&id)), expected, "damaged");
    std::fs::remove_dir_all(&summaries).unwrap();
    assert_eq!(from_status(&env.status(&id)), expected, "missing");
}
