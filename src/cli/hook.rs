//! `orchestrate hook CLI --socket PATH --worker NAME`: what each agent CLI runs before a tool
//! (see `agents::guard`). It reads the CLI's hook JSON on stdin, asks the session's
//! coordinator, and answers in the CLI's own shape. It fails closed: no coordinator, a
//! timeout or unreadable input is a refusal.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use crate::agents::{AgentKind, hook};
use crate::coordinator::control::{ControlCommand, ControlRequest, send_within};

/// `explicit`: allow out loud (see [`hook::allow_explicitly`]).
pub fn run(kind: AgentKind, socket: &Path, worker: &str, timeout: Duration, explicit: bool) -> u8 {
    let answer = decide(kind, socket, worker, timeout, explicit);
    let _ = std::io::stdout().write_all(answer.stdout.as_bytes());
    let _ = std::io::stderr().write_all(answer.stderr.as_bytes());
    answer.code
}

fn decide(
    kind: AgentKind,
    socket: &Path,
    worker: &str,
    timeout: Duration,
    explicit: bool,
) -> hook::HookAnswer {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return hook::fail_closed("the hook's input could not be read");
    }
    if serde_json::from_str::<serde_json::Value>(&input).is_err() {
        return hook::fail_closed("the hook's input is not JSON");
    }
    let request = ControlRequest {
        data: Some(input),
        ..ControlRequest::new(ControlCommand::Evaluate, Some(worker.to_string()))
    };
    match send_within(socket, worker, &request, timeout) {
        Ok(reply) if reply.ok && explicit => hook::allow_explicitly(kind),
        Ok(reply) if reply.ok => hook::allow(),
        Ok(reply) => hook::deny(kind, &reply.message),
        Err(e) => hook::fail_closed(&format!("no verdict, so no ({e})")),
    }
}
