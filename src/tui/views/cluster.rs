//! The Cluster tab: nodes, invariants, load and the event log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table};

use crate::tui::app::{App, Level};

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    // Tall enough for every invariant (and the nodes beside them).
    let top_h = (app.invariants.iter().filter(|i| i.enabled).count() as u16 + 2).max(8);
    let [top, load, log] = Layout::vertical([
        Constraint::Length(top_h),
        Constraint::Length(5),
        Constraint::Min(3),
    ])
    .areas(area);
    let [nodes, invariants] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    draw_nodes(f, app, nodes);
    draw_invariants(f, app, invariants);
    draw_load(f, app, load);
    draw_log(f, app, log);
}

fn draw_nodes(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let block = Block::bordered().title(" Nodes ").title_style(th.title());
    let Some(snap) = app.cycle.as_ref().and_then(|c| c.snapshot.as_ref()) else {
        let text = app
            .cluster_note
            .clone()
            .unwrap_or_else(|| "waiting for the first observation…".into());
        f.render_widget(
            Paragraph::new(Span::styled(text, th.dim())).block(block),
            area,
        );
        return;
    };
    if let Some(e) = &snap.observation.error {
        f.render_widget(
            Paragraph::new(Span::styled(format!("cannot observe: {e}"), th.bad())).block(block),
            area,
        );
        return;
    }
    let rows = snap.observation.nodes.iter().map(|n| {
        Row::new(vec![
            Cell::from(n.name.clone()),
            Cell::from(n.state.as_str()).style(th.node(n.state)),
            Cell::from(n.probe_ms.map_or("-".into(), |ms| format!("{ms:.1}ms"))).style(th.dim()),
            Cell::from(n.detail.clone().unwrap_or_default()).style(th.dim()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(14),
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["node", "state", "probe", "detail"]).style(th.bold()))
    .block(block);
    f.render_widget(table, area);
}

fn draw_invariants(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let block = Block::bordered()
        .title(" Invariants ")
        .title_style(th.title());
    let snap = app.cycle.as_ref().and_then(|c| c.snapshot.as_ref());
    let rows = app.invariants.iter().filter(|i| i.enabled).map(|inv| {
        let (mark, style, note) = match snap {
            None => ("·", th.dim(), String::new()),
            Some(s) => {
                let broken: Vec<&str> = s
                    .assessment
                    .violations
                    .iter()
                    .filter(|v| v.invariant == inv.name)
                    .map(|v| v.entity.as_str())
                    .collect();
                let unknown = s
                    .assessment
                    .unknown
                    .iter()
                    .any(|u| u.invariant == inv.name && u.entity.is_none());
                if !broken.is_empty() {
                    ("✗", th.severity(inv.severity), broken.join(", "))
                } else if unknown {
                    ("?", th.dim(), "unknown".into())
                } else {
                    ("✓", th.good(), String::new())
                }
            }
        };
        Row::new(vec![
            Cell::from(mark).style(style),
            Cell::from(inv.name).style(style),
            Cell::from(inv.severity.as_str()).style(th.dim()),
            Cell::from(note).style(style),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(2),
            Constraint::Length(20),
            Constraint::Length(9),
            Constraint::Min(6),
        ],
    )
    .block(block);
    f.render_widget(table, area);
}

fn draw_load(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let title = match app.load.back() {
        Some(s) if app.load_running => {
            let pct = |n: u64| {
                if s.sent > 0 {
                    100.0 * n as f64 / s.sent as f64
                } else {
                    0.0
                }
            };
            format!(
                " Load · {} req/s · p99 {:.1} ms · blocked {:.0}% · failed {:.0}% ",
                s.sent,
                s.p99_ms,
                pct(s.blocked),
                pct(s.failed)
            )
        }
        _ => " Load · off (l starts 50 requests a second) ".to_string(),
    };
    let block = Block::bordered().title(title).title_style(th.title());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let cols = Layout::horizontal([Constraint::Ratio(1, 4); 4]).split(inner);
    let width = usize::from(cols[0].width.saturating_sub(1)).max(1);
    let recent: Vec<_> = app.load.iter().rev().take(width).rev().collect();
    let pct = |n: u64, d: u64| (n * 100).checked_div(d).unwrap_or(0);
    let series: [(&str, Vec<u64>, ratatui::style::Style); 4] = [
        (
            "throughput",
            recent.iter().map(|s| s.sent).collect(),
            th.good(),
        ),
        (
            "p99 (ms)",
            recent.iter().map(|s| s.p99_ms.round() as u64).collect(),
            th.accent(),
        ),
        (
            "blocked %",
            recent.iter().map(|s| pct(s.blocked, s.sent)).collect(),
            th.warn(),
        ),
        (
            "failed %",
            recent.iter().map(|s| pct(s.failed, s.sent)).collect(),
            th.bad(),
        ),
    ];
    for ((label, data, style), col) in series.into_iter().zip(cols.iter()) {
        let [l, s] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(*col);
        f.render_widget(Paragraph::new(Span::styled(label, th.dim())), l);
        f.render_widget(Sparkline::default().data(&data).style(style), s);
    }
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let h = usize::from(area.height.saturating_sub(2));
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = app
        .log
        .iter()
        .skip(start)
        .take(end - start)
        .map(|l| {
            let style = match l.level {
                Level::Error => th.bad(),
                Level::Warn => th.warn(),
                Level::Good => th.good(),
                Level::Info => th.plain(),
            };
            Line::from(vec![
                Span::styled(l.at.format("%H:%M:%S ").to_string(), th.dim()),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    let title = if app.log_scroll > 0 {
        format!(" Events (↑ {} back) ", app.log_scroll)
    } else {
        " Events ".into()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title).title_style(th.title())),
        area,
    );
}
