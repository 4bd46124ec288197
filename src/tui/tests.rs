//! The app without a terminal: `update` from keys and messages to state and effects, and
//! every view as a snapshot on ratatui's TestBackend.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::{App, Ask, Filter, InputPurpose, Overlay, Tab};
use super::demo::Demo;
use super::fixtures::{self, Stage, at};
use super::msg::{Effect, Msg};
use super::update::update;
use super::views;
use crate::agent::approval::Decision;
use crate::chaos::FaultKind;
use crate::tickets::Status;

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        update(app, key(c));
    }
}

fn render(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(app.size.0, app.size.1)).unwrap();
    t.draw(|f| views::draw(f, app)).unwrap();
    t.backend().to_string()
}

// ---- update

#[test]
fn number_keys_and_tab_switch_tabs() {
    let mut a = fixtures::app(false, None);
    update(&mut a, key('3'));
    assert_eq!(a.tab, Tab::Agent);
    update(&mut a, code(KeyCode::Tab));
    assert_eq!(a.tab, Tab::Chaos);
    update(&mut a, code(KeyCode::Tab));
    assert_eq!(a.tab, Tab::Campaigns);
    update(&mut a, code(KeyCode::Tab));
    assert_eq!(a.tab, Tab::Cluster);
    update(&mut a, code(KeyCode::BackTab));
    assert_eq!(a.tab, Tab::Campaigns);
    update(&mut a, key('5'));
    assert_eq!(a.tab, Tab::Campaigns);
}

#[test]
fn approving_answers_the_oldest_waiting_command() {
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    a.tab = Tab::Agent;
    let fx = update(&mut a, key('y'));
    match fx.as_slice() {
        [Effect::Answer { .. }] => {}
        _ => panic!("expected one answer"),
    }
    assert!(a.approvals.is_empty());
    // Nothing waits now: y only says so.
    assert!(update(&mut a, key('y')).is_empty());
    assert!(a.flash.is_some());
}

fn answer_of(fx: Vec<Effect>) -> Decision {
    match fx.into_iter().next() {
        Some(Effect::Answer { answer, .. }) => answer.decision,
        _ => panic!("no answer"),
    }
}

#[test]
fn veto_takes_a_reason_typed_in_a_text_area() {
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    a.tab = Tab::Agent;
    update(&mut a, key('n'));
    assert!(matches!(
        a.overlay,
        Some(Overlay::Input {
            purpose: InputPurpose::VetoReason,
            ..
        })
    ));
    // Keys go to the text area, not to the tabs: `3`, `q` are text now.
    typed(&mut a, "read its log first, q3");
    assert_eq!(a.tab, Tab::Agent);
    assert!(!a.quitting);
    update(&mut a, code(KeyCode::Backspace));
    let d = answer_of(update(&mut a, code(KeyCode::Enter)));
    assert_eq!(
        d,
        Decision::Veto {
            reason: "read its log first, q".into()
        }
    );
    assert!(a.overlay.is_none());
}

#[test]
fn edit_starts_from_the_command_and_paste_stays_on_one_line() {
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    a.tab = Tab::Agent;
    update(&mut a, key('e'));
    for _ in 0.."ratelimiter-2".len() {
        update(&mut a, code(KeyCode::Backspace));
    }
    update(&mut a, Msg::Paste("ratelimiter-3\n".into()));
    let d = answer_of(update(&mut a, code(KeyCode::Enter)));
    assert_eq!(
        d,
        Decision::Edit {
            command: "operator node start ratelimiter-3".into()
        }
    );
}

#[test]
fn always_allow_offers_the_command_prefix_and_esc_backs_out() {
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    a.tab = Tab::Agent;
    update(&mut a, key('a'));
    update(&mut a, code(KeyCode::Esc));
    assert!(a.overlay.is_none());
    assert_eq!(a.approvals.len(), 1, "Esc answers nothing");
    update(&mut a, key('a'));
    let d = answer_of(update(&mut a, code(KeyCode::Enter)));
    assert_eq!(
        d,
        Decision::AlwaysAllow {
            prefix: "operator node start".into()
        }
    );
}

#[test]
fn guidance_is_sent_to_the_agent() {
    let mut a = fixtures::app(true, Some(Stage::Diagnosing));
    a.tab = Tab::Agent;
    update(&mut a, key('i'));
    typed(&mut a, "prefer a restart");
    match update(&mut a, code(KeyCode::Enter)).as_slice() {
        [Effect::Guidance(g)] => assert_eq!(g, "prefer a restart"),
        _ => panic!("no guidance effect"),
    }
}

#[test]
fn injecting_asks_first() {
    let mut a = fixtures::app(false, None);
    update(&mut a, key('4'));
    update(&mut a, code(KeyCode::Right));
    update(&mut a, code(KeyCode::Down));
    update(&mut a, code(KeyCode::Down));
    assert!(update(&mut a, key('i')).is_empty());
    assert!(
        matches!(&a.overlay, Some(Overlay::Confirm(Ask::Inject { fault: FaultKind::NodeKill, target })) if target == "ratelimiter-2")
    );
    // A stray key while the question is open does nothing.
    assert!(update(&mut a, key('1')).is_empty());
    assert_eq!(a.tab, Tab::Chaos);
    match update(&mut a, key('y')).as_slice() {
        [
            Effect::Inject {
                fault: FaultKind::NodeKill,
                target,
            },
        ] => assert_eq!(target, "ratelimiter-2"),
        _ => panic!("no inject"),
    }
}

#[test]
fn quitting_asks_about_faults_and_the_cluster_it_started() {
    let mut a = fixtures::big(3, 10);
    a.started_cluster = true;
    assert!(update(&mut a, key('q')).is_empty());
    assert!(matches!(
        a.overlay,
        Some(Overlay::Confirm(Ask::Quit {
            faults: 1,
            stop_cluster: true
        }))
    ));
    match update(&mut a, key('y')).as_slice() {
        [
            Effect::Quit {
                heal: true,
                stop_cluster: true,
            },
        ] => {}
        _ => panic!("no quit"),
    }
    let mut a = fixtures::app(false, None);
    match update(&mut a, key('q')).as_slice() {
        [
            Effect::Quit {
                heal: false,
                stop_cluster: false,
            },
        ] => {}
        _ => panic!("nothing to ask, so it quits"),
    }
    let mut a = fixtures::app(false, None);
    let ctrl_c = Msg::Key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(matches!(
        update(&mut a, ctrl_c).as_slice(),
        [Effect::Quit { .. }]
    ));
}

#[test]
fn ticket_selection_follows_its_ticket_and_loads_its_history() {
    let mut a = fixtures::app(true, Some(Stage::Diagnosing));
    a.tab = Tab::Tickets;
    a.tickets = vec![
        fixtures::ticket(2, "ratelimiter-3", Status::Open),
        fixtures::ticket(1, "ratelimiter-2", Status::InProgress),
    ];
    let fx = update(&mut a, code(KeyCode::Down));
    assert!(matches!(fx.as_slice(), [Effect::LoadTicketDetail(1)]));
    // A new ticket arrives on top: #1 stays selected.
    let mut newer = vec![fixtures::ticket(3, "redis", Status::Open)];
    newer.extend(a.tickets.clone());
    update(
        &mut a,
        Msg::Db {
            tickets: newer,
            faults: vec![],
            sessions: vec![],
        },
    );
    assert_eq!(a.selected_ticket().map(|t| t.id), Some(1));
    update(&mut a, key('f'));
    assert_eq!(a.filter, Filter::Active);
}

#[test]
fn the_demo_moves_step_by_step_and_starts_its_actions() {
    let mut a = fixtures::app(false, None);
    a.demo = Some(Demo::new(&crate::subjects::ratelimiter::demo::SCRIPT));
    assert!(matches!(
        update(&mut a, key(' ')).as_slice(),
        [Effect::StartLoad { rate: 50 }]
    ));
    assert!(matches!(
        update(&mut a, key(' ')).as_slice(),
        [Effect::DemoInject]
    ));
    assert_eq!(a.demo.as_ref().unwrap().step, 2);
    let steps = a.demo.as_ref().unwrap().steps();
    for _ in 3..steps {
        update(&mut a, key(' '));
    }
    assert!(a.demo.as_ref().unwrap().finished());
    // At the end, r on the Campaigns tab asks about a campaign, as its footer says; the
    // demo stays where it is.
    a.tab = Tab::Campaigns;
    a.campaigns = fixtures::campaigns();
    assert!(update(&mut a, key('r')).is_empty());
    assert!(matches!(a.overlay, Some(Overlay::Confirm(_))));
    assert!(a.demo.as_ref().unwrap().finished());
    update(&mut a, code(KeyCode::Esc));
    // Space runs the demo again.
    assert!(matches!(
        update(&mut a, key(' ')).as_slice(),
        [Effect::StopLoad, Effect::HealAll]
    ));
    assert_eq!(a.demo.as_ref().unwrap().step, 0);
    assert_eq!(a.demo.as_ref().unwrap().runs, 2);
}

#[test]
fn an_ended_session_drops_its_waiting_approvals() {
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    update(
        &mut a,
        Msg::Agent(crate::agent::session::AgentEvent::Ended {
            session_id: 3,
            ticket_id: 1,
            outcome: crate::agent::session::Outcome::Escalated("budget".into()),
            usage: Default::default(),
            cost_usd: None,
        }),
    );
    assert!(a.approvals.is_empty());
}

#[test]
fn resize_and_too_small() {
    let mut a = fixtures::app(false, None);
    update(&mut a, Msg::Resize(70, 20));
    assert!(a.too_small());
    // q still quits from the too-small screen.
    assert!(matches!(
        update(&mut a, key('q')).as_slice(),
        [Effect::Quit { .. }]
    ));
}

// ---- views

macro_rules! snap {
    ($name:expr, $app:expr) => {
        insta::assert_snapshot!($name, render(&$app));
    };
}

#[test]
fn cluster_views() {
    snap!("cluster_healthy", fixtures::app(false, None));
    snap!("cluster_node_down", fixtures::app(true, None));
}

#[test]
fn tickets_views() {
    let mut a = fixtures::app(true, Some(Stage::Diagnosing));
    a.tab = Tab::Tickets;
    snap!("tickets_in_progress", a);
    let mut a = fixtures::app(true, Some(Stage::Resolved));
    a.tab = Tab::Tickets;
    snap!("tickets_resolved", a);
}

/// Two members down and the quorum they took are one incident: roots first, the consequence
/// indented under them, the incident's line on its first row; an unrelated ticket apart.
#[test]
fn tickets_are_grouped_by_incident() {
    use crate::tickets::Status::{InProgress, Open};
    let mut a = fixtures::app(false, None);
    let t = |id, entity: &str, invariant: &str, incident, root, status| {
        let mut t = fixtures::ticket(id, entity, status);
        t.invariant = invariant.into();
        t.incident_id = Some(incident);
        t.root = root;
        t
    };
    a.tickets = vec![
        t(4, "ratelimiter-3", "node_down", 4, true, Open),
        t(3, "cluster", "quorum_lost", 1, false, InProgress),
        t(2, "etcd-2", "member_down", 1, true, InProgress),
        t(1, "etcd-1", "member_down", 1, true, InProgress),
    ];
    a.tab = Tab::Tickets;
    let order: Vec<i64> = a.visible_tickets().iter().map(|t| t.id).collect();
    assert_eq!(order, [4, 1, 2, 3], "newest incident first, roots first");
    let screen = render(&a);
    assert!(screen.contains("↳ quorum_lost"), "{screen}");
    assert_eq!(
        screen.matches("#1 in_progress 30s").count(),
        1,
        "the incident's line once, on its first row: {screen}"
    );
    snap!("tickets_grouped_by_incident", a);
}

#[test]
fn agent_views() {
    for (name, stage) in [
        ("agent_diagnosing", Stage::Diagnosing),
        ("agent_waiting_for_approval", Stage::Waiting),
        ("agent_vetoed", Stage::Vetoed),
        ("agent_resolved", Stage::Resolved),
    ] {
        let mut a = fixtures::app(true, Some(stage));
        a.tab = Tab::Agent;
        snap!(name, a);
    }
    let mut a = fixtures::app(false, None);
    a.tab = Tab::Agent;
    snap!("agent_no_session", a);
    // The approval banner on other tabs.
    let a = fixtures::app(true, Some(Stage::Waiting));
    snap!("cluster_with_approval_waiting", a);
}

#[test]
fn chaos_views() {
    let mut a = fixtures::big(3, 0);
    a.cycle = Some(Box::new(fixtures::cycle(None)));
    a.tab = Tab::Chaos;
    snap!("chaos_active_fault", a);
    let mut a = fixtures::app(false, None);
    a.tab = Tab::Chaos;
    a.overlay = Some(Overlay::Confirm(Ask::Inject {
        fault: FaultKind::Pause,
        target: "ratelimiter-1".into(),
    }));
    snap!("chaos_confirm_inject", a);
}

#[test]
fn overlays_and_small_screens() {
    for tab in Tab::ALL {
        let mut a = fixtures::app(false, None);
        a.tab = tab;
        a.overlay = Some(Overlay::Help);
        snap!(format!("help_{}", tab.title().to_lowercase()), a);
    }
    let mut a = fixtures::app(false, None);
    a.size = (70, 20);
    snap!("too_small", a);
    let mut a = fixtures::app(true, Some(Stage::Waiting));
    a.tab = Tab::Agent;
    update(&mut a, key('n'));
    typed(&mut a, "check its log first");
    snap!("agent_veto_reason", a);
    let mut a = fixtures::app(false, None);
    a.overlay = Some(Overlay::Fatal {
        title: " The cluster could not start ".into(),
        body: "`redis-server` was not found. Install Redis.\n\nr: try again   q: quit".into(),
    });
    snap!("cluster_cannot_start", a);
}

#[test]
fn campaigns_views() {
    let mut a = fixtures::app(false, None);
    a.tab = Tab::Campaigns;
    snap!("campaigns_empty", a);
    a.campaigns = fixtures::campaigns();
    snap!("campaigns_running", a);
    a.campaigns.sel = 1;
    a.campaigns.trial_sel = Some(0);
    snap!("campaigns_finished", a);
    a.campaigns.timeline = Some(fixtures::timeline());
    snap!("campaigns_trial_timeline", a);
    a.size = (130, 36);
    snap!("campaigns_trial_timeline_wide", a);
    let mut a = fixtures::app(false, None);
    a.tab = Tab::Campaigns;
    a.campaigns = fixtures::campaigns();
    update(&mut a, key('r'));
    snap!("campaigns_confirm_run", a);
}

#[test]
fn campaigns_keys_start_stop_and_open_a_trial() {
    let mut a = fixtures::app(false, None);
    a.tab = Tab::Campaigns;
    a.campaigns = fixtures::campaigns();
    // r asks, starting on smoke.yaml; ←→ choose another file; y runs it.
    assert!(update(&mut a, key('r')).is_empty());
    update(&mut a, code(KeyCode::Right));
    let fx = update(&mut a, key('y'));
    assert!(
        matches!(fx.as_slice(), [Effect::StartCampaign(f)] if f == "campaigns/ratelimiter.yaml"),
        "the file after smoke.yaml, wrapping around"
    );
    // x asks about the running campaign; n keeps it.
    assert!(update(&mut a, key('x')).is_empty());
    assert!(matches!(
        a.overlay,
        Some(Overlay::Confirm(Ask::StopCampaign { id: 2, .. }))
    ));
    assert!(update(&mut a, key('n')).is_empty());
    update(&mut a, key('x'));
    assert!(matches!(
        update(&mut a, key('y')).as_slice(),
        [Effect::StopCampaign(2)]
    ));
    // Enter: the trials; ↓, Enter: that trial's timeline; Esc twice: back to the campaigns.
    update(&mut a, code(KeyCode::Enter));
    assert_eq!(a.campaigns.trial_sel, Some(0));
    update(&mut a, key('j'));
    assert!(matches!(
        update(&mut a, code(KeyCode::Enter)).as_slice(),
        [Effect::LoadTrial(12)]
    ));
    update(&mut a, Msg::Trial(Box::new(fixtures::timeline())));
    assert!(a.campaigns.timeline.is_some());
    update(&mut a, code(KeyCode::Esc));
    assert!(a.campaigns.timeline.is_none());
    update(&mut a, code(KeyCode::Esc));
    assert_eq!(a.campaigns.trial_sel, None);
    // x is offered only while a campaign runs.
    let now = |running| crate::tui::keys::Context {
        campaign: running,
        ..Default::default()
    };
    assert!(
        crate::tui::keys::footer(Tab::Campaigns, now(true))
            .iter()
            .any(|(k, _)| *k == "x")
    );
    assert!(
        !crate::tui::keys::footer(Tab::Campaigns, now(false))
            .iter()
            .any(|(k, _)| *k == "x")
    );
}

/// Every tab at the sizes people use: nothing the person needs may be cut at any of them.
#[test]
fn every_tab_at_every_size() {
    for (w, h) in [(80, 24), (120, 40), (200, 60)] {
        for tab in Tab::ALL {
            // The richest state: a node down, a command waiting, a fault in effect.
            let mut a = fixtures::app(true, Some(Stage::Waiting));
            a.faults = fixtures::big(0, 0).faults;
            a.size = (w, h);
            a.tab = tab;
            snap!(format!("{}_{w}x{h}", tab.title().to_lowercase()), a);
        }
    }
}

#[test]
fn demo_steps() {
    for step in 0..crate::subjects::ratelimiter::demo::SCRIPT.steps.len() {
        let stage = match step {
            0..=2 => None,
            3 => Some(Stage::Diagnosing),
            4 => Some(Stage::Diagnosing),
            5 => Some(Stage::Waiting),
            _ => Some(Stage::Resolved),
        };
        let mut a = fixtures::app(step >= 3, stage);
        let mut d = Demo::new(&crate::subjects::ratelimiter::demo::SCRIPT);
        d.step = step;
        if step >= 2 {
            d.fault = fixtures::big(0, 0).faults.pop().map(|mut f| {
                f.fault = FaultKind::NodeKill.as_str().into();
                f.target = "ratelimiter-2".into();
                f.injected_at = at(-31);
                f
            });
        }
        if step >= 3 {
            d.opened_at = Some(at(-30));
        }
        if step >= 6 {
            d.resolved_at = Some(at(-1));
        }
        a.demo = Some(d);
        a.tab = [
            Tab::Cluster,
            Tab::Cluster,
            Tab::Chaos,
            Tab::Tickets,
            Tab::Agent,
            Tab::Agent,
            Tab::Tickets,
        ][step];
        snap!(format!("demo_step_{}", step + 1), a);
    }
}

#[test]
fn an_unsandboxed_agent_is_named_in_the_header_in_the_bad_colour() {
    use ratatui::style::Color;
    let mut a = fixtures::app(false, None);
    a.theme.color = true;
    assert!(!render(&a).contains("UNSANDBOXED"));
    update(
        &mut a,
        Msg::Unsandboxed("bubblewrap cannot make a sandbox here".into()),
    );
    let text = render(&a);
    assert!(text.contains("UNSANDBOXED"), "{text}");
    // Its colour is the one that says something is wrong.
    let mut t = Terminal::new(TestBackend::new(a.size.0, a.size.1)).unwrap();
    t.draw(|f| views::draw(f, &a)).unwrap();
    let buf = t.backend().buffer().clone();
    let row: Vec<&str> = (0..a.size.0).map(|x| buf[(x, 1)].symbol()).collect();
    let at = (0..row.len())
        .find(|&i| row[i..].concat().starts_with("UNSANDBOXED"))
        .expect("on the header's second line");
    assert_eq!(buf[(at as u16, 1)].fg, Color::Red);
}
