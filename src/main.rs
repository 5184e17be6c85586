//! The `orchestrate` command line: parses arguments, then calls one function per subcommand
//! in `orchestrate::cli`. Errors are printed as one line; nothing here panics on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use orchestrate::cli;
use orchestrate::session::Workspace;
use orchestrate::sim::SimCli;

/// A terminal meta-orchestrator for AI coding agents (Claude Code, Codex, Gemini CLI).
#[derive(Parser)]
#[command(name = "orchestrate", version, about, long_about = None)]
struct Cli {
    /// Where sessions live [default: ./workspace].
    #[arg(
        long,
        global = true,
        env = "ORCHESTRATOR_WORKSPACE",
        value_name = "DIR"
    )]
    workspace: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch three simulated agents (gemini, claude, codex) work in parallel; no keys needed.
    ///
    /// Creates a session in the workspace, runs one worker per agent CLI in its own PTY and
    /// run directory, and prints every event from their journals as it lands.
    Demo {
        /// Pacing of the simulated agents: 1 is human-like, 0 as fast as possible.
        #[arg(long, default_value_t = 0.5)]
        speed: f64,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workspace = Workspace::resolve(cli.workspace.as_deref(), None);
    let result = match cli.command {
        Command::Demo { speed } => cli::demo::run(&workspace, speed),
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
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("orchestrate: {err:#}");
            ExitCode::FAILURE
        }
    }
}
