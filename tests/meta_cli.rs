//! `orchestrate meta ...` through the binary: one line or `--json`, exit 0 done, 1 refused,
//! 2 an error; a bad router pattern and an unreachable Redis are one clear line each.

mod common;

use std::process::{Command, Output};

use serde_json::Value;

use common::binary;

struct Here {
    dir: tempfile::TempDir,
}

impl Here {
    fn new() -> Here {
        Here {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn meta(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary())
            .arg("--workspace")
            .arg(self.dir.path().join("ws"))
            .arg("meta")
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("REDIS_URL")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.meta(&all, &[]);
        let value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{args:?}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), value)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn route_lock_resolve_and_sessions_answer_with_their_exit_codes() {
    let here = Here::new();
    let (code, route) = here.json(&["route", "write the PRD for the sprint"]);
    assert_eq!((code, route["target"].as_str()), (Some(0), Some("bmad")));
    let out = here.meta(&["route", "hello"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("meta (clarify, confidence 0.3)"));

    let (code, lock) = here.json(&[
        "lock",
        "acquire",
        "db/schema.sql",
        "--holder",
        "w1",
        "--ttl",
        "60",
    ]);
    assert_eq!((code, lock["success"].as_bool()), (Some(0), Some(true)));
    assert_eq!(lock["lock"]["token"], 1);
    let (code, refused) = here.json(&["lock", "acquire", "db/schema.sql", "--holder", "w2"]);
    assert_eq!((code, refused["holder"].as_str()), (Some(1), Some("w1")));
    let out = here.meta(&["lock", "release", "db/schema.sql", "--holder", "w2"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        "orchestrate: db/schema.sql is not locked by w2 (held by w1)"
    );
    let (code, checked) = here.json(&["lock", "check", "db/schema.sql"]);
    assert_eq!((code, checked["holder"].as_str()), (Some(0), Some("w1")));
    assert_eq!(
        here.meta(&["lock", "release", "db/schema.sql", "--holder", "w1"], &[])
            .status
            .code(),
        Some(0)
    );
    let (_, locks) = here.json(&["locks"]);
    assert_eq!(locks["locks"], serde_json::json!([]));

    let (code, resolution) = here.json(&["resolve", "documentation", "bolt", "archon"]);
    assert_eq!(
        (code, resolution["winner"].as_str()),
        (Some(0), Some("archon"))
    );
    let (_, resolution) = here.json(&["resolve", "documentation", "bolt", "security-auditor"]);
    assert_eq!(resolution["winner"], "security-auditor");

    let (code, created) = here.json(&["session", "create", "alice"]);
    assert_eq!(code, Some(0));
    let id = created["id"].as_str().unwrap().to_string();
    let (code, updated) = here.json(&[
        "session",
        "update",
        &id,
        "--project",
        "shop",
        "--context",
        "{\"branch\": \"main\"}",
    ]);
    assert_eq!(
        (code, updated["current_project"].as_str()),
        (Some(0), Some("shop"))
    );
    here.meta(&["route", "deploy to staging", "--session", &id], &[]);
    let (_, got) = here.json(&["session", "get", &id]);
    assert_eq!(got["context"]["branch"], "main");
    assert_eq!(got["history"][0]["target"], "bolt");
    let out = here.meta(&["session", "get", "nope"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let out = here.meta(&["session", "update", &id, "--context", "[1]"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is not a JSON object"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_bad_router_pattern_is_one_line_naming_its_target() {
    let here = Here::new();
    std::fs::write(
        here.dir.path().join("orchestrate.toml"),
        "[router.targets.docs]\npatterns = [{ pattern = \"\\\\b(docs\", weight = 0.9 }]\n",
    )
    .unwrap();
    let out = here.meta(&["route", "the docs"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("router: target \"docs\": pattern"), "{err}");
    assert!(err.contains("orchestrate.toml"), "{err}");
}

#[test]
fn a_configured_target_routes_and_the_seeds_variables_apply() {
    let here = Here::new();
    std::fs::write(
        here.dir.path().join("orchestrate.toml"),
        "[router.targets.docs]\npatterns = [{ pattern = '\\b(readme|docs)\\b', weight = 0.95 }]\nrole = \"document\"\n",
    )
    .unwrap();
    let (_, route) = here.json(&["route", "update the README"]);
    assert_eq!(
        (route["target"].as_str(), route["confidence"].as_f64()),
        (Some("docs"), Some(0.95))
    );
    // LOCK_DEFAULT_TTL sets a lease's length.
    let out = here.meta(
        &["lock", "acquire", "r", "--json"],
        &[("LOCK_DEFAULT_TTL", "7")],
    );
    let lock: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acquired =
        orchestrate::timestamp::Timestamp::parse(lock["lock"]["acquired_at"].as_str().unwrap())
            .unwrap();
    let expires =
        orchestrate::timestamp::Timestamp::parse(lock["lock"]["expires_at"].as_str().unwrap())
            .unwrap();
    assert_eq!(expires.millis() - acquired.millis(), 7000);
    let out = here.meta(&["route", "x"], &[("SESSION_TTL", "soon")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("SESSION_TTL"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_redis_is_a_clear_error_and_status_checks_targets() {
    let here = Here::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}/");
    let out = here.meta(&["lock", "acquire", "r"], &[("REDIS_URL", &url)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("orchestrate: meta store {url}:")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // BMAD_URL names a target's service; status checks it (and fails: nothing listens).
    let out = here.meta(
        &["status", "--json"],
        &[("BMAD_URL", &format!("http://127.0.0.1:{port}"))],
    );
    assert_eq!(out.status.code(), Some(1));
    let health: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(health["all_healthy"], false);
    assert_eq!(health["services"]["bmad"]["kind"], "target");
    assert!(
        health["services"]["bmad"]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot connect")
    );
}
