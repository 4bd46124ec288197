//! The rate limiter's invariants, as a pure function of one observation.
//!
//! What an observation could not see is reported as unknown, never as healthy: with Redis
//! unreachable nothing is known about counters or the registry, and a node that blames Redis
//! for its ill health is Redis's ticket, not its own (one incident, one ticket).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::json;

use super::config::RateLimiterConfig;
use super::observe::{NodeProbe, RedisProbe, RlObservation};
use crate::invariant::Consequence;
use crate::subjects::{Assessment, InvariantInfo, NodeState, Severity, Violation};

pub const NODE_DOWN: &str = "node_down";
pub const NODE_DEGRADED: &str = "node_degraded";
pub const REDIS_DOWN: &str = "redis_down";
pub const HIGH_LATENCY: &str = "high_latency";
pub const OVER_LIMIT: &str = "over_limit";
pub const COUNTER_DRIFT: &str = "counter_drift";
pub const REGISTRY_MISMATCH: &str = "registry_mismatch";
pub const SUBJECT_UNREACHABLE: &str = "subject_unreachable";
pub const LOW_DISK_SPACE: &str = "low_disk_space";

/// The entity of `subject_unreachable`.
pub const CLUSTER: &str = "cluster";

/// What follows from what. A node is unhealthy, slow, or miscounting because Redis is
/// down; a node's own symptoms follow from that node being down. (The check already folds
/// "unhealthy only because Redis is down" into Redis's violation; this groups what it does
/// not fold.)
pub const CONSEQUENCES: &[Consequence] = &[
    Consequence {
        invariant: NODE_DEGRADED,
        follows_from: &[REDIS_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: NODE_DEGRADED,
        follows_from: &[NODE_DOWN],
        same_entity: true,
    },
    Consequence {
        invariant: HIGH_LATENCY,
        follows_from: &[REDIS_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: HIGH_LATENCY,
        follows_from: &[NODE_DOWN, NODE_DEGRADED],
        same_entity: true,
    },
    Consequence {
        invariant: COUNTER_DRIFT,
        follows_from: &[REDIS_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: REGISTRY_MISMATCH,
        follows_from: &[REDIS_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: REGISTRY_MISMATCH,
        follows_from: &[NODE_DOWN],
        same_entity: true,
    },
];

/// The invariants with their defaults, overridden by the config.
pub fn catalogue(cfg: &RateLimiterConfig) -> Vec<InvariantInfo> {
    // An unregistered live node re-registers at its next heartbeat: wait that long first.
    let registry_grace = Duration::from_secs(cfg.node_heartbeat_seconds + 5);
    let defaults: [(&'static str, &'static str, Severity, Duration); 9] = [
        (
            NODE_DOWN,
            "every expected limiter node answers its health check",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            NODE_DEGRADED,
            "every node that answers says it is healthy; Redis is not loading, near maxmemory, or failing to persist",
            Severity::Warning,
            Duration::from_secs(2),
        ),
        (
            REDIS_DOWN,
            "Redis answers PING",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            HIGH_LATENCY,
            "each node's p99 for /check over the latency window stays under the threshold",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            OVER_LIMIT,
            "no key holds more entries in its window than its limit",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            COUNTER_DRIFT,
            "the counts each node reports match Redis",
            Severity::Warning,
            Duration::from_secs(3),
        ),
        (
            REGISTRY_MISMATCH,
            "every live node is registered at its address, and no dead or unknown node stays registered past the TTL",
            Severity::Warning,
            registry_grace,
        ),
        (
            LOW_DISK_SPACE,
            "Redis's data volume stays under the disk threshold (where the runtime bounds it, as Docker does)",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            SUBJECT_UNREACHABLE,
            "the cluster can be observed at all",
            Severity::Critical,
            Duration::ZERO,
        ),
    ];
    crate::invariant::catalogue(&defaults, |name| cfg.invariants.get(name).cloned())
}

struct Checker<'a> {
    cfg: &'a RateLimiterConfig,
    rules: HashMap<&'static str, &'a InvariantInfo>,
    out: Assessment,
}

impl Checker<'_> {
    fn violate(
        &mut self,
        invariant: &str,
        entity: &str,
        summary: String,
        detail: serde_json::Value,
    ) {
        let Some(rule) = self.rules.get(invariant) else {
            return;
        };
        if !rule.enabled {
            return;
        }
        self.out.violations.push(Violation {
            invariant: invariant.into(),
            entity: entity.into(),
            severity: rule.severity,
            summary,
            detail,
        });
    }

    fn unknown_all(&mut self, invariant: &str, reason: &str) {
        self.out.unknown_all(invariant, reason);
    }

    fn unknown_for(&mut self, invariant: &str, entity: &str, reason: &str) {
        self.out.unknown_for(invariant, entity, reason);
    }
}

/// Checks every invariant against one observation.
pub fn assess(obs: &RlObservation, cfg: &RateLimiterConfig, rules: &[InvariantInfo]) -> Assessment {
    let mut c = Checker {
        cfg,
        rules: rules.iter().map(|r| (r.name, r)).collect(),
        out: Assessment::default(),
    };
    for r in rules.iter().filter(|r| !r.enabled) {
        c.unknown_all(r.name, "disabled in the config");
    }
    let everything_out = obs.redis.as_ref().is_none_or(|r| !r.reachable())
        && obs.nodes.iter().all(|n| n.state.is_out());
    if let Some(error) = &obs.error {
        unreachable(&mut c, error);
        return c.out;
    }
    if everything_out {
        unreachable(&mut c, "neither Redis nor any limiter node answers");
        return c.out;
    }
    let Some(redis) = &obs.redis else {
        unreachable(&mut c, "Redis was not probed");
        return c.out;
    };
    check_nodes(&mut c, &obs.nodes, redis);
    check_redis(&mut c, redis);
    check_disk(&mut c, redis);
    check_latency(&mut c, &obs.nodes);
    check_counters(&mut c, &obs.nodes, redis);
    check_registry(&mut c, &obs.nodes, redis);
    c.out
}

fn unreachable(c: &mut Checker, why: &str) {
    c.violate(
        SUBJECT_UNREACHABLE,
        CLUSTER,
        format!("the rate limiter cannot be observed: {why}"),
        json!({ "error": why }),
    );
    let others: Vec<&'static str> = c
        .rules
        .keys()
        .copied()
        .filter(|n| *n != SUBJECT_UNREACHABLE)
        .collect();
    for name in others {
        c.unknown_all(name, "the subject could not be observed");
    }
}

fn check_nodes(c: &mut Checker, nodes: &[NodeProbe], redis: &RedisProbe) {
    for n in nodes {
        let detail = json!({
            "state": n.state,
            "address": n.address,
            "detail": n.detail,
        });
        let why = n.detail.as_deref().unwrap_or("no detail");
        match n.state {
            NodeState::Down => c.violate(
                NODE_DOWN,
                &n.name,
                format!("{} is down: {why}", n.name),
                detail,
            ),
            NodeState::Unresponsive => c.violate(
                NODE_DOWN,
                &n.name,
                format!("{} does not answer: {why}", n.name),
                detail,
            ),
            NodeState::Degraded if n.redis_unreachable && !redis.reachable() => {
                c.unknown_for(
                    NODE_DEGRADED,
                    &n.name,
                    "Redis is down; that is redis_down's ticket",
                );
            }
            NodeState::Degraded => c.violate(
                NODE_DEGRADED,
                &n.name,
                format!("{} is degraded: {why}", n.name),
                detail,
            ),
            NodeState::Up => {}
        }
        if n.state.is_out() {
            c.unknown_for(NODE_DEGRADED, &n.name, "the node does not answer");
        }
    }
}

fn check_redis(c: &mut Checker, redis: &RedisProbe) {
    let detail = json!({
        "state": redis.state,
        "address": redis.address,
        "detail": redis.detail,
        "used_memory": redis.used_memory,
        "maxmemory": redis.maxmemory,
        "persistence_errors": redis.persistence_errors,
    });
    if !redis.reachable() {
        let why = redis.detail.as_deref().unwrap_or("no answer");
        c.violate(
            REDIS_DOWN,
            &redis.name,
            format!("{} is down: {why}", redis.name),
            detail,
        );
        c.unknown_for(NODE_DEGRADED, &redis.name, "Redis does not answer");
        return;
    }
    let mut problems = Vec::new();
    if redis.state == NodeState::Degraded {
        problems.push(redis.detail.clone().unwrap_or_else(|| "degraded".into()));
    }
    let mut detail = detail;
    if let (Some(used), Some(max)) = (redis.used_memory, redis.maxmemory) {
        let share = used as f64 / max as f64;
        if share > c.cfg.thresholds.redis_memory_ratio {
            problems.push(format!(
                "uses {:.0}% of maxmemory ({used} of {max} bytes)",
                share * 100.0
            ));
            // For the runbook: the repair is about memory, not the process.
            detail["problem"] = "maxmemory".into();
        }
    }
    if !redis.persistence_errors.is_empty() {
        problems.push(format!(
            "persistence failing ({})",
            redis.persistence_errors.join(", ")
        ));
    }
    if !problems.is_empty() {
        c.violate(
            NODE_DEGRADED,
            &redis.name,
            format!("{} is degraded: {}", redis.name, problems.join("; ")),
            detail,
        );
    }
}

/// A volume that cannot be measured, or that the runtime does not bound, is unknown.
fn check_disk(c: &mut Checker, redis: &RedisProbe) {
    if let Some(why) = &redis.disk_error {
        c.unknown_for(LOW_DISK_SPACE, &redis.name, why);
        return;
    }
    let Some(disk) = redis.disk else {
        c.unknown_for(
            LOW_DISK_SPACE,
            &redis.name,
            "this runtime gives Redis no bounded data volume",
        );
        return;
    };
    if let Some((summary, detail)) = disk.over(&redis.name, c.cfg.thresholds.disk_used_percent) {
        c.violate(LOW_DISK_SPACE, &redis.name, summary, detail);
    }
}

fn check_latency(c: &mut Checker, nodes: &[NodeProbe]) {
    let t = &c.cfg.thresholds;
    let (limit, min, window) = (t.latency_p99_ms, t.latency_min_samples, t.latency_window);
    for n in nodes {
        match n.latency {
            None => c.unknown_for(HIGH_LATENCY, &n.name, "no latency histogram over the window yet"),
            // Too few requests to judge: a quiet node is not a slow one.
            Some(s) if s.samples < min => {}
            Some(s) if s.p99_ms > limit => c.violate(
                HIGH_LATENCY,
                &n.name,
                format!(
                    "{} answers /check slowly: p99 {:.0}ms over the last {} (threshold {limit:.0}ms, {} requests)",
                    n.name,
                    s.p99_ms,
                    humantime::format_duration(window),
                    s.samples
                ),
                json!({ "p99_ms": s.p99_ms, "samples": s.samples, "threshold_ms": limit }),
            ),
            Some(_) => {}
        }
    }
}

fn check_counters(c: &mut Checker, nodes: &[NodeProbe], redis: &RedisProbe) {
    let Some(scan) = &redis.counters else {
        let why = "Redis's counters could not be read";
        c.unknown_all(OVER_LIMIT, why);
        c.unknown_all(COUNTER_DRIFT, why);
        return;
    };
    for k in scan.counters.iter().filter(|k| k.count > k.limit) {
        c.violate(
            OVER_LIMIT,
            &k.key,
            format!(
                "key {} holds {} entries in its window, more than its limit of {} (window {}ms)",
                k.key, k.count, k.limit, k.window_ms
            ),
            json!({ "count": k.count, "limit": k.limit, "window_ms": k.window_ms }),
        );
    }
    let tolerance = c.cfg.thresholds.drift_tolerance;
    let in_redis: BTreeMap<&str, u64> = scan
        .counters
        .iter()
        .map(|k| (k.key.as_str(), k.count))
        .collect();
    for n in nodes {
        let Some(reported) = &n.counters else {
            c.unknown_for(
                COUNTER_DRIFT,
                &n.name,
                "the node did not report its counters",
            );
            continue;
        };
        let by_node: BTreeMap<&str, u64> =
            reported.iter().map(|k| (k.key.as_str(), k.count)).collect();
        // With either list cut short, a key missing from one side proves nothing.
        let partial = n.counters_truncated || scan.truncated;
        let mut keys: Vec<&str> = by_node.keys().copied().collect();
        if !partial {
            keys.extend(
                in_redis
                    .keys()
                    .copied()
                    .filter(|k| !by_node.contains_key(k)),
            );
        }
        let drifted: Vec<_> = keys
            .into_iter()
            .filter(|k| !partial || in_redis.contains_key(k))
            .filter_map(|k| {
                let (node, redis) = (
                    by_node.get(k).copied().unwrap_or(0),
                    in_redis.get(k).copied().unwrap_or(0),
                );
                (node.abs_diff(redis) > tolerance)
                    .then(|| json!({ "key": k, "node": node, "redis": redis }))
            })
            .collect();
        if let Some(first) = drifted.first() {
            c.violate(
                COUNTER_DRIFT,
                &n.name,
                format!(
                    "{} reports counts that differ from Redis by more than {tolerance} for {} key(s), e.g. {}: node {}, redis {}",
                    n.name,
                    drifted.len(),
                    first["key"].as_str().unwrap_or_default(),
                    first["node"],
                    first["redis"]
                ),
                json!({ "keys": drifted.iter().take(20).collect::<Vec<_>>(), "drifted": drifted.len(), "tolerance": tolerance }),
            );
        }
    }
}

fn check_registry(c: &mut Checker, nodes: &[NodeProbe], redis: &RedisProbe) {
    let (Some(entries), Some(scan)) = (&redis.registry, &redis.counters) else {
        c.unknown_all(REGISTRY_MISMATCH, "the registry could not be read");
        return;
    };
    let now_ms = scan.now_ms;
    let ttl_ms = c.cfg.node_ttl_seconds * 1000;
    let by_id: HashMap<&str, _> = entries.iter().map(|e| (e.id.as_str(), e)).collect();
    for n in nodes {
        let entry = by_id.get(n.name.as_str());
        let alive = matches!(n.state, NodeState::Up | NodeState::Degraded);
        let problem = match entry {
            None if alive => Some(format!("{} answers but is not registered", n.name)),
            None => None,
            Some(e) if alive && e.address != n.advertised.as_deref().unwrap_or(&n.address) => {
                Some(format!(
                    "{} runs at {} but is registered at {}",
                    n.name,
                    n.advertised.as_deref().unwrap_or(&n.address),
                    e.address
                ))
            }
            Some(e) if !alive => {
                let silent_ms = e
                    .last_heartbeat_ms
                    .map_or(u64::MAX, |b| now_ms.saturating_sub(b));
                (silent_ms > ttl_ms).then(|| {
                    format!(
                        "{} is not running but is still registered, {}s after its last heartbeat (TTL {}s)",
                        n.name,
                        silent_ms / 1000,
                        ttl_ms / 1000
                    )
                })
            }
            Some(_) => None,
        };
        if let Some(summary) = problem {
            c.violate(
                REGISTRY_MISMATCH,
                &n.name,
                summary,
                json!({ "state": n.state, "address": n.address, "entry": entry }),
            );
        }
    }
    for e in entries {
        if !nodes.iter().any(|n| n.name == e.id) {
            c.violate(
                REGISTRY_MISMATCH,
                &e.id,
                format!(
                    "{} is registered (at {}) but is not a node of this cluster",
                    e.id, e.address
                ),
                json!({ "entry": e }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::ratelimiter::latency::LatencyStat;
    use crate::subjects::ratelimiter::redis_state::{Counter, CounterScan, RegistryEntry};

    fn cfg() -> RateLimiterConfig {
        RateLimiterConfig::default()
    }

    fn node(name: &str, state: NodeState) -> NodeProbe {
        NodeProbe {
            advertised: None,
            name: name.into(),
            address: format!("127.0.0.1:{}", 9000 + name.len()),
            state,
            detail: None,
            redis_unreachable: false,
            probe_ms: Some(1.0),
            latency: Some(LatencyStat {
                p99_ms: 2.0,
                samples: 100,
            }),
            counters: Some(vec![]),
            counters_truncated: false,
        }
    }

    fn redis(nodes: &[NodeProbe]) -> RedisProbe {
        RedisProbe {
            name: "redis".into(),
            address: "127.0.0.1:6379".into(),
            state: NodeState::Up,
            detail: None,
            probe_ms: Some(0.5),
            used_memory: Some(1000),
            maxmemory: None,
            persistence_errors: vec![],
            disk: Some(crate::runtime::DiskUsage {
                size_bytes: 64 << 20,
                used_bytes: 1 << 20,
            }),
            disk_error: None,
            registry: Some(
                nodes
                    .iter()
                    .map(|n| RegistryEntry {
                        id: n.name.clone(),
                        address: n.address.clone(),
                        registered_at: String::new(),
                        last_heartbeat_ms: Some(1_000_000),
                        ttl_ms: Some(30_000),
                    })
                    .collect(),
            ),
            counters: Some(CounterScan {
                counters: vec![],
                truncated: false,
                now_ms: 1_001_000,
            }),
        }
    }

    fn healthy() -> RlObservation {
        let nodes = vec![
            node("ratelimiter-1", NodeState::Up),
            node("ratelimiter-2", NodeState::Up),
        ];
        RlObservation {
            error: None,
            redis: Some(redis(&nodes)),
            nodes,
        }
    }

    fn run(obs: &RlObservation) -> Assessment {
        let c = cfg();
        assess(obs, &c, &catalogue(&c))
    }

    fn fired(a: &Assessment) -> Vec<(String, String)> {
        a.violations
            .iter()
            .map(|v| (v.invariant.clone(), v.entity.clone()))
            .collect()
    }

    fn key(k: &str, count: u64, limit: u64) -> Counter {
        Counter {
            key: k.into(),
            count,
            limit,
            window_ms: 60_000,
            remaining: limit.saturating_sub(count),
        }
    }

    #[test]
    fn a_healthy_cluster_violates_nothing_and_knows_everything() {
        let a = run(&healthy());
        assert!(a.violations.is_empty(), "{:?}", a.violations);
        assert!(a.unknown.is_empty(), "{:?}", a.unknown);
    }

    #[test]
    fn a_dead_node_is_down_and_its_other_checks_unknown() {
        let mut o = healthy();
        o.nodes[1].state = NodeState::Down;
        o.nodes[1].latency = None;
        o.nodes[1].counters = None;
        let a = run(&o);
        assert_eq!(
            fired(&a),
            vec![("node_down".into(), "ratelimiter-2".into())]
        );
        assert!(a.is_unknown(NODE_DEGRADED, "ratelimiter-2"));
        assert!(a.is_unknown(COUNTER_DRIFT, "ratelimiter-2"));
        assert!(!a.is_unknown(NODE_DOWN, "ratelimiter-2"));
    }

    #[test]
    fn redis_down_is_one_violation_not_a_storm() {
        let mut o = healthy();
        let r = o.redis.as_mut().unwrap();
        r.state = NodeState::Down;
        r.registry = None;
        r.counters = None;
        for n in &mut o.nodes {
            n.state = NodeState::Degraded;
            n.redis_unreachable = true;
            n.counters = None;
        }
        let a = run(&o);
        assert_eq!(fired(&a), vec![("redis_down".into(), "redis".into())]);
        for inv in [OVER_LIMIT, COUNTER_DRIFT, REGISTRY_MISMATCH] {
            assert!(a.is_unknown(inv, "anything"), "{inv}");
        }
        assert!(a.is_unknown(NODE_DEGRADED, "ratelimiter-1"));
    }

    #[test]
    fn nothing_answering_is_subject_unreachable_only() {
        let mut o = healthy();
        o.redis.as_mut().unwrap().state = NodeState::Down;
        for n in &mut o.nodes {
            n.state = NodeState::Down;
        }
        let a = run(&o);
        assert_eq!(
            fired(&a),
            vec![("subject_unreachable".into(), "cluster".into())]
        );
        assert!(a.is_unknown(NODE_DOWN, "ratelimiter-1"));
        let o = RlObservation {
            error: Some("not up".into()),
            redis: None,
            nodes: vec![],
        };
        assert_eq!(
            fired(&run(&o)),
            vec![("subject_unreachable".into(), "cluster".into())]
        );
    }

    #[test]
    fn over_limit_fires_per_key() {
        let mut o = healthy();
        o.redis
            .as_mut()
            .unwrap()
            .counters
            .as_mut()
            .unwrap()
            .counters = vec![key("a", 100, 100), key("b", 101, 100)];
        for n in &mut o.nodes {
            n.counters = Some(vec![key("a", 100, 100), key("b", 101, 100)]);
        }
        assert_eq!(fired(&run(&o)), vec![("over_limit".into(), "b".into())]);
    }

    #[test]
    fn drift_beyond_tolerance_fires_for_the_node_both_ways() {
        let mut o = healthy();
        o.redis
            .as_mut()
            .unwrap()
            .counters
            .as_mut()
            .unwrap()
            .counters = vec![key("a", 50, 100)];
        o.nodes[0].counters = Some(vec![key("a", 47, 100)]); // within tolerance
        o.nodes[1].counters = Some(vec![key("x", 20, 100)]); // another Redis: sees x, not a
        let a = run(&o);
        assert_eq!(
            fired(&a),
            vec![("counter_drift".into(), "ratelimiter-2".into())]
        );
        assert_eq!(a.violations[0].detail["drifted"], 2);
    }

    #[test]
    fn high_latency_needs_enough_samples() {
        let mut o = healthy();
        o.nodes[0].latency = Some(LatencyStat {
            p99_ms: 900.0,
            samples: 500,
        });
        o.nodes[1].latency = Some(LatencyStat {
            p99_ms: 900.0,
            samples: 3,
        });
        assert_eq!(
            fired(&run(&o)),
            vec![("high_latency".into(), "ratelimiter-1".into())]
        );
    }

    #[test]
    fn registry_mismatches_each_way() {
        let mut o = healthy();
        let r = o.redis.as_mut().unwrap();
        let reg = r.registry.as_mut().unwrap();
        reg.remove(0); // ratelimiter-1 alive but unregistered
        reg.push(RegistryEntry {
            id: "ratelimiter-9".into(),
            address: "127.0.0.1:1".into(),
            registered_at: String::new(),
            last_heartbeat_ms: Some(0),
            ttl_ms: None,
        });
        assert_eq!(
            fired(&run(&o)),
            vec![
                ("registry_mismatch".into(), "ratelimiter-1".into()),
                ("registry_mismatch".into(), "ratelimiter-9".into())
            ]
        );
        // Dead, and silent for longer than the TTL, yet still registered.
        let mut o = healthy();
        o.nodes[1].state = NodeState::Down;
        o.redis.as_mut().unwrap().counters.as_mut().unwrap().now_ms = 1_000_000 + 31_000;
        let f = fired(&run(&o));
        assert!(
            f.contains(&("registry_mismatch".into(), "ratelimiter-2".into())),
            "{f:?}"
        );
        // Dead for less than the TTL: the entry will expire by itself.
        o.redis.as_mut().unwrap().counters.as_mut().unwrap().now_ms = 1_000_000 + 29_000;
        let f = fired(&run(&o));
        assert!(
            !f.contains(&("registry_mismatch".into(), "ratelimiter-2".into())),
            "{f:?}"
        );
    }

    #[test]
    fn redis_memory_and_persistence_degrade_it() {
        let mut o = healthy();
        let r = o.redis.as_mut().unwrap();
        r.used_memory = Some(95);
        r.maxmemory = Some(100);
        r.persistence_errors = vec!["rdb_last_bgsave_status:err".into()];
        let a = run(&o);
        assert_eq!(fired(&a), vec![("node_degraded".into(), "redis".into())]);
        assert!(a.violations[0].summary.contains("95%"));
        assert!(a.violations[0].summary.contains("persistence"));
    }

    #[test]
    fn a_full_volume_is_low_disk_space_and_an_unmeasured_one_unknown() {
        use crate::runtime::DiskUsage;
        let mut o = healthy();
        let r = o.redis.as_mut().unwrap();
        r.disk = Some(DiskUsage {
            size_bytes: 1000,
            used_bytes: 800,
        });
        assert!(run(&o).violations.is_empty(), "80% is not over 80%");
        o.redis.as_mut().unwrap().disk = Some(DiskUsage {
            size_bytes: 1000,
            used_bytes: 901,
        });
        let a = run(&o);
        assert_eq!(fired(&a), vec![("low_disk_space".into(), "redis".into())]);
        assert!(
            a.violations[0].summary.contains("90% full"),
            "{}",
            a.violations[0].summary
        );
        let r = o.redis.as_mut().unwrap();
        r.disk = None;
        r.disk_error = Some("redis is not running".into());
        let a = run(&o);
        assert!(a.violations.is_empty());
        assert!(a.is_unknown("low_disk_space", "redis"), "{:?}", a.unknown);
        // A runtime that bounds no volume (local processes) cannot say either.
        o.redis.as_mut().unwrap().disk_error = None;
        assert!(run(&o).is_unknown("low_disk_space", "redis"));
    }

    #[test]
    fn disabled_invariants_neither_fire_nor_resolve() {
        let mut c = cfg();
        c.invariants.node_down.enabled = Some(false);
        let mut o = healthy();
        o.nodes[0].state = NodeState::Down;
        let a = assess(&o, &c, &catalogue(&c));
        assert!(fired(&a).is_empty());
        assert!(a.is_unknown(NODE_DOWN, "ratelimiter-1"));
    }

    #[test]
    fn config_overrides_severity_and_grace() {
        let mut c = cfg();
        c.invariants.high_latency.severity = Some(Severity::Critical);
        c.invariants.high_latency.grace = Some(Duration::from_secs(7));
        let cat = catalogue(&c);
        let hl = cat.iter().find(|i| i.name == HIGH_LATENCY).unwrap();
        assert_eq!(
            (hl.severity, hl.grace),
            (Severity::Critical, Duration::from_secs(7))
        );
        let rm = cat.iter().find(|i| i.name == REGISTRY_MISMATCH).unwrap();
        assert_eq!(rm.grace, Duration::from_secs(15));
    }
}
