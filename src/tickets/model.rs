//! What a ticket is, as stored and as shown (`--json` prints these shapes).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::invariant::Severity;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    InProgress,
    Verifying,
    Resolved,
    Escalated,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Self::Open,
        Self::InProgress,
        Self::Verifying,
        Self::Resolved,
        Self::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::InProgress => "in_progress",
            Self::Verifying => "verifying",
            Self::Resolved => "resolved",
            Self::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a ticket came to be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// An agent said it fixed it, and the monitor then saw the violation gone.
    Verified,
    /// The violation went away while nobody was working on it.
    SelfHealed,
    /// A person closed it.
    Manual,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verified => "verified",
            Self::SelfHealed => "self_healed",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Verified, Self::SelfHealed, Self::Manual]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: i64,
    pub violation_key: String,
    pub subject: String,
    pub instance: u32,
    pub invariant: String,
    /// The node or key the ticket is about, e.g. `ratelimiter-2`.
    pub entity: String,
    pub severity: Severity,
    pub status: Status,
    /// Blocks automatic resolution.
    pub held: bool,
    pub summary: String,
    pub detail: serde_json::Value,
    /// Times the violation appeared: 1, plus one per reopening.
    pub occurrences: u32,
    /// Observations that saw the violation.
    pub observations: u64,
    pub opened_at: Timestamp,
    pub last_seen_at: Timestamp,
    /// When the violation was last seen gone while the ticket could not be resolved yet.
    pub cleared_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub resolution: Option<Resolution>,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    pub attempts: u32,
    pub updated_at: Timestamp,
}

/// One row of a ticket's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    pub id: i64,
    pub ticket_id: i64,
    pub at: Timestamp,
    pub kind: String,
    pub from_status: Option<Status>,
    pub to_status: Option<Status>,
    pub actor: String,
    pub reason: String,
}
