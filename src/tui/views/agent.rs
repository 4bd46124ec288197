//! The Agent tab: the live session — text and thinking as they stream, each tool call as a
//! card, tokens and cost — and the command waiting for a person.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::{fold, wrap};
use crate::agent::audit::Kind;
use crate::tui::app::App;
use crate::tui::session_view::{CardStatus, Item, SessionView, ToolCard};
use crate::tui::theme::Theme;

/// Lines of output shown when a card is folded.
const FOLDED: usize = 3;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let approval_h = if app.approvals.is_empty() { 0 } else { 7 };
    let [head, body, approval] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(approval_h),
    ])
    .areas(area);
    let Some(s) = app.shown_session() else {
        f.render_widget(
            Paragraph::new(Span::styled(
                format!(" agent: {}", app.agent_label),
                th.dim(),
            )),
            head,
        );
        let text = "No session yet: the agent takes the next open ticket. Break something in the Chaos tab (4).";
        f.render_widget(
            Paragraph::new(Span::styled(text, th.dim()))
                .block(Block::bordered().title(" Agent ").title_style(th.title())),
            body,
        );
        return;
    };
    draw_head(f, app, s, head);
    draw_transcript(f, app, s, body, app.item_sel);
    if approval_h > 0 {
        draw_approval(f, app, approval);
    }
}

fn draw_head(f: &mut Frame, app: &App, s: &SessionView, area: Rect) {
    let th = app.theme;
    let n = app.sessions.len();
    let pos = app
        .sessions
        .iter()
        .position(|v| v.id == s.id)
        .map_or(0, |p| p + 1);
    let state = match &s.outcome {
        None => Span::styled("working", th.warn()),
        Some(o) if o == "resolved" => Span::styled("resolved", th.good()),
        Some(o) => Span::styled(o.clone(), th.bad()),
    };
    let cost = s.cost_usd.map_or(String::new(), |c| format!(" · ${c:.4}"));
    let follow = if app.session_focus.is_none() {
        " · live"
    } else {
        ""
    };
    let mut spans = vec![
        Span::styled(format!(" session {} ({pos} of {n})", s.id), th.bold()),
        Span::raw(match s.incident_id {
            Some(i) => format!(" · incident #{i} · ticket #{} · ", s.ticket_id),
            None => format!(" · ticket #{} · ", s.ticket_id),
        }),
        state,
        Span::styled(format!(" · {} tokens{cost}{follow}", s.tokens), th.dim()),
    ];
    // Which model it is goes last, and only where it fits: the rest is what happens.
    let label = format!(" · {}", s.label);
    if Line::from(spans.clone()).width() + label.chars().count() <= usize::from(area.width) {
        spans.push(Span::styled(label, th.dim()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// `said`: the text the model wrote just before the call; reasoning that only repeats it is
/// not shown twice.
fn card_lines(
    th: Theme,
    c: &ToolCard,
    said: Option<&str>,
    width: usize,
    out: &mut Vec<Line<'static>>,
) {
    let class_style = c.class.map_or(th.dim(), |k| th.class(k));
    let class = c.class.map_or(String::new(), |k| format!(" [{k}]"));
    let (status, status_style): (String, Style) = match &c.status {
        CardStatus::Proposed if c.command.is_some() => ("checking".into(), th.dim()),
        CardStatus::Proposed => (String::new(), th.dim()),
        CardStatus::Asked => ("waiting for a person".into(), th.bad()),
        CardStatus::Running { by } => (format!("running (by {by})"), th.warn()),
        CardStatus::Done => match (c.exit_code, c.duration_ms) {
            (Some(0), Some(d)) => (format!("exit 0 · {d} ms"), th.good()),
            (Some(code), Some(d)) => (format!("exit {code} · {d} ms"), th.bad()),
            (None, Some(d)) => (format!("killed · {d} ms"), th.bad()),
            _ => ("done".into(), th.good()),
        },
        CardStatus::Vetoed { by, reason } => (format!("vetoed by {by}: {reason}"), th.bad()),
        CardStatus::Refused { reason } => (format!("refused: {reason}"), th.bad()),
    };
    let head = match (&c.command, &c.edited) {
        (_, Some(edit)) => format!("$ {edit}  (edited)"),
        (Some(cmd), None) => format!("$ {cmd}"),
        (None, None) => format!("→ {}", c.tool),
    };
    out.push(Line::from(vec![
        Span::styled(head, th.bold()),
        Span::styled(class, class_style),
        Span::raw("  "),
        Span::styled(status, status_style),
    ]));
    let reasoning = c.reasoning.trim();
    if !reasoning.is_empty() && said.map(str::trim) != Some(reasoning) {
        let mark = if c.command.is_some() { "↳ " } else { "  " };
        for l in wrap(reasoning, width.saturating_sub(4)) {
            out.push(Line::from(Span::styled(format!("  {mark}{l}"), th.dim())));
        }
    }
    if !c.output.is_empty() {
        // A command's first line is its exit status, already in the card's head.
        let skip = usize::from(c.command.is_some());
        let body: String = c.output.lines().skip(skip).collect::<Vec<_>>().join("\n");
        let (shown, more) = if c.expanded {
            (body.lines().map(str::to_string).collect(), 0)
        } else {
            fold(&body, FOLDED)
        };
        for l in shown {
            let cut: String = l.chars().take(width.saturating_sub(4)).collect();
            out.push(Line::from(Span::styled(format!("  │ {cut}"), th.plain())));
        }
        if more > 0 {
            out.push(Line::from(Span::styled(
                format!("  │ … {more} more lines (Enter unfolds)"),
                th.dim(),
            )));
        }
    }
}

fn item_lines(th: Theme, item: &Item, said: Option<&str>, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    match item {
        Item::Text(t) => {
            for (i, l) in wrap(t.trim(), width.saturating_sub(2))
                .into_iter()
                .enumerate()
            {
                out.push(Line::from(if i == 0 {
                    format!("▸ {l}")
                } else {
                    format!("  {l}")
                }));
            }
        }
        Item::Thinking(t) => {
            for l in wrap(t.trim(), width.saturating_sub(2)).into_iter().take(3) {
                out.push(Line::from(Span::styled(format!("~ {l}"), th.dim())));
            }
        }
        Item::Tool(c) => card_lines(th, c, said, width, &mut out),
        Item::Note { kind, text } => {
            let style = match kind {
                Kind::Verify if text.contains("resolved") => th.good(),
                Kind::Verify | Kind::Error => th.bad(),
                Kind::Guidance => th.accent(),
                _ => th.dim(),
            };
            let mark = match kind {
                Kind::Verify => "✓",
                Kind::Error => "!",
                Kind::Guidance => "»",
                _ => "·",
            };
            for (i, l) in wrap(text.trim(), width.saturating_sub(2))
                .into_iter()
                .enumerate()
            {
                out.push(Line::from(Span::styled(
                    if i == 0 {
                        format!("{mark} {l}")
                    } else {
                        format!("  {l}")
                    },
                    style,
                )));
            }
        }
    }
    out
}

/// A session's transcript; `sel` is the selected item (`None` follows the newest). The
/// Campaigns tab shows a trial's session with it too.
pub(super) fn draw_transcript(
    f: &mut Frame,
    app: &App,
    s: &SessionView,
    area: Rect,
    sel: Option<usize>,
) {
    let th = app.theme;
    let block = Block::bordered().title(" Session ").title_style(th.title());
    let inner = block.inner(area);
    let width = usize::from(inner.width);
    let selected = sel.unwrap_or(s.items.len().saturating_sub(1));
    let mut lines: Vec<Line> = Vec::new();
    let mut sel_start = 0;
    for (i, item) in s.items.iter().enumerate() {
        if i == selected {
            sel_start = lines.len();
        }
        let said = match i.checked_sub(1).and_then(|p| s.items.get(p)) {
            Some(Item::Text(t)) => Some(t.as_str()),
            _ => None,
        };
        let mut block_lines = item_lines(th, item, said, width);
        if i == selected && sel.is_some() {
            if let Some(first) = block_lines.first_mut() {
                *first = first.clone().patch_style(th.selected());
            }
        }
        lines.extend(block_lines);
    }
    if !s.streaming_thinking.is_empty() && s.streaming.is_empty() {
        let last: String = s
            .streaming_thinking
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(width.saturating_sub(4))
            .collect();
        lines.push(Line::from(Span::styled(format!("~ {last}…"), th.dim())));
    }
    if !s.streaming.is_empty() {
        for (i, l) in wrap(&s.streaming, width.saturating_sub(2))
            .into_iter()
            .enumerate()
        {
            lines.push(Line::from(if i == 0 {
                format!("▸ {l}▌")
            } else {
                format!("  {l}")
            }));
        }
    }
    if let Some(o) = &s.outcome {
        let style = if o == "resolved" { th.good() } else { th.bad() };
        let why = s
            .reason
            .as_deref()
            .map_or(String::new(), |r| format!(": {r}"));
        lines.push(Line::from(Span::styled(format!("= {o}{why}"), style)));
    }
    let h = usize::from(inner.height);
    let offset = if sel.is_none() {
        lines.len().saturating_sub(h)
    } else {
        sel_start
            .saturating_sub(h / 3)
            .min(lines.len().saturating_sub(h))
    };
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((offset as u16, 0)),
        area,
    );
}

fn draw_approval(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let Some(p) = app.approvals.front() else {
        return;
    };
    let more = if app.approvals.len() > 1 {
        format!(" (+{} more waiting)", app.approvals.len() - 1)
    } else {
        String::new()
    };
    let block = Block::bordered()
        .title(format!(
            " Approval needed · ticket #{}{more} ",
            p.req.ticket_id
        ))
        .title_style(th.bad())
        .border_style(th.bad());
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("$ {}", p.req.command), th.bold()),
            Span::styled(format!("  [{}]", p.req.class), th.class(p.req.class)),
        ]),
        Line::from(Span::styled(
            format!("why the agent wants it: {}", p.req.reasoning),
            th.plain(),
        )),
        Line::from(Span::styled(
            format!("why you are asked: {}", p.req.why),
            th.dim(),
        )),
        Line::from(vec![
            Span::styled("y", th.title()),
            Span::raw(" approve   "),
            Span::styled("n", th.title()),
            Span::raw(" veto   "),
            Span::styled("e", th.title()),
            Span::raw(" edit   "),
            Span::styled("a", th.title()),
            Span::raw(" always allow this prefix"),
        ]),
    ];
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}
