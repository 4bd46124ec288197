//! Subjects: the distributed systems Operator watches.
//!
//! A subject knows its expected topology, how to observe it, and its invariants. Observing
//! never fails: what could not be seen is recorded in the observation and the invariants it
//! would have decided are reported as unknown, so nothing is resolved on missing evidence.

pub mod invariant;
pub mod launch;
pub mod ratelimiter;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use invariant::{Assessment, InvariantInfo, Scope, Severity, Violation};

use crate::clock::Timestamp;

/// The subjects this build knows.
pub const SUBJECTS: &[&str] = &["ratelimiter"];

/// How a node looked to the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Answered and said it is healthy.
    Up,
    /// Answered, but unhealthy or with something unexpected.
    Degraded,
    /// Refused the connection: nothing listens.
    Down,
    /// Accepted but did not answer in time (hung, paused, overloaded).
    Unresponsive,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
            Self::Unresponsive => "unresponsive",
        }
    }

    /// Down for the purpose of `node_down`: it does not serve.
    pub fn is_out(self) -> bool {
        matches!(self, Self::Down | Self::Unresponsive)
    }
}

/// One node as observed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeObservation {
    pub name: String,
    pub role: String,
    pub address: String,
    pub state: NodeState,
    /// Why the node is not up, in a sentence.
    pub detail: Option<String>,
    /// How long the health probe took.
    pub probe_ms: Option<f64>,
}

/// What one look at a subject saw. Subject-specific facts sit in `facts`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    pub at: Timestamp,
    pub subject: String,
    pub instance: u32,
    /// Set when the subject could not be observed at all.
    pub error: Option<String>,
    pub nodes: Vec<NodeObservation>,
    pub facts: serde_json::Value,
    pub duration_ms: f64,
}

impl Observation {
    pub fn nodes_up(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.state == NodeState::Up)
            .count()
    }
}

/// An observation and the verdict of the subject's invariants on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub observation: Observation,
    pub assessment: Assessment,
}

/// What an agent needs to know to work on a subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubjectContext {
    /// Topology, endpoints and useful commands, for the system prompt (Markdown).
    pub description: String,
    /// Named values (addresses, ports) that runbooks and prompts may use.
    pub facts: serde_json::Value,
}

/// A system under watch.
#[async_trait]
pub trait Subject: Send {
    fn name(&self) -> &str;
    fn instance(&self) -> u32;
    /// The invariants this subject checks, with their severities and grace periods.
    fn invariants(&self) -> &[InvariantInfo];
    /// Looks at the subject once and checks its invariants. Never fails: errors are data.
    async fn observe(&mut self) -> Snapshot;
    /// The context an agent works in; an error when the subject's topology is unknown.
    fn context(&self) -> Result<SubjectContext, String>;
    /// Brings a running instance back to a clean state for the next trial: starts what is
    /// down, resumes what is paused, clears the subject's data. Faults are the harness's to
    /// heal (it holds the ledger) before it calls this. Says what it did; an error when the
    /// instance cannot be reset in place (the harness then takes it down and up).
    async fn reset(&mut self) -> Result<String, String>;
    /// Invariants this subject cannot decide on its runtime by design (a volume the local
    /// runtime does not bound): their unknowns do not keep a steady-state gate shut.
    fn undecidable(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The steady background traffic a trial runs under, light enough to change nothing:
    /// invariants about serving (latency) are decided only under traffic.
    fn load_spec(&self) -> Option<crate::load::LoadSpec> {
        None
    }
}

/// An unknown subject name, with the known ones.
pub fn unknown_subject(name: &str) -> String {
    format!(
        "unknown subject `{name}`; known subjects: {}",
        SUBJECTS.join(", ")
    )
}
