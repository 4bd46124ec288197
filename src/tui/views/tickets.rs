//! The Tickets tab: the list, filtered by status, and the selected ticket's history.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::ago;
use crate::tui::app::App;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    // Side by side when there is room; the history below the list otherwise.
    let [list, detail] = if area.width >= 110 {
        Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    };
    draw_list(f, app, list);
    draw_detail(f, app, detail);
}

fn draw_list(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let visible = app.visible_tickets();
    let title = format!(
        " Tickets · {} · {} shown (f filters) ",
        app.filter.label(),
        visible.len()
    );
    let block = Block::bordered().title(title).title_style(th.title());
    if visible.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled("no tickets", th.dim())).block(block),
            area,
        );
        return;
    }
    let rows = visible.iter().map(|t| {
        let status = match (t.resolution, t.held) {
            (Some(r), _) => format!("resolved ({})", r.as_str()),
            (None, true) => format!("{} (held)", t.status),
            (None, false) => t.status.to_string(),
        };
        Row::new(vec![
            Cell::from(format!("#{}", t.id)),
            Cell::from(status).style(th.status(t.status)),
            Cell::from(t.severity.as_str()).style(th.severity(t.severity)),
            Cell::from(t.invariant.clone()),
            Cell::from(t.entity.clone()),
            Cell::from(ago(app, t.opened_at)).style(th.dim()),
            Cell::from(t.occurrences.to_string()).style(th.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(22),
            Constraint::Length(8),
            Constraint::Length(19),
            Constraint::Fill(1),
            Constraint::Length(4),
            Constraint::Length(3),
        ],
    )
    .header(
        Row::new([
            "id",
            "status",
            "severity",
            "invariant",
            "entity",
            "age",
            "occ",
        ])
        .style(th.bold()),
    )
    .row_highlight_style(th.selected())
    .block(block);
    let mut state = TableState::default().with_selected(Some(app.ticket_sel));
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_detail(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let block = Block::bordered().title(" Detail ").title_style(th.title());
    let Some(t) = app.selected_ticket() else {
        f.render_widget(block, area);
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("#{} ", t.id), th.bold()),
            Span::styled(t.status.to_string(), th.status(t.status)),
            Span::raw(" · "),
            Span::styled(t.severity.as_str(), th.severity(t.severity)),
        ]),
        Line::from(t.summary.clone()),
        Line::from(Span::styled(
            format!(
                "{} · opened {} ago · seen {} ago · {} occurrence(s)",
                t.violation_key,
                ago(app, t.opened_at),
                ago(app, t.last_seen_at),
                t.occurrences
            ),
            th.dim(),
        )),
    ];
    if let Some(by) = &t.claimed_by {
        lines.push(Line::from(Span::styled(
            format!("claimed by {by} · attempt {}", t.attempts),
            th.dim(),
        )));
    }
    match app.detail.as_ref().filter(|d| d.ticket_id == t.id) {
        None => lines.push(Line::from(Span::styled("loading its history…", th.dim()))),
        Some(d) => {
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled("History", th.bold())));
            for e in &d.events {
                let moved = match (e.from_status, e.to_status) {
                    (Some(a), Some(b)) if a != b => format!(" {a} → {b}"),
                    (None, Some(b)) => format!(" → {b}"),
                    _ => String::new(),
                };
                lines.push(Line::from(vec![
                    Span::styled(e.at.format("%H:%M:%S ").to_string(), th.dim()),
                    Span::styled(format!("{}{moved}", e.kind), th.bold()),
                    Span::styled(format!(" by {}: {}", e.actor, e.reason), th.plain()),
                ]));
            }
            if !d.sessions.is_empty() {
                lines.push(Line::from(""));
                lines.push(Line::from(Span::styled("Agent sessions", th.bold())));
                for s in &d.sessions {
                    lines.push(Line::from(format!(
                        "session {} · {} {} · {} · {} turns · {} tokens",
                        s.id,
                        s.backend,
                        s.model,
                        s.outcome.as_deref().unwrap_or("running"),
                        s.turns,
                        s.input_tokens + s.output_tokens
                    )));
                }
            }
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
