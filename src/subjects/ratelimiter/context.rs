//! What an agent is told about a rate-limiter cluster: its nodes, how to look at them, and
//! the commands that repair them.

use serde_json::json;

use super::topology::{REDIS, ROLE_LIMITER, ROLE_REDIS};
use crate::config::RateLimiterConfig;
use crate::runtime::Topology;
use crate::subjects::{InvariantInfo, SubjectContext};

pub fn describe(t: &Topology, cfg: &RateLimiterConfig, rules: &[InvariantInfo]) -> SubjectContext {
    let redis = t.nodes.iter().find(|n| n.role == ROLE_REDIS);
    let redis_address = redis.map_or(String::new(), |r| r.address.clone());
    let redis_port = redis_address
        .rsplit(':')
        .next()
        .unwrap_or("6379")
        .to_string();
    let limiters: Vec<_> = t.nodes.iter().filter(|n| n.role == ROLE_LIMITER).collect();
    let any_node = limiters
        .first()
        .map_or(String::new(), |n| n.address.clone());
    let mut d = String::new();
    d.push_str(&format!(
        "The subject is a rate limiter: {} HTTP nodes sharing their counters in one Redis \
         (instance {}, {} runtime). Each node decides `POST /check {{key, limit?, window_ms?}}` with a \
         sliding-window log kept in Redis (sorted set `ratelimit:{{key}}`, one entry per admitted \
         request, default limit {} per {} ms; a key's own limit lives in the hash \
         `ratelimit:limit:{{key}}`). Nodes register in Redis as `ratelimiter:nodes:{{id}}` (TTL {} s, \
         heartbeat every {} s).\n\n",
        limiters.len(),
        t.instance,
        t.runtime,
        cfg.default_limit,
        cfg.default_window_ms,
        cfg.node_ttl_seconds,
        cfg.node_heartbeat_seconds
    ));
    d.push_str("Nodes:\n");
    for n in &t.nodes {
        d.push_str(&format!("- {} ({}) at {}", n.name, n.role, n.address));
        if let Some(c) = &n.client {
            d.push_str(&format!(
                "; clients reach it through the fault proxy at {c}"
            ));
        }
        if n.role == crate::runtime::ROLE_FAULTPROXY {
            d.push_str(" (the test rig's fault proxy: leave it alone)");
        }
        d.push('\n');
    }
    d.push_str(&format!(
        "\nEach limiter node answers `GET /health` (503 with a reason when Redis is unreachable), \
         `GET /metrics` (Prometheus), `GET /api/nodes`, `GET /api/counters`, `GET /api/limits`, \
         `PUT /api/limits/{{key}} {{limit, window_ms?}}`, `POST /api/counters/{{key}}/reset`, `GET /api/blocks`.\n\n\
         Useful commands:\n\
         - `operator status` — every node's process state and health\n\
         - `operator node logs NODE -n 50` — a node's log\n\
         - `operator node start|resume|restart NODE` — bring a node back (no node restarts by itself)\n\
         - `operator node stop|kill|pause NODE` — take one out (destructive: a person approves)\n\
         - `curl -s http://{any_node}/health` and the other endpoints above\n\
         - `redis-cli -p {redis_port} PING`, `INFO`, `ZCARD ratelimit:KEY`, `HGETALL ratelimiter:nodes:NODE`, `TTL …`\n\n\
         Invariants the monitor checks:\n"
    ));
    for r in rules.iter().filter(|r| r.enabled) {
        d.push_str(&format!(
            "- {} ({}): {}\n",
            r.name,
            r.severity.as_str(),
            r.description
        ));
    }
    let nodes: serde_json::Map<String, serde_json::Value> = t
        .nodes
        .iter()
        .map(|n| (n.name.clone(), json!(n.address)))
        .collect();
    SubjectContext {
        description: d,
        facts: json!({
            "subject": t.subject,
            "instance": t.instance,
            "redis": REDIS,
            "redis_address": redis_address,
            "redis_port": redis_port,
            "any_node": any_node,
            "nodes": nodes,
        }),
    }
}
