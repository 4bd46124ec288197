//! The agent's record: sessions and their steps, as rows and in SQL. What is written here
//! is already redacted (by `agent::audit::Audit`).

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::sqlite::{exec, row};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};

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
    /// The lead ticket of the incident it worked.
    pub ticket_id: i64,
    pub incident_id: Option<i64>,
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
    pub incident_id: i64,
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
    pub tokens: Tokens,
    pub cost_usd: f64,
    pub error: Option<String>,
}

/// The tokens a session used, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// What the store does with the agent's record.
pub trait AuditDb {
    fn start_session(&self, s: &NewSession) -> Result<i64, StoreError>;
    /// Appends one step; returns its sequence number and time.
    fn log_entry(&self, session: i64, e: &Entry) -> Result<(i64, Timestamp), StoreError>;
    fn end_session(&self, session: i64, e: &Ending) -> Result<(), StoreError>;
    /// Sessions, newest first; of one ticket if given (every session that worked its
    /// incident).
    fn sessions(&self, ticket: Option<i64>, limit: usize) -> Result<Vec<Session>, StoreError>;
    fn session(&self, id: i64) -> Result<Option<Session>, StoreError>;
    /// A session's steps in order, from `after` (exclusive) on.
    fn entries(&self, session: i64, after: i64) -> Result<Vec<Entry>, StoreError>;
}

const SESSION_COLUMNS: &str = "id, ticket_id, agent_id, backend, model, mode, variant, started_at, \
    ended_at, outcome, summary, turns, input_tokens, output_tokens, cache_read_tokens, \
    cache_write_tokens, cost_usd, error, incident_id";

fn ts(s: String) -> rusqlite::Result<Timestamp> {
    clock::parse(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn session_from_row(r: &Row) -> rusqlite::Result<Session> {
    Ok(Session {
        id: r.get(0)?,
        ticket_id: r.get(1)?,
        agent_id: r.get(2)?,
        backend: r.get(3)?,
        model: r.get(4)?,
        mode: r.get(5)?,
        variant: r.get(6)?,
        started_at: ts(r.get(7)?)?,
        ended_at: r.get::<_, Option<String>>(8)?.map(ts).transpose()?,
        outcome: r.get(9)?,
        summary: r.get(10)?,
        turns: r.get(11)?,
        input_tokens: r.get(12)?,
        output_tokens: r.get(13)?,
        cache_read_tokens: r.get(14)?,
        cache_write_tokens: r.get(15)?,
        cost_usd: r.get(16)?,
        error: r.get(17)?,
        incident_id: r.get(18)?,
    })
}

fn entry_from_row(r: &Row) -> rusqlite::Result<Entry> {
    let detail: String = r.get(12)?;
    Ok(Entry {
        seq: r.get(0)?,
        at: Some(ts(r.get(1)?)?),
        kind: Some(Kind::parse(&r.get::<_, String>(2)?)),
        content: r.get(3)?,
        command: r.get(4)?,
        policy: r.get(5)?,
        exit_code: r.get(6)?,
        duration_ms: r.get(7)?,
        tool: r.get(8)?,
        tool_use_id: r.get(9)?,
        decision: r.get(10)?,
        actor: r.get(11)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
    })
}

impl AuditDb for Sqlite {
    fn start_session(&self, s: &NewSession) -> Result<i64, StoreError> {
        self.write(|tx| {
            exec(tx,
                "INSERT INTO agent_sessions (ticket_id, agent_id, backend, model, mode, variant, started_at, incident_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![s.ticket_id, s.agent_id, s.backend, s.model, s.mode, s.variant, clock::format(clock::now()), s.incident_id],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn log_entry(&self, session: i64, e: &Entry) -> Result<(i64, Timestamp), StoreError> {
        // Stamped when it happened, not when the writer got to it.
        let at = e.at.unwrap_or_else(clock::now);
        let detail = if e.detail.is_null() {
            "{}".to_string()
        } else {
            e.detail.to_string()
        };
        let seq = self.write(|tx| {
            let seq: i64 = row(tx,
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_log WHERE session_id = ?1",
                [session],
                |row| row.get(0),
            )?;
            exec(tx,
                "INSERT INTO agent_log (session_id, seq, at, kind, content, command, policy, exit_code,
                        duration_ms, tool, tool_use_id, decision, actor, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    session,
                    seq,
                    clock::format(at),
                    e.kind.unwrap_or(Kind::Note).as_str(),
                    e.content,
                    e.command,
                    e.policy,
                    e.exit_code,
                    e.duration_ms,
                    e.tool,
                    e.tool_use_id,
                    e.decision,
                    e.actor,
                    detail
                ],
            )?;
            Ok(seq)
        })?;
        Ok((seq, at))
    }

    fn end_session(&self, session: i64, e: &Ending) -> Result<(), StoreError> {
        self.write(|tx| {
            exec(
                tx,
                "UPDATE agent_sessions SET ended_at = ?2, outcome = ?3, summary = ?4, turns = ?5,
                        input_tokens = ?6, output_tokens = ?7, cache_read_tokens = ?8,
                        cache_write_tokens = ?9, cost_usd = ?10, error = ?11
                 WHERE id = ?1",
                params![
                    session,
                    clock::format(clock::now()),
                    e.outcome,
                    e.summary,
                    e.turns,
                    e.tokens.input as i64,
                    e.tokens.output as i64,
                    e.tokens.cache_read as i64,
                    e.tokens.cache_write as i64,
                    e.cost_usd,
                    e.error
                ],
            )?;
            Ok(())
        })
    }

    /// Sessions, newest first; of one ticket if given.
    fn sessions(&self, ticket: Option<i64>, limit: usize) -> Result<Vec<Session>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM agent_sessions
                 WHERE (?1 IS NULL OR ticket_id = ?1
                        OR incident_id = (SELECT incident_id FROM tickets WHERE id = ?1))
                 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![ticket, limit as i64], session_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn session(&self, id: i64) -> Result<Option<Session>, StoreError> {
        self.read(|c| {
            Ok(row(
                c,
                &format!("SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE id = ?1"),
                [id],
                session_from_row,
            )
            .optional()?)
        })
    }

    /// A session's steps in order, from `after` (exclusive) on.
    fn entries(&self, session: i64, after: i64) -> Result<Vec<Entry>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT seq, at, kind, content, command, policy, exit_code, duration_ms, tool,
                        tool_use_id, decision, actor, detail
                 FROM agent_log WHERE session_id = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![session, after], entry_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }
}
