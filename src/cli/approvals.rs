//! `orchestrate approvals SESSION`, `orchestrate approve SESSION ID` and
//! `orchestrate deny SESSION ID [--reason R]`: the operator's side of the sandbox's
//! `confirm` rules, over the control socket.

use anyhow::{Result, bail};

use super::lookup;
use crate::coordinator::control::{ControlCommand, ControlRequest, send};
use crate::coordinator::run::ApprovalView;
use crate::session::Workspace;
use crate::timestamp::Timestamp;

pub fn list(workspace: &Workspace, session: &str, json: bool) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let request = ControlRequest::new(ControlCommand::Approvals, None);
    let reply = send(&session.control_socket(), &session.id, &request)?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    let open: Vec<ApprovalView> = serde_json::from_str(&reply.message)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&open)?);
        return Ok(0);
    }
    if open.is_empty() {
        println!("no approval is waiting in session {}", session.id);
        return Ok(0);
    }
    let now = Timestamp::now();
    println!("{:<5} {:<22} {:>8}  WHAT", "ID", "WORKER", "DENY IN");
    for a in &open {
        let left = (a.deadline.millis() - now.millis()).max(0) / 1000;
        println!("{:<5} {:<22} {:>7}s  {}", a.id, a.worker, left, a.what);
        println!("{:<37}{}", "", a.reason);
    }
    println!(
        "answer: orchestrate approve {id} ID   |   orchestrate deny {id} ID --reason \"...\"",
        id = session.id
    );
    Ok(0)
}

pub fn answer(
    workspace: &Workspace,
    session: &str,
    id: &str,
    approve: bool,
    reason: Option<String>,
) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let cmd = if approve {
        ControlCommand::Approve
    } else {
        ControlCommand::Deny
    };
    let request = ControlRequest {
        data: Some(id.to_string()),
        reason,
        ..ControlRequest::new(cmd, None)
    };
    let reply = send(&session.control_socket(), &session.id, &request)?;
    if reply.ok {
        println!("{}", reply.message);
        Ok(0)
    } else {
        eprintln!("orchestrate: {}", reply.message);
        Ok(1)
    }
}
