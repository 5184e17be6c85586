//! `orchestrate stub-model`: a local model endpoint on 127.0.0.1 that speaks the Anthropic
//! Messages, OpenAI Responses and Gemini APIs, streaming the way the real services do, and
//! plays a scenario (`crate::scenario`), so the real `claude`, `codex` and `gemini` run fully
//! offline and act the story out.
//!
//! One server serves many workers: a base URL `http://127.0.0.1:PORT/s/<scenario>/w/<worker>`
//! names the story and the worker (all three CLIs keep a base URL's path). Without the prefix
//! the server's default scenario plays. Every request is logged as one JSON line: path, model,
//! tools offered, the turn answered; never a credential.

pub mod anthropic;
mod conversation;
pub mod gemini;
pub mod openai;
mod server;

use std::net::SocketAddr;

pub use conversation::{Api, Facts};
pub use server::{StubConfig, StubModel, serve_blocking};

use crate::scenario::Scenario;

/// The part of a request's path that names the scenario and the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub scenario: Option<Scenario>,
    pub worker: Option<String>,
    /// The API path after the prefix (`/v1/messages`).
    pub rest: String,
}

impl Route {
    /// Splits `/s/<scenario>/w/<worker>/rest` (either part optional). An unknown scenario name
    /// is an error the client sees as a 404.
    pub fn parse(path: &str) -> Result<Route, String> {
        let mut rest = path;
        let mut scenario = None;
        if let Some((name, tail)) = segment(rest, "/s/") {
            scenario = Some(name.parse::<Scenario>()?);
            rest = tail;
        }
        let mut worker = None;
        if let Some((name, tail)) = segment(rest, "/w/") {
            worker = Some(name.to_string());
            rest = tail;
        }
        Ok(Route {
            scenario,
            worker,
            rest: if rest.is_empty() {
                "/".into()
            } else {
                rest.into()
            },
        })
    }
}

/// `/key/value/tail` -> `(value, /tail)`.
fn segment<'a>(path: &'a str, key: &str) -> Option<(&'a str, &'a str)> {
    let after = path.strip_prefix(key)?;
    let end = after.find('/').unwrap_or(after.len());
    Some((&after[..end], &after[end..]))
}

/// The base URL that makes a CLI play `scenario` as `worker` against the stub at `addr`.
/// Worker names are letters, digits, `-` and `_` (the coordinator's own).
pub fn base_url(addr: SocketAddr, scenario: Scenario, worker: &str) -> String {
    format!("http://{addr}/s/{scenario}/w/{worker}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_the_scenario_and_the_worker() {
        let r = Route::parse("/s/hang/w/claude-a/v1/messages").unwrap();
        assert_eq!(r.scenario, Some(Scenario::Hang));
        assert_eq!(r.worker.as_deref(), Some("claude-a"));
        assert_eq!(r.rest, "/v1/messages");
        let plain = Route::parse("/v1beta/models/m:countTokens").unwrap();
        assert_eq!((plain.scenario, plain.worker), (None, None));
        assert_eq!(plain.rest, "/v1beta/models/m:countTokens");
        assert_eq!(Route::parse("/w/x").unwrap().rest, "/");
        assert!(Route::parse("/s/nope/v1/messages").is_err());
    }
}
