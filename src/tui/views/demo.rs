//! What really happened in the demo's current step (the ticket, its time to detect, the
//! commands, the time to resolve), under the step's words.

use ratatui::text::{Line, Span};

use crate::clock::Timestamp;
use crate::tickets::{Resolution, Status};
use crate::tui::app::App;
use crate::tui::demo::Demo;
use crate::tui::session_view::{CardStatus, Item};

fn ms(a: Timestamp, b: Timestamp) -> i64 {
    (b - a).num_milliseconds()
}

/// What really happened in the current step, in a few lines.
pub(super) fn facts(app: &App, demo: &Demo) -> Vec<Line<'static>> {
    let th = app.theme;
    let waiting = |s: &str| Line::from(Span::styled(format!("… {s}"), th.dim()));
    let ticket = demo.ticket(&app.tickets);
    let session = ticket.and_then(|t| app.sessions.iter().rev().find(|s| s.ticket_id == t.id));
    let commands: Vec<(String, &CardStatus, Option<i32>)> = session
        .map(|s| {
            s.items
                .iter()
                .filter_map(|i| match i {
                    Item::Tool(c) => c.command.clone().map(|cmd| (cmd, &c.status, c.exit_code)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    match demo.step {
        0 => {
            let Some(c) = &app.cycle else {
                return vec![waiting("waiting for the first observation")];
            };
            let ok = c.violations == 0;
            vec![Line::from(vec![
                Span::styled(
                    format!("{}/{} nodes up", c.nodes_up, c.nodes_total),
                    th.good(),
                ),
                Span::raw(" · "),
                if ok {
                    Span::styled("every invariant holds", th.good())
                } else {
                    Span::styled(format!("{} violation(s)", c.violations), th.warn())
                },
            ])]
        }
        1 => match app.load.back() {
            Some(s) => {
                let refused = if s.sent > 0 {
                    100.0 * s.refused as f64 / s.sent as f64
                } else {
                    0.0
                };
                vec![Line::from(format!(
                    "{} requests in the last second · p99 {:.1} ms · {:.0}% {} · {} failed",
                    s.sent, s.p99_ms, refused, demo.script.refused, s.failed
                ))]
            }
            None => vec![waiting("starting the load")],
        },
        2 => match &demo.fault {
            Some(f) => vec![Line::from(vec![
                Span::styled(format!("killed {}", f.target), th.bad()),
                Span::raw(format!(
                    " at {} (fault #{})",
                    f.injected_at.format("%H:%M:%S%.3f"),
                    f.id
                )),
            ])],
            None => vec![waiting("killing a node")],
        },
        3 => match (ticket, &demo.fault) {
            (Some(t), Some(f)) => {
                let when = demo.opened_at.map_or(String::new(), |o| {
                    format!(" {} ms after the kill", ms(f.injected_at, o))
                });
                vec![Line::from(vec![
                    Span::styled(
                        format!("ticket #{} {} {}", t.id, t.invariant, t.entity),
                        th.bad(),
                    ),
                    Span::raw(format!(" opened{when}")),
                ])]
            }
            _ => vec![waiting("waiting for the monitor's next look")],
        },
        4 => match session {
            Some(s) => {
                let mut lines = vec![Line::from(format!(
                    "session {} ({}) · {} commands so far",
                    s.id,
                    s.label,
                    commands.len()
                ))];
                lines.extend(
                    commands
                        .iter()
                        .take(3)
                        .map(|(c, _, _)| Line::from(format!("  $ {c}"))),
                );
                lines
            }
            None => vec![waiting("waiting for the agent to claim the ticket")],
        },
        5 => {
            let repair = commands.iter().find(|(c, _, _)| {
                c.contains("start") || c.contains("resume") || c.contains("restart")
            });
            let up = app
                .cycle
                .as_ref()
                .and_then(|c| c.snapshot.as_ref())
                .zip(demo.fault.as_ref())
                .and_then(|(s, f)| s.observation.nodes.iter().find(|n| n.name == f.target))
                .is_some_and(|n| n.state == crate::subjects::NodeState::Up);
            match repair {
                Some((c, status, exit)) => vec![Line::from(format!(
                    "repair: $ {c} ({}) · {}",
                    match (status, exit) {
                        (CardStatus::Done, Some(code)) => format!("exit {code}"),
                        (CardStatus::Asked, _) => "waiting for a person".into(),
                        _ => "running".into(),
                    },
                    if up {
                        "the node is up again"
                    } else {
                        "the node is not up yet"
                    }
                ))],
                None => vec![waiting("waiting for the agent's repair")],
            }
        }
        _ => match (ticket, &demo.fault) {
            (Some(t), Some(f)) if t.status == Status::Resolved => {
                let how = t.resolution.map_or("resolved", Resolution::as_str);
                let took = demo
                    .resolved_at
                    .or(t.resolved_at)
                    .map_or(String::new(), |r| {
                        format!(
                            " {:.1} s after the kill",
                            ms(f.injected_at, r) as f64 / 1000.0
                        )
                    });
                let mut lines = vec![Line::from(vec![
                    Span::styled(format!("ticket #{} resolved ({how})", t.id), th.good()),
                    Span::raw(took),
                ])];
                if let Some(c) = &app.cycle {
                    lines.push(Line::from(format!(
                        "{}/{} nodes up · {} violation(s)",
                        c.nodes_up, c.nodes_total, c.violations
                    )));
                }
                lines.push(Line::from(Span::styled(
                    "Press Space to run the demo again, q to quit.",
                    th.bold(),
                )));
                lines
            }
            _ => vec![waiting("waiting for the monitor to confirm the fix")],
        },
    }
}
