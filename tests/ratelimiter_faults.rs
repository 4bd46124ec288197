//! The rate limiter's own faults, against the real cluster: each opens its ticket, the
//! runbook agent repairs it with more than a restart (verified by the monitor), and the
//! fault's heal then finds nothing left to undo.

mod common;

use std::time::Duration;

use common::{Cluster, cycle_until, opened};

const STEP: Duration = Duration::from_millis(200);

fn check(c: &Cluster, key: &str) -> u16 {
    let body = format!(r#"{{"key":"{key}"}}"#);
    common::http(
        "POST",
        &c.address("ratelimiter-1"),
        "/check",
        Some(&body),
        Duration::from_secs(3),
    )
    .unwrap()
    .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_maxmemory_is_repaired_by_lifting_the_cap_not_by_a_restart() {
    let c = Cluster::start("");
    assert_eq!(check(&c, "before"), 200);
    let mut m = c.monitor();
    let f = c.json(&["chaos", "inject", "redis_maxmemory", "--duration", "0"]);
    assert_eq!(f["status"], "active", "{f}");
    assert!(f["note"].as_str().unwrap().contains("noeviction"), "{f}");
    let id = f["id"].as_i64().unwrap();
    // Redis refuses plain writes: a per-key limit cannot be set. (The limiter's own Lua
    // script is let through: Redis checks memory only for commands sent on their own.)
    let put = |c: &Cluster| {
        common::http(
            "PUT",
            &c.address("ratelimiter-1"),
            "/api/limits/vip",
            Some(r#"{"limit": 5}"#),
            Duration::from_secs(3),
        )
        .unwrap()
    };
    let (status, body, _) = put(&c);
    assert!(status >= 500 && body.contains("OOM"), "{status} {body}");
    let r = cycle_until(&mut m, 15, STEP, |r| opened(r, "node_degraded", "redis")).await;
    let s = r.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.entity == "redis")
        .unwrap();
    assert_eq!(v.detail["problem"], "maxmemory", "{v:?}");
    drop(m);

    let out = c.runbook_agent_once();
    assert!(out.contains("CONFIG SET maxmemory 0"), "{out}");
    assert!(!out.contains("node restart redis"), "{out}");
    assert!(out.contains("resolved (verified)"), "{out}");
    assert_eq!(put(&c).0, 200);
    // The agent lifted the cap: the fault's heal finds nothing left to lift.
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("nothing left to lift"), "{healed}");
    // This subject's load records nothing for an oracle: said so.
    let err = c.fails(&["load", "--verify"]);
    assert!(err.contains("records nothing to verify"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_counter_is_repaired_by_resetting_the_key() {
    let c = Cluster::start("");
    assert_eq!(check(&c, "load-0"), 200);
    let mut m = c.monitor();
    let (id, _) = c.inject(&["stale_counter", "--duration", "0"]);
    // The key is blocked, and stays so: its entries are dated an hour ahead.
    assert_eq!(check(&c, "load-0"), 429);
    cycle_until(&mut m, 15, STEP, |r| opened(r, "over_limit", "load-0")).await;
    drop(m);

    let out = c.runbook_agent_once();
    assert!(out.contains("/api/counters/load-0/reset"), "{out}");
    assert!(out.contains("resolved (verified)"), "{out}");
    assert_eq!(check(&c, "load-0"), 200);
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("nothing left to reset"), "{healed}");
}
