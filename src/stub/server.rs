//! The stub's HTTP edge: binds 127.0.0.1, routes each request to its API by path, waits out a
//! slow turn, streams the reply's frames (or holds the stream open, or cuts it), and writes one
//! log line per request. Runs on its own thread with a single-threaded tokio runtime, so the
//! coordinator can host it without becoming async.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::conversation::{self, Api, Ending, Facts, Failures, HttpError, Reply};
use super::{Route, anthropic, gemini, openai};
use crate::scenario::{Scenario, Step};
use crate::timestamp::Timestamp;

/// Requests carry whole conversations; Claude's grow past axum's 2 MB default.
const MAX_BODY: usize = 64 * 1024 * 1024;
/// The gap between streamed frames: a stream, not one burst.
const FRAME_GAP: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub struct StubConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// Played when a request's path names no scenario.
    pub scenario: Scenario,
    /// One JSON line per request; standard error when `None`.
    pub log: Option<PathBuf>,
}

struct Stub {
    scenario: Scenario,
    failures: Failures,
    requests: AtomicU64,
    log: Mutex<Box<dyn Write + Send>>,
}

/// A stub running on its own thread for as long as the process lives.
pub struct StubModel {
    addr: SocketAddr,
}

impl StubModel {
    /// Binds now (so a taken port is an error here) and serves in the background.
    pub fn start(config: StubConfig) -> io::Result<StubModel> {
        let (listener, stub) = bind(&config)?;
        let addr = listener.local_addr()?;
        std::thread::Builder::new()
            .name("stub-model".into())
            .spawn(move || {
                if let Err(e) = run(listener, stub) {
                    eprintln!("{}: stub model stopped: {e}", Timestamp::now());
                }
            })?;
        Ok(StubModel { addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Serves in this thread until the process ends; `ready` learns the address first.
pub fn serve_blocking(config: StubConfig, ready: impl FnOnce(SocketAddr)) -> io::Result<()> {
    let (listener, stub) = bind(&config)?;
    ready(listener.local_addr()?);
    run(listener, stub)
}

fn bind(config: &StubConfig) -> io::Result<(TcpListener, Stub)> {
    let log: Box<dyn Write + Send> = match &config.log {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?,
        ),
        None => Box::new(io::stderr()),
    };
    let listener = TcpListener::bind(("127.0.0.1", config.port))?;
    listener.set_nonblocking(true)?;
    let stub = Stub {
        scenario: config.scenario,
        failures: Failures::default(),
        requests: AtomicU64::new(0),
        log: Mutex::new(log),
    };
    Ok((listener, stub))
}

fn run(listener: TcpListener, stub: Stub) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(Arc::new(stub));
        axum::serve(listener, app).await
    })
}

async fn handle(State(stub): State<Arc<Stub>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let seed = stub.requests.fetch_add(1, Ordering::Relaxed);
    let mut record = json!({
        "time": Timestamp::now().to_string(),
        "method": method.as_str(),
        "path": uri.path(),
    });
    let response = answer(&stub, &method, &uri, &body, seed, &mut record).await;
    record["status"] = json!(response.status().as_u16());
    stub.write_log(&record);
    response
}

impl Stub {
    fn write_log(&self, record: &Value) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(log, "{record}").and_then(|_| log.flush());
    }
}

async fn answer(
    stub: &Stub,
    method: &Method,
    uri: &Uri,
    body: &Bytes,
    seed: u64,
    record: &mut Value,
) -> Response {
    let route = match Route::parse(uri.path()) {
        Ok(route) => route,
        Err(e) => return json_response(404, &[], json!({"error": {"message": e}})),
    };
    let scenario = route.scenario.unwrap_or(stub.scenario);
    let worker = route.worker.clone().unwrap_or_else(|| "-".into());
    record["scenario"] = json!(scenario.name());
    record["worker"] = json!(worker);
    let rest = route.rest.as_str();
    if *method == Method::HEAD {
        // Claude Code probes its base URL (`HEAD /api/hello`, or `HEAD /`) before the first call.
        return empty_response(200);
    }
    if *method == Method::GET && rest.ends_with("/models") {
        return json_response(
            200,
            &[],
            json!({"object": "list", "data": [], "models": []}),
        );
    }
    if *method != Method::POST {
        return json_response(
            404,
            &[],
            json!({"error": {"message": "stub model: no such route"}}),
        );
    }
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let turn = |api: Api, facts: Facts| Turn {
        stub,
        api,
        facts,
        scenario,
        worker: &worker,
        seed,
    };
    if rest.ends_with("/v1/messages/count_tokens") {
        return json_response(200, &[], json!({"input_tokens": 120}));
    }
    if rest.ends_with("/v1/messages") {
        let facts = anthropic::facts(&request);
        return turn(Api::Anthropic, facts).answer(record).await;
    }
    if rest.ends_with("/responses") {
        let facts = openai::facts(&request);
        return turn(Api::OpenAi, facts).answer(record).await;
    }
    if let Some((model, call)) = rest
        .strip_prefix("/v1beta/models/")
        .and_then(|m| m.split_once(':'))
    {
        match call {
            "countTokens" => return json_response(200, &[], json!({"totalTokens": 150})),
            "generateContent" | "streamGenerateContent" => {
                let sse = uri.query().is_some_and(|q| q.contains("alt=sse"));
                let facts = gemini::facts(&request, model, call == "streamGenerateContent" && sse);
                return turn(Api::Gemini, facts).answer(record).await;
            }
            _ => {}
        }
    }
    json_response(
        404,
        &[],
        json!({"error": {"message": "stub model: no such route"}}),
    )
}

/// One request of an agent's conversation.
struct Turn<'a> {
    stub: &'a Stub,
    api: Api,
    facts: Facts,
    scenario: Scenario,
    worker: &'a str,
    seed: u64,
}

impl Turn<'_> {
    async fn answer(self, record: &mut Value) -> Response {
        let facts = &self.facts;
        record["api"] = json!(self.api.name());
        record["model"] = json!(facts.model);
        record["tools"] = json!(facts.tools);
        record["tool_results"] = json!(facts.tool_results);
        if !facts.main {
            record["reply"] = json!("side");
            return match self.api {
                Api::Anthropic => {
                    json_response(200, &[], anthropic::side_message(facts, self.seed))
                }
                Api::Gemini => json_response(200, &[], gemini::side_response(facts)),
                Api::OpenAi => self.turn(&[]),
            };
        }
        let reply = conversation::decide(
            self.scenario,
            self.api,
            facts,
            self.worker,
            &self.stub.failures,
        );
        match reply {
            Reply::Error(error) => {
                let http = match self.api {
                    Api::Anthropic => anthropic::error(error, now_secs()),
                    Api::OpenAi => openai::error(error, now_secs()),
                    Api::Gemini => gemini::error(error),
                };
                record["reply"] = json!(format!("error {}", http.status));
                error_response(http)
            }
            Reply::Over => {
                record["reply"] = json!("over");
                self.turn(&[])
            }
            Reply::Turn { steps, delay_ms } => {
                record["reply"] = json!(describe(&steps));
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                self.turn(&steps)
            }
        }
    }

    fn turn(&self, steps: &[Step]) -> Response {
        let facts = &self.facts;
        let rendered = match (self.api, facts.stream) {
            (Api::Anthropic, true) => anthropic::stream(steps, facts, self.seed),
            (Api::Anthropic, false) => {
                return json_response(200, &[], anthropic::message(steps, facts, self.seed));
            }
            (Api::OpenAi, _) => openai::stream(steps, facts, self.seed),
            (Api::Gemini, true) => gemini::stream(steps, facts),
            (Api::Gemini, false) => return json_response(200, &[], gemini::response(steps, facts)),
        };
        stream_response(rendered)
    }
}

/// What the turn does, for the log: the tool it calls, or how it ends.
fn describe(steps: &[Step]) -> String {
    match steps.last() {
        Some(Step::Act(a) | Step::Blocked(a)) => format!("tool: {}", a.summary()),
        Some(Step::Mcp { tool, .. }) => format!("tool: mcp {tool}"),
        Some(Step::Answer(_)) => "answer".into(),
        Some(Step::Hang) => "hang".into(),
        Some(Step::Crash) => "crash".into(),
        _ => "text".into(),
    }
}

fn now_secs() -> u64 {
    (Timestamp::now().millis() / 1000).max(0) as u64
}

fn json_response(status: u16, headers: &[(String, String)], body: Value) -> Response {
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json");
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder
        .body(Body::from(body.to_string()))
        .unwrap_or_else(|_| empty_response(500))
}

fn error_response(http: HttpError) -> Response {
    json_response(http.status, &http.headers, http.body)
}

fn empty_response(status: u16) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
}

/// The frames as a streamed body: sent one by one, then closed, held open, or cut.
fn stream_response(rendered: conversation::Rendered) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(16);
    tokio::spawn(async move {
        for frame in rendered.frames {
            if tx.send(Ok(Bytes::from(frame))).await.is_err() {
                return;
            }
            tokio::time::sleep(FRAME_GAP).await;
        }
        match rendered.ending {
            Ending::Complete => {}
            // Silent until the client gives up and closes the connection.
            Ending::Hang => tx.closed().await,
            Ending::Crash => {
                let _ = tx
                    .send(Err(io::Error::other("stub model: connection cut")))
                    .await;
            }
        }
    });
    let mut response = Response::new(Body::from_stream(Frames(rx)));
    let headers = response.headers_mut();
    headers.insert("content-type", "text/event-stream".parse().expect("static"));
    headers.insert("cache-control", "no-cache".parse().expect("static"));
    response
}

/// A channel of body frames as the `Stream` axum's body wants.
struct Frames(mpsc::Receiver<Result<Bytes, io::Error>>);

impl futures_core::Stream for Frames {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}
