//! The header: session, state, elapsed time, tier, totals; the goal on the second line.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::clocks::{self, ClockSpot};
use super::{clock, style, tokens};
use crate::tui::app::App;
use crate::tui::theme::Role;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &App, spots: &mut Vec<ClockSpot>) {
    let state = app.state().to_string();
    let state_role = match state.as_str() {
        "running" => Role::running,
        "paused" => Role::paused,
        "stopping" | "stopped" => Role::stopped,
        "done" => Role::done,
        _ => Role::failed,
    };
    let end = app.finished_at.unwrap_or(app.now);
    let elapsed = app.started.map_or(0, |s| end.millis() - s.millis());
    let (input, output) = app.workers.iter().fold((0, 0), |(i, o), w| {
        (
            i + w.counted.usage.input_tokens,
            o + w.counted.usage.output_tokens,
        )
    });
    let cost: f64 = app.workers.iter().map(|w| w.counted.usage.cost_usd).sum();
    let mut spans = vec![
        Span::styled("orchestrate ", style(app, Role::title)),
        Span::styled(app.session.clone(), style(app, Role::header)),
        Span::raw("  "),
        Span::styled(format!("● {state}"), style(app, state_role)),
        Span::raw("  "),
    ];
    // The session's counter runs until it finishes.
    if let (None, Some(started)) = (app.finished_at, app.started) {
        let before: usize = spans.iter().map(Span::width).sum();
        let x = area.x.saturating_add(before as u16);
        clocks::record(spots, area, x, area.y, started.millis());
    }
    spans.push(Span::styled(clock(elapsed), style(app, Role::text)));
    if let Some(tier) = &app.history.tier {
        spans.push(Span::styled(format!("  {tier}"), style(app, Role::dim)));
    }
    spans.push(Span::styled(
        format!("  tokens {}/{}", tokens(input), tokens(output)),
        style(app, Role::dim),
    ));
    if cost > 0.0 {
        spans.push(Span::styled(format!("  ${cost:.4}"), style(app, Role::dim)));
    }
    // A review's blocker holds the session: that, not the goal, is what the operator must see.
    // A task recovery holds for the operator comes next: what to do, then `r`.
    let held = app.held.iter().next();
    let goal = match (&app.escalation, held) {
        (Some(banner), _) => Line::from(vec![
            Span::styled("!! ", style(app, Role::failed)),
            Span::styled(banner.clone(), style(app, Role::failed)),
            Span::styled("  R resumes · S stops", style(app, Role::key)),
        ]),
        (None, Some((task, fix))) => Line::from(vec![
            Span::styled("!! ", style(app, Role::failed)),
            Span::styled(
                format!("task {task} needs you: {fix}"),
                style(app, Role::failed),
            ),
            Span::styled(
                "  r on its worker runs it again · s stops",
                style(app, Role::key),
            ),
        ]),
        (None, None) => Line::from(vec![
            Span::styled("goal ", style(app, Role::dim)),
            Span::styled(app.goal.clone(), style(app, Role::text)),
        ]),
    };
    frame.render_widget(Paragraph::new(vec![Line::from(spans), goal]), area);
}
