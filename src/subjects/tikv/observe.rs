//! One look at a TiKV cluster. Each store's status port is probed directly, so a dead store
//! shows at the next look, not after PD's 20 s without a heartbeat. Each PD member is asked
//! for its own health (answered locally, leader or not); the leader, then, for what only it
//! knows: the stores as PD sees them, the region checks and the schedulers. Nothing here
//! needs a leader: a lost one is seen, not waited on.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::client::{Client, ProbeError};
use super::config::TikvConfig;
use super::pd::{
    self, ClusterStatus, EvictLeaderConfig, Health, Member, RegionList, RegionStats, Replication,
    Stores,
};
use super::topology::{ROLE_PD, ROLE_STORE};
use crate::runtime::{Topology, TopologyNode};
use crate::subjects::NodeState;
use crate::subjects::exposition::{label, sample, samples};
use crate::subjects::histogram::{self, LatencyStat, LatencyWindow};

/// The histogram of every gRPC request a store serves, by request type.
pub const GRPC_HISTOGRAM: &str = "tikv_grpc_msg_duration_seconds";
/// PD's name of the scheduler that moves a store's leaders away.
pub const EVICT_LEADER: &str = "evict-leader-scheduler";

/// One PD member as probed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PdProbe {
    pub name: String,
    pub address: String,
    pub state: NodeState,
    pub detail: Option<String>,
    /// Whether its own health said it is healthy.
    pub healthy: bool,
}

/// A store as PD reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PdStore {
    pub id: u64,
    pub state_name: String,
    pub leader_count: u64,
    pub region_count: u64,
    pub capacity: Option<u64>,
    pub available: Option<u64>,
}

/// One store as probed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreProbe {
    pub name: String,
    /// Its status address, as the monitor reaches it.
    pub address: String,
    pub state: NodeState,
    pub detail: Option<String>,
    pub probe_ms: Option<f64>,
    /// From its own metrics: capacity, available and used bytes (exact).
    pub capacity: Option<u64>,
    pub available: Option<u64>,
    pub used: Option<u64>,
    pub grpc: Option<LatencyStat>,
    /// From its own metrics (`tikv_raftstore_region_count`): the region peers it holds and
    /// how many of them lead, as of now (PD's counts are as of the last heartbeat).
    pub regions: Option<u64>,
    pub leaders: Option<u64>,
    /// From PD, when the leader answered and knows the store by its status address.
    pub pd: Option<PdStore>,
}

impl StoreProbe {
    pub fn answered(&self) -> bool {
        self.state == NodeState::Up
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TikvObservation {
    /// Set when the cluster could not be observed at all.
    pub error: Option<String>,
    pub pd: Vec<PdProbe>,
    pub stores: Vec<StoreProbe>,
    /// The PD leader's name; else why none is known.
    pub leader: Option<String>,
    pub leader_error: Option<String>,
    /// Set when PD said no TiKV has joined yet.
    pub not_bootstrapped: bool,
    /// Why the leader's views (stores, regions, schedulers) are missing, when they are.
    pub views_error: Option<String>,
    /// Regions per check (`miss-peer`, `down-peer`, …) with their ids, from the leader.
    pub regions: BTreeMap<String, Vec<u64>>,
    /// The schedulers PD runs, and the stores an evict-leader scheduler empties.
    pub schedulers: Option<Vec<String>>,
    pub evicting: Vec<u64>,
    /// What PD's leader says of the cluster as a whole, where it answered.
    pub cluster: ClusterView,
}

/// The PD leader's word on the cluster as a whole: its settings and its own statistics.
/// Each part is missing where that route did not answer; none decides alone whether the
/// leader's views were read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ClusterView {
    /// From `cluster/status`: whether a TiKV has bootstrapped the cluster.
    pub bootstrapped: Option<bool>,
    /// From `config/replicate`: the replicas each region should have.
    pub max_replicas: Option<u64>,
    /// From `stats/region`: the regions PD knows, and the empty ones among them.
    pub region_count: Option<u64>,
    pub empty_regions: Option<u64>,
    /// From PD's `/metrics`: its own counts of regions by check (`pd_regions_status`, as
    /// `miss-peer`, `down-peer`, …) and of stores by state (`pd_cluster_status`, as
    /// `store_up`, `store_disconnected`, `store_low_space`, …, summed over stores).
    pub region_health: BTreeMap<String, u64>,
    pub store_states: BTreeMap<String, u64>,
    /// From PD's `/metrics` (`pd_scheduler_store_status`): each store's leader score, by id,
    /// which balance-leader evens out.
    pub leader_scores: BTreeMap<u64, f64>,
}

impl ClusterView {
    /// Reads PD's statistics out of its leader's `/metrics` page.
    pub fn read_metrics(&mut self, text: &str) {
        for (labels, v) in samples(text, "pd_regions_status") {
            if let Some(kind) = label(labels, "type").and_then(|t| t.strip_suffix("-region-count"))
            {
                self.region_health.insert(kind.to_string(), v as u64);
            }
        }
        for (labels, v) in samples(text, "pd_cluster_status") {
            let Some(kind) = label(labels, "type").and_then(|t| t.strip_suffix("_count")) else {
                continue;
            };
            if kind.starts_with("store_") {
                *self.store_states.entry(kind.to_string()).or_default() += v as u64;
            }
        }
        for (labels, v) in samples(text, "pd_scheduler_store_status") {
            if label(labels, "type") != Some("leader_score") {
                continue;
            }
            if let Some(id) = label(labels, "store").and_then(|s| s.parse().ok()) {
                self.leader_scores.insert(id, v);
            }
        }
    }
}

impl TikvObservation {
    pub fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }

    /// The majority of PD's members.
    pub fn majority(&self) -> usize {
        self.pd.len() / 2 + 1
    }

    /// Whether the leader's views were read.
    pub fn has_views(&self) -> bool {
        self.views_error.is_none() && self.leader.is_some()
    }
}

/// Looks at one cluster, keeping each store's latency window between looks.
pub struct Observer {
    cfg: TikvConfig,
    client: Client,
    windows: HashMap<String, LatencyWindow>,
}

impl Observer {
    pub fn new(cfg: TikvConfig) -> Self {
        Self {
            client: Client::new(cfg.probe_timeout),
            cfg,
            windows: HashMap::new(),
        }
    }

    pub async fn observe(&mut self, topology: &Topology) -> TikvObservation {
        let of = |role: &str| -> Vec<&TopologyNode> {
            topology.nodes.iter().filter(|n| n.role == role).collect()
        };
        let (members, stores) = (of(ROLE_PD), of(ROLE_STORE));
        if members.is_empty() || stores.is_empty() {
            return TikvObservation::failed(
                "the recorded topology has no PD member or no TiKV store".into(),
            );
        }
        let client = &self.client;
        let (pd, probed) = tokio::join!(
            futures::future::join_all(members.iter().map(|n| probe_pd(client, n))),
            futures::future::join_all(stores.iter().map(|n| probe_store(client, n))),
        );
        let now = Instant::now();
        let t = &self.cfg.thresholds;
        let mut store_probes = Vec::with_capacity(probed.len());
        for (mut probe, metrics) in probed {
            let w = self.windows.entry(probe.name.clone()).or_default();
            match metrics.as_deref() {
                Some(text) => {
                    let size = |kind: &str| {
                        sample(text, "tikv_store_size_bytes", Some(("type", kind)))
                            .map(|v| v as u64)
                    };
                    probe.capacity = size("capacity");
                    probe.available = size("available");
                    probe.used = size("used");
                    let count = |kind: &str| {
                        sample(text, "tikv_raftstore_region_count", Some(("type", kind)))
                            .map(|v| v as u64)
                    };
                    probe.regions = count("region");
                    probe.leaders = count("leader");
                    match histogram::read(text, GRPC_HISTOGRAM, None) {
                        Some(b) => probe.grpc = w.update(now, b, t.latency_window),
                        None => w.reset(),
                    }
                }
                None => w.reset(),
            }
            store_probes.push(probe);
        }
        let mut obs = TikvObservation {
            stores: store_probes,
            pd,
            ..TikvObservation::default()
        };
        self.leader_views(&mut obs).await;
        obs
    }

    /// The leader, from a member that answered; then the leader's views.
    async fn leader_views(&self, obs: &mut TikvObservation) {
        let Some(asked) = obs.pd.iter().find(|m| m.state == NodeState::Up) else {
            obs.leader_error = Some("no PD member answered".into());
            obs.views_error = obs.leader_error.clone();
            return;
        };
        let leader: Result<Member, ProbeError> =
            self.client.json(&asked.address, "/pd/api/v1/leader").await;
        let leader = match leader {
            Ok(m) => m,
            Err(e) => {
                obs.leader_error = Some(format!("{} knows no leader: {e}", asked.name));
                obs.views_error = obs.leader_error.clone();
                return;
            }
        };
        // The leader is reached directly, by its name in the topology.
        let Some(at) = obs.pd.iter().find(|m| m.name == leader.name) else {
            obs.leader_error = Some(format!(
                "PD's leader `{}` is not a member of this cluster",
                leader.name
            ));
            obs.views_error = obs.leader_error.clone();
            return;
        };
        obs.leader = Some(leader.name.clone());
        let at = at.address.clone();
        let at = at.as_str();
        let c = &self.client;
        let (stores, schedulers, checks, (status, replication, stats, metrics)) = tokio::join!(
            c.json::<Stores>(at, "/pd/api/v1/stores"),
            c.json::<Vec<String>>(at, "/pd/api/v1/schedulers"),
            futures::future::join_all(pd::REGION_CHECKS.iter().map(|kind| async move {
                let list: Result<RegionList, _> = c
                    .json(at, &format!("/pd/api/v1/regions/check/{kind}"))
                    .await;
                (*kind, list)
            })),
            async {
                tokio::join!(
                    c.json::<ClusterStatus>(at, "/pd/api/v1/cluster/status"),
                    c.json::<Replication>(at, "/pd/api/v1/config/replicate"),
                    c.json::<RegionStats>(at, "/pd/api/v1/stats/region"),
                    c.text(at, "/metrics"),
                )
            },
        );
        let view = &mut obs.cluster;
        view.bootstrapped = status.ok().map(|s| s.bootstrapped());
        view.max_replicas = replication.ok().map(|r| r.max_replicas);
        if let Ok(stats) = stats {
            view.region_count = Some(stats.count);
            view.empty_regions = Some(stats.empty_count);
        }
        if let Ok(text) = metrics {
            view.read_metrics(&text);
        }
        let stores = match stores {
            Ok(s) => s,
            Err(e) => {
                // PD answers its cluster's status before any store joined; an older PD, only
                // an error that says so.
                obs.not_bootstrapped = obs.cluster.bootstrapped == Some(false)
                    || matches!(&e, ProbeError::Answered { text, .. } if pd::says_not_bootstrapped(text));
                obs.views_error = Some(format!("PD's stores: {e}"));
                return;
            }
        };
        for entry in stores.stores {
            let status = &entry.store.status_address;
            let Some(probe) = obs
                .stores
                .iter_mut()
                .find(|p| same_address(status, &p.name, &p.address))
            else {
                continue;
            };
            probe.pd = Some(PdStore {
                id: entry.store.id,
                state_name: entry.store.state_name.clone(),
                leader_count: entry.status.leader_count,
                region_count: entry.status.region_count,
                capacity: entry.status.capacity.as_deref().and_then(pd::parse_size),
                available: entry.status.available.as_deref().and_then(pd::parse_size),
            });
        }
        for (kind, list) in checks {
            match list {
                Ok(l) => {
                    obs.regions
                        .insert(kind.into(), l.regions.iter().map(|r| r.id).collect());
                }
                Err(e) => {
                    obs.views_error = Some(format!("PD's {kind} regions: {e}"));
                    return;
                }
            }
        }
        match schedulers {
            Ok(list) => {
                if list.iter().any(|s| s == EVICT_LEADER) {
                    let cfg: Result<EvictLeaderConfig, _> = c
                        .json(
                            at,
                            "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
                        )
                        .await;
                    match cfg {
                        Ok(cfg) => obs.evicting = cfg.store_ids(),
                        Err(e) => obs.views_error = Some(format!("PD's evict-leader stores: {e}")),
                    }
                }
                obs.schedulers = Some(list);
            }
            Err(e) => obs.views_error = Some(format!("PD's schedulers: {e}")),
        }
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(member = %node.name))]
async fn probe_pd(client: &Client, node: &TopologyNode) -> PdProbe {
    let health: Result<Vec<Health>, _> = client.json(&node.address, "/pd/api/v1/health").await;
    match health {
        Ok(list) => {
            let own = list.iter().find(|h| h.name == node.name);
            PdProbe {
                name: node.name.clone(),
                address: node.address.clone(),
                state: NodeState::Up,
                detail: own
                    .is_none()
                    .then(|| "its health does not list it".to_string()),
                healthy: own.is_some_and(|h| h.health),
            }
        }
        Err(e) => PdProbe {
            name: node.name.clone(),
            address: node.address.clone(),
            state: e.node_state(),
            detail: Some(e.to_string()),
            healthy: false,
        },
    }
}

#[tracing::instrument(level = "debug", skip_all, fields(store = %node.name))]
async fn probe_store(client: &Client, node: &TopologyNode) -> (StoreProbe, Option<String>) {
    let start = Instant::now();
    let (status, metrics) = tokio::join!(
        client.text(&node.address, "/status"),
        client.text(&node.address, "/metrics"),
    );
    let (state, detail) = match &status {
        Ok(_) => (NodeState::Up, None),
        Err(e) => (e.node_state(), Some(e.to_string())),
    };
    let probe = StoreProbe {
        name: node.name.clone(),
        address: node.address.clone(),
        state,
        detail,
        probe_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
        capacity: None,
        available: None,
        used: None,
        grpc: None,
        regions: None,
        leaders: None,
        pd: None,
    };
    (probe, metrics.ok())
}

/// Whether the status address PD records for a store is the store `node`: the address the
/// monitor reaches it by (locally), or its name in the instance's network (on Docker, where
/// the monitor reaches it through a published port).
pub fn same_store(recorded: &str, node: &TopologyNode) -> bool {
    same_address(recorded, &node.name, &node.address)
}

fn same_address(recorded: &str, name: &str, address: &str) -> bool {
    recorded == address
        || recorded
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .is_some_and(|port| port == super::topology::DOCKER_STATUS_PORT.to_string())
}
