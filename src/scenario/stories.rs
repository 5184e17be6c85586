//! What each named scenario does, step by step. Pure: the steps follow from the CLI and the
//! prompt alone, so the sim and the stub (which sees the prompt in every request) agree.

use serde_json::json;

use super::{Action, ApiError, Context, Scenario, Step};

/// How long the blocker scenario stays blocked, in model time.
const BLOCKED_MS: u64 = 20_000;
/// Lines the chatty scenario prints unless `ORCHESTRATE_SIM_LINES` says otherwise.
const CHATTY_LINES: usize = 2000;
/// Pauses of the slow scenario between its steps.
const SLOW_MS: u64 = 4_000;
/// Where the risky story writes: outside any workspace a test or a user has.
pub const OUTSIDE_NOTE: &str = "/var/tmp/orchestrate-sandbox-outside.txt";

pub fn steps(scenario: Scenario, ctx: &Context<'_>) -> Vec<Step> {
    match scenario {
        Scenario::Success => success(ctx, 0),
        Scenario::Slow => success(ctx, SLOW_MS),
        Scenario::Blocker => vec![
            say("The change is ready; I will publish the branch."),
            Step::Blocked(run("git push origin HEAD")),
            Step::Wait { ms: BLOCKED_MS },
            Step::Answer("I could not push the branch: that action needs approval.".into()),
        ],
        Scenario::Fail => vec![
            say("Let me run the build."),
            Step::Act(run("ls missing-build-script")),
            say("The build script is missing and I cannot continue."),
            Step::Fail {
                error: ApiError::BadRequest,
                times: None,
            },
        ],
        Scenario::Chatty => chatty(),
        Scenario::Risky => vec![
            say("I'll clear the old directory first."),
            Step::Act(run("rm -rf victim")),
            say("Now the shared note."),
            Step::Act(Action::Write {
                path: OUTSIDE_NOTE.into(),
                content: "written outside the workspace\n".into(),
            }),
            Step::Answer("Done trying.".into()),
        ],
        Scenario::Push => vec![
            say("The change is ready; I will push the branch."),
            Step::Act(run("git push origin HEAD")),
            Step::Answer("Pushed the branch, or was told not to.".into()),
        ],
        Scenario::Hang => vec![
            say("Running the full test suite; this takes a while."),
            // Claude refuses a command that starts with `sleep N`; a shell around it passes.
            Step::Act(run("sh -c 'sleep 86400'")),
            Step::Hang,
        ],
        Scenario::Crash => vec![say("Starting work."), Step::Act(run("ls")), Step::Crash],
        Scenario::Flaky => {
            let mut steps = vec![Step::Fail {
                error: ApiError::ServerError,
                times: Some(2),
            }];
            steps.extend(success(ctx, 0));
            steps
        }
        Scenario::Commit => {
            let notes = format!("notes/{}-commit.md", ctx.cli.name());
            vec![
                say("I'll write the note and commit it."),
                Step::Act(Action::Write {
                    path: notes.clone(),
                    content: format!("Committed by the {} agent.\n", ctx.cli.name()),
                }),
                Step::Act(run(&format!(
                    "git add {notes} && git -c user.name=agent -c user.email=agent@localhost commit -q -m 'notes from the agent' && git log --oneline -1"
                ))),
                Step::Answer(format!("Done. I committed {notes}.")),
            ]
        }
        Scenario::Api(error) => vec![Step::Fail { error, times: None }],
        Scenario::Approve => review("approved", "The change does what the task asks.", json!([])),
        Scenario::Concern => review(
            "concern",
            "The change has no test for the error path; add one before merging.",
            json!([{"severity": "medium", "file": "src/health.rs", "line": 14,
                    "text": "the error branch is never exercised by a test"}]),
        ),
        Scenario::Reject => review(
            "blocker",
            "The change deletes the users table in its migration; it must not ship.",
            json!([{"severity": "critical", "file": "migrations/002_users.sql", "line": 3,
                    "text": "DROP TABLE users loses every account"},
                   {"severity": "low", "file": "src/health.rs", "line": null,
                    "text": "the handler logs at error level on success"}]),
        ),
        Scenario::Garbage => vec![
            say("I'll review the change."),
            Step::Answer("Looks fine to me, mostly. Ship it?".into()),
        ],
        Scenario::Silent => vec![Step::Answer(String::new())],
    }
}

fn say(text: &str) -> Step {
    Step::Say(text.to_string())
}

fn run(command: &str) -> Action {
    Action::Run {
        command: command.to_string(),
    }
}

/// Look around, read what the prompt names, write and edit a notes file, check it, answer.
fn success(ctx: &Context<'_>, pause_ms: u64) -> Vec<Step> {
    let notes = format!("notes/{}-{}.md", ctx.cli.name(), slug(ctx.prompt));
    let mut steps = vec![
        Step::Think(format!("The task: {}", first_words(ctx.prompt, 24))),
        say("I'll look at the project first."),
        Step::Act(run("ls -la")),
    ];
    for path in absolute_paths(ctx.prompt) {
        steps.push(Step::Act(Action::Read { path }));
    }
    let pause = |steps: &mut Vec<Step>| {
        if pause_ms > 0 {
            steps.push(Step::Wait { ms: pause_ms });
        }
    };
    pause(&mut steps);
    steps.push(say("Now I'll write the change."));
    steps.push(Step::Act(Action::Write {
        path: notes.clone(),
        content: format!(
            "# {}\n\nTask: {}\n\nWritten by the {} agent.\n\n- [ ] reviewed the change\n",
            first_words(ctx.prompt, 8),
            ctx.prompt.trim(),
            ctx.cli.name()
        ),
    }));
    pause(&mut steps);
    steps.push(Step::Act(Action::Edit {
        path: notes.clone(),
        old: "- [ ] reviewed the change".into(),
        new: "- [x] reviewed the change".into(),
    }));
    // A file the prompt names in backticks (`docs/api.md`) is written too: two tasks that
    // name the same one contend for it (the demo's design and tests do). Its text depends
    // on the path alone, so two tasks that write it one after the other still merge.
    for path in named_files(ctx.prompt) {
        steps.push(say(&format!("I'll record it in {path} as asked.")));
        steps.push(Step::Act(Action::Write {
            content: format!("# {path}\n\nRecorded by the agents of this session.\n"),
            path,
        }));
    }
    pause(&mut steps);
    steps.push(say("Let me verify the result."));
    steps.push(Step::Act(run(&format!("wc -l {notes}"))));
    let answer = planned_answer(ctx.prompt)
        .unwrap_or_else(|| format!("Done. I wrote {notes} and checked it."));
    steps.push(Step::Answer(answer));
    steps
}

fn chatty() -> Vec<Step> {
    let lines = std::env::var("ORCHESTRATE_SIM_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CHATTY_LINES);
    let mut steps = Vec::with_capacity(lines + lines / 200 + 1);
    for i in 0..lines {
        steps.push(Step::Say(format!(
            "Step {i}: checking module {} of the project for anything the task touches.",
            i % 97
        )));
        if i % 200 == 199 {
            steps.push(Step::Act(run("seq 1 300")));
        }
    }
    steps.push(Step::Answer(format!("Checked {lines} steps.")));
    steps
}

/// A reviewer's story: look at the change, answer with a verdict as JSON.
/// (The diff is in the request: a read-only reviewer needs no tool, and Gemini's read-only
/// mode offers no shell.)
fn review(verdict: &str, summary: &str, findings: serde_json::Value) -> Vec<Step> {
    vec![
        say("I'll review the change."),
        Step::Answer(
            json!({"verdict": verdict, "summary": summary, "findings": findings}).to_string(),
        ),
    ]
}

/// The JSON plan a planner answers when the prompt asks for one: design, implement, review.
pub fn planned_answer(prompt: &str) -> Option<String> {
    if !prompt.starts_with(crate::coordinator::plan::PLANNER_PROMPT_START) {
        return None;
    }
    let goal = prompt.rsplit("Goal:").next().unwrap_or(prompt).trim();
    let plan = json!({"tasks": [
        {"id": "design", "title": "Design", "role": "design", "depends_on": [],
         "prompt": format!("Design how to: {goal}")},
        {"id": "implement", "title": "Implement", "role": "implement", "depends_on": ["design"],
         "prompt": format!("Implement the design for: {goal}")},
        {"id": "review", "title": "Review", "role": "review", "depends_on": ["implement"],
         "prompt": format!("Review the implementation of: {goal}")},
    ]});
    Some(plan.to_string())
}

/// Absolute paths the prompt names: the agent will want to read them.
fn absolute_paths(prompt: &str) -> Vec<String> {
    prompt
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| {
                matches!(c, '"' | '\'' | ',' | '.' | ';' | ':' | '(' | ')' | '`')
            })
        })
        .filter(|w| w.starts_with('/') && w.len() > 1)
        .filter(|w| std::path::Path::new(w).exists())
        .take(3)
        .map(str::to_string)
        .collect()
}

/// Relative file paths the prompt names in backticks, e.g. `docs/api.md` (at most three).
fn named_files(prompt: &str) -> Vec<String> {
    prompt
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|p| {
            !p.is_empty()
                && !p.starts_with('/')
                && !p.contains("..")
                && p.contains('.')
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
        })
        .take(3)
        .map(str::to_string)
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
    let slug: String = words.join("-").chars().take(40).collect();
    if slug.is_empty() { "task".into() } else { slug }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Cli;

    #[test]
    fn files_named_in_backticks_are_written_and_only_plain_relative_ones() {
        assert_eq!(
            named_files(
                "Record it in `docs/api.md`, not `/etc/passwd`, `../x.md` or `cargo test`."
            ),
            ["docs/api.md"]
        );
        let steps = steps(
            Scenario::Success,
            &Context {
                cli: Cli::Gemini,
                prompt: "Note the endpoint in `docs/api.md`.",
            },
        );
        assert!(steps.iter().any(|s| matches!(s,
            Step::Act(Action::Write { path, .. }) if path == "docs/api.md")));
        // With orchestrate's MCP server the agent locks each file once, before its first write.
        let locked = crate::scenario::with_locks(steps);
        let locks: Vec<&serde_json::Value> = locked
            .iter()
            .filter_map(|s| match s {
                Step::Mcp { arguments, .. } => Some(&arguments["resource"]),
                _ => None,
            })
            .collect();
        assert_eq!(
            locks,
            ["notes/gemini-note-the-endpoint-in-docs.md", "docs/api.md"]
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

    #[test]
    fn success_writes_a_notes_file_named_after_the_cli_and_prompt() {
        let steps = steps(
            Scenario::Success,
            &Context {
                cli: Cli::Codex,
                prompt: "add a health endpoint",
            },
        );
        assert!(steps.contains(&Step::Act(Action::Write {
            path: "notes/codex-add-a-health-endpoint.md".into(),
            content: "# add a health endpoint\n\nTask: add a health endpoint\n\nWritten by the codex agent.\n\n- [ ] reviewed the change\n".into(),
        })));
        assert_eq!(
            steps.last(),
            Some(&Step::Answer(
                "Done. I wrote notes/codex-add-a-health-endpoint.md and checked it.".into()
            ))
        );
    }
}
