//! The `orchestrate` command line: parses arguments, then calls one function per subcommand
//! in `orchestrate::cli`. Errors are printed as one line; nothing here panics on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use orchestrate::cli;
use orchestrate::coordinator::control::ControlCommand;
use orchestrate::session::Workspace;
use orchestrate::sim::SimCli;

/// Most of what orchestrate does per event is many small allocations (parsed JSON, payload
/// maps); mimalloc makes them markedly cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A terminal meta-orchestrator for AI coding agents (Claude Code, Codex, Gemini CLI).
///
/// Give it a goal: it plans tasks, runs the agent CLIs as workers in their own terminals and
/// git worktrees, and journals everything under the workspace so sessions survive a closed
/// terminal and resume after a crash.
#[derive(Parser)]
#[command(name = "orchestrate", version, about, long_about)]
struct Cli {
    /// Where sessions live. Default: ORCHESTRATE_WORKSPACE (or ORCHESTRATOR_WORKSPACE), else
    /// the nearest ./workspace holding orchestrate.db here or in a parent directory, else
    /// ~/.local/share/orchestrate/workspace.
    #[arg(long, global = true, value_name = "DIR")]
    workspace: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a session: plan the goal into tasks and run them as workers, in the background.
    ///
    /// Exit codes with --no-dashboard: 0 every task succeeded, 1 a task failed, 3 the session
    /// was stopped, 4 the coordinator died (resume it), 5 nothing runs and a task waits for
    /// you (recovery held it; the session stays open for the fix).
    Run {
        /// What the agents should achieve; `-` reads it from standard input.
        #[arg(required_unless_present = "goal_file")]
        goal: Option<String>,
        /// Read the goal from FILE (for a long goal).
        #[arg(long, value_name = "FILE", conflicts_with = "goal")]
        goal_file: Option<PathBuf>,
        /// The repository to work on [default: the current directory].
        #[arg(long, value_name = "DIR")]
        target: Option<PathBuf>,
        /// Only these agent profiles, comma-separated (e.g. claude,codex).
        #[arg(long, value_delimiter = ',')]
        agents: Option<Vec<String>>,
        /// Tasks to run (TOML or JSON) instead of asking the planner agent.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Run every agent as `orchestrate sim <cli>`: no keys, no agent CLI needed.
        #[arg(long, conflicts_with = "stub_model")]
        simulate: bool,
        /// Run the real installed agent CLIs against a local stub model that plays a scenario
        /// (ORCHESTRATE_SIM_SCENARIO, default success): no key, no network. Each worker gets a
        /// fresh private home; your own CLI configuration is never read.
        #[arg(long)]
        stub_model: bool,
        /// Follow the session here, one line per significant event, until it ends, instead of
        /// opening the dashboard.
        #[arg(long)]
        no_dashboard: bool,
        /// Workers that may run at once (overrides the configuration).
        #[arg(long)]
        parallelism: Option<usize>,
        /// Relaunches of a failed task (overrides the configuration).
        #[arg(long)]
        retries: Option<u32>,
    },
    /// See the product work with simulated agents on a fresh temporary git repository.
    ///
    /// Runs a four-task plan with gemini, claude and codex (two workers at once), no keys and
    /// no agent CLI needed.
    Demo {
        /// Pacing of the simulated agents: 1 is human-like, 0 as fast as possible.
        #[arg(long, default_value_t = 0.5, value_parser = parse_speed)]
        speed: f64,
        /// Follow here, one line per event, instead of opening the dashboard.
        #[arg(long)]
        no_dashboard: bool,
    },
    /// The full-screen console on a running or finished session (default: the latest).
    ///
    /// Keys: p/P pause, r/R resume, s/S stop, v/V review (lower case: selected worker; upper
    /// case: whole session), Enter zoom, ? help, q leave (the session goes on).
    Dashboard {
        /// A session id, or `latest`.
        session: Option<String>,
        /// A theme: default, light, high-contrast, mono, or one of yours in
        /// ~/.config/orchestrate/themes/. NO_COLOR is respected.
        #[arg(long)]
        theme: Option<String>,
    },
    /// All sessions, or one session with its tasks and workers.
    Status {
        /// A session id, or `latest`.
        session: Option<String>,
        /// Machine-readable output, including the coordinator's pid and whether it is alive.
        #[arg(long)]
        json: bool,
        /// Redraw every --interval seconds; with a session, until it ends.
        #[arg(long, short, conflicts_with = "json")]
        watch: bool,
        /// Seconds between redraws with --watch.
        #[arg(long, default_value_t = 2.0, value_parser = parse_timeout, requires = "watch")]
        interval: f64,
    },
    /// Every session, one line each, with its age and state (`status` without a session).
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a session: its directory, its worktrees and branches in the target, its rows
    /// (and the demo's temporary repository, for a demo session).
    Rm {
        /// A session id, or `latest`.
        session: String,
    },
    /// Remove finished sessions older than --older-than (see `rm`).
    Prune {
        /// Age: 30m, 12h, 7d... [default: 7d].
        #[arg(long, default_value = "7d", value_parser = parse_age)]
        older_than: u64,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The change a finished session (or one of its tasks) made, as a diff against the
    /// target's current branch.
    Diff {
        /// A session id, or `latest`.
        session: String,
        /// Only this task's work.
        task: Option<String>,
    },
    /// Merge a finished session's result branch into the target's current branch; refused
    /// on uncommitted changes or conflicts, leaving the target as it was.
    Merge {
        /// A session id, or `latest`.
        session: String,
    },
    /// The configuration in effect, or the files it is read from.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// A shell completion script: `orchestrate completions bash > /etc/bash_completion.d/orchestrate`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page, in roff: `orchestrate man | man -l -`.
    Man,
    /// The sandbox policy: try it on a command before trusting it.
    Sandbox {
        #[command(subcommand)]
        command: SandboxCommand,
    },
    /// A worker's events as readable lines, or its raw terminal output; without a worker,
    /// every worker and the coordinator merged in time order.
    Logs {
        /// A session id, or `latest`.
        session: String,
        /// One worker (see `orchestrate status SESSION`); all of them when left out.
        worker: Option<String>,
        /// Keep printing as the session goes on, until its coordinator is gone.
        #[arg(long, short)]
        follow: bool,
        /// The exact bytes the worker's terminal produced.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// One AgentEvent JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Connect this terminal to a worker's terminal: see its output, type to it. Ctrl-]
    /// detaches and leaves the worker running.
    Attach {
        /// A session id, or `latest`.
        session: String,
        worker: String,
    },
    /// Send pause, resume, stop, review or restart to a running session (or one of its
    /// workers).
    Control {
        /// A session id, or `latest`.
        session: String,
        #[arg(value_enum)]
        action: ControlAction,
        /// Only this worker.
        #[arg(long)]
        worker: Option<String>,
        /// Seconds to wait for the coordinator's answer; a request it could not take in time
        /// is refused, never applied later.
        #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = parse_timeout)]
        timeout: f64,
        /// Print the reply as one JSON object {"ok", "message"}.
        #[arg(long)]
        json: bool,
    },
    /// Kill a session's workers at once (SIGKILL), or one worker.
    Kill {
        /// A session id, or `latest`.
        session: String,
        worker: Option<String>,
    },
    /// Restart the coordinator of an interrupted session; unfinished tasks run again,
    /// continuing each agent's conversation where its CLI allows.
    Resume {
        /// A session id, or `latest`.
        session: String,
        /// Also run this failed (or stopped) task again, with a fresh retry budget, and what
        /// it had held up; may be given more than once.
        #[arg(long, value_name = "TASK")]
        retry: Vec<String>,
        /// Follow the session here until it ends.
        #[arg(long)]
        no_dashboard: bool,
    },
    /// Work with agent event streams.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Stand in for an agent CLI (claude, codex or gemini), with no API key needed.
    ///
    /// Example: `orchestrate sim claude -p --output-format stream-json --verbose "prompt"`.
    /// Checks the arguments like the real CLI (refusing bad flags with its exact error text
    /// and exit code), then plays a scenario in the CLI's native wire format, doing real work
    /// in the current directory.
    ///
    /// Environment: ORCHESTRATE_SIM_SCENARIO = success (default), blocker, fail, chatty, hang
    /// or crash; ORCHESTRATE_SIM_SPEED = 1 (human-like pacing, default) down to 0 (instant).
    Sim {
        /// Which CLI to simulate.
        #[arg(value_enum)]
        cli: SimCli,
        /// The arguments the real CLI would get.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Which agent CLIs are installed, at which versions, with credentials or not, and the
    /// tier that follows; --live also runs one offline turn of each through orchestrate.
    ///
    /// Versions are compared with the ones orchestrate is tested against. Credentials are
    /// named (the variable or file), never printed. --live runs each installed CLI with its
    /// profile's argv in a PTY against the local stub model (no key, no network) and says pass
    /// or fail, with the reason. Exit 1 when no CLI is found or a live turn fails.
    Doctor {
        /// Also run one offline turn of each installed CLI against the stub model.
        #[arg(long)]
        live: bool,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// The story the live turn plays (see stub-model --help).
        #[arg(long, default_value = "success")]
        scenario: String,
        /// Only these CLIs (agent profile names), comma-separated.
        #[arg(long, value_delimiter = ',')]
        cli: Option<Vec<String>>,
        /// The live turn's autonomy instead of the profile's: read-only, edit or full.
        #[arg(long, hide = true)]
        autonomy: Option<String>,
        /// The live turn's prompt.
        #[arg(long, hide = true)]
        prompt: Option<String>,
        /// Keep each live turn's journal, raw terminal bytes and CLI home in DIR/<cli>/.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Seconds a live turn may take.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// A local model endpoint that plays a scenario, so the real agent CLIs run offline.
    ///
    /// Speaks the Anthropic Messages, OpenAI Responses and Gemini APIs on 127.0.0.1, streaming
    /// as the real services do. Point a CLI at it (see README, "Real CLIs offline"); a base URL
    /// ending in /s/SCENARIO/w/WORKER picks the story per worker. Prints the address on the
    /// first line, then logs one JSON line per request (never a credential).
    StubModel {
        /// Port on 127.0.0.1 [default: a free one].
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The story played when a request names none: success, slow, blocker, fail, chatty,
        /// hang, crash, flaky, commit, api-400, api-401, api-429, api-500, api-529,
        /// usage-limit, risky, push, approve, concern.
        #[arg(long, default_value = "success")]
        scenario: String,
        /// Append the request log to this file instead of standard error.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// Also write the port to this file once listening (for scripts).
        #[arg(long, value_name = "FILE")]
        port_file: Option<PathBuf>,
    },
    /// The session's reviews: each reviewer's verdict and findings, and the decision taken.
    Reviews {
        /// A session id, or `latest`.
        session: String,
        /// Machine-readable: the records of reviews/<id>.json.
        #[arg(long)]
        json: bool,
    },
    /// The meta layer: route a request to a target, user sessions, locks with leases,
    /// conflict resolution and health (seeds 000 and 001).
    ///
    /// State lives in the workspace's orchestrate.db, or in Redis with REDIS_URL or
    /// `[meta] store = "redis://..."`. Exit codes: 0 done, 1 refused (a lock held by another
    /// holder, a release by a non-holder, an unknown session, an unhealthy service), 2 an
    /// error (store unreachable, bad input).
    Meta {
        /// Machine-readable output: one JSON object.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: MetaCommand,
    },
    /// An MCP server on stdio offering the meta layer to agents: nexus_route, nexus_status,
    /// nexus_session, nexus_lock and report_event. Workers get it in their MCP configuration
    /// automatically, as server `orch`.
    Mcp {
        /// The worker this server acts for: every lock is held in its name, and a call naming
        /// another holder is refused. Without it, locks are held as operator:$USER unless a
        /// call names a holder.
        #[arg(long)]
        holder: Option<String>,
        /// Prefix every resource with `NAMESPACE:` (a worker's session, so its locks are the
        /// session's path leases).
        #[arg(long)]
        namespace: Option<String>,
        /// A worker's checkout: resources are paths there, named relative to it (`./a`, `a`
        /// and its absolute path are one lock).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Read the meta layer's settings from this file alone (the coordinator's, for its
        /// workers) instead of the user's and the project's orchestrate.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// What recovery recognised and did in a session: relaunches with their change, waits for
    /// a usage limit, escalations with the fix.
    Recoveries {
        /// A session id, or `latest`.
        session: String,
        /// Machine-readable: the recovery events, one JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// The approvals a session's agents wait for (a `confirm` of the sandbox).
    Approvals {
        /// A session id, or `latest`.
        session: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Let the command an agent waits on run.
    Approve {
        /// A session id, or `latest`.
        session: String,
        /// The approval's id (see `orchestrate approvals`).
        id: String,
    },
    /// Refuse the command an agent waits on; the agent is told the reason.
    Deny {
        /// A session id, or `latest`.
        session: String,
        /// The approval's id (see `orchestrate approvals`).
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// What an agent CLI runs before a tool (set up by orchestrate in each worker's CLI
    /// configuration): reads the CLI's hook JSON on stdin and answers from the sandbox.
    #[command(hide = true)]
    Hook {
        /// claude, codex or gemini: the shape of the answer.
        cli: String,
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        #[arg(long)]
        worker: String,
        /// Seconds to wait for a verdict (an approval waits for the operator).
        #[arg(long, default_value_t = 630.0, value_parser = parse_timeout)]
        timeout: f64,
        /// Say "allow" out loud (Claude in a mode that would otherwise ask).
        #[arg(long)]
        explicit_allow: bool,
    },
    /// The coordinator process itself (started detached by run and resume).
    #[command(hide = true)]
    Coordinator {
        session: String,
        #[arg(long)]
        resume: bool,
        #[arg(long)]
        retry: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ControlAction {
    Pause,
    Resume,
    Stop,
    Review,
    /// Run the failed task of --worker again.
    Restart,
    /// Send a review's concerns to the worker it paused: it continues with them.
    Clarify,
}

impl From<ControlAction> for ControlCommand {
    fn from(a: ControlAction) -> Self {
        match a {
            ControlAction::Pause => ControlCommand::Pause,
            ControlAction::Resume => ControlCommand::Resume,
            ControlAction::Stop => ControlCommand::Stop,
            ControlAction::Review => ControlCommand::Review,
            ControlAction::Restart => ControlCommand::Restart,
            ControlAction::Clarify => ControlCommand::Clarify,
        }
    }
}

#[derive(Subcommand)]
enum SandboxCommand {
    /// The verdict of the configured policy ([sandbox] of orchestrate.toml) on one shell
    /// command line, or on writing one file: allow, deny or confirm, with the reason.
    ///
    /// Example: `orchestrate sandbox check -- 'cargo build && rm -rf target'`. The current
    /// directory (or --cwd) is where the command runs and the writable directory, with the
    /// policy's extra_dirs. Exit 0 allow, 1 deny, 3 confirm.
    Check {
        /// Machine-readable: {"verdict": "allow"|"deny"|"confirm", "reason": ..., "findings": [...]}.
        #[arg(long)]
        json: bool,
        /// Read the policy from FILE instead of the user's and the project's orchestrate.toml.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Check a write of PATH (as a file tool would do) instead of a command.
        #[arg(long, value_name = "PATH", conflicts_with = "command")]
        write: Option<PathBuf>,
        /// Where the command runs [default: the current directory].
        #[arg(long, value_name = "DIR")]
        cwd: Option<PathBuf>,
        /// The command line, as one argument, as an agent passes it to its shell tool.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum MetaCommand {
    /// Which target a request goes to: {target, action, confidence, reasoning}.
    Route {
        /// The request, in words.
        text: String,
        /// A user session whose history records the request.
        #[arg(long, value_name = "ID")]
        session: Option<String>,
    },
    /// Acquire, release or check a lock on a resource.
    Lock {
        #[command(subcommand)]
        command: LockCommand,
    },
    /// The live locks, optionally only those on resources starting with a prefix (a
    /// session's path leases are `SESSION:path`).
    Locks {
        /// Only resources starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Who wins a conflict of TYPE among the contestants (the seeds' priority matrix; the
    /// security auditor always wins). The resolution is recorded.
    Resolve {
        /// file_creation, documentation, knowledge_update, task_status, code_validation,
        /// security, or any configured type.
        conflict_type: String,
        #[arg(required = true)]
        contestants: Vec<String>,
    },
    /// Create, read or update a user session (expires SESSION_TTL seconds after its last
    /// write).
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// Health: each router target with a URL (GET URL/health) and each agent CLI.
    Status,
}

#[derive(Subcommand)]
enum LockCommand {
    /// Take RESOURCE (or extend your own lease on it); refused while another holder has it.
    Acquire {
        resource: String,
        /// Who holds it [default: operator:$USER].
        #[arg(long)]
        holder: Option<String>,
        /// Lease in seconds [default: LOCK_DEFAULT_TTL, 300].
        #[arg(long, value_name = "SECS")]
        ttl: Option<f64>,
    },
    /// Free RESOURCE; only its holder may.
    Release {
        resource: String,
        /// Who holds it [default: operator:$USER].
        #[arg(long)]
        holder: Option<String>,
    },
    /// Whether RESOURCE is locked, and by whom.
    Check { resource: String },
}

#[derive(Subcommand)]
enum SessionCommand {
    /// A new session for USER; prints it (with its id).
    Create { user: String },
    /// The session with this id.
    Get { id: String },
    /// Change a session's project, task or context (merged key by key; null removes a key).
    Update {
        id: String,
        #[arg(long)]
        project: Option<String>,
        #[arg(long)]
        task: Option<String>,
        /// A JSON object, e.g. '{"branch": "main"}'.
        #[arg(long, value_name = "JSON")]
        context: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// The configuration in effect here (defaults, files, environment), as TOML.
    Show,
    /// The files read, lowest precedence first, and whether each exists.
    Path,
}

#[derive(Subcommand)]
enum EventsCommand {
    /// Print a CLI's native output as AgentEvent JSON lines.
    ///
    /// Lines that cannot be read are reported on stderr with their line number and kept as
    /// log lines; processing goes on. A summary line ends the stderr output.
    Normalize {
        /// The native format of the input.
        #[arg(long, value_enum)]
        format: cli::events::Format,
        /// The file to read; `-` or nothing reads standard input.
        file: Option<PathBuf>,
        /// Worker name stamped on the events.
        #[arg(long, default_value = "worker")]
        worker: String,
        /// Task id stamped on the events.
        #[arg(long)]
        task: Option<String>,
    },
}

/// `30s`, `45m`, `12h`, `7d` (or plain seconds) as seconds.
fn parse_age(text: &str) -> Result<u64, String> {
    let (digits, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!(
                "{text:?}: use a number with s, m, h, d or w (e.g. 7d)"
            ));
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?}: use a number with s, m, h, d or w (e.g. 7d)"))
}

fn parse_speed(text: &str) -> Result<f64, String> {
    let speed = text
        .parse::<f64>()
        .map_err(|_| format!("{text:?} is not a number"))?;
    orchestrate::config::check_speed(speed)
}

/// Seconds: a finite number above zero and at most a day.
fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => Ok(secs),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

fn parse_autonomy(text: &str) -> anyhow::Result<orchestrate::agents::Autonomy> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| anyhow::anyhow!("--autonomy: {text:?} is not read-only, edit or full"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Coordinator { .. }) {
        // A closed pipe (`orchestrate status | head`) ends a command quietly, as it ends
        // other Unix tools. The coordinator keeps Rust's default: a client that goes away
        // must not kill the daemon.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let workspace = Workspace::resolve(cli.workspace.as_deref(), |k| std::env::var(k).ok(), &cwd);
    let result = match cli.command {
        Command::Run {
            goal,
            goal_file,
            target,
            agents,
            plan,
            simulate,
            stub_model,
            no_dashboard,
            parallelism,
            retries,
        } => cli::run::read_goal(goal.as_deref(), goal_file.as_deref()).and_then(|goal| {
            cli::run::run(
                &workspace,
                cli::run::RunRequest {
                    goal,
                    target,
                    agents,
                    plan_file: plan,
                    simulate,
                    stub_model,
                    no_dashboard,
                    parallelism,
                    retries,
                    sim_speed: None,
                    review: false,
                },
            )
        }),
        Command::Demo {
            speed,
            no_dashboard,
        } => cli::demo::demo(&workspace, speed, no_dashboard),
        Command::Dashboard { session, theme } => {
            cli::dashboard::dashboard(&workspace, session.as_deref(), theme.as_deref())
        }
        Command::Status {
            session,
            json,
            watch: false,
            ..
        } => cli::status::status(&workspace, session.as_deref(), json),
        Command::Status {
            session, interval, ..
        } => cli::status::watch(
            &workspace,
            session.as_deref(),
            std::time::Duration::from_secs_f64(interval),
        ),
        Command::Ls { json } => cli::status::status(&workspace, None, json),
        Command::Rm { session } => cli::housekeeping::rm(&workspace, &session),
        Command::Prune {
            older_than,
            dry_run,
        } => cli::housekeeping::prune(&workspace, older_than, dry_run),
        Command::Diff { session, task } => cli::result::diff(&workspace, &session, task.as_deref()),
        Command::Merge { session } => cli::result::merge(&workspace, &session),
        Command::Config { command } => match command {
            ConfigCommand::Show => cli::config::show(),
            ConfigCommand::Path => cli::config::path(),
        },
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "orchestrate",
                &mut std::io::stdout(),
            );
            Ok(0)
        }
        Command::Reviews { session, json } => cli::reviews::reviews(&workspace, &session, json),
        Command::Meta { json, command } => {
            use cli::meta::{MetaRequest, default_holder};
            let request = match command {
                MetaCommand::Route { text, session } => MetaRequest::Route { text, session },
                MetaCommand::Lock { command } => match command {
                    LockCommand::Acquire {
                        resource,
                        holder,
                        ttl,
                    } => MetaRequest::Acquire {
                        resource,
                        holder: holder.unwrap_or_else(default_holder),
                        ttl_secs: ttl,
                    },
                    LockCommand::Release { resource, holder } => MetaRequest::Release {
                        resource,
                        holder: holder.unwrap_or_else(default_holder),
                    },
                    LockCommand::Check { resource } => MetaRequest::Check { resource },
                },
                MetaCommand::Locks { prefix } => MetaRequest::Locks { prefix },
                MetaCommand::Resolve {
                    conflict_type,
                    contestants,
                } => MetaRequest::Resolve {
                    conflict_type,
                    contestants,
                },
                MetaCommand::Session { command } => match command {
                    SessionCommand::Create { user } => MetaRequest::SessionCreate { user },
                    SessionCommand::Get { id } => MetaRequest::SessionGet { id },
                    SessionCommand::Update {
                        id,
                        project,
                        task,
                        context,
                    } => MetaRequest::SessionUpdate {
                        id,
                        project,
                        task,
                        context,
                    },
                },
                MetaCommand::Status => MetaRequest::Status,
            };
            cli::meta::meta(&workspace, request, json)
        }
        Command::Mcp {
            holder,
            namespace,
            root,
            config,
        } => cli::meta::mcp(
            &workspace,
            orchestrate::mcp::Binding {
                holder,
                namespace,
                root,
            },
            config.as_deref(),
        ),
        Command::Recoveries { session, json } => {
            cli::recoveries::recoveries(&workspace, &session, json)
        }
        Command::Approvals { session, json } => cli::approvals::list(&workspace, &session, json),
        Command::Approve { session, id } => {
            cli::approvals::answer(&workspace, &session, &id, true, None)
        }
        Command::Deny {
            session,
            id,
            reason,
        } => cli::approvals::answer(&workspace, &session, &id, false, reason),
        Command::Hook {
            cli,
            socket,
            worker,
            timeout,
            explicit_allow,
        } => match cli.parse::<orchestrate::agents::AgentKind>() {
            Ok(kind) => Ok(cli::hook::run(
                kind,
                &socket,
                &worker,
                std::time::Duration::from_secs_f64(timeout),
                explicit_allow,
            )),
            // Unknown CLI: still a refusal, never a silent allow.
            Err(_) => Ok(2),
        },
        Command::Sandbox {
            command:
                SandboxCommand::Check {
                    json,
                    config,
                    write,
                    cwd,
                    command,
                },
        } => {
            let line = (!command.is_empty()).then(|| command.join(" "));
            cli::sandbox::check(cli::sandbox::CheckRequest {
                command: line.as_deref(),
                write: write.as_deref(),
                config: config.as_deref(),
                cwd: cwd.as_deref(),
                json,
            })
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| 0)
            .map_err(anyhow::Error::from),
        Command::Logs {
            session,
            worker,
            follow,
            raw,
            json,
        } => cli::logs::logs(
            &workspace,
            cli::logs::LogsRequest {
                session: &session,
                worker: worker.as_deref(),
                follow,
                raw,
                json,
            },
        ),
        Command::Attach { session, worker } => cli::attach::attach(&workspace, &session, &worker),
        Command::Control {
            session,
            action,
            worker,
            timeout,
            json,
        } => cli::control::control(
            &workspace,
            &session,
            action.into(),
            cli::control::ControlOptions {
                worker: worker.as_deref(),
                timeout: std::time::Duration::from_secs_f64(timeout),
                json,
            },
        ),
        Command::Kill { session, worker } => cli::control::control(
            &workspace,
            &session,
            ControlCommand::Kill,
            cli::control::ControlOptions {
                worker: worker.as_deref(),
                timeout: orchestrate::coordinator::control::REPLY_TIMEOUT,
                json: false,
            },
        ),
        Command::Resume {
            session,
            retry,
            no_dashboard,
        } => cli::run::resume(&workspace, &session, &retry, no_dashboard),
        Command::Coordinator {
            session,
            resume,
            retry,
        } => cli::run::coordinator(&workspace, &session, resume, &retry),
        Command::Events {
            command:
                EventsCommand::Normalize {
                    format,
                    file,
                    worker,
                    task,
                },
        } => cli::events::normalize(format, file.as_deref(), &worker, task.as_deref()),
        Command::Sim { cli, args } => Ok(cli::sim::run(cli, &args)),
        Command::Doctor {
            live,
            json,
            scenario,
            cli,
            autonomy,
            prompt,
            keep,
            timeout,
        } => match autonomy.as_deref().map(parse_autonomy).transpose() {
            Ok(autonomy) => cli::doctor::doctor(cli::doctor::DoctorRequest {
                live,
                json,
                scenario,
                clis: cli,
                autonomy,
                prompt,
                keep,
                timeout_secs: timeout,
            }),
            Err(e) => Err(e),
        },
        Command::StubModel {
            port,
            scenario,
            log,
            port_file,
        } => cli::stub_model::serve(port, &scenario, log, port_file.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("orchestrate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
