//! `operator tickets` through the real binary, on tickets a real monitor opened.

mod common;

use common::{Cluster, cycle_until, opened};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_hold_unhold_and_resolve() {
    let c = Cluster::start("");
    let mut m = c.monitor();
    c.ok(&["node", "kill", "ratelimiter-2"]);
    cycle_until(&mut m, 3, Duration::from_millis(100), |r| {
        opened(r, "node_down", "ratelimiter-2")
    })
    .await;

    let list = c.json(&["tickets", "list"]);
    let t = &list[0];
    for field in [
        "id",
        "violation_key",
        "invariant",
        "entity",
        "status",
        "held",
        "severity",
        "occurrences",
        "opened_at",
        "last_seen_at",
        "resolved_at",
        "resolution",
    ] {
        assert!(t.get(field).is_some(), "missing {field} in {t}");
    }
    assert_eq!(t["entity"], "ratelimiter-2");
    assert_eq!(t["status"], "open");
    assert_eq!(t["held"], false);
    assert_eq!(t["resolution"], serde_json::Value::Null);
    let id = t["id"].as_i64().unwrap().to_string();
    // Asked for this instance's tickets only (as the sandbox's `operator` always asks), another
    // instance sees none of this one's.
    assert!(
        c.ok(&["tickets", "show", &id, "--this-instance"])
            .contains("ratelimiter-2")
    );
    let other = std::process::Command::new(common::OPERATOR)
        .args(["--config"])
        .arg(c.config_path())
        .arg("--state-dir")
        .arg(c.state_dir())
        .args(["--instance", "3", "tickets", "show", &id, "--this-instance"])
        .env_remove("OPERATOR_INSTANCE")
        .output()
        .unwrap();
    let err = common::text(&other.stderr);
    assert!(
        !other.status.success() && err.contains("not this instance's"),
        "{err}"
    );

    let table = c.ok(&["tickets", "list"]);
    assert!(
        table.contains("node_down") && table.contains("ratelimiter-2"),
        "{table}"
    );
    assert_eq!(
        c.json(&["tickets", "list", "--status", "resolved"])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let err = c.fails(&["tickets", "list", "--status", "closed"]);
    assert!(
        err.contains("in_progress") && err.contains("escalated"),
        "{err}"
    );

    // Held: the node comes back, but the ticket stays until a person lets go.
    c.ok(&["tickets", "hold", &id, "--reason", "looking into it"]);
    c.ok(&["node", "start", "ratelimiter-2"]);
    for _ in 0..3 {
        m.cycle().await.unwrap();
    }
    let t = c.json(&["tickets", "show", &id]);
    assert_eq!(
        (t["status"].as_str(), t["held"].as_bool()),
        (Some("open"), Some(true))
    );
    assert!(t["cleared_at"].is_string());
    c.ok(&["tickets", "unhold", &id]);
    m.cycle().await.unwrap();
    let t = c.json(&["tickets", "show", &id]);
    assert_eq!(t["status"], "resolved");
    assert_eq!(t["resolution"], "self_healed");
    let kinds: Vec<&str> = t["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["opened", "held", "cleared", "unheld", "resolved"]);
    let held = &t["events"][1];
    assert!(held["actor"].as_str().unwrap().starts_with("cli:"));
    assert_eq!(held["reason"], "looking into it");
    let text = c.ok(&["tickets", "show", &id]);
    assert!(
        text.contains("history:") && text.contains("looking into it"),
        "{text}"
    );

    // A person resolves a live violation: the monitor reopens it.
    c.ok(&["node", "kill", "ratelimiter-2"]);
    cycle_until(&mut m, 3, Duration::from_millis(100), |r| {
        opened(r, "node_down", "ratelimiter-2")
    })
    .await;
    let t = c.json(&["tickets", "resolve", &id, "--reason", "known issue"]);
    assert_eq!(t["resolution"], "manual");
    m.cycle().await.unwrap();
    let t = c.json(&["tickets", "show", &id]);
    assert_eq!(
        (t["status"].as_str(), t["occurrences"].as_u64()),
        (Some("open"), Some(3))
    );
    let err = c.fails(&["tickets", "show", "999"]);
    assert!(err.contains("no ticket #999"), "{err}");
}
