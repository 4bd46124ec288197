//! The fault catalogue, and a fault with its parameters.

use serde::{Deserialize, Serialize};

use crate::runtime::Impairment;
use crate::runtime::impair::PartitionMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL (or `docker kill`): the node stays dead until someone starts it.
    NodeKill,
    /// SIGSTOP (or `docker pause`): the node holds its connections but answers nothing.
    Pause,
    Latency,
    NetworkPartition,
    Bandwidth,
    DiskPressure,
}

impl FaultKind {
    pub const ALL: [FaultKind; 6] = [
        Self::NodeKill,
        Self::Pause,
        Self::Latency,
        Self::NetworkPartition,
        Self::Bandwidth,
        Self::DiskPressure,
    ];
    pub const NAMES: &'static [&'static str] = &[
        "node_kill",
        "pause",
        "latency",
        "network_partition",
        "bandwidth",
        "disk_pressure",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeKill => "node_kill",
            Self::Pause => "pause",
            Self::Latency => "latency",
            Self::NetworkPartition => "network_partition",
            Self::Bandwidth => "bandwidth",
            Self::DiskPressure => "disk_pressure",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::NodeKill => "kill a node; heal starts it again",
            Self::Pause => {
                "freeze a node (it accepts connections but answers nothing); heal resumes it"
            }
            Self::Latency => "delay what a node sends (with jitter); heal removes the delay",
            Self::NetworkPartition => {
                "cut a node off from all its peers, Redis included; heal reconnects it"
            }
            Self::Bandwidth => "throttle a node's links; heal lifts the limit",
            Self::DiskPressure => "fill a node's data volume; heal deletes the fill",
        }
    }

    /// What heal does, in words for the ledger.
    pub fn heal_action(self) -> &'static str {
        match self {
            Self::NodeKill => "start",
            Self::Pause => "resume",
            Self::Latency | Self::NetworkPartition | Self::Bandwidth => "restore the network",
            Self::DiskPressure => "free the disk",
        }
    }

    /// What `inject` does to this kind's target, in words for refusals.
    pub fn verb(self) -> &'static str {
        match self {
            Self::NodeKill => "kill",
            Self::Pause => "pause",
            Self::Latency => "slow down",
            Self::NetworkPartition => "cut off",
            Self::Bandwidth => "throttle",
            Self::DiskPressure => "fill up",
        }
    }

    /// The role a random target is chosen from; `None`: any node of the subject but Redis.
    pub fn default_target(self) -> Option<&'static str> {
        match self {
            // Only Redis keeps data on a volume.
            Self::DiskPressure => Some("redis"),
            _ => None,
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault with its parameters, as injected and recorded in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    NodeKill,
    Pause,
    Impair(Impairment),
}

/// The defaults: a delay well over the `high_latency` threshold, a silent partition (as
/// dropped packets are), a link slow enough to notice, a disk over the usual alert line.
pub const DEFAULT_DELAY_MS: u64 = 150;
pub const DEFAULT_JITTER_MS: u64 = 50;
pub const DEFAULT_BYTES_PER_SEC: u64 = 16 * 1024;
pub const DEFAULT_FILL_PERCENT: u8 = 90;

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::NodeKill => FaultKind::NodeKill,
            Self::Pause => FaultKind::Pause,
            Self::Impair(Impairment::Latency { .. }) => FaultKind::Latency,
            Self::Impair(Impairment::Partition { .. }) => FaultKind::NetworkPartition,
            Self::Impair(Impairment::Bandwidth { .. }) => FaultKind::Bandwidth,
            Self::Impair(Impairment::DiskFill { .. }) => FaultKind::DiskPressure,
        }
    }

    pub fn impairment(&self) -> Option<&Impairment> {
        match self {
            Self::Impair(i) => Some(i),
            _ => None,
        }
    }

    /// The fault a ledger row describes: its parameters, or the kind's defaults for rows
    /// written before faults had parameters.
    pub fn from_record(kind: FaultKind, params: &serde_json::Value) -> Self {
        params
            .get("impairment")
            .and_then(|v| serde_json::from_value::<Impairment>(v.clone()).ok())
            .map(Self::Impair)
            .filter(|f| f.kind() == kind)
            .unwrap_or_else(|| kind.into())
    }
}

impl From<FaultKind> for Fault {
    fn from(kind: FaultKind) -> Self {
        match kind {
            FaultKind::NodeKill => Self::NodeKill,
            FaultKind::Pause => Self::Pause,
            FaultKind::Latency => Self::Impair(Impairment::Latency {
                delay_ms: DEFAULT_DELAY_MS,
                jitter_ms: DEFAULT_JITTER_MS,
            }),
            FaultKind::NetworkPartition => Self::Impair(Impairment::Partition {
                mode: PartitionMode::Blackhole,
            }),
            FaultKind::Bandwidth => Self::Impair(Impairment::Bandwidth {
                bytes_per_sec: DEFAULT_BYTES_PER_SEC,
            }),
            FaultKind::DiskPressure => Self::Impair(Impairment::DiskFill {
                percent: DEFAULT_FILL_PERCENT,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kinds() {
        for (k, n) in FaultKind::ALL.iter().zip(FaultKind::NAMES) {
            assert_eq!(k.as_str(), *n);
            assert_eq!(FaultKind::parse(n), Some(*k));
            assert_eq!(
                Fault::from(*k).kind(),
                *k,
                "defaults of {k} are of its kind"
            );
        }
        assert_eq!(FaultKind::parse("meltdown"), None);
    }

    #[test]
    fn parameters_come_back_from_the_ledger() {
        let f = Fault::Impair(Impairment::Latency {
            delay_ms: 400,
            jitter_ms: 0,
        });
        let params = serde_json::json!({ "duration": "1m", "impairment": f.impairment() });
        assert_eq!(Fault::from_record(FaultKind::Latency, &params), f);
        // Rows from before parameters, or of another kind, fall back to the defaults.
        assert_eq!(
            Fault::from_record(FaultKind::Latency, &serde_json::json!({})),
            FaultKind::Latency.into()
        );
        assert_eq!(Fault::from_record(FaultKind::Pause, &params), Fault::Pause);
    }
}
