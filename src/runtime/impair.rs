//! Network and disk faults as a runtime applies them. Killing and pausing are node actions;
//! these change a node's surroundings instead, and each is owned by a tag (`fault-<id>`), so
//! that heal removes exactly what its fault added and nothing of anyone else's.

use serde::{Deserialize, Serialize};

pub use crate::runtime::proxy::PartitionMode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Impairment {
    /// Every packet (or chunk) to and from the node waits `delay_ms` ± `jitter_ms`.
    Latency { delay_ms: u64, jitter_ms: u64 },
    /// The node is cut off from all its peers, Redis included.
    Partition { mode: PartitionMode },
    /// The node's links carry at most this many bytes per second each way.
    Bandwidth { bytes_per_sec: u64 },
    /// The node's data volume is filled up to this percentage of its size.
    DiskFill { percent: u8 },
}

impl Impairment {
    pub fn describe(&self) -> String {
        match *self {
            Self::Latency {
                delay_ms,
                jitter_ms,
            } => format!("latency {delay_ms}ms ± {jitter_ms}ms"),
            Self::Partition { mode } => format!("partition ({})", mode.as_str()),
            Self::Bandwidth { bytes_per_sec } => format!("bandwidth {bytes_per_sec} B/s"),
            Self::DiskFill { percent } => format!("disk filled to {percent}%"),
        }
    }

    /// The proxy toxic with the same effect, for the faults a proxy can carry.
    pub fn toxic(&self) -> Option<crate::runtime::proxy::Toxic> {
        use crate::runtime::proxy::Toxic;
        match *self {
            Self::Latency {
                delay_ms,
                jitter_ms,
            } => Some(Toxic::Latency {
                delay_ms,
                jitter_ms,
            }),
            Self::Partition { mode } => Some(Toxic::Partition { mode }),
            Self::Bandwidth { bytes_per_sec } => Some(Toxic::Bandwidth { bytes_per_sec }),
            Self::DiskFill { .. } => None,
        }
    }
}

/// The tag a fault's changes carry, in proxy toxics, iptables comments and fill file names.
pub fn tag(fault_id: i64) -> String {
    format!("fault-{fault_id}")
}
