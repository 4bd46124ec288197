//! The Tickets tab: the list, filtered by status and grouped by incident (roots first, the
//! tickets that follow from them indented), and the selected ticket's history.

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
    let statuses: Vec<String> = visible
        .iter()
        .map(|t| match (t.resolution, t.held) {
            (Some(r), _) => format!("resolved ({})", r.as_str()),
            (None, true) => format!("{} (held)", t.status),
            (None, false) => t.status.to_string(),
        })
        .collect();
    // Each column as wide as what it holds; only the invariant's name gives way (its
    // entity says which node, the detail says the rest).
    let widest = |it: &mut dyn Iterator<Item = usize>, min: usize| {
        u16::try_from(it.fold(min, usize::max)).unwrap_or(u16::MAX)
    };
    let id_w = widest(&mut visible.iter().map(|t| t.id.to_string().len() + 1), 2);
    let status_w = widest(&mut statuses.iter().map(|s| s.chars().count()), 6);
    let entity_w = widest(&mut visible.iter().map(|t| t.entity.chars().count()), 6);
    // The incident's line on its first ticket shown: its id, state and age; the tickets
    // that follow from a root are indented under it.
    let lines = app.incident_lines();
    let line_of = |t: &crate::tickets::Ticket| t.incident_id.and_then(|i| lines.get(&i));
    let incidents: Vec<Option<String>> = visible
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let first = i == 0 || visible[i - 1].incident_id != t.incident_id;
            let line = line_of(t).filter(|_| first)?;
            // An incident of one ticket is in that ticket's state: its line says only which
            // and how old, so that the row keeps room for the ticket's own status.
            Some(if line.tickets > 1 {
                format!("#{} {} {}", line.id, line.status, ago(app, line.opened_at))
            } else {
                format!("#{} {}", line.id, ago(app, line.opened_at))
            })
        })
        .collect();
    let incident_w = widest(
        &mut incidents.iter().map(|s| s.as_deref().map_or(0, str::len)),
        8,
    );
    let invariant = |t: &crate::tickets::Ticket| {
        if t.root {
            t.invariant.clone()
        } else {
            format!("↳ {}", t.invariant)
        }
    };
    // The incident column only when some incident shown holds several tickets: a ticket
    // alone is its own incident, which the detail pane names.
    let grouped = visible
        .iter()
        .any(|t| line_of(t).is_some_and(|l| l.tickets > 1));
    let incident_w = if grouped { incident_w } else { 0 };
    let fixed = incident_w + id_w + status_w + 8 + entity_w + 4 + 3 + 7;
    let invariant_w = widest(&mut visible.iter().map(|t| invariant(t).chars().count()), 9)
        .min(block.inner(area).width.saturating_sub(fixed).max(9));
    let rows = visible
        .iter()
        .zip(statuses)
        .zip(incidents)
        .map(|((t, status), incident)| {
            let incident_status = line_of(t).map_or(t.status, |i| i.status);
            let incident =
                Cell::from(incident.unwrap_or_default()).style(th.status(incident_status));
            Row::new(grouped.then_some(incident).into_iter().chain([
                Cell::from(format!("#{}", t.id)),
                Cell::from(status).style(th.status(t.status)),
                Cell::from(t.severity.as_str()).style(th.severity(t.severity)),
                Cell::from(super::cut(&invariant(t), usize::from(invariant_w))),
                Cell::from(t.entity.clone()),
                Cell::from(ago(app, t.opened_at)).style(th.dim()),
                Cell::from(t.occurrences.to_string()).style(th.dim()),
            ]))
        });
    let table = Table::new(
        rows,
        grouped
            .then_some(Constraint::Length(incident_w))
            .into_iter()
            .chain([
                Constraint::Length(id_w),
                Constraint::Length(status_w),
                Constraint::Length(8),
                Constraint::Length(invariant_w),
                Constraint::Length(entity_w),
                Constraint::Length(4),
                Constraint::Fill(1),
            ]),
    )
    .header(
        Row::new(grouped.then_some("incident").into_iter().chain([
            "id",
            "status",
            "severity",
            "invariant",
            "entity",
            "age",
            "occ",
        ]))
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
    if let Some(i) = app.incident_of(t) {
        let role = if t.root {
            "a root"
        } else {
            "follows from a root"
        };
        lines.push(Line::from(vec![
            Span::styled(format!("incident #{} ", i.id), th.bold()),
            Span::styled(i.status.to_string(), th.status(i.status)),
            Span::styled(
                format!(" · {} ticket(s) · this one {role}", i.tickets),
                th.dim(),
            ),
        ]));
    }
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
