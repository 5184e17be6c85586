//! Workers: agent CLIs running in PTYs, their signals and exit, and the state derived from
//! their events.

pub mod state;
