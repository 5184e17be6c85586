//! The plan: tasks with ids, prompts, an agent or a role, and dependencies. Read from a file
//! (TOML or JSON), from the planner agent's answer, or the fallback of seed 003's three roles.
//! Validation names the task and what is wrong with it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::tiers::Availability;

/// What a task is for; decides its agent when the plan does not name one (seed 003).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Design,
    Implement,
    Review,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Design => "design",
            Role::Implement => "implement",
            Role::Review => "review",
        }
    }

    /// Agents in order of preference for this role.
    pub fn preferred_agents(self) -> [&'static str; 3] {
        match self {
            Role::Design => ["gemini", "claude", "codex"],
            Role::Implement => ["claude", "codex", "gemini"],
            Role::Review => ["codex", "claude", "gemini"],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A task as written in a plan, before validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedTask {
    pub id: String,
    #[serde(default)]
    pub title: Option<String>,
    pub prompt: String,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub role: Option<Role>,
    #[serde(default)]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanDocument {
    tasks: Vec<PlannedTask>,
}

/// A validated task, its agent chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub title: String,
    pub prompt: String,
    /// The agent profile that runs it.
    pub agent: String,
    pub role: Option<Role>,
    pub depends_on: Vec<String>,
    /// Why the agent differs from the one the plan asked for, if it does.
    pub reassigned: Option<String>,
}

/// Tasks in an order where every task comes after its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Syntax(String),
    #[error("the plan has no tasks")]
    Empty,
    #[error(
        "task {0:?}: an id may only use letters, digits, '-' and '_' (it names a branch and a directory)"
    )]
    BadId(String),
    #[error("task {0:?} is defined twice")]
    Duplicate(String),
    #[error("task {task:?} depends on {missing:?}, which is not in the plan")]
    UnknownDependency { task: String, missing: String },
    #[error("task {0:?} depends on itself")]
    SelfDependency(String),
    #[error("tasks {} depend on each other in a cycle", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("task {task:?} asks for agent {agent:?}, which has no profile (known: {known})")]
    UnknownAgent {
        task: String,
        agent: String,
        known: String,
    },
    #[error("task {0:?}: no agent CLI is available to run it")]
    NoAgent(String),
    #[error("task {0:?} has an empty prompt")]
    EmptyPrompt(String),
}

/// Parses a plan file: `.json` as JSON, anything else as TOML (`[[tasks]]` tables).
pub fn parse_plan_file(path: &Path, text: &str) -> Result<Vec<PlannedTask>, PlanError> {
    let is_json =
        path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    let doc: PlanDocument = if is_json {
        serde_json::from_str(text)
            .map_err(|e| PlanError::Syntax(format!("{}: {e}", path.display())))?
    } else {
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            PlanError::Syntax(format!("{}{at}: {}", path.display(), e.message().trim()))
        })?
    };
    Ok(doc.tasks)
}

/// The plan in the planner agent's answer: the first JSON object holding `tasks`, possibly
/// inside prose or a code fence.
pub fn parse_planner_answer(answer: &str) -> Result<Vec<PlannedTask>, PlanError> {
    let start = answer
        .find('{')
        .ok_or_else(|| PlanError::Syntax("no JSON object in the planner's answer".into()))?;
    let end = answer
        .rfind('}')
        .ok_or_else(|| PlanError::Syntax("no JSON object in the planner's answer".into()))?;
    if end < start {
        return Err(PlanError::Syntax(
            "no JSON object in the planner's answer".into(),
        ));
    }
    let doc: PlanDocument = serde_json::from_str(&answer[start..=end])
        .map_err(|e| PlanError::Syntax(format!("the planner's answer is not a plan: {e}")))?;
    Ok(doc.tasks)
}

/// How the planner's prompt begins (the simulated agents recognise it).
pub const PLANNER_PROMPT_START: &str = "Break this goal into";

/// The prompt that asks the planner for a breakdown, with the schema it must follow.
pub fn planner_prompt(goal: &str) -> String {
    format!(
        "{PLANNER_PROMPT_START} 2 to 6 tasks for coding agents. Answer with JSON only, no prose, \
         matching {{\"tasks\": [{{\"id\": \"kebab-case\", \"title\": \"...\", \"prompt\": \"what the agent must do\", \
         \"role\": \"design\" | \"implement\" | \"review\", \"depends_on\": [\"ids of earlier tasks\"]}}]}}.\n\nGoal: {goal}"
    )
}

/// Gives each task with neither an agent nor a role the role `role_of` its prompt names (a
/// router target's `role`), when that is one of the plan's roles.
pub fn route_roles(
    tasks: Vec<PlannedTask>,
    role_of: impl Fn(&str) -> Option<String>,
) -> Vec<PlannedTask> {
    tasks
        .into_iter()
        .map(|mut t| {
            if t.agent.is_none() && t.role.is_none() {
                t.role = role_of(&t.prompt)
                    .and_then(|r| serde_json::from_value(serde_json::Value::String(r)).ok());
            }
            t
        })
        .collect()
}

/// Seed 003's three roles in a row: design, then implement, then review.
pub fn fallback_plan(goal: &str) -> Vec<PlannedTask> {
    let task = |id: &str, role: Role, title: &str, prompt: String, deps: &[&str]| PlannedTask {
        id: id.into(),
        title: Some(title.into()),
        prompt,
        agent: None,
        role: Some(role),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
    };
    vec![
        task(
            "design",
            Role::Design,
            "Design",
            format!("Design the solution and write it down for the implementer. Goal: {goal}"),
            &[],
        ),
        task(
            "implement",
            Role::Implement,
            "Implement",
            format!("Implement the design in this repository. Goal: {goal}"),
            &["design"],
        ),
        task(
            "review",
            Role::Review,
            "Review",
            format!(
                "Review the implementation for bugs and risks and report what you find. Goal: {goal}"
            ),
            &["implement"],
        ),
    ]
}

/// Checks `tasks` and chooses each one's agent from what is available.
pub fn validate(tasks: Vec<PlannedTask>, available: &Availability) -> Result<Plan, PlanError> {
    if tasks.is_empty() {
        return Err(PlanError::Empty);
    }
    let mut seen = BTreeSet::new();
    for t in &tasks {
        if t.id.is_empty()
            || !t
                .id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PlanError::BadId(t.id.clone()));
        }
        if !seen.insert(t.id.clone()) {
            return Err(PlanError::Duplicate(t.id.clone()));
        }
        if t.prompt.trim().is_empty() {
            return Err(PlanError::EmptyPrompt(t.id.clone()));
        }
    }
    for t in &tasks {
        for dep in &t.depends_on {
            if dep == &t.id {
                return Err(PlanError::SelfDependency(t.id.clone()));
            }
            if !seen.contains(dep) {
                return Err(PlanError::UnknownDependency {
                    task: t.id.clone(),
                    missing: dep.clone(),
                });
            }
        }
    }
    let order = topological_order(&tasks)?;
    let by_id: BTreeMap<&str, &PlannedTask> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut plan = Vec::new();
    for id in order {
        let t = by_id[id.as_str()];
        let (agent, reassigned) = choose_agent(t, available)?;
        plan.push(Task {
            id: t.id.clone(),
            title: t.title.clone().unwrap_or_else(|| t.id.clone()),
            prompt: t.prompt.clone(),
            agent,
            role: t.role,
            depends_on: t.depends_on.clone(),
            reassigned,
        });
    }
    Ok(Plan { tasks: plan })
}

fn choose_agent(
    t: &PlannedTask,
    available: &Availability,
) -> Result<(String, Option<String>), PlanError> {
    if let Some(agent) = &t.agent {
        if !available.has_profile(agent) {
            return Err(PlanError::UnknownAgent {
                task: t.id.clone(),
                agent: agent.clone(),
                known: available.profile_names().join(", "),
            });
        }
        if available.is_present(agent) {
            return Ok((agent.clone(), None));
        }
    }
    let role = t.role.unwrap_or(Role::Implement);
    let chosen = available
        .agent_for(role)
        .ok_or_else(|| PlanError::NoAgent(t.id.clone()))?;
    let why = match &t.agent {
        Some(asked) => Some(format!(
            "{asked} is not installed; {chosen} takes the {role} role"
        )),
        None if t.role.is_some() && role.preferred_agents()[0] != chosen => Some(format!(
            "{} is not installed; {chosen} takes the {role} role",
            role.preferred_agents()[0]
        )),
        None => None,
    };
    Ok((chosen, why))
}

/// Dependencies first; among tasks free to go, plan order. A cycle is named.
fn topological_order(tasks: &[PlannedTask]) -> Result<Vec<String>, PlanError> {
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    while order.len() < tasks.len() {
        let next = tasks.iter().find(|t| {
            !done.contains(t.id.as_str()) && t.depends_on.iter().all(|d| done.contains(d.as_str()))
        });
        match next {
            Some(t) => {
                done.insert(&t.id);
                order.push(t.id.clone());
            }
            None => return Err(PlanError::Cycle(find_cycle(tasks, &done))),
        }
    }
    Ok(order)
}

/// A cycle among the tasks not yet ordered, as `a -> b -> a`.
fn find_cycle(tasks: &[PlannedTask], done: &BTreeSet<&str>) -> Vec<String> {
    let deps: BTreeMap<&str, &Vec<String>> = tasks
        .iter()
        .map(|t| (t.id.as_str(), &t.depends_on))
        .collect();
    let Some(start) = tasks.iter().find(|t| !done.contains(t.id.as_str())) else {
        return Vec::new();
    };
    let mut path: Vec<&str> = vec![&start.id];
    loop {
        let current = path[path.len() - 1];
        let Some(next) = deps[current]
            .iter()
            .map(String::as_str)
            .find(|d| !done.contains(d))
        else {
            return path.iter().map(|s| s.to_string()).collect();
        };
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().map(|s| s.to_string()).collect();
            cycle.push(next.to_string());
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Availability {
        Availability::new(["claude", "codex", "gemini"], ["claude", "codex", "gemini"])
    }
    fn task(id: &str, deps: &[&str]) -> PlannedTask {
        PlannedTask {
            id: id.into(),
            title: None,
            prompt: format!("do {id}"),
            agent: Some("claude".into()),
            role: None,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
        }
    }

    #[test]
    fn orders_dependencies_first() {
        let plan = validate(
            vec![task("c", &["b"]), task("a", &[]), task("b", &["a"])],
            &all(),
        )
        .unwrap();
        let ids: Vec<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }

    #[test]
    fn every_plan_error_names_the_task_and_the_problem() {
        let err = |tasks| validate(tasks, &all()).unwrap_err().to_string();
        assert_eq!(
            err(vec![task("a", &[]), task("a", &[])]),
            "task \"a\" is defined twice"
        );
        assert_eq!(
            err(vec![task("a", &["x"])]),
            "task \"a\" depends on \"x\", which is not in the plan"
        );
        assert_eq!(
            err(vec![
                task("a", &["b"]),
                task("b", &["c"]),
                task("c", &["a"])
            ]),
            "tasks a -> b -> c -> a depend on each other in a cycle"
        );
        assert_eq!(err(vec![task("a", &["a"])]), "task \"a\" depends on itself");
        assert!(err(vec![task("a b", &[])]).starts_with("task \"a b\": an id may only use"));
        let mut t = task("a", &[]);
        t.agent = Some("copilot".into());
        assert_eq!(
            err(vec![t]),
            "task \"a\" asks for agent \"copilot\", which has no profile (known: claude, codex, gemini)"
        );
        assert_eq!(err(vec![]), "the plan has no tasks");
    }

    #[test]
    fn toml_and_json_plans_parse_and_errors_point_at_the_line() {
        let toml = "[[tasks]]\nid = \"a\"\nprompt = \"p\"\nrole = \"design\"\n\n[[tasks]]\nid = \"b\"\nprompt = \"q\"\nagent = \"codex\"\ndepends_on = [\"a\"]\n";
        let tasks = parse_plan_file(Path::new("plan.toml"), toml).unwrap();
        assert_eq!(
            (tasks[1].depends_on.clone(), tasks[0].role),
            (vec!["a".to_string()], Some(Role::Design))
        );
        let json = r#"{"tasks":[{"id":"a","prompt":"p","agent":"gemini"}]}"#;
        assert_eq!(
            parse_plan_file(Path::new("plan.json"), json).unwrap()[0]
                .agent
                .as_deref(),
            Some("gemini")
        );
        let err = parse_plan_file(
            Path::new("plan.toml"),
            "[[tasks]]\nid = \"a\"\npromt = \"p\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("plan.toml:3: unknown field `promt`"),
            "{err}"
        );
    }

    #[test]
    fn the_planners_answer_may_be_wrapped_in_prose() {
        let answer = "Here is the plan:\n```json\n{\"tasks\": [{\"id\": \"x\", \"prompt\": \"p\", \"role\": \"review\"}]}\n```";
        assert_eq!(
            parse_planner_answer(answer).unwrap()[0].role,
            Some(Role::Review)
        );
        assert!(parse_planner_answer("Done. I wrote notes/x.md").is_err());
    }

    #[test]
    fn a_task_without_agent_or_role_takes_the_role_its_prompt_routes_to() {
        let router = crate::meta::router::Router::new(&Default::default()).unwrap();
        let config = crate::meta::router::RouterConfig::default();
        let role_of = |prompt: &str| {
            config
                .targets
                .get(&router.route(prompt).target)
                .and_then(|t| t.role.clone())
        };
        let task = |id: &str, prompt: &str, role: Option<Role>| PlannedTask {
            id: id.into(),
            title: None,
            prompt: prompt.into(),
            agent: None,
            role,
            depends_on: vec![],
        };
        let tasks = route_roles(
            vec![
                task("a", "Write the architecture spec", None),
                task("b", "Implement the parser", None),
                task("c", "Implement it", Some(Role::Review)),
                task("d", "hello", None),
            ],
            role_of,
        );
        let roles: Vec<Option<Role>> = tasks.iter().map(|t| t.role).collect();
        assert_eq!(
            roles,
            [
                Some(Role::Design),
                Some(Role::Implement),
                Some(Role::Review),
                None
            ]
        );
    }

    #[test]
    fn roles_move_to_the_agents_that_are_present() {
        let only_claude = Availability::new(["claude", "codex", "gemini"], ["claude"]);
        let plan = validate(fallback_plan("goal"), &only_claude).unwrap();
        assert!(plan.tasks.iter().all(|t| t.agent == "claude"));
        assert_eq!(
            plan.tasks[0].reassigned.as_deref(),
            Some("gemini is not installed; claude takes the design role")
        );
        assert_eq!(plan.tasks[1].reassigned, None);
        let mut explicit = task("a", &[]);
        explicit.agent = Some("gemini".into());
        let plan = validate(vec![explicit], &only_claude).unwrap();
        assert_eq!(plan.tasks[0].agent, "claude");
        let none = Availability::new(["claude"], Vec::<&str>::new());
        assert_eq!(
            validate(fallback_plan("g"), &none).unwrap_err(),
            PlanError::NoAgent("design".into())
        );
    }
}
