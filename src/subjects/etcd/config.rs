//! The `[etcd]` section: how many members, how small a backend and how short the Raft timers
//! (so faults show within seconds), and the monitor's thresholds.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::invariant::RuleOverride;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Members of the cluster: an odd number, so that a majority is well defined.
    pub members: u8,
    /// The backend quota (`--quota-backend-bytes`): small, so that `nospace` fills it fast.
    pub quota_backend_bytes: u64,
    /// Raft's heartbeat interval (`--heartbeat-interval`).
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Raft's election timeout (`--election-timeout`): at least five heartbeats.
    #[serde(with = "humantime_serde")]
    pub election_timeout: Duration,
    /// The `etcd` program on the local runtime.
    pub etcd_bin: String,
    /// The image members run in on the Docker runtime.
    pub image: String,
    /// How long the monitor waits for any one probe.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    pub thresholds: EtcdThresholds,
    /// Per-invariant overrides by name, e.g. `[etcd.invariants.member_lagging]`.
    pub invariants: BTreeMap<String, RuleOverride>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            members: 3,
            quota_backend_bytes: 16 * 1024 * 1024,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            etcd_bin: "etcd".into(),
            image: "operator/etcd".into(),
            probe_timeout: Duration::from_millis(800),
            thresholds: EtcdThresholds::default(),
            invariants: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdThresholds {
    /// `backend_near_quota` fires when a member's backend is fuller than this (percent).
    pub quota_used_percent: f64,
    /// `member_lagging` fires when a member has applied this many entries fewer than the
    /// leader has committed.
    pub lag_entries: u64,
    /// `leader_flapping` fires on more leader changes than this within `leader_window`.
    pub leader_changes: u64,
    #[serde(with = "humantime_serde")]
    pub leader_window: Duration,
    /// `slow_commits` fires when a member's backend commit p99 exceeds this (etcd's own alert:
    /// 250 ms) ...
    pub commit_p99_ms: f64,
    /// ... or its WAL fsync p99 exceeds this (etcd's alert: 500 ms).
    pub fsync_p99_ms: f64,
    /// The window the p99s are computed over, and the fewest commits in it worth judging.
    #[serde(with = "humantime_serde")]
    pub latency_window: Duration,
    pub latency_min_samples: u64,
    /// `low_disk_space` fires when a member's data volume is fuller than this (percent),
    /// where the runtime bounds it (Docker's ext4 images).
    pub disk_used_percent: f64,
}

impl Default for EtcdThresholds {
    fn default() -> Self {
        Self {
            quota_used_percent: 80.0,
            lag_entries: 1000,
            leader_changes: 3,
            leader_window: Duration::from_secs(5 * 60),
            commit_p99_ms: 250.0,
            fsync_p99_ms: 500.0,
            latency_window: Duration::from_secs(30),
            latency_min_samples: 5,
            disk_used_percent: 80.0,
        }
    }
}

impl crate::config::Section for EtcdConfig {
    const NAME: &'static str = super::topology::SUBJECT;

    /// Checks types cannot express: the key under `[etcd]` at fault and why.
    fn validate(&self) -> Result<(), (String, String)> {
        let known_invariants = super::check::NAMES;
        let bad = |k: &str, m: String| Err((format!("etcd.{k}"), m));
        if !(1..=7).contains(&self.members) || self.members % 2 == 0 {
            return bad(
                "members",
                format!(
                    "{} members: choose 1, 3, 5 or 7 (an odd number has a clear majority)",
                    self.members
                ),
            );
        }
        if self.quota_backend_bytes < 1024 * 1024 {
            return bad(
                "quota_backend_bytes",
                format!("{} bytes: keep at least 1 MiB", self.quota_backend_bytes),
            );
        }
        if self.heartbeat < Duration::from_millis(10) {
            return bad("heartbeat", "must be at least 10ms".into());
        }
        if self.election_timeout < self.heartbeat * 5 {
            return bad(
                "election_timeout",
                format!(
                    "{} is less than five heartbeats ({}); etcd refuses that",
                    humantime::format_duration(self.election_timeout),
                    humantime::format_duration(self.heartbeat * 5)
                ),
            );
        }
        if self.probe_timeout.is_zero() {
            return bad("probe_timeout", "must be more than 0".into());
        }
        let q = self.thresholds.quota_used_percent;
        if !(q > 0.0 && q <= 100.0) {
            return bad(
                "thresholds.quota_used_percent",
                format!("{q} is not a percentage between 0 and 100"),
            );
        }
        let disk = self.thresholds.disk_used_percent;
        if !(disk > 0.0 && disk <= 100.0) {
            return bad(
                "thresholds.disk_used_percent",
                format!("{disk} is not a percentage between 0 and 100"),
            );
        }
        if self.thresholds.leader_window.is_zero() {
            return bad("thresholds.leader_window", "must be more than 0".into());
        }
        for name in self.invariants.keys() {
            if !known_invariants.contains(&name.as_str()) {
                return bad(
                    &format!("invariants.{name}"),
                    format!(
                        "unknown invariant `{name}`; etcd's invariants: {}",
                        known_invariants.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }
}
