//! One look at a rate-limiter cluster: every expected node probed directly (a dead node is
//! `down`, it does not vanish), Redis probed on its own, counters read from both.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::debug;

use super::latency::{self, LatencyStat, LatencyWindow};
use super::redis_link::RedisLink;
use super::redis_state::{self, Counter, CounterScan, Defaults, RegistryEntry};
use super::topology::{ROLE_LIMITER, ROLE_REDIS};
use crate::config::RateLimiterConfig;
use crate::runtime::health::error_chain;
use crate::runtime::{DiskUsage, Topology, TopologyNode};
use crate::subjects::NodeState;

/// A limiter node as probed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeProbe {
    pub name: String,
    pub address: String,
    /// The address it should announce in the registry, when not `address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised: Option<String>,
    pub state: NodeState,
    pub detail: Option<String>,
    /// The node blames Redis for being unhealthy.
    pub redis_unreachable: bool,
    pub probe_ms: Option<f64>,
    pub latency: Option<LatencyStat>,
    /// What the node reports for the counters (None if it could not say).
    pub counters: Option<Vec<Counter>>,
    pub counters_truncated: bool,
}

/// Redis as probed by the monitor itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedisProbe {
    pub name: String,
    pub address: String,
    pub state: NodeState,
    pub detail: Option<String>,
    pub probe_ms: Option<f64>,
    pub used_memory: Option<u64>,
    pub maxmemory: Option<u64>,
    /// Failed background saves or AOF writes, as INFO reports them.
    pub persistence_errors: Vec<String>,
    pub registry: Option<Vec<RegistryEntry>>,
    pub counters: Option<CounterScan>,
    /// How full its data volume is, where the runtime bounds one (Docker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUsage>,
    /// Why the volume could not be measured, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_error: Option<String>,
}

impl RedisProbe {
    pub fn reachable(&self) -> bool {
        !self.state.is_out()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RlObservation {
    /// Set when the subject could not be observed at all.
    pub error: Option<String>,
    pub redis: Option<RedisProbe>,
    pub nodes: Vec<NodeProbe>,
}

/// Probes a cluster, remembering what it needs between looks (histogram scrapes).
pub struct Observer {
    cfg: RateLimiterConfig,
    http: reqwest::Client,
    redis: Option<(String, RedisLink)>,
    latency: HashMap<String, LatencyWindow>,
}

impl Observer {
    pub fn new(cfg: RateLimiterConfig) -> Self {
        Self {
            http: crate::runtime::health::http_client(),
            cfg,
            redis: None,
            latency: HashMap::new(),
        }
    }

    pub async fn observe(&mut self, topology: &Topology) -> RlObservation {
        let Some(redis_node) = topology.nodes.iter().find(|n| n.role == ROLE_REDIS) else {
            return RlObservation {
                error: Some("the recorded topology has no redis node".into()),
                redis: None,
                nodes: Vec::new(),
            };
        };
        if self
            .redis
            .as_ref()
            .is_none_or(|(a, _)| *a != redis_node.address)
        {
            let url = format!("redis://{}", redis_node.address);
            match RedisLink::new(&url, self.cfg.probe_timeout) {
                Ok(link) => self.redis = Some((redis_node.address.clone(), link)),
                Err(e) => {
                    return RlObservation {
                        error: Some(format!("bad redis address {}: {e}", redis_node.address)),
                        redis: None,
                        nodes: Vec::new(),
                    };
                }
            }
        }
        let limiters: Vec<_> = topology
            .nodes
            .iter()
            .filter(|n| n.role == ROLE_LIMITER)
            .collect();
        let timeout = self.cfg.probe_timeout;
        let max_keys = self.cfg.max_keys;
        let http = &self.http;
        let node_probes = futures::future::join_all(
            limiters
                .iter()
                .map(|n| probe_node(http, n, timeout, max_keys)),
        );
        let Some((_, link)) = &self.redis else {
            return RlObservation {
                error: Some("no redis connection".into()),
                redis: None,
                nodes: Vec::new(),
            };
        };
        let redis_probe = probe_redis(link, &redis_node.name, &redis_node.address, &self.cfg);
        let (mut nodes, redis) = tokio::join!(node_probes, redis_probe);
        let now = Instant::now();
        for (probe, histogram) in &mut nodes {
            let window = self.latency.entry(probe.name.clone()).or_default();
            match histogram.take() {
                Some(b) => {
                    probe.latency = window.update(now, b, self.cfg.thresholds.latency_window)
                }
                None => window.reset(),
            }
        }
        RlObservation {
            error: None,
            redis: Some(redis),
            nodes: nodes.into_iter().map(|(p, _)| p).collect(),
        }
    }
}

/// Classifies a failed request: refused means nothing listens; a timeout means something
/// listens but does not answer (hung, paused); anything else is an answer we cannot read.
fn failed_request(e: &reqwest::Error, timeout: Duration) -> (NodeState, String) {
    if e.is_timeout() {
        (
            NodeState::Unresponsive,
            format!("no answer within {}ms", timeout.as_millis()),
        )
    } else if e.is_connect() {
        (
            NodeState::Down,
            format!("not reachable: {}", short_cause(e)),
        )
    } else {
        (
            NodeState::Degraded,
            format!("unreadable answer: {}", error_chain(e)),
        )
    }
}

fn short_cause(e: &reqwest::Error) -> String {
    let chain = error_chain(e);
    if chain.contains("Connection refused") || chain.contains("connection refused") {
        "connection refused".into()
    } else {
        chain
    }
}

type Probed = (NodeProbe, Option<latency::Buckets>);

#[tracing::instrument(level = "debug", skip(http, timeout, max_keys))]
async fn probe_node(
    http: &reqwest::Client,
    node: &TopologyNode,
    timeout: Duration,
    max_keys: usize,
) -> Probed {
    let base = format!("http://{}", node.address);
    let start = Instant::now();
    let mut probe = NodeProbe {
        name: node.name.clone(),
        address: node.address.clone(),
        advertised: node.advertised.clone(),
        state: NodeState::Down,
        detail: None,
        redis_unreachable: false,
        probe_ms: None,
        latency: None,
        counters: None,
        counters_truncated: false,
    };
    // One request: health, counters and the latency histogram (see the node's `/api/state`).
    let answer = http
        .get(format!("{base}/api/state?max={max_keys}"))
        .timeout(timeout)
        .send()
        .await;
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            let (state, detail) = failed_request(&e, timeout);
            probe.state = state;
            probe.detail = Some(detail);
            return (probe, None);
        }
    };
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    probe.probe_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
    let v = match serde_json::from_str::<Value>(&body) {
        Ok(v) if status.is_success() && v["health"].is_object() => v,
        _ => {
            probe.state = NodeState::Degraded;
            let snippet: String = body.chars().take(80).collect();
            probe.detail = Some(format!(
                "/api/state answered {status} with something that is not its state: {snippet:?}"
            ));
            return (probe, None);
        }
    };
    let health = &v["health"];
    if v["healthy"] == true && health["status"] == "ok" {
        probe.state = NodeState::Up;
    } else {
        probe.state = NodeState::Degraded;
        probe.redis_unreachable = health["redis"] == "unreachable";
        let reason = health["reason"].as_str().unwrap_or("no reason given");
        probe.detail = Some(format!("unhealthy: {reason}"));
    }
    if let Ok(list) = serde_json::from_value::<Vec<Counter>>(v["counters"].clone()) {
        probe.counters = Some(list);
        probe.counters_truncated = v["truncated"].as_bool().unwrap_or(false);
    }
    let histogram = histogram_of(&v["check_histogram"]);
    debug!(state = probe.state.as_str(), "probed");
    (probe, histogram)
}

/// The `/check` histogram as `/api/state` gives it: `le` bounds, then counts with `+Inf`.
fn histogram_of(v: &Value) -> Option<latency::Buckets> {
    let le: Vec<f64> = serde_json::from_value(v["le"].clone()).ok()?;
    let counts: Vec<f64> = serde_json::from_value(v["counts"].clone()).ok()?;
    if counts.len() != le.len() + 1 {
        return None;
    }
    Some(
        le.into_iter()
            .chain(std::iter::once(f64::INFINITY))
            .zip(counts)
            .collect(),
    )
}

#[tracing::instrument(level = "debug", skip(link, cfg))]
async fn probe_redis(
    link: &RedisLink,
    name: &str,
    address: &str,
    cfg: &RateLimiterConfig,
) -> RedisProbe {
    let mut probe = RedisProbe {
        name: name.into(),
        address: address.into(),
        state: NodeState::Up,
        detail: None,
        probe_ms: None,
        used_memory: None,
        maxmemory: None,
        persistence_errors: Vec::new(),
        registry: None,
        counters: None,
        disk: None,
        disk_error: None,
    };
    let start = Instant::now();
    // One round trip: PING, and only the INFO sections read here (Redis 7 takes several).
    let info = link
        .run(|mut c| async move {
            let sections: redis::RedisResult<(String, String)> = redis::pipe()
                .cmd("PING")
                .cmd("INFO")
                .arg("memory")
                .arg("persistence")
                .query_async(&mut c)
                .await;
            match sections {
                Ok((_, info)) => Ok(info),
                // An older Redis: everything, one section at a time being unknown to it.
                Err(e) if matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                    redis::cmd("INFO").query_async::<String>(&mut c).await
                }
                Err(e) => Err(e),
            }
        })
        .await;
    let info = match info {
        Ok(i) => i,
        Err(e) => {
            probe.state = match e {
                super::redis_link::LinkError::Timeout(_) => NodeState::Unresponsive,
                super::redis_link::LinkError::Command(_) => NodeState::Degraded,
                super::redis_link::LinkError::Unreachable(_) => NodeState::Down,
            };
            probe.detail = Some(e.to_string());
            return probe;
        }
    };
    probe.probe_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
    let fields: HashMap<&str, &str> = info
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .collect();
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
    probe.used_memory = num("used_memory");
    probe.maxmemory = num("maxmemory").filter(|m| *m > 0);
    for (k, bad) in [
        ("rdb_last_bgsave_status", "err"),
        ("aof_last_bgrewrite_status", "err"),
        ("aof_last_write_status", "err"),
    ] {
        if fields.get(k) == Some(&bad) {
            probe.persistence_errors.push(format!("{k}:{bad}"));
        }
    }
    if fields.get("loading") == Some(&"1") {
        probe.state = NodeState::Degraded;
        probe.detail = Some("loading its dataset".into());
    }
    let defaults = Defaults {
        limit: cfg.default_limit,
        window_ms: cfg.default_window_ms,
    };
    let max = cfg.max_keys;
    // Scanning many keys takes several round trips: allow a few timeouts' worth.
    let budget = cfg.probe_timeout * 4;
    // Both at once: the multiplexed connection sends their commands together.
    let state = link
        .run_within(budget, |c| async move {
            let (mut a, mut b) = (c.clone(), c);
            tokio::try_join!(
                redis_state::registry(&mut a, 1000),
                redis_state::counters(&mut b, defaults, max)
            )
        })
        .await;
    match state {
        Ok((registry, counters)) => {
            probe.registry = Some(registry);
            probe.counters = Some(counters);
        }
        Err(e) => {
            probe
                .detail
                .get_or_insert_with(|| format!("reading state: {e}"));
        }
    }
    probe
}
