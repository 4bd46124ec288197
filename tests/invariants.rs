//! Every invariant of the rate limiter fires against a real cluster and clears again.

mod common;

use std::time::Duration;

use common::{Cluster, cycle_until, opened, resolved, rogue_ratelimiter, violated};
use operator::tickets::Resolution;
use redis::Commands;

const STEP: Duration = Duration::from_millis(200);

fn pair(i: &str, e: &str) -> (String, String) {
    (i.to_string(), e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_down_fires_when_a_node_dies_or_hangs_and_clears_when_it_is_back() {
    let c = Cluster::start("");
    let mut m = c.monitor();
    let r = m.cycle().await.unwrap();
    assert!(violated(&r).is_empty(), "{:?}", violated(&r));

    c.ok(&["node", "kill", "ratelimiter-2"]);
    let r = cycle_until(&mut m, 3, STEP, |r| opened(r, "node_down", "ratelimiter-2")).await;
    assert_eq!(violated(&r), [pair("node_down", "ratelimiter-2")]);
    c.ok(&["node", "start", "ratelimiter-2"]);
    cycle_until(&mut m, 5, STEP, |r| {
        resolved(r, "node_down", "ratelimiter-2")
    })
    .await;
    let t = &c.tickets()[0];
    assert_eq!(t.resolution, Some(Resolution::SelfHealed));

    // A paused node accepts connections but answers nothing: down too, with the reason.
    c.ok(&["node", "pause", "ratelimiter-3"]);
    let r = cycle_until(&mut m, 3, STEP, |r| opened(r, "node_down", "ratelimiter-3")).await;
    let s = r.snapshot.unwrap();
    let v = &s.assessment.violations[0];
    assert!(v.summary.contains("does not answer"), "{}", v.summary);
    c.ok(&["node", "resume", "ratelimiter-3"]);
    cycle_until(&mut m, 5, STEP, |r| {
        resolved(r, "node_down", "ratelimiter-3")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_one_ticket_not_a_storm_and_clears() {
    let c = Cluster::start("");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    c.ok(&["node", "kill", "redis"]);
    cycle_until(&mut m, 3, STEP, |r| opened(r, "redis_down", "redis")).await;
    // A few more looks: the nodes blame Redis, and that stays Redis's one ticket.
    for _ in 0..4 {
        let r = m.cycle().await.unwrap();
        assert_eq!(violated(&r), [pair("redis_down", "redis")]);
        tokio::time::sleep(STEP).await;
    }
    assert_eq!(c.active().len(), 1, "{:#?}", c.active());
    c.ok(&["node", "start", "redis"]);
    cycle_until(&mut m, 10, STEP, |r| resolved(r, "redis_down", "redis")).await;
    assert!(c.active().is_empty(), "{:#?}", c.active());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_degraded_fires_for_redis_memory_and_for_a_node_that_cannot_reach_redis() {
    let c = Cluster::start("ratelimiter.invariants.node_degraded.grace = \"0s\"\n");
    let mut m = c.monitor();
    m.cycle().await.unwrap();

    // Redis close to its maxmemory.
    let mut r = c.redis();
    let info: String = redis::cmd("INFO").arg("memory").query(&mut r).unwrap();
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + used / 20)
        .query(&mut r)
        .unwrap();
    let rep = cycle_until(&mut m, 3, STEP, |r| opened(r, "node_degraded", "redis")).await;
    let summary = &rep.snapshot.unwrap().assessment.violations[0].summary;
    assert!(summary.contains("maxmemory"), "{summary}");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .query(&mut r)
        .unwrap();
    cycle_until(&mut m, 5, STEP, |r| resolved(r, "node_degraded", "redis")).await;

    // ratelimiter-2 replaced by one whose Redis is unreachable, while the real Redis is fine.
    let addr = c.address("ratelimiter-2");
    c.ok(&["node", "kill", "ratelimiter-2"]);
    let rogue = rogue_ratelimiter(
        "ratelimiter-2",
        &addr,
        "redis://127.0.0.1:1",
        &c.dir.path().join("rogue.log"),
    );
    let rep = cycle_until(&mut m, 5, STEP, |r| {
        opened(r, "node_degraded", "ratelimiter-2")
    })
    .await;
    let summary = &rep.snapshot.unwrap().assessment.violations[0].summary;
    // The node's own word for what is wrong, not only its status code.
    assert!(summary.contains("redis unreachable"), "{summary}");
    drop(rogue);
    c.ok(&["node", "start", "ratelimiter-2"]);
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "node_degraded", "ratelimiter-2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_degraded_fires_for_a_node_answering_garbage() {
    let c = Cluster::start("ratelimiter.invariants.node_degraded.grace = \"0s\"\n");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let addr = c.address("ratelimiter-1");
    c.ok(&["node", "kill", "ratelimiter-1"]);
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    let garbage = std::thread::spawn(move || {
        use std::io::{Read, Write};
        listener.set_nonblocking(false).unwrap();
        for s in listener.incoming().take(20) {
            let Ok(mut s) = s else { break };
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"\x00\x01 certainly not http\r\n\r\n");
        }
    });
    let rep = cycle_until(&mut m, 5, STEP, |r| {
        opened(r, "node_degraded", "ratelimiter-1")
    })
    .await;
    let summary = &rep.snapshot.unwrap().assessment.violations[0].summary;
    assert!(summary.contains("unreadable answer"), "{summary}");
    // Free the port: connect until the garbage server has served its last answer.
    while !garbage.is_finished() {
        let _ = std::net::TcpStream::connect(&addr);
        std::thread::sleep(Duration::from_millis(10));
    }
    c.ok(&["node", "start", "ratelimiter-1"]);
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "node_degraded", "ratelimiter-1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_latency_fires_when_checks_slow_down_and_clears_after_the_window() {
    let c = Cluster::start(
        "ratelimiter.thresholds.latency_window = \"2s\"\nratelimiter.thresholds.latency_min_samples = 5\n",
    );
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let targets: Vec<String> = ["ratelimiter-1", "ratelimiter-2", "ratelimiter-3"]
        .iter()
        .map(|n| c.address(n))
        .collect();
    let load = tokio::spawn(operator::load::run(
        operator::load::LoadSpec {
            workload: std::sync::Arc::new(
                operator::subjects::ratelimiter::load::CheckWorkload::new(targets, 50, None),
            ),
            rate: 60,
            duration: Duration::from_secs(8),
            timeout: Duration::from_secs(3),
        },
        tokio_util::sync::CancellationToken::new(),
        |_| {},
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    m.cycle().await.unwrap();
    // Redis freezes for a while: every /check waits on it.
    c.ok(&["node", "pause", "redis"]);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    c.ok(&["node", "resume", "redis"]);
    let rep = cycle_until(&mut m, 10, STEP, |r| {
        r.changes.iter().any(|ch| ch.invariant == "high_latency")
    })
    .await;
    let s = rep.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.invariant == "high_latency")
        .unwrap();
    assert!(v.detail["p99_ms"].as_f64().unwrap() > 100.0, "{}", v.detail);
    // With Redis back, the slow requests leave the 2s window and the tickets resolve.
    cycle_until(&mut m, 30, STEP, |r| {
        violated(r).iter().all(|(i, _)| i != "high_latency")
            && r.changes.iter().any(|ch| {
                ch.invariant == "high_latency"
                    && matches!(ch.change, operator::tickets::ChangeKind::Resolved(_))
            })
    })
    .await;
    let totals = load.await.unwrap();
    assert!(totals.sent > 100, "{totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_fires_when_a_key_holds_more_than_its_limit_and_clears_on_reset() {
    let c = Cluster::start("");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    // Write past the limiter, straight into Redis, as a broken client or node would.
    let mut r = c.redis();
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut r).unwrap();
    let now_ms = secs * 1000 + micros / 1000;
    for i in 0..150 {
        let _: () = r
            .zadd("ratelimit:abuser", format!("forged-{i}"), now_ms)
            .unwrap();
    }
    let rep = cycle_until(&mut m, 3, STEP, |r| opened(r, "over_limit", "abuser")).await;
    let v = rep.snapshot.unwrap().assessment.violations[0].clone();
    assert_eq!(
        (v.detail["count"].as_u64(), v.detail["limit"].as_u64()),
        (Some(150), Some(100))
    );
    // A key's own limit counts: at 200, 150 entries are fine.
    let http = operator::runtime::health::http_client();
    let node = c.address("ratelimiter-1");
    let resp = http
        .put(format!("http://{node}/api/limits/abuser"))
        .json(&serde_json::json!({ "limit": 200 }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    cycle_until(&mut m, 5, STEP, |r| resolved(r, "over_limit", "abuser")).await;
    // Back down to 100 and it fires again; a reset clears it for good.
    http.put(format!("http://{node}/api/limits/abuser"))
        .json(&serde_json::json!({ "limit": 100 }))
        .send()
        .await
        .unwrap();
    cycle_until(&mut m, 3, STEP, |r| opened(r, "over_limit", "abuser")).await;
    http.post(format!("http://{node}/api/counters/abuser/reset"))
        .send()
        .await
        .unwrap();
    cycle_until(&mut m, 5, STEP, |r| resolved(r, "over_limit", "abuser")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_drift_fires_for_a_node_counting_in_another_redis() {
    let c = Cluster::start("ratelimiter.invariants.counter_drift.grace = \"0s\"\n");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let addr = c.address("ratelimiter-2");
    let redis_db1 = format!("redis://{}/1", c.address("redis"));
    c.ok(&["node", "kill", "ratelimiter-2"]);
    let rogue = rogue_ratelimiter(
        "ratelimiter-2",
        &addr,
        &redis_db1,
        &c.dir.path().join("rogue.log"),
    );
    let http = operator::runtime::health::http_client();
    for _ in 0..20 {
        let r = http
            .post(format!("http://{addr}/check"))
            .json(&serde_json::json!({ "key": "drifting" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let rep = cycle_until(&mut m, 5, STEP, |r| {
        opened(r, "counter_drift", "ratelimiter-2")
    })
    .await;
    let s = rep.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.invariant == "counter_drift")
        .unwrap();
    assert_eq!(v.detail["keys"][0]["key"], "drifting", "{}", v.detail);
    assert_eq!(v.detail["keys"][0]["node"], 20);
    assert_eq!(v.detail["keys"][0]["redis"], 0);
    drop(rogue);
    c.ok(&["node", "start", "ratelimiter-2"]);
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "counter_drift", "ratelimiter-2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_mismatch_fires_for_a_live_node_that_is_not_registered() {
    let c = Cluster::start(
        "ratelimiter.node_ttl_seconds = 60\nratelimiter.node_heartbeat_seconds = 30\nratelimiter.invariants.registry_mismatch.grace = \"0s\"\n",
    );
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let mut r = c.redis();
    let _: () = r.del("ratelimiter:nodes:ratelimiter-1").unwrap();
    let rep = cycle_until(&mut m, 3, STEP, |r| {
        opened(r, "registry_mismatch", "ratelimiter-1")
    })
    .await;
    let summary = &rep.snapshot.unwrap().assessment.violations[0].summary;
    assert!(summary.contains("not registered"), "{summary}");
    c.ok(&["node", "restart", "ratelimiter-1"]);
    cycle_until(&mut m, 5, STEP, |r| {
        resolved(r, "registry_mismatch", "ratelimiter-1")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_mismatch_fires_for_a_dead_node_registered_past_its_ttl() {
    let c = Cluster::start(
        "ratelimiter.node_ttl_seconds = 2\nratelimiter.node_heartbeat_seconds = 1\nratelimiter.invariants.registry_mismatch.grace = \"0s\"\n",
    );
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    c.ok(&["node", "kill", "ratelimiter-3"]);
    // A stale entry that never expires, as after a botched manual fix.
    let mut r = c.redis();
    let _: () = r.persist("ratelimiter:nodes:ratelimiter-3").unwrap();
    let rep = cycle_until(&mut m, 30, STEP, |r| {
        opened(r, "registry_mismatch", "ratelimiter-3")
    })
    .await;
    let s = rep.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.invariant == "registry_mismatch")
        .unwrap();
    assert!(v.summary.contains("still registered"), "{}", v.summary);
    c.ok(&["node", "start", "ratelimiter-3"]);
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "registry_mismatch", "ratelimiter-3")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_unreachable_fires_alone_and_resolves_nothing_else() {
    let mut c = Cluster::start("");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    c.ok(&["node", "kill", "ratelimiter-1"]);
    cycle_until(&mut m, 3, STEP, |r| opened(r, "node_down", "ratelimiter-1")).await;
    for n in ["ratelimiter-2", "ratelimiter-3", "redis"] {
        c.ok(&["node", "kill", n]);
    }
    let r = cycle_until(&mut m, 3, STEP, |r| {
        opened(r, "subject_unreachable", "cluster")
    })
    .await;
    assert_eq!(violated(&r), [pair("subject_unreachable", "cluster")]);
    // The node_down ticket is neither resolved nor joined by a storm.
    let active: Vec<_> = c.active().into_iter().map(|t| t.invariant).collect();
    assert_eq!(active.len(), 2, "{active:?}");
    assert!(active.contains(&"node_down".to_string()));
    for n in ["redis", "ratelimiter-2", "ratelimiter-3"] {
        c.ok(&["node", "start", n]);
    }
    let r = cycle_until(&mut m, 5, STEP, |r| {
        resolved(r, "subject_unreachable", "cluster")
    })
    .await;
    assert_eq!(violated(&r), [pair("node_down", "ratelimiter-1")]);

    // The cluster taken down under the monitor's feet: unreachable again, with the reason.
    c.down();
    let r = cycle_until(&mut m, 3, STEP, |r| {
        opened(r, "subject_unreachable", "cluster")
    })
    .await;
    let err = r.observation_error.unwrap();
    assert!(err.contains("not up"), "{err}");
}
