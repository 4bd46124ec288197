//! The `ratelimiter` service's HTTP API against a real Redis.

mod common;

use std::time::Duration;

use common::{Cluster, wait_for};
use redis::Commands;
use serde_json::{Value, json};

struct Api {
    http: reqwest::Client,
}

impl Api {
    fn new() -> Self {
        Self {
            http: operator::runtime::health::http_client(),
        }
    }

    async fn check(&self, node: &str, body: Value) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .post(format!("http://{node}/check"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.json().await.unwrap())
    }

    async fn get(&self, url: String) -> (u16, String) {
        let r = self.http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_allow_then_block_with_headers_across_nodes() {
    let c = Cluster::start("");
    let api = Api::new();
    let nodes: Vec<String> = ["ratelimiter-1", "ratelimiter-2", "ratelimiter-3"]
        .iter()
        .map(|n| c.address(n))
        .collect();
    // Three requests, one per node: one shared count.
    for (i, node) in nodes.iter().enumerate() {
        let (s, h, b) = api
            .check(node, json!({ "key": "shared", "limit": 3 }))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["current_count"], i as u64 + 1);
        assert_eq!(b["remaining"], 2 - i as u64);
        assert_eq!(h["x-ratelimit-limit"], "3");
    }
    let (s, h, b) = api
        .check(&nodes[0], json!({ "key": "shared", "limit": 3 }))
        .await;
    assert_eq!(s, 429);
    assert_eq!(b["allowed"], false);
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert!(h.contains_key("x-ratelimit-reset") && h.contains_key("retry-after"));
    assert!(b["retry_after_seconds"].as_u64().unwrap() >= 59, "{b}");
    let (_, blocks) = api.get(format!("http://{}/api/blocks", nodes[0])).await;
    assert!(blocks.contains("shared"), "{blocks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keys_own_limit_wins_and_the_window_slides() {
    let c = Cluster::start("");
    let api = Api::new();
    let n = c.address("ratelimiter-1");
    let r = api
        .http
        .put(format!("http://{n}/api/limits/vip"))
        .json(&json!({ "limit": 2, "window_ms": 400 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The client asks for 100; the key's own limit of 2 decides.
    for _ in 0..2 {
        assert_eq!(
            api.check(&n, json!({ "key": "vip", "limit": 100 })).await.0,
            200
        );
    }
    let (s, _, b) = api.check(&n, json!({ "key": "vip", "limit": 100 })).await;
    assert_eq!((s, b["limit"].as_u64()), (429, Some(2)));
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert_eq!(api.check(&n, json!({ "key": "vip" })).await.0, 200);
    let (_, limits) = api.get(format!("http://{n}/api/limits")).await;
    let limits: Value = serde_json::from_str(&limits).unwrap();
    assert_eq!(
        limits["limits"][0],
        json!({ "key": "vip", "limit": 2, "window_ms": 400 })
    );
    let (_, counters) = api.get(format!("http://{n}/api/counters")).await;
    let counters: Value = serde_json::from_str(&counters).unwrap();
    assert_eq!(counters["counters"][0]["key"], "vip");
    assert_eq!(counters["counters"][0]["count"], 1);
    let r = api
        .http
        .post(format!("http://{n}/api/counters/vip/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["reset"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors() {
    let c = Cluster::start("");
    let api = Api::new();
    let n = c.address("ratelimiter-1");
    let r = api
        .http
        .post(format!("http://{n}/check"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let b: Value = r.json().await.unwrap();
    assert!(b["error"].as_str().unwrap().contains("key"), "{b}");
    let (s, _, b) = api.check(&n, json!({ "key": "" })).await;
    assert_eq!(s, 400, "{b}");
    let (s, _, _) = api.check(&n, json!({ "key": "k", "limit": 0 })).await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_tells_the_truth_when_redis_is_away() {
    let c = Cluster::start("");
    let api = Api::new();
    let n = c.address("ratelimiter-2");
    let (s, body) = api.get(format!("http://{n}/health")).await;
    assert_eq!(s, 200, "{body}");
    c.ok(&["node", "kill", "redis"]);
    let (s, body) = api.get(format!("http://{n}/health")).await;
    assert_eq!(s, 503, "{body}");
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(b["redis"], "unreachable");
    assert!(b["reason"].as_str().unwrap().contains("redis"), "{b}");
    let (s, _, _) = api.check(&n, json!({ "key": "k" })).await;
    assert_eq!(s, 503);
    c.ok(&["node", "start", "redis"]);
    // The node reconnects by itself on its next call.
    let mut back = false;
    for _ in 0..50 {
        if api.get(format!("http://{n}/health")).await.0 == 200 {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(back, "the node did not reconnect to Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_the_node_id_and_record_every_request() {
    let c = Cluster::start("");
    let api = Api::new();
    let n = c.address("ratelimiter-3");
    for _ in 0..7 {
        api.check(&n, json!({ "key": "m" })).await;
    }
    let (_, text) = api.get(format!("http://{n}/metrics")).await;
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() > 10);
    for s in &samples {
        assert!(s.contains("node_id=\"ratelimiter-3\""), "{s}");
    }
    let count = samples
        .iter()
        .find(|l| {
            l.starts_with("ratelimiter_request_duration_seconds_count") && l.contains("\"/check\"")
        })
        .unwrap();
    assert!(count.ends_with(" 7"), "{count}");
    assert!(
        text.contains(
            "ratelimiter_decisions_total{node_id=\"ratelimiter-3\",result=\"allowed\"} 7"
        ),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_follows_heartbeats_and_graceful_stops() {
    let c = Cluster::start(
        "ratelimiter.node_ttl_seconds = 3\nratelimiter.node_heartbeat_seconds = 1\n",
    );
    let mut r = c.redis();
    let key = "ratelimiter:nodes:ratelimiter-1";
    let ttl: i64 = r.ttl(key).unwrap();
    assert!((1..=3).contains(&ttl), "{ttl}");
    let _: () = r.del(key).unwrap();
    assert!(
        wait_for(Duration::from_secs(3), || r.exists::<_, bool>(key).unwrap()),
        "heartbeat did not re-register"
    );
    let api = Api::new();
    let (_, nodes) = api
        .get(format!("http://{}/api/nodes", c.address("ratelimiter-2")))
        .await;
    let nodes: Value = serde_json::from_str(&nodes).unwrap();
    assert_eq!(nodes["nodes"].as_array().unwrap().len(), 3);
    assert!(
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "active")
    );
    // SIGTERM: the node removes its own entry at once, not when the TTL runs out.
    c.ok(&["node", "stop", "ratelimiter-1"]);
    assert!(!r.exists::<_, bool>(key).unwrap());
}
