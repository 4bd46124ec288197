//! The ticket store against a real SQLite file: the state machine, flap, hold, leases, and
//! two writers on one DB.

use std::time::Duration;

use serde_json::json;

use super::{IncidentDb, Sqlite, StoreError, TicketDb};
use crate::clock::{self, Timestamp};
use crate::invariant::{Scope, Severity, Violation};
use crate::tickets::*;

fn store() -> (tempfile::TempDir, Sqlite) {
    let dir = tempfile::tempdir().unwrap();
    let s = Sqlite::open(&dir.path().join("t.db")).unwrap();
    (dir, s)
}

fn v(invariant: &str, entity: &str) -> Observed {
    Observed {
        violation: Violation {
            invariant: invariant.into(),
            entity: entity.into(),
            severity: Severity::Critical,
            summary: format!("{entity} broke {invariant}"),
            detail: json!({ "entity": entity }),
        },
        due: true,
    }
}

fn at(secs: i64) -> Timestamp {
    clock::parse("2026-01-01T00:00:00Z").unwrap() + chrono::Duration::seconds(secs)
}

fn cycle(s: &Sqlite, t: i64, seen: &[Observed], unknown: &[Scope]) -> Vec<TicketChange> {
    s.apply(&CycleInput {
        subject: "ratelimiter".into(),
        instance: 0,
        at: at(t),
        flap_window: Duration::from_secs(60),
        violations: seen.to_vec(),
        unknown: unknown.to_vec(),
        consequences: &[],
        correlation_window: Duration::from_secs(30),
    })
    .unwrap()
    .changes
}

/// An agent claims the next incident, seen through its lead ticket (each incident of these
/// tests holds one).
trait ClaimLead {
    fn claim_lead(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max: u32,
    ) -> Result<Option<Ticket>, StoreError>;
}

impl ClaimLead for Sqlite {
    fn claim_lead(
        &self,
        agent: &str,
        lease: Duration,
        scope: Option<(&str, u32)>,
        max: u32,
    ) -> Result<Option<Ticket>, StoreError> {
        Ok(self
            .claim_next(agent, lease, scope, max)?
            .map(|c| c.lead().clone()))
    }
}

fn claim(
    s: &Sqlite,
    agent: &str,
    lease: Duration,
    scope: Option<(&str, u32)>,
    max: u32,
) -> Option<Ticket> {
    s.claim_lead(agent, lease, scope, max).unwrap()
}

fn kinds(changes: &[TicketChange]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.change).collect()
}

fn all(s: &Sqlite) -> Vec<Ticket> {
    s.tickets(&TicketFilter::default()).unwrap()
}

#[test]
fn one_ticket_per_violation_key_refreshed_each_cycle() {
    let (_d, s) = store();
    let c = cycle(&s, 0, &[v("node_down", "n2")], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Opened]);
    let c = cycle(&s, 1, &[v("node_down", "n2"), v("node_down", "n3")], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Opened]);
    let t = all(&s);
    assert_eq!(t.len(), 2);
    let n2 = t.iter().find(|t| t.entity == "n2").unwrap();
    assert_eq!(n2.observations, 2);
    assert_eq!(n2.last_seen_at, at(1));
    assert_eq!(n2.violation_key, "ratelimiter/0:node_down:n2");
    assert_eq!((n2.status, n2.occurrences), (Status::Open, 1));
}

#[test]
fn a_violation_in_its_grace_period_opens_nothing() {
    let (_d, s) = store();
    let mut o = v("counter_drift", "n1");
    o.due = false;
    assert!(cycle(&s, 0, &[o.clone()], &[]).is_empty());
    assert!(all(&s).is_empty());
    o.due = true;
    assert_eq!(kinds(&cycle(&s, 3, &[o], &[])), [ChangeKind::Opened]);
}

#[test]
fn clearing_while_nobody_works_on_it_is_self_healed() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let c = cycle(&s, 1, &[], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Resolved(Resolution::SelfHealed)]);
    let t = &all(&s)[0];
    assert_eq!(t.status, Status::Resolved);
    assert_eq!(t.resolution, Some(Resolution::SelfHealed));
    assert_eq!(t.resolved_at, Some(at(1)));
    let ev = s.ticket_events(t.id).unwrap();
    assert_eq!(
        ev.iter()
            .map(|e| (e.kind.as_str(), e.to_status))
            .collect::<Vec<_>>(),
        [
            ("opened", Some(Status::Open)),
            ("resolved", Some(Status::Resolved))
        ]
    );
    assert!(ev.iter().all(|e| e.actor == "monitor"));
}

#[test]
fn an_observation_that_could_not_tell_resolves_nothing() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2"), v("over_limit", "k")], &[]);
    let unknown = [
        Scope {
            invariant: "node_down".into(),
            entity: None,
            reason: "unreachable".into(),
        },
        Scope {
            invariant: "over_limit".into(),
            entity: Some("k".into()),
            reason: "no redis".into(),
        },
    ];
    assert!(cycle(&s, 1, &[], &unknown).is_empty());
    assert!(all(&s).iter().all(|t| t.status == Status::Open));
}

#[test]
fn flapping_reopens_within_the_window_and_opens_anew_after() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    cycle(&s, 1, &[], &[]);
    // Back 30s later, inside the 60s flap window: the same ticket, one more occurrence.
    let c = cycle(&s, 31, &[v("node_down", "n2")], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Reopened]);
    let t = all(&s);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].status, t[0].occurrences, t[0].resolution),
        (Status::Open, 2, None)
    );
    // Resolved again, and back 2 minutes later: a new ticket.
    cycle(&s, 32, &[], &[]);
    let c = cycle(&s, 152, &[v("node_down", "n2")], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Opened]);
    let t = all(&s);
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].occurrences, 1);
    let ev: Vec<String> = s
        .ticket_events(t[1].id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(ev, ["opened", "resolved", "reopened", "resolved"]);
}

#[test]
fn held_tickets_are_not_resolved_until_unheld() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let id = all(&s)[0].id;
    s.set_held(id, true, "cli:test", "investigating").unwrap();
    assert_eq!(kinds(&cycle(&s, 1, &[], &[])), [ChangeKind::Cleared]);
    assert!(cycle(&s, 2, &[], &[]).is_empty(), "cleared is noted once");
    let t = s.ticket(id).unwrap();
    assert_eq!(
        (t.status, t.held, t.cleared_at),
        (Status::Open, true, Some(at(1)))
    );
    // Seen again while held: noted, and cleared_at forgotten.
    assert_eq!(
        kinds(&cycle(&s, 3, &[v("node_down", "n2")], &[])),
        [ChangeKind::SeenAgain]
    );
    assert_eq!(s.ticket(id).unwrap().cleared_at, None);
    cycle(&s, 4, &[], &[]);
    s.set_held(id, false, "cli:test", "done").unwrap();
    assert_eq!(
        kinds(&cycle(&s, 5, &[], &[])),
        [ChangeKind::Resolved(Resolution::SelfHealed)]
    );
    let ev: Vec<String> = s
        .ticket_events(id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        ev,
        [
            "opened",
            "held",
            "cleared",
            "seen_again",
            "cleared",
            "unheld",
            "resolved"
        ]
    );
}

#[test]
fn an_agents_fix_is_verified_by_the_monitor_not_by_its_word() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a1", Duration::from_secs(600), None, 3)
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.status, t.claimed_by.as_deref(), t.attempts),
        (Status::InProgress, Some("a1"), 1)
    );
    let t = s
        .mark_verifying(t.incident_id.unwrap(), "a1", 1, "restarted n2")
        .unwrap()
        .lead()
        .clone();
    assert_eq!(t.status, Status::Verifying);
    // Still violated: it stays in verifying, not resolved.
    assert!(cycle(&s, 1, &[v("node_down", "n2")], &[]).is_empty());
    assert_eq!(s.ticket(t.id).unwrap().status, Status::Verifying);
    let c = cycle(&s, 2, &[], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Resolved(Resolution::Verified)]);
    let t = s.ticket(t.id).unwrap();
    assert_eq!(
        (t.status, t.resolution, t.claimed_by),
        (Status::Resolved, Some(Resolution::Verified), None)
    );
}

#[test]
fn only_the_claiming_agent_may_say_verifying() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a1", Duration::from_secs(600), None, 3)
        .unwrap()
        .unwrap();
    let err = s
        .mark_verifying(t.incident_id.unwrap(), "a2", 1, "me too")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::IncidentTransition { .. }),
        "{err}"
    );
}

#[test]
fn clearing_under_a_live_lease_waits_for_the_agent_and_an_expired_lease_heals() {
    let (_d, s) = store();
    let now = clock::now();
    let t0 = (now - at(0)).num_seconds();
    cycle(&s, t0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a1", Duration::from_secs(3600), None, 3)
        .unwrap()
        .unwrap();
    assert_eq!(kinds(&cycle(&s, t0 + 1, &[], &[])), [ChangeKind::Cleared]);
    assert_eq!(s.ticket(t.id).unwrap().status, Status::InProgress);
    // Long after the lease: nobody works on it any more.
    let c = cycle(&s, t0 + 7200, &[], &[]);
    assert_eq!(kinds(&c), [ChangeKind::Resolved(Resolution::SelfHealed)]);
}

#[test]
fn two_agents_never_share_a_ticket_and_a_dead_agents_lease_runs_out() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let first = s
        .claim_lead("a1", Duration::from_millis(50), None, 3)
        .unwrap();
    assert!(first.is_some());
    assert!(claim(&s, "a2", Duration::from_secs(60), None, 3).is_none());
    std::thread::sleep(Duration::from_millis(80));
    let again = s
        .claim_lead("a2", Duration::from_secs(60), None, 3)
        .unwrap()
        .unwrap();
    assert_eq!(
        (again.claimed_by.as_deref(), again.attempts),
        (Some("a2"), 2)
    );
    let ev: Vec<String> = s
        .ticket_events(again.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(ev, ["opened", "claimed", "released", "claimed"]);
}

#[test]
fn critical_tickets_are_claimed_first() {
    let (_d, s) = store();
    let mut warn = v("high_latency", "n1");
    warn.violation.severity = Severity::Warning;
    cycle(&s, 0, &[warn.clone()], &[]);
    cycle(&s, 1, &[warn, v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a1", Duration::from_secs(60), None, 3)
        .unwrap()
        .unwrap();
    assert_eq!(t.invariant, "node_down");
}

#[test]
fn escalated_tickets_wait_for_a_person_and_may_heal_by_themselves() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a1", Duration::from_secs(60), None, 3)
        .unwrap()
        .unwrap();
    let t = s
        .escalate(t.incident_id.unwrap(), "agent:a1", "budget spent")
        .unwrap()
        .lead()
        .clone();
    assert_eq!(t.status, Status::Escalated);
    assert!(claim(&s, "a2", Duration::from_secs(60), None, 3).is_none());
    assert_eq!(
        kinds(&cycle(&s, 1, &[], &[])),
        [ChangeKind::Resolved(Resolution::SelfHealed)]
    );
}

#[test]
fn a_manual_resolution_of_a_live_violation_is_reopened() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let id = all(&s)[0].id;
    let t = s.resolve_manual(id, "cli:test", "not a problem").unwrap();
    assert_eq!(t.resolution, Some(Resolution::Manual));
    assert!(s.resolve_manual(id, "cli:test", "again").is_err());
    assert!(s.set_held(id, true, "cli:test", "x").is_err());
    assert_eq!(
        kinds(&cycle(&s, 1, &[v("node_down", "n2")], &[])),
        [ChangeKind::Reopened]
    );
    assert!(matches!(s.ticket(999), Err(StoreError::NotFound(999))));
}

#[test]
fn instances_keep_their_own_tickets() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    // Instance 1 sees nothing wrong: instance 0's ticket stays open.
    s.apply(&CycleInput {
        subject: "ratelimiter".into(),
        instance: 1,
        at: at(1),
        flap_window: Duration::from_secs(60),
        violations: Vec::new(),
        unknown: Vec::new(),
        consequences: &[],
        correlation_window: Duration::from_secs(30),
    })
    .unwrap();
    assert_eq!(all(&s)[0].status, Status::Open);
}

#[test]
fn two_monitors_on_one_db_open_one_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let s = Sqlite::open(&path).unwrap();
                for i in 0..50 {
                    cycle(
                        &s,
                        i,
                        &[v("node_down", "n2"), v("redis_down", "redis")],
                        &[],
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = Sqlite::open(&path).unwrap();
    let t = all(&s);
    assert_eq!(t.len(), 2, "{t:#?}");
    assert!(t.iter().all(|t| t.observations == 200));
}

#[test]
fn claims_stay_in_their_scope_and_spent_attempts_escalate() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    assert!(
        s.claim_lead("a", Duration::from_secs(60), Some(("ratelimiter", 1)), 3)
            .unwrap()
            .is_none()
    );
    let t = s
        .claim_lead("a", Duration::from_secs(60), Some(("ratelimiter", 0)), 2)
        .unwrap()
        .unwrap();
    let t = s
        .give_back(t.incident_id.unwrap(), "a", "model error", 2)
        .unwrap()
        .lead()
        .clone();
    assert_eq!((t.status, t.attempts), (Status::Open, 1));
    let t = s
        .claim_lead("b", Duration::from_secs(60), None, 2)
        .unwrap()
        .unwrap();
    let t = s
        .give_back(t.incident_id.unwrap(), "b", "model error again", 2)
        .unwrap()
        .lead()
        .clone();
    assert_eq!(t.status, Status::Escalated);
    let ev: Vec<String> = s
        .ticket_events(t.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        ev,
        ["opened", "claimed", "released", "claimed", "escalated"]
    );
    // A ticket whose agents died with it is escalated at the next claim.
    cycle(&s, 1, &[v("node_down", "n3")], &[]);
    let t = s
        .claim_lead("c", Duration::from_millis(10), None, 1)
        .unwrap()
        .unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(
        s.claim_lead("d", Duration::from_secs(60), None, 1)
            .unwrap()
            .is_none()
    );
    assert_eq!(s.ticket(t.id).unwrap().status, Status::Escalated);
}

#[test]
fn leases_are_renewed_by_their_holder_only_and_failed_verification_returns_the_ticket() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a", Duration::from_secs(60), None, 3)
        .unwrap()
        .unwrap();
    let i = t.incident_id.unwrap();
    assert!(s.renew_lease(i, "a", Duration::from_secs(120)).is_ok());
    assert!(s.renew_lease(i, "b", Duration::from_secs(120)).is_err());
    s.mark_verifying(i, "a", 1, "fixed").unwrap();
    let t = s
        .verify_failed(i, "a", "still down")
        .unwrap()
        .lead()
        .clone();
    assert_eq!(t.status, Status::InProgress);
}

#[test]
fn a_reopened_ticket_gets_fresh_attempts() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("node_down", "n2")], &[]);
    let t = s
        .claim_lead("a", Duration::from_secs(60), None, 1)
        .unwrap()
        .unwrap();
    s.mark_verifying(t.incident_id.unwrap(), "a", 1, "fixed")
        .unwrap();
    cycle(&s, 1, &[], &[]);
    cycle(&s, 2, &[v("node_down", "n2")], &[]);
    assert_eq!(s.ticket(t.id).unwrap().attempts, 0);
    let again = s.claim_lead("a", Duration::from_secs(60), None, 1).unwrap();
    assert_eq!(
        again.map(|t| t.id),
        Some(t.id),
        "one attempt per occurrence, not per ticket"
    );
}
