//! Incidents against the real subjects and the runbook agent: one cause is one incident, one
//! session repairs it, and every ticket's resolution says truthfully who cleared it.

mod common;

use std::time::Duration;

use common::{Cluster, TicketDb, cycle_until};
use operator::tickets::{Resolution, Status, Ticket};
use serde_json::Value;

/// Settings that keep these tests quick.
const FAST: &str = "agent.verify_window = \"10s\"\nagent.poll_interval = \"100ms\"\n";

fn incidents(c: &Cluster) -> Vec<Value> {
    c.json(&["incidents", "list"])
        .as_array()
        .expect("a list")
        .clone()
}

/// The tickets of one incident, from the CLI's own `incidents show`.
fn tickets_of(c: &Cluster, incident: i64) -> Vec<Ticket> {
    let v = c.json(&["incidents", "show", &incident.to_string()]);
    serde_json::from_value(v["ticket_details"].clone()).expect("tickets")
}

fn describe(tickets: &[Ticket]) -> Vec<(String, String, Status, Option<Resolution>)> {
    tickets
        .iter()
        .map(|t| {
            (
                t.invariant.clone(),
                t.entity.clone(),
                t.status,
                t.resolution,
            )
        })
        .collect()
}

/// The runbook agent works incidents until none is open (at most `n` sessions), with a
/// monitor of its own: what it printed.
fn agent_sessions(c: &Cluster, n: usize) -> String {
    let mut out = String::new();
    for _ in 0..n {
        if c.active()
            .iter()
            .all(|t| !matches!(t.status, Status::Open | Status::InProgress))
        {
            break;
        }
        out.push_str(&c.runbook_agent_once());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_etcd_members_killed_are_one_incident_that_one_session_repairs_and_verifies() {
    let c = Cluster::start_subject("etcd", FAST);
    c.ok(&["node", "kill", "etcd-1"]);
    c.ok(&["node", "kill", "etcd-2"]);
    let mut m = c.monitor();
    cycle_until(&mut m, 50, Duration::from_millis(100), |_| {
        let t = c.active();
        ["member_down", "quorum_lost"]
            .iter()
            .all(|i| t.iter().any(|t| t.invariant == *i))
            && t.iter().filter(|t| t.invariant == "member_down").count() == 2
    })
    .await;
    drop(m);
    let all = incidents(&c);
    assert_eq!(all.len(), 1, "one cause, one incident: {all:#?}");
    let id = all[0]["id"].as_i64().unwrap();
    let tickets = tickets_of(&c, id);
    assert!(tickets.len() >= 3, "{:?}", describe(&tickets));
    let roots: Vec<&Ticket> = tickets.iter().filter(|t| t.root).collect();
    assert!(
        roots.len() == 2 && roots.iter().all(|t| t.invariant == "member_down"),
        "the two members are the roots: {:?}",
        describe(&tickets)
    );
    assert_eq!(
        all[0]["tickets"][0].as_i64(),
        Some(roots[0].id),
        "roots first"
    );

    let out = c.runbook_agent_once();
    assert!(out.contains(&format!("incident #{id}")), "{out}");
    assert!(out.contains("operator node start etcd-1"), "{out}");
    assert!(out.contains("operator node start etcd-2"), "{out}");
    assert_eq!(
        out.matches("$ operator node start etcd-1").count(),
        1,
        "each member is started once, not again for the quorum: {out}"
    );

    let tickets = tickets_of(&c, id);
    assert!(
        tickets
            .iter()
            .all(|t| t.status == Status::Resolved && t.resolution == Some(Resolution::Verified)),
        "every ticket of the incident verified, none self_healed: {:?}",
        describe(&tickets)
    );
    let quorum = tickets
        .iter()
        .find(|t| t.invariant == "quorum_lost")
        .expect("the quorum's ticket");
    let events = c.store().ticket_events(quorum.id).unwrap();
    let resolved = events.last().unwrap();
    assert!(
        resolved.reason.contains(&format!("incident #{id}"))
            && resolved.reason.contains("session #"),
        "the quorum's resolution names the incident and the session: {resolved:?}"
    );
    // One session worked it.
    let sessions = c.json(&["audit", "list"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:#?}");
    assert_eq!(sessions[0]["incident_id"].as_i64(), Some(id));
    let shown = c.json(&["incidents", "show", &id.to_string()]);
    assert_eq!(shown["status"], "resolved");
    assert_eq!(shown["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_is_one_incident_and_nothing_of_it_heals_by_itself() {
    let c = Cluster::start(FAST);
    c.ok(&["node", "kill", "redis"]);
    let mut m = c.monitor();
    cycle_until(&mut m, 50, Duration::from_millis(100), |_| {
        c.active().iter().any(|t| t.invariant == "redis_down")
    })
    .await;
    // A few more looks: what follows from Redis has time to show.
    for _ in 0..5 {
        m.cycle().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(m);
    let all = incidents(&c);
    assert_eq!(all.len(), 1, "{all:#?}");
    let id = all[0]["id"].as_i64().unwrap();
    let out = agent_sessions(&c, 3);
    assert!(out.contains("operator node start redis"), "{out}");
    let tickets = tickets_of(&c, id);
    assert!(
        tickets
            .iter()
            .all(|t| t.status == Status::Resolved && t.resolution == Some(Resolution::Verified)),
        "{:?}",
        describe(&tickets)
    );
    assert!(
        c.tickets()
            .iter()
            .all(|t| t.resolution != Some(Resolution::SelfHealed)),
        "{:?}",
        describe(&c.tickets())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_unrelated_faults_are_two_incidents_each_repaired_and_verified() {
    let c = Cluster::start(FAST);
    c.ok(&["node", "kill", "ratelimiter-1"]);
    c.ok(&["node", "pause", "ratelimiter-2"]);
    let mut m = c.monitor();
    cycle_until(&mut m, 60, Duration::from_millis(100), |_| {
        let t = c.active();
        ["ratelimiter-1", "ratelimiter-2"]
            .iter()
            .all(|n| t.iter().any(|t| t.entity == *n))
    })
    .await;
    drop(m);
    let all = incidents(&c);
    assert_eq!(all.len(), 2, "two causes, two incidents: {all:#?}");
    let out = agent_sessions(&c, 3);
    assert!(out.contains("operator node start ratelimiter-1"), "{out}");
    assert!(out.contains("operator node resume ratelimiter-2"), "{out}");
    for i in incidents(&c) {
        let id = i["id"].as_i64().unwrap();
        assert_eq!(i["status"], "resolved", "{i:#?}");
        assert_eq!(i["attempts"], 1, "{i:#?}");
        let tickets = tickets_of(&c, id);
        assert!(
            tickets
                .iter()
                .all(|t| t.resolution == Some(Resolution::Verified)),
            "{:?}",
            describe(&tickets)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_that_heals_while_nobody_works_it_is_still_self_healed() {
    let c = Cluster::start(FAST);
    c.ok(&[
        "chaos",
        "inject",
        "pause",
        "--target",
        "ratelimiter-3",
        "--duration",
        "2s",
    ]);
    let mut m = c.monitor();
    cycle_until(&mut m, 50, Duration::from_millis(100), |_| {
        c.active().iter().any(|t| t.entity == "ratelimiter-3")
    })
    .await;
    // No agent: the fault lifts itself after its duration.
    cycle_until(&mut m, 100, Duration::from_millis(100), |_| {
        c.active().is_empty()
    })
    .await;
    let all = incidents(&c);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["status"], "resolved");
    assert!(all[0]["worked_by"].is_null(), "{all:#?}");
    let tickets = tickets_of(&c, all[0]["id"].as_i64().unwrap());
    assert!(
        tickets
            .iter()
            .all(|t| t.resolution == Some(Resolution::SelfHealed)),
        "{:?}",
        describe(&tickets)
    );
}
