//! Everything that can happen to the app (`Msg`), and everything it can ask the world to do
//! (`Effect`). `update` turns the first into state changes and the second.

use crossterm::event::{KeyEvent, MouseEvent};
use tokio::sync::oneshot;

use crate::agent::approval::{Answer, ApprovalRequest};
use crate::agent::audit::{Entry, Session};
use crate::agent::session::AgentEvent;
use crate::chaos::{FaultKind, FaultRecord};
use crate::load::LoadStats;
use crate::monitor::CycleReport;
use crate::store::eval::{CampaignRow, TrialRow};
use crate::tickets::{Ticket, TicketEvent};

pub enum Msg {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Paste(String),
    Resize(u16, u16),
    /// Once a second: ages and times left move on.
    Tick,
    Cycle(Box<CycleReport>),
    CycleFailed(String),
    /// What the DB holds now (another process may have written it).
    Db {
        tickets: Vec<Ticket>,
        faults: Vec<FaultRecord>,
        sessions: Vec<Session>,
    },
    /// Steps of a session written by another process.
    Entries {
        session: i64,
        entries: Vec<Entry>,
    },
    TicketDetail {
        ticket_id: i64,
        events: Vec<TicketEvent>,
        sessions: Vec<Session>,
    },
    /// The campaigns in the DB, their trials, and the campaign files that can be started.
    Campaigns {
        list: Vec<CampaignRow>,
        trials: Vec<(i64, Vec<TrialRow>)>,
        files: Vec<String>,
    },
    /// A trial's timeline, asked for from the Campaigns tab.
    Trial(Box<super::app::TrialTimeline>),
    Agent(AgentEvent),
    Approval(ApprovalRequest, oneshot::Sender<Answer>),
    Load(LoadStats),
    LoadStopped,
    /// A fault was injected or healed (or could not be).
    Chaos(Result<String, String>),
    /// The demo's fault is in.
    DemoFault(Box<FaultRecord>),
    /// The cluster is up (or could not start).
    ClusterUp(Result<String, String>),
    /// The agent could not start, or stopped.
    AgentDown(String),
    /// The agent's commands run without a sandbox, and why.
    Unsandboxed(String),
    /// SIGTERM: leave now.
    Terminate,
    /// The quit work (healing, stopping) is done.
    Exit,
}

pub enum Effect {
    Inject {
        fault: FaultKind,
        target: String,
    },
    Heal(i64),
    HealAll,
    Answer {
        reply: oneshot::Sender<Answer>,
        answer: Answer,
    },
    Guidance(String),
    LoadTicketDetail(i64),
    StartLoad {
        rate: u32,
    },
    StopLoad,
    /// Start (again) the demo's fault: a node_kill on a random limiter node.
    DemoInject,
    Quit {
        heal: bool,
        stop_cluster: bool,
    },
    RetryClusterUp,
    /// Run a campaign file in a harness process of its own.
    StartCampaign(String),
    /// Ask a running campaign's harness to stop.
    StopCampaign(i64),
    LoadTrial(i64),
}
