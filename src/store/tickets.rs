//! The tickets' SQL. Every write is one `BEGIN IMMEDIATE` transaction, so that writers in
//! several processes queue on the busy timeout instead of failing, and two monitors on one DB
//! never open two tickets for one violation.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSqlOutput, ValueRef};
use rusqlite::{OptionalExtension, Row, ToSql, Transaction, params};
use tracing::debug;

use super::sqlite::{exec, row};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};
use crate::invariant::Severity;
use crate::tickets::state::{self, Transition};
use crate::tickets::{
    Applied, ChangeKind, CycleInput, MONITOR, Resolution, Status, Ticket, TicketChange,
    TicketEvent, TicketFilter, violation_key,
};

/// What the store does with tickets.
pub trait TicketDb {
    /// Applies one monitor cycle: refreshes, opens, reopens, clears and resolves tickets.
    /// A cycle that sees nothing wrong where nothing is open writes nothing.
    fn apply(&self, input: &CycleInput) -> Result<Applied, StoreError>;
    fn ticket(&self, id: i64) -> Result<Ticket, StoreError>;
    fn ticket_events(&self, id: i64) -> Result<Vec<TicketEvent>, StoreError>;
    /// Tickets, newest first.
    fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError>;
    /// A person closes a ticket. If the violation is still there, the monitor reopens it.
    fn resolve_manual(&self, id: i64, actor: &str, reason: &str) -> Result<Ticket, StoreError>;
    /// Holds (or releases) a ticket: a held ticket is never resolved automatically.
    fn set_held(
        &self,
        id: i64,
        held: bool,
        actor: &str,
        reason: &str,
    ) -> Result<Ticket, StoreError>;
    /// An agent takes the oldest open ticket (most severe first) of `scope` (subject,
    /// instance) for `lease`. Tickets whose agent's lease ran out are given back first;
    /// tickets that already had `max_attempts` sessions are escalated instead of claimed.
    /// Never two agents on one ticket.
    fn claim_next(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max_attempts: u32,
    ) -> Result<Option<Ticket>, StoreError>;
    /// Extends an agent's lease; an error if the agent no longer holds the ticket.
    fn renew_lease(&self, id: i64, agent: &str, lease: Duration) -> Result<Ticket, StoreError>;
    /// The monitor still sees the violation after the agent said it was fixed.
    fn verify_failed(&self, id: i64, agent: &str, reason: &str) -> Result<Ticket, StoreError>;
    /// An agent gives a ticket back (its session failed): open again for another attempt,
    /// or escalated when the attempts are spent.
    fn give_back(
        &self,
        id: i64,
        agent: &str,
        reason: &str,
        max_attempts: u32,
    ) -> Result<Ticket, StoreError>;
    /// An agent that stops lets go of its ticket at once: open again, and the cut session
    /// does not count as an attempt.
    fn release(&self, id: i64, agent: &str, reason: &str) -> Result<Ticket, StoreError>;
    /// An agent says the ticket is fixed: the monitor's next look decides.
    fn mark_verifying(&self, id: i64, agent: &str, summary: &str) -> Result<Ticket, StoreError>;
    /// The agent gives up, or its budget is spent: a person decides.
    fn escalate(&self, id: i64, actor: &str, reason: &str) -> Result<Ticket, StoreError>;
    /// A number that changes whenever another connection commits: cheap change detection.
    fn data_version(&self) -> Result<i64, StoreError>;
    /// Tickets of an instance that opened or reopened at or after `since`, with the time
    /// they first did: what a fault injected then caused (never "the newest ticket").
    fn tickets_since(
        &self,
        subject: &str,
        instance: u32,
        since: Timestamp,
    ) -> Result<Vec<(Ticket, Timestamp)>, StoreError>;
}

/// Not resolved, spelled so that SQLite can use the status indexes (`!=` cannot).
const ACTIVE: &str = "status IN ('open', 'in_progress', 'verifying', 'escalated')";

const COLUMNS: &str = "id, violation_key, subject, instance, invariant, entity, severity, status, \
    held, summary, detail, occurrences, observations, opened_at, last_seen_at, cleared_at, \
    resolved_at, resolution, claimed_by, lease_expires_at, attempts, updated_at";

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

fn ts(row: &Row, i: usize) -> rusqlite::Result<Timestamp> {
    row.get::<_, Ts>(i).map(|t| t.0)
}

fn ts_opt(row: &Row, i: usize) -> rusqlite::Result<Option<Timestamp>> {
    row.get::<_, Option<Ts>>(i).map(|t| t.map(|t| t.0))
}

fn ticket_from_row(row: &Row) -> rusqlite::Result<Ticket> {
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
    })
}

fn event_from_row(row: &Row) -> rusqlite::Result<TicketEvent> {
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
fn event(
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

fn get_in(tx: &Transaction, id: i64) -> Result<Ticket, StoreError> {
    row(
        tx,
        &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
        [id],
        ticket_from_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound(id))
}

fn check(t: &Ticket, transition: Transition) -> Result<Status, StoreError> {
    state::next(t.status, transition).map_err(|m| StoreError::Transition {
        id: t.id,
        status: t.status,
        message: m.into(),
    })
}

/// Moves a ticket to resolved with `resolution`, and writes the event.
fn resolve_in(
    tx: &Transaction,
    t: &Ticket,
    resolution: Resolution,
    at: Timestamp,
    actor: &str,
    reason: &str,
) -> Result<(), StoreError> {
    let to = check(t, Transition::Resolve(resolution))?;
    let now = clock::format(at);
    exec(
        tx,
        "UPDATE tickets SET status = ?2, resolution = ?3, resolved_at = ?4, cleared_at = NULL,
                claimed_by = NULL, lease_expires_at = NULL, updated_at = ?4
         WHERE id = ?1",
        params![t.id, to, resolution, now],
    )?;
    event(
        tx,
        t.id,
        at,
        "resolved",
        (Some(t.status), Some(to)),
        actor,
        reason,
    )?;
    Ok(())
}

impl TicketDb for Sqlite {
    /// Applies one monitor cycle: refreshes, opens, reopens, clears and resolves tickets.
    #[tracing::instrument(skip_all, fields(subject = %input.subject, instance = input.instance))]
    fn apply(&self, input: &CycleInput) -> Result<Applied, StoreError> {
        if input.violations.is_empty() {
            let open: i64 = self.read(|c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT COUNT(*) FROM tickets WHERE subject = ?1 AND instance = ?2 AND {ACTIVE}"
                ))?
                .query_row(params![&input.subject, input.instance], |r| r.get(0))?)
            })?;
            if open == 0 {
                return Ok(Applied::default());
            }
        }
        self.write(|tx| apply_in(tx, input))
    }

    fn ticket(&self, id: i64) -> Result<Ticket, StoreError> {
        self.read(|c| {
            row(
                c,
                &format!("SELECT {COLUMNS} FROM tickets WHERE id = ?1"),
                [id],
                ticket_from_row,
            )
            .optional()?
            .ok_or(StoreError::NotFound(id))
        })
    }

    fn ticket_events(&self, id: i64) -> Result<Vec<TicketEvent>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ticket_id, at, kind, from_status, to_status, actor, reason
                 FROM ticket_events WHERE ticket_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([id], event_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Tickets, newest first.
    fn tickets(&self, filter: &TicketFilter) -> Result<Vec<Ticket>, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM tickets WHERE 1 = 1");
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(s) = filter.status {
            sql.push_str(" AND status = ?");
            args.push(Box::new(s));
        }
        if filter.active {
            sql.push_str(&format!(" AND {ACTIVE}"));
        }
        if let Some(s) = &filter.subject {
            sql.push_str(" AND subject = ?");
            args.push(Box::new(s.clone()));
        }
        if let Some(i) = filter.instance {
            sql.push_str(" AND instance = ?");
            args.push(Box::new(i));
        }
        sql.push_str(" ORDER BY id DESC");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.read(|c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
                ticket_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// A person closes a ticket. If the violation is still there, the monitor reopens it.
    fn resolve_manual(&self, id: i64, actor: &str, reason: &str) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            resolve_in(tx, &t, Resolution::Manual, clock::now(), actor, reason)?;
            get_in(tx, id)
        })
    }

    /// Holds (or releases) a ticket: a held ticket is never resolved automatically.
    fn set_held(
        &self,
        id: i64,
        held: bool,
        actor: &str,
        reason: &str,
    ) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            if t.held == held {
                return Ok(t);
            }
            if t.status == Status::Resolved && held {
                return Err(StoreError::Transition {
                    id,
                    status: t.status,
                    message: "a resolved ticket cannot be held".into(),
                });
            }
            let now = clock::now();
            exec(
                tx,
                "UPDATE tickets SET held = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, held, clock::format(now)],
            )?;
            let kind = if held { "held" } else { "unheld" };
            event(
                tx,
                id,
                now,
                kind,
                (Some(t.status), Some(t.status)),
                actor,
                reason,
            )?;
            get_in(tx, id)
        })
    }

    /// An agent takes the oldest open ticket (most severe first) of `scope` (subject,
    /// instance) for `lease`. Tickets whose agent's lease ran out are given back first;
    /// tickets that already had `max_attempts` sessions are escalated instead of claimed.
    /// Never two agents on one ticket.
    fn claim_next(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max_attempts: u32,
    ) -> Result<Option<Ticket>, StoreError> {
        self.write(|tx| {
            let now = clock::now();
            release_expired_in(tx, now)?;
            let (subject, instance) = scope.map_or((None, None), |(s, i)| (Some(s), Some(i)));
            let candidates: Vec<i64> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id FROM tickets WHERE status = 'open'
                       AND (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR instance = ?2)
                     ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END,
                              opened_at, id",
                )?;
                let rows = stmt.query_map(params![subject, instance], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for id in candidates {
                let t = get_in(tx, id)?;
                if t.attempts >= max_attempts {
                    let to = check(&t, Transition::Escalate)?;
                    exec(tx,
                        "UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1",
                        params![id, to, clock::format(now)],
                    )?;
                    let reason = format!("{} agent sessions did not fix it; a person decides", t.attempts);
                    event(tx, id, now, "escalated", (Some(t.status), Some(to)), MONITOR, &reason)?;
                    continue;
                }
                let to = check(&t, Transition::Claim)?;
                let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                exec(tx,
                    "UPDATE tickets SET status = ?2, claimed_by = ?3, lease_expires_at = ?4,
                            attempts = attempts + 1, cleared_at = NULL, updated_at = ?5 WHERE id = ?1",
                    params![id, to, agent, clock::format(until), clock::format(now)],
                )?;
                event(tx, id, now, "claimed", (Some(t.status), Some(to)), &format!("agent:{agent}"), "claimed with a lease")?;
                return get_in(tx, id).map(Some);
            }
            Ok(None)
        })
    }

    /// Extends an agent's lease; an error if the agent no longer holds the ticket.
    fn renew_lease(&self, id: i64, agent: &str, lease: Duration) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            let held = t.claimed_by.as_deref() == Some(agent)
                && matches!(t.status, Status::InProgress | Status::Verifying);
            if !held {
                return Err(StoreError::Transition {
                    id,
                    status: t.status,
                    message: format!("agent {agent} no longer holds it"),
                });
            }
            let until = clock::now() + chrono::Duration::from_std(lease).unwrap_or_default();
            exec(
                tx,
                "UPDATE tickets SET lease_expires_at = ?2 WHERE id = ?1",
                params![id, clock::format(until)],
            )?;
            get_in(tx, id)
        })
    }

    /// The monitor still sees the violation after the agent said it was fixed.
    fn verify_failed(&self, id: i64, agent: &str, reason: &str) -> Result<Ticket, StoreError> {
        self.agent_transition(id, agent, Transition::VerifyFailed, "verify_failed", reason)
    }

    /// An agent gives a ticket back (its session failed): open again for another attempt,
    /// or escalated when the attempts are spent.
    fn give_back(
        &self,
        id: i64,
        agent: &str,
        reason: &str,
        max_attempts: u32,
    ) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            if t.claimed_by.as_deref() != Some(agent) {
                return Err(StoreError::Transition {
                    id,
                    status: t.status,
                    message: format!("it is not claimed by agent {agent}"),
                });
            }
            let now = clock::now();
            let actor = format!("agent:{agent}");
            let mut status = t.status;
            if status == Status::Verifying {
                let to = check(&t, Transition::VerifyFailed)?;
                event(
                    tx,
                    id,
                    now,
                    "verify_failed",
                    (Some(status), Some(to)),
                    &actor,
                    reason,
                )?;
                status = to;
            }
            let (transition, kind) = if t.attempts >= max_attempts {
                (Transition::Escalate, "escalated")
            } else {
                (Transition::Release, "released")
            };
            let to = state::next(status, transition).map_err(|m| StoreError::Transition {
                id,
                status,
                message: m.into(),
            })?;
            exec(
                tx,
                "UPDATE tickets SET status = ?2, claimed_by = NULL, lease_expires_at = NULL,
                        updated_at = ?3 WHERE id = ?1",
                params![id, to, clock::format(now)],
            )?;
            let why = if kind == "escalated" {
                format!(
                    "{reason} (attempt {} of {max_attempts}: a person decides)",
                    t.attempts
                )
            } else {
                reason.to_string()
            };
            event(tx, id, now, kind, (Some(status), Some(to)), &actor, &why)?;
            get_in(tx, id)
        })
    }

    /// An agent says the ticket is fixed: the monitor's next look decides.
    fn mark_verifying(&self, id: i64, agent: &str, summary: &str) -> Result<Ticket, StoreError> {
        self.agent_transition(id, agent, Transition::Verify, "verifying", summary)
    }

    /// The agent gives up, or its budget is spent: a person decides.
    fn escalate(&self, id: i64, actor: &str, reason: &str) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            let to = check(&t, Transition::Escalate)?;
            let now = clock::now();
            exec(
                tx,
                "UPDATE tickets SET status = ?2, claimed_by = NULL, lease_expires_at = NULL,
                        updated_at = ?3 WHERE id = ?1",
                params![id, to, clock::format(now)],
            )?;
            event(
                tx,
                id,
                now,
                "escalated",
                (Some(t.status), Some(to)),
                actor,
                reason,
            )?;
            get_in(tx, id)
        })
    }

    fn release(&self, id: i64, agent: &str, reason: &str) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            if t.claimed_by.as_deref() != Some(agent) {
                return Err(StoreError::Transition {
                    id,
                    status: t.status,
                    message: format!("it is not claimed by agent {agent}"),
                });
            }
            let now = clock::now();
            let actor = format!("agent:{agent}");
            let mut status = t.status;
            if status == Status::Verifying {
                let to = check(&t, Transition::VerifyFailed)?;
                event(
                    tx,
                    id,
                    now,
                    "verify_failed",
                    (Some(status), Some(to)),
                    &actor,
                    reason,
                )?;
                status = to;
            }
            let to =
                state::next(status, Transition::Release).map_err(|m| StoreError::Transition {
                    id,
                    status,
                    message: m.into(),
                })?;
            exec(
                tx,
                "UPDATE tickets SET status = ?2, claimed_by = NULL, lease_expires_at = NULL,
                        attempts = MAX(attempts - 1, 0), updated_at = ?3 WHERE id = ?1",
                params![id, to, clock::format(now)],
            )?;
            event(
                tx,
                id,
                now,
                "released",
                (Some(status), Some(to)),
                &actor,
                reason,
            )?;
            get_in(tx, id)
        })
    }

    fn tickets_since(
        &self,
        subject: &str,
        instance: u32,
        since: Timestamp,
    ) -> Result<Vec<(Ticket, Timestamp)>, StoreError> {
        self.read(|c| {
            let cols = COLUMNS
                .split(", ")
                .map(|col| format!("t.{}", col.trim()))
                .collect::<Vec<_>>()
                .join(", ");
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {cols}, MIN(e.at) FROM tickets t
                 JOIN ticket_events e ON e.ticket_id = t.id
                 WHERE t.subject = ?1 AND t.instance = ?2
                   AND e.kind IN ('opened', 'reopened') AND e.at >= ?3
                 GROUP BY t.id ORDER BY MIN(e.at), t.id"
            ))?;
            let rows = stmt.query_map(params![subject, instance, clock::format(since)], |r| {
                Ok((ticket_from_row(r)?, ts(r, 22)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn data_version(&self) -> Result<i64, StoreError> {
        self.read(|c| Ok(c.pragma_query_value(None, "data_version", |r| r.get(0))?))
    }
}

impl Sqlite {
    fn agent_transition(
        &self,
        id: i64,
        agent: &str,
        transition: Transition,
        kind: &str,
        reason: &str,
    ) -> Result<Ticket, StoreError> {
        self.write(|tx| {
            let t = get_in(tx, id)?;
            if t.claimed_by.as_deref() != Some(agent) {
                return Err(StoreError::Transition {
                    id,
                    status: t.status,
                    message: format!("it is not claimed by agent {agent}"),
                });
            }
            let to = check(&t, transition)?;
            let now = clock::now();
            exec(
                tx,
                "UPDATE tickets SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, to, clock::format(now)],
            )?;
            event(
                tx,
                id,
                now,
                kind,
                (Some(t.status), Some(to)),
                &format!("agent:{agent}"),
                reason,
            )?;
            get_in(tx, id)
        })
    }
}

/// Gives back tickets whose agent's lease ran out (the agent crashed or hung).
fn release_expired_in(tx: &Transaction, now: Timestamp) -> Result<(), StoreError> {
    let expired: Vec<i64> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id FROM tickets WHERE status IN ('in_progress', 'verifying') AND lease_expires_at < ?1",
        )?;
        let rows = stmt.query_map([clock::format(now)], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for id in expired {
        let mut t = get_in(tx, id)?;
        if t.status == Status::Verifying {
            let to = check(&t, Transition::VerifyFailed)?;
            event(
                tx,
                id,
                now,
                "verify_failed",
                (Some(t.status), Some(to)),
                MONITOR,
                "the agent's lease expired before the fix was confirmed",
            )?;
            t.status = to;
        }
        let to = check(&t, Transition::Release)?;
        exec(
            tx,
            "UPDATE tickets SET status = ?2, claimed_by = NULL, lease_expires_at = NULL,
                    updated_at = ?3 WHERE id = ?1",
            params![id, to, clock::format(now)],
        )?;
        let who = t.claimed_by.as_deref().unwrap_or("?");
        event(
            tx,
            id,
            now,
            "released",
            (Some(t.status), Some(to)),
            MONITOR,
            &format!("lease of agent {who} expired"),
        )?;
    }
    Ok(())
}

fn apply_in(tx: &Transaction, input: &CycleInput) -> Result<Applied, StoreError> {
    let at = input.at;
    let now = clock::format(at);
    let mut changes = Vec::new();
    let mut active: HashMap<String, Ticket> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tickets WHERE subject = ?1 AND instance = ?2 AND {ACTIVE}"
        ))?;
        let rows = stmt.query_map(params![&input.subject, input.instance], ticket_from_row)?;
        rows.map(|r| r.map(|t| (t.violation_key.clone(), t)))
            .collect::<rusqlite::Result<_>>()?
    };
    let change = |t: &Ticket, kind: ChangeKind, summary: &str| TicketChange {
        ticket_id: t.id,
        violation_key: t.violation_key.clone(),
        invariant: t.invariant.clone(),
        entity: t.entity.clone(),
        change: kind,
        summary: summary.to_string(),
    };

    for seen in &input.violations {
        let v = &seen.violation;
        let key = violation_key(&input.subject, input.instance, &v.invariant, &v.entity);
        let detail = v.detail.to_string();
        if let Some(t) = active.remove(&key) {
            exec(
                tx,
                "UPDATE tickets SET last_seen_at = ?2, observations = observations + 1,
                        summary = ?3, detail = ?4, severity = ?5, cleared_at = NULL, updated_at = ?2
                 WHERE id = ?1",
                params![t.id, now, v.summary, detail, v.severity],
            )?;
            if t.cleared_at.is_some() {
                event(
                    tx,
                    t.id,
                    at,
                    "seen_again",
                    (Some(t.status), Some(t.status)),
                    MONITOR,
                    &v.summary,
                )?;
                changes.push(change(&t, ChangeKind::SeenAgain, &v.summary));
            }
            continue;
        }
        if !seen.due {
            continue;
        }
        let flap_since = at - chrono::Duration::from_std(input.flap_window).unwrap_or_default();
        let recent: Option<Ticket> = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM tickets WHERE violation_key = ?1 AND status = 'resolved'
                     AND resolved_at >= ?2 ORDER BY resolved_at DESC LIMIT 1"
                ),
                params![key, clock::format(flap_since)],
                ticket_from_row,
            )
            .optional()?;
        if let Some(t) = recent {
            let to = check(&t, Transition::Reopen)?;
            exec(
                tx,
                // A new occurrence: agents get their attempts afresh.
                "UPDATE tickets SET status = ?2, resolution = NULL, resolved_at = NULL,
                        cleared_at = NULL, occurrences = occurrences + 1, attempts = 0,
                        observations = observations + 1, last_seen_at = ?3, summary = ?4,
                        detail = ?5, severity = ?6, updated_at = ?3
                 WHERE id = ?1",
                params![t.id, to, now, v.summary, detail, v.severity],
            )?;
            let ago = t.resolved_at.map_or(0, |r| (at - r).num_seconds().max(0));
            let reason = format!("came back {ago}s after it was resolved: {}", v.summary);
            event(
                tx,
                t.id,
                at,
                "reopened",
                (Some(t.status), Some(to)),
                MONITOR,
                &reason,
            )?;
            changes.push(change(&t, ChangeKind::Reopened, &v.summary));
            continue;
        }
        exec(
            tx,
            "INSERT INTO tickets (violation_key, subject, instance, invariant, entity, severity,
                    status, summary, detail, opened_at, last_seen_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, ?8, ?9, ?9, ?9)",
            params![
                key,
                &input.subject,
                input.instance,
                v.invariant,
                v.entity,
                v.severity,
                v.summary,
                detail,
                now
            ],
        )?;
        let id = tx.last_insert_rowid();
        event(
            tx,
            id,
            at,
            "opened",
            (None, Some(Status::Open)),
            MONITOR,
            &v.summary,
        )?;
        let t = get_in(tx, id)?;
        changes.push(change(&t, ChangeKind::Opened, &v.summary));
    }

    // What is left was not seen this cycle: gone, unless the observation could not tell.
    for t in active.into_values() {
        let unknown = input
            .unknown
            .iter()
            .any(|s| s.covers(&t.invariant, &t.entity));
        if unknown {
            continue;
        }
        let lease_live = t.lease_expires_at.is_some_and(|l| l > at);
        let resolution = match t.status {
            _ if t.held => None,
            Status::Verifying => Some(Resolution::Verified),
            Status::InProgress if lease_live => None,
            Status::Open | Status::Escalated | Status::InProgress => Some(Resolution::SelfHealed),
            Status::Resolved => None,
        };
        match resolution {
            Some(r) => {
                let reason = match r {
                    Resolution::Verified => "the monitor saw the violation gone after the fix",
                    _ => "the violation went away by itself",
                };
                resolve_in(tx, &t, r, at, MONITOR, reason)?;
                changes.push(change(&t, ChangeKind::Resolved(r), reason));
            }
            None if t.cleared_at.is_none() => {
                let reason = if t.held {
                    "the violation is gone; the ticket is held, so it stays until unheld"
                } else {
                    "the violation is gone; an agent holds the ticket"
                };
                exec(
                    tx,
                    "UPDATE tickets SET cleared_at = ?2, updated_at = ?2 WHERE id = ?1",
                    params![t.id, now],
                )?;
                event(
                    tx,
                    t.id,
                    at,
                    "cleared",
                    (Some(t.status), Some(t.status)),
                    MONITOR,
                    reason,
                )?;
                changes.push(change(&t, ChangeKind::Cleared, reason));
            }
            None => {}
        }
    }
    let active: i64 = tx
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM tickets WHERE subject = ?1 AND instance = ?2 AND {ACTIVE}"
        ))?
        .query_row(params![&input.subject, input.instance], |r| r.get(0))?;
    debug!(changes = changes.len(), active, "cycle applied");
    Ok(Applied {
        changes,
        active: usize::try_from(active).unwrap_or_default(),
    })
}
