//! The sandbox (seeds 003 and 004): one policy for every agent, pure and unit-tested.
//! `shell` reads a command line as the shell will run it, `invocation` sees through wrappers
//! to the programs that run, `paths` resolves where a write lands, and `policy` decides:
//! allow, deny with a reason, or confirm with the operator.

pub mod invocation;
pub mod paths;
pub mod policy;
pub mod shell;
pub mod watch;

pub use policy::{Decision, SandboxConfig, SandboxMode, SandboxPolicy, ToolCall, Verdict};
