//! What covers the tabs: help, questions, text areas, errors; and the too-small screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::tui::app::{App, Ask, Overlay};
use crate::tui::keys;

/// The help overlay's width, and the column its keys take.
const HELP_WIDTH: u16 = 72;
const HELP_KEY_COLUMN: u16 = 12;

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [r] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    r
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    match &app.overlay {
        None => {}
        Some(Overlay::Help) => {
            let rows = keys::help(app.tab, app.demo.is_some());
            let width = HELP_WIDTH.min(area.width);
            // The key in a column of its own; a long help wraps under its first words.
            let text_width = usize::from(width.saturating_sub(2 + HELP_KEY_COLUMN)).max(10);
            let mut lines = Vec::new();
            let mut section = "";
            for (sec, key, help) in &rows {
                if *sec != section {
                    if !section.is_empty() {
                        lines.push(Line::from(""));
                    }
                    lines.push(Line::from(Span::styled(*sec, th.title())));
                    section = sec;
                }
                let pad = usize::from(HELP_KEY_COLUMN);
                for (i, part) in textwrap::wrap(help, text_width).into_iter().enumerate() {
                    let key = if i == 0 { *key } else { "" };
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {key:<w$}", w = pad - 2), th.bold()),
                        Span::raw(part.into_owned()),
                    ]));
                }
            }
            lines.push(Line::from(""));
            lines.push(Line::from(Span::styled(
                "any key closes this help",
                th.dim(),
            )));
            let r = centered(area, width, lines.len() as u16 + 2);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(lines).block(
                    Block::bordered()
                        .title(format!(" Keys · {} ", app.tab.title()))
                        .title_style(th.title()),
                ),
                r,
            );
        }
        Some(Overlay::Confirm(ask)) => {
            let (title, body) = match ask {
                Ask::Inject { fault, target } => (
                    " Inject a fault? ".to_string(),
                    format!(
                        "{fault} on {target}: {}\n\ny: inject   n or Esc: cancel",
                        fault.description()
                    ),
                ),
                Ask::Quit {
                    faults,
                    stop_cluster,
                } => {
                    let mut what = Vec::new();
                    if *faults > 0 {
                        what.push(format!("heal the {faults} fault(s) in effect"));
                    }
                    if *stop_cluster {
                        what.push("stop the cluster this app started".to_string());
                    }
                    (
                        " Quit ".to_string(),
                        format!(
                            "Before quitting, {}?\n\ny: yes, then quit   n: just quit   Esc: stay",
                            what.join(" and ")
                        ),
                    )
                }
                Ask::StartCampaign { files, index } => (
                    " Run a campaign? ".to_string(),
                    format!(
                        "{} ({} of {})\nTrials run on slots of their own (instances 100 and up), never on this cluster.\n\ny: run   ←→: another file   n or Esc: cancel",
                        files.get(*index).map_or("?", String::as_str),
                        index + 1,
                        files.len()
                    ),
                ),
                Ask::StopCampaign { id, name } => (
                    " Stop the campaign? ".to_string(),
                    format!(
                        "#{id} {name}: its running trials stop, their faults are healed and its slots torn down; `--resume {id}` finishes it later.\n\ny: stop   n or Esc: keep it running"
                    ),
                ),
            };
            let r = centered(area, 64, 7);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(body)
                    .wrap(Wrap { trim: false })
                    .block(Block::bordered().title(title).title_style(th.title())),
                r,
            );
        }
        Some(Overlay::Input {
            purpose,
            area: text,
        }) => {
            let r = centered(area, 76, 5);
            f.render_widget(Clear, r);
            let block = Block::bordered()
                .title(purpose.title())
                .title_style(th.title())
                .title_bottom(" Enter: send   Esc: cancel ");
            let inner = block.inner(r);
            f.render_widget(block, r);
            f.render_widget(&**text, inner);
        }
        Some(Overlay::Fatal { title, body }) => {
            let r = centered(area, 90, 16);
            f.render_widget(Clear, r);
            f.render_widget(
                Paragraph::new(body.as_str())
                    .wrap(Wrap { trim: false })
                    .block(
                        Block::bordered()
                            .title(title.as_str())
                            .title_style(th.bad())
                            .border_style(th.bad()),
                    ),
                r,
            );
        }
    }
}

pub fn too_small(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let text = vec![
        Line::from(Span::styled("Terminal too small", th.bad())),
        Line::from(format!(
            "{}×{} — Operator needs at least 80×24.",
            area.width, area.height
        )),
        Line::from(Span::styled(
            "Make the window larger, or press q to quit.",
            th.dim(),
        )),
    ];
    let r = centered(area, area.width.min(60), 3);
    f.render_widget(
        Paragraph::new(text).alignment(ratatui::layout::Alignment::Center),
        r,
    );
}
