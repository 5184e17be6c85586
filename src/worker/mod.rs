//! Workers: agent CLIs running in PTYs, their process groups and exit, and the state derived
//! from their events.

pub mod limits;
pub mod process;
mod run;
pub mod spawn;
pub mod state;
pub mod summary;

pub use run::{Observer, Worker, WorkerError, WorkerSpec, channel_observer};
pub use state::{ExitFacts, WorkerState, WorkerStatus, derive_state};
pub use summary::WorkerSummary;
