//! The agent's record: every session and every step — text and thinking, each tool call
//! with its policy class and decision, who approved or vetoed and why, exit codes,
//! durations, output, tokens and cost. Secrets are redacted before anything is written.

use serde::{Deserialize, Serialize};

use super::llm::Usage;
use super::redact::Redactor;
use crate::clock::Timestamp;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// What the model said.
    Text,
    Thinking,
    /// The model asked for a tool.
    ToolCall,
    /// A person (or the policy) decided about a command.
    Approval,
    ToolResult,
    /// A person's guidance, sent to the model.
    Guidance,
    /// The monitor's verdict on a fix.
    Verify,
    Error,
    /// Anything else worth knowing (budgets, retries, stop reasons).
    Note,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Thinking => "thinking",
            Self::ToolCall => "tool_call",
            Self::Approval => "approval",
            Self::ToolResult => "tool_result",
            Self::Guidance => "guidance",
            Self::Verify => "verify",
            Self::Error => "error",
            Self::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "text" => Self::Text,
            "thinking" => Self::Thinking,
            "tool_call" => Self::ToolCall,
            "approval" => Self::Approval,
            "tool_result" => Self::ToolResult,
            "guidance" => Self::Guidance,
            "verify" => Self::Verify,
            "error" => Self::Error,
            _ => Self::Note,
        }
    }
}

/// One step of a session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: i64,
    pub at: Option<Timestamp>,
    pub kind: Option<Kind>,
    pub content: String,
    pub tool: Option<String>,
    pub tool_use_id: Option<String>,
    pub command: Option<String>,
    /// The policy class of a command.
    pub policy: Option<String>,
    /// run, ask, approved, vetoed, edited, refused, allowed_always.
    pub decision: Option<String>,
    /// Who decided: policy, a person (`person:NAME`), the model.
    pub actor: Option<String>,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<i64>,
    pub detail: serde_json::Value,
}

impl Entry {
    pub fn new(kind: Kind, content: impl Into<String>) -> Self {
        Self {
            kind: Some(kind),
            content: content.into(),
            detail: serde_json::Value::Null,
            ..Default::default()
        }
    }
}

/// A session as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: i64,
    pub ticket_id: i64,
    pub agent_id: String,
    pub backend: String,
    pub model: String,
    pub mode: String,
    pub variant: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    /// resolved, escalated, released, failed (or None while it runs).
    pub outcome: Option<String>,
    pub summary: Option<String>,
    pub turns: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_usd: f64,
    pub error: Option<String>,
}

/// How a new session is labelled.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub ticket_id: i64,
    pub agent_id: String,
    pub backend: String,
    pub model: String,
    pub mode: String,
    pub variant: String,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Ending {
    pub outcome: String,
    pub summary: Option<String>,
    pub turns: u32,
    pub usage: Usage,
    pub cost_usd: f64,
    pub error: Option<String>,
}

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
