//! `orchestrate mcp`: the meta layer as an MCP server on stdio (rmcp), for agents.
//!
//! Tools, with the seed's schemas: `nexus_route`, `nexus_status`, `nexus_session`,
//! `nexus_lock`, plus `report_event`, through which an agent reports a finding, a milestone
//! or asks for a review (the adapters read the event from the call itself; the tool checks
//! and acknowledges it). A server started for a worker is bound to it (`Binding`): every
//! lock it takes or releases is held by that worker (`--holder`; an agent cannot act under
//! another name), and a resource is named in the worker's session (`--namespace`) and, as a
//! path, relative to its checkout (`--root`): `SESSION:src/lib.rs`, the same lease the
//! sandbox hook takes when that worker writes `./src/lib.rs` or its absolute path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::event::EventType;
use crate::meta::locks::{Lock, LockRefusal};
use crate::meta::sessions::{SessionUpdate, UserSession};
use crate::meta::{Meta, MetaError};

/// The server's name as workers configure it: `orch` (see `agents::ORCH_MCP_SERVER`).
pub const SERVER_NAME: &str = crate::agents::ORCH_MCP_SERVER;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RouteInput {
    /// The request, in words.
    pub request: String,
    /// Anything that helps route it; kept in the session's history.
    #[serde(default)]
    pub context: Option<Map<String, Value>>,
    /// A user session whose history records the request.
    #[serde(default)]
    pub session_id: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct RouteOutput {
    pub target: String,
    pub action: String,
    pub confidence: f64,
    pub reasoning: String,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StatusInput {}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct StatusOutput {
    /// Per service: healthy, kind (target or agent_cli), endpoint, version, error.
    pub services: Map<String, Value>,
    pub all_healthy: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum SessionAction {
    Create,
    Get,
    Update,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SessionInput {
    pub action: SessionAction,
    /// Required for get and update.
    #[serde(default)]
    pub session_id: Option<String>,
    /// create: {user_id}; update: {context?, current_project?, current_task?}.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
}

/// The seed's Session.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct SessionOutput {
    pub id: String,
    pub user_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub context: Map<String, Value>,
    pub current_project: Option<String>,
    pub current_task: Option<String>,
    /// The last 100 routed requests, oldest first.
    pub history: Vec<Value>,
}

impl From<UserSession> for SessionOutput {
    fn from(s: UserSession) -> Self {
        SessionOutput {
            id: s.id,
            user_id: s.user_id,
            created_at: s.created_at.to_string(),
            updated_at: s.updated_at.to_string(),
            context: s.context,
            current_project: s.current_project,
            current_task: s.current_task,
            history: s.history,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
#[serde(rename_all = "lowercase")]
pub enum LockAction {
    Acquire,
    Release,
    Check,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct LockInput {
    pub action: LockAction,
    /// What to lock: a path, or any name agreed between agents.
    pub resource: String,
    /// Who holds it; defaults to this worker (a worker's server acts for it alone).
    #[serde(default)]
    pub holder: Option<String>,
    /// Lease in seconds (acquire); defaults to LOCK_DEFAULT_TTL.
    #[serde(default)]
    pub ttl: Option<f64>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct LockOutput {
    pub success: bool,
    /// The lease: granted, extended, released, or the one found by check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockView>,
    /// check: whether the resource is locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Who holds it, when refused or checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct LockView {
    pub resource: String,
    pub holder: String,
    pub acquired_at: String,
    pub expires_at: String,
    /// Fencing token: grows with every grant of this resource.
    pub token: u64,
}

impl From<Lock> for LockView {
    fn from(l: Lock) -> Self {
        LockView {
            resource: l.resource,
            holder: l.holder,
            acquired_at: l.acquired_at.to_string(),
            expires_at: l.expires_at.to_string(),
            token: l.token,
        }
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[schemars(crate = "rmcp::schemars")]
pub struct ReportInput {
    /// finding, milestone, review, blocker, task, status or progress.
    #[serde(rename = "type")]
    pub kind: String,
    /// One line saying what happened (or give it in payload.text / payload.summary).
    #[serde(default)]
    pub summary: Option<String>,
    /// Anything else worth keeping with the event.
    #[serde(default)]
    pub payload: Option<Map<String, Value>>,
}

/// Whom a server acts for.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    /// The worker every lock is held by (`--holder`). Without it, the operator's server
    /// holds locks as `operator:$USER` unless a call names another holder.
    pub holder: Option<String>,
    /// The session every resource is named in (`--namespace`).
    pub namespace: Option<String>,
    /// The worker's checkout (`--root`): a resource is a path there, named as its lease is.
    pub root: Option<PathBuf>,
}

#[derive(Clone)]
pub struct OrchServer {
    meta: Arc<Meta>,
    binding: Binding,
    /// The holder when a call names none.
    holder: String,
    tool_router: rmcp::handler::server::router::tool::ToolRouter<Self>,
}

fn refusal_output(refusal: LockRefusal) -> LockOutput {
    let holder = match &refusal {
        LockRefusal::HeldByOther { holder, .. } => Some(holder.clone()),
        LockRefusal::NotHolder { held_by, .. } => held_by.clone(),
    };
    LockOutput {
        success: false,
        lock: None,
        locked: None,
        holder,
        error: Some(refusal.to_string()),
    }
}

fn said(e: MetaError) -> String {
    e.to_string()
}

#[tool_router]
impl OrchServer {
    pub fn new(meta: Meta, binding: Binding) -> OrchServer {
        let holder = binding
            .holder
            .clone()
            .unwrap_or_else(crate::cli::meta::default_holder);
        OrchServer {
            meta: Arc::new(meta),
            binding,
            holder,
            tool_router: Self::tool_router(),
        }
    }

    /// The stored name of what an agent calls `resource`: in a worker's checkout, where the
    /// path lands (`./a`, `/abs/checkout/a` and `a` are one lock); in its session's namespace.
    fn resource(&self, resource: &str) -> String {
        let named = match &self.binding.root {
            Some(root) if !resource.is_empty() => {
                let named = crate::safety::paths::lease_name(Path::new(resource), root, root);
                if named.is_empty() {
                    resource.to_string()
                } else {
                    named
                }
            }
            _ => resource.to_string(),
        };
        match &self.binding.namespace {
            Some(ns) => crate::meta::locks::namespaced(ns, &named),
            None => named,
        }
    }

    /// Who a lock call acts for: a bound server's worker, whatever the call says.
    fn lock_holder(&self, asked: Option<String>) -> Result<String, String> {
        match (&self.binding.holder, asked) {
            (Some(bound), Some(asked)) if asked != *bound => Err(format!(
                "this server acts for {bound} alone: it cannot take or release locks as {asked}"
            )),
            (_, Some(asked)) => Ok(asked),
            (_, None) => Ok(self.holder.clone()),
        }
    }

    /// A lease as the agent named it.
    fn view(&self, mut lock: Lock) -> LockView {
        if let Some(ns) = &self.binding.namespace
            && let Some(own) = lock.resource.strip_prefix(&format!("{ns}:"))
        {
            lock.resource = own.to_string();
        }
        lock.into()
    }

    #[tool(
        name = "nexus_route",
        description = "Route a request to the orchestrator best placed to handle it (bmad: plans and specs; archon: search and knowledge; bolt: code, git, running things). Below 0.5 confidence the answer is meta/clarify."
    )]
    async fn route(
        &self,
        Parameters(input): Parameters<RouteInput>,
    ) -> Result<Json<RouteOutput>, String> {
        let context = input.context.map(Value::Object);
        let r = self
            .meta
            .route(
                &input.request,
                input.session_id.as_deref(),
                context.as_ref(),
            )
            .map_err(said)?;
        Ok(Json(RouteOutput {
            target: r.target,
            action: r.action,
            confidence: r.confidence,
            reasoning: r.reasoning,
        }))
    }

    #[tool(
        name = "nexus_status",
        description = "Health of the ecosystem: each configured orchestrator's /health and each agent CLI."
    )]
    async fn status(
        &self,
        Parameters(_): Parameters<StatusInput>,
    ) -> Result<Json<StatusOutput>, String> {
        let meta = self.meta.clone();
        let health = tokio::task::spawn_blocking(move || {
            let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
            crate::meta::health(meta.config(), &cwd)
        })
        .await
        .map_err(|e| e.to_string())?;
        let services = match serde_json::to_value(&health.services) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        Ok(Json(StatusOutput {
            services,
            all_healthy: health.all_healthy,
        }))
    }

    #[tool(
        name = "nexus_session",
        description = "Manage user sessions: create {data: {user_id}}, get {session_id}, update {session_id, data: {context?, current_project?, current_task?}}."
    )]
    async fn session(
        &self,
        Parameters(input): Parameters<SessionInput>,
    ) -> Result<Json<SessionOutput>, String> {
        let data = input.data.unwrap_or_default();
        let id = || {
            input
                .session_id
                .clone()
                .ok_or_else(|| "session_id is required for get and update".to_string())
        };
        let session = match input.action {
            SessionAction::Create => {
                let user = data
                    .get("user_id")
                    .and_then(Value::as_str)
                    .unwrap_or(&self.holder)
                    .to_string();
                self.meta.create_session(&user).map_err(said)?
            }
            SessionAction::Get => self.meta.get_session(&id()?).map_err(said)?,
            SessionAction::Update => {
                let update: SessionUpdate = serde_json::from_value(Value::Object(data))
                    .map_err(|e| format!("data: {e}"))?;
                self.meta.update_session(&id()?, &update).map_err(said)?
            }
        };
        Ok(Json(session.into()))
    }

    #[tool(
        name = "nexus_lock",
        description = "Single-writer locks with a lease: acquire (or extend your own), release (holder only), check. Take the lock on a file before writing it; a lock held by another agent is refused with its holder."
    )]
    async fn lock(
        &self,
        Parameters(input): Parameters<LockInput>,
    ) -> Result<Json<LockOutput>, String> {
        let holder = self.lock_holder(input.holder)?;
        let resource = self.resource(&input.resource);
        let granted = |lock: Lock| LockOutput {
            success: true,
            lock: Some(self.view(lock)),
            locked: None,
            holder: None,
            error: None,
        };
        let output = match input.action {
            LockAction::Acquire => {
                let ttl = match input.ttl {
                    Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 30.0 * 86_400.0 => {
                        Some(std::time::Duration::from_secs_f64(secs))
                    }
                    Some(secs) => {
                        return Err(format!("ttl {secs} is not a number of seconds above 0"));
                    }
                    None => None,
                };
                match self.meta.acquire(&resource, &holder, ttl).map_err(said)? {
                    Ok(lock) => granted(lock),
                    Err(refusal) => refusal_output(refusal),
                }
            }
            LockAction::Release => match self.meta.release(&resource, &holder).map_err(said)? {
                Ok(lock) => granted(lock),
                Err(refusal) => refusal_output(refusal),
            },
            LockAction::Check => {
                let state = self.meta.check(&resource).map_err(said)?;
                LockOutput {
                    success: true,
                    locked: Some(state.locked),
                    holder: state.holder,
                    lock: state.lock.map(|l| self.view(l)),
                    error: None,
                }
            }
        };
        Ok(Json(output))
    }

    #[tool(
        name = "report_event",
        description = "Report a semantic event to the orchestrator: a finding, a milestone, a blocker, or a review request. It appears in the operator's dashboard and journal."
    )]
    async fn report_event(
        &self,
        Parameters(input): Parameters<ReportInput>,
    ) -> Result<String, String> {
        let kind: EventType = input
            .kind
            .parse()
            .map_err(|_| format!("unknown event type {:?}", input.kind))?;
        if !kind.is_worker_type() {
            return Err(format!("{} is not an event a worker reports", input.kind));
        }
        let text = input
            .summary
            .or_else(|| {
                let p = input.payload.as_ref()?;
                ["text", "summary", "title", "message"]
                    .iter()
                    .find_map(|k| p.get(*k).and_then(Value::as_str).map(str::to_string))
            })
            .unwrap_or_else(|| format!("{kind} reported"));
        Ok(json!({"recorded": true, "type": kind, "text": text}).to_string())
    }
}

#[tool_handler(router = self.tool_router, name = "orch", instructions = "orchestrate's meta layer: route requests, manage user sessions and locks (take nexus_lock on a file before writing it), and report events.")]
impl rmcp::ServerHandler for OrchServer {}

/// Serves on stdin/stdout until the client closes them.
pub fn serve(meta: Meta, binding: Binding) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let server = OrchServer::new(meta, binding)
            .serve(rmcp::transport::stdio())
            .await?;
        server.waiting().await?;
        anyhow::Ok(())
    })
}
