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
    /// The incident this ticket is part of (one cause, one incident).
    pub incident_id: Option<i64>,
    /// Caused by none of its incident's other tickets.
    pub root: bool,
}

/// Tickets of one instance that share a cause, worked together: claimed at once by one
/// agent under one lease, counted as one attempt, verified together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: i64,
    pub subject: String,
    pub instance: u32,
    /// Its tickets' state taken together: resolved when all are, escalated when one is,
    /// worked (`in_progress`, `verifying`) while an agent holds it, else open.
    pub status: Status,
    pub opened_at: Timestamp,
    /// When a ticket last joined it: tickets join while they open within the correlation
    /// window of this, or while it is worked.
    pub last_joined_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<Timestamp>,
    /// Agent sessions that worked it.
    pub attempts: u32,
    /// The last agent that worked it.
    pub worked_by: Option<String>,
    /// The session whose repair the monitor is verifying, or verified.
    pub session_id: Option<i64>,
    /// Its root tickets' ids: caused by none of the others.
    pub roots: Vec<i64>,
    /// Every ticket's id, roots first, then in the order they opened.
    pub tickets: Vec<i64>,
    pub updated_at: Timestamp,
}

/// An incident with its tickets, roots first: what an agent claims and works.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claimed {
    pub incident: Incident,
    pub tickets: Vec<Ticket>,
}

impl Claimed {
    /// An incident of one ticket, the ticket its root: what every ticket of a DB from
    /// before incidents became.
    pub fn of_one(mut ticket: Ticket) -> Self {
        let id = *ticket.incident_id.get_or_insert(ticket.id);
        ticket.root = true;
        let incident = Incident {
            id,
            subject: ticket.subject.clone(),
            instance: ticket.instance,
            status: ticket.status,
            opened_at: ticket.opened_at,
            last_joined_at: ticket.opened_at,
            resolved_at: ticket.resolved_at,
            claimed_by: ticket.claimed_by.clone(),
            lease_expires_at: ticket.lease_expires_at,
            attempts: ticket.attempts,
            worked_by: ticket.claimed_by.clone(),
            session_id: None,
            roots: vec![ticket.id],
            tickets: vec![ticket.id],
            updated_at: ticket.updated_at,
        };
        Self {
            incident,
            tickets: vec![ticket],
        }
    }

    /// The ticket a session is named by: the first root.
    pub fn lead(&self) -> &Ticket {
        // A claimed incident has at least one ticket: the store never returns an empty one.
        &self.tickets[0]
    }

    /// The tickets not resolved.
    pub fn active(&self) -> impl Iterator<Item = &Ticket> {
        self.tickets.iter().filter(|t| t.status != Status::Resolved)
    }
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
