//! The agent's record: every session and every step — text and thinking, each tool call
//! with its policy class and decision, who approved or vetoed and why, exit codes,
//! durations, output, tokens and cost. Secrets are redacted before anything is written.

use super::redact::Redactor;
pub use crate::store::audit::{Ending, Entry, Kind, NewSession, Session, Tokens};
use crate::store::{Store, StoreError};

/// Writes and reads the audit, redacting on the way in; the DB work runs off the async
/// workers.
#[derive(Clone)]
pub struct Audit {
    store: Store,
    redactor: Redactor,
}

impl Audit {
    pub fn new(store: Store, redactor: Redactor) -> Self {
        Self { store, redactor }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub async fn start(&self, s: NewSession) -> Result<i64, StoreError> {
        self.store.call(move |db| db.start_session(&s)).await
    }

    /// The entry with every secret redacted: what is stored and what is shown.
    pub fn redacted(&self, e: &Entry) -> Entry {
        let r = &self.redactor;
        Entry {
            content: r.redact(&e.content),
            command: e.command.as_deref().map(|c| r.redact(c)),
            detail: if e.detail.is_null() {
                serde_json::Value::Null
            } else {
                r.redact_json(&e.detail)
            },
            ..e.clone()
        }
    }

    /// Appends one step (redacted); returns it as stored, with its sequence number and time.
    pub async fn log(&self, session: i64, e: &Entry) -> Result<Entry, StoreError> {
        let mut e = self.redacted(e);
        let stored = e.clone();
        let (seq, at) = self
            .store
            .call(move |db| db.log_entry(session, &stored))
            .await?;
        e.seq = seq;
        e.at = Some(at);
        Ok(e)
    }

    pub async fn end(&self, session: i64, mut e: Ending) -> Result<(), StoreError> {
        let r = &self.redactor;
        e.summary = e.summary.map(|s| r.redact(&s));
        e.error = e.error.map(|s| r.redact(&s));
        self.store.call(move |db| db.end_session(session, &e)).await
    }

    /// Sessions, newest first; of one ticket if given.
    pub async fn sessions(
        &self,
        ticket: Option<i64>,
        limit: usize,
    ) -> Result<Vec<Session>, StoreError> {
        self.store.call(move |db| db.sessions(ticket, limit)).await
    }

    pub async fn session(&self, id: i64) -> Result<Option<Session>, StoreError> {
        self.store.call(move |db| db.session(id)).await
    }

    /// A session's steps in order, from `after` (exclusive) on.
    pub async fn entries(&self, session: i64, after: i64) -> Result<Vec<Entry>, StoreError> {
        self.store.call(move |db| db.entries(session, after)).await
    }
}
