//! The store: tickets, agent sessions and their audit, the chaos ledger and the
//! evaluation's campaigns and trials in one DB — SQLite today, one file that monitors, agents, the CLI
//! and the app share across processes.
//!
//! SQL lives only here, behind typed operations ([`TicketDb`], [`IncidentDb`], [`AuditDb`],
//! [`LedgerDb`], [`EvalDb`]);
//! a PostgreSQL store later is one more implementation of [`Db`]. Every operation blocks, so
//! async code reaches the DB only through [`Store::call`], which runs it on a blocking thread:
//! a DB locked by another process stalls that call, never a tokio worker.

pub mod audit;
pub mod eval;
mod incidents;
pub mod ledger;
pub mod schema;
mod sqlite;
mod ticket_rows;
mod tickets;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use audit::AuditDb;
pub use eval::EvalDb;
pub use incidents::IncidentDb;
pub use ledger::LedgerDb;
pub use sqlite::Sqlite;
pub use tickets::TicketDb;

use crate::tickets::Status;

/// Everything the store does.
pub trait Db: TicketDb + IncidentDb + AuditDb + LedgerDb + EvalDb + Send + Sync + 'static {}
impl<T: TicketDb + IncidentDb + AuditDb + LedgerDb + EvalDb + Send + Sync + 'static> Db for T {}

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
    #[error("no incident #{0}")]
    NoIncident(i64),
    /// An agent's operation on an incident it does not hold (its lease was lost, a person
    /// resolved it).
    #[error("incident #{id} is {status}: {message}")]
    IncidentTransition {
        id: i64,
        status: Status,
        message: String,
    },
    #[error("ticket DB: a stored value is invalid: {0}")]
    Corrupt(String),
    #[error("ticket DB: the thread doing the work failed: {0}")]
    Worker(String),
}

impl StoreError {
    /// The agent no longer holds what it worked on: its lease ran out or someone else moved
    /// it on. Trying again will not help.
    pub fn is_lost_claim(&self) -> bool {
        matches!(
            self,
            Self::Transition { .. } | Self::IncidentTransition { .. } | Self::NoIncident(_)
        )
    }

    /// Another process holds the DB's lock past the busy timeout: worth trying again.
    pub fn is_busy(&self) -> bool {
        let code = match self {
            Self::Sql(rusqlite::Error::SqliteFailure(e, _))
            | Self::Open {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } => e.code,
            _ => return false,
        };
        matches!(
            code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    }
}

/// The async façade over the DB: cheap to clone, safe to share between tasks.
#[derive(Clone)]
pub struct Store {
    db: Arc<dyn Db>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating and migrating if needed) the SQLite DB at `path`, off the workers.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let p = path.to_path_buf();
        let db = tokio::task::spawn_blocking(move || Sqlite::open(&p))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))??;
        Ok(Self::new(Arc::new(db), path))
    }

    pub fn new(db: Arc<dyn Db>, path: &Path) -> Self {
        Self {
            db,
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs one typed operation (or several, in order) on a blocking thread.
    pub async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Db) -> Result<T, StoreError> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(db.as_ref()))
            .await
            .map_err(|e| StoreError::Worker(e.to_string()))?
    }
}

#[cfg(test)]
#[path = "tickets_tests.rs"]
mod tickets_tests;

#[cfg(test)]
#[path = "incidents_tests.rs"]
mod incidents_tests;
