//! `update`: the only place the app's state changes. Keys become actions through the key
//! maps; service messages become state; anything that touches the world is an `Effect`.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, MouseButton, MouseEvent, MouseEventKind};
use ratatui_textarea::TextArea;

use super::app::{
    App, Ask, ChaosPane, InputPurpose, LOAD_KEPT, Level, Overlay, PendingApproval, Tab,
    TicketDetail,
};
use super::keys::{self, Action};
use super::msg::{Effect, Msg};
use super::session_view::{Item, SessionView};
use super::views;
use crate::agent::approval::{Answer, Decision, default_prefix};
use crate::agent::llm::ModelEvent;
use crate::agent::session::AgentEvent;
use crate::tickets::ChangeKind;

pub fn update(app: &mut App, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(k) if k.kind != KeyEventKind::Release => on_key(app, k),
        Msg::Key(_) => vec![],
        Msg::Paste(text) => {
            if let Some(Overlay::Input { area, .. }) = &mut app.overlay {
                // One line: a pasted newline would otherwise submit half a command.
                area.insert_str(text.replace(['\r', '\n'], " "));
            }
            vec![]
        }
        Msg::Mouse(m) => on_mouse(app, m),
        Msg::Resize(w, h) => {
            app.size = (w, h);
            vec![]
        }
        Msg::Tick => {
            app.now = crate::clock::now();
            vec![]
        }
        Msg::Cycle(report) => on_cycle(app, report),
        Msg::CycleFailed(e) => {
            app.push_log(Level::Error, format!("monitor: {e}"));
            vec![]
        }
        Msg::Db {
            tickets,
            faults,
            sessions,
        } => on_db(app, tickets, faults, sessions),
        Msg::Campaigns {
            list,
            trials,
            files,
        } => on_campaigns(app, list, trials, files),
        Msg::Trial(t) => {
            app.campaigns.timeline = Some(*t);
            vec![]
        }
        Msg::Entries { session, entries } => {
            if let Some(s) = app.sessions.iter_mut().find(|s| s.id == session) {
                for e in &entries {
                    s.apply(e);
                }
            }
            vec![]
        }
        Msg::TicketDetail {
            ticket_id,
            events,
            sessions,
        } => {
            let demo_ticket = app
                .demo
                .as_ref()
                .and_then(|d| d.ticket(&app.tickets))
                .map(|t| t.id);
            if let Some(d) = app.demo.as_mut() {
                if demo_ticket == Some(ticket_id) {
                    let after = d.fault.as_ref().map(|f| f.injected_at);
                    // The latest of `kinds` since the demo's fault.
                    let latest = |kinds: &[&str]| {
                        events
                            .iter()
                            .rev()
                            .filter(|e| kinds.contains(&e.kind.as_str()))
                            .find(|e| after.is_none_or(|a| e.at >= a))
                            .map(|e| e.at)
                    };
                    let opened = latest(&["opened", "reopened"]);
                    let resolved = latest(&["resolved"]);
                    d.opened_at = opened.or(d.opened_at);
                    d.resolved_at = resolved.or(d.resolved_at);
                }
            }
            app.detail = Some(TicketDetail {
                ticket_id,
                events,
                sessions,
            });
            vec![]
        }
        Msg::Agent(ev) => on_agent(app, ev),
        Msg::Approval(req, reply) => {
            app.push_log(
                Level::Warn,
                format!(
                    "ticket #{}: `{}` waits for a person ({})",
                    req.ticket_id, req.command, req.class
                ),
            );
            app.approvals.push_back(PendingApproval {
                req,
                reply: Some(reply),
            });
            vec![]
        }
        Msg::Load(s) => {
            if app.load.len() == LOAD_KEPT {
                app.load.pop_front();
            }
            app.load.push_back(s);
            app.load_running = true;
            vec![]
        }
        Msg::LoadStopped => {
            app.load_running = false;
            vec![]
        }
        Msg::Chaos(r) => {
            match r {
                Ok(text) => {
                    app.push_log(Level::Warn, format!("chaos: {text}"));
                    app.flash = Some((Level::Info, text));
                }
                Err(e) => {
                    app.push_log(Level::Error, format!("chaos: {e}"));
                    app.flash = Some((Level::Error, e));
                }
            }
            vec![]
        }
        Msg::DemoFault(f) => {
            if let Some(d) = app.demo.as_mut() {
                d.fault = Some(*f);
                d.opened_at = None;
                d.resolved_at = None;
            }
            vec![]
        }
        Msg::ClusterUp(r) => {
            match r {
                Ok(text) => {
                    app.cluster_note = None;
                    app.push_log(Level::Good, text);
                }
                Err(e) => {
                    app.cluster_note = Some("the cluster could not start".into());
                    app.overlay = Some(Overlay::Fatal {
                        title: " The cluster could not start ".into(),
                        body: format!("{e}\n\nr: try again   q: quit"),
                    });
                }
            }
            vec![]
        }
        Msg::Unsandboxed(why) => {
            app.push_log(
                Level::Warn,
                format!("agent: commands run UNSANDBOXED: {why}"),
            );
            app.unsandboxed = Some(why);
            vec![]
        }
        Msg::AgentDown(why) => {
            app.push_log(Level::Error, format!("agent: {why}"));
            app.agent_label = format!("no agent: {why}");
            vec![]
        }
        Msg::Terminate | Msg::Exit => {
            app.exit = true;
            vec![]
        }
    }
}

fn on_key(app: &mut App, k: KeyEvent) -> Vec<Effect> {
    match app.overlay.take() {
        Some(Overlay::Input { purpose, mut area }) => {
            match k.code {
                KeyCode::Esc => {}
                KeyCode::Enter => {
                    return submit(app, purpose, area.lines().join(" ").trim().to_string());
                }
                _ => {
                    area.input(k);
                    app.overlay = Some(Overlay::Input { purpose, area });
                }
            }
            vec![]
        }
        Some(Overlay::Confirm(Ask::StartCampaign { files, index }))
            if matches!(k.code, KeyCode::Left | KeyCode::Right) && !files.is_empty() =>
        {
            let n = files.len();
            let index = if k.code == KeyCode::Left {
                (index + n - 1) % n
            } else {
                (index + 1) % n
            };
            app.overlay = Some(Overlay::Confirm(Ask::StartCampaign { files, index }));
            vec![]
        }
        Some(Overlay::Confirm(ask)) => match k.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => confirmed(app, ask, true),
            KeyCode::Char('n') | KeyCode::Char('N') => confirmed(app, ask, false),
            KeyCode::Esc => vec![],
            _ => {
                app.overlay = Some(Overlay::Confirm(ask));
                vec![]
            }
        },
        Some(Overlay::Help) => vec![],
        Some(Overlay::Fatal { title, body }) => match k.code {
            _ if keys::quits_a_fatal_screen(&k) => quit(app, true),
            KeyCode::Char('r') if body.contains("r: try again") => {
                app.push_log(Level::Info, "starting the cluster again");
                vec![Effect::RetryClusterUp]
            }
            _ => {
                app.overlay = Some(Overlay::Fatal { title, body });
                vec![]
            }
        },
        None => match keys::action(app.tab, keys::Context::of(app), &k) {
            Some(a) => act(app, a),
            None => vec![],
        },
    }
}

fn input(purpose: InputPurpose, text: &str) -> Overlay {
    let mut area = TextArea::new(vec![text.to_string()]);
    area.move_cursor(ratatui_textarea::CursorMove::End);
    Overlay::Input {
        purpose,
        area: Box::new(area),
    }
}

fn person() -> String {
    format!(
        "person:{}",
        std::env::var("USER").unwrap_or_else(|_| "someone".into())
    )
}

/// Answers the oldest waiting approval.
fn answer(app: &mut App, decision: Decision) -> Vec<Effect> {
    let Some(mut p) = app.approvals.pop_front() else {
        return vec![];
    };
    let what = match &decision {
        Decision::Approve => "approved".to_string(),
        Decision::Veto { reason } => format!("vetoed ({reason})"),
        Decision::Edit { command } => format!("edited to `{command}`"),
        Decision::AlwaysAllow { prefix } => {
            format!("approved; `{prefix}` always allowed from now on")
        }
    };
    app.push_log(Level::Info, format!("`{}` {what}", p.req.command));
    match p.reply.take() {
        Some(reply) => vec![Effect::Answer {
            reply,
            answer: Answer {
                decision,
                by: person(),
            },
        }],
        None => vec![],
    }
}

fn submit(app: &mut App, purpose: InputPurpose, text: String) -> Vec<Effect> {
    match purpose {
        InputPurpose::VetoReason => answer(
            app,
            Decision::Veto {
                reason: if text.is_empty() {
                    "vetoed".into()
                } else {
                    text
                },
            },
        ),
        InputPurpose::EditCommand if text.is_empty() => vec![],
        InputPurpose::EditCommand => answer(app, Decision::Edit { command: text }),
        InputPurpose::AllowPrefix if text.is_empty() => vec![],
        InputPurpose::AllowPrefix => answer(app, Decision::AlwaysAllow { prefix: text }),
        InputPurpose::Guidance if text.is_empty() => vec![],
        InputPurpose::Guidance => {
            app.push_log(Level::Info, format!("guidance for the agent: {text}"));
            vec![Effect::Guidance(text)]
        }
    }
}

fn confirmed(app: &mut App, ask: Ask, yes: bool) -> Vec<Effect> {
    match ask {
        Ask::Inject { fault, target } if yes => vec![Effect::Inject { fault, target }],
        Ask::Inject { .. } => vec![],
        Ask::StartCampaign { files, index } if yes => match files.get(index) {
            Some(f) => {
                app.push_log(Level::Info, format!("starting campaign {f}"));
                vec![Effect::StartCampaign(f.clone())]
            }
            None => vec![],
        },
        Ask::StopCampaign { id, name } if yes => {
            app.push_log(
                Level::Info,
                format!("asked campaign #{id} {name} to stop: its harness heals and tears down"),
            );
            vec![Effect::StopCampaign(id)]
        }
        Ask::StartCampaign { .. } | Ask::StopCampaign { .. } => vec![],
        Ask::Quit {
            faults,
            stop_cluster,
        } => {
            app.quitting = true;
            app.flash = Some((
                Level::Info,
                if yes {
                    "quitting: healing faults and stopping the cluster…".into()
                } else {
                    "quitting…".into()
                },
            ));
            vec![Effect::Quit {
                heal: yes && faults > 0,
                stop_cluster: yes && stop_cluster,
            }]
        }
    }
}

fn quit(app: &mut App, force: bool) -> Vec<Effect> {
    let faults = app.live_faults();
    if force || app.quitting {
        app.quitting = true;
        return vec![Effect::Quit {
            heal: false,
            stop_cluster: false,
        }];
    }
    if faults > 0 || app.started_cluster {
        app.overlay = Some(Overlay::Confirm(Ask::Quit {
            faults,
            stop_cluster: app.started_cluster,
        }));
        return vec![];
    }
    app.quitting = true;
    vec![Effect::Quit {
        heal: false,
        stop_cluster: false,
    }]
}

fn act(app: &mut App, a: Action) -> Vec<Effect> {
    app.flash = None;
    match a {
        Action::GoTo(t) => app.tab = t,
        Action::NextTab => app.tab = Tab::ALL[(app.tab.index() + 1) % Tab::ALL.len()],
        Action::PrevTab => {
            app.tab = Tab::ALL[(app.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
        }
        Action::Help => app.overlay = Some(Overlay::Help),
        Action::Quit => return quit(app, false),
        Action::Back if app.tab == Tab::Campaigns => {
            let c = &mut app.campaigns;
            if c.timeline.is_some() {
                c.timeline = None;
            } else {
                c.trial_sel = None;
            }
        }
        Action::Back => {
            app.session_focus = None;
            app.item_sel = None;
        }
        Action::DemoNext => return demo_advance(app),
        Action::DemoAgain => {
            if app.demo.as_ref().is_some_and(|d| d.finished()) {
                return demo_again(app);
            }
        }
        _ => {
            return match app.tab {
                Tab::Cluster => cluster_action(app, a),
                Tab::Tickets => tickets_action(app, a),
                Tab::Agent => agent_action(app, a),
                Tab::Chaos => chaos_action(app, a),
                Tab::Campaigns => campaigns_action(app, a),
            };
        }
    }
    vec![]
}

/// Moves to the next step: the tab to show and what to start.
fn demo_advance(app: &mut App) -> Vec<Effect> {
    let Some(demo) = app.demo.as_mut() else {
        return vec![];
    };
    if demo.finished() {
        return vec![];
    }
    demo.step += 1;
    let step = demo.step;
    let (tab, effects) = match step {
        1 => (Tab::Cluster, vec![Effect::StartLoad { rate: 50 }]),
        2 => (Tab::Chaos, vec![Effect::DemoInject]),
        3 => (Tab::Tickets, vec![]),
        4 | 5 => (Tab::Agent, vec![]),
        _ => (Tab::Tickets, vec![]),
    };
    app.tab = tab;
    effects
}

/// Back to the first step, healing what the last run left.
fn demo_again(app: &mut App) -> Vec<Effect> {
    let Some(demo) = app.demo.as_mut() else {
        return vec![];
    };
    *demo = demo.again();
    app.tab = Tab::Cluster;
    vec![Effect::StopLoad, Effect::HealAll]
}

fn cluster_action(app: &mut App, a: Action) -> Vec<Effect> {
    match a {
        Action::ToggleLoad if app.load_running => {
            app.load_running = false;
            vec![Effect::StopLoad]
        }
        Action::ToggleLoad => vec![Effect::StartLoad { rate: 50 }],
        Action::Up => {
            app.log_scroll = (app.log_scroll + 1).min(app.log.len().saturating_sub(1));
            vec![]
        }
        Action::Down => {
            app.log_scroll = app.log_scroll.saturating_sub(1);
            vec![]
        }
        _ => vec![],
    }
}

fn moved(sel: usize, len: usize, a: Action, page: usize) -> usize {
    if len == 0 {
        return 0;
    }
    match a {
        Action::Up => sel.saturating_sub(1),
        Action::Down => (sel + 1).min(len - 1),
        Action::PageUp => sel.saturating_sub(page),
        Action::PageDown => (sel + page).min(len - 1),
        Action::Top => 0,
        Action::Bottom => len - 1,
        _ => sel.min(len - 1),
    }
}

fn campaigns_action(app: &mut App, a: Action) -> Vec<Effect> {
    let page = usize::from(app.size.1.saturating_sub(12)).max(1);
    let c = &mut app.campaigns;
    match a {
        Action::StartCampaign => {
            if c.files.is_empty() {
                app.flash = Some((
                    Level::Warn,
                    "no campaign files in ./campaigns (run the app from the project's folder)"
                        .into(),
                ));
                return vec![];
            }
            let index = c
                .files
                .iter()
                .position(|f| f.ends_with("smoke.yaml"))
                .unwrap_or(0);
            app.overlay = Some(Overlay::Confirm(Ask::StartCampaign {
                files: c.files.clone(),
                index,
            }));
        }
        Action::StopCampaign => {
            // The selected campaign if it runs, else the first running one.
            let running = c
                .selected()
                .filter(|r| r.status == crate::eval::CampaignStatus::Running)
                .or_else(|| {
                    c.list
                        .iter()
                        .find(|r| r.status == crate::eval::CampaignStatus::Running)
                });
            match running {
                Some(r) => {
                    app.overlay = Some(Overlay::Confirm(Ask::StopCampaign {
                        id: r.id,
                        name: r.name.clone(),
                    }))
                }
                None => app.flash = Some((Level::Info, "no campaign is running".into())),
            }
        }
        Action::Enter => match c.trial_sel {
            None if c.selected().is_some() => c.trial_sel = Some(0),
            Some(i) => {
                if let Some(t) = c.selected_trials().get(i) {
                    return vec![Effect::LoadTrial(t.id)];
                }
            }
            None => {}
        },
        _ if c.timeline.is_some() => {}
        _ => match c.trial_sel {
            Some(i) => c.trial_sel = Some(moved(i, c.selected_trials().len(), a, page)),
            None => c.sel = moved(c.sel, c.list.len(), a, page),
        },
    }
    vec![]
}

fn on_campaigns(
    app: &mut App,
    list: Vec<crate::eval::CampaignRow>,
    trials: Vec<(i64, Vec<crate::eval::TrialRow>)>,
    files: Vec<String>,
) -> Vec<Effect> {
    let c = &mut app.campaigns;
    let selected = c.selected().map(|r| r.id);
    c.list = list;
    c.trials = trials.into_iter().collect();
    c.files = files;
    // The same campaign stays selected when a new one arrives above it.
    if let Some(i) = selected.and_then(|id| c.list.iter().position(|r| r.id == id)) {
        c.sel = i;
    }
    c.sel = c.sel.min(c.list.len().saturating_sub(1));
    let n = c.selected_trials().len();
    if let Some(i) = c.trial_sel {
        c.trial_sel = (n > 0).then(|| i.min(n - 1));
    }
    // An open timeline follows its trial while it runs.
    match &c.timeline {
        Some(t) if t.trial.status != crate::store::eval::TrialStatus::Done => {
            vec![Effect::LoadTrial(t.trial.id)]
        }
        _ => vec![],
    }
}

fn tickets_action(app: &mut App, a: Action) -> Vec<Effect> {
    let before = app.selected_ticket().map(|t| t.id);
    match a {
        Action::Filter => {
            app.filter = app.filter.next();
            app.ticket_sel = 0;
        }
        _ => {
            let len = app.visible_tickets().len();
            let page = usize::from(app.size.1.saturating_sub(8)).max(1);
            app.ticket_sel = moved(app.ticket_sel, len, a, page);
        }
    }
    match app.selected_ticket().map(|t| t.id) {
        Some(id) if Some(id) != before || app.detail.as_ref().is_none_or(|d| d.ticket_id != id) => {
            vec![Effect::LoadTicketDetail(id)]
        }
        None => {
            app.detail = None;
            vec![]
        }
        _ => vec![],
    }
}

fn agent_action(app: &mut App, a: Action) -> Vec<Effect> {
    let waiting = app.approvals.front().map(|p| p.req.command.clone());
    match a {
        Action::Approve | Action::Veto | Action::Edit | Action::AlwaysAllow
            if waiting.is_none() =>
        {
            app.flash = Some((Level::Warn, "no command is waiting for approval".into()));
        }
        Action::Approve => return answer(app, Decision::Approve),
        Action::Veto => app.overlay = Some(input(InputPurpose::VetoReason, "")),
        Action::Edit => {
            app.overlay = Some(input(
                InputPurpose::EditCommand,
                &waiting.unwrap_or_default(),
            ))
        }
        Action::AlwaysAllow => {
            app.overlay = Some(input(
                InputPurpose::AllowPrefix,
                &default_prefix(&waiting.unwrap_or_default()),
            ))
        }
        Action::Guidance => app.overlay = Some(input(InputPurpose::Guidance, "")),
        Action::Left | Action::Right => {
            let ids: Vec<i64> = app.sessions.iter().map(|s| s.id).collect();
            if let Some(cur) = app.shown_session().map(|s| s.id) {
                let i = ids.iter().position(|id| *id == cur).unwrap_or(0);
                let j = if a == Action::Left {
                    i.saturating_sub(1)
                } else {
                    (i + 1).min(ids.len().saturating_sub(1))
                };
                app.session_focus = if j + 1 == ids.len() {
                    None
                } else {
                    Some(ids[j])
                };
                app.item_sel = None;
            }
        }
        Action::Bottom => {
            app.session_focus = None;
            app.item_sel = None;
        }
        Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top => {
            let len = app.shown_session().map_or(0, |s| s.items.len());
            let cur = app.item_sel.unwrap_or(len.saturating_sub(1));
            let next = moved(cur, len, a, 5);
            app.item_sel = if len > 0 && next + 1 == len && a == Action::Down {
                None
            } else {
                Some(next)
            };
        }
        Action::Enter => {
            let sel = app.item_sel;
            if let Some(s) = app.shown_session_mut() {
                let i = sel.unwrap_or(s.items.len().saturating_sub(1));
                if let Some(Item::Tool(c)) = s.items.get_mut(i) {
                    c.expanded = !c.expanded;
                }
            }
        }
        _ => {}
    }
    vec![]
}

fn chaos_action(app: &mut App, a: Action) -> Vec<Effect> {
    let targets = app.targets();
    let live: Vec<i64> = app
        .faults
        .iter()
        .filter(|f| f.status.is_live())
        .map(|f| f.id)
        .collect();
    match a {
        Action::Left => {
            app.chaos_pane = match app.chaos_pane {
                ChaosPane::Faults | ChaosPane::Targets => ChaosPane::Faults,
                ChaosPane::Active => ChaosPane::Targets,
            }
        }
        Action::Right => {
            app.chaos_pane = match app.chaos_pane {
                ChaosPane::Faults => ChaosPane::Targets,
                _ => ChaosPane::Active,
            }
        }
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => match app.chaos_pane {
            ChaosPane::Faults => app.fault_sel = moved(app.fault_sel, app.catalogue.len(), a, 5),
            ChaosPane::Targets => app.target_sel = moved(app.target_sel, targets.len(), a, 5),
            ChaosPane::Active => app.active_sel = moved(app.active_sel, live.len(), a, 5),
        },
        Action::Inject => match targets.get(app.target_sel) {
            Some(target) => {
                let fault = app.catalogue[app.fault_sel.min(app.catalogue.len().saturating_sub(1))];
                app.overlay = Some(Overlay::Confirm(Ask::Inject {
                    fault,
                    target: target.clone(),
                }));
            }
            None => {
                app.flash = Some((
                    Level::Warn,
                    "no target yet: the cluster has not been observed".into(),
                ))
            }
        },
        Action::Heal => match live.get(app.active_sel) {
            Some(id) => return vec![Effect::Heal(*id)],
            None => app.flash = Some((Level::Warn, "no active fault to heal".into())),
        },
        Action::HealAll if live.is_empty() => {
            app.flash = Some((Level::Warn, "no active fault to heal".into()))
        }
        Action::HealAll => return vec![Effect::HealAll],
        _ => {}
    }
    vec![]
}

fn on_mouse(app: &mut App, m: MouseEvent) -> Vec<Effect> {
    if app.overlay.is_some() || app.too_small() {
        return vec![];
    }
    match m.kind {
        MouseEventKind::Down(MouseButton::Left) if m.row == 0 => {
            if let Some(t) = views::tab_at(m.column) {
                app.tab = t;
            }
            vec![]
        }
        MouseEventKind::ScrollUp => act(app, Action::Up),
        MouseEventKind::ScrollDown => act(app, Action::Down),
        _ => vec![],
    }
}

fn on_cycle(app: &mut App, report: Box<crate::monitor::CycleReport>) -> Vec<Effect> {
    for c in &report.changes {
        let (level, what) = match c.change {
            ChangeKind::Opened => (Level::Error, "opened".to_string()),
            ChangeKind::Reopened => (Level::Error, "reopened".to_string()),
            ChangeKind::Resolved(r) => (Level::Good, format!("resolved ({})", r.as_str())),
            ChangeKind::Cleared => (Level::Info, "cleared".to_string()),
            ChangeKind::SeenAgain => (Level::Warn, "seen again".to_string()),
        };
        app.push_log(
            level,
            format!(
                "ticket #{} {what}: {} {} — {}",
                c.ticket_id, c.invariant, c.entity, c.summary
            ),
        );
    }
    if let (Some(old), Some(err)) = (&app.cycle, &report.observation_error) {
        if old.observation_error.as_ref() != Some(err) {
            app.push_log(Level::Error, format!("cannot observe: {err}"));
        }
    }
    app.cycle = Some(report);
    vec![]
}

fn on_db(
    app: &mut App,
    tickets: Vec<crate::tickets::Ticket>,
    faults: Vec<crate::chaos::FaultRecord>,
    sessions: Vec<crate::agent::audit::Session>,
) -> Vec<Effect> {
    let selected = app.selected_ticket().map(|t| t.id);
    app.tickets = tickets;
    app.faults = faults;
    // Keep the same ticket selected when new ones arrive above it.
    if let Some(id) = selected {
        if let Some(i) = app.visible_tickets().iter().position(|t| t.id == id) {
            app.ticket_sel = i;
        }
    }
    app.ticket_sel = app
        .ticket_sel
        .min(app.visible_tickets().len().saturating_sub(1));
    for s in sessions.iter().rev() {
        match app.sessions.iter_mut().find(|v| v.id == s.id) {
            Some(v) if !v.live => {
                v.outcome = s.outcome.clone();
                v.reason = s.summary.clone();
                v.tokens = (s.input_tokens + s.output_tokens).max(0) as u64;
                v.cost_usd = Some(s.cost_usd);
            }
            Some(_) => {}
            None => {
                app.sessions.push(SessionView::from_session(s, false));
                app.sessions.sort_by_key(|v| v.id);
            }
        }
    }
    let mut effects = Vec::new();
    // The demo follows its ticket's history for the times it shows.
    if let Some(d) = &app.demo {
        if let Some(t) = d.ticket(&app.tickets) {
            let stale = (d.opened_at.is_none() && t.status != crate::tickets::Status::Resolved)
                || (d.resolved_at.is_none() && t.status == crate::tickets::Status::Resolved);
            if stale {
                effects.push(Effect::LoadTicketDetail(t.id));
            }
        }
    }
    // The detail pane follows the selected ticket's history as it grows.
    if let Some(id) = app
        .selected_ticket()
        .map(|t| t.id)
        .filter(|_| app.tab == Tab::Tickets)
    {
        effects.push(Effect::LoadTicketDetail(id));
    }
    effects
}

fn on_agent(app: &mut App, ev: AgentEvent) -> Vec<Effect> {
    match ev {
        AgentEvent::Started {
            session_id,
            ticket,
            incident_id,
            tickets,
        } => {
            if !app.sessions.iter().any(|s| s.id == session_id) {
                let mut view =
                    SessionView::new(session_id, ticket.id, app.agent_label.clone(), true);
                view.incident_id = Some(incident_id);
                app.sessions.push(view);
                app.sessions.sort_by_key(|v| v.id);
            } else if let Some(s) = app.sessions.iter_mut().find(|s| s.id == session_id) {
                s.live = true;
                s.incident_id = Some(incident_id);
            }
            let others = crate::agent::session::more_tickets(tickets);
            app.push_log(
                Level::Info,
                format!(
                    "agent took incident #{incident_id}: ticket #{} ({} {}){others}",
                    ticket.id, ticket.invariant, ticket.entity
                ),
            );
        }
        AgentEvent::Model { session_id, event } => {
            if let Some(s) = app.sessions.iter_mut().find(|s| s.id == session_id) {
                match event {
                    ModelEvent::TextDelta { text } => s.streaming.push_str(&text),
                    ModelEvent::ThinkingDelta { thinking } => {
                        s.streaming_thinking.push_str(&thinking)
                    }
                    ModelEvent::Usage(u) => {
                        s.tokens = s.tokens.max(u.input_tokens + u.output_tokens)
                    }
                    ModelEvent::Retrying { attempt, reason } => {
                        app.push_log(Level::Warn, format!("model retry {attempt}: {reason}"));
                    }
                    _ => {}
                }
            }
        }
        AgentEvent::Step { session_id, entry } => {
            if let Some(s) = app.sessions.iter_mut().find(|s| s.id == session_id) {
                s.apply(&entry);
            }
        }
        AgentEvent::Ended {
            session_id,
            ticket_id,
            outcome,
            usage,
            cost_usd,
        } => {
            if let Some(s) = app.sessions.iter_mut().find(|s| s.id == session_id) {
                s.outcome = Some(outcome.label().into());
                s.reason = outcome.reason().map(str::to_string);
                s.tokens = usage.input_tokens + usage.output_tokens;
                s.cost_usd = cost_usd;
                s.streaming.clear();
                s.streaming_thinking.clear();
            }
            // Approvals of an ended session can no longer be answered.
            app.approvals.retain(|p| p.req.session_id != session_id);
            let level = if outcome.label() == "resolved" {
                Level::Good
            } else {
                Level::Warn
            };
            let why = outcome.reason().map_or(String::new(), |r| format!(": {r}"));
            app.push_log(
                level,
                format!(
                    "agent session {session_id} on ticket #{ticket_id}: {}{why}",
                    outcome.label()
                ),
            );
        }
    }
    vec![]
}
