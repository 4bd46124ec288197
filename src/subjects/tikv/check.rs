//! TiKV's invariants, as a pure function of one observation.
//!
//! A store is judged by its own status port first (down at the next look), then by PD's
//! word (Disconnected, Down). What only PD's leader knows (regions, leaders, schedulers) is
//! unknown while there is no leader, never healthy.

use std::time::Duration;

use serde_json::json;

use super::config::TikvConfig;
use super::observe::{StoreProbe, TikvObservation};
use crate::invariant::{Checker, Consequence};
use crate::subjects::{Assessment, InvariantInfo, NodeState, Severity};

pub const STORE_DOWN: &str = "store_down";
pub const PD_MEMBER_DOWN: &str = "pd_member_down";
pub const PD_NO_LEADER: &str = "pd_no_leader";
pub const REGION_UNHEALTHY: &str = "region_unhealthy";
pub const LEADER_IMBALANCE: &str = "leader_imbalance";
pub const LOW_SPACE: &str = "low_space";
pub const HIGH_LATENCY: &str = "high_latency";
pub const EVICT_LEADER_LEFT: &str = "evict_leader_left";
pub const SUBJECT_UNREACHABLE: &str = "subject_unreachable";

/// The entity of cluster-wide invariants.
pub const CLUSTER: &str = "cluster";

pub const NAMES: &[&str] = &[
    STORE_DOWN,
    PD_MEMBER_DOWN,
    PD_NO_LEADER,
    REGION_UNHEALTHY,
    LEADER_IMBALANCE,
    LOW_SPACE,
    HIGH_LATENCY,
    EVICT_LEADER_LEFT,
    SUBJECT_UNREACHABLE,
];

/// What follows from what: a dead store leaves its regions short of a peer and, when it
/// returns, holds no leaders until PD moves some back; a scheduler left behind keeps a
/// store's leaders away; PD's members down take the leader with them; any of these slows
/// requests.
pub const CONSEQUENCES: &[Consequence] = &[
    Consequence {
        invariant: PD_NO_LEADER,
        follows_from: &[PD_MEMBER_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: REGION_UNHEALTHY,
        follows_from: &[STORE_DOWN],
        same_entity: false,
    },
    Consequence {
        invariant: LEADER_IMBALANCE,
        follows_from: &[STORE_DOWN, EVICT_LEADER_LEFT],
        same_entity: true,
    },
    Consequence {
        invariant: HIGH_LATENCY,
        follows_from: &[STORE_DOWN, PD_MEMBER_DOWN, PD_NO_LEADER],
        same_entity: false,
    },
];

/// The invariants with their defaults, overridden by the config.
pub fn catalogue(cfg: &TikvConfig) -> Vec<InvariantInfo> {
    let defaults: [(&'static str, &'static str, Severity, Duration); 9] = [
        (
            STORE_DOWN,
            "every store answers on its status port, and PD hears its heartbeats",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            PD_MEMBER_DOWN,
            "every PD member answers and calls itself healthy",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            PD_NO_LEADER,
            "PD has a leader (without one, TiKV's clients get \"PD server timeout\")",
            Severity::Critical,
            // An election takes a few seconds.
            Duration::from_secs(3),
        ),
        (
            REGION_UNHEALTHY,
            "no region misses a peer, has one down or one pending",
            Severity::Warning,
            Duration::from_secs(5),
        ),
        (
            LEADER_IMBALANCE,
            "each store holds a fair share of the region leaders",
            Severity::Warning,
            Duration::from_secs(30),
        ),
        (
            LOW_SPACE,
            "each store has space left above the threshold (a full store stops taking writes)",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            HIGH_LATENCY,
            "each store's gRPC p99 stays under the threshold",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            EVICT_LEADER_LEFT,
            "no evict-leader scheduler is left running (it keeps a store's leaders away)",
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

pub fn assess(obs: &TikvObservation, cfg: &TikvConfig, rules: &[InvariantInfo]) -> Assessment {
    let mut c = Checker::new(rules);
    let nothing =
        obs.pd.iter().all(|m| m.state != NodeState::Up) && obs.stores.iter().all(|s| !s.answered());
    if obs.error.is_some() || nothing {
        let e = obs
            .error
            .clone()
            .unwrap_or_else(|| "no PD member and no store answered".into());
        c.violate(
            SUBJECT_UNREACHABLE,
            CLUSTER,
            format!("the TiKV cluster cannot be observed: {e}"),
            json!({ "error": e }),
        );
        for r in rules.iter().filter(|r| r.name != SUBJECT_UNREACHABLE) {
            c.out
                .unknown_all(r.name, "the cluster could not be observed");
        }
        return c.out;
    }
    pd_members(&mut c, obs);
    for s in &obs.stores {
        store(&mut c, cfg, s);
    }
    if !obs.has_views() {
        let why = obs
            .views_error
            .clone()
            .or_else(|| obs.leader_error.clone())
            .unwrap_or_else(|| "PD's leader did not answer".into());
        for inv in [REGION_UNHEALTHY, LEADER_IMBALANCE, EVICT_LEADER_LEFT] {
            c.out.unknown_all(inv, &why);
        }
        return c.out;
    }
    regions(&mut c, obs);
    leaders(&mut c, obs, cfg);
    for id in &obs.evicting {
        let name = obs
            .stores
            .iter()
            .find(|s| s.pd.as_ref().is_some_and(|p| p.id == *id))
            .map_or(CLUSTER, |s| s.name.as_str());
        c.violate(
            EVICT_LEADER_LEFT,
            name,
            format!("an evict-leader scheduler keeps store {id} ({name}) free of leaders"),
            json!({ "store_id": id }),
        );
    }
    c.out
}

fn pd_members(c: &mut Checker, obs: &TikvObservation) {
    for m in &obs.pd {
        if m.state == NodeState::Up && m.healthy {
            continue;
        }
        c.violate(
            PD_MEMBER_DOWN,
            &m.name,
            format!(
                "PD member {} {}",
                m.name,
                match (&m.state, &m.detail) {
                    (NodeState::Up, _) => "answers but does not call itself healthy".to_string(),
                    (_, Some(d)) => format!("does not answer: {d}"),
                    (_, None) => "does not answer".to_string(),
                }
            ),
            json!({ "state": m.state.as_str(), "address": m.address, "detail": m.detail }),
        );
    }
    if obs.leader.is_none() {
        let answering = obs.pd.iter().filter(|m| m.state == NodeState::Up).count();
        // The first member out, for a repair to start: a majority gone is the cause then.
        let first_down = obs
            .pd
            .iter()
            .find(|m| m.state.is_out())
            .map(|m| m.name.clone());
        let cause = if answering < obs.majority() {
            "members_down"
        } else {
            "no_election"
        };
        let why = obs
            .leader_error
            .clone()
            .unwrap_or_else(|| "no member names a leader".into());
        c.violate(
            PD_NO_LEADER,
            CLUSTER,
            format!(
                "PD has no leader ({answering} of {} members answer; a quorum needs {}): {why}",
                obs.pd.len(),
                obs.majority()
            ),
            json!({ "answering": answering, "members": obs.pd.len(), "detail": why, "cause": cause, "first_down": first_down }),
        );
    }
}

fn store(c: &mut Checker, cfg: &TikvConfig, s: &StoreProbe) {
    let pd_state = s.pd.as_ref().map(|p| p.state_name.as_str());
    let pd_lost = matches!(pd_state, Some("Disconnected" | "Down"));
    if !s.answered() || pd_lost {
        let why = match (&s.detail, pd_state) {
            (Some(d), _) if !s.answered() => format!("does not answer: {d}"),
            (_, Some(st)) => format!("answers, but PD calls it {st} (no heartbeat reaches PD)"),
            _ => "does not answer".into(),
        };
        c.violate(
            STORE_DOWN,
            &s.name,
            format!("store {} {why}", s.name),
            json!({ "state": s.state.as_str(), "address": s.address, "detail": s.detail, "pd_state": pd_state }),
        );
    }
    if !s.answered() {
        for inv in [LOW_SPACE, HIGH_LATENCY] {
            c.out.unknown_for(inv, &s.name, "the store did not answer");
        }
        return;
    }
    let t = &cfg.thresholds;
    // Exact bytes from its metrics; PD's four-digit sizes otherwise.
    let capacity = s.capacity.or(s.pd.as_ref().and_then(|p| p.capacity));
    let available = s.available.or(s.pd.as_ref().and_then(|p| p.available));
    match (capacity, available) {
        (Some(cap), Some(avail)) if cap > 0 => {
            let percent = avail as f64 * 100.0 / cap as f64;
            if percent < t.available_percent {
                c.violate(
                    LOW_SPACE,
                    &s.name,
                    format!(
                        "store {} has {percent:.1}% of its space left ({avail} of {cap} bytes); the threshold is {}%",
                        s.name, t.available_percent
                    ),
                    json!({ "available": avail, "capacity": cap, "percent": percent }),
                );
            }
        }
        _ => c
            .out
            .unknown_for(LOW_SPACE, &s.name, "its capacity is not known"),
    }
    match s.grpc {
        Some(l) if l.samples >= t.latency_min_samples => {
            if l.p99_ms > t.grpc_p99_ms {
                c.violate(
                    HIGH_LATENCY,
                    &s.name,
                    format!(
                        "store {}'s gRPC p99 is {:.0} ms over {} requests; the threshold is {} ms",
                        s.name, l.p99_ms, l.samples, t.grpc_p99_ms
                    ),
                    json!({ "p99_ms": l.p99_ms, "samples": l.samples }),
                );
            }
        }
        _ => c.out.unknown_for(
            HIGH_LATENCY,
            &s.name,
            "too few requests in the window to judge",
        ),
    }
}

fn regions(c: &mut Checker, obs: &TikvObservation) {
    let count = |kind: &str| obs.regions.get(kind).map_or(0, Vec::len);
    let (miss, down, pending) = (
        count("miss-peer"),
        count("down-peer"),
        count("pending-peer"),
    );
    if miss + down + pending > 0 {
        // With no more stores up than replicas wanted, PD has nowhere to put a new one: the
        // regions stay short until a store returns.
        let up = obs.stores.iter().filter(|s| s.answered()).count() as u64;
        let wanted = obs.cluster.max_replicas;
        let no_spare = wanted.is_some_and(|w| up <= w);
        c.violate(
            REGION_UNHEALTHY,
            CLUSTER,
            format!(
                "regions short of health: {miss} miss a peer, {down} have one down, {pending} have one pending{}",
                if no_spare {
                    format!(
                        "; with {up} stores up and {} replicas wanted there is no spare store, so they stay short until a store returns",
                        wanted.unwrap_or_default()
                    )
                } else {
                    String::new()
                }
            ),
            json!({
                "miss_peer": miss,
                "down_peer": down,
                "pending_peer": pending,
                "regions": obs.regions,
                "max_replicas": wanted,
                "stores_up": up,
                "pd_counts": obs.cluster.region_health,
            }),
        );
    }
}

fn leaders(c: &mut Checker, obs: &TikvObservation, cfg: &TikvConfig) {
    let t = &cfg.thresholds;
    let judged: Vec<(&StoreProbe, u64)> = obs
        .stores
        .iter()
        .filter(|s| s.answered())
        .filter_map(|s| {
            // PD says which stores are Up; the store itself how many leaders it holds now.
            let p = s.pd.as_ref()?;
            (p.state_name == "Up").then_some((s, s.leaders.unwrap_or(p.leader_count)))
        })
        .collect();
    let total: u64 = judged.iter().map(|(_, n)| n).sum();
    if judged.len() < 2 {
        c.out
            .unknown_all(LEADER_IMBALANCE, "fewer than two stores Up to compare");
        return;
    }
    // A young cluster holds a region or two: too few leaders for any share to be unfair.
    if total < t.leader_min_regions {
        return;
    }
    let fair = total as f64 / judged.len() as f64;
    for (s, n) in judged {
        if (n as f64) < fair * t.leader_share_percent / 100.0 {
            c.violate(
                LEADER_IMBALANCE,
                &s.name,
                format!(
                    "store {} holds {n} of {total} leaders; an even share is {fair:.1}",
                    s.name
                ),
                json!({ "leaders": n, "total": total, "fair": fair }),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::tikv::observe::{PdProbe, PdStore};

    /// Three stores Up as PD sees them, holding these many leaders.
    fn with_leaders(leaders: [u64; 3]) -> TikvObservation {
        let store = |i: usize, n: u64| StoreProbe {
            name: format!("tikv-{}", i + 1),
            address: format!("127.0.0.1:{}", 20180 + i),
            state: NodeState::Up,
            detail: None,
            probe_ms: Some(1.0),
            capacity: Some(100),
            available: Some(50),
            used: Some(50),
            grpc: None,
            regions: None,
            leaders: None,
            pd: Some(PdStore {
                id: i as u64 + 1,
                state_name: "Up".into(),
                leader_count: n,
                region_count: leaders.iter().sum(),
                capacity: None,
                available: None,
            }),
        };
        TikvObservation {
            pd: vec![PdProbe {
                name: "pd-1".into(),
                address: "127.0.0.1:2379".into(),
                state: NodeState::Up,
                detail: None,
                healthy: true,
            }],
            stores: leaders
                .iter()
                .enumerate()
                .map(|(i, n)| store(i, *n))
                .collect(),
            leader: Some("pd-1".into()),
            schedulers: Some(Vec::new()),
            ..TikvObservation::default()
        }
    }

    #[test]
    fn a_young_cluster_holds_too_few_leaders_to_be_unfair_and_a_grown_one_is_judged() {
        let cfg = TikvConfig::default();
        let rules = catalogue(&cfg);
        // One region's leader, as a fresh cluster has: nothing to balance, nothing unknown
        // (a steady-state gate would wait on an unknown forever).
        let a = assess(&with_leaders([0, 1, 0]), &cfg, &rules);
        assert!(
            a.violations.iter().all(|v| v.invariant != LEADER_IMBALANCE),
            "{a:?}"
        );
        assert!(!a.is_unknown(LEADER_IMBALANCE, "tikv-1"), "{a:?}");
        // Ten leaders and none on tikv-1: unfair.
        let a = assess(&with_leaders([0, 5, 5]), &cfg, &rules);
        let v: Vec<_> = a
            .violations
            .iter()
            .filter(|v| v.invariant == LEADER_IMBALANCE)
            .map(|v| v.entity.as_str())
            .collect();
        assert_eq!(v, ["tikv-1"]);
        // The store's own count, as of now, outweighs PD's from its last heartbeat: leaders
        // evicted a moment ago are gone already.
        let mut obs = with_leaders([5, 5, 5]);
        for (s, own) in obs.stores.iter_mut().zip([0, 7, 8]) {
            s.leaders = Some(own);
        }
        let a = assess(&obs, &cfg, &rules);
        let v: Vec<_> = a
            .violations
            .iter()
            .filter(|v| v.invariant == LEADER_IMBALANCE)
            .map(|v| (v.entity.as_str(), v.detail["leaders"].as_u64()))
            .collect();
        assert_eq!(v, [("tikv-1", Some(0))]);
    }
}
