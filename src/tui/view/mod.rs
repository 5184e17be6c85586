//! Drawing the dashboard: the layout and one file per panel. Reads the `App`, never changes
//! what it means (only fits the zoomed PTY screen to its area).

pub mod clocks;
mod footer;
mod header;
mod log;
mod overlays;
mod side;
mod workers;
mod zoom;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Borders};

use self::clocks::ClockSpot;
use super::app::{App, Overlay};
use super::theme::Role;

/// Below this the layout cannot say anything useful; a message says so instead.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

pub fn draw(frame: &mut Frame<'_>, app: &mut App) {
    let area = frame.area();
    app.clock_spots.clear();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        overlays::too_small(frame, area, app);
        return;
    }
    let mut spots = Vec::new();
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(frame, top, app, &mut spots);
    if let Some((worker, mode)) = app.zoom.clone() {
        zoom::draw(frame, body, app, &worker, mode);
    } else {
        draw_body(frame, body, app, &mut spots);
    }
    footer::draw(frame, bottom, app);
    match app.overlay.clone() {
        Some(Overlay::Help) => overlays::help(frame, area, app),
        Some(Overlay::Confirm { question, .. }) => overlays::confirm(frame, area, app, &question),
        Some(Overlay::Review(index)) => overlays::review(frame, area, app, index),
        // Counters under an overlay are left to full frames.
        Some(Overlay::Search(_)) | None => app.clock_spots = spots,
    }
}

fn draw_body(frame: &mut Frame<'_>, body: Rect, app: &mut App, spots: &mut Vec<ClockSpot>) {
    // Compact at small sizes: one line per worker instead of cards.
    let compact = body.height < 30 || body.width < 100;
    // Too many workers for their cards to show anything: one line each, and the selected
    // worker's card beside the list.
    let room = body.height * 3 / 5;
    let crowded = !compact && workers::cards_height(app.workers.len(), body.width) > room;
    let workers_height = if compact {
        (app.workers.len().max(1) as u16 + 2).min(body.height / 2)
    } else if crowded {
        (app.workers.len() as u16 + 2).clamp(workers::CARD_HEIGHT, room)
    } else {
        workers::cards_height(app.workers.len(), body.width).min(room)
    };
    let [workers_area, lower] =
        Layout::vertical([Constraint::Length(workers_height), Constraint::Min(0)]).areas(body);
    // Up and down move by a row of the grid as drawn.
    app.grid_columns = if compact || crowded {
        1
    } else {
        workers::cards_per_row(workers_area.width)
    };
    if compact {
        workers::draw_list(frame, workers_area, app);
    } else if crowded {
        let [list, detail] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)])
                .areas(workers_area);
        workers::draw_list(frame, list, app);
        workers::draw_detail(frame, detail, app, spots);
    } else {
        workers::draw_cards(frame, workers_area, app, spots);
    }
    // Reviews and decisions sit beside the log when there is room, else take its place
    // while focused.
    if lower.width >= 100 {
        let [log_area, side_area] =
            Layout::horizontal([Constraint::Percentage(62), Constraint::Percentage(38)])
                .areas(lower);
        log::draw(frame, log_area, app);
        side::draw(frame, side_area, app);
    } else if app.focus.is_side() {
        side::draw(frame, lower, app);
    } else {
        log::draw(frame, lower, app);
    }
}

/// A panel's block: thick and highlighted when focused, so focus shows without colour too.
fn panel<'a>(app: &App, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    let theme = &app.theme;
    let (border, kind) = if focused {
        (theme.style(Role::border_focus), BorderType::Thick)
    } else {
        (theme.style(Role::border), BorderType::Plain)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_type(kind)
        .border_style(border)
        .title(title.into())
}

fn style(app: &App, role: Role) -> Style {
    app.theme.style(role)
}

/// `HH:MM:SS` of a duration in milliseconds.
/// The start of `text` that can show in `width` cells: a line is cut at the panel's edge
/// anyway, and laying out the rest of a long one was most of an idle frame's work. Every
/// character takes at least one cell, so `width` characters always fill the room.
fn visible(text: &str, width: usize) -> &str {
    match text.char_indices().nth(width) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

fn clock(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// 12345 as `12.3k`.
fn tokens(n: u64) -> String {
    match n {
        0..=999 => n.to_string(),
        1_000..=999_999 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}
