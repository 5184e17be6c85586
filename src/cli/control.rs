//! `orchestrate control SESSION pause|resume|stop|review [--worker W]` and
//! `orchestrate kill SESSION [WORKER]`: one request over the control socket, its reply
//! printed; exit 1 when it did not take effect or nobody is listening.

use anyhow::Result;

use super::lookup;
use crate::coordinator::control::{ControlCommand, ControlRequest, send};
use crate::session::Workspace;

pub fn control(
    workspace: &Workspace,
    session: &str,
    cmd: ControlCommand,
    worker: Option<&str>,
) -> Result<u8> {
    let session = lookup::session(workspace, session)?;
    let (history, alive) = lookup::history(&session);
    if let (Some(outcome), None) = (&history.finished, alive) {
        anyhow::bail!(
            "session {} is finished ({outcome}); there is nothing left to {}",
            session.id,
            cmd.name()
        );
    }
    if let Some(w) = worker {
        lookup::worker(&session, w)?;
    }
    let request = ControlRequest {
        cmd,
        worker: worker.map(str::to_string),
        data: None,
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
