//! Health (the seed's `/status`): every router target with a URL answers `GET URL/health`
//! within a short timeout, and every agent CLI is installed with a version. The checks run in
//! parallel, one thread each, so the answer takes as long as the slowest: a URL's timeout, or
//! a CLI's `--version`, which may take up to 20 s (a cold node start; see `agents::pins`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::agents::pins::installed;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceHealth {
    pub healthy: bool,
    /// `target` or `agent_cli`.
    pub kind: &'static str,
    /// What was checked: the URL, or the CLI's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it is not healthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    pub services: BTreeMap<String, ServiceHealth>,
    pub all_healthy: bool,
}

/// Checks `targets` (name, base URL) and `clis` (name, command) at once.
pub fn check(
    targets: &[(String, String)],
    clis: &[(String, Vec<String>)],
    cwd: &Path,
    timeout: Duration,
) -> Health {
    let services: BTreeMap<String, ServiceHealth> = std::thread::scope(|scope| {
        let targets: Vec<_> = targets
            .iter()
            .map(|(name, url)| (name, scope.spawn(move || check_url(url, timeout))))
            .collect();
        let clis: Vec<_> = clis
            .iter()
            .map(|(name, command)| (name, scope.spawn(move || check_cli(command, cwd))))
            .collect();
        targets
            .into_iter()
            .chain(clis)
            .map(|(name, handle)| {
                let health = handle.join().unwrap_or_else(|_| ServiceHealth {
                    healthy: false,
                    kind: "target",
                    endpoint: None,
                    version: None,
                    error: Some("the check panicked".into()),
                });
                (name.clone(), health)
            })
            .collect()
    });
    Health {
        all_healthy: services.values().all(|s| s.healthy),
        services,
    }
}

fn check_cli(command: &[String], cwd: &Path) -> ServiceHealth {
    let (path, version) = installed(command, cwd);
    let error = match (&path, &version) {
        (None, _) => Some(format!(
            "{} is not installed (not on PATH)",
            command.first().map_or("", String::as_str)
        )),
        (Some(_), None) => Some("it did not answer --version".into()),
        _ => None,
    };
    ServiceHealth {
        healthy: error.is_none(),
        kind: "agent_cli",
        endpoint: path.map(|p| p.display().to_string()),
        version,
        error,
    }
}

fn check_url(base: &str, timeout: Duration) -> ServiceHealth {
    let url = format!("{}/health", base.trim_end_matches('/'));
    let error = get_status(&url, timeout).err();
    ServiceHealth {
        healthy: error.is_none(),
        kind: "target",
        endpoint: Some(url),
        version: None,
        error,
    }
}

/// `GET url` over plain HTTP/1.0; `Ok` on a 2xx answer.
fn get_status(url: &str, timeout: Duration) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "only http:// URLs are checked".to_string())?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("cannot resolve {authority}"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {authority}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    let path = if path.is_empty() { "/" } else { path };
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("cannot send to {authority}: {e}"))?;
    let mut head = [0u8; 64];
    let read = stream
        .read(&mut head)
        .map_err(|e| format!("no answer from {authority}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..read]);
    let code = line.split_whitespace().nth(1).unwrap_or("");
    if code.starts_with('2') {
        Ok(())
    } else {
        Err(format!(
            "{url} answered {}",
            line.lines().next().unwrap_or("nothing")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server that answers one request with `status_line`.
    fn answering(status_line: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                // The whole request, then the answer; closing with unread bytes would reset
                // the connection under the answer.
                let mut request = Vec::new();
                let mut buf = [0u8; 512];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(s, "{status_line}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn a_target_is_healthy_when_its_health_endpoint_answers_2xx() {
        let ok = answering("HTTP/1.1 200 OK");
        let bad = answering("HTTP/1.1 503 Service Unavailable");
        // A port nothing listens on.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let health = check(
            &[
                ("up".into(), ok),
                ("sick".into(), bad),
                ("down".into(), closed),
            ],
            &[],
            Path::new("."),
            Duration::from_secs(2),
        );
        assert!(health.services["up"].healthy, "{:?}", health.services["up"]);
        assert!(
            health.services["up"]
                .endpoint
                .as_ref()
                .unwrap()
                .ends_with("/health")
        );
        assert!(!health.services["sick"].healthy);
        assert!(
            health.services["sick"]
                .error
                .as_ref()
                .unwrap()
                .contains("503")
        );
        assert!(
            health.services["down"]
                .error
                .as_ref()
                .unwrap()
                .starts_with("cannot connect")
        );
        assert!(!health.all_healthy);
    }

    #[test]
    fn a_missing_cli_is_unhealthy_and_says_so() {
        let health = check(
            &[],
            &[("ghost".into(), vec!["orchestrate-no-such-cli".into()])],
            Path::new("."),
            Duration::from_secs(1),
        );
        let ghost = &health.services["ghost"];
        assert_eq!(ghost.kind, "agent_cli");
        assert!(ghost.error.as_ref().unwrap().contains("not installed"));
        assert!(!health.all_healthy);
    }
}
