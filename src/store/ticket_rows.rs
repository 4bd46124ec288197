//! A ticket as a row: the columns, the values' SQL forms, reading a row, writing an event,
//! checking a transition. The tickets' and the incidents' SQL both stand on it.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, ToSql, Transaction, params};

use super::StoreError;
use super::sqlite::{exec, row};
use crate::clock::{self, Timestamp};
use crate::invariant::Severity;
use crate::tickets::state::{self, Transition};
use crate::tickets::{Resolution, Status, Ticket, TicketEvent};

/// Not resolved, spelled so that SQLite can use the status indexes (`!=` cannot).
pub(super) const ACTIVE: &str = "status IN ('open', 'in_progress', 'verifying', 'escalated')";

pub(super) const COLUMNS: &str = "id, violation_key, subject, instance, invariant, entity, severity, status, \
    held, summary, detail, occurrences, observations, opened_at, last_seen_at, cleared_at, \
    resolved_at, resolution, claimed_by, lease_expires_at, attempts, updated_at, incident_id, \
    incident_root";

impl ToSql for Status {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}
impl FromSql for Status {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Status::parse(s).ok_or_else(|| FromSqlError::Other(format!("status {s:?}").into()))
    }
}
impl ToSql for Resolution {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}
impl FromSql for Resolution {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Resolution::parse(s).ok_or_else(|| FromSqlError::Other(format!("resolution {s:?}").into()))
    }
}
impl ToSql for Severity {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}
impl FromSql for Severity {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Severity::parse(s).ok_or_else(|| FromSqlError::Other(format!("severity {s:?}").into()))
    }
}

/// A stored timestamp (always written by [`clock::format`]).
struct Ts(Timestamp);

impl FromSql for Ts {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        clock::parse(s)
            .map(Ts)
            .map_err(|e| FromSqlError::Other(format!("timestamp {s:?}: {e}").into()))
    }
}

pub(super) fn ts(row: &Row, i: usize) -> rusqlite::Result<Timestamp> {
    row.get::<_, Ts>(i).map(|t| t.0)
}

pub(super) fn ts_opt(row: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<Ts>>(i).map(|t| t.map(|t| t.0))
}

pub(super) fn ticket_from_row(row: &Row) -> rusqlite::Result<Ticket> {
    let detail: String = row.get(10)?;
    Ok(Ticket {
        id: row.get(0)?,
        violation_key: row.get(1)?,
        subject: row.get(2)?,
        instance: row.get(3)?,
        invariant: row.get(4)?,
        entity: row.get(5)?,
        severity: row.get(6)?,
        status: row.get(7)?,
        held: row.get(8)?,
        summary: row.get(9)?,
        detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
        occurrences: row.get(11)?,
        observations: row.get::<_, i64>(12)?.max(0) as u64,
        opened_at: ts(row, 13)?,
        last_seen_at: ts(row, 14)?,
        cleared_at: ts_opt(row, 15)?,
        resolved_at: ts_opt(row, 16)?,
        resolution: row.get(17)?,
        claimed_by: row.get(18)?,
        lease_expires_at: ts_opt(row, 19)?,
        attempts: row.get(20)?,
        updated_at: ts(row, 21)?,
        incident_id: row.get(22)?,
        root: row.get(23)?,
    })
}

pub(super) fn event_from_row(row: &Row) -> rusqlite::Result<TicketEvent> {
    Ok(TicketEvent {
        id: row.get(0)?,
        ticket_id: row.get(1)?,
        at: ts(row, 2)?,
        kind: row.get(3)?,
        from_status: row.get(4)?,
        to_status: row.get(5)?,
        actor: row.get(6)?,
        reason: row.get(7)?,
    })
}

/// Writes one event row.
pub(super) fn event(
    tx: &Transaction,
    ticket: i64,
    at: Timestamp,
    kind: &str,
    (from, to): (Option<Status>, Option<Status>),
    actor: &str,
    reason: &str,
) -> rusqlite::Result<()> {
    exec(
        tx,
        "INSERT INTO ticket_events (ticket_id, at, kind, from_status, to_status, actor, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![ticket, clock::format(at), kind, from, to, actor, reason],
    )?;
    Ok(())
}

pub(super) fn get_in(tx: &Transaction, id: i64) -> Result<Ticket, StoreError> {
    row(
        tx,
        &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
        [id],
        ticket_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound(id))
}

pub(super) fn check(t: &Ticket, transition: Transition) -> Result<Status, StoreError> {
    state::next(t.status, transition).map_err(|m| StoreError::Transition {
        id: t.id,
        status: t.status,
        message: m.into(),
    })
}
