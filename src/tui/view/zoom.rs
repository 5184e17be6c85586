//! One worker, zoomed: its readable transcript (messages, tool calls, commands with exit
//! codes, file changes), or its live terminal screen rendered through vt100.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::log::type_role;
use super::workers::{state_role, state_symbol};
use super::{panel, style};
use crate::tui::app::{App, ZoomMode};
use crate::tui::theme::Role;

pub fn draw(frame: &mut Frame<'_>, area: Rect, app: &mut App, worker: &str, mode: ZoomMode) {
    let Some(pane) = app.workers.iter().find(|w| w.name == worker) else {
        frame.render_widget(
            Paragraph::new("worker not found").block(panel(app, " zoom ", true)),
            area,
        );
        return;
    };
    let state = app.pane_state(pane);
    let what = match mode {
        ZoomMode::Transcript => "transcript",
        ZoomMode::Screen => "terminal",
    };
    let title = Line::from(vec![
        Span::styled(
            format!(" {} ", state_symbol(state)),
            style(app, state_role(state)),
        ),
        Span::styled(worker.to_string(), style(app, Role::title)),
        Span::styled(
            format!(" · {} · {state} · {what} ", pane.agent),
            style(app, Role::dim),
        ),
    ]);
    let block = panel(app, title, true);
    let inner = block.inner(area);
    match mode {
        ZoomMode::Transcript => {
            let height = inner.height as usize;
            let total = pane.transcript.len();
            let scroll = app.zoom_scroll.min(total.saturating_sub(height));
            let end = total - scroll;
            let lines: Vec<Line> = pane
                .transcript
                .iter()
                .skip(end.saturating_sub(height))
                .take(end.min(height))
                .map(|(kind, text)| {
                    Line::from(vec![
                        Span::styled(format!("{kind:<9} "), style(app, type_role(*kind))),
                        Span::styled(text.clone(), style(app, Role::text)),
                    ])
                })
                .collect();
            frame.render_widget(Paragraph::new(lines).block(block), area);
        }
        ZoomMode::Screen => {
            frame.render_widget(block, area);
            app.fit_screen(inner.height, inner.width);
            if let Some((_, parser)) = &app.screen {
                frame.render_widget(ScreenView(parser.screen()), inner);
            }
        }
    }
}

/// Copies a vt100 screen into the buffer, cell by cell.
struct ScreenView<'a>(&'a vt100::Screen);

impl Widget for ScreenView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (rows, cols) = self.0.size();
        for row in 0..rows.get().min(area.height) {
            for col in 0..cols.get().min(area.width) {
                let Some(cell) = self.0.cell(row, col) else {
                    continue;
                };
                let mut style = Style::default()
                    .fg(color(cell.fgcolor()))
                    .bg(color(cell.bgcolor()));
                if cell.bold() {
                    style = style.add_modifier(Modifier::BOLD);
                }
                if cell.inverse() {
                    style = style.add_modifier(Modifier::REVERSED);
                }
                if cell.underline() {
                    style = style.add_modifier(Modifier::UNDERLINED);
                }
                let symbol = if cell.has_contents() {
                    cell.contents()
                } else {
                    " "
                };
                if let Some(target) = buf.cell_mut((area.x + col, area.y + row)) {
                    target.set_symbol(symbol).set_style(style);
                }
            }
        }
    }
}

fn color(c: vt100::Color) -> Color {
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}
