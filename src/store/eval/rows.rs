//! The evaluation's rows: campaigns, trials, their timelines and slots (`--json` prints
//! these shapes).

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignStatus {
    Running,
    Finished,
    /// Stopped before every trial finished (Ctrl-C, a stop request, a crash): `--resume`.
    Interrupted,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Finished, Self::Interrupted]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// How a trial ended, judged by the cluster's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every ticket the fault opened was resolved, and the cluster then held healthy.
    Resolved,
    /// The resolve timeout passed first (or a repair lost data).
    Unresolved,
    /// The agent gave up.
    Escalated,
    /// No ticket within the detect timeout.
    Undetected,
    /// The harness or the subject failed before the fault took effect: out of every rate.
    Invalid,
    /// A control trial in which no ticket opened and the agent changed nothing.
    Clean,
    /// A control trial with a ticket or a change.
    FalseAlarm,
}

impl Verdict {
    pub const ALL: [Verdict; 7] = [
        Self::Resolved,
        Self::Unresolved,
        Self::Escalated,
        Self::Undetected,
        Self::Invalid,
        Self::Clean,
        Self::FalseAlarm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::Unresolved => "unresolved",
            Self::Escalated => "escalated",
            Self::Undetected => "undetected",
            Self::Invalid => "invalid",
            Self::Clean => "clean",
            Self::FalseAlarm => "false_alarm",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    Pending,
    Running,
    Done,
}

impl TrialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Done]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A campaign as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignRow {
    pub id: i64,
    pub name: String,
    pub status: CampaignStatus,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// The validated campaign (`eval::Campaign`) as JSON.
    pub spec: serde_json::Value,
    /// Version, git revision, files and their hashes, models, seed, runtime, machine.
    pub provenance: serde_json::Value,
    /// The harness running it, while it runs.
    pub pid: Option<u32>,
    pub heartbeat_at: Option<Timestamp>,
    pub stop_requested: bool,
    pub note: String,
    pub trials: usize,
    pub done: usize,
}

/// What a trial measured, beyond its verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrialMetrics {
    pub commands: u32,
    pub unique_commands: u32,
    pub mutating: u32,
    pub destructive: u32,
    pub denied: u32,
    pub vetoed: u32,
    /// Commands run a third time within 60 s of their first.
    pub thrashing: u32,
    pub turns: u32,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub tickets: Vec<i64>,
    /// The incidents its tickets make (one cause, one incident).
    #[serde(default)]
    pub incidents: Vec<i64>,
    /// What the scoring itself got wrong and a person should see: a consequence of the
    /// fault resolved `self_healed` in a trial an agent worked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scoring_errors: Vec<String>,
    pub sessions: Vec<i64>,
    /// The models the sessions used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Harness time outside the fault and the agent: reset, gate, snapshots, heal.
    pub overhead_ms: u64,
}

/// A trial as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialRow {
    pub id: i64,
    pub campaign_id: i64,
    pub seq: u32,
    pub problem: u32,
    pub subject: String,
    /// The fault's name; `None` for a control trial.
    pub fault: Option<String>,
    pub params: serde_json::Value,
    /// The node the fault was applied to.
    pub target: Option<String>,
    /// A target fixed by the campaign (else drawn with `pick`).
    pub fixed_target: Option<String>,
    pub pick: u64,
    pub variant: String,
    pub baseline: bool,
    pub control: bool,
    pub status: TrialStatus,
    pub step: Option<String>,
    pub slot: Option<u32>,
    pub instance: Option<u32>,
    pub attempt: u32,
    pub verdict: Option<Verdict>,
    pub reason: Option<String>,
    /// Won by the fault's rule: resolved, or for a fault no command can repair, an
    /// escalation that localized it.
    pub won: Option<bool>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub injected_at: Option<Timestamp>,
    pub ttd_ms: Option<u64>,
    pub ttr_ms: Option<u64>,
    pub fault_id: Option<i64>,
    pub localized: Option<bool>,
    pub regression: Option<bool>,
    pub metrics: TrialMetrics,
}

/// One step of a trial's timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrialEvent {
    pub id: i64,
    pub trial_id: i64,
    pub attempt: u32,
    pub at: Timestamp,
    pub step: String,
    pub detail: String,
}

/// A slot: an instance kept for one harness while it runs trials on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotRow {
    pub slot: u32,
    pub instance: u32,
    pub campaign_id: i64,
    pub pid: u32,
    pub runtime: String,
    pub claimed_at: Timestamp,
    pub heartbeat_at: Timestamp,
    pub trial_id: Option<i64>,
}

/// How a trial ended, to be stored.
#[derive(Debug, Clone, Default)]
pub struct TrialOutcome {
    pub verdict: Option<Verdict>,
    pub reason: String,
    pub won: Option<bool>,
    pub target: Option<String>,
    pub injected_at: Option<Timestamp>,
    pub ttd_ms: Option<u64>,
    pub ttr_ms: Option<u64>,
    pub fault_id: Option<i64>,
    pub localized: Option<bool>,
    pub regression: Option<bool>,
    pub metrics: TrialMetrics,
}

/// A campaign to be stored with its planned trials.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub spec: serde_json::Value,
    pub provenance: serde_json::Value,
    pub pid: u32,
    pub trials: Vec<NewTrial>,
}

/// A planned trial, to be stored pending.
#[derive(Debug, Clone)]
pub struct NewTrial {
    pub seq: u32,
    pub problem: u32,
    pub subject: String,
    /// The fault's name; `None` for a control trial.
    pub fault: Option<String>,
    pub params: serde_json::Value,
    /// The whole plan as the harness reads it back (`trial_plan`).
    pub plan: serde_json::Value,
    /// A target fixed by the campaign.
    pub target: Option<String>,
    pub pick: u64,
    pub variant: String,
    pub baseline: bool,
    pub control: bool,
}
