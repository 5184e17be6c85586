//! Where the running clocks are on screen, so a second that changes nothing but them redraws
//! their cells alone instead of the whole frame (an idle dashboard's main cost).
//!
//! A full draw records each visible `HH:MM:SS` counter that runs with the clock (the session's
//! elapsed time while it runs, each live worker's), and `Shown` keeps the cells it drew there.
//! A clock frame rewrites those cells with the new time in their own style. Before the next
//! full draw the recorded cells go back on screen, so the screen is again what ratatui last
//! drew and its diff stays exact.

use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;

use super::clock;
use crate::tui::app::App;

/// The width of `HH:MM:SS`: a counter that grows past it (100 hours) needs a full frame.
const CLOCK_CELLS: u16 = 8;

/// A counter on screen: its first cell, and the time it counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockSpot {
    pub x: u16,
    pub y: u16,
    pub since_ms: i64,
}

/// Records a counter drawn at (`x`, `y`) counting from `since_ms`, when all of it shows in
/// `area` (a counter cut at the edge is left to full frames).
pub fn record(spots: &mut Vec<ClockSpot>, area: Rect, x: u16, y: u16, since_ms: i64) {
    if y >= area.y && y < area.bottom() && x >= area.x && x + CLOCK_CELLS <= area.right() {
        spots.push(ClockSpot { x, y, since_ms });
    }
}

/// The cells under the counters of the last full frame, as drawn.
#[derive(Debug, Default)]
pub struct Shown {
    /// The frame's size: another size needs a full frame.
    area: Rect,
    drawn: Vec<(ClockSpot, Vec<Cell>)>,
    /// Whether a clock frame wrote over them since.
    overwritten: bool,
}

impl Shown {
    /// Keeps what the full frame `buffer` shows under `spots`.
    pub fn remember(&mut self, spots: &[ClockSpot], buffer: &Buffer) {
        self.area = buffer.area;
        self.overwritten = false;
        self.drawn = spots
            .iter()
            .filter_map(|spot| {
                let cells: Option<Vec<Cell>> = (0..CLOCK_CELLS)
                    .map(|dx| buffer.cell((spot.x + dx, spot.y)).cloned())
                    .collect();
                Some((*spot, cells?))
            })
            .collect();
    }

    /// The counters' cells at `now_ms`, in their own style; `None` when one no longer fits
    /// (a full frame is needed).
    pub fn clock_cells(&self, now_ms: i64) -> Option<Vec<(u16, u16, Cell)>> {
        let mut cells = Vec::with_capacity(self.drawn.len() * CLOCK_CELLS as usize);
        for (spot, drawn) in &self.drawn {
            let text = clock(now_ms - spot.since_ms);
            if text.len() != CLOCK_CELLS as usize {
                return None;
            }
            for ((dx, ch), drawn) in text.chars().enumerate().zip(drawn) {
                let mut cell = drawn.clone();
                cell.set_char(ch);
                cells.push((spot.x + dx as u16, spot.y, cell));
            }
        }
        Some(cells)
    }

    /// Draws the counters alone at the app's time. False when a full frame is needed instead.
    pub fn draw_clocks<B: Backend>(
        &mut self,
        terminal: &mut Terminal<B>,
        app: &App,
    ) -> Result<bool, B::Error> {
        if self.drawn.is_empty() || terminal.size()? != self.area.as_size() {
            return Ok(false);
        }
        let Some(cells) = self.clock_cells(app.now.millis()) else {
            return Ok(false);
        };
        let backend = terminal.backend_mut();
        backend.draw(cells.iter().map(|(x, y, c)| (*x, *y, c)))?;
        backend.flush()?;
        self.overwritten = true;
        Ok(true)
    }

    /// Before a full frame: the counters' cells as ratatui last drew them, so its diff
    /// against that frame is the truth about the screen. At another size ratatui clears the screen itself, and nothing is put back.
    pub fn restore<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<(), B::Error> {
        if self.overwritten && terminal.size()? == self.area.as_size() {
            let drawn = self.drawn.iter().flat_map(|(spot, cells)| {
                cells
                    .iter()
                    .enumerate()
                    .map(move |(dx, c)| (spot.x + dx as u16, spot.y, c))
            });
            terminal.backend_mut().draw(drawn)?;
        }
        self.overwritten = false;
        Ok(())
    }

    /// The screen was cleared (after the dashboard was suspended): nothing to put back, and
    /// no clock frame until the next full one.
    pub fn forget(&mut self) {
        *self = Shown::default();
    }
}
