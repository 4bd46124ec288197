//! The Cluster tab: nodes, invariants, load and the event log.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Wrap};

use super::{cut, wrap};
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
    let inv = Invariants::of(app, top.width / 2);
    let [nodes, invariants] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(inv.width())]).areas(top);
    draw_nodes(f, app, nodes);
    draw_invariants(f, app, &inv, invariants);
    draw_load(f, app, load);
    draw_log(f, app, log);
}

/// Columns between cells, as ratatui's table puts them.
const GAP: u16 = 1;

fn text_width(s: &str) -> u16 {
    u16::try_from(s.chars().count()).unwrap_or(u16::MAX)
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
            Paragraph::new(Span::styled(text, th.dim()))
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    };
    if let Some(e) = &snap.observation.error {
        f.render_widget(
            Paragraph::new(Span::styled(format!("cannot observe: {e}"), th.bad()))
                .wrap(Wrap { trim: true })
                .block(block),
            area,
        );
        return;
    }
    let nodes = &snap.observation.nodes;
    let name_w = nodes.iter().map(|n| text_width(&n.name)).fold(4, u16::max);
    let state_w = nodes
        .iter()
        .map(|n| text_width(n.state.as_str()))
        .fold(5, u16::max);
    let probe_w = 7;
    let inner = block.inner(area);
    let detail_w = usize::from(
        inner
            .width
            .saturating_sub(name_w + state_w + probe_w + 3 * GAP),
    );
    // A long detail wraps over the lines the table has to spare, never pushing a node out.
    let mut spare = usize::from(inner.height.saturating_sub(1)).saturating_sub(nodes.len());
    let rows: Vec<Row> = nodes
        .iter()
        .map(|n| {
            let detail = n.detail.as_deref().unwrap_or_default();
            let mut lines = if detail.is_empty() {
                vec![String::new()]
            } else {
                wrap(detail, detail_w)
            };
            let keep = lines.len().min(1 + spare.min(MAX_DETAIL_LINES - 1));
            spare -= keep - 1;
            if keep < lines.len() {
                lines.truncate(keep);
                if let Some(last) = lines.last_mut() {
                    *last = cut(&format!("{last} …"), detail_w.max(1));
                }
            }
            let height = u16::try_from(lines.len()).unwrap_or(1);
            Row::new(vec![
                Cell::from(n.name.clone()),
                Cell::from(n.state.as_str()).style(th.node(n.state)),
                Cell::from(n.probe_ms.map_or("-".into(), |ms| format!("{ms:.1}ms")))
                    .style(th.dim()),
                Cell::from(Text::from(
                    lines.into_iter().map(Line::from).collect::<Vec<_>>(),
                ))
                .style(th.dim()),
            ])
            .height(height)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(name_w),
            Constraint::Length(state_w),
            Constraint::Length(probe_w),
            Constraint::Fill(1),
        ],
    )
    .column_spacing(GAP)
    .header(Row::new(["node", "state", "probe", "detail"]).style(th.bold()))
    .block(block);
    f.render_widget(table, area);
}

/// Lines a node's detail may take.
const MAX_DETAIL_LINES: usize = 3;

/// The invariants panel's rows and columns, sized to what they say: it takes no more than
/// `max` columns, leaving out the severity column (the mark's colour says it) before it cuts
/// an entity.
struct Invariants<'a> {
    rows: Vec<InvariantRow<'a>>,
    name_w: u16,
    entity_w: u16,
    severity: bool,
}

struct InvariantRow<'a> {
    mark: &'static str,
    style: Style,
    name: &'static str,
    severity: &'static str,
    entities: Vec<&'a str>,
}

const SEVERITY_W: u16 = 8;

impl<'a> Invariants<'a> {
    fn of(app: &'a App, max: u16) -> Self {
        let th = app.theme;
        let snap = app.cycle.as_ref().and_then(|c| c.snapshot.as_ref());
        let rows: Vec<InvariantRow> = app
            .invariants
            .iter()
            .filter(|i| i.enabled)
            .map(|inv| {
                let mut row = InvariantRow {
                    mark: "·",
                    style: th.dim(),
                    name: inv.name,
                    severity: inv.severity.as_str(),
                    entities: Vec::new(),
                };
                let Some(s) = snap else { return row };
                row.entities = s
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
                (row.mark, row.style) = if !row.entities.is_empty() {
                    ("✗", th.severity(inv.severity))
                } else if unknown {
                    row.entities.push("unknown");
                    ("?", th.dim())
                } else {
                    ("✓", th.good())
                };
                row
            })
            .collect();
        let name_w = rows.iter().map(|r| text_width(r.name)).fold(9, u16::max);
        let wanted = rows
            .iter()
            .map(|r| text_width(&r.entities.join(", ")))
            .fold(6, u16::max);
        let mut inv = Self {
            rows,
            name_w,
            entity_w: wanted,
            severity: true,
        };
        if inv.width() > max {
            inv.severity = false;
        }
        if inv.width() > max {
            inv.entity_w = wanted.saturating_sub(inv.width() - max).max(6);
        }
        inv
    }

    /// The panel's width, borders included.
    fn width(&self) -> u16 {
        let severity = if self.severity { SEVERITY_W + GAP } else { 0 };
        2 + 1 + GAP + self.name_w + GAP + severity + self.entity_w
    }

    /// The broken entities in `w` columns: as many as fit, then how many more.
    fn entities(list: &[&str], w: usize) -> String {
        let all = list.join(", ");
        if all.chars().count() <= w {
            return all;
        }
        for shown in (1..list.len()).rev() {
            let s = format!("{} +{}", list[..shown].join(", "), list.len() - shown);
            if s.chars().count() <= w {
                return s;
            }
        }
        cut(&all, w)
    }
}

fn draw_invariants(f: &mut Frame, app: &App, inv: &Invariants, area: Rect) {
    let th = app.theme;
    let block = Block::bordered()
        .title(" Invariants ")
        .title_style(th.title());
    let rows = inv.rows.iter().map(|r| {
        let mut cells = vec![
            Cell::from(r.mark).style(r.style),
            Cell::from(r.name).style(r.style),
        ];
        if inv.severity {
            cells.push(Cell::from(r.severity).style(th.dim()));
        }
        cells.push(
            Cell::from(Invariants::entities(&r.entities, usize::from(inv.entity_w))).style(r.style),
        );
        Row::new(cells)
    });
    let mut widths = vec![Constraint::Length(1), Constraint::Length(inv.name_w)];
    if inv.severity {
        widths.push(Constraint::Length(SEVERITY_W));
    }
    widths.push(Constraint::Fill(1));
    let table = Table::new(rows, widths).column_spacing(GAP).block(block);
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
                pct(s.refused),
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
    let series: [(&str, Vec<u64>, Style, Option<u64>); 4] = [
        (
            "req/s",
            recent.iter().map(|s| s.sent).collect(),
            th.good(),
            None,
        ),
        (
            "p99 ms",
            recent.iter().map(|s| s.p99_ms.round() as u64).collect(),
            th.accent(),
            None,
        ),
        (
            "blocked %",
            recent.iter().map(|s| pct(s.refused, s.sent)).collect(),
            th.warn(),
            Some(100),
        ),
        (
            "failed %",
            recent.iter().map(|s| pct(s.failed, s.sent)).collect(),
            th.bad(),
            Some(100),
        ),
    ];
    for ((label, data, style, fixed), col) in series.into_iter().zip(cols.iter()) {
        // A scale of its own above the peak: constant load is a level line, not a solid block.
        let scale = fixed.unwrap_or_else(|| scale_above(data.iter().copied().max().unwrap_or(0)));
        let [l, s] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(*col);
        f.render_widget(
            Paragraph::new(Span::styled(format!("{label} · 0–{scale}"), th.dim())),
            l,
        );
        f.render_widget(Sparkline::default().data(&data).max(scale).style(style), s);
    }
}

/// The first of 1, 2, 5, 10, 20, 50, … at or above a quarter more than `peak`.
fn scale_above(peak: u64) -> u64 {
    let want = peak.saturating_add(peak / 4).max(1);
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            let v = step.saturating_mul(m);
            if v >= want || v == u64::MAX {
                return v;
            }
        }
        step = step.saturating_mul(10);
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

#[cfg(test)]
mod tests {
    use super::scale_above;

    #[test]
    fn a_scale_sits_above_the_peak_on_a_round_number() {
        assert_eq!(scale_above(0), 1);
        assert_eq!(scale_above(50), 100);
        assert_eq!(scale_above(6), 10);
        assert_eq!(scale_above(15), 20);
        assert_eq!(scale_above(3), 5);
        assert_eq!(scale_above(u64::MAX), u64::MAX);
    }
}
