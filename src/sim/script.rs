//! The scenarios a simulated agent plays, in CLI-neutral steps. Side effects are real: files
//! are written, commands run, in the agent's working directory. The dialect renders each step.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Instant;

use super::{Dialect, Emitter, Invocation, Pace, Refusal, RunEnd, ToolCall, ToolResult, is_within};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Plans a todo list, runs a command, writes and edits a file, reports usage, exits 0.
    Success,
    /// Hits an action that needs approval, sits blocked for a while, then gives up (exit 0).
    Blocker,
    /// A command fails and the run ends in the CLI's error result (exit 1).
    Fail,
    /// Thousands of lines as fast as the pace allows, then success.
    Chatty,
    /// Starts a long command (a real child process) and never finishes.
    Hang,
    /// Dies by SIGABRT in the middle of writing a line.
    Crash,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Success,
        Scenario::Blocker,
        Scenario::Fail,
        Scenario::Chatty,
        Scenario::Hang,
        Scenario::Crash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Success => "success",
            Scenario::Blocker => "blocker",
            Scenario::Fail => "fail",
            Scenario::Chatty => "chatty",
            Scenario::Hang => "hang",
            Scenario::Crash => "crash",
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::ALL
            .into_iter()
            .find(|sc| sc.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown ORCHESTRATE_SIM_SCENARIO {s:?} (expected success, blocker, fail, chatty, hang or crash)"
                )
            })
    }
}

/// How long the blocker scenario stays blocked at speed 1.
const BLOCKED_MS: u64 = 20_000;
/// Lines the chatty scenario prints unless `ORCHESTRATE_SIM_LINES` says otherwise.
const CHATTY_LINES: usize = 2000;

struct Run<'a> {
    dialect: Box<dyn Dialect>,
    out: &'a mut Emitter,
    pace: Pace,
    inv: &'a Invocation,
    next_tool: u32,
    messages: u32,
    denials: Vec<(String, ToolCall)>,
    started: Instant,
}

/// Plays `scenario`; returns the exit code.
pub fn play(
    scenario: Scenario,
    inv: &Invocation,
    dialect: Box<dyn Dialect>,
    out: &mut Emitter,
    pace: Pace,
) -> i32 {
    let mut run = Run {
        dialect,
        out,
        pace,
        inv,
        next_tool: 0,
        messages: 0,
        denials: Vec::new(),
        started: Instant::now(),
    };
    run.dialect.start(run.out);
    run.pace.wait(500);
    match scenario {
        Scenario::Success => run.success(),
        Scenario::Blocker => run.blocker(),
        Scenario::Fail => run.fail(),
        Scenario::Chatty => run.chatty(),
        Scenario::Hang => run.hang(),
        Scenario::Crash => run.crash(),
    }
}

impl Run<'_> {
    fn success(&mut self) -> i32 {
        let notes = self.notes_path();
        self.thinking(&format!("The task: {}", first_words(&self.inv.prompt, 24)));
        self.todos(&[
            ("Inspect the working directory", "in_progress"),
            ("Write the change", "pending"),
            ("Verify the result", "pending"),
        ]);
        self.message("I'll look at the project first.");
        self.tool(ToolCall::Command {
            argv: vec!["ls".into(), "-la".into()],
        });
        for path in absolute_paths(&self.inv.prompt) {
            self.tool(ToolCall::Read { path });
        }
        self.todos(&[
            ("Inspect the working directory", "completed"),
            ("Write the change", "in_progress"),
            ("Verify the result", "pending"),
        ]);
        let content = format!(
            "# {}\n\nTask: {}\n\nWritten by the simulated {} agent.\n",
            first_words(&self.inv.prompt, 8),
            self.inv.prompt.trim(),
            self.dialect_name()
        );
        self.tool(ToolCall::Write {
            path: notes.clone(),
            content,
        });
        self.tool(ToolCall::Edit {
            path: notes.clone(),
            appended: "\n- [x] reviewed the change\n".into(),
        });
        self.todos(&[
            ("Inspect the working directory", "completed"),
            ("Write the change", "completed"),
            ("Verify the result", "in_progress"),
        ]);
        self.tool(ToolCall::Command {
            argv: vec!["wc".into(), "-l".into(), notes.display().to_string()],
        });
        self.todos(&[
            ("Inspect the working directory", "completed"),
            ("Write the change", "completed"),
            ("Verify the result", "completed"),
        ]);
        let summary = match planned_answer(&self.inv.prompt) {
            // Asked for a plan: the answer is the plan, as JSON.
            Some(plan) => plan,
            None => format!(
                "Done. I wrote {} and checked it.",
                relative(&notes, &self.inv.workdir)
            ),
        };
        self.message(&summary);
        self.finish(true, summary)
    }

    fn blocker(&mut self) -> i32 {
        self.message("The change is ready; I will publish the branch.");
        let call = ToolCall::Command {
            argv: vec!["git".into(), "push".into(), "origin".into(), "HEAD".into()],
        };
        let id = self.tool_id();
        self.dialect.tool_started(self.out, &id, &call);
        self.dialect
            .tool_refused(self.out, &id, &call, &Refusal::NeedsApproval);
        self.denials.push((id, call));
        self.pace.wait(BLOCKED_MS);
        let summary = "I could not push the branch: that action needs approval.".to_string();
        self.message(&summary);
        self.finish(true, summary)
    }

    fn fail(&mut self) -> i32 {
        self.message("Let me run the build.");
        let missing = format!("missing-build-script-{}", std::process::id());
        let result = self.tool(ToolCall::Command {
            argv: vec!["ls".into(), missing],
        });
        self.message("The build script is missing and I cannot continue.");
        let summary = format!(
            "Command failed with exit code {}: the build script is missing",
            result.exit_code.unwrap_or(1)
        );
        self.finish(false, summary)
    }

    fn chatty(&mut self) -> i32 {
        let lines = std::env::var("ORCHESTRATE_SIM_LINES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CHATTY_LINES);
        for i in 0..lines {
            self.out_message(&format!(
                "Step {i}: checking module {} of the project for anything the task touches.",
                i % 97
            ));
            if i % 200 == 199 {
                self.tool(ToolCall::Command {
                    argv: vec!["seq".into(), "1".into(), "300".into()],
                });
            }
            self.pace.wait(2);
        }
        self.finish(true, format!("Checked {lines} steps."))
    }

    fn hang(&mut self) -> i32 {
        self.message("Running the full test suite; this takes a while.");
        self.tool(ToolCall::Command {
            argv: vec!["sleep".into(), "86400".into()],
        });
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }

    fn crash(&mut self) -> i32 {
        self.message("Starting work.");
        self.tool(ToolCall::Command {
            argv: vec!["ls".into()],
        });
        self.out
            .torn(r#"{"type":"assistant","message":{"content":[{"type":"text","text":"half a li"#);
        std::process::abort();
    }

    fn thinking(&mut self, text: &str) {
        self.dialect.thinking(self.out, text);
        self.pace.wait(700);
    }

    fn message(&mut self, text: &str) {
        self.out_message(text);
        self.pace.wait(600);
    }

    fn out_message(&mut self, text: &str) {
        self.messages += 1;
        self.dialect.message(self.out, text);
    }

    fn todos(&mut self, todos: &[(&str, &str)]) {
        self.dialect.todos(self.out, todos);
        self.pace.wait(300);
    }

    fn tool_id(&mut self) -> String {
        self.next_tool += 1;
        format!("{:03}", self.next_tool)
    }

    /// Runs one tool call for real, announcing it before and its result after.
    fn tool(&mut self, call: ToolCall) -> ToolResult {
        let id = self.tool_id();
        self.dialect.tool_started(self.out, &id, &call);
        self.pace.wait(400);
        if let (ToolCall::Read { path }, Some(workspace)) = (&call, self.dialect.workspace())
            && !is_within(path, &workspace)
        {
            let why = Refusal::OutsideWorkspace { workspace };
            self.dialect.tool_refused(self.out, &id, &call, &why);
            self.pace.wait(400);
            return ToolResult::default();
        }
        let result = perform(&call, &self.inv.workdir);
        self.dialect.tool_finished(self.out, &id, &call, &result);
        self.pace.wait(400);
        result
    }

    fn finish(&mut self, ok: bool, summary: String) -> i32 {
        let tools = u64::from(self.next_tool);
        let input = 1500 + 4 * self.inv.prompt.len() as u64 + 600 * tools;
        let output = 200 + 80 * u64::from(self.messages);
        let end = RunEnd {
            ok,
            summary,
            input_tokens: input,
            output_tokens: output,
            cached_tokens: input / 2,
            cost_usd: ((input as f64 * 3e-6 + output as f64 * 15e-6) * 1e4).round() / 1e4,
            turns: self.messages.max(1),
            duration_ms: self.started.elapsed().as_millis() as u64,
            denials: std::mem::take(&mut self.denials),
        };
        self.dialect.finish(self.out, &end)
    }

    fn notes_path(&self) -> PathBuf {
        let slug = slug(&self.inv.prompt);
        self.inv
            .workdir
            .join("notes")
            .join(format!("{}-{slug}.md", self.dialect_name()))
    }

    fn dialect_name(&self) -> &'static str {
        self.dialect.name()
    }
}

/// The JSON plan a planner answers when the prompt asks for one: design, implement, review.
fn planned_answer(prompt: &str) -> Option<String> {
    if !prompt.starts_with(crate::coordinator::plan::PLANNER_PROMPT_START) {
        return None;
    }
    let goal = prompt.rsplit("Goal:").next().unwrap_or(prompt).trim();
    let plan = serde_json::json!({"tasks": [
        {"id": "design", "title": "Design", "role": "design", "depends_on": [],
         "prompt": format!("Design how to: {goal}")},
        {"id": "implement", "title": "Implement", "role": "implement", "depends_on": ["design"],
         "prompt": format!("Implement the design for: {goal}")},
        {"id": "review", "title": "Review", "role": "review", "depends_on": ["implement"],
         "prompt": format!("Review the implementation of: {goal}")},
    ]});
    Some(plan.to_string())
}

/// Does what the tool call says, in `workdir`.
pub fn perform(call: &ToolCall, workdir: &Path) -> ToolResult {
    match call {
        ToolCall::Command { argv } => {
            let output = Command::new(&argv[0])
                .args(&argv[1..])
                .current_dir(workdir)
                .stdin(Stdio::null())
                .output();
            match output {
                Ok(o) => {
                    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&o.stderr));
                    ToolResult {
                        ok: o.status.success(),
                        output: text,
                        exit_code: o.status.code(),
                    }
                }
                Err(e) => ToolResult {
                    ok: false,
                    output: format!("{}: {e}", argv[0]),
                    exit_code: Some(127),
                },
            }
        }
        ToolCall::Write { path, content } => {
            let written = path
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|_| fs::write(path, content));
            file_result(
                written,
                format!("Wrote {} bytes to {}", content.len(), path.display()),
            )
        }
        ToolCall::Edit { path, appended } => {
            let edited = OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(appended.as_bytes()));
            file_result(edited, format!("Edited {}", path.display()))
        }
        ToolCall::Read { path } => {
            let read = if path.is_dir() {
                fs::read_dir(path).map(|entries| {
                    let mut names: Vec<String> = entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect();
                    names.sort();
                    names.join("\n")
                })
            } else {
                fs::read(path)
                    .map(|b| String::from_utf8_lossy(&b[..b.len().min(2048)]).into_owned())
            };
            match read {
                Ok(text) => ToolResult {
                    ok: true,
                    output: text,
                    exit_code: None,
                },
                Err(e) => ToolResult {
                    ok: false,
                    output: format!("{}: {e}", path.display()),
                    exit_code: None,
                },
            }
        }
    }
}

fn file_result(result: std::io::Result<()>, success: String) -> ToolResult {
    match result {
        Ok(()) => ToolResult {
            ok: true,
            output: success,
            exit_code: None,
        },
        Err(e) => ToolResult {
            ok: false,
            output: e.to_string(),
            exit_code: None,
        },
    }
}

/// Absolute paths named in the prompt that exist: the agent will want to read them.
fn absolute_paths(prompt: &str) -> Vec<PathBuf> {
    prompt
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(c, '"' | '\'' | ',' | '.' | ';' | ':' | '(' | ')' | '`')
            })
        })
        .filter(|w| w.starts_with('/') && w.len() > 1)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .take(3)
        .collect()
}

fn first_words(text: &str, n: usize) -> String {
    text.split_whitespace()
        .take(n)
        .collect::<Vec<_>>()
        .join(" ")
}

fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(5)
        .map(str::to_ascii_lowercase)
        .collect();
    let slug = words.join("-");
    let slug: String = slug.chars().take(40).collect();
    if slug.is_empty() { "task".into() } else { slug }
}

fn relative(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_parse_by_name() {
        for s in Scenario::ALL {
            assert_eq!(s.name().parse::<Scenario>(), Ok(s));
        }
        assert!(
            "boom"
                .parse::<Scenario>()
                .unwrap_err()
                .contains("expected success")
        );
    }

    #[test]
    fn slugs_are_short_and_safe() {
        assert_eq!(
            slug("Add a /login endpoint, with tests!"),
            "add-a-login-endpoint-with"
        );
        assert_eq!(slug("!!!"), "task");
    }
}
