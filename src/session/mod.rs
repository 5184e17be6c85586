//! Sessions on disk: the workspace layout, the SQLite index and the JSONL tailer that readers
//! use to follow a session.

pub mod append;
pub mod layout;
pub mod names;
pub mod store;
pub mod tailer;

pub use layout::{SessionDir, SessionInfo, Workspace};
pub use names::{BadName, check_name};
pub use store::Store;
pub use tailer::{TailEvent, TailSpec, Tailer};
