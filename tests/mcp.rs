//! `orchestrate mcp` spoken to as an MCP client does: JSON-RPC over its stdin and stdout.
//! Initialize, list the tools with their schemas, call each one.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use common::binary;

struct Client {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    next_id: u64,
}

impl Client {
    /// A server for `holder`, initialized.
    fn start(workspace: &std::path::Path, holder: &str) -> Client {
        Client::start_with(workspace, &["--holder", holder])
    }

    fn start_with(workspace: &std::path::Path, args: &[&str]) -> Client {
        let mut child = Command::new(binary())
            .arg("--workspace")
            .arg(workspace)
            .arg("mcp")
            .args(args)
            .current_dir(workspace.parent().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut client = Client {
            input: child.stdin.take(),
            output: BufReader::new(child.stdout.take().unwrap()),
            child,
            next_id: 0,
        };
        let init = client.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "tests/mcp", "version": "1"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "orch", "{init}");
        assert!(
            init["result"]["capabilities"]["tools"].is_object(),
            "{init}"
        );
        client.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        client
    }

    fn send(&mut self, message: Value) {
        let input = self.input.as_mut().unwrap();
        writeln!(input, "{message}").unwrap();
        input.flush().unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.output.read_line(&mut line).unwrap() > 0,
                "the server closed its output"
            );
            let message: Value = serde_json::from_str(&line).unwrap();
            if message["id"] == id {
                return message;
            }
        }
    }

    /// `tools/call`; the structured result and whether it is an error.
    fn call(&mut self, tool: &str, arguments: Value) -> (Value, bool) {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        let result = &answer["result"];
        assert!(result.is_object(), "{tool}: {answer}");
        let is_error = result["isError"] == true;
        let value = if result["structuredContent"].is_object() {
            result["structuredContent"].clone()
        } else {
            let text = result["content"][0]["text"].as_str().unwrap_or("");
            serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
        };
        (value, is_error)
    }
}

impl Drop for Client {
    /// Closing its input ends the server; killed if it has not exited within 2 s.
    fn drop(&mut self) {
        self.input = None;
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_server_lists_its_tools_with_the_seed_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let mut client = Client::start(&dir.path().join("ws"), "claude-t1");
    let list = client.request("tools/list", json!({}));
    let tools = list["result"]["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "nexus_lock",
            "nexus_route",
            "nexus_session",
            "nexus_status",
            "report_event"
        ]
        .into()
    );
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).unwrap().clone();
    let properties = |schema: &Value| -> Vec<String> {
        let mut keys: Vec<String> = schema["properties"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    };
    let required = |schema: &Value| -> Vec<String> {
        schema["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    // The seed's inputs: nexus_route {request, context?}, nexus_status {}, nexus_session
    // {action, session_id?, data?}, nexus_lock {action, resource, holder?} (plus our
    // session_id and ttl).
    let route = tool("nexus_route");
    assert_eq!(
        properties(&route["inputSchema"]),
        ["context", "request", "session_id"]
    );
    assert_eq!(required(&route["inputSchema"]), ["request"]);
    assert_eq!(
        properties(&route["outputSchema"]),
        ["action", "confidence", "reasoning", "target"]
    );
    assert!(properties(&tool("nexus_status")["inputSchema"]).is_empty());
    assert_eq!(
        properties(&tool("nexus_status")["outputSchema"]),
        ["all_healthy", "services"]
    );
    let session = tool("nexus_session");
    assert_eq!(
        properties(&session["inputSchema"]),
        ["action", "data", "session_id"]
    );
    assert_eq!(required(&session["inputSchema"]), ["action"]);
    for field in [
        "id",
        "user_id",
        "created_at",
        "updated_at",
        "context",
        "current_project",
        "current_task",
        "history",
    ] {
        assert!(
            properties(&session["outputSchema"]).contains(&field.to_string()),
            "{field}"
        );
    }
    let lock = tool("nexus_lock");
    assert_eq!(
        properties(&lock["inputSchema"]),
        ["action", "holder", "resource", "ttl"]
    );
    assert_eq!(required(&lock["inputSchema"]), ["action", "resource"]);
    assert!(properties(&lock["outputSchema"]).contains(&"success".to_string()));
    assert!(
        lock["inputSchema"]
            .to_string()
            .contains("\"acquire\",\"release\",\"check\"")
    );
    assert_eq!(required(&tool("report_event")["inputSchema"]), ["type"]);
}

#[test]
fn each_tool_answers_through_the_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let mut first = Client::start(&workspace, "claude-t1");
    let mut second = Client::start(&workspace, "codex-t2");

    let (route, error) = first.call("nexus_route", json!({"request": "Implement the parser"}));
    assert!(!error);
    assert_eq!(
        (route["target"].as_str(), route["confidence"].as_f64()),
        (Some("bolt"), Some(0.9))
    );
    let (route, _) = first.call("nexus_route", json!({"request": "hmm"}));
    assert_eq!(
        (route["target"].as_str(), route["action"].as_str()),
        (Some("meta"), Some("clarify"))
    );

    // Locks: the server's holder by default; another server's holder is refused by name.
    let (granted, error) = first.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "src/lib.rs"}),
    );
    assert!(!error);
    assert_eq!(granted["success"], true);
    assert_eq!(granted["lock"]["holder"], "claude-t1");
    assert_eq!(granted["lock"]["token"], 1);
    let (refused, error) = second.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "src/lib.rs", "ttl": 30}),
    );
    assert!(!error, "a refusal is an answer, not an error");
    assert_eq!(
        (refused["success"].as_bool(), refused["holder"].as_str()),
        (Some(false), Some("claude-t1"))
    );
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("locked by claude-t1"),
        "{refused}"
    );
    let (checked, _) = second.call(
        "nexus_lock",
        json!({"action": "check", "resource": "src/lib.rs"}),
    );
    assert_eq!(
        (checked["locked"].as_bool(), checked["holder"].as_str()),
        (Some(true), Some("claude-t1"))
    );
    let (wrong, _) = second.call(
        "nexus_lock",
        json!({"action": "release", "resource": "src/lib.rs"}),
    );
    assert_eq!(wrong["success"], false);
    let (released, _) = first.call(
        "nexus_lock",
        json!({"action": "release", "resource": "src/lib.rs"}),
    );
    assert_eq!(released["success"], true);
    let (taken, _) = second.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "src/lib.rs"}),
    );
    assert_eq!(
        (
            taken["lock"]["holder"].as_str(),
            taken["lock"]["token"].as_u64()
        ),
        (Some("codex-t2"), Some(2))
    );

    // Sessions: create, update, route with it, get.
    let (created, error) = first.call(
        "nexus_session",
        json!({"action": "create", "data": {"user_id": "alice"}}),
    );
    assert!(!error, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (updated, _) = first.call(
        "nexus_session",
        json!({"action": "update", "session_id": id, "data": {"current_task": "parser", "context": {"lang": "rust"}}}),
    );
    assert_eq!(updated["current_task"], "parser");
    first.call(
        "nexus_route",
        json!({"request": "search the docs", "session_id": id}),
    );
    let (got, _) = second.call("nexus_session", json!({"action": "get", "session_id": id}));
    assert_eq!(got["context"]["lang"], "rust");
    assert_eq!(got["history"][0]["target"], "archon");
    let (missing, error) = first.call(
        "nexus_session",
        json!({"action": "get", "session_id": "nope"}),
    );
    assert!(error, "{missing}");
    assert!(
        missing.as_str().unwrap().contains("no user session nope"),
        "{missing}"
    );
    let (_, error) = first.call("nexus_session", json!({"action": "get"}));
    assert!(error);

    // Status: no URLs configured; each agent profile's CLI is checked.
    let (status, error) = first.call("nexus_status", json!({}));
    assert!(!error, "{status}");
    assert!(status["all_healthy"].is_boolean());
    assert_eq!(status["services"]["claude"]["kind"], "agent_cli");

    // report_event: a worker event type is acknowledged; anything else is an error.
    let (ack, error) = first.call(
        "report_event",
        json!({"type": "finding", "summary": "SQL injection in login"}),
    );
    assert!(!error);
    assert_eq!(ack["recorded"], true);
    assert_eq!(ack["text"], "SQL injection in login");
    let (_, error) = first.call("report_event", json!({"type": "nonsense"}));
    assert!(error);

    // A bad argument is the tool's error, and the server goes on.
    let (_, error) = first.call("nexus_lock", json!({"action": "acquire", "resource": ""}));
    assert!(error);
    let (still, _) = first.call("nexus_route", json!({"request": "git push"}));
    assert_eq!(still["target"], "bolt");
}

#[test]
fn a_worker_s_server_names_its_locks_in_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let mut worker = Client::start_with(
        &workspace,
        &["--holder", "claude-t1", "--namespace", "orch_s1"],
    );
    let (granted, _) = worker.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "src/lib.rs"}),
    );
    // The agent sees its own name for it; the store holds the session's.
    assert_eq!(granted["lock"]["resource"], "src/lib.rs");
    let out = Command::new(binary())
        .arg("--workspace")
        .arg(&workspace)
        .args(["meta", "lock", "check", "orch_s1:src/lib.rs", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["holder"], "claude-t1", "{state}");
    let out = Command::new(binary())
        .arg("--workspace")
        .arg(&workspace)
        .args(["meta", "lock", "check", "src/lib.rs", "--json"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let state: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(state["locked"], false, "{state}");
}

/// `orchestrate meta lock check RESOURCE --json` in `workspace`.
fn check_lock(workspace: &std::path::Path, resource: &str) -> Value {
    let out = Command::new(binary())
        .arg("--workspace")
        .arg(workspace)
        .args(["meta", "lock", "check", resource, "--json"])
        .current_dir(workspace.parent().unwrap())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A worker's server acts for its worker alone: an agent cannot take a lock under another
/// name, nor release another worker's. The operator's server (no --holder) may name anyone.
#[test]
fn a_worker_s_server_acts_for_its_worker_alone() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let mut other = Client::start_with(&workspace, &["--holder", "codex-t2", "--namespace", "s"]);
    let (held, _) = other.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "a.md"}),
    );
    assert_eq!(held["success"], true, "{held}");
    let mut worker = Client::start_with(&workspace, &["--holder", "claude-t1", "--namespace", "s"]);
    for action in ["acquire", "release"] {
        let (answer, error) = worker.call(
            "nexus_lock",
            json!({"action": action, "resource": "a.md", "holder": "codex-t2"}),
        );
        assert!(error, "{action}: {answer}");
        assert!(
            answer
                .as_str()
                .unwrap_or_default()
                .contains("acts for claude-t1 alone"),
            "{answer}"
        );
    }
    assert_eq!(check_lock(&workspace, "s:a.md")["holder"], "codex-t2");
    // Its own name, said out loud, is fine.
    let (mine, error) = worker.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "b.md", "holder": "claude-t1"}),
    );
    assert!(!error && mine["success"] == true, "{mine}");
    // The operator's server names holders freely; a holder name is short.
    let mut operator = Client::start_with(&workspace, &[]);
    let (taken, error) = operator.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "deploy", "holder": "release-bot"}),
    );
    assert!(
        !error && taken["lock"]["holder"] == "release-bot",
        "{taken}"
    );
    let (long, error) = operator.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "deploy2", "holder": "x".repeat(300)}),
    );
    assert!(error, "{long}");
    assert!(
        long.as_str().unwrap().contains("longer than 256 bytes"),
        "{long}"
    );
}

/// In a worker's checkout a resource is a path: `./docs/a.md`, its absolute path and
/// `docs/x/../a.md` are the one lock the sandbox hook takes when the worker writes it.
#[test]
fn a_worker_s_server_names_paths_as_its_leases_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    let checkout = dir.path().join("runs/t1");
    std::fs::create_dir_all(checkout.join("docs")).unwrap();
    let root = checkout.display().to_string();
    let mut worker = Client::start_with(
        &workspace,
        &["--holder", "claude-t1", "--namespace", "s", "--root", &root],
    );
    let absolute = checkout.join("docs/a.md").display().to_string();
    let mut tokens = Vec::new();
    for spelling in [
        "./docs/a.md",
        absolute.as_str(),
        "docs/x/../a.md",
        "docs/a.md",
    ] {
        let (granted, error) = worker.call(
            "nexus_lock",
            json!({"action": "acquire", "resource": spelling}),
        );
        assert!(!error, "{spelling}: {granted}");
        assert_eq!(granted["lock"]["resource"], "docs/a.md", "{spelling}");
        tokens.push(granted["lock"]["token"].as_u64().unwrap());
    }
    // One lock, extended: one token.
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
    assert_eq!(check_lock(&workspace, "s:docs/a.md")["holder"], "claude-t1");
    // A name that is not a path keeps its name.
    let (named, _) = worker.call(
        "nexus_lock",
        json!({"action": "acquire", "resource": "db-migrations"}),
    );
    assert_eq!(named["lock"]["resource"], "db-migrations");
}

/// A worker's server reads the settings file its coordinator wrote and nothing else: not the
/// orchestrate.toml of the directory it runs in (the agent's checkout), nor REDIS_URL.
#[test]
fn a_worker_s_server_reads_its_coordinator_s_settings_alone() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = dir.path().join("ws");
    // The checkout's own configuration points at a store that is not there.
    let checkout_config = dir.path().join("orchestrate.toml");
    let unreachable = "[meta]\nstore = \"redis://127.0.0.1:1\"\n";
    std::fs::write(&checkout_config, unreachable).unwrap();
    let settings = dir.path().join("meta.toml");
    std::fs::write(
        &settings,
        "[meta]\nstore = \"sqlite\"\nlock_ttl_secs = 77\n",
    )
    .unwrap();
    let path = settings.display().to_string();
    let mut worker = Client::start_with(&workspace, &["--holder", "w", "--config", &path]);
    let (granted, error) = worker.call("nexus_lock", json!({"action": "acquire", "resource": "a"}));
    assert!(!error, "{granted}");
    // Its lease is the settings file's, 77 s.
    std::fs::remove_file(&checkout_config).unwrap();
    let lock = &check_lock(&workspace, "a")["lock"];
    // RFC 3339 times, milliseconds into their day (the lease may cross midnight).
    let millis = |t: &Value| -> i64 {
        let clock = &t.as_str().unwrap()[11..23];
        let part = |r: std::ops::Range<usize>| clock[r].parse::<i64>().unwrap();
        ((part(0..2) * 60 + part(3..5)) * 60 + part(6..8)) * 1000 + part(9..12)
    };
    let lease = (millis(&lock["expires_at"]) - millis(&lock["acquired_at"])).rem_euclid(86_400_000);
    assert_eq!(lease, 77_000, "{lock}");
    drop(worker);
    // Without --config the checkout's file is read, and its store is unreachable.
    std::fs::write(&checkout_config, unreachable).unwrap();
    let mut checkout = Client::start_with(&workspace, &["--holder", "w"]);
    let (_, error) = checkout.call("nexus_lock", json!({"action": "acquire", "resource": "a"}));
    assert!(error);
    // A settings file that is not there is one clear error.
    let out = Command::new(binary())
        .arg("--workspace")
        .arg(&workspace)
        .args(["mcp", "--config", "/nonexistent/meta.toml"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/meta.toml: no such settings file"),
        "{err}"
    );
}
