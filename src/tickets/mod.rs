//! Tickets: one per broken invariant and entity, the contract between the monitor, the agent
//! and the TUI (which may be three processes); kept by the store.
//!
//! `open → in_progress → verifying → resolved`, or `escalated`; every transition is an event
//! row saying who and why. A ticket is resolved by evidence (the monitor saw the violation
//! gone), by a person, never by a model saying so.

pub mod cycle;
pub mod model;
pub mod state;

pub use cycle::{
    Applied, ChangeKind, CycleInput, IncidentFilter, MONITOR, Observed, TicketChange, TicketFilter,
};
pub use model::{Claimed, Incident, Resolution, Status, Ticket, TicketEvent};

/// The key that makes a violation one ticket: subject, instance, invariant and entity.
pub fn violation_key(subject: &str, instance: u32, invariant: &str, entity: &str) -> String {
    format!("{subject}/{instance}:{invariant}:{entity}")
}
