//! The simulated CLIs' MCP client. The real CLIs start the stdio MCP servers their
//! configuration names (Claude `--mcp-config`, Codex `-c mcp_servers.NAME.*`, Gemini's
//! settings) and call their tools over JSON-RPC; the sims do the same with orchestrate's own
//! server, so a simulated worker takes `nexus_lock` through the real `orchestrate mcp`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

/// A stdio server from a CLI's configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct McpServerSpec {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// The servers of an `mcpServers` object (Claude's `--mcp-config`, Gemini's settings).
pub fn from_mcp_servers(config: &Value) -> Vec<McpServerSpec> {
    let Some(servers) = config["mcpServers"].as_object() else {
        return Vec::new();
    };
    servers
        .iter()
        .filter_map(|(name, s)| {
            Some(McpServerSpec {
                name: name.clone(),
                command: s["command"].as_str()?.to_string(),
                args: strings(&s["args"]),
                env: string_pairs(&s["env"]),
            })
        })
        .collect()
}

/// The servers Codex's `-c mcp_servers.NAME.KEY=VALUE` overrides describe (values in TOML).
pub fn from_codex_overrides(overrides: &[String]) -> Vec<McpServerSpec> {
    let mut servers: Vec<McpServerSpec> = Vec::new();
    for kv in overrides {
        let Some((key, value)) = kv.split_once('=') else {
            continue;
        };
        let Some(rest) = key.trim().strip_prefix("mcp_servers.") else {
            continue;
        };
        let Some((name, field)) = rest.rsplit_once('.') else {
            continue;
        };
        let Ok(table) = toml::from_str::<toml::Table>(&format!("v = {value}")) else {
            continue;
        };
        let value = serde_json::to_value(&table["v"]).unwrap_or(Value::Null);
        let at = match servers.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                servers.push(McpServerSpec {
                    name: name.to_string(),
                    ..McpServerSpec::default()
                });
                servers.len() - 1
            }
        };
        let server = &mut servers[at];
        match field {
            "command" => server.command = value.as_str().unwrap_or_default().to_string(),
            "args" => server.args = strings(&value),
            "env" => server.env = string_pairs(&value),
            _ => {}
        }
    }
    servers.retain(|s| !s.command.is_empty());
    servers
}

/// An object's string values as (key, value) pairs: a server's environment.
fn string_pairs(value: &Value) -> Vec<(String, String)> {
    value
        .as_object()
        .map(|env| {
            env.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A running server, initialized.
pub struct McpClient {
    child: Child,
    /// `None` once closed: the server's cue to exit.
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    next_id: u64,
}

impl McpClient {
    pub fn start(spec: &McpServerSpec) -> Result<McpClient, String> {
        let mut child = Command::new(&spec.command)
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start MCP server {}: {e}", spec.name))?;
        let mut client = McpClient {
            input: child.stdin.take(),
            output: BufReader::new(child.stdout.take().expect("piped")),
            child,
            next_id: 0,
        };
        client.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "orchestrate-sim", "version": env!("CARGO_PKG_VERSION")}}),
        )?;
        client.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))?;
        Ok(client)
    }

    fn send(&mut self, message: &Value) -> Result<(), String> {
        let input = self.input.as_mut().ok_or("MCP server closed")?;
        writeln!(input, "{message}")
            .and_then(|()| input.flush())
            .map_err(|e| format!("MCP server gone: {e}"))
    }

    fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))?;
        loop {
            let mut line = String::new();
            match self.output.read_line(&mut line) {
                Ok(0) | Err(_) => return Err("MCP server closed its output".into()),
                Ok(_) => {}
            }
            let Ok(message) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if message["id"] != id {
                continue;
            }
            if let Some(error) = message.get("error") {
                return Err(error["message"].as_str().unwrap_or("MCP error").to_string());
            }
            return Ok(message["result"].clone());
        }
    }

    /// `tools/call`: the tool's text answer, `Err` when it says it failed.
    pub fn call(&mut self, tool: &str, arguments: Value) -> Result<String, String> {
        let result = self.request("tools/call", json!({"name": tool, "arguments": arguments}))?;
        let text = result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if result["isError"] == true {
            Err(text)
        } else {
            Ok(text)
        }
    }
}

impl Drop for McpClient {
    /// Closes the server's input, as the real CLIs do on exit, and gives it a moment to end on
    /// its own before it is killed.
    fn drop(&mut self) {
        self.input = None;
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_read_from_each_cli_s_configuration() {
        let claude = from_mcp_servers(&json!({"mcpServers": {"orch": {
            "type": "stdio", "command": "/o", "args": ["mcp", "--holder", "w"], "env": {"T": "v"}}}}));
        let expected = McpServerSpec {
            name: "orch".into(),
            command: "/o".into(),
            args: vec!["mcp".into(), "--holder".into(), "w".into()],
            env: vec![("T".into(), "v".into())],
        };
        assert_eq!(claude, std::slice::from_ref(&expected));
        let codex = from_codex_overrides(&[
            "mcp_servers.orch.command=\"/o\"".into(),
            "mcp_servers.orch.args=[\"mcp\", \"--holder\", \"w\"]".into(),
            "mcp_servers.orch.env={\"T\"=\"v\"}".into(),
            "model_reasoning_effort=\"low\"".into(),
        ]);
        assert_eq!(codex, [expected]);
    }
}
