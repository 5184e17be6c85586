//! `orchestrate control SESSION pause|resume|stop|review [--worker W]` and
//! `orchestrate kill SESSION [WORKER]`: one request over the control socket, its reply
//! printed; exit 1 when it did not take effect or nobody is listening.

use std::time::Duration;

use anyhow::Result;

use super::lookup;
use crate::coordinator::control::{ControlCommand, ControlReply, ControlRequest, send_within};
use crate::session::{Workspace, check_name};

pub struct ControlOptions<'a> {
    pub worker: Option<&'a str>,
    /// How long to wait for the coordinator; past it the request is refused, never applied.
    pub timeout: Duration,
    /// Print the reply as one JSON object `{ok, message}`.
    pub json: bool,
}

pub fn control(
    workspace: &Workspace,
    session: &str,
    cmd: ControlCommand,
    options: ControlOptions,
) -> Result<u8> {
    if let Some(w) = options.worker {
        check_name("worker", w)?;
    }
    let session = lookup::session(workspace, session)?;
    let (history, alive) = lookup::history(&session);
    if let (Some(outcome), None) = (&history.finished, alive) {
        anyhow::bail!(
            "session {} is finished ({outcome}); there is nothing left to {}",
            session.id,
            cmd.name()
        );
    }
    if let Some(w) = options.worker {
        lookup::worker(&session, w)?;
    }
    let request = ControlRequest::new(cmd, options.worker.map(str::to_string));
    let reply = send_within(
        &session.control_socket(),
        &session.id,
        &request,
        options.timeout,
    )?;
    print_reply(&reply, options.json);
    Ok(if reply.ok { 0 } else { 1 })
}

fn print_reply(reply: &ControlReply, json: bool) {
    if json {
        println!("{}", serde_json::to_string(reply).unwrap_or_default());
    } else if reply.ok {
        println!("{}", reply.message);
    } else {
        eprintln!("orchestrate: {}", reply.message);
    }
}
