//! What is drawn over the rest: the help (every key), the stop confirmation, and the message
//! for a terminal too small to lay anything out.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{MIN_HEIGHT, MIN_WIDTH, panel, style};
use crate::tui::app::App;
use crate::tui::theme::Role;

const HELP: &[(&str, &str)] = &[
    (
        "",
        "Workers (lower case: selected worker; upper case: whole session)",
    ),
    (
        "p / P",
        "pause: SIGSTOP to every process; no new task starts",
    ),
    ("r / R", "resume"),
    ("r", "on a failed or stopped task: run it again"),
    ("R", "with the coordinator gone: resume the session"),
    (
        "s / S",
        "stop: SIGTERM, SIGKILL after the grace period (asks first)",
    ),
    ("v / V", "request a review"),
    ("c", "paused by a review: send it the reviewers' concerns"),
    ("e / o", "the worker's directory in $EDITOR / a shell"),
    ("y / n", "approve / deny what the selected worker waits for"),
    ("Enter", "zoom the selected worker: its transcript"),
    ("t", "(zoomed) toggle transcript / live terminal screen"),
    (
        "a",
        "(zoomed) attach: type to the worker; Ctrl-] comes back",
    ),
    ("←↓↑→ hjkl", "move in the grid as drawn; PgUp/PgDn page"),
    ("", "Event log"),
    ("/", "search"),
    ("t", "show one event type at a time (cycles)"),
    ("w", "only the selected worker's events (toggles)"),
    ("g / G", "oldest / follow the newest"),
    ("Esc", "clear search and filters; leave zoom"),
    ("", "Reviews"),
    (
        "Enter",
        "the verdict in full: summary and findings (↑↓ older/newer)",
    ),
    ("", "Anywhere"),
    ("Tab", "next panel: workers, events, reviews, decisions"),
    ("?", "this help"),
    ("q", "leave the dashboard; the session goes on"),
];

pub fn help(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let rect = centered(area, 80, HELP.len() as u16 + 2);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(key, what)| {
            if key.is_empty() {
                Line::from(Span::styled(*what, style(app, Role::title)))
            } else {
                Line::from(vec![
                    Span::styled(format!("  {key:<12}"), style(app, Role::key)),
                    Span::styled(*what, style(app, Role::text)),
                ])
            }
        })
        .collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines).block(panel(app, " Keys (Esc closes) ", true)),
        rect,
    );
}

/// One verdict in full: who reviewed whose work, the summary, each finding.
pub fn review(frame: &mut Frame<'_>, area: Rect, app: &App, index: usize) {
    let Some(r) = app.reviews.get(index) else {
        return;
    };
    let role = match r.verdict.as_str() {
        "approved" => Role::done,
        "concern" => Role::warning,
        _ => Role::failed,
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", r.verdict), style(app, role)),
            Span::styled(format!("from {} ", r.reviewer), style(app, Role::title)),
            Span::styled(format!("on {}'s work", r.worker), style(app, Role::dim)),
        ]),
        Line::default(),
        Line::from(Span::styled(r.summary.clone(), style(app, Role::text))),
        Line::default(),
    ];
    if r.findings.is_empty() {
        lines.push(Line::from(Span::styled(
            "no findings",
            style(app, Role::dim),
        )));
    }
    for finding in &r.findings {
        let (severity, rest) = finding.split_once(' ').unwrap_or((finding, ""));
        lines.push(Line::from(vec![
            Span::styled(format!("• {severity} "), style(app, Role::warning)),
            Span::styled(rest.to_string(), style(app, Role::text)),
        ]));
    }
    let rect = centered(area, 90, lines.len() as u16 + 2);
    let title = format!(
        " Review {} ({} of {}) · Esc closes ",
        r.review,
        index + 1,
        app.reviews.len()
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(panel(app, title, true)),
        rect,
    );
}

pub fn confirm(frame: &mut Frame<'_>, area: Rect, app: &App, question: &str) {
    let rect = centered(area, 56, 5);
    let lines = vec![
        Line::from(Span::styled(question.to_string(), style(app, Role::text))),
        Line::from(vec![
            Span::styled("y", style(app, Role::key)),
            Span::styled(" stop   ", style(app, Role::dim)),
            Span::styled("n", style(app, Role::key)),
            Span::styled(" cancel", style(app, Role::dim)),
        ]),
    ];
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(panel(app, " Stop? ", true)),
        rect,
    );
}

pub fn too_small(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let text = format!(
        "terminal too small: {}x{} (needs {MIN_WIDTH}x{MIN_HEIGHT}); the session goes on; q quits",
        area.width, area.height
    );
    frame.render_widget(
        Paragraph::new(Span::styled(text, style(app, Role::warning))).wrap(Wrap { trim: true }),
        area,
    );
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    rect
}
