//! The Campaigns tab: the campaigns in the DB (running ones first), the selected one live —
//! progress, each slot's trial and step, the verdicts so far and the win rate with its
//! interval — its trials, and a trial's timeline beside its agent's session.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState, Wrap};

use super::agent::draw_transcript;
use crate::eval::stats;
use crate::store::eval::{CampaignStatus, TrialRow, TrialStatus, Verdict};
use crate::tui::app::{App, TrialTimeline};
use crate::tui::theme::Theme;

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    if let Some(t) = &app.campaigns.timeline {
        draw_timeline(f, app, t, area);
        return;
    }
    let c = &app.campaigns;
    let list_h = (c.list.len() as u16 + 3).clamp(4, area.height / 3);
    let [list, live, trials] = Layout::vertical([
        Constraint::Length(list_h),
        Constraint::Length(4),
        Constraint::Min(4),
    ])
    .areas(area);
    draw_list(f, app, list);
    draw_live(f, app, live);
    draw_trials(f, app, trials);
}

/// The agents' wins and counted trials (invalid and unfinished ones left out, and baseline
/// and control trials, which answer other questions).
fn wins(trials: &[TrialRow]) -> (u64, u64) {
    let counted = trials
        .iter()
        .filter(|t| t.won.is_some() && !t.baseline && !t.control);
    let n = counted.clone().count() as u64;
    (counted.filter(|t| t.won == Some(true)).count() as u64, n)
}

fn win_rate(trials: &[TrialRow]) -> String {
    let (w, n) = wins(trials);
    match stats::wilson(w, n) {
        Some((lo, hi)) => format!(
            "{w}/{n} {:.0}% ({:.0}–{:.0}%)",
            w as f64 * 100.0 / n as f64,
            lo * 100.0,
            hi * 100.0
        ),
        None => "-".into(),
    }
}

fn status_style(th: Theme, s: CampaignStatus) -> ratatui::style::Style {
    match s {
        CampaignStatus::Running => th.warn(),
        CampaignStatus::Finished => th.good(),
        CampaignStatus::Interrupted => th.bad(),
    }
}

fn draw_list(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let c = &app.campaigns;
    let block = Block::bordered()
        .title(" Campaigns (r runs one) ")
        .title_style(th.title());
    if c.list.is_empty() {
        f.render_widget(
            Paragraph::new(Span::styled(
                "No campaign yet. r runs one from campaigns/ (smoke.yaml takes a few minutes), or `operator eval run campaign FILE` in another terminal.",
                th.dim(),
            ))
            .wrap(Wrap { trim: true })
            .block(block),
            area,
        );
        return;
    }
    let rows = c.list.iter().map(|r| {
        let trials = c.trials.get(&r.id).map_or(&[][..], Vec::as_slice);
        Row::new(vec![
            Cell::from(format!("#{}", r.id)),
            Cell::from(r.name.clone()),
            Cell::from(r.status.as_str()).style(status_style(th, r.status)),
            Cell::from(format!("{}/{}", r.done, r.trials)),
            Cell::from(win_rate(trials)),
            Cell::from(super::ago(app, r.started_at)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Min(12),
            Constraint::Length(12),
            Constraint::Length(8),
            Constraint::Length(22),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new([
            "id",
            "name",
            "status",
            "trials",
            "agent wins (95% CI)",
            "started",
        ])
        .style(th.dim()),
    )
    .row_highlight_style(if c.trial_sel.is_none() {
        th.selected()
    } else {
        th.dim()
    })
    .block(block);
    let mut state = TableState::default().with_selected(Some(c.sel));
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_live(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let c = &app.campaigns;
    let block = Block::bordered().title(" Now ").title_style(th.title());
    let Some(r) = c.selected() else {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    };
    let trials = c.selected_trials();
    let mut verdicts: Vec<(Verdict, usize)> = Verdict::ALL
        .iter()
        .map(|v| (*v, trials.iter().filter(|t| t.verdict == Some(*v)).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    verdicts.sort_by_key(|(v, _)| *v);
    let mut spans = vec![Span::raw(format!(" {} of {} done", r.done, r.trials))];
    for (v, n) in verdicts {
        let style = match v {
            Verdict::Resolved | Verdict::Clean => th.good(),
            Verdict::Invalid => th.dim(),
            _ => th.bad(),
        };
        spans.push(Span::raw(" · "));
        spans.push(Span::styled(format!("{} {n}", v.as_str()), style));
    }
    if r.stop_requested && r.status == CampaignStatus::Running {
        spans.push(Span::styled(" · stopping…", th.warn()));
    }
    let running: Vec<String> = trials
        .iter()
        .filter(|t| t.status == TrialStatus::Running)
        .map(|t| {
            format!(
                "slot {}: trial {} {} {} — {}",
                t.slot.map_or("?".into(), |s| s.to_string()),
                t.id,
                t.fault.as_deref().unwrap_or("control"),
                t.variant,
                t.step.as_deref().unwrap_or("starting")
            )
        })
        .collect();
    let second = if running.is_empty() {
        Line::from(Span::styled(
            if r.note.is_empty() {
                format!(" {}", r.status.as_str())
            } else {
                format!(" {}", r.note)
            },
            th.dim(),
        ))
    } else {
        Line::from(format!(" {}", running.join(" · ")))
    };
    f.render_widget(
        Paragraph::new(vec![Line::from(spans), second]).block(block),
        area,
    );
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |m| crate::clock::short_ms(m as f64))
}

fn verdict_cell(th: Theme, t: &TrialRow) -> Cell<'static> {
    match (t.status, t.verdict) {
        (TrialStatus::Done, Some(v)) => {
            let style = match t.won {
                Some(true) => th.good(),
                Some(false) => th.bad(),
                None => th.dim(),
            };
            Cell::from(v.as_str()).style(style)
        }
        (TrialStatus::Running, _) => {
            Cell::from(t.step.clone().unwrap_or_else(|| "running".into())).style(th.warn())
        }
        _ => Cell::from("pending").style(th.dim()),
    }
}

fn draw_trials(f: &mut Frame, app: &App, area: Rect) {
    let th = app.theme;
    let c = &app.campaigns;
    let trials = c.selected_trials();
    let block = Block::bordered()
        .title(match c.trial_sel {
            Some(_) => " Trials (Enter opens one · Esc back) ",
            None => " Trials (Enter to choose one) ",
        })
        .title_style(th.title());
    if trials.is_empty() {
        f.render_widget(Paragraph::new("").block(block), area);
        return;
    }
    let rows = trials.iter().map(|t| {
        Row::new(vec![
            Cell::from(format!("{}", t.id)),
            Cell::from(t.fault.clone().unwrap_or_else(|| "control".into())),
            Cell::from(t.target.clone().unwrap_or_default()),
            Cell::from(if t.baseline {
                "no agent".to_string()
            } else {
                t.variant.clone()
            }),
            verdict_cell(th, t),
            Cell::from(secs(t.ttd_ms)),
            Cell::from(secs(t.ttr_ms)),
            Cell::from(t.metrics.commands.to_string()),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Length(5),
            Constraint::Length(17),
            Constraint::Length(14),
            Constraint::Min(10),
            Constraint::Length(12),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(5),
        ],
    )
    .header(
        Row::new([
            "trial", "fault", "target", "agent", "verdict", "detect", "resolve", "cmds",
        ])
        .style(th.dim()),
    )
    .row_highlight_style(th.selected())
    .block(block);
    let mut state = TableState::default().with_selected(c.trial_sel);
    f.render_stateful_widget(table, area, &mut state);
}

fn draw_timeline(f: &mut Frame, app: &App, t: &TrialTimeline, area: Rect) {
    let th = app.theme;
    let [steps, session] = if area.width >= 120 {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    } else {
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area)
    };
    let r = &t.trial;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                format!(
                    "{} {}",
                    r.fault.as_deref().unwrap_or("control"),
                    r.target.as_deref().unwrap_or("")
                ),
                th.title(),
            ),
            Span::raw(format!(
                " · {}{}",
                r.variant,
                if r.baseline { " (no agent)" } else { "" }
            )),
        ]),
        Line::from(vec![
            Span::raw("verdict "),
            match r.verdict {
                Some(v) => Span::styled(
                    v.as_str(),
                    if r.won == Some(true) {
                        th.good()
                    } else {
                        th.bad()
                    },
                ),
                None => Span::styled(r.step.clone().unwrap_or_default(), th.warn()),
            },
            Span::raw(format!(
                " · detect {} · resolve {} · {} commands",
                secs(r.ttd_ms),
                secs(r.ttr_ms),
                r.metrics.commands
            )),
        ]),
    ];
    if let Some(reason) = &r.reason {
        lines.push(Line::from(Span::styled(reason.clone(), th.dim())));
    }
    lines.push(Line::from(""));
    let start = t.events.first().map(|e| e.at);
    for e in t.events.iter().filter(|e| e.attempt == r.attempt) {
        let rel = start.map_or(0.0, |s| (e.at - s).num_milliseconds() as f64 / 1000.0);
        lines.push(Line::from(vec![
            Span::styled(format!("{rel:>6.1}s "), th.dim()),
            Span::styled(format!("{:<8}", e.step), th.title()),
            Span::raw(e.detail.clone()),
        ]));
    }
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .title(format!(" Trial {} · Esc back ", r.id))
                .title_style(th.title()),
        ),
        steps,
    );
    match &t.session {
        Some(s) => draw_transcript(f, app, s, session, None),
        None => f.render_widget(
            Paragraph::new(Span::styled(
                if r.baseline {
                    "a baseline trial: no agent"
                } else {
                    "no agent session in this trial"
                },
                th.dim(),
            ))
            .block(Block::bordered().title(" Session ").title_style(th.title())),
            session,
        ),
    }
}
