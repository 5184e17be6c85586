//! The control socket (`control.sock`, mode 0600): one JSON request per line, one JSON reply
//! per line. The listener hands each request to the coordinator's loop and waits for its
//! answer, so every command is decided in one place and every reply says whether it took
//! effect.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::session::check_name;
use crate::timestamp::Timestamp;

/// How long a client waits for the coordinator's answer, unless it says otherwise.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ControlCommand {
    Pause,
    Resume,
    Stop,
    Review,
    Input,
    Kill,
    Status,
    /// Run a failed or stopped task again (named by its worker), with a fresh retry budget.
    Restart,
    /// From `orchestrate hook`: may this tool call run? `data` is the CLI's hook input; the
    /// reply comes when the policy (or, for a confirm, the operator) decides.
    Evaluate,
    /// The open approvals, as JSON in the reply's message.
    Approvals,
    /// Answer approval `data` (its id); `reason` says why for a deny.
    Approve,
    Deny,
    /// Send a review's concerns to the worker it paused: it continues with them.
    Clarify,
}

impl ControlCommand {
    pub fn name(self) -> &'static str {
        match self {
            ControlCommand::Pause => "pause",
            ControlCommand::Resume => "resume",
            ControlCommand::Stop => "stop",
            ControlCommand::Review => "review",
            ControlCommand::Input => "input",
            ControlCommand::Kill => "kill",
            ControlCommand::Status => "status",
            ControlCommand::Restart => "restart",
            ControlCommand::Evaluate => "evaluate",
            ControlCommand::Approvals => "approvals",
            ControlCommand::Approve => "approve",
            ControlCommand::Deny => "deny",
            ControlCommand::Clarify => "clarify",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlRequest {
    pub cmd: ControlCommand,
    /// One worker, or the whole session when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// Bytes for `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Who asks (`$USER` of the client), journaled with answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// Why, for a deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Unix milliseconds after which the client has given up waiting: a request that reaches
    /// the coordinator later (it was stopped, or swamped) is refused, never applied late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
}

impl ControlRequest {
    pub fn new(cmd: ControlCommand, worker: Option<String>) -> Self {
        ControlRequest {
            cmd,
            worker,
            data: None,
            by: std::env::var("USER").ok(),
            reason: None,
            deadline_ms: None,
        }
    }

    /// True once the client that sent it has stopped waiting.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.deadline_ms.is_some_and(|d| now.millis() > d)
    }

    /// Why it is not even a request the coordinator could act on. (An expired one still goes
    /// to the loop, which refuses and journals it.)
    fn refusal(&self) -> Option<String> {
        let worker = self.worker.as_deref()?;
        check_name("worker", worker).err().map(|e| e.to_string())
    }
}

/// The reply to a request whose client had already given up.
pub const EXPIRED: &str =
    "expired: the client stopped waiting before the coordinator could act; nothing was done";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlReply {
    /// Whether the command took effect.
    pub ok: bool,
    pub message: String,
}

impl ControlReply {
    pub fn done(message: impl Into<String>) -> Self {
        ControlReply {
            ok: true,
            message: message.into(),
        }
    }
    pub fn refused(message: impl Into<String>) -> Self {
        ControlReply {
            ok: false,
            message: message.into(),
        }
    }
}

/// A request on its way to the coordinator's loop, with where its answer goes.
pub type ControlMessage = (ControlRequest, Sender<ControlReply>);

/// Binds `path` (0600) and serves it on a thread; each request is sent through `to_loop`.
pub fn serve(
    path: &Path,
    to_loop: impl Fn(ControlMessage) + Send + Sync + 'static,
) -> io::Result<()> {
    let _ = std::fs::remove_file(path); // A socket left by a coordinator that died.
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let to_loop = std::sync::Arc::new(to_loop);
    thread::Builder::new()
        .name("control-socket".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let to_loop = std::sync::Arc::clone(&to_loop);
                let _ = thread::Builder::new()
                    .name("control-client".into())
                    .spawn(move || serve_client(stream, &*to_loop));
            }
        })?;
    Ok(())
}

fn serve_client(stream: UnixStream, to_loop: &dyn Fn(ControlMessage)) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<ControlRequest>(&line) {
            Err(e) => ControlReply::refused(format!("not a control request: {e}")),
            Ok(request) => match request.refusal() {
                Some(why) => ControlReply::refused(why),
                None => {
                    let wait = request.deadline_ms.map_or(REPLY_TIMEOUT, |d| {
                        Duration::from_millis((d - Timestamp::now().millis()).max(0) as u64)
                    });
                    let (tx, rx) = mpsc::channel();
                    to_loop((request, tx));
                    rx.recv_timeout(wait).unwrap_or_else(|_| {
                        ControlReply::refused("the coordinator did not answer in time")
                    })
                }
            },
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if writer.write_all(text.as_bytes()).is_err() {
            return;
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("the coordinator is not running (nothing listens on {}); `orchestrate resume {session}` restarts it", path.display())]
    NotRunning {
        path: std::path::PathBuf,
        session: String,
    },
    #[error("the coordinator of {session} did not answer within {}s (is it stopped or overloaded?); the request will not be applied later", timeout.as_secs_f64())]
    NoAnswer { session: String, timeout: Duration },
    #[error("control socket {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Sends one request and waits up to [`REPLY_TIMEOUT`] for the reply.
pub fn send(
    path: &Path,
    session: &str,
    request: &ControlRequest,
) -> Result<ControlReply, ControlError> {
    send_within(path, session, request, REPLY_TIMEOUT)
}

/// Sends one request carrying the deadline `timeout` from now, and waits that long for the
/// reply; past it, the coordinator refuses the request instead of applying it late.
pub fn send_within(
    path: &Path,
    session: &str,
    request: &ControlRequest,
    timeout: Duration,
) -> Result<ControlReply, ControlError> {
    let io_error = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(path).map_err(|_| ControlError::NotRunning {
        path: path.to_path_buf(),
        session: session.to_string(),
    })?;
    // The socket's own answer ("did not answer in time") comes at the deadline; a stopped
    // coordinator gives none, so the client stops waiting a little after it.
    stream
        .set_read_timeout(Some(timeout + Duration::from_millis(500)))
        .map_err(io_error)?;
    let mut writer = stream.try_clone().map_err(io_error)?;
    let mut request = request.clone();
    request.deadline_ms = Some(Timestamp::now().millis() + timeout.as_millis() as i64);
    let mut line = serde_json::to_string(&request).unwrap_or_default();
    line.push('\n');
    writer.write_all(line.as_bytes()).map_err(io_error)?;
    let mut reply = String::new();
    match BufReader::new(stream).read_line(&mut reply) {
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            return Err(ControlError::NoAnswer {
                session: session.to_string(),
                timeout,
            });
        }
        other => other.map_err(io_error)?,
    };
    serde_json::from_str(&reply)
        .map_err(|e| io_error(io::Error::other(format!("bad reply {reply:?}: {e}"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_loop_and_replies_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let (tx, rx) = mpsc::channel::<ControlMessage>();
        serve(&path, move |m| {
            let _ = tx.send(m);
        })
        .unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let handle = thread::spawn(move || {
            let (request, reply) = rx.recv().unwrap();
            assert_eq!(request.cmd, ControlCommand::Pause);
            reply
                .send(ControlReply::done(format!(
                    "paused {}",
                    request.worker.unwrap()
                )))
                .unwrap();
        });
        let reply = send(
            &path,
            "s",
            &ControlRequest::new(ControlCommand::Pause, Some("w1".into())),
        )
        .unwrap();
        assert_eq!(reply, ControlReply::done("paused w1"));
        handle.join().unwrap();
        let missing = send(
            &dir.path().join("nope.sock"),
            "orch_x",
            &ControlRequest::new(ControlCommand::Stop, None),
        );
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .starts_with("the coordinator is not running")
        );
    }

    #[test]
    fn hostile_worker_names_never_reach_the_loop_and_requests_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        serve(&path, |_| panic!("must not reach the loop")).unwrap();
        let reply = send(
            &path,
            "s",
            &ControlRequest::new(ControlCommand::Stop, Some("../../etc".into())),
        )
        .unwrap();
        assert!(!reply.ok);
        assert!(
            reply.message.contains("not a valid name"),
            "{}",
            reply.message
        );

        let mut stale = ControlRequest::new(ControlCommand::Pause, None);
        stale.deadline_ms = Some(Timestamp::now().millis() - 1);
        assert!(stale.expired(Timestamp::now()));
        assert!(!ControlRequest::new(ControlCommand::Pause, None).expired(Timestamp::now()));
    }
}
