//! Faults by hand through the real binary: the ledger is written before a fault, heal works
//! from another process, on expiry, and after the process that should have healed it died.

mod common;

use std::time::Duration;

use common::{Cluster, wait_for};
use serde_json::Value;

fn state_of(c: &Cluster, node: &str) -> String {
    c.node_state(node)
}

fn fault(c: &Cluster, id: i64) -> Value {
    let all = c.json(&["chaos", "list", "--all"]);
    all["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
        .unwrap()
}

#[test]
fn a_fault_is_healed_by_another_process() {
    let c = Cluster::start("");
    let f = c.json(&["chaos", "inject", "node_kill", "--target", "ratelimiter-2"]);
    let id = f["id"].as_i64().unwrap();
    assert_eq!(
        (f["status"].as_str(), f["expires_at"].as_str()),
        (Some("active"), None)
    );
    assert_eq!(state_of(&c, "ratelimiter-2"), "exited");
    // A killed node is restarted by heal, not by itself.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(state_of(&c, "ratelimiter-2"), "exited");
    let live = c.json(&["chaos", "list"]);
    assert_eq!(live["faults"][0]["id"], id);
    assert!(live["catalogue"].as_array().unwrap().len() >= 2);

    let healed = c.json(&["chaos", "heal", &id.to_string()]);
    assert_eq!(healed[0]["acted"], true);
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");
    let f = fault(&c, id);
    assert_eq!(f["status"], "healed");
    assert!(
        f["note"]
            .as_str()
            .unwrap()
            .contains("started ratelimiter-2"),
        "{f}"
    );
    // Healing twice is harmless and says so.
    let again = c.json(&["chaos", "heal", &id.to_string()]);
    assert_eq!(again[0]["acted"], false);
    assert!(
        c.json(&["chaos", "list"])["faults"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_pause_heals_itself_after_its_duration() {
    let c = Cluster::start("");
    let f = c.json(&[
        "chaos",
        "inject",
        "pause",
        "--target",
        "ratelimiter-1",
        "--duration",
        "1s",
    ]);
    assert!(f["expires_at"].is_string());
    assert_eq!(state_of(&c, "ratelimiter-1"), "paused");
    // Nothing else runs: the detached healer started by `inject` resumes it.
    assert!(
        wait_for(Duration::from_secs(10), || state_of(&c, "ratelimiter-1")
            == "running"),
        "the pause did not end by itself"
    );
    let f = fault(&c, f["id"].as_i64().unwrap());
    assert_eq!(f["status"], "healed", "{f}");
}

#[test]
fn an_expired_fault_whose_healer_died_is_healed_by_the_next_operator_command() {
    let c = Cluster::start("");
    let f = c.json(&[
        "chaos",
        "inject",
        "pause",
        "--target",
        "ratelimiter-3",
        "--duration",
        "1s",
    ]);
    c.kill_healers();
    assert_eq!(
        state_of(&c, "ratelimiter-3"),
        "paused",
        "nobody healed it yet"
    );
    // Any chaos command sweeps the ledger first.
    let out = c.cmd(&["chaos", "list"]);
    assert!(
        common::text(&out.stderr).contains("healed fault"),
        "{}",
        common::text(&out.stderr)
    );
    assert_eq!(state_of(&c, "ratelimiter-3"), "running");
    assert_eq!(fault(&c, f["id"].as_i64().unwrap())["status"], "healed");
}

#[test]
fn a_fault_left_half_injected_by_a_crash_is_healed() {
    let c = Cluster::start("");
    // As if `inject` died between writing the ledger and finishing: row still `injecting`.
    c.ok(&["node", "pause", "ratelimiter-2"]);
    drop(c.store()); // creates the schema
    let db = rusqlite::Connection::open(c.db_path()).unwrap();
    db.execute_batch("PRAGMA busy_timeout = 5000").unwrap();
    db.execute(
        "INSERT INTO chaos_faults (fault, subject, instance, runtime, target, status, injected_at,
                injected_by, updated_at)
         VALUES ('pause', 'ratelimiter', 0, 'local', 'ratelimiter-2', 'injecting',
                 '2020-01-01T00:00:00.000Z', 'crashed', '2020-01-01T00:00:00.000Z')",
        [],
    )
    .unwrap();
    c.ok(&["chaos", "list"]);
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");
    let f = fault(&c, db.last_insert_rowid());
    assert_eq!(f["status"], "healed", "{f}");
    assert!(f["note"].as_str().unwrap().contains("resumed"), "{f}");
}

#[test]
fn bad_chaos_requests_get_clear_answers() {
    let c = Cluster::start("");
    let err = c.fails(&["chaos", "inject", "meltdown"]);
    assert!(
        err.contains("unknown fault `meltdown`") && err.contains("node_kill, pause"),
        "{err}"
    );
    let err = c.fails(&["chaos", "inject", "pause", "--target", "ratelimiter-7"]);
    assert!(
        err.contains("unknown target") && err.contains("ratelimiter-3"),
        "{err}"
    );
    c.ok(&["chaos", "inject", "node_kill", "--target", "ratelimiter-1"]);
    let err = c.fails(&["chaos", "inject", "pause", "--target", "ratelimiter-1"]);
    assert!(err.contains("already down"), "{err}");
    c.ok(&[
        "chaos",
        "inject",
        "pause",
        "--target",
        "ratelimiter-2",
        "--duration",
        "0",
    ]);
    let err = c.fails(&["chaos", "inject", "node_kill", "--target", "ratelimiter-2"]);
    assert!(err.contains("already active"), "{err}");
    let err = c.fails(&["chaos", "heal", "99"]);
    assert!(err.contains("no fault #99"), "{err}");
    let healed = c.json(&["chaos", "heal", "--all"]);
    assert_eq!(healed.as_array().unwrap().len(), 2);
    assert_eq!(state_of(&c, "ratelimiter-1"), "running");
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");
}

#[test]
fn without_a_target_a_running_limiter_node_is_chosen() {
    let c = Cluster::start("");
    let f = c.json(&["chaos", "inject", "node_kill"]);
    let target = f["target"].as_str().unwrap();
    assert!(target.starts_with("ratelimiter-"), "{target}");
    assert_eq!(state_of(&c, target), "exited");
}
