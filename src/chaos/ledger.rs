//! The chaos ledger: one row per fault, written before the fault is applied, so a crash never
//! leaves a fault nobody knows about. Its SQL is in the store.

use serde::{Deserialize, Serialize};

use super::FaultKind;
use crate::clock::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultStatus {
    /// Recorded; being applied.
    Injecting,
    Active,
    /// Someone is healing it.
    Healing,
    Healed,
    /// Could not be applied.
    Failed,
}

impl FaultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Injecting => "injecting",
            Self::Active => "active",
            Self::Healing => "healing",
            Self::Healed => "healed",
            Self::Failed => "failed",
        }
    }

    /// Still (possibly) in effect.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Injecting | Self::Active | Self::Healing)
    }
}

/// One fault in the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub id: i64,
    pub fault: FaultKind,
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub target: String,
    pub params: serde_json::Value,
    pub status: FaultStatus,
    pub injected_at: Timestamp,
    /// When it heals itself; `None`: only a heal ends it.
    pub expires_at: Option<Timestamp>,
    pub healed_at: Option<Timestamp>,
    pub injected_by: String,
    pub healed_by: Option<String>,
    pub note: String,
    pub updated_at: Timestamp,
}

/// A fault about to be applied.
#[derive(Debug, Clone)]
pub struct NewFault {
    pub fault: FaultKind,
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub target: String,
    pub params: serde_json::Value,
    pub expires_at: Option<Timestamp>,
    pub injected_by: String,
}
