//! One file per subcommand. Each takes parsed arguments and returns the exit code; errors
//! carry context for a one-line message.

pub mod approvals;
pub mod attach;
pub mod config;
pub mod control;
pub mod dashboard;
pub mod demo;
pub mod doctor;
pub mod events;
pub mod follow;
pub mod hook;
pub mod housekeeping;
pub mod live_turn;
pub mod logs;
pub mod lookup;
pub mod meta;
pub mod recoveries;
pub mod result;
pub mod reviews;
pub mod run;
pub mod sandbox;
pub mod sim;
pub mod status;
pub mod stub_model;
