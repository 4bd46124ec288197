//! The agent's record: every session and every step — text and thinking, each tool call
//! with its policy class and decision, who approved or vetoed and why, exit codes,
//! durations, output, tokens and cost. Secrets are redacted before anything is written.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::llm::Usage;
use super::redact::Redactor;
use crate::clock::{self, Timestamp};
use crate::tickets::{StoreError, TicketStore};

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

    fn parse(s: &str) -> Self {
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
pub struct NewSession<'a> {
    pub ticket_id: i64,
    pub agent_id: &'a str,
    pub backend: &'a str,
    pub model: &'a str,
    pub mode: &'a str,
    pub variant: &'a str,
}

/// How a session ended.
pub struct Ending<'a> {
    pub outcome: &'a str,
    pub summary: Option<&'a str>,
    pub turns: u32,
    pub usage: Usage,
    pub cost_usd: f64,
    pub error: Option<&'a str>,
}

const SESSION_COLUMNS: &str = "id, ticket_id, agent_id, backend, model, mode, variant, started_at, \
    ended_at, outcome, summary, turns, input_tokens, output_tokens, cache_read_tokens, \
    cache_write_tokens, cost_usd, error";

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

/// Writes and reads the audit, redacting on the way in.
#[derive(Clone)]
pub struct Audit {
    store: TicketStore,
    redactor: Redactor,
}

impl Audit {
    pub fn new(store: TicketStore, redactor: Redactor) -> Self {
        Self { store, redactor }
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn start(&self, s: &NewSession) -> Result<i64, StoreError> {
        self.store.write(|tx| {
            tx.execute(
                "INSERT INTO agent_sessions (ticket_id, agent_id, backend, model, mode, variant, started_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![s.ticket_id, s.agent_id, s.backend, s.model, s.mode, s.variant, clock::format(clock::now())],
            )?;
            Ok(tx.last_insert_rowid())
        })
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
    pub fn log(&self, session: i64, e: &Entry) -> Result<Entry, StoreError> {
        let mut e = self.redacted(e);
        let at = clock::now();
        let detail = if e.detail.is_null() {
            "{}".to_string()
        } else {
            e.detail.to_string()
        };
        let seq = self.store.write(|tx| {
            let seq: i64 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM agent_log WHERE session_id = ?1",
                [session],
                |row| row.get(0),
            )?;
            tx.execute(
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
        e.seq = seq;
        e.at = Some(at);
        Ok(e)
    }

    pub fn end(&self, session: i64, e: &Ending) -> Result<(), StoreError> {
        let r = &self.redactor;
        self.store.write(|tx| {
            tx.execute(
                "UPDATE agent_sessions SET ended_at = ?2, outcome = ?3, summary = ?4, turns = ?5,
                        input_tokens = ?6, output_tokens = ?7, cache_read_tokens = ?8,
                        cache_write_tokens = ?9, cost_usd = ?10, error = ?11
                 WHERE id = ?1",
                params![
                    session,
                    clock::format(clock::now()),
                    e.outcome,
                    e.summary.map(|s| r.redact(s)),
                    e.turns,
                    e.usage.input_tokens as i64,
                    e.usage.output_tokens as i64,
                    e.usage.cache_read_input_tokens as i64,
                    e.usage.cache_creation_input_tokens as i64,
                    e.cost_usd,
                    e.error.map(|s| r.redact(s))
                ],
            )?;
            Ok(())
        })
    }

    /// Sessions, newest first; of one ticket if given.
    pub fn sessions(&self, ticket: Option<i64>, limit: usize) -> Result<Vec<Session>, StoreError> {
        self.store.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE (?1 IS NULL OR ticket_id = ?1)
                 ORDER BY id DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![ticket, limit as i64], session_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub fn session(&self, id: i64) -> Result<Option<Session>, StoreError> {
        self.store.read(|c| {
            Ok(c.query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM agent_sessions WHERE id = ?1"),
                [id],
                session_from_row,
            )
            .optional()?)
        })
    }

    /// A session's steps in order, from `after` (exclusive) on.
    pub fn entries(&self, session: i64, after: i64) -> Result<Vec<Entry>, StoreError> {
        self.store.read(|c| {
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
