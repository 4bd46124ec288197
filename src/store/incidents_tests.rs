//! Incidents against a real SQLite file: grouping by the declarations (at once, early, late,
//! unrelated, out of the window), one claim for all of an incident's tickets, the honest
//! resolution of a consequence, and two monitors on one DB.

use std::time::Duration;

use serde_json::json;

use super::{IncidentDb, Sqlite, StoreError, TicketDb};
use crate::clock::{self, Timestamp};
use crate::invariant::{Consequence, Severity, Violation};
use crate::tickets::*;

/// etcd's shape: the quorum and the leader follow from members down.
const DECLARED: &[Consequence] = &[
    Consequence {
        invariant: "quorum_lost",
        follows_from: &["member_down"],
        same_entity: false,
    },
    Consequence {
        invariant: "member_lagging",
        follows_from: &["member_down"],
        same_entity: true,
    },
];

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
            detail: json!({}),
        },
        due: true,
    }
}

/// Seconds from now, so that leases (taken at the real clock) compare with cycle times.
fn at(secs: i64) -> Timestamp {
    clock::now() + chrono::Duration::seconds(secs)
}

fn cycle(s: &Sqlite, t: i64, seen: &[Observed]) -> Vec<TicketChange> {
    s.apply(&CycleInput {
        subject: "etcd".into(),
        instance: 0,
        at: at(t),
        flap_window: Duration::from_secs(60),
        violations: seen.to_vec(),
        unknown: Vec::new(),
        consequences: DECLARED,
        correlation_window: Duration::from_secs(30),
    })
    .unwrap()
    .changes
}

fn ticket(s: &Sqlite, invariant: &str, entity: &str) -> Ticket {
    s.tickets(&TicketFilter::default())
        .unwrap()
        .into_iter()
        .find(|t| t.invariant == invariant && t.entity == entity)
        .unwrap()
}

fn incidents(s: &Sqlite) -> Vec<Incident> {
    s.incidents(&IncidentFilter::default()).unwrap()
}

const LEASE: Duration = Duration::from_secs(600);

#[test]
fn two_members_down_and_the_quorum_they_took_are_one_incident_verified_together() {
    let (_d, s) = store();
    let down = [
        v("member_down", "etcd-1"),
        v("member_down", "etcd-2"),
        v("quorum_lost", "cluster"),
    ];
    let c = cycle(&s, 0, &down);
    assert_eq!(c.len(), 3);
    let all = incidents(&s);
    assert_eq!(all.len(), 1, "{all:#?}");
    let i = &all[0];
    assert!(c.iter().all(|c| c.incident_id == Some(i.id)), "{c:#?}");
    let quorum = ticket(&s, "quorum_lost", "cluster");
    assert_eq!(i.roots.len(), 2);
    assert!(!i.roots.contains(&quorum.id));
    assert_eq!(i.tickets.last(), Some(&quorum.id), "roots first");

    let claimed = s.claim_next("a1", LEASE, None, 3).unwrap().unwrap();
    assert_eq!(claimed.incident.id, i.id);
    assert!(
        claimed
            .tickets
            .iter()
            .all(|t| t.status == Status::InProgress && t.claimed_by.as_deref() == Some("a1")),
        "{claimed:#?}"
    );
    assert_eq!(claimed.incident.attempts, 1);
    assert!(
        s.claim_next("a2", LEASE, None, 3).unwrap().is_none(),
        "one holder"
    );

    // etcd-1 back: the quorum returns while the agent works the incident. That is the
    // agent's doing, not the system healing itself.
    let c = cycle(&s, 1, &down[1..2]);
    assert!(
        !c.iter()
            .any(|c| matches!(c.change, ChangeKind::Resolved(_))),
        "{c:#?}"
    );
    assert_eq!(
        s.ticket(quorum.id).unwrap().status,
        Status::InProgress,
        "cleared, kept for the agent"
    );

    s.mark_verifying(i.id, "a1", 42, "started etcd-1 and etcd-2")
        .unwrap();
    let c = cycle(&s, 2, &[]);
    assert_eq!(c.len(), 3);
    assert!(
        c.iter()
            .all(|c| c.change == ChangeKind::Resolved(Resolution::Verified)),
        "{c:#?}"
    );
    let quorum = s.ticket(quorum.id).unwrap();
    assert_eq!(quorum.resolution, Some(Resolution::Verified));
    let said = s.ticket_events(quorum.id).unwrap();
    let last = said.last().unwrap();
    assert!(
        last.reason.contains(&format!("incident #{}", i.id)) && last.reason.contains("#42"),
        "the event names the incident and the session: {last:?}"
    );
    let i = s.incident(i.id).unwrap().incident;
    assert_eq!(i.status, Status::Resolved);
    assert!(i.claimed_by.is_none() && i.resolved_at.is_some());
    assert_eq!(i.session_id, Some(42));
}

#[test]
fn a_consequence_before_its_root_and_one_after_the_claim_join_the_incident() {
    let (_d, s) = store();
    // The quorum is seen lost a cycle before the member's own check fails.
    cycle(&s, 0, &[v("quorum_lost", "cluster")]);
    cycle(
        &s,
        1,
        &[v("quorum_lost", "cluster"), v("member_down", "etcd-2")],
    );
    let all = incidents(&s);
    assert_eq!(all.len(), 1, "{all:#?}");
    let member = ticket(&s, "member_down", "etcd-2");
    assert_eq!(
        all[0].roots,
        [member.id],
        "the root, though it opened later"
    );

    let claimed = s.claim_next("a1", LEASE, None, 3).unwrap().unwrap();
    assert_eq!(claimed.tickets.len(), 2);
    // Long past the window, but while the agent works it: the restarted member lags.
    let seen = [
        v("quorum_lost", "cluster"),
        v("member_down", "etcd-2"),
        v("member_lagging", "etcd-2"),
    ];
    cycle(&s, 120, &seen);
    let lagging = ticket(&s, "member_lagging", "etcd-2");
    assert_eq!(lagging.incident_id, Some(claimed.incident.id));
    assert_eq!(lagging.status, Status::Open);
    let renewed = s.renew_lease(claimed.incident.id, "a1", LEASE).unwrap();
    assert_eq!(renewed.tickets.len(), 3);
    let lagging = s.ticket(lagging.id).unwrap();
    assert_eq!(
        (lagging.status, lagging.claimed_by.as_deref()),
        (Status::InProgress, Some("a1")),
        "the renewal took it in"
    );
}

#[test]
fn unrelated_tickets_and_related_ones_out_of_the_window_make_separate_incidents() {
    let (_d, s) = store();
    // Two members down at once, nothing relating them: two incidents.
    cycle(
        &s,
        0,
        &[v("member_down", "etcd-1"), v("member_down", "etcd-3")],
    );
    assert_eq!(incidents(&s).len(), 2);
    // A lagging member long after, nobody working on either: an incident of its own.
    cycle(
        &s,
        100,
        &[
            v("member_down", "etcd-1"),
            v("member_down", "etcd-3"),
            v("member_lagging", "etcd-1"),
        ],
    );
    assert_eq!(incidents(&s).len(), 3);
    // Lagging on the same entity only: etcd-2's lag within the window of etcd-1's down
    // joins nothing.
    cycle(
        &s,
        101,
        &[v("member_down", "etcd-1"), v("member_lagging", "etcd-2")],
    );
    let lag2 = ticket(&s, "member_lagging", "etcd-2");
    let down1 = ticket(&s, "member_down", "etcd-1");
    assert_ne!(lag2.incident_id, down1.incident_id);
}

#[test]
fn a_related_ticket_merges_the_incidents_it_relates() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("member_down", "etcd-1")]);
    cycle(
        &s,
        1,
        &[v("member_down", "etcd-1"), v("member_down", "etcd-2")],
    );
    assert_eq!(incidents(&s).len(), 2);
    cycle(
        &s,
        2,
        &[
            v("member_down", "etcd-1"),
            v("member_down", "etcd-2"),
            v("quorum_lost", "cluster"),
        ],
    );
    let all = incidents(&s);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].tickets.len(), 3);
    let moved = ticket(&s, "member_down", "etcd-2");
    let events = s.ticket_events(moved.id).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind == "joined" && e.reason.contains("merged")),
        "{events:#?}"
    );
}

/// Seen in a campaign: a member's ticket reopened (its old incident long resolved), another
/// member's new one and the quorum's, all in one cycle, are one incident.
#[test]
fn a_reopened_root_a_new_root_and_their_consequence_in_one_cycle_are_one_incident() {
    let (_d, s) = store();
    cycle(&s, 0, &[v("member_down", "etcd-2")]);
    cycle(&s, 1, &[]);
    let down = [
        v("member_down", "etcd-2"),
        v("member_down", "etcd-1"),
        v("quorum_lost", "cluster"),
    ];
    // Reopened within the flap window (60 s here), past the correlation window (30 s).
    cycle(&s, 50, &down);
    let active: Vec<Incident> = incidents(&s)
        .into_iter()
        .filter(|i| i.status != Status::Resolved)
        .collect();
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(active[0].tickets.len(), 3);
}

/// A resolved incident takes in what follows from it, not a new cause: a member killed ten
/// seconds after a quorum loss was repaired is an incident of its own.
#[test]
fn a_new_cause_after_an_incident_resolved_is_an_incident_of_its_own() {
    let (_d, s) = store();
    cycle(
        &s,
        0,
        &[v("member_down", "etcd-1"), v("quorum_lost", "cluster")],
    );
    cycle(&s, 1, &[]);
    let first = incidents(&s)[0].id;
    cycle(&s, 10, &[v("member_down", "etcd-3")]);
    let down3 = ticket(&s, "member_down", "etcd-3");
    assert_ne!(down3.incident_id, Some(first));
    // What follows from the first incident's members does join it while it catches up.
    cycle(
        &s,
        12,
        &[v("member_down", "etcd-3"), v("member_lagging", "etcd-1")],
    );
    let lagging = ticket(&s, "member_lagging", "etcd-1");
    assert_eq!(lagging.incident_id, Some(first));
}

#[test]
fn what_clears_while_nobody_works_its_incident_healed_by_itself() {
    let (_d, s) = store();
    cycle(
        &s,
        0,
        &[v("member_down", "etcd-1"), v("quorum_lost", "cluster")],
    );
    let c = cycle(&s, 1, &[]);
    assert_eq!(c.len(), 2);
    assert!(
        c.iter()
            .all(|c| c.change == ChangeKind::Resolved(Resolution::SelfHealed)),
        "{c:#?}"
    );
    assert_eq!(incidents(&s)[0].status, Status::Resolved);
}

#[test]
fn an_incident_is_given_back_escalated_and_released_as_one() {
    let (_d, s) = store();
    let down = [v("member_down", "etcd-1"), v("quorum_lost", "cluster")];
    cycle(&s, 0, &down);
    let c = s.claim_next("a1", LEASE, None, 2).unwrap().unwrap();
    let id = c.incident.id;
    let back = s.give_back(id, "a1", "the model failed", 2).unwrap();
    assert_eq!(back.incident.status, Status::Open);
    assert!(back.tickets.iter().all(|t| t.status == Status::Open));
    let c = s.claim_next("a2", LEASE, None, 2).unwrap().unwrap();
    assert_eq!(c.incident.attempts, 2, "attempts count per incident");
    // Stopping does not count an attempt.
    let released = s.release(id, "a2", "stopped").unwrap();
    assert_eq!(released.incident.attempts, 1);
    s.claim_next("a3", LEASE, None, 2).unwrap().unwrap();
    let spent = s.give_back(id, "a3", "failed again", 2).unwrap();
    assert_eq!(spent.incident.status, Status::Escalated);
    assert!(spent.tickets.iter().all(|t| t.status == Status::Escalated));
    assert!(s.claim_next("a4", LEASE, None, 2).unwrap().is_none());
    let err = s.renew_lease(id, "a3", LEASE).unwrap_err();
    assert!(err.is_lost_claim(), "{err}");
    assert!(matches!(s.incident(999), Err(StoreError::NoIncident(999))));
}

#[test]
fn two_monitors_on_one_db_make_one_incident_per_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(Sqlite::open(&path).unwrap());
    let start = clock::now();
    let handles: Vec<_> = (0..2)
        .map(|m| {
            let path = path.clone();
            std::thread::spawn(move || {
                let s = Sqlite::open(&path).unwrap();
                for i in 0..40 {
                    // Each monitor sees the members in its own order.
                    let mut seen = vec![
                        v("member_down", "etcd-1"),
                        v("member_down", "etcd-2"),
                        v("quorum_lost", "cluster"),
                    ];
                    if m == 1 {
                        seen.reverse();
                    }
                    s.apply(&CycleInput {
                        subject: "etcd".into(),
                        instance: 0,
                        at: start + chrono::Duration::milliseconds(i * 10),
                        flap_window: Duration::from_secs(60),
                        violations: seen,
                        unknown: Vec::new(),
                        consequences: DECLARED,
                        correlation_window: Duration::from_secs(30),
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = Sqlite::open(&path).unwrap();
    let all = incidents(&s);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].tickets.len(), 3);
}
