//! The app's state. Services never touch it: they send messages, and `update` changes it.

use std::collections::VecDeque;

use ratatui_textarea::TextArea;
use tokio::sync::oneshot;

use super::demo::Demo;
use super::session_view::SessionView;
use super::theme::Theme;
use crate::agent::approval::{Answer, ApprovalRequest};
use crate::agent::audit::Session;
use crate::chaos::FaultRecord;
use crate::clock::Timestamp;
use crate::invariant::InvariantInfo;
use crate::load::LoadStats;
use crate::monitor::CycleReport;
use crate::policy::Mode;
use crate::store::eval::{CampaignRow, TrialEvent, TrialRow};
use crate::tickets::{Status, Ticket, TicketEvent};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Cluster,
    Tickets,
    Agent,
    Chaos,
    Campaigns,
}

impl Tab {
    pub const ALL: [Tab; 5] = [
        Tab::Cluster,
        Tab::Tickets,
        Tab::Agent,
        Tab::Chaos,
        Tab::Campaigns,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Cluster => "Cluster",
            Tab::Tickets => "Tickets",
            Tab::Agent => "Agent",
            Tab::Chaos => "Chaos",
            Tab::Campaigns => "Campaigns",
        }
    }

    pub fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Good,
    Warn,
    Error,
}

#[derive(Debug, Clone)]
pub struct LogLine {
    pub at: Timestamp,
    pub level: Level,
    pub text: String,
}

/// Which tickets the Tickets tab lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    All,
    Active,
    Only(Status),
}

impl Filter {
    pub fn next(self) -> Self {
        match self {
            Filter::All => Filter::Active,
            Filter::Active => Filter::Only(Status::Open),
            Filter::Only(Status::Open) => Filter::Only(Status::InProgress),
            Filter::Only(Status::InProgress) => Filter::Only(Status::Verifying),
            Filter::Only(Status::Verifying) => Filter::Only(Status::Escalated),
            Filter::Only(Status::Escalated) => Filter::Only(Status::Resolved),
            Filter::Only(Status::Resolved) => Filter::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::Active => "active",
            Filter::Only(s) => s.as_str(),
        }
    }

    pub fn keeps(self, t: &Ticket) -> bool {
        match self {
            Filter::All => true,
            Filter::Active => t.status != Status::Resolved,
            Filter::Only(s) => t.status == s,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TicketDetail {
    pub ticket_id: i64,
    pub events: Vec<TicketEvent>,
    pub sessions: Vec<Session>,
}

/// A command waiting for a person, and where the answer goes.
pub struct PendingApproval {
    pub req: ApprovalRequest,
    pub reply: Option<oneshot::Sender<Answer>>,
}

/// What a text area is being typed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPurpose {
    VetoReason,
    EditCommand,
    AllowPrefix,
    Guidance,
}

impl InputPurpose {
    pub fn title(self) -> &'static str {
        match self {
            InputPurpose::VetoReason => " Veto: why? (sent to the model) ",
            InputPurpose::EditCommand => " Edit the command, then Enter to run it ",
            InputPurpose::AllowPrefix => " Always allow commands starting with ",
            InputPurpose::Guidance => " Guidance for the agent (sent on its next turn) ",
        }
    }
}

/// A question put to the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    Inject {
        fault: crate::chaos::FaultKind,
        target: String,
    },
    Quit {
        faults: usize,
        stop_cluster: bool,
    },
    /// Start a campaign file (←→ choose another).
    StartCampaign {
        files: Vec<String>,
        index: usize,
    },
    /// Stop a running campaign, whichever process runs it.
    StopCampaign {
        id: i64,
        name: String,
    },
}

pub enum Overlay {
    Help,
    Confirm(Ask),
    Input {
        purpose: InputPurpose,
        area: Box<TextArea<'static>>,
    },
    /// Something went wrong that the person must see (a cluster that cannot start, a DB).
    Fatal {
        title: String,
        body: String,
    },
}

/// A trial opened from the Campaigns tab: its steps, and its agent's session.
#[derive(Debug, Clone)]
pub struct TrialTimeline {
    pub trial: TrialRow,
    pub events: Vec<TrialEvent>,
    pub session: Option<SessionView>,
}

/// What the Campaigns tab shows.
#[derive(Debug, Clone, Default)]
pub struct Campaigns {
    /// Running ones first, then newest first.
    pub list: Vec<CampaignRow>,
    /// The trials of each listed campaign.
    pub trials: std::collections::HashMap<i64, Vec<TrialRow>>,
    /// Campaign files `r` can start.
    pub files: Vec<String>,
    pub sel: usize,
    /// The selected trial of the selected campaign, when the trials have the focus.
    pub trial_sel: Option<usize>,
    pub timeline: Option<TrialTimeline>,
}

impl Campaigns {
    pub fn selected(&self) -> Option<&CampaignRow> {
        self.list.get(self.sel)
    }

    pub fn selected_trials(&self) -> &[TrialRow] {
        self.selected()
            .and_then(|c| self.trials.get(&c.id))
            .map_or(&[], Vec::as_slice)
    }

    pub fn running(&self) -> bool {
        self.list
            .iter()
            .any(|c| c.status == crate::eval::CampaignStatus::Running)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChaosPane {
    Faults,
    Targets,
    Active,
}

pub struct App {
    pub tab: Tab,
    pub size: (u16, u16),
    pub theme: Theme,
    pub now: Timestamp,
    pub subject: String,
    pub instance: u32,
    pub mode: Mode,
    /// `runbook`, `anthropic claude-sonnet-5`, or why there is no agent.
    pub agent_label: String,
    /// Why the agent's commands run without a sandbox, where they do.
    pub unsandboxed: Option<String>,
    pub invariants: Vec<InvariantInfo>,
    pub cycle: Option<Box<CycleReport>>,
    pub cluster_note: Option<String>,
    pub load: VecDeque<LoadStats>,
    pub load_running: bool,
    pub log: VecDeque<LogLine>,
    /// Lines scrolled back from the newest in the event log.
    pub log_scroll: usize,
    pub tickets: Vec<Ticket>,
    pub filter: Filter,
    pub ticket_sel: usize,
    pub detail: Option<TicketDetail>,
    pub sessions: Vec<SessionView>,
    /// The session shown; None follows the newest.
    pub session_focus: Option<i64>,
    /// The selected item of the shown session; None follows the newest.
    pub item_sel: Option<usize>,
    pub approvals: VecDeque<PendingApproval>,
    pub faults: Vec<FaultRecord>,
    pub chaos_pane: ChaosPane,
    pub fault_sel: usize,
    /// The faults this subject takes: the generic ones, then its own.
    pub catalogue: Vec<crate::chaos::FaultKind>,
    pub target_sel: usize,
    pub active_sel: usize,
    pub overlay: Option<Overlay>,
    pub flash: Option<(Level, String)>,
    /// The app started the cluster, so quitting offers to stop it.
    pub started_cluster: bool,
    pub quitting: bool,
    pub exit: bool,
    pub demo: Option<Demo>,
    pub campaigns: Campaigns,
}

/// How many log lines and load seconds are kept.
pub const LOG_KEPT: usize = 500;
pub const LOAD_KEPT: usize = 300;

impl App {
    /// The app for an instance of `subject`; the Chaos tab offers `catalogue`.
    pub fn new(
        subject: &str,
        catalogue: Vec<crate::chaos::FaultKind>,
        instance: u32,
        mode: Mode,
        theme: Theme,
        now: Timestamp,
    ) -> Self {
        Self {
            tab: Tab::Cluster,
            size: (0, 0),
            theme,
            now,
            subject: subject.into(),
            instance,
            mode,
            agent_label: String::new(),
            unsandboxed: None,
            invariants: Vec::new(),
            cycle: None,
            cluster_note: None,
            load: VecDeque::new(),
            load_running: false,
            log: VecDeque::new(),
            log_scroll: 0,
            tickets: Vec::new(),
            filter: Filter::All,
            ticket_sel: 0,
            detail: None,
            sessions: Vec::new(),
            session_focus: None,
            item_sel: None,
            approvals: VecDeque::new(),
            faults: Vec::new(),
            chaos_pane: ChaosPane::Faults,
            fault_sel: 0,
            catalogue,
            target_sel: 0,
            active_sel: 0,
            overlay: None,
            flash: None,
            started_cluster: false,
            quitting: false,
            exit: false,
            demo: None,
            campaigns: Campaigns::default(),
        }
    }

    pub fn push_log(&mut self, level: Level, text: impl Into<String>) {
        if self.log.len() == LOG_KEPT {
            self.log.pop_front();
        }
        self.log.push_back(LogLine {
            at: self.now,
            level,
            text: text.into(),
        });
    }

    /// The tickets the filter keeps, grouped by incident (the newest incident first), each
    /// incident's roots first, then its consequences in the order they opened.
    pub fn visible_tickets(&self) -> Vec<&Ticket> {
        let mut newest: std::collections::HashMap<i64, i64> = std::collections::HashMap::new();
        for t in &self.tickets {
            let n = newest.entry(incident_key(t)).or_insert(t.id);
            *n = (*n).max(t.id);
        }
        let mut v: Vec<&Ticket> = self
            .tickets
            .iter()
            .filter(|t| self.filter.keeps(t))
            .collect();
        v.sort_by_key(|t| {
            let key = incident_key(t);
            (
                std::cmp::Reverse(newest.get(&key).copied().unwrap_or(t.id)),
                key,
                !t.root,
                t.opened_at,
                t.id,
            )
        });
        v
    }

    /// Every incident of the app's tickets, by id (see [`IncidentLine`]).
    pub fn incident_lines(&self) -> std::collections::HashMap<i64, IncidentLine> {
        let mut members: std::collections::HashMap<i64, Vec<&Ticket>> =
            std::collections::HashMap::new();
        for t in &self.tickets {
            if let Some(i) = t.incident_id {
                members.entry(i).or_default().push(t);
            }
        }
        members
            .into_iter()
            .filter_map(|(id, m)| Some((id, incident_line(id, &m)?)))
            .collect()
    }

    /// The incident of `t` as the app's tickets tell it.
    pub fn incident_of(&self, t: &Ticket) -> Option<IncidentLine> {
        let id = t.incident_id?;
        let members: Vec<&Ticket> = self
            .tickets
            .iter()
            .filter(|u| u.incident_id == Some(id))
            .collect();
        incident_line(id, &members)
    }

    pub fn selected_ticket(&self) -> Option<&Ticket> {
        self.visible_tickets().get(self.ticket_sel).copied()
    }

    /// The node names, for chaos targets.
    pub fn targets(&self) -> Vec<String> {
        self.cycle
            .as_ref()
            .and_then(|c| c.snapshot.as_ref())
            .map(|s| s.observation.nodes.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default()
    }

    pub fn shown_session(&self) -> Option<&SessionView> {
        match self.session_focus {
            Some(id) => self.sessions.iter().find(|s| s.id == id),
            None => self.sessions.last(),
        }
    }

    pub fn shown_session_mut(&mut self) -> Option<&mut SessionView> {
        match self.session_focus {
            Some(id) => self.sessions.iter_mut().find(|s| s.id == id),
            None => self.sessions.last_mut(),
        }
    }

    pub fn live_faults(&self) -> usize {
        self.faults.iter().filter(|f| f.status.is_live()).count()
    }

    pub fn too_small(&self) -> bool {
        self.size.0 < 80 || self.size.1 < 24
    }
}

/// An incident as the Tickets tab shows it above its tickets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentLine {
    pub id: i64,
    pub status: Status,
    pub opened_at: Timestamp,
    pub tickets: usize,
}

/// An incident's line from its tickets: its state taken together (as the store takes it),
/// when its first ticket opened, and how many tickets it has.
fn incident_line(id: i64, members: &[&Ticket]) -> Option<IncidentLine> {
    let active: Vec<&&Ticket> = members
        .iter()
        .filter(|u| u.status != Status::Resolved)
        .collect();
    let has = |s: Status| active.iter().any(|u| u.status == s);
    let status = if active.is_empty() {
        Status::Resolved
    } else if has(Status::Escalated) {
        Status::Escalated
    } else if active.iter().all(|u| u.status == Status::Verifying) {
        Status::Verifying
    } else if has(Status::InProgress) || has(Status::Verifying) {
        Status::InProgress
    } else {
        Status::Open
    };
    Some(IncidentLine {
        id,
        status,
        opened_at: members.iter().map(|u| u.opened_at).min()?,
        tickets: members.len(),
    })
}

/// What groups a ticket: its incident, or itself when it has none.
fn incident_key(t: &Ticket) -> i64 {
    t.incident_id.unwrap_or(-t.id)
}
