//! Subjects: the distributed systems Operator watches.
//!
//! A subject knows its expected topology, how to observe it, and its invariants. Observing
//! never fails: what could not be seen is recorded in the observation and the invariants it
//! would have decided are reported as unknown, so nothing is resolved on missing evidence.

pub mod etcd;
pub mod exposition;
pub mod facts;
pub mod histogram;
pub mod launch;
pub mod ratelimiter;
pub mod registry;
pub mod tikv;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use crate::invariant::{Assessment, InvariantInfo, Scope, Severity, Violation};
pub use facts::Facts;

use crate::clock::Timestamp;
use crate::config::{Config, LocalRuntimeConfig};
use crate::runtime::{ClusterPlan, Runtime, RuntimeError};

/// What the registry knows of a subject before any instance of it runs.
#[async_trait]
pub trait SubjectKind: Sync {
    fn name(&self) -> &'static str;
    /// One line for `--help` and listings.
    fn about(&self) -> &'static str;
    /// The subject observing the instance `runtime` manages; an error when its section of
    /// the config is invalid.
    fn build(
        &self,
        runtime: Arc<dyn Runtime>,
        config: &Config,
    ) -> Result<Box<dyn Subject>, crate::config::ConfigError>;
    /// Checks its section of the config (the CLI does, when it loads the file).
    fn check_config(&self, config: &Config) -> Result<(), crate::config::ConfigError>;
    /// How to run its nodes on `runtime` (local ports are allocated here, afresh each call).
    fn plan(&self, runtime: &dyn Runtime, config: &Config) -> Result<ClusterPlan, RuntimeError>;
    /// Waits after `up` until the cluster serves, beyond each node's own health check.
    async fn settle(&self, _runtime: &dyn Runtime, _config: &Config) -> Result<(), String> {
        Ok(())
    }
    /// What the policy is told of this subject's programs and addresses.
    fn words(&self) -> &'static dyn crate::policy::SubjectWords;
    /// The built-in runbook (YAML) of the offline agent.
    fn runbook(&self) -> &'static str;
    /// Which of its violations are consequences of which: the tickets of one cause are one
    /// incident.
    fn consequences(&self) -> &'static [crate::invariant::Consequence];
    /// What chaos is told of this subject: its own faults, and where faults aim.
    fn faults(&self) -> &'static dyn crate::chaos::SubjectFaults;
    /// How `up` would have planned a node of `role`, for containers adopted rather than
    /// made: its health check and its place in the start order (data first, then the rig's
    /// proxy at 1, the nodes, the toolbox at 3). `None`: a node served over HTTP, at 2.
    fn adopted_role(&self, _role: &str) -> Option<(crate::runtime::HealthCheck, u8)> {
        None
    }
    /// How to get one of this subject's programs (by its file name) when it is missing.
    fn install_hint(&self, _program: &str) -> Option<String> {
        None
    }
    /// The guided demo's words.
    fn demo(&self) -> &'static DemoScript;
    /// Re-makes `node` from empty, the subject's way (`operator node reset`): for a member
    /// whose identity or data is beyond repair in place. Says what it did.
    async fn reset_node(&self, node: &str, _runtime: &dyn Runtime) -> Result<String, String> {
        Err(format!(
            "the {} subject has no way to reset {node}; `operator node restart` restarts it",
            self.name()
        ))
    }
}

/// The guided demo's words for a subject: a title and a paragraph per step (a healthy
/// cluster, load, a node killed, detection, diagnosis, recovery, verified health).
#[derive(Debug)]
pub struct DemoScript {
    pub steps: [(&'static str, &'static str); 7],
    /// The invariant whose ticket the kill opens on the killed node.
    pub ticket: &'static str,
    /// What the load line calls refused requests.
    pub refused: &'static str,
}

/// A program of ours: as configured, else `env`, else the one beside the running binary (or
/// beside its parent folder, for test binaries in `target/*/deps`), else from `PATH`.
pub fn our_program(name: &str, configured: Option<&PathBuf>, env: &str) -> PathBuf {
    if let Some(p) = configured {
        return p.clone();
    }
    if let Ok(p) = std::env::var(env) {
        return p.into();
    }
    let exe = std::env::current_exe().ok();
    if let Some(e) = &exe {
        if e.file_name().is_some_and(|f| f == name) {
            return e.clone();
        }
    }
    let beside = exe
        .as_ref()
        .and_then(|e| e.parent())
        .into_iter()
        .flat_map(|dir| [dir.join(name), dir.join("..").join(name)]);
    beside
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The `operator` program, which also serves as the fault proxy.
pub fn operator_program(local: &LocalRuntimeConfig) -> PathBuf {
    our_program("operator", local.operator_bin.as_ref(), "OPERATOR_BIN")
}

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
    pub facts: Facts,
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

impl SubjectContext {
    /// "Nodes:" and one line each, as the agent's commands reach them, the rig marked.
    pub fn node_lines(t: &crate::runtime::Topology) -> String {
        let mut d = String::from("Nodes:\n");
        for n in &t.nodes {
            d.push_str(&format!(
                "- {} ({}) at {}",
                n.name,
                n.role,
                crate::runtime::commands::reach(t, n)
            ));
            if let Some(c) = &n.client {
                d.push_str(&format!(
                    "; clients reach it through the fault proxy at {c}"
                ));
            }
            if crate::runtime::is_rig(&n.role) {
                d.push_str(" (part of the test rig, not the subject: leave it alone)");
            }
            d.push('\n');
        }
        d
    }

    /// One line per enabled invariant, for the prompt.
    pub fn invariant_lines(rules: &[InvariantInfo]) -> String {
        rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| {
                format!(
                    "- {} ({}): {}\n",
                    r.name,
                    r.severity.as_str(),
                    r.description
                )
            })
            .collect()
    }

    /// Each node's name and address as the agent's commands reach it.
    pub fn node_addresses(t: &crate::runtime::Topology) -> serde_json::Value {
        t.nodes
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    serde_json::Value::from(crate::runtime::commands::reach(t, n)),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// A system under watch.
#[async_trait]
pub trait Subject: Send {
    fn name(&self) -> &str;
    /// What the subject is, before any instance: its words for the policy, its runbook.
    fn kind(&self) -> &'static dyn SubjectKind;
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
    /// The subject's traffic (`operator load`), over the instance's nodes as clients
    /// reach them; an error when it takes none or its topology is unknown.
    async fn workload(
        &mut self,
        _options: &crate::load::LoadOptions,
    ) -> Result<Arc<dyn crate::load::Workload>, String> {
        Err(format!("the {} subject takes no load", self.name()))
    }
    /// The steady background traffic a trial runs under, light enough to change nothing:
    /// invariants about serving (latency) are decided only under traffic.
    async fn load_spec(&mut self) -> Option<crate::load::LoadSpec> {
        None
    }
    /// The safety oracle: checks that every write the load saw acknowledged is still there
    /// with its latest value. `None` when the subject's load keeps nothing to check.
    async fn verify_load(&mut self) -> Option<Result<LoadVerdict, String>> {
        None
    }
}

/// What the safety oracle found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadVerdict {
    /// Keys whose acknowledged writes were checked.
    pub checked: usize,
    /// Acknowledged writes that are gone or older than acknowledged.
    pub lost: Vec<LostWrite>,
}

impl LoadVerdict {
    pub fn summary(&self) -> String {
        if self.checked == 0 {
            "no acknowledged write is recorded yet (`operator load` records them)".into()
        } else if self.lost.is_empty() {
            format!("every acknowledged write of {} keys is there", self.checked)
        } else {
            format!(
                "{} of {} keys lost an acknowledged write (first: {} {})",
                self.lost.len(),
                self.checked,
                self.lost[0].key,
                self.lost[0].found
            )
        }
    }
}

/// One acknowledged write the cluster no longer has.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LostWrite {
    pub key: String,
    /// The value acknowledged, and at which revision.
    pub expected: String,
    pub revision: u64,
    /// What a read found instead.
    pub found: String,
}
