//! orchestrate: a terminal meta-orchestrator for AI coding agents.
//!
//! Data flows one way: worker bytes -> adapter (`agents`) -> `AgentEvent` (`event`) ->
//! journal files (`session`) -> readers. See `shared/DESIGN.md` for the whole map.

pub mod agents;
pub mod cli;
pub mod config;
pub mod coordinator;
pub mod event;
pub mod mcp;
pub mod meta;
pub mod recovery;
pub mod review;
pub mod safety;
pub mod scenario;
pub mod session;
pub mod sim;
pub mod stub;
pub mod timestamp;
pub mod tui;
pub mod worker;
