//! One look at a rate-limiter cluster: every expected node probed directly (a dead node is
//! `down`, it does not vanish), Redis probed on its own, counters read from both.

use std::collections::HashMap;
use std::time::Instant;

use hyper::Uri;
use serde::{Deserialize, Serialize};

use super::config::RateLimiterConfig;
use super::latency::{LatencyStat, LatencyWindow};
use super::node_probe::{StateClient, probe_node, state_uri};
use super::redis_link::RedisLink;
use super::redis_state::{self, Counter, CounterScan, Defaults, RegistryEntry};
use super::topology::{ROLE_LIMITER, ROLE_REDIS};
use crate::runtime::{DiskUsage, Topology};
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
    http: StateClient,
    redis: Option<(String, RedisLink)>,
    latency: HashMap<String, LatencyWindow>,
    /// Each node's `/api/state` URL by its address, parsed once rather than every look.
    state_uris: HashMap<String, Result<Uri, String>>,
}

impl Observer {
    pub fn new(cfg: RateLimiterConfig) -> Self {
        Self {
            http: StateClient::default(),
            cfg,
            redis: None,
            latency: HashMap::new(),
            state_uris: HashMap::new(),
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
        let uris: Vec<Result<Uri, String>> = limiters
            .iter()
            .map(|n| {
                self.state_uris
                    .entry(n.address.clone())
                    .or_insert_with(|| state_uri(&n.address, max_keys))
                    .clone()
            })
            .collect();
        let http = &self.http;
        let node_probes = futures::future::join_all(
            limiters
                .iter()
                .zip(&uris)
                .map(|(n, uri)| probe_node(http, n, uri.as_ref(), timeout)),
        );
        let Some((_, link)) = &self.redis else {
            return RlObservation {
                error: Some("no redis connection".into()),
                redis: None,
                nodes: Vec::new(),
            };
        };
        let redis_probe = Box::pin(probe_redis(
            link,
            &redis_node.name,
            &redis_node.address,
            &self.cfg,
        ));
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
    let defaults = Defaults {
        limit: cfg.default_limit,
        window_ms: cfg.default_window_ms,
    };
    let max = cfg.max_keys;
    // PING and only the INFO sections read here (Redis 7 takes several)...
    let info = link.run(|mut c| async move {
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
    });
    // ...and the registry and the counters, sent with them (the multiplexed connection
    // writes them together). Scanning many keys takes several round trips: a few timeouts'
    // worth is allowed.
    let state = link.run_within(cfg.probe_timeout * 4, |c| async move {
        let (mut a, mut b) = (c.clone(), c);
        tokio::try_join!(
            redis_state::registry(&mut a, 1000),
            redis_state::counters(&mut b, defaults, max)
        )
    });
    // A Redis that does not answer PING is not waited on for its state as well.
    let pinged = async { info.await.map(|i| (i, start.elapsed())) };
    let both = tokio::try_join!(pinged, async { Ok(state.await) });
    let ((info, took), state) = match both {
        Ok(b) => b,
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
    probe.probe_ms = Some(took.as_secs_f64() * 1000.0);
    // One pass over INFO's lines for the few fields read here.
    for (k, v) in info.lines().filter_map(|l| l.trim().split_once(':')) {
        match (k, v) {
            ("used_memory", v) => probe.used_memory = v.parse().ok(),
            ("maxmemory", v) => probe.maxmemory = v.parse().ok().filter(|m| *m > 0),
            (
                "rdb_last_bgsave_status" | "aof_last_bgrewrite_status" | "aof_last_write_status",
                "err",
            ) => probe.persistence_errors.push(format!("{k}:{v}")),
            ("loading", "1") => {
                probe.state = NodeState::Degraded;
                probe.detail = Some("loading its dataset".into());
            }
            _ => {}
        }
    }
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
