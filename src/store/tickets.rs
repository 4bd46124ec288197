//! The tickets' SQL. Every write is one `BEGIN IMMEDIATE` transaction, so that writers in
//! several processes queue on the busy timeout instead of failing, and two monitors on one DB
//! never open two tickets for one violation.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, ToSql, Transaction, params};
use tracing::debug;

use super::incidents;
use super::sqlite::{exec, row};
use super::ticket_rows::{
    ACTIVE, COLUMNS, check, event, event_from_row, get_in, ticket_from_row, ts,
};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};
use crate::tickets::state::Transition;
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
            let now = clock::now();
            resolve_in(tx, &t, Resolution::Manual, now, actor, reason)?;
            if let Some(incident) = t.incident_id {
                incidents::refresh_in(tx, incident, now)?;
            }
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
                Ok((ticket_from_row(r)?, ts(r, 24)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn data_version(&self) -> Result<i64, StoreError> {
        self.read(|c| Ok(c.pragma_query_value(None, "data_version", |r| r.get(0))?))
    }
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
        incident_id: t.incident_id,
    };
    // Tickets that opened or reopened this cycle: they join incidents below.
    let mut joined = Vec::new();

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
            joined.push(t.id);
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
        joined.push(id);
    }
    let mut touched = incidents::group_in(tx, input, &joined)?;

    // What is left was not seen this cycle: gone, unless the observation could not tell.
    for t in active.into_values() {
        let unknown = input
            .unknown
            .iter()
            .any(|s| s.covers(&t.invariant, &t.entity));
        if unknown {
            continue;
        }
        // Someone acts on it while an agent holds its incident: what clears meanwhile is
        // that agent's doing (or not yet), never "by itself".
        let work = incidents::work_in(tx, t.incident_id)?;
        let worked = work.as_ref().is_some_and(|w| w.lease_live(at));
        let resolution = match t.status {
            _ if t.held => None,
            Status::Verifying => Some(Resolution::Verified),
            Status::Open | Status::InProgress if worked => None,
            Status::Open | Status::Escalated | Status::InProgress => Some(Resolution::SelfHealed),
            Status::Resolved => None,
        };
        match resolution {
            Some(r) => {
                let reason = match (r, &work) {
                    (Resolution::Verified, Some(w)) => w.verified_reason(),
                    (Resolution::Verified, None) => {
                        "the monitor saw the violation gone after the fix".to_string()
                    }
                    _ => "the violation went away by itself, while nobody worked on it".to_string(),
                };
                resolve_in(tx, &t, r, at, MONITOR, &reason)?;
                touched.extend(t.incident_id);
                changes.push(change(&t, ChangeKind::Resolved(r), &reason));
            }
            None if t.cleared_at.is_none() => {
                let reason = match &work {
                    _ if t.held => {
                        "the violation is gone; the ticket is held, so it stays until unheld"
                    }
                    Some(_) if worked && t.status == Status::Open => {
                        "the violation is gone; an agent works its incident"
                    }
                    _ => "the violation is gone; an agent holds the ticket",
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
    for incident in touched {
        incidents::refresh_in(tx, incident, at)?;
    }
    for c in &mut changes {
        c.incident_id = incidents::of_ticket_in(tx, c.ticket_id)?;
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
