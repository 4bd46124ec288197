//! The key maps: one table per tab (and the global keys), from which key handling, the footer
//! and the help overlay are all made, so they cannot disagree.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{App, Tab};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GoTo(Tab),
    NextTab,
    PrevTab,
    Help,
    Quit,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Left,
    Right,
    Enter,
    Filter,
    Inject,
    Heal,
    HealAll,
    Approve,
    Veto,
    Edit,
    AlwaysAllow,
    Guidance,
    ToggleLoad,
    DemoNext,
    DemoAgain,
    StartCampaign,
    StopCampaign,
}

/// A key as the tables write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K {
    Ch(char),
    Code(KeyCode),
    Ctrl(char),
}

#[derive(Clone, Copy)]
pub struct Binding {
    pub keys: &'static [K],
    /// Shown in the footer and the help, e.g. `y`.
    pub label: &'static str,
    pub help: &'static str,
    pub action: Action,
    /// A word or two for the footer, for the keys it lists (the help lists everything).
    pub footer: Option<&'static str>,
    /// When the key can act: the footer offers it only then, as gitui's command bar does.
    pub when: When,
}

/// What must hold for a key to do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// A command waits for a person's answer.
    Approval,
    /// A fault is in effect.
    Fault,
    /// A campaign runs.
    Campaign,
    /// The demo has steps left.
    DemoRunning,
    /// The demo is at its last step.
    DemoEnd,
}

/// The state that decides which keys can act: the same for the keys, the footer and the
/// help, so a key does what the footer offers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    pub demo: bool,
    pub demo_end: bool,
    pub approval: bool,
    pub fault: bool,
    pub campaign: bool,
}

impl Context {
    pub fn of(app: &App) -> Self {
        Self {
            demo: app.demo.is_some(),
            demo_end: app.demo.as_ref().is_some_and(|d| d.finished()),
            approval: !app.approvals.is_empty(),
            fault: app.live_faults() > 0,
            campaign: app.campaigns.running(),
        }
    }

    fn holds(&self, w: When) -> bool {
        match w {
            When::Always => true,
            When::Approval => self.approval,
            When::Fault => self.fault,
            When::Campaign => self.campaign,
            When::DemoRunning => self.demo && !self.demo_end,
            When::DemoEnd => self.demo && self.demo_end,
        }
    }
}

/// A binding the help lists and the footer does not.
const fn b(keys: &'static [K], label: &'static str, help: &'static str, action: Action) -> Binding {
    Binding {
        keys,
        label,
        help,
        action,
        footer: None,
        when: When::Always,
    }
}

/// A binding the footer lists too, as `short`.
const fn f(
    keys: &'static [K],
    label: &'static str,
    help: &'static str,
    action: Action,
    short: &'static str,
) -> Binding {
    Binding {
        keys,
        label,
        help,
        action,
        footer: Some(short),
        when: When::Always,
    }
}

/// A footer binding that can act only when `when` holds.
const fn only(when: When, binding: Binding) -> Binding {
    Binding { when, ..binding }
}

use Action::*;
use K::{Ch, Code, Ctrl};

pub const GLOBAL: &[Binding] = &[
    f(
        &[Ch('1')],
        "1-5",
        "go to a tab (1 Cluster, 2 Tickets, 3 Agent, 4 Chaos, 5 Campaigns)",
        GoTo(Tab::Cluster),
        "tabs",
    ),
    b(&[Ch('2')], "", "", GoTo(Tab::Tickets)),
    b(&[Ch('3')], "", "", GoTo(Tab::Agent)),
    b(&[Ch('4')], "", "", GoTo(Tab::Chaos)),
    b(&[Ch('5')], "", "", GoTo(Tab::Campaigns)),
    b(&[Code(KeyCode::Tab)], "Tab", "next tab", NextTab),
    b(&[Code(KeyCode::BackTab)], "S-Tab", "previous tab", PrevTab),
    f(&[Ch('?')], "?", "this help", Help, "help"),
    f(
        &[Ch('q'), Ctrl('c')],
        "q",
        "quit (asks about faults and the cluster it started)",
        Quit,
        "quit",
    ),
    b(
        &[Code(KeyCode::Esc)],
        "Esc",
        "back out of a dialog or a selection",
        Back,
    ),
];

const MOVE: &[Binding] = &[
    f(&[Code(KeyCode::Up), Ch('k')], "↑↓", "move", Up, "move"),
    b(&[Code(KeyCode::Down), Ch('j')], "", "", Down),
    b(&[Code(KeyCode::PageUp)], "PgUp/PgDn", "move a page", PageUp),
    b(&[Code(KeyCode::PageDown)], "", "", PageDown),
    b(
        &[Code(KeyCode::Home), Ch('g')],
        "Home/End",
        "first / last",
        Top,
    ),
    b(&[Code(KeyCode::End), Ch('G')], "", "", Bottom),
];

pub const CLUSTER: &[Binding] = &[
    f(
        &[Ch('l')],
        "l",
        "start or stop load (50 requests a second)",
        ToggleLoad,
        "load",
    ),
    b(
        &[Code(KeyCode::Up), Ch('k')],
        "↑↓",
        "scroll the event log",
        Up,
    ),
    b(&[Code(KeyCode::Down), Ch('j')], "", "", Down),
];

pub const TICKETS: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[2],
    MOVE[3],
    MOVE[4],
    MOVE[5],
    f(
        &[Ch('f')],
        "f",
        "filter by status (all, active, open, …)",
        Filter,
        "filter",
    ),
];

pub const AGENT: &[Binding] = &[
    only(
        When::Approval,
        f(
            &[Ch('y')],
            "y",
            "approve the waiting command",
            Approve,
            "approve",
        ),
    ),
    only(
        When::Approval,
        f(
            &[Ch('n')],
            "n",
            "veto it, with a reason for the model",
            Veto,
            "veto",
        ),
    ),
    only(
        When::Approval,
        f(&[Ch('e')], "e", "edit it, then run the edit", Edit, "edit"),
    ),
    only(
        When::Approval,
        f(
            &[Ch('a')],
            "a",
            "run it and always allow its prefix",
            AlwaysAllow,
            "always",
        ),
    ),
    f(
        &[Ch('i')],
        "i",
        "type guidance for the agent's next turn",
        Guidance,
        "guidance",
    ),
    b(&[Code(KeyCode::Up), Ch('k')], "↑↓", "select a step", Up),
    b(&[Code(KeyCode::Down), Ch('j')], "", "", Down),
    b(
        &[Code(KeyCode::Enter)],
        "Enter",
        "fold or unfold a command's output",
        Enter,
    ),
    b(
        &[Code(KeyCode::Left), Ch('[')],
        "←→",
        "previous / next session",
        Left,
    ),
    b(&[Code(KeyCode::Right), Ch(']')], "", "", Right),
    b(
        &[Code(KeyCode::End), Ch('G')],
        "End",
        "follow the newest",
        Bottom,
    ),
];

pub const CHAOS: &[Binding] = &[
    b(&[Code(KeyCode::Up), Ch('k')], "↑↓", "choose", Up),
    b(&[Code(KeyCode::Down), Ch('j')], "", "", Down),
    b(
        &[Code(KeyCode::Left)],
        "←→",
        "fault / target / active faults",
        Left,
    ),
    b(&[Code(KeyCode::Right)], "", "", Right),
    f(
        &[Ch('i'), Code(KeyCode::Enter)],
        "i",
        "inject the fault on the target (asks first)",
        Inject,
        "inject",
    ),
    only(
        When::Fault,
        f(
            &[Ch('h')],
            "h",
            "heal the selected active fault",
            Heal,
            "heal",
        ),
    ),
    only(
        When::Fault,
        f(
            &[Ch('H')],
            "H",
            "heal every active fault",
            HealAll,
            "heal all",
        ),
    ),
];

pub const CAMPAIGNS: &[Binding] = &[
    MOVE[0],
    MOVE[1],
    MOVE[4],
    MOVE[5],
    f(
        &[Code(KeyCode::Enter)],
        "Enter",
        "the campaign's trials; on a trial, its timeline",
        Enter,
        "open",
    ),
    f(
        &[Ch('r')],
        "r",
        "run a campaign from campaigns/ (asks first)",
        StartCampaign,
        "run",
    ),
    only(
        When::Campaign,
        f(
            &[Ch('x')],
            "x",
            "stop the selected running campaign: heals and tears down (asks first)",
            StopCampaign,
            "stop",
        ),
    ),
];

/// The demo's one key, Space, goes on: to the next step, and at the last one, to a new run.
/// It is no key of any tab, so it means the same on every screen.
pub const DEMO: &[Binding] = &[
    only(
        When::DemoRunning,
        f(
            &[Ch(' ')],
            "Space",
            "next step of the demo",
            DemoNext,
            "next step",
        ),
    ),
    only(
        When::DemoEnd,
        f(
            &[Ch(' ')],
            "Space",
            "at the demo's last step: run it again",
            DemoAgain,
            "demo again",
        ),
    ),
];

pub fn tab_bindings(tab: Tab) -> &'static [Binding] {
    match tab {
        Tab::Cluster => CLUSTER,
        Tab::Tickets => TICKETS,
        Tab::Agent => AGENT,
        Tab::Chaos => CHAOS,
        Tab::Campaigns => CAMPAIGNS,
    }
}

fn matches(k: &K, ev: &KeyEvent) -> bool {
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    match (k, ev.code) {
        (Ctrl(c), KeyCode::Char(x)) => ctrl && x == *c,
        (Ch(c), KeyCode::Char(x)) => !ctrl && x == *c,
        (Code(c), code) => *c == code,
        _ => false,
    }
}

/// q, Esc or Ctrl-C leave a screen that shows only an error; a plain `c` does not.
pub fn quits_a_fatal_screen(ev: &KeyEvent) -> bool {
    matches(&Ch('q'), ev) || matches(&Ctrl('c'), ev) || ev.code == KeyCode::Esc
}

/// The bindings of `tab`: the demo's (while it runs), the tab's, then the global ones.
fn bindings(tab: Tab, demo: bool) -> impl Iterator<Item = &'static Binding> {
    let demo: &'static [Binding] = if demo { DEMO } else { &[] };
    demo.iter().chain(tab_bindings(tab)).chain(GLOBAL)
}

/// The bindings that can act on `tab` now.
fn live(tab: Tab, now: Context) -> impl Iterator<Item = &'static Binding> {
    bindings(tab, now.demo).filter(move |b| now.holds(b.when))
}

/// What a key does on `tab` now: the binding that can act; else the one that cannot yet, so
/// that its handler says why (`y` with nothing waiting says so).
pub fn action(tab: Tab, now: Context, ev: &KeyEvent) -> Option<Action> {
    let has = |b: &&Binding| b.keys.iter().any(|k| matches(k, ev));
    live(tab, now)
        .find(has)
        .or_else(|| bindings(tab, now.demo).find(has))
        .map(|b| b.action)
}

/// The footer's keys for a tab, those that can act now: `(label, what)`.
pub fn footer(tab: Tab, now: Context) -> Vec<(&'static str, &'static str)> {
    live(tab, now)
        .filter_map(|b| b.footer.map(|s| (b.label, s)))
        .collect()
}

/// Every key of a tab, for the help overlay: `(section, label, help)`.
pub fn help(tab: Tab, demo: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    if demo {
        out.extend(
            DEMO.iter()
                .filter(|b| !b.label.is_empty())
                .map(|b| ("Demo", b.label, b.help)),
        );
    }
    out.extend(
        tab_bindings(tab)
            .iter()
            .filter(|b| !b.label.is_empty())
            .map(|b| (tab.title(), b.label, b.help)),
    );
    out.extend(
        GLOBAL
            .iter()
            .filter(|b| !b.label.is_empty())
            .map(|b| ("Everywhere", b.label, b.help)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    /// Every state the keys depend on.
    fn every_context() -> Vec<Context> {
        (0..32u8)
            .map(|bits| Context {
                demo: bits & 1 != 0 || bits & 2 != 0,
                demo_end: bits & 2 != 0,
                approval: bits & 4 != 0,
                fault: bits & 8 != 0,
                campaign: bits & 16 != 0,
            })
            .collect()
    }

    #[test]
    fn a_key_means_one_thing_on_every_screen() {
        for tab in Tab::ALL {
            for now in every_context() {
                let live: Vec<&Binding> = live(tab, now).collect();
                for (i, a) in live.iter().enumerate() {
                    for b in &live[i + 1..] {
                        let shared: Vec<_> = a.keys.iter().filter(|k| b.keys.contains(k)).collect();
                        assert!(
                            shared.is_empty(),
                            "on {tab:?} with {now:?}, {shared:?} is both {:?} and {:?}",
                            a.action,
                            b.action
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_key_that_can_act_wins() {
        let approval = Context {
            approval: true,
            ..Context::default()
        };
        assert_eq!(
            action(Tab::Agent, approval, &key(KeyCode::Char('y'))),
            Some(Approve)
        );
        // With nothing waiting, y still reaches its handler, which says so.
        assert_eq!(
            action(Tab::Agent, Context::default(), &key(KeyCode::Char('y'))),
            Some(Approve)
        );
        let idle = Context::default();
        assert_eq!(action(Tab::Cluster, idle, &key(KeyCode::Char('y'))), None);
        assert_eq!(
            action(Tab::Chaos, idle, &key(KeyCode::Char('3'))),
            Some(GoTo(Tab::Agent))
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(Tab::Tickets, idle, &ctrl_c), Some(Quit));
        let demo = Context {
            demo: true,
            ..Context::default()
        };
        let space = key(KeyCode::Char(' '));
        assert_eq!(action(Tab::Cluster, demo, &space), Some(DemoNext));
        assert_eq!(action(Tab::Cluster, idle, &space), None);
        // At the demo's end on the Campaigns tab, Space runs the demo again and r a campaign.
        let end = Context {
            demo: true,
            demo_end: true,
            ..Context::default()
        };
        assert_eq!(action(Tab::Campaigns, end, &space), Some(DemoAgain));
        assert_eq!(
            action(Tab::Campaigns, end, &key(KeyCode::Char('r'))),
            Some(StartCampaign)
        );
        assert!(quits_a_fatal_screen(&ctrl_c));
        assert!(quits_a_fatal_screen(&key(KeyCode::Char('q'))));
        assert!(!quits_a_fatal_screen(&key(KeyCode::Char('c'))));
        // → chooses on the Chaos tab, demo or not.
        assert_eq!(action(Tab::Chaos, demo, &key(KeyCode::Right)), Some(Right));
        // Every action the help lists for a tab is one its keys reach.
        for tab in Tab::ALL {
            for (_, label, _) in help(tab, false) {
                assert!(!label.is_empty());
            }
            assert!(
                footer(tab, Context::default())
                    .iter()
                    .any(|(l, _)| *l == "q")
            );
        }
        // A key is offered only when it can act.
        let idle = footer(Tab::Agent, Context::default());
        assert!(!idle.iter().any(|(l, _)| *l == "y"), "{idle:?}");
        let waiting = Context {
            approval: true,
            ..Context::default()
        };
        let keys: Vec<_> = footer(Tab::Agent, waiting)
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert!(keys.starts_with(&["y", "n", "e", "a"]), "{keys:?}");
        assert!(
            !footer(Tab::Chaos, Context::default())
                .iter()
                .any(|(l, _)| *l == "h")
        );
        let fault = Context {
            fault: true,
            ..Context::default()
        };
        assert!(footer(Tab::Chaos, fault).iter().any(|(l, _)| *l == "h"));
    }
}
