//! The footer: the last reply or notice, then the keys that matter where the focus is.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::tui::app::{App, Focus, Overlay};
use crate::tui::theme::Role;
use crate::worker::WorkerState;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    if let Some(Overlay::Search(text)) = &app.overlay {
        let line = Line::from(vec![
            Span::styled("/", style(app, Role::key)),
            Span::styled(format!("{text}█"), style(app, Role::text)),
            Span::styled("   Enter search · Esc cancel", style(app, Role::dim)),
        ]);
        frame.render_widget(Paragraph::new(line), area);
        return;
    }
    let mut spans = Vec::new();
    if let Some((ok, message)) = &app.notice {
        let role = if *ok { Role::control } else { Role::error };
        spans.push(Span::styled(
            format!("{} {message}  ", if *ok { "✓" } else { "!" }),
            style(app, role),
        ));
    }
    let keys: &[(&str, &str)] = if app.zoom.is_some() {
        &[
            ("Esc", "back"),
            ("t", "transcript/screen"),
            ("a", "attach"),
            ("e/o", "open"),
            ("↑↓", "scroll"),
            ("p/r/s", "pause/resume/stop"),
            ("q", "quit"),
        ]
    } else {
        match app.focus {
            Focus::Workers if app.selected_approval().is_some() => &[
                ("y", "approve"),
                ("n", "deny"),
                ("q", "quit"),
                ("?", "help"),
                ("⏎", "zoom"),
                ("Tab", "panel"),
            ],
            Focus::Workers if app.selected_awaits_clarify() => &[
                ("c", "send the review's concerns"),
                ("r", "resume as is"),
                ("s", "stop"),
                ("q", "quit"),
                ("?", "help"),
                ("⏎", "zoom"),
                ("Tab", "panel"),
            ],
            Focus::Workers if !app.coordinator_alive && app.history.finished.is_none() => &[
                ("q", "quit"),
                ("?", "help"),
                ("R", "resume the session"),
                ("r", "run a failed task again"),
                ("e/o", "open"),
                ("Tab", "panel"),
            ],
            Focus::Workers
                if app.selected_worker().is_some_and(|w| {
                    matches!(w.state(), WorkerState::Failed | WorkerState::Stopped)
                }) =>
            {
                &[
                    ("q", "quit"),
                    ("?", "help"),
                    ("⏎", "zoom"),
                    ("r", "run again"),
                    ("P/R/S", "session"),
                    ("e/o", "open"),
                    ("Tab", "panel"),
                ]
            }
            Focus::Workers => &[
                ("q", "quit"),
                ("?", "help"),
                ("⏎", "zoom"),
                ("p/P", "pause"),
                ("r/R", "resume"),
                ("s/S", "stop"),
                ("v/V", "review"),
                ("e/o", "open"),
                ("Tab", "panel"),
            ],
            Focus::Log => &[
                ("q", "quit"),
                ("?", "help"),
                ("/", "search"),
                ("t", "type"),
                ("w", "worker"),
                ("↑↓", "scroll"),
                ("G", "follow"),
                ("Esc", "clear"),
                ("Tab", "panel"),
            ],
            Focus::Reviews => &[
                ("q", "quit"),
                ("?", "help"),
                ("⏎", "findings"),
                ("↑↓", "select"),
                ("P/R/S", "session"),
                ("Tab", "panel"),
            ],
            Focus::Decisions => &[
                ("q", "quit"),
                ("?", "help"),
                ("↑↓", "scroll"),
                ("P/R/S", "session"),
                ("Tab", "panel"),
            ],
        }
    };
    // Whole hints only: one that does not fit is left out, not cut in the middle.
    let mut used: usize = spans.iter().map(|s| s.width()).sum();
    for (key, what) in keys {
        let hint = format!(" {what}  ");
        let width = key.chars().count() + hint.chars().count();
        if used + width > area.width as usize + 2 {
            break;
        }
        used += width;
        spans.push(Span::styled(key.to_string(), style(app, Role::key)));
        spans.push(Span::styled(hint, style(app, Role::dim)));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
