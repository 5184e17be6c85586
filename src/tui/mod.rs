//! The dashboard: a full-screen console over a session, usable over SSH. `app` holds the
//! state and takes messages (pure), `view` draws it, `run` owns the terminal and the loop,
//! `theme` maps meanings to colours.

pub mod app;
pub mod run;
pub mod theme;
pub mod view;
