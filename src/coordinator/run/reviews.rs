//! Peer review in the coordinator: a trigger (`review::Triggers`) starts reviewers, the other
//! available agents, each a read-only worker of its own in the reviewed task's directory; each
//! answer's verdict is read (`review::verdict`), and once all are in, `DecisionPolicy` decides
//! and the action is applied to the reviewed worker. Everything is journaled (`review` and
//! `decision` events) and kept in `reviews/<id>.json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::tasks::stop_in_background;
use super::{Coordinator, EndedBy, RunningTask};
use crate::agents::{Autonomy, Draft};
use crate::event::{AgentEvent, EventType, UsageTotals};
use crate::review::{Action, DecisionPolicy, REVIEW_MARKER, Trigger, Verdict, verdict};
use crate::session::layout::write_atomically;
use crate::session::store::{DecisionRow, ReviewRow, VerdictRow};
use crate::timestamp::Timestamp;
use crate::worker::Worker;

/// The longest answer kept from a reviewer.
const ANSWER_LIMIT: usize = 1 << 20;
/// The diff a reviewer sees is cut past this many bytes by default (`review.diff_limit_kb`).
const DIFF_NOTE: &str = "\n[diff cut here: too long]\n";

pub(super) struct ReviewInFlight {
    pub trigger: Trigger,
    pub task: String,
    pub started: Timestamp,
    pub reviewers: BTreeMap<String, Reviewer>,
    /// What the reviewers were asked (a retry asks again).
    pub prompt: String,
    /// The orchestrator's own seat, when fewer than two agents review: `review.checks` run
    /// in the task's directory; `None` until they are done.
    pub checks: Option<Option<(Verdict, String)>>,
    /// Files, insertions and deletions of the diff the reviewers saw, and whether it was cut.
    pub diff_stats: serde_json::Value,
    /// The answers in so far, as `reviews/<id>.json` holds them (each journaled as it came),
    /// those kept from a review a restart cut short included.
    pub responses: Vec<serde_json::Value>,
}

pub(super) struct Reviewer {
    pub agent: String,
    pub worker: Arc<Worker>,
    pub answer: String,
    pub result: Option<Result<verdict::ReviewResponse, String>>,
    /// 1, or 2 after a retry for an answer with no verdict.
    pub attempt: u32,
    /// Stopped by `review.timeout_secs`: its silence is the answer, with no retry.
    pub timed_out: bool,
}

impl Coordinator {
    /// Starts the review a trigger asks for (or says there is no one to review). `kept` are
    /// answers a restart cut short review had already journaled: their reviewers are not
    /// asked again.
    pub(super) fn start_review(
        &mut self,
        trigger: Trigger,
        kept: Vec<serde_json::Value>,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
        let Some(task) = trigger.task.clone() else {
            self.triggers.finished(&trigger.worker);
            return;
        };
        self.review_count += 1;
        let id = format!("r{}", self.review_count);
        let reviewed_agent = self
            .current_plan
            .iter()
            .flat_map(|p| &p.tasks)
            .find(|t| t.id == task)
            .map(|t| t.agent.clone())
            .unwrap_or_default();
        let agents: Vec<String> = self
            .available
            .present()
            .into_iter()
            .filter(|a| *a != reviewed_agent)
            .collect();
        let kept_from = |name: &str| kept.iter().any(|k| k["reviewer"] == name);
        let agents: Vec<String> = agents.into_iter().filter(|a| !kept_from(a)).collect();
        let seated_by_kept = kept
            .iter()
            .filter(|k| k["reviewer"] != "orchestrator")
            .count();
        let run_dir = self.session.run_dir(&task);
        let (prompt, diff_stats) = self.review_prompt(&trigger, &task, running);
        let mut reviewers = BTreeMap::new();
        for agent in &agents {
            let name = format!("review-{id}-{agent}");
            match self.spawn_worker(
                &name,
                None,
                agent,
                &prompt,
                &run_dir,
                Vec::new(),
                Autonomy::ReadOnly,
                None,
                Some(verdict::SCHEMA),
            ) {
                Ok(worker) => {
                    reviewers.insert(
                        name,
                        Reviewer {
                            agent: agent.clone(),
                            worker: Arc::new(worker),
                            answer: String::new(),
                            result: None,
                            attempt: 1,
                            timed_out: false,
                        },
                    );
                }
                Err(e) => self.record(
                    Some(&task),
                    Draft::new(
                        EventType::Error,
                        format!("review {id}: {agent} could not start: {e:#}"),
                    )
                    .with("phase", "reviewer_failed")
                    .with("fatal", false),
                ),
            }
        }
        self.record(
            Some(&task),
            Draft::new(
                EventType::Review,
                format!(
                    "review {id} of {} ({}: {}) by {}",
                    trigger.worker,
                    trigger.kind.name(),
                    trigger.reason,
                    if reviewers.is_empty() {
                        "nobody".into()
                    } else {
                        agents.join(", ")
                    }
                ),
            )
            .with("phase", "review_requested")
            .with("review", id.clone())
            .with("worker", trigger.worker.clone())
            .with("trigger", json!(trigger.kind))
            .with("reviewers", reviewers.keys().cloned().collect::<Vec<_>>()),
        );
        // Fewer than two agents to review: the orchestrator's checks take the seat.
        let checks = self.settings.config.review.checks.clone();
        let with_checks = reviewers.len() + seated_by_kept < 2
            && !checks.is_empty()
            && !kept_from("orchestrator");
        if with_checks {
            self.run_checks(&id, checks, run_dir.clone());
        }
        let empty = reviewers.is_empty() && !with_checks;
        for k in &kept {
            self.record_verdict(&id, &task, &trigger.worker, k);
        }
        let row = ReviewRow {
            id: id.clone(),
            worker: trigger.worker.clone(),
            task: task.clone(),
            trigger: trigger.kind.name().to_string(),
            reviewers: reviewers.values().map(|r| r.agent.clone()).collect(),
            started: Timestamp::now().to_string(),
            ..ReviewRow::default()
        };
        let _ = self
            .store
            .save_review(&self.session.id, &row, Timestamp::now());
        self.reviews.insert(
            id.clone(),
            ReviewInFlight {
                trigger,
                task,
                started: Timestamp::now(),
                reviewers,
                prompt,
                checks: with_checks.then_some(None),
                diff_stats,
                responses: kept,
            },
        );
        if empty {
            self.conclude_review(&id, running);
        }
    }

    /// What a reviewer is asked: the task, the worker's last words, its diff and files, its
    /// recent blockers and errors, and the answer's shape.
    fn review_prompt(
        &self,
        trigger: &Trigger,
        task: &str,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> (String, serde_json::Value) {
        let planned = self
            .current_plan
            .iter()
            .flat_map(|p| &p.tasks)
            .find(|t| t.id == task);
        let (title, task_prompt) = planned.map_or((task.to_string(), String::new()), |t| {
            (t.title.clone(), t.prompt.clone())
        });
        let run_dir = self.session.run_dir(task);
        let limit = (self.settings.config.review.diff_limit_kb as usize) << 10;
        let work = task_diff(&run_dir, limit);
        let (diff, files) = (&work.text, &work.files);
        let (events, _) = crate::event::read_journal(&self.session.events_path(&trigger.worker))
            .unwrap_or_default();
        let last_words = events
            .iter()
            .rev()
            .find(|e| e.kind == EventType::Milestone || e.str_field("kind") == Some("message"))
            .map(|e| e.text().to_string())
            .unwrap_or_default();
        let troubles: Vec<String> = events
            .iter()
            .rev()
            .filter(|e| matches!(e.kind, EventType::Blocker | EventType::Error))
            .take(5)
            .map(|e| format!("- {}: {}", e.kind, e.text()))
            .collect();
        let commands: Vec<String> = events
            .iter()
            .filter(|e| {
                e.str_field("kind") == Some("tool_call") || e.str_field("kind") == Some("command")
            })
            .rev()
            .take(20)
            .map(|e| format!("- {}", e.text()))
            .collect();
        let _ = running;
        let prompt = format!(
            "{REVIEW_MARKER}\n\nReview another agent's work on task \"{title}\" (read only: change nothing).\n\n\
             The task: {task_prompt}\n\nIts last words: {last_words}\n\nFiles changed:\n{files}\n\n\
             Commands it ran (latest first):\n{}\n\nRecent blockers and errors:\n{}\n\nThe diff:\n{diff}\n\n\
             Answer with one JSON object and nothing else: {{\"verdict\": \"approved\" | \"concern\" | \"blocker\", \
             \"summary\": \"at most 200 words\", \"findings\": [{{\"severity\": \"...\", \"file\": \"...\", \"line\": 1, \"text\": \"...\"}}]}}",
            commands.join("\n"),
            troubles.join("\n"),
        );
        (prompt, work.stats)
    }

    /// An event of a reviewer worker, if `event` comes from one; true when it did.
    pub(super) fn on_reviewer_event(
        &mut self,
        event: &AgentEvent,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> bool {
        let Some(id) = self
            .reviews
            .iter()
            .find(|(_, r)| r.reviewers.contains_key(&*event.worker))
            .map(|(id, _)| id.clone())
        else {
            return false;
        };
        let review = self.reviews.get_mut(&id).expect("just found");
        let reviewer = review
            .reviewers
            .get_mut(&*event.worker)
            .expect("just found");
        // A structured answer (Claude `--json-schema`) is the verdict as an object.
        let structured = event
            .payload
            .get("structured_output")
            .filter(|v| v.is_object())
            .map(|v| v.to_string());
        for text in [
            Some(event.text()),
            event.str_field("result"),
            structured.as_deref(),
        ]
        .into_iter()
        .flatten()
        {
            if reviewer.answer.len() + text.len() <= ANSWER_LIMIT {
                reviewer.answer.push_str(text);
                reviewer.answer.push('\n');
            }
        }
        if event.phase() == Some("exited") && reviewer.result.is_none() {
            let parsed = if reviewer.timed_out {
                Err(format!(
                    "no verdict within review.timeout_secs ({}s)",
                    self.settings.config.review.timeout_secs
                ))
            } else {
                verdict::parse(&reviewer.answer).map_err(|e| e.to_string())
            };
            // A reviewer stopped with the session, or by the time limit, is not asked again.
            let retry =
                parsed.is_err() && reviewer.attempt == 1 && !reviewer.timed_out && !self.stopping;
            if retry {
                // One more try, told what was wrong; then a silent reviewer is a concern.
                let (name, agent) = (event.worker.to_string(), reviewer.agent.clone());
                let prompt = format!(
                    "{}\n\nYour last answer held no usable verdict. Answer with the JSON object only.",
                    review.prompt
                );
                let run_dir = self.session.run_dir(&review.task);
                match self.spawn_worker(
                    &name,
                    None,
                    &agent,
                    &prompt,
                    &run_dir,
                    Vec::new(),
                    Autonomy::ReadOnly,
                    None,
                    Some(verdict::SCHEMA),
                ) {
                    Ok(worker) => {
                        let review = self.reviews.get_mut(&id).expect("still there");
                        let reviewer = review.reviewers.get_mut(&name).expect("still there");
                        reviewer.worker = Arc::new(worker);
                        reviewer.answer.clear();
                        reviewer.attempt = 2;
                        return true;
                    }
                    Err(e) => {
                        let review = self.reviews.get_mut(&id).expect("still there");
                        let reviewer = review.reviewers.get_mut(&name).expect("still there");
                        reviewer.result = Some(Err(format!("{e:#}")));
                    }
                }
            } else {
                reviewer.result = Some(parsed);
            }
            self.settle_reviewer(&id, &event.worker);
            self.conclude_if_complete(&id, running);
        }
        true
    }

    /// The orchestrator's seat: every command of `review.checks` in `dir`, one after the other,
    /// off the loop; the first that fails makes it a concern with its output's tail.
    fn run_checks(&self, id: &str, checks: Vec<String>, dir: std::path::PathBuf) {
        let tx = self.inbox_tx.clone();
        let id = id.to_string();
        // All the checks share the review's time limit.
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(self.settings.config.review.timeout_secs);
        std::thread::spawn(move || {
            let mut outcome = (
                Verdict::Approved,
                format!("checks passed: {}", checks.join("; ")),
            );
            for check in &checks {
                match run_check(check, &dir, deadline) {
                    Ok(()) => {}
                    Err(tail) => {
                        outcome = (Verdict::Concern, format!("`{check}` failed: {tail}"));
                        break;
                    }
                }
            }
            let _ = tx.send(super::Inbox::Checked {
                review: id,
                verdict: outcome.0,
                summary: outcome.1,
            });
        });
    }

    /// The checks of review `id` are done.
    pub(super) fn on_checked(
        &mut self,
        id: &str,
        verdict: Verdict,
        summary: String,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
        let Some(review) = self.reviews.get_mut(id) else {
            return;
        };
        review.checks = Some(Some((verdict, summary.clone())));
        let response = json!({"reviewer": "orchestrator", "verdict": verdict.name(), "summary": summary,
                              "findings": [], "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0});
        review.responses.push(response.clone());
        let (task, worker) = (review.task.clone(), review.trigger.worker.clone());
        self.record_verdict(id, &task, &worker, &response);
        self.conclude_if_complete(id, running);
    }

    fn conclude_if_complete(&mut self, id: &str, running: &mut BTreeMap<String, RunningTask>) {
        let complete = self.reviews.get(id).is_some_and(|r| {
            r.reviewers.values().all(|x| x.result.is_some())
                && r.checks.as_ref().is_none_or(|c| c.is_some())
        });
        if complete {
            self.conclude_review(id, running);
        }
    }

    /// True while a review of `worker` is under way and the gate holds its task's end.
    pub(super) fn gate_holds(&self, worker: &str) -> bool {
        self.settings.config.review.gate
            && self.reviews.values().any(|r| r.trigger.worker == worker)
    }

    /// Reviews running past `review.timeout_secs`: their silent reviewers are stopped (and
    /// count as concerns).
    pub(super) fn time_out_reviews(&mut self) {
        let limit = self.settings.config.review.timeout_secs as i64 * 1000;
        let now = Timestamp::now();
        for review in self.reviews.values_mut() {
            if now.millis() - review.started.millis() < limit {
                continue;
            }
            for r in review
                .reviewers
                .values_mut()
                .filter(|r| r.result.is_none() && !r.timed_out)
            {
                r.timed_out = true;
                stop_in_background(&r.worker, true);
            }
        }
    }

    /// Reviewer `name` of review `id` has its final answer: it is journaled now (a restart
    /// keeps it) and joins the review's responses.
    fn settle_reviewer(&mut self, id: &str, name: &str) {
        let Some(review) = self.reviews.get(id) else {
            return;
        };
        let Some(r) = review.reviewers.get(name) else {
            return;
        };
        let (v, summary, findings) = match &r.result {
            Some(Ok(response)) => (
                response.verdict,
                response.summary.clone(),
                json!(response.findings),
            ),
            // A silent or rambling reviewer never approves.
            Some(Err(why)) => (
                Verdict::Concern,
                format!("reviewer gave no verdict ({why})"),
                json!([]),
            ),
            None => return,
        };
        let (events, _) =
            crate::event::read_journal(&self.session.events_path(name)).unwrap_or_default();
        let usage = UsageTotals::of(&events);
        let spawned = events.iter().find(|e| e.phase() == Some("spawned"));
        let exited = events.iter().rev().find(|e| e.phase() == Some("exited"));
        let duration_ms = match (spawned, exited) {
            (Some(a), Some(b)) => (b.timestamp.millis() - a.timestamp.millis()).max(0),
            _ => 0,
        };
        let response = json!({
            "reviewer": r.agent, "worker": name, "verdict": v.name(), "summary": summary,
            "findings": findings, "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens, "cost_usd": usage.cost_usd,
            "duration_ms": duration_ms, "attempts": r.attempt,
        });
        let (task, worker) = (review.task.clone(), review.trigger.worker.clone());
        if let Some(review) = self.reviews.get_mut(id) {
            review.responses.push(response.clone());
        }
        self.record_verdict(id, &task, &worker, &response);
    }

    /// The `review_verdict` event of one response.
    fn record_verdict(&mut self, id: &str, task: &str, worker: &str, response: &serde_json::Value) {
        let text = |key: &str| response[key].as_str().unwrap_or("").to_string();
        let reviewer = text("reviewer");
        let who = if reviewer == "orchestrator" {
            "orchestrator checks".to_string()
        } else {
            reviewer.clone()
        };
        self.record(
            Some(task),
            Draft::new(
                EventType::Review,
                format!(
                    "review {id}: {who} says {}: {}",
                    text("verdict"),
                    text("summary")
                ),
            )
            .with("phase", "review_verdict")
            .with("review", id.to_string())
            .with("reviewer", reviewer)
            .with("worker", worker.to_string())
            .with("verdict", text("verdict"))
            .with("summary", text("summary"))
            .with("findings", response["findings"].clone())
            .with_some("kept_from", response.get("kept_from").cloned()),
        );
    }

    /// All verdicts are in: the policy decides, the action is applied, the records written.
    fn conclude_review(&mut self, id: &str, running: &mut BTreeMap<String, RunningTask>) {
        let Some(review) = self.reviews.remove(id) else {
            return;
        };
        let responses = &review.responses;
        let verdicts: Vec<Verdict> = responses
            .iter()
            .map(|r| serde_json::from_value(r["verdict"].clone()).unwrap_or(Verdict::Concern))
            .collect();
        let decision = DecisionPolicy::decide(&verdicts);
        // The record first: whoever sees the decision in the journal finds it.
        let record = json!({
            "id": id, "trigger": {"kind": review.trigger.kind, "reason": review.trigger.reason},
            "worker": review.trigger.worker, "task": review.task, "started": review.started,
            "decided": Timestamp::now(), "diff": review.diff_stats,
            "responses": responses, "decision": decision,
        });
        let path = self.session.reviews_dir().join(format!("{id}.json"));
        let _ = write_atomically(&path, &format!("{record:#}\n"));
        let row = ReviewRow {
            id: id.to_string(),
            worker: review.trigger.worker.clone(),
            task: review.task.clone(),
            trigger: review.trigger.kind.name().to_string(),
            reviewers: responses
                .iter()
                .filter_map(|r| r["reviewer"].as_str().map(str::to_string))
                .collect(),
            started: review.started.to_string(),
            decision: Some(DecisionRow {
                rule: i64::from(decision.rule),
                action: decision.action.name().to_string(),
                reason: decision.reason.clone(),
            }),
            verdicts: responses.iter().map(verdict_row).collect(),
        };
        let _ = self
            .store
            .save_review(&self.session.id, &row, Timestamp::now());
        let verdict_names: Vec<&str> = verdicts.iter().map(|v| v.name()).collect();
        self.record(
            Some(&review.task),
            Draft::new(
                EventType::Decision,
                format!(
                    "review {id} of {}: {} ({})",
                    review.trigger.worker,
                    decision.action.name(),
                    decision.reason
                ),
            )
            .with("phase", "review_decision")
            .with("rule", decision.rule)
            .with("action", decision.action.name())
            .with("reason", decision.reason.clone())
            .with("review", id.to_string())
            .with("worker", review.trigger.worker.clone())
            .with("verdicts", verdict_names.clone()),
        );

        if decision.action == Action::PauseAndClarify {
            let concerns: Vec<String> = responses
                .iter()
                .filter(|r| r["verdict"] != "approved")
                .map(|r| {
                    format!(
                        "- {} ({}): {}",
                        r["reviewer"].as_str().unwrap_or("?"),
                        r["verdict"].as_str().unwrap_or("?"),
                        r["summary"].as_str().unwrap_or("")
                    )
                })
                .collect();
            self.clarify_concerns
                .insert(review.task.clone(), concerns.join("\n"));
        }
        self.apply_decision(&review, decision.action, running);
        // The gate held the reviewed task's end for this decision: it goes on now, unless
        // the decision asks the operator first.
        if let Some(r) = running
            .get_mut(&review.task)
            .filter(|r| r.name == review.trigger.worker)
            && r.pending_exit.is_some()
        {
            if decision.action == Action::PauseAndClarify {
                self.clarify_holds.insert(review.task.clone());
            } else if let Some(exit) = r.pending_exit.take() {
                let _ = self.inbox_tx.send(super::Inbox::Event(exit));
            }
        }
        if let Some(next) = self.triggers.finished(&review.trigger.worker) {
            self.start_review(next, Vec::new(), running);
        }
    }

    fn apply_decision(
        &mut self,
        review: &ReviewInFlight,
        action: Action,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
        let reviewed = running
            .get(&review.task)
            .filter(|r| r.name == review.trigger.worker);
        match action {
            Action::StopAndEscalate => {
                if let Some(r) = reviewed {
                    self.stopped_by_review.insert(review.task.clone());
                    stop_in_background(&r.worker, false);
                }
                // No new task starts until the operator resumes or stops the session.
                self.paused = true;
                self.record(
                    None,
                    Draft::new(
                        EventType::Control,
                        format!("session paused: a review found a blocker in {}'s work; resume or stop the session", review.trigger.worker),
                    )
                    .with("phase", "control")
                    .with("command", "pause")
                    .with("took_effect", true)
                    .with("escalation", true),
                );
            }
            Action::PauseAndClarify => {
                if let Some(r) = reviewed {
                    let _ = r.worker.pause();
                }
            }
            Action::LogWarning | Action::Continue => {}
        }
    }

    /// The reason a task's end gets when a review stopped it (no retry).
    pub(super) fn review_stop(&self, task: &str) -> Option<EndedBy> {
        self.stopped_by_review
            .contains(task)
            .then(|| EndedBy::Review("stopped by review".into()))
    }
}

/// A response of `reviews/<id>.json` as its database row.
fn verdict_row(response: &serde_json::Value) -> VerdictRow {
    let text = |key: &str| response[key].as_str().unwrap_or("").to_string();
    let number = |key: &str| response[key].as_i64().unwrap_or(0);
    VerdictRow {
        reviewer: text("reviewer"),
        verdict: text("verdict"),
        summary: text("summary"),
        findings: response["findings"].to_string(),
        input_tokens: number("input_tokens"),
        output_tokens: number("output_tokens"),
        cost_usd: response["cost_usd"].as_f64().unwrap_or(0.0),
        duration_ms: number("duration_ms"),
    }
}

/// The work of a task as reviewers see it.
struct TaskDiff {
    /// The diff against the task's base (its commits and what is not committed yet), new
    /// files included, cut at the limit with a note.
    text: String,
    /// `git status --short`.
    files: String,
    stats: serde_json::Value,
}

fn task_diff(run_dir: &std::path::Path, limit: usize) -> TaskDiff {
    use crate::coordinator::runs;
    let git = |args: &[&str]| runs::git(run_dir, args).unwrap_or_default();
    let base = runs::base_commit(run_dir);
    let mut text = git(&["diff", &base]);
    let (mut files, mut insertions, deletions) = shortstat(&git(&["diff", "--shortstat", &base]));
    // New files are not in `git diff` until added: show them as added, whole.
    let untracked = git(&["ls-files", "--others", "--exclude-standard", "-z"]);
    for path in untracked.split('\0').filter(|p| !p.is_empty()) {
        files += 1;
        let Ok(content) = std::fs::read(run_dir.join(path)) else {
            continue;
        };
        if content.contains(&0) {
            text.push_str(&format!("new binary file {path}\n"));
            continue;
        }
        let content = String::from_utf8_lossy(&content);
        insertions += content.lines().count() as u64;
        if text.len() <= limit {
            text.push_str(&format!("new file {path}\n"));
            for line in content.lines() {
                text.push('+');
                text.push_str(line);
                text.push('\n');
            }
        }
    }
    let bytes = text.len();
    let cut = bytes > limit;
    if cut {
        let mut at = limit;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        text.truncate(at);
        text.push_str(DIFF_NOTE);
    }
    TaskDiff {
        text,
        files: git(&["status", "--short"]),
        stats: json!({"base": base, "files": files, "insertions": insertions,
                      "deletions": deletions, "bytes": bytes, "cut": cut}),
    }
}

/// `3 files changed, 10 insertions(+), 2 deletions(-)` as (3, 10, 2).
fn shortstat(line: &str) -> (u64, u64, u64) {
    let mut counts = (0, 0, 0);
    for part in line.split(',') {
        let mut words = part.split_whitespace();
        let (Some(n), Some(what)) = (words.next(), words.next()) else {
            continue;
        };
        let n: u64 = n.parse().unwrap_or(0);
        if what.starts_with("file") {
            counts.0 = n;
        } else if what.starts_with("insertion") {
            counts.1 = n;
        } else if what.starts_with("deletion") {
            counts.2 = n;
        }
    }
    counts
}

/// Output a check keeps: its tail, for the concern's summary.
const CHECK_TAIL_BYTES: usize = 64 * 1024;

/// Runs one check with `sh -c` in `dir`, in a process group of its own; the tail of its
/// output when it fails. Whatever it started is killed when it ends or times out, so a
/// leftover child holding the pipe open cannot hold the review.
fn run_check(
    check: &str,
    dir: &std::path::Path,
    deadline: std::time::Instant,
) -> Result<(), String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{check} 2>&1"))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run: {e}"))?;
    let group = child.id() as i32;
    let mut stdout = child.stdout.take().expect("piped");
    let tail = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let collected = Arc::clone(&tail);
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut tail = collected.lock().unwrap_or_else(|e| e.into_inner());
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 2 * CHECK_TAIL_BYTES {
                let cut = tail.len() - CHECK_TAIL_BYTES;
                tail.drain(..cut);
            }
        }
        let _ = done_tx.send(());
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => break None,
        }
    };
    let _ = crate::worker::process::signal_group(group, libc::SIGKILL);
    let Some(status) = status else {
        let _ = child.wait();
        return Err("timed out (review.timeout_secs)".to_string());
    };
    // A child that left the group may still hold the pipe: do not wait on it for long.
    let _ = done_rx.recv_timeout(std::time::Duration::from_secs(2));
    if status.success() {
        return Ok(());
    }
    let tail = tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let output = String::from_utf8_lossy(&tail);
    let lines: Vec<&str> = output.lines().rev().take(5).collect();
    let lines: Vec<&str> = lines.into_iter().rev().collect();
    Err(format!("{status}: {}", lines.join(" | ")))
}

impl Coordinator {
    /// On resume: review ids go on from the last one; a review requested but never decided
    /// is marked interrupted (so it is never decided twice) and runs again once its task
    /// runs again.
    pub(super) fn restore_reviews(&mut self, events: &[AgentEvent]) {
        let mut open: BTreeMap<String, Trigger> = BTreeMap::new();
        let mut answered: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for e in events {
            let Some(id) = e.str_field("review") else {
                continue;
            };
            self.review_count = self
                .review_count
                .max(id.trim_start_matches('r').parse().unwrap_or(0));
            match e.phase() {
                Some("review_requested") => {
                    let kind = serde_json::from_value(
                        e.payload.get("trigger").cloned().unwrap_or_default(),
                    )
                    .unwrap_or(crate::review::TriggerKind::Manual);
                    open.insert(
                        id.to_string(),
                        Trigger {
                            worker: e.str_field("worker").unwrap_or("").to_string(),
                            task: e.task.as_deref().map(str::to_string),
                            kind,
                            reason: "run again after the coordinator restarted".into(),
                        },
                    );
                }
                Some("review_verdict") => {
                    answered.entry(id.to_string()).or_default().push(json!({
                        "reviewer": e.str_field("reviewer"), "verdict": e.str_field("verdict"),
                        "summary": e.str_field("summary"),
                        "findings": e.payload.get("findings").cloned().unwrap_or(json!([])),
                        "kept_from": id,
                    }));
                }
                Some("review_decision" | "review_interrupted") => {
                    open.remove(id);
                }
                _ => {}
            }
        }
        for (id, trigger) in open {
            let kept = answered.remove(&id).unwrap_or_default();
            self.record(
                trigger.task.as_deref(),
                Draft::new(
                    EventType::Review,
                    format!(
                        "review {id} was cut short by the coordinator's restart; it runs again, keeping its {} verdict(s)",
                        kept.len()
                    ),
                )
                .with("phase", "review_interrupted")
                .with("review", id),
            );
            self.interrupted_reviews.push((trigger, kept));
        }
    }

    /// A task runs again: its interrupted review with it.
    pub(super) fn resume_reviews_of(
        &mut self,
        task: &str,
        running: &mut BTreeMap<String, RunningTask>,
    ) {
        let (again, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.interrupted_reviews)
            .into_iter()
            .partition(|(t, _)| t.task.as_deref() == Some(task));
        self.interrupted_reviews = rest;
        for (trigger, kept) in again {
            if let Some(trigger) = self
                .triggers
                .manual(&trigger.worker, trigger.task.as_deref())
            {
                self.start_review(trigger, kept, running);
            }
        }
    }
}

impl Coordinator {
    /// Reviewers still at work, by worker name.
    pub(super) fn reviewer_workers(&self) -> Vec<(String, Arc<Worker>)> {
        self.reviews
            .values()
            .flat_map(|r| &r.reviewers)
            .filter(|(_, r)| r.result.is_none())
            .map(|(name, r)| (name.clone(), Arc::clone(&r.worker)))
            .collect()
    }
}

impl Coordinator {
    /// `control clarify --worker W`: the reviewers' concerns go to the paused agent, which
    /// runs again continuing its own conversation with them as the next prompt.
    pub(super) fn clarify(
        &mut self,
        worker: Option<&str>,
        running: &mut BTreeMap<String, RunningTask>,
    ) -> crate::coordinator::control::ControlReply {
        use crate::coordinator::control::ControlReply;
        let found = running
            .iter_mut()
            .find(|(task, r)| {
                worker.is_none_or(|w| w == r.name) && self.clarify_concerns.contains_key(*task)
            })
            .map(|(task, r)| (task.clone(), r));
        let Some((task, r)) = found else {
            return ControlReply::refused("no worker waits with a review's concerns");
        };
        let concerns = self.clarify_concerns.remove(&task).unwrap_or_default();
        self.clarify_prompts.insert(
            task.clone(),
            format!(
                "Reviewers of your work raised these concerns. Address them, then finish the task.\n{concerns}"
            ),
        );
        self.clarify_holds.remove(&task);
        r.ended_by = Some(EndedBy::Clarify);
        if let Some(exit) = r.pending_exit.take() {
            let _ = self.inbox_tx.send(super::Inbox::Event(exit));
        } else {
            stop_in_background(&r.worker, false);
        }
        ControlReply::done(format!(
            "{} runs again with the reviewers' concerns",
            r.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_stats_are_read_from_git_shortstat() {
        assert_eq!(
            shortstat(" 3 files changed, 10 insertions(+), 2 deletions(-)"),
            (3, 10, 2)
        );
        assert_eq!(shortstat(" 1 file changed, 1 deletion(-)"), (1, 0, 1));
        assert_eq!(shortstat(""), (0, 0, 0));
    }

    #[test]
    fn a_check_ends_when_its_shell_does_even_if_a_child_keeps_the_output_open() {
        let dir = std::env::temp_dir();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        // The child leaves the group (setsid) and holds the pipe for half a minute.
        let failed = run_check(
            "setsid sleep 30 & sleep 0.3; echo boom; exit 3",
            &dir,
            deadline,
        );
        let why = failed.unwrap_err();
        assert!(why.contains("3") && why.contains("boom"), "{why}");
        assert!(run_check("sleep 600 & true", &dir, deadline).is_ok());
        let past = std::time::Instant::now();
        assert!(
            run_check("sleep 600", &dir, past)
                .unwrap_err()
                .contains("timed out")
        );
    }
}
