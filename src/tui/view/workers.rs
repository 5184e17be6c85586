//! Worker panes: cards (state, progress, activity, last lines, tokens, cost, elapsed,
//! retries) when there is room, one line each when there is not. A waiting worker gets its
//! own colour and a thick border, so it stands out at a glance.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};

use super::clocks::{self, ClockSpot};
use super::{clock, panel, style, tokens, visible};
use crate::tui::app::{App, Focus, WorkerPane};
use crate::tui::theme::Role;
use crate::worker::WorkerState;

pub const CARD_HEIGHT: u16 = 7;
const CARD_MIN_WIDTH: u16 = 48;

/// Cards side by side at `width`.
pub fn cards_per_row(width: u16) -> usize {
    (width / CARD_MIN_WIDTH).clamp(1, 4) as usize
}

/// Rows of cards needed for `count` workers at `width`.
pub fn cards_height(count: usize, width: u16) -> u16 {
    let per_row = cards_per_row(width);
    let rows = count.max(1).div_ceil(per_row) as u16;
    rows * CARD_HEIGHT
}

pub fn state_role(state: WorkerState) -> Role {
    match state {
        WorkerState::Pending => Role::pending,
        WorkerState::Running => Role::running,
        WorkerState::Waiting => Role::waiting,
        WorkerState::Retrying => Role::warning,
        WorkerState::Paused => Role::paused,
        WorkerState::Done => Role::done,
        WorkerState::Failed => Role::failed,
        WorkerState::Stopped => Role::stopped,
        WorkerState::Interrupted => Role::failed,
    }
}

pub fn state_symbol(state: WorkerState) -> &'static str {
    match state {
        WorkerState::Pending => "·",
        WorkerState::Running => "▶",
        WorkerState::Waiting => "?",
        WorkerState::Retrying => "↻",
        WorkerState::Paused => "‖",
        WorkerState::Done => "✓",
        WorkerState::Failed => "✗",
        WorkerState::Stopped => "■",
        WorkerState::Interrupted => "!",
    }
}

pub fn draw_cards(frame: &mut Frame<'_>, area: Rect, app: &App, spots: &mut Vec<ClockSpot>) {
    if app.workers.is_empty() {
        let block = panel(app, " Workers ", app.focus == Focus::Workers);
        no_workers_yet(frame, area, app, block);
        return;
    }
    let per_row = cards_per_row(area.width);
    let rows = app.workers.chunks(per_row).enumerate();
    let row_areas = Layout::vertical(vec![
        Constraint::Length(CARD_HEIGHT);
        app.workers.len().div_ceil(per_row)
    ])
    .split(area);
    for (row, chunk) in rows {
        let Some(row_area) = row_areas.get(row) else {
            break;
        };
        let cells = Layout::horizontal(vec![Constraint::Ratio(1, per_row as u32); per_row])
            .split(*row_area);
        for (col, pane) in chunk.iter().enumerate() {
            let index = row * per_row + col;
            card(
                frame,
                cells[col],
                app,
                pane,
                index == app.selected && app.focus == Focus::Workers,
                spots,
            );
        }
    }
}

fn card(
    frame: &mut Frame<'_>,
    area: Rect,
    app: &App,
    pane: &WorkerPane,
    selected: bool,
    spots: &mut Vec<ClockSpot>,
) {
    let state = app.pane_state(pane);
    let role = state_role(state);
    let waiting = state == WorkerState::Waiting;
    let border_style = if selected {
        style(app, Role::border_focus)
    } else if waiting {
        style(app, Role::waiting)
    } else {
        style(app, Role::border)
    };
    // Selection is thick, waiting is double: each is visible without colour, and both at once.
    let border_type = if selected {
        BorderType::Thick
    } else if waiting {
        BorderType::Double
    } else {
        BorderType::Plain
    };
    // A reviewer works for no task of its own: say what it is instead.
    let task = match pane.task.as_deref() {
        Some(t) => format!(" · {t}"),
        None if pane.name.starts_with("review-") => " · reviewer".to_string(),
        None => String::new(),
    };
    let title = Line::from(vec![
        Span::styled(format!(" {} ", state_symbol(state)), style(app, role)),
        Span::styled(pane.name.clone(), style(app, Role::title)),
        Span::styled(format!(" · {}{task} ", pane.agent), style(app, Role::dim)),
    ]);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_type(border_type)
        .border_style(border_style)
        .title(title);
    let inner_width = area.width.saturating_sub(2) as usize;
    // The status line, first inside the border, counts from the worker's start while it runs.
    if let Some(started) = app.pane_started(pane).filter(|_| !state.is_finished()) {
        let inner = block.inner(area);
        let x = inner
            .x
            .saturating_add(Span::raw(state.to_string()).width() as u16 + 2);
        clocks::record(spots, inner, x, inner.y, started.millis());
    }
    let mut lines = vec![
        status_line(app, pane),
        progress_line(app, pane, inner_width),
    ];
    lines.push(Line::from(vec![
        Span::styled("› ", style(app, Role::dim)),
        Span::styled(
            if pane.current_activity().is_empty() {
                "—".to_string()
            } else {
                visible(pane.current_activity(), inner_width).to_string()
            },
            style(app, Role::text),
        ),
    ]));
    // The files it holds leases on, when any: another worker's write to them is refused.
    if let Some(held) = app.leases.get(&pane.name) {
        let paths: Vec<&str> = held.iter().map(String::as_str).collect();
        lines.push(Line::from(vec![
            Span::styled("leases ", style(app, Role::dim)),
            Span::styled(
                visible(&paths.join(", "), inner_width.saturating_sub(7)).to_string(),
                style(app, Role::text),
            ),
        ]));
    }
    // A taller card (the detail beside a long list) shows more of the last lines.
    let room = (area.height as usize).saturating_sub(2 + lines.len());
    for text in pane.lines.iter().rev().take(room).rev() {
        lines.push(Line::from(Span::styled(
            visible(text, inner_width).to_string(),
            style(app, Role::dim),
        )));
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn status_line<'a>(app: &App, pane: &WorkerPane) -> Line<'a> {
    let state = app.pane_state(pane);
    let end = if state.is_finished() {
        pane.last_event
    } else {
        app.now
    };
    let elapsed = app
        .pane_started(pane)
        .map_or(0, |s| end.millis() - s.millis());
    let mut spans = vec![
        Span::styled(state.to_string(), style(app, state_role(state))),
        Span::styled(format!("  {}", clock(elapsed)), style(app, Role::dim)),
    ];
    if pane.counted.status.retries() > 0 {
        spans.push(Span::styled(
            format!("  retry {}", pane.counted.status.retries()),
            style(app, Role::warning),
        ));
    }
    if let Some(exit) = pane
        .counted
        .status
        .exit
        .filter(|_| state == WorkerState::Failed)
    {
        let how = exit.code.map_or_else(
            || format!("signal {}", exit.signal.unwrap_or(0)),
            |c| format!("exit {c}"),
        );
        spans.push(Span::styled(format!("  {how}"), style(app, Role::failed)));
    }
    let mut usage = format!(
        "  {}/{} tok",
        tokens(pane.counted.usage.input_tokens),
        tokens(pane.counted.usage.output_tokens)
    );
    if pane.counted.usage.cost_usd > 0.0 {
        usage.push_str(&format!(" ${:.4}", pane.counted.usage.cost_usd));
    }
    if let Some((cpu, mem)) = app.usage.get(&pane.name).filter(|_| !state.is_finished()) {
        usage.push_str(&format!("  cpu {cpu:.0}% {mem}M"));
    }
    spans.push(Span::styled(usage, style(app, Role::dim)));
    Line::from(spans)
}

fn progress_line<'a>(app: &App, pane: &WorkerPane, width: usize) -> Line<'a> {
    let Some(percent) = pane
        .progress
        .or(if app.pane_state(pane) == WorkerState::Done {
            Some(100)
        } else {
            None
        })
    else {
        // Without a todo list, the work done so far says how far it got.
        let text = match (pane.counted.tool_calls, pane.counted.edits) {
            (0, _) => "progress —".to_string(),
            (calls, edits) => format!(
                "{calls} tool call{} · {edits} edit{}",
                if calls == 1 { "" } else { "s" },
                if edits == 1 { "" } else { "s" }
            ),
        };
        return Line::from(Span::styled(text, style(app, Role::dim)));
    };
    let bar_width = width.saturating_sub(6).clamp(4, 40);
    let filled = bar_width * percent as usize / 100;
    Line::from(vec![
        Span::styled("█".repeat(filled), style(app, Role::bar)),
        Span::styled("░".repeat(bar_width - filled), style(app, Role::bar_empty)),
        Span::styled(format!(" {percent:>3}%"), style(app, Role::text)),
    ])
}

/// The workers panel before the first worker starts.
fn no_workers_yet(frame: &mut Frame<'_>, area: Rect, app: &App, block: Block<'_>) {
    let text = Span::styled(
        "no workers yet: the session is planning",
        style(app, Role::dim),
    );
    frame.render_widget(Paragraph::new(text).block(block), area);
}

/// One line per worker: for small terminals.
/// The selected worker's card, beside the one-line list of many workers.
pub fn draw_detail(frame: &mut Frame<'_>, area: Rect, app: &App, spots: &mut Vec<ClockSpot>) {
    match app.workers.get(app.selected) {
        Some(pane) => card(frame, area, app, pane, app.focus == Focus::Workers, spots),
        None => no_workers_yet(frame, area, app, panel(app, " Worker ", false)),
    }
}

pub fn draw_list(frame: &mut Frame<'_>, area: Rect, app: &App) {
    // Which of how many, when they do not all fit.
    let visible = area.height.saturating_sub(2) as usize;
    let title = if app.workers.len() > visible {
        format!(" Workers {}/{} ", app.selected + 1, app.workers.len())
    } else {
        " Workers ".to_string()
    };
    let block = panel(app, title, app.focus == Focus::Workers);
    if app.workers.is_empty() {
        no_workers_yet(frame, area, app, block);
        return;
    }
    let first = app.selected.saturating_sub(visible.saturating_sub(1));
    let lines: Vec<Line> = app
        .workers
        .iter()
        .enumerate()
        .skip(first)
        .take(visible)
        .map(|(i, pane)| {
            let state = app.pane_state(pane);
            let selected = i == app.selected && app.focus == Focus::Workers;
            let name_style = if selected {
                style(app, Role::selected)
            } else {
                style(app, Role::title)
            };
            let progress = pane
                .progress
                .map_or("    ".to_string(), |p| format!("{p:>3}%"));
            Line::from(vec![
                Span::styled(
                    format!("{} ", state_symbol(state)),
                    style(app, state_role(state)),
                ),
                Span::styled(format!("{:<18}", pane.name), name_style),
                Span::styled(
                    format!(" {:<8}", state.to_string()),
                    style(app, state_role(state)),
                ),
                Span::styled(format!(" {progress} "), style(app, Role::text)),
                Span::styled(pane.current_activity().to_string(), style(app, Role::dim)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
