//! Incidents' SQL: the tickets of one cause grouped as the monitor writes them, and worked
//! together by an agent — one claim, one lease, one count of attempts for all of them.
//!
//! Grouping follows the subject's declarations of what follows from what (handed in with the
//! cycle, so the store knows no subject): a ticket that opens joins an incident holding a
//! ticket it follows from, or one that follows from it, when that incident's last ticket
//! opened within the correlation window, or while an agent works it, or when it resolved
//! within the window (the catch-up after a repair). A ticket related to several incidents
//! merges them. It all happens in the monitor's write transaction, so two monitors on one DB
//! never make two incidents of one cause.

use std::collections::BTreeSet;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use super::sqlite::{exec, row};
use super::ticket_rows::{COLUMNS, check, event, get_in, ticket_from_row, ts, ts_opt};
use super::{Sqlite, StoreError};
use crate::clock::{self, Timestamp};
use crate::invariant::Consequence;
use crate::tickets::state::Transition;
use crate::tickets::{Claimed, CycleInput, Incident, IncidentFilter, MONITOR, Status, Ticket};

/// What the store does with incidents: an agent's whole claim on one cause.
pub trait IncidentDb {
    /// One incident and its tickets, roots first.
    fn incident(&self, id: i64) -> Result<Claimed, StoreError>;
    /// Incidents, newest first.
    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;
    /// An agent takes the open incident of `scope` (subject, instance) whose worst open
    /// ticket is the most severe (then the oldest), and every open ticket of it, for
    /// `lease`. Incidents whose agent's lease ran out are given back first; an incident
    /// already worked by `max_attempts` sessions is escalated instead. Never two agents on
    /// one incident.
    fn claim_next(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max_attempts: u32,
    ) -> Result<Option<Claimed>, StoreError>;
    /// Extends an agent's lease, and takes in the tickets that joined since it claimed; an
    /// error if the agent no longer holds the incident.
    fn renew_lease(&self, id: i64, agent: &str, lease: Duration) -> Result<Claimed, StoreError>;
    /// The agent's session `session` says the incident is fixed: every ticket it works goes
    /// to `verifying`, and the monitor's next look decides each.
    fn mark_verifying(
        &self,
        id: i64,
        agent: &str,
        session: i64,
        summary: &str,
    ) -> Result<Claimed, StoreError>;
    /// The monitor still sees a violation after the agent said it was fixed: back to work.
    fn verify_failed(&self, id: i64, agent: &str, reason: &str) -> Result<Claimed, StoreError>;
    /// An agent gives the incident back (its session failed): open again for another
    /// attempt, or escalated when the attempts are spent.
    fn give_back(
        &self,
        id: i64,
        agent: &str,
        reason: &str,
        max_attempts: u32,
    ) -> Result<Claimed, StoreError>;
    /// An agent that stops lets go at once: open again, and the cut session does not count.
    fn release(&self, id: i64, agent: &str, reason: &str) -> Result<Claimed, StoreError>;
    /// The agent gives up, or its budget is spent: a person decides, for every ticket.
    fn escalate(&self, id: i64, actor: &str, reason: &str) -> Result<Claimed, StoreError>;
}

const INCIDENT_COLUMNS: &str = "id, subject, instance, status, opened_at, last_joined_at, \
    resolved_at, claimed_by, lease_expires_at, attempts, worked_by, session_id, updated_at";

fn incident_from_row(r: &Row) -> rusqlite::Result<Incident> {
    Ok(Incident {
        id: r.get(0)?,
        subject: r.get(1)?,
        instance: r.get(2)?,
        status: r.get(3)?,
        opened_at: ts(r, 4)?,
        last_joined_at: ts(r, 5)?,
        resolved_at: ts_opt(r, 6)?,
        claimed_by: r.get(7)?,
        lease_expires_at: ts_opt(r, 8)?,
        attempts: r.get(9)?,
        worked_by: r.get(10)?,
        session_id: r.get(11)?,
        roots: Vec::new(),
        tickets: Vec::new(),
        updated_at: ts(r, 12)?,
    })
}

/// An incident's tickets, roots first, then in the order they opened.
fn members(c: &Connection, id: i64) -> rusqlite::Result<Vec<Ticket>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tickets WHERE incident_id = ?1
         ORDER BY incident_root DESC, opened_at, id"
    ))?;
    let rows = stmt.query_map([id], ticket_from_row)?;
    rows.collect()
}

/// The incident's row with its tickets' ids filled in.
fn with_ids(mut i: Incident, tickets: &[Ticket]) -> Incident {
    i.roots = tickets.iter().filter(|t| t.root).map(|t| t.id).collect();
    i.tickets = tickets.iter().map(|t| t.id).collect();
    i
}

/// One incident and its tickets. An incident left with no ticket (merged into another) is
/// deleted in the same transaction, so a loaded one always has at least one.
fn load(c: &Connection, id: i64) -> Result<Claimed, StoreError> {
    let incident = row(
        c,
        &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
        [id],
        incident_from_row,
    )
    .optional()?
    .ok_or(StoreError::NoIncident(id))?;
    let tickets = members(c, id)?;
    if tickets.is_empty() {
        return Err(StoreError::NoIncident(id));
    }
    Ok(Claimed {
        incident: with_ids(incident, &tickets),
        tickets,
    })
}

/// The incident a ticket is part of.
pub(super) fn of_ticket_in(tx: &Transaction, ticket: i64) -> Result<Option<i64>, StoreError> {
    Ok(row(
        tx,
        "SELECT incident_id FROM tickets WHERE id = ?1",
        [ticket],
        |r| r.get(0),
    )
    .optional()?
    .flatten())
}

/// Who works an incident, for the monitor's verdict on a ticket that cleared.
pub(super) struct Work {
    incident: i64,
    claimed_by: Option<String>,
    lease_expires_at: Option<Timestamp>,
    session_id: Option<i64>,
}

impl Work {
    /// An agent holds the incident now.
    pub(super) fn lease_live(&self, at: Timestamp) -> bool {
        self.claimed_by.is_some() && self.lease_expires_at.is_some_and(|l| l > at)
    }

    /// The event's reason when a ticket of this incident is verified: which incident and
    /// which session's repair cleared it.
    pub(super) fn verified_reason(&self) -> String {
        match self.session_id {
            Some(s) => format!(
                "the monitor saw the violation gone after session #{s} repaired incident #{}",
                self.incident
            ),
            None => format!(
                "the monitor saw the violation gone after incident #{} was repaired",
                self.incident
            ),
        }
    }
}

pub(super) fn work_in(tx: &Transaction, incident: Option<i64>) -> Result<Option<Work>, StoreError> {
    let Some(id) = incident else {
        return Ok(None);
    };
    Ok(row(
        tx,
        "SELECT claimed_by, lease_expires_at, session_id FROM incidents WHERE id = ?1",
        [id],
        |r| {
            Ok(Work {
                incident: id,
                claimed_by: r.get(0)?,
                lease_expires_at: ts_opt(r, 1)?,
                session_id: r.get(2)?,
            })
        },
    )
    .optional()?)
}

/// Sets an incident's status from its tickets: resolved when all are (its claim ends),
/// escalated when one is, worked while an agent holds it (verifying when every ticket not
/// resolved is), else open. An incident with no ticket left is deleted.
pub(super) fn refresh_in(tx: &Transaction, id: i64, now: Timestamp) -> Result<(), StoreError> {
    let tickets = members(tx, id)?;
    if tickets.is_empty() {
        exec(tx, "DELETE FROM incidents WHERE id = ?1", [id])?;
        return Ok(());
    }
    let claimed_by: Option<String> = row(
        tx,
        "SELECT claimed_by FROM incidents WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .optional()?
    .flatten();
    let active: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| t.status != Status::Resolved)
        .collect();
    let status = if active.is_empty() {
        Status::Resolved
    } else if active.iter().any(|t| t.status == Status::Escalated) {
        Status::Escalated
    } else if claimed_by.is_some() {
        if active.iter().all(|t| t.status == Status::Verifying) {
            Status::Verifying
        } else {
            Status::InProgress
        }
    } else {
        Status::Open
    };
    let resolved_at = (status == Status::Resolved)
        .then(|| tickets.iter().filter_map(|t| t.resolved_at).max())
        .flatten();
    let ends_claim = matches!(status, Status::Resolved | Status::Escalated);
    exec(
        tx,
        "UPDATE incidents SET status = ?2, resolved_at = ?3, updated_at = ?4,
                claimed_by = CASE WHEN ?5 THEN NULL ELSE claimed_by END,
                lease_expires_at = CASE WHEN ?5 THEN NULL ELSE lease_expires_at END
         WHERE id = ?1",
        params![
            id,
            status,
            resolved_at.map(clock::format),
            clock::format(now),
            ends_claim
        ],
    )?;
    Ok(())
}

/// Whether two tickets are related under the declarations, either way round.
fn related(declared: &[Consequence], a: &Ticket, b: &Ticket) -> bool {
    let (a_, b_) = (
        (a.invariant.as_str(), a.entity.as_str()),
        (b.invariant.as_str(), b.entity.as_str()),
    );
    Consequence::follows(declared, a_, b_) || Consequence::follows(declared, b_, a_)
}

/// Puts each ticket that opened or reopened this cycle into an incident: a related one (see
/// the module's comment), merging several, else its own old one (a reopened ticket), else a
/// new one. Returns the incidents touched, whose status the caller refreshes.
pub(super) fn group_in(
    tx: &Transaction,
    input: &CycleInput,
    joined: &[i64],
) -> Result<BTreeSet<i64>, StoreError> {
    let at = input.at;
    let now = clock::format(at);
    let since = at - chrono::Duration::from_std(input.correlation_window).unwrap_or_default();
    let mut touched = BTreeSet::new();
    for &id in joined {
        let t = get_in(tx, id)?;
        // A violation no declaration names relates to nothing: no incident to look through.
        let declared = input
            .consequences
            .iter()
            .any(|c| c.invariant == t.invariant || c.follows_from.contains(&t.invariant.as_str()));
        let candidates: Vec<i64> = if !declared {
            Vec::new()
        } else {
            let mut stmt = tx.prepare_cached(
                "SELECT id FROM incidents WHERE subject = ?1 AND instance = ?2 AND id IS NOT ?3
                   AND (status != 'resolved' OR resolved_at >= ?4)
                 ORDER BY id",
            )?;
            let rows = stmt.query_map(
                params![
                    &input.subject,
                    input.instance,
                    t.incident_id,
                    clock::format(since)
                ],
                |r| r.get(0),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut related_to = Vec::new();
        for c in candidates {
            let c = match load(tx, c) {
                Ok(c) => c,
                Err(StoreError::NoIncident(_)) => continue,
                Err(e) => return Err(e),
            };
            let i = &c.incident;
            let open = i.status != Status::Resolved;
            let in_time = open && (i.claimed_by.is_some() || i.last_joined_at >= since);
            // A resolved incident takes in only what follows from it (a member lagging in
            // the catch-up after the repair), not a new cause.
            let catch_up = !open && i.resolved_at.is_some_and(|r| r >= since);
            let (t_, declared) = (
                (t.invariant.as_str(), t.entity.as_str()),
                input.consequences,
            );
            let joins = c.tickets.iter().filter(|u| u.id != t.id).any(|u| {
                let u_ = (u.invariant.as_str(), u.entity.as_str());
                (in_time && related(declared, &t, u))
                    || (catch_up && Consequence::follows(declared, t_, u_))
            });
            if joins {
                related_to.push(c.incident);
            }
        }
        let Some(survivor) = related_to
            .iter()
            .find(|i| i.claimed_by.is_some())
            .or(related_to.first())
            .cloned()
        else {
            let incident = match t.incident_id {
                // Reopened, and related to nothing newer: its own incident comes back, its
                // attempts afresh as the ticket's are (unless an agent works it now).
                Some(own) => {
                    exec(
                        tx,
                        "UPDATE incidents SET last_joined_at = ?2, updated_at = ?2,
                                attempts = CASE WHEN claimed_by IS NULL THEN 0 ELSE attempts END,
                                session_id = CASE WHEN claimed_by IS NULL THEN NULL
                                                  ELSE session_id END
                         WHERE id = ?1",
                        params![own, now],
                    )?;
                    // Open again at once: the tickets after it in this cycle see it so.
                    refresh_in(tx, own, at)?;
                    own
                }
                None => {
                    exec(
                        tx,
                        "INSERT INTO incidents (subject, instance, status, opened_at, last_joined_at,
                                updated_at)
                         VALUES (?1, ?2, 'open', ?3, ?3, ?3)",
                        params![&input.subject, input.instance, now],
                    )?;
                    let new = tx.last_insert_rowid();
                    exec(
                        tx,
                        "UPDATE tickets SET incident_id = ?2 WHERE id = ?1",
                        params![id, new],
                    )?;
                    new
                }
            };
            touched.insert(incident);
            continue;
        };
        let old = t.incident_id;
        move_ticket(
            tx,
            &t,
            survivor.id,
            at,
            &format!("joined incident #{}: related to its tickets", survivor.id),
        )?;
        // The others merge into it, unless another agent works them.
        for other in related_to.iter().filter(|i| i.id != survivor.id) {
            if other.claimed_by.is_some() {
                continue;
            }
            for u in members(tx, other.id)? {
                move_ticket(
                    tx,
                    &u,
                    survivor.id,
                    at,
                    &format!(
                        "incident #{} merged into incident #{}: ticket #{} relates them",
                        other.id, survivor.id, t.id
                    ),
                )?;
            }
            refresh_in(tx, other.id, at)?;
            touched.insert(other.id);
        }
        exec(
            tx,
            "UPDATE incidents SET last_joined_at = ?2, updated_at = ?2 WHERE id = ?1",
            params![survivor.id, now],
        )?;
        refresh_in(tx, survivor.id, at)?;
        if let Some(old) = old {
            refresh_in(tx, old, at)?;
        }
        touched.extend(old);
        touched.insert(survivor.id);
    }
    for &incident in &touched {
        mark_roots_in(tx, incident, input.consequences)?;
    }
    Ok(touched)
}

/// Moves a ticket into an incident, with an event saying why.
fn move_ticket(
    tx: &Transaction,
    t: &Ticket,
    incident: i64,
    at: Timestamp,
    reason: &str,
) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE tickets SET incident_id = ?2 WHERE id = ?1",
        params![t.id, incident],
    )?;
    event(
        tx,
        t.id,
        at,
        "joined",
        (Some(t.status), Some(t.status)),
        MONITOR,
        reason,
    )?;
    Ok(())
}

/// A ticket is a root of its incident when none of the incident's other tickets is a cause
/// of it. Where every ticket has a cause among the others (declarations that go both ways),
/// the first to open is the root.
fn mark_roots_in(
    tx: &Transaction,
    incident: i64,
    declared: &[Consequence],
) -> Result<(), StoreError> {
    let tickets = members(tx, incident)?;
    let caused = |t: &Ticket| {
        tickets.iter().any(|u| {
            u.id != t.id
                && Consequence::follows(
                    declared,
                    (&t.invariant, &t.entity),
                    (&u.invariant, &u.entity),
                )
        })
    };
    let mut roots: Vec<bool> = tickets.iter().map(|t| !caused(t)).collect();
    if !roots.contains(&true) {
        let first = tickets
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| (t.opened_at, t.id))
            .map(|(i, _)| i);
        if let Some(i) = first {
            roots[i] = true;
        }
    }
    for (t, root) in tickets.iter().zip(roots) {
        if t.root != root {
            exec(
                tx,
                "UPDATE tickets SET incident_root = ?2 WHERE id = ?1",
                params![t.id, root],
            )?;
        }
    }
    Ok(())
}

/// The claim every ticket of an incident carries, so that a ticket's own row tells who
/// works it.
struct Hold<'a> {
    by: Option<&'a str>,
    until: Option<Timestamp>,
    attempts: u32,
}

/// Moves one ticket of an incident by `transition`, giving it the incident's claim, and
/// writes the event.
#[allow(clippy::too_many_arguments)]
fn step(
    tx: &Transaction,
    t: &Ticket,
    transition: Transition,
    kind: &str,
    actor: &str,
    reason: &str,
    now: Timestamp,
    hold: &Hold,
) -> Result<Status, StoreError> {
    let to = check(t, transition)?;
    exec(
        tx,
        "UPDATE tickets SET status = ?2, claimed_by = ?3, lease_expires_at = ?4, attempts = ?5,
                cleared_at = CASE WHEN ?7 THEN NULL ELSE cleared_at END, updated_at = ?6
         WHERE id = ?1",
        params![
            t.id,
            to,
            hold.by,
            hold.until.map(clock::format),
            hold.attempts,
            clock::format(now),
            transition == Transition::Claim
        ],
    )?;
    event(
        tx,
        t.id,
        now,
        kind,
        (Some(t.status), Some(to)),
        actor,
        reason,
    )?;
    Ok(to)
}

/// The incident, checked to be held by `agent`.
fn held_by(tx: &Transaction, id: i64, agent: &str) -> Result<Claimed, StoreError> {
    let c = load(tx, id)?;
    let i = &c.incident;
    if i.claimed_by.as_deref() != Some(agent)
        || !matches!(i.status, Status::InProgress | Status::Verifying)
    {
        return Err(StoreError::IncidentTransition {
            id,
            status: i.status,
            message: format!("agent {agent} does not hold it"),
        });
    }
    Ok(c)
}

/// Claims the incident's open tickets for its holder (those that joined since the claim).
fn take_in(
    tx: &Transaction,
    c: &Claimed,
    agent: &str,
    until: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let hold = Hold {
        by: Some(agent),
        until: Some(until),
        attempts: c.incident.attempts,
    };
    for t in c.tickets.iter().filter(|t| t.status == Status::Open) {
        step(
            tx,
            t,
            Transition::Claim,
            "claimed",
            &format!("agent:{agent}"),
            &format!("claimed with incident #{}", c.incident.id),
            now,
            &hold,
        )?;
    }
    Ok(())
}

/// Lets go of an incident's worked tickets: each goes back to open, or to escalated when
/// `escalate`; the claim ends.
#[allow(clippy::too_many_arguments)]
fn let_go_in(
    tx: &Transaction,
    c: &Claimed,
    escalate: bool,
    kind: &str,
    actor: &str,
    reason: &str,
    attempts: u32,
    now: Timestamp,
) -> Result<(), StoreError> {
    let hold = Hold {
        by: None,
        until: None,
        attempts,
    };
    let id = c.incident.id;
    for t in c.active() {
        let mut t = t.clone();
        if t.status == Status::Verifying {
            t.status = step(
                tx,
                &t,
                Transition::VerifyFailed,
                "verify_failed",
                actor,
                reason,
                now,
                &hold,
            )?;
        }
        let transition = match (t.status, escalate) {
            (Status::Escalated, _) => continue,
            (Status::Open, false) => continue,
            (_, true) => Transition::Escalate,
            (_, false) => Transition::Release,
        };
        step(tx, &t, transition, kind, actor, reason, now, &hold)?;
    }
    exec(
        tx,
        "UPDATE incidents SET claimed_by = NULL, lease_expires_at = NULL, attempts = ?2,
                updated_at = ?3 WHERE id = ?1",
        params![id, attempts, clock::format(now)],
    )?;
    // Tickets that were open (joined, not yet taken in) keep the incident's count too.
    exec(
        tx,
        "UPDATE tickets SET attempts = ?2 WHERE incident_id = ?1 AND status != 'resolved'",
        params![id, attempts],
    )?;
    refresh_in(tx, id, now)
}

/// Gives back incidents whose agent's lease ran out (the agent crashed or hung).
fn release_expired_in(tx: &Transaction, now: Timestamp) -> Result<(), StoreError> {
    let expired: Vec<(i64, Option<String>)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, claimed_by FROM incidents
             WHERE status IN ('in_progress', 'verifying') AND lease_expires_at < ?1",
        )?;
        let rows = stmt.query_map([clock::format(now)], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (id, who) in expired {
        let c = load(tx, id)?;
        let who = who.as_deref().unwrap_or("?");
        let reason = format!("lease of agent {who} expired");
        let attempts = c.incident.attempts;
        let_go_in(tx, &c, false, "released", MONITOR, &reason, attempts, now)?;
    }
    Ok(())
}

impl IncidentDb for Sqlite {
    fn incident(&self, id: i64) -> Result<Claimed, StoreError> {
        self.read(|c| load(c, id))
    }

    fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1");
        if filter.active {
            sql.push_str(" AND status != 'resolved'");
        }
        sql.push_str(" AND (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR instance = ?2)");
        sql.push_str(" ORDER BY id DESC");
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.read(|c| {
            let rows: Vec<Incident> = {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows =
                    stmt.query_map(params![filter.subject, filter.instance], incident_from_row)?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            rows.into_iter()
                .map(|i| {
                    let tickets = members(c, i.id)?;
                    Ok(with_ids(i, &tickets))
                })
                .collect()
        })
    }

    fn claim_next(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max_attempts: u32,
    ) -> Result<Option<Claimed>, StoreError> {
        self.write(|tx| {
            let now = clock::now();
            release_expired_in(tx, now)?;
            let (subject, instance) = scope.map_or((None, None), |(s, i)| (Some(s), Some(i)));
            let candidates: Vec<i64> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT i.id FROM incidents i WHERE i.status = 'open'
                       AND (?1 IS NULL OR i.subject = ?1) AND (?2 IS NULL OR i.instance = ?2)
                     ORDER BY (SELECT MIN(CASE t.severity WHEN 'critical' THEN 0
                                                          WHEN 'warning' THEN 1 ELSE 2 END)
                               FROM tickets t WHERE t.incident_id = i.id AND t.status = 'open'),
                              i.opened_at, i.id",
                )?;
                let rows = stmt.query_map(params![subject, instance], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            for id in candidates {
                let c = load(tx, id)?;
                if c.incident.attempts >= max_attempts {
                    let reason = format!(
                        "{} agent sessions did not fix incident #{id}; a person decides",
                        c.incident.attempts
                    );
                    let attempts = c.incident.attempts;
                    let_go_in(tx, &c, true, "escalated", MONITOR, &reason, attempts, now)?;
                    continue;
                }
                let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
                exec(
                    tx,
                    "UPDATE incidents SET claimed_by = ?2, lease_expires_at = ?3,
                            attempts = attempts + 1, worked_by = ?2, session_id = NULL,
                            updated_at = ?4 WHERE id = ?1",
                    params![id, agent, clock::format(until), clock::format(now)],
                )?;
                let c = load(tx, id)?;
                take_in(tx, &c, agent, until, now)?;
                refresh_in(tx, id, now)?;
                return load(tx, id).map(Some);
            }
            Ok(None)
        })
    }

    fn renew_lease(&self, id: i64, agent: &str, lease: Duration) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = held_by(tx, id, agent)?;
            let now = clock::now();
            let until = now + chrono::Duration::from_std(lease).unwrap_or_default();
            exec(
                tx,
                "UPDATE incidents SET lease_expires_at = ?2 WHERE id = ?1",
                params![id, clock::format(until)],
            )?;
            exec(
                tx,
                "UPDATE tickets SET lease_expires_at = ?2
                 WHERE incident_id = ?1 AND status IN ('in_progress', 'verifying')",
                params![id, clock::format(until)],
            )?;
            if c.tickets.iter().any(|t| t.status == Status::Open) {
                take_in(tx, &c, agent, until, now)?;
                refresh_in(tx, id, now)?;
            }
            load(tx, id)
        })
    }

    fn mark_verifying(
        &self,
        id: i64,
        agent: &str,
        session: i64,
        summary: &str,
    ) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = held_by(tx, id, agent)?;
            let now = clock::now();
            let until = c.incident.lease_expires_at.unwrap_or(now);
            take_in(tx, &c, agent, until, now)?;
            let c = load(tx, id)?;
            let hold = Hold {
                by: Some(agent),
                until: Some(until),
                attempts: c.incident.attempts,
            };
            let reason = format!("session #{session} says incident #{id} is fixed: {summary}");
            for t in c.tickets.iter().filter(|t| t.status == Status::InProgress) {
                step(
                    tx,
                    t,
                    Transition::Verify,
                    "verifying",
                    &format!("agent:{agent}"),
                    &reason,
                    now,
                    &hold,
                )?;
            }
            exec(
                tx,
                "UPDATE incidents SET session_id = ?2 WHERE id = ?1",
                params![id, session],
            )?;
            refresh_in(tx, id, now)?;
            load(tx, id)
        })
    }

    fn verify_failed(&self, id: i64, agent: &str, reason: &str) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = held_by(tx, id, agent)?;
            let now = clock::now();
            let hold = Hold {
                by: Some(agent),
                until: c.incident.lease_expires_at,
                attempts: c.incident.attempts,
            };
            for t in c.tickets.iter().filter(|t| t.status == Status::Verifying) {
                step(
                    tx,
                    t,
                    Transition::VerifyFailed,
                    "verify_failed",
                    &format!("agent:{agent}"),
                    reason,
                    now,
                    &hold,
                )?;
            }
            refresh_in(tx, id, now)?;
            load(tx, id)
        })
    }

    fn give_back(
        &self,
        id: i64,
        agent: &str,
        reason: &str,
        max_attempts: u32,
    ) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = held_by(tx, id, agent)?;
            let now = clock::now();
            let attempts = c.incident.attempts;
            let spent = attempts >= max_attempts;
            let (kind, why) = if spent {
                (
                    "escalated",
                    format!("{reason} (attempt {attempts} of {max_attempts}: a person decides)"),
                )
            } else {
                ("released", reason.to_string())
            };
            let actor = format!("agent:{agent}");
            let_go_in(tx, &c, spent, kind, &actor, &why, attempts, now)?;
            load(tx, id)
        })
    }

    fn release(&self, id: i64, agent: &str, reason: &str) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = held_by(tx, id, agent)?;
            let now = clock::now();
            let attempts = c.incident.attempts.saturating_sub(1);
            let actor = format!("agent:{agent}");
            let_go_in(tx, &c, false, "released", &actor, reason, attempts, now)?;
            load(tx, id)
        })
    }

    fn escalate(&self, id: i64, actor: &str, reason: &str) -> Result<Claimed, StoreError> {
        self.write(|tx| {
            let c = load(tx, id)?;
            if c.active().all(|t| t.status == Status::Escalated) {
                return Err(StoreError::IncidentTransition {
                    id,
                    status: c.incident.status,
                    message: "nothing in it is left to escalate".into(),
                });
            }
            let now = clock::now();
            let attempts = c.incident.attempts;
            let_go_in(tx, &c, true, "escalated", actor, reason, attempts, now)?;
            load(tx, id)
        })
    }
}
