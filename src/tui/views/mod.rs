//! Pure views: the app's state in, a frame out. Nothing here reads a clock, a file or a
//! socket, so every screen can be snapshot-tested.

mod agent;
mod campaigns;
mod chaos;
mod cluster;
mod demo;
mod overlays;
mod tickets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::app::{App, Level, Tab};
use super::keys;

/// Where each tab's title sits in the header, for mouse clicks: ` 1 Cluster │ 2 Tickets …`.
fn tab_spans() -> Vec<(Tab, u16, u16)> {
    let mut x = 1u16;
    Tab::ALL
        .iter()
        .map(|t| {
            let w = (t.title().len() + 2) as u16;
            let r = (*t, x, x + w);
            x += w + 3;
            r
        })
        .collect()
}

pub fn tab_at(column: u16) -> Option<Tab> {
    tab_spans()
        .into_iter()
        .find(|(_, a, b)| column >= *a && column < *b)
        .map(|(t, _, _)| t)
}

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    if app.too_small() {
        overlays::too_small(f, app, area);
        return;
    }
    let demo_h = if app.demo.is_some() { 6 } else { 0 };
    let banner_h = u16::from(!app.approvals.is_empty() && app.tab != Tab::Agent);
    let [header, narration, banner, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(demo_h),
        Constraint::Length(banner_h),
        Constraint::Min(5),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, header);
    if let Some(d) = &app.demo {
        draw_narration(f, app, d, narration);
    }
    if banner_h > 0 {
        let n = app.approvals.len();
        let line = Line::from(vec![
            Span::styled(" ⚠ ", app.theme.bad()),
            Span::styled(
                format!("{n} command(s) waiting for your approval — press 3 to see and answer"),
                app.theme.warn(),
            ),
        ]);
        f.render_widget(Paragraph::new(line), banner);
    }
    match app.tab {
        Tab::Cluster => cluster::draw(f, app, body),
        Tab::Tickets => tickets::draw(f, app, body),
        Tab::Agent => agent::draw(f, app, body),
        Tab::Chaos => chaos::draw(f, app, body),
        Tab::Campaigns => campaigns::draw(f, app, body),
    }
    draw_footer(f, app, footer);
    overlays::draw(f, app, area);
}

fn draw_header(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let mut spans = vec![Span::raw(" ")];
    for (i, (t, _, _)) in tab_spans().iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" │ ", th.dim()));
        }
        let label = format!("{} {}", t.index() + 1, t.title());
        spans.push(if *t == app.tab {
            Span::styled(format!(" {label} "), th.selected().patch(th.title()))
        } else {
            Span::styled(format!(" {label} "), th.plain())
        });
    }
    let (up, total) = app
        .cycle
        .as_ref()
        .map_or((0, 0), |c| (c.nodes_up, c.nodes_total));
    let active = app
        .tickets
        .iter()
        .filter(|t| t.status != crate::tickets::Status::Resolved)
        .count();
    let health = if app.cycle.is_none() {
        Span::styled("waiting for the first look", th.dim())
    } else if up == total && active == 0 {
        Span::styled(format!("{up}/{total} up · healthy"), th.good())
    } else {
        Span::styled(
            format!("{up}/{total} up · {active} active ticket(s)"),
            if up < total { th.bad() } else { th.warn() },
        )
    };
    let mut status = vec![
        Span::styled(format!(" {} #{} ", app.subject, app.instance), th.bold()),
        health,
    ];
    if app.load_running {
        status.push(Span::styled(" · load on", th.accent()));
    }
    status.push(Span::styled(
        format!(" · mode {}", app.mode.as_str()),
        th.dim(),
    ));
    if app.unsandboxed.is_some() {
        status.push(Span::styled(" · UNSANDBOXED", th.bad()));
    }
    // The agent's label goes first when the line is too narrow: the rest says what is wrong.
    let room = usize::from(area.width).saturating_sub(Line::from(status.clone()).width());
    let backend = app.agent_label.split(' ').next().unwrap_or_default();
    if let Some(agent) = [
        format!(" · agent: {}", app.agent_label),
        format!(" · agent: {backend}"),
    ]
    .into_iter()
    .find(|a| a.chars().count() <= room)
    {
        status.push(Span::styled(agent, th.dim()));
    }
    let status = Line::from(status);
    let [tabs, line] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    f.render_widget(Paragraph::new(Line::from(spans)), tabs);
    f.render_widget(Paragraph::new(status), line);
}

fn draw_narration(f: &mut Frame, app: &App, d: &crate::tui::demo::Demo, area: Rect) {
    let th = app.theme;
    let (title, text) = d.script.steps[d.step];
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!("Step {}/{} · {title}", d.step + 1, d.steps()),
                th.title(),
            ),
            Span::styled(
                if d.finished() {
                    "   Space: again · q: quit"
                } else {
                    "   Space: next step"
                },
                th.dim(),
            ),
        ]),
        Line::from(text),
    ];
    lines.extend(demo::facts(app, d));
    let block = Block::default()
        .borders(Borders::TOP | Borders::BOTTOM)
        .border_style(th.dim());
    f.render_widget(
        Paragraph::new(lines).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

fn draw_footer(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    if let Some((level, text)) = &app.flash {
        let style = match level {
            Level::Error => th.bad(),
            Level::Warn => th.warn(),
            Level::Good => th.good(),
            Level::Info => th.plain(),
        };
        f.render_widget(
            Paragraph::new(Line::from(Span::styled(format!(" {text}"), style))),
            area,
        );
        return;
    }
    let mut spans = vec![Span::raw(" ")];
    for (i, (key, what)) in keys::footer(app.tab, keys::Context::of(app))
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            spans.push(Span::styled("  ", th.dim()));
        }
        spans.push(Span::styled(key, th.title()));
        spans.push(Span::styled(format!(" {what}"), th.dim()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `5s`, `3m`, … since `t`.
pub(super) fn ago(app: &App, t: crate::clock::Timestamp) -> String {
    crate::clock::age(t, app.now)
}

/// Lines of `text`, cut to `n` with a marker.
pub(super) fn fold(text: &str, n: usize) -> (Vec<String>, usize) {
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let more = lines.len().saturating_sub(n);
    (lines.into_iter().take(n).collect(), more)
}

/// Word-wraps `text` to `width` columns (by characters).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(10);
    let mut out = Vec::new();
    for raw in text.lines() {
        let mut line = String::new();
        for word in raw.split(' ') {
            let need = if line.is_empty() {
                word.chars().count()
            } else {
                line.chars().count() + 1 + word.chars().count()
            };
            if need > width && !line.is_empty() {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
            while line.chars().count() > width {
                let head: String = line.chars().take(width).collect();
                let tail: String = line.chars().skip(width).collect();
                out.push(head);
                line = tail;
            }
        }
        out.push(line);
    }
    out
}

/// `text` cut to `width` columns, ending in `…` when cut.
pub(super) fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::{cut, wrap};

    #[test]
    fn wraps_words_and_cuts_long_ones() {
        assert_eq!(wrap("aaa bbb ccc", 10), ["aaa bbb", "ccc"]);
        assert_eq!(wrap("x".repeat(25).as_str(), 10).len(), 3);
        assert_eq!(wrap("a\nb", 10), ["a", "b"]);
        assert_eq!(cut("ratelimiter-2", 8), "ratelim…");
        assert_eq!(cut("redis", 8), "redis");
    }
}
