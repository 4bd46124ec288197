//! What the monitor hands the store each cycle, and what the cycle changed.

use std::time::Duration;

use serde::Serialize;

use super::model::{Resolution, Status};
use crate::clock::Timestamp;
use crate::invariant::{Consequence, Scope, Violation};

/// The monitor's name in event rows.
pub const MONITOR: &str = "monitor";

/// A violation the monitor saw this cycle, and whether its grace period is over.
#[derive(Debug, Clone)]
pub struct Observed {
    pub violation: Violation,
    /// Past its grace period: may open a ticket. A violation still in grace only keeps an
    /// existing ticket alive.
    pub due: bool,
}

/// One monitor cycle's verdict for one subject instance.
#[derive(Debug, Clone)]
pub struct CycleInput {
    pub subject: String,
    pub instance: u32,
    pub at: Timestamp,
    pub flap_window: Duration,
    pub violations: Vec<Observed>,
    /// What the observation could not decide: tickets in there are left alone.
    pub unknown: Vec<Scope>,
    /// The subject's declarations of which violations follow from which: they group
    /// tickets into incidents.
    pub consequences: &'static [Consequence],
    /// Tickets that open within this time of an incident's last one join it, if related.
    pub correlation_window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "resolution")]
pub enum ChangeKind {
    Opened,
    Reopened,
    Resolved(Resolution),
    /// Gone, but the ticket cannot be resolved now (held, or an agent holds it).
    Cleared,
    /// Back after having been seen gone, on a ticket that was never resolved.
    SeenAgain,
}

/// What a cycle changed, for heartbeat lines and the TUI's event log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketChange {
    pub ticket_id: i64,
    pub violation_key: String,
    pub invariant: String,
    pub entity: String,
    pub change: ChangeKind,
    pub summary: String,
    /// The ticket's incident after the change.
    pub incident_id: Option<i64>,
}

/// What applying a cycle did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Applied {
    pub changes: Vec<TicketChange>,
    /// Tickets of the instance not resolved, afterwards.
    pub active: usize,
}

/// Which tickets to list.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    /// Only tickets that are not resolved.
    pub active: bool,
    pub subject: Option<String>,
    pub instance: Option<u32>,
    pub limit: Option<usize>,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only incidents that are not resolved.
    pub active: bool,
    pub subject: Option<String>,
    pub instance: Option<u32>,
    pub limit: Option<usize>,
}
