//! The event log: every worker's and the coordinator's events merged in time order, filtered
//! by type and worker, searchable, scrollable; it follows the end unless scrolled back.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{panel, style, visible};
use crate::event::EventType;
use crate::tui::app::{App, Focus};
use crate::tui::theme::Role;

pub fn type_role(kind: EventType) -> Role {
    match kind {
        EventType::Status => Role::dim,
        EventType::Progress => Role::text,
        EventType::Finding => Role::finding,
        EventType::Task => Role::running,
        EventType::Blocker => Role::waiting,
        EventType::Milestone => Role::done,
        EventType::Review => Role::review,
        EventType::Error => Role::error,
        EventType::Decision => Role::decision,
        EventType::Recovery => Role::warning,
        EventType::Control => Role::control,
    }
}

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let height = area.height.saturating_sub(2) as usize;
    let mut title = " Events".to_string();
    if let Some(t) = app.log_type {
        title.push_str(&format!(" · type {t}"));
    }
    if let Some(w) = &app.log_worker {
        title.push_str(&format!(" · worker {w}"));
    }
    if let Some(s) = &app.search {
        title.push_str(&format!(" · /{s}"));
    }
    // Walk back from the end: only what can be shown is looked at, however long the history.
    let mut shown: Vec<_> = app
        .log
        .iter()
        .rev()
        .filter(|e| app.shows(e))
        .take(height + app.log_scroll)
        .collect();
    let scroll = app.log_scroll.min(shown.len().saturating_sub(height));
    if scroll > 0 {
        title.push_str(&format!(" · {scroll} newer below"));
    } else {
        title.push_str(" · following");
    }
    title.push(' ');
    shown.reverse();
    let end = shown.len() - scroll;
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = shown[start..end]
        .iter()
        .map(|e| {
            let c = e.time.civil();
            let who = e
                .task
                .as_deref()
                .filter(|_| &*e.worker == crate::coordinator::journal::COORDINATOR)
                .map_or_else(|| e.worker.to_string(), |t| format!("» {t}"));
            let mut text_style = style(app, type_role(e.kind));
            if app.search.as_deref().is_some_and(|s| !s.is_empty()) {
                text_style = text_style.patch(style(app, Role::search_match));
            }
            Line::from(vec![
                Span::styled(
                    format!("{:02}:{:02}:{:02} ", c.hour, c.minute, c.second),
                    style(app, Role::dim),
                ),
                Span::styled(format!("{who:<18.18} "), style(app, Role::title)),
                Span::styled(format!("{:<9} ", e.kind), style(app, type_role(e.kind))),
                Span::styled(
                    visible(&e.text, area.width as usize).to_string(),
                    if e.kind == EventType::Progress {
                        style(app, Role::text)
                    } else {
                        text_style
                    },
                ),
            ])
        })
        .collect();
    let body: Vec<Line> = if lines.is_empty() {
        vec![Line::from(Span::styled(
            if app.log.is_empty() {
                "no events yet"
            } else {
                "nothing matches the filter (Esc clears it)"
            },
            style(app, Role::dim),
        ))]
    } else {
        lines
    };
    frame.render_widget(
        Paragraph::new(body).block(panel(app, title, app.focus == Focus::Log)),
        area,
    );
}
