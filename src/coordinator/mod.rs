//! The coordinator: the daemon that owns a session. It plans the goal into tasks, runs them
//! as workers, reacts to their events, obeys control commands, and keeps everything on disk
//! so that a crash loses nothing.

pub mod control;
pub mod daemon;
pub mod journal;
pub mod launch;
pub mod lock;
pub mod plan;
pub mod replay;
pub mod result;
pub mod run;
pub mod runs;
pub mod schedule;
pub mod tiers;
