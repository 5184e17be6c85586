//! One file per subcommand. Each takes parsed arguments and returns the exit code; errors
//! carry context for a one-line message.

pub mod demo;
pub mod events;
pub mod sim;
