//! `orchestrate sim`: runs a simulated agent CLI in this process.

use crate::sim::{self, SimCli};

pub fn run(cli: SimCli, args: &[String]) -> u8 {
    // Exit codes of the real CLIs fit in a byte (0, 1, 2, 41..55, 130).
    sim::run(cli, args).clamp(0, 255) as u8
}
