//! Tickets: one per broken invariant and entity, in SQLite, the contract between the
//! monitor, the agent and the TUI (which may be three processes).
//!
//! `open → in_progress → verifying → resolved`, or `escalated`; every transition is an event
//! row saying who and why. A ticket is resolved by evidence (the monitor saw the violation
//! gone), by a person, never by a model saying so.

pub mod model;
pub mod schema;
pub mod state;
pub mod store;

use std::path::PathBuf;

pub use model::{Resolution, Status, Ticket, TicketEvent};
pub use store::{ChangeKind, CycleInput, Observed, TicketChange, TicketFilter, TicketStore};

/// The key that makes a violation one ticket: subject, instance, invariant and entity.
pub fn violation_key(subject: &str, instance: u32, invariant: &str, entity: &str) -> String {
    format!("{subject}/{instance}:{invariant}:{entity}")
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ticket DB {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("ticket DB {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "ticket DB {path} has schema version {found}, newer than this build knows ({known}); use a newer operator"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("ticket DB {path}: migration {version} failed: {source}")]
    Migration {
        path: PathBuf,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("ticket DB: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("no ticket #{0}")]
    NotFound(i64),
    #[error("ticket #{id} is {status}: {message}")]
    Transition {
        id: i64,
        status: Status,
        message: String,
    },
    #[error("ticket DB: a stored value is invalid: {0}")]
    Corrupt(String),
}

#[cfg(test)]
mod tests;
