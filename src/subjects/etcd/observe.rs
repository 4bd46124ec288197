//! One look at an etcd cluster: every expected member asked for its own status and metrics
//! directly (a dead member is `down`, it does not vanish), and the member list from one that
//! answers. Nothing here needs a quorum: a lost quorum is seen, not waited on.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::EtcdConfig;
use super::gateway::{Gateway, GatewayError, Member, Status};
use super::topology::ROLE_MEMBER;
use crate::runtime::{DiskUsage, Topology, TopologyNode};
use crate::subjects::NodeState;
use crate::subjects::histogram::{self, LatencyStat, LatencyWindow};

pub const COMMIT_HISTOGRAM: &str = "etcd_disk_backend_commit_duration_seconds";
pub const FSYNC_HISTOGRAM: &str = "etcd_disk_wal_fsync_duration_seconds";

/// One member as probed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberProbe {
    pub name: String,
    pub address: String,
    pub state: NodeState,
    pub detail: Option<String>,
    pub probe_ms: Option<f64>,
    /// Its own status, when it answered.
    pub status: Option<Status>,
    /// Leader changes it saw within the leader window (from its metrics).
    pub leader_changes: Option<u64>,
    /// Its backend quota, as it reports it.
    pub quota_bytes: Option<u64>,
    pub commit: Option<LatencyStat>,
    pub fsync: Option<LatencyStat>,
    /// Its data volume, where the runtime bounds one (and why not, when it could not tell).
    #[serde(default)]
    pub disk: Option<DiskUsage>,
    #[serde(default)]
    pub disk_error: Option<String>,
}

impl MemberProbe {
    pub fn answered(&self) -> bool {
        self.status.is_some()
    }

    pub fn knows_leader(&self) -> bool {
        self.status.as_ref().is_some_and(|s| s.leader != 0)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EtcdObservation {
    /// Set when the cluster could not be observed at all.
    pub error: Option<String>,
    pub members: Vec<MemberProbe>,
    /// The cluster's member list, as `member_list_from` reported it.
    pub member_list: Option<Vec<Member>>,
    pub member_list_from: Option<String>,
    pub member_list_error: Option<String>,
}

impl EtcdObservation {
    pub fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            members: Vec::new(),
            member_list: None,
            member_list_from: None,
            member_list_error: None,
        }
    }

    /// The fewest members that make a quorum.
    pub fn majority(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// The leader's id, as most answering members see it.
    pub fn leader(&self) -> Option<u64> {
        let mut votes: HashMap<u64, usize> = HashMap::new();
        for s in self.members.iter().filter_map(|m| m.status.as_ref()) {
            if s.leader != 0 {
                *votes.entry(s.leader).or_default() += 1;
            }
        }
        votes.into_iter().max_by_key(|(_, n)| *n).map(|(id, _)| id)
    }

    /// The member that is the leader, when it answered.
    pub fn leader_probe(&self) -> Option<&MemberProbe> {
        let id = self.leader()?;
        self.members
            .iter()
            .find(|m| m.status.as_ref().is_some_and(|s| s.header.member_id == id))
    }
}

/// A counter's or gauge's value in a `/metrics` page: the first sample of `name`.
fn sample(text: &str, name: &str) -> Option<f64> {
    crate::subjects::exposition::sample(text, name, None)
}

/// A counter's increase over a window: scrapes kept back to the window's start.
#[derive(Debug, Default)]
struct CounterWindow {
    scrapes: VecDeque<(Instant, f64)>,
}

impl CounterWindow {
    fn update(&mut self, at: Instant, value: f64, window: Duration) -> u64 {
        // A restarted member starts its counters again.
        if self.scrapes.back().is_some_and(|(_, last)| *last > value) {
            self.scrapes.clear();
        }
        self.scrapes.push_back((at, value));
        while self.scrapes.len() > 1 && self.scrapes[0].0 < at.checked_sub(window).unwrap_or(at) {
            self.scrapes.pop_front();
        }
        let first = self.scrapes.front().map_or(value, |(_, v)| *v);
        (value - first).max(0.0) as u64
    }
}

#[derive(Default)]
struct Windows {
    leader_changes: CounterWindow,
    commit: LatencyWindow,
    fsync: LatencyWindow,
}

/// Probes a cluster, keeping what it needs between looks (counter and histogram scrapes).
pub struct Observer {
    cfg: EtcdConfig,
    gateway: Gateway,
    windows: HashMap<String, Windows>,
}

impl Observer {
    pub fn new(cfg: EtcdConfig) -> Self {
        Self {
            gateway: Gateway::new(cfg.probe_timeout),
            cfg,
            windows: HashMap::new(),
        }
    }

    pub async fn observe(&mut self, topology: &Topology) -> EtcdObservation {
        let members: Vec<&TopologyNode> = topology
            .nodes
            .iter()
            .filter(|n| n.role == ROLE_MEMBER)
            .collect();
        if members.is_empty() {
            return EtcdObservation::failed("the recorded topology has no etcd member".into());
        }
        let gateway = &self.gateway;
        let probed =
            futures::future::join_all(members.iter().map(|n| probe_member(gateway, n))).await;
        let now = Instant::now();
        let t = &self.cfg.thresholds;
        let mut out = Vec::with_capacity(probed.len());
        for (mut probe, metrics) in probed {
            let w = self.windows.entry(probe.name.clone()).or_default();
            match metrics {
                Some(text) => {
                    probe.leader_changes = sample(&text, "etcd_server_leader_changes_seen_total")
                        .map(|v| w.leader_changes.update(now, v, t.leader_window));
                    probe.quota_bytes =
                        sample(&text, "etcd_server_quota_backend_bytes").map(|v| v as u64);
                    for (family, window, stat) in [
                        (COMMIT_HISTOGRAM, &mut w.commit, &mut probe.commit),
                        (FSYNC_HISTOGRAM, &mut w.fsync, &mut probe.fsync),
                    ] {
                        match histogram::read(&text, family, None) {
                            Some(b) => *stat = window.update(now, b, t.latency_window),
                            None => window.reset(),
                        }
                    }
                }
                None => {
                    w.commit.reset();
                    w.fsync.reset();
                }
            }
            out.push(probe);
        }
        // The member list from an answering member: the leader's view when it answered.
        let mut obs = EtcdObservation {
            error: None,
            members: out,
            member_list: None,
            member_list_from: None,
            member_list_error: None,
        };
        let asked = obs
            .leader_probe()
            .or_else(|| obs.members.iter().find(|m| m.answered()))
            .map(|m| (m.name.clone(), m.address.clone()));
        if let Some((name, address)) = asked {
            match self.gateway.members(&address).await {
                Ok(list) => obs.member_list = Some(list),
                Err(e) => obs.member_list_error = Some(e.to_string()),
            }
            obs.member_list_from = Some(name);
        }
        obs
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(member = %node.name))]
async fn probe_member(gateway: &Gateway, node: &TopologyNode) -> (MemberProbe, Option<String>) {
    let start = Instant::now();
    let (status, metrics) = tokio::join!(
        gateway.status(&node.address),
        gateway.metrics(&node.address)
    );
    let mut probe = MemberProbe {
        name: node.name.clone(),
        address: node.address.clone(),
        state: NodeState::Up,
        detail: None,
        probe_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
        status: None,
        leader_changes: None,
        quota_bytes: None,
        commit: None,
        fsync: None,
        disk: None,
        disk_error: None,
    };
    match status {
        Ok(s) => {
            if s.leader == 0 {
                probe.state = NodeState::Degraded;
                probe.detail = Some("answers, but knows no leader".into());
            } else if !s.errors.is_empty() {
                probe.state = NodeState::Degraded;
                probe.detail = Some(s.errors.join("; "));
            }
            probe.status = Some(s);
        }
        Err(e) => {
            probe.state = e.node_state();
            probe.probe_ms = None;
            probe.detail = Some(match &e {
                GatewayError::Refused(_) => "not reachable: connection refused".to_string(),
                other => other.to_string(),
            });
        }
    }
    (probe, metrics.ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_plain_samples_and_not_their_labelled_cousins() {
        let text = "# HELP x\netcd_server_has_leader 1\netcd_server_leader_changes_seen_total 3\netcd_server_leader_changes_seen_total_other 9\netcd_server_quota_backend_bytes 1.6777216e+07\n";
        assert_eq!(
            sample(text, "etcd_server_leader_changes_seen_total"),
            Some(3.0)
        );
        assert_eq!(
            sample(text, "etcd_server_quota_backend_bytes"),
            Some(16_777_216.0)
        );
        assert_eq!(sample(text, "etcd_missing"), None);
    }

    #[test]
    fn counts_increases_inside_the_window_and_restarts() {
        let mut w = CounterWindow::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(60);
        assert_eq!(w.update(t0, 1.0, win), 0);
        assert_eq!(w.update(t0 + Duration::from_secs(10), 4.0, win), 3);
        // The early scrapes leave the window.
        assert_eq!(w.update(t0 + Duration::from_secs(100), 4.0, win), 0);
        // A restart: counting starts again.
        assert_eq!(w.update(t0 + Duration::from_secs(101), 1.0, win), 0);
    }
}
