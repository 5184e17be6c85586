//! Review verdicts and the decision panel, from the coordinator's journal.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{panel, style};
use crate::tui::app::{App, Focus};
use crate::tui::theme::Role;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App) {
    // Open approvals come first: an agent is waiting.
    let area = if app.approvals.is_empty() {
        area
    } else {
        let height = (app.approvals.len() as u16 * 2 + 2).min(area.height / 2);
        let [approvals_area, rest] =
            Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
        approvals(frame, approvals_area, app);
        rest
    };
    let [reviews_area, decisions_area] =
        Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);

    let reviews: Vec<Line> = if app.reviews.is_empty() {
        vec![Line::from(Span::styled(
            "no reviews yet",
            style(app, Role::dim),
        ))]
    } else {
        // The newest first, from the selected one (at the top, marked while focused).
        let focused = app.focus == Focus::Reviews;
        app.reviews
            .iter()
            .rev()
            .skip(app.reviews_scroll)
            .enumerate()
            .map(|(i, r)| {
                let role = match r.verdict.as_str() {
                    "approved" => Role::done,
                    "concern" => Role::warning,
                    _ => Role::failed,
                };
                let marker = if focused && i == 0 { "›" } else { "" };
                Line::from(vec![
                    Span::styled(marker, style(app, Role::key)),
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

/// The approvals agents wait for, with the keys that answer them.
fn approvals(frame: &mut Frame<'_>, area: Rect, app: &App) {
    let lines: Vec<Line> = app
        .approvals
        .iter()
        .flat_map(|a| {
            [
                Line::from(vec![
                    Span::styled(format!("{} ", a.id), style(app, Role::waiting)),
                    Span::styled(format!("{} ", a.worker), style(app, Role::title)),
                    Span::styled(a.what.clone(), style(app, Role::text)),
                ]),
                Line::from(Span::styled(
                    format!("   {}", a.reason),
                    style(app, Role::dim),
                )),
            ]
        })
        .collect();
    let title = Line::from(vec![
        Span::styled(" Approvals ", style(app, Role::waiting)),
        Span::styled("y approve · n deny ", style(app, Role::dim)),
    ]);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(panel(app, title, true)),
        area,
    );
}
