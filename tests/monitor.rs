//! The headless monitor, as its own process against a real cluster and DB.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Child, Cluster, wait_for};
use operator::tickets::{Resolution, Status, Ticket};

/// A running `operator monitor` and the lines it printed.
struct MonitorProcess {
    _child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl MonitorProcess {
    fn start(c: &Cluster, interval: &str) -> Self {
        let mut child = c
            .command(&["monitor", "--interval", interval])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
        let m = Self {
            _child: Child(child),
            lines,
        };
        assert!(
            wait_for(Duration::from_secs(10), || m.cycles() >= 1),
            "no heartbeat line"
        );
        m
    }

    fn cycles(&self) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(" #"))
            .count()
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

fn tickets_for(c: &Cluster, invariant: &str, entity: &str) -> Vec<Ticket> {
    c.tickets()
        .into_iter()
        .filter(|t| t.invariant == invariant && t.entity == entity)
        .collect()
}

#[test]
fn a_killed_node_is_a_ticket_within_two_intervals_and_self_heals_when_started() {
    let c = Cluster::start("");
    let m = MonitorProcess::start(&c, "1s");
    let f = c.json(&["chaos", "inject", "node_kill", "--target", "ratelimiter-2"]);
    let injected = operator::clock::parse(f["injected_at"].as_str().unwrap()).unwrap();
    assert!(wait_for(Duration::from_secs(5), || !tickets_for(
        &c,
        "node_down",
        "ratelimiter-2"
    )
    .is_empty()));
    let t = &tickets_for(&c, "node_down", "ratelimiter-2")[0];
    let detect = (t.opened_at - injected).num_milliseconds();
    assert!(detect <= 2000, "detected after {detect}ms");
    assert_eq!(t.status, Status::Open);
    c.ok(&["chaos", "heal", "--all"]);
    assert!(wait_for(Duration::from_secs(5), || {
        tickets_for(&c, "node_down", "ratelimiter-2")[0].status == Status::Resolved
    }));
    let t = &tickets_for(&c, "node_down", "ratelimiter-2")[0];
    assert_eq!(t.resolution, Some(Resolution::SelfHealed));
    let out = m.text();
    assert!(out.contains("opened: node_down ratelimiter-2"), "{out}");
    assert!(out.contains("resolved (self_healed)"), "{out}");
}

#[test]
fn on_the_local_runtime_a_death_is_heard_when_it_happens_not_at_the_next_poll() {
    let c = Cluster::start("");
    let m = MonitorProcess::start(&c, "30s");
    let polled = m.cycles();
    c.ok(&["node", "kill", "ratelimiter-2"]);
    assert!(
        wait_for(Duration::from_secs(5), || !tickets_for(
            &c,
            "node_down",
            "ratelimiter-2"
        )
        .is_empty()),
        "no ticket 5 s after the kill, with the next poll 30 s away:\n{}",
        m.text()
    );
    assert!(m.cycles() > polled);
    // Started again under a new pid, the node is watched again as soon as its record is
    // written (not at a later look): a death soon after is heard too.
    c.ok(&["node", "start", "ratelimiter-2"]);
    std::thread::sleep(Duration::from_millis(500));
    let before = m.cycles();
    c.ok(&["node", "kill", "ratelimiter-2"]);
    assert!(
        wait_for(Duration::from_secs(5), || m.cycles() > before),
        "the second death went unheard:\n{}",
        m.text()
    );
}

#[test]
fn the_monitor_heals_an_overdue_fault_whose_healer_died() {
    let c = Cluster::start("");
    let m = MonitorProcess::start(&c, "1s");
    let (id, _) = c.inject(&["pause", "--target", "ratelimiter-3", "--duration", "1s"]);
    c.kill_healers();
    // No chaos command runs until it is healed (each would sweep): the monitor's sweep, every
    // 5 s on its beat, heals it, and the ledger says who did.
    assert!(
        wait_for(Duration::from_secs(12), || c.node_state("ratelimiter-3")
            == "running"),
        "the monitor did not heal the overdue pause:\n{}",
        m.text()
    );
    let all = c.json(&["chaos", "list", "--all"]);
    let row = all["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .cloned()
        .unwrap();
    assert_eq!(row["status"], "healed", "{row}");
    assert_eq!(row["healed_by"], "monitor", "{row}");
}

#[test]
fn restarting_the_monitor_mid_incident_makes_no_duplicate() {
    let c = Cluster::start("");
    let m = MonitorProcess::start(&c, "200ms");
    c.ok(&["node", "kill", "ratelimiter-1"]);
    assert!(wait_for(Duration::from_secs(5), || !tickets_for(
        &c,
        "node_down",
        "ratelimiter-1"
    )
    .is_empty()));
    drop(m);
    let seen = tickets_for(&c, "node_down", "ratelimiter-1")[0].observations;
    let m = MonitorProcess::start(&c, "200ms");
    assert!(wait_for(Duration::from_secs(5), || {
        tickets_for(&c, "node_down", "ratelimiter-1")[0].observations > seen + 3
    }));
    let all = tickets_for(&c, "node_down", "ratelimiter-1");
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].status, Status::Open);
    c.ok(&["node", "start", "ratelimiter-1"]);
    assert!(wait_for(Duration::from_secs(5), || {
        tickets_for(&c, "node_down", "ratelimiter-1")[0].status == Status::Resolved
    }));
    assert_eq!(tickets_for(&c, "node_down", "ratelimiter-1").len(), 1);
    drop(m);
}

#[test]
fn two_monitors_on_one_db_open_one_ticket() {
    let c = Cluster::start("");
    let a = MonitorProcess::start(&c, "100ms");
    let b = MonitorProcess::start(&c, "100ms");
    c.ok(&["node", "kill", "ratelimiter-3"]);
    c.ok(&["node", "kill", "redis"]);
    std::thread::sleep(Duration::from_secs(2));
    let active = c.active();
    let keys: Vec<_> = active.iter().map(|t| t.violation_key.as_str()).collect();
    // ratelimiter-3 down and Redis down: exactly one ticket each.
    assert_eq!(active.len(), 2, "{keys:?}");
    assert!(a.cycles() > 5 && b.cycles() > 5);
    assert!(!a.text().contains("failed") && !b.text().contains("failed"));
}

#[test]
fn a_hanging_node_costs_a_timeout_and_the_monitor_goes_on() {
    let c = Cluster::start("");
    let addr = c.address("ratelimiter-2");
    c.ok(&["node", "kill", "ratelimiter-2"]);
    // Something on the node's port accepts connections and never answers.
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            keep.lock().unwrap().push(s);
        }
    });
    let m = MonitorProcess::start(&c, "500ms");
    let before = m.cycles();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        m.cycles() >= before + 4,
        "the monitor stalled:\n{}",
        m.text()
    );
    let t = &tickets_for(&c, "node_down", "ratelimiter-2")[0];
    assert!(t.summary.contains("does not answer"), "{}", t.summary);
}

#[test]
fn once_prints_one_report_as_json() {
    let c = Cluster::start("");
    let r = c.json(&["monitor", "--once"]);
    assert_eq!(r["cycle"], 1);
    assert_eq!(r["nodes_up"], 4);
    assert_eq!(r["nodes_total"], 4);
    assert_eq!(r["violations"], 0);
    let err = c.fails(&["monitor", "--once", "--interval", "10ms"]);
    assert!(err.contains("too short"), "{err}");
    let err = c.fails(&["monitor", "--once", "--subject", "etcd"]);
    assert!(err.contains("etcd"), "{err}");
}
