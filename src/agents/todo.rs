//! Agent todo lists (Claude `TodoWrite`, Codex `todo_list`, Gemini `write_todos`) as `task`
//! events: the whole list, what changed since the last one, and progress as a percentage.

use serde_json::{Value, json};

use super::draft::Draft;
use crate::event::EventType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Todo {
    pub text: String,
    /// `pending`, `in_progress` or `completed`.
    pub status: &'static str,
}

impl Todo {
    pub fn new(text: &str, status: &str) -> Self {
        let status = match status {
            "completed" | "done" | "complete" => "completed",
            "in_progress" | "active" | "running" | "in-progress" => "in_progress",
            "cancelled" | "canceled" => "cancelled",
            _ => "pending",
        };
        Todo {
            text: text.to_string(),
            status,
        }
    }
}

/// The agent's current list; each new list replaces it and yields the `task` event.
#[derive(Debug, Default)]
pub struct TodoList {
    current: Vec<Todo>,
}

impl TodoList {
    /// Takes the new list; `None` when nothing changed.
    pub fn replace(&mut self, next: Vec<Todo>, native: &str) -> Option<Draft> {
        let draft = todo_draft(&self.current, &next, native);
        self.current = next;
        draft
    }
}

/// The `task` event for a new list, given the previous one. Returns `None` when nothing changed.
fn todo_draft(previous: &[Todo], current: &[Todo], native: &str) -> Option<Draft> {
    if previous == current {
        return None;
    }
    let changed: Vec<&str> = current
        .iter()
        .filter(|t| !previous.contains(t))
        .map(|t| t.text.as_str())
        .collect();
    let total = current.len();
    let done = current.iter().filter(|t| t.status == "completed").count();
    let progress = (done * 100).checked_div(total).unwrap_or(0);
    let active = current.iter().find(|t| t.status == "in_progress");
    let text = match active {
        Some(t) => format!("todo {done}/{total}: {}", t.text),
        None => format!("todo {done}/{total} done"),
    };
    let todos: Vec<Value> = current
        .iter()
        .map(|t| json!({"text": t.text, "status": t.status}))
        .collect();
    Some(
        Draft::new(EventType::Task, text)
            .native(native)
            .with("todos", todos)
            .with("changed", changed)
            .with("completed", done)
            .with("total", total)
            .with("progress", progress),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_progress_and_what_changed() {
        let before = vec![Todo::new("a", "in_progress"), Todo::new("b", "pending")];
        let after = vec![Todo::new("a", "completed"), Todo::new("b", "in_progress")];
        let draft = todo_draft(&before, &after, "x").unwrap();
        assert_eq!(draft.text(), "todo 1/2: b");
        assert_eq!(draft.payload["progress"], json!(50));
        assert_eq!(draft.payload["changed"], json!(["a", "b"]));
        assert!(todo_draft(&after, &after, "x").is_none());
    }
}
