//! Review verdicts and the decision panel, from the coordinator's journal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{panel, style};
use crate::tui::app::{App, Focus};
use crate::tui::theme::Role;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let [reviews_area, decisions_area] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);

    let reviews: Vec<Line> = if app.reviews.is_empty() {
        vec![Line::from(Span::styled(
            "no reviews yet",
            style(app, Role::dim),
        ))]
    } else {
        app.reviews
            .iter()
            .rev()
            .map(|r| {
                let role = match r.verdict.as_str() {
                    "approved" => Role::done,
                    "concern" => Role::warning,
                    _ => Role::failed,
                };
                Line::from(vec![
                    Span::styled(format!("{:<9}", r.verdict), style(app, role)),
                    Span::styled(format!("{:<10} ", r.reviewer), style(app, Role::title)),
                    Span::styled(r.summary.clone(), style(app, Role::text)),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(reviews)
            .wrap(Wrap { trim: true })
            .scroll((app.reviews_scroll as u16, 0))
            .block(panel(app, " Reviews ", app.focus == Focus::Reviews)),
        reviews_area,
    );
    let decisions: Vec<Line> = if app.decisions.is_empty() {
        vec![Line::from(Span::styled(
            "no decisions yet",
            style(app, Role::dim),
        ))]
    } else {
        app.decisions
            .iter()
            .rev()
            .map(|d| {
                Line::from(vec![
                    Span::styled(format!("{} ", d.action), style(app, Role::decision)),
                    Span::styled(format!("({}) ", d.rule), style(app, Role::dim)),
                    Span::styled(d.reason.clone(), style(app, Role::text)),
                ])
            })
            .collect()
    };
    frame.render_widget(
        Paragraph::new(decisions)
            .wrap(Wrap { trim: true })
            .scroll((app.decisions_scroll as u16, 0))
            .block(panel(app, " Decisions ", app.focus == Focus::Decisions)),
        decisions_area,
    );
}
