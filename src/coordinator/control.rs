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

/// How long a client waits for the coordinator's answer.
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
}

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
            Ok(request) => {
                let (tx, rx) = mpsc::channel();
                to_loop((request, tx));
                rx.recv_timeout(REPLY_TIMEOUT).unwrap_or_else(|_| {
                    ControlReply::refused("the coordinator did not answer in time")
                })
            }
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
    #[error("control socket {}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// Sends one request and waits for the reply.
pub fn send(
    path: &Path,
    session: &str,
    request: &ControlRequest,
) -> Result<ControlReply, ControlError> {
    let io_error = |source| ControlError::Io {
        path: path.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(path).map_err(|_| ControlError::NotRunning {
        path: path.to_path_buf(),
        session: session.to_string(),
    })?;
    stream
        .set_read_timeout(Some(REPLY_TIMEOUT + Duration::from_secs(5)))
        .map_err(io_error)?;
    let mut writer = stream.try_clone().map_err(io_error)?;
    let mut line = serde_json::to_string(request).unwrap_or_default();
    line.push('\n');
    writer.write_all(line.as_bytes()).map_err(io_error)?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(io_error)?;
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
            &ControlRequest {
                cmd: ControlCommand::Pause,
                worker: Some("w1".into()),
                data: None,
            },
        )
        .unwrap();
        assert_eq!(reply, ControlReply::done("paused w1"));
        handle.join().unwrap();
        let missing = send(
            &dir.path().join("nope.sock"),
            "orch_x",
            &ControlRequest {
                cmd: ControlCommand::Stop,
                worker: None,
                data: None,
            },
        );
        assert!(
            missing
                .unwrap_err()
                .to_string()
                .starts_with("the coordinator is not running")
        );
    }
}
