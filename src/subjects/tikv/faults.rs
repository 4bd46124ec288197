//! TiKV's own faults: an evict-leader scheduler left behind on a store (`evict_leader`), the
//! leftover of a maintenance that never finished, undone by removing it and checked undone;
//! and a store short of space (`store_low_space`), staged as TiKV's own `--capacity` does:
//! the store restarted with a capacity just above what it uses.

use std::time::{Duration, Instant};

use serde_json::json;

use super::client::Client;
use super::observe::EVICT_LEADER;
use super::pd::{EvictLeaderConfig, Member, Stores};
use super::topology::{ROLE_PD, ROLE_STORE};
use crate::chaos::FaultAction;
use crate::chaos::faults::SubjectFault;
use crate::runtime::{NodeAction, Runtime, RuntimeError};

pub const EVICT_LEADER_FAULT: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "evict_leader",
    description: "add an evict-leader scheduler for the target store through PD, as a maintenance would and then forget it: the store holds no leaders; heal removes it",
    heal_action: "remove the scheduler",
    verb: "evict the leaders of",
    default_target: Some("tikv-1"),
    repairable: true,
    action: &Own::EvictLeader,
};

pub const STORE_LOW_SPACE_FAULT: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "store_low_space",
    description: "restart the target store with a capacity (`--capacity`) about 5% above what it uses, as a disk nearly full would leave it: low_space fires, and the store is below TiKV's own reserve; heal restarts it without the cap. Needs a runtime that can change a node's arguments (local); on Docker, disk_pressure fills its volume",
    heal_action: "restart the store without the cap",
    verb: "fill the space of",
    default_target: Some("tikv-1"),
    // More space is a person's call (a bigger disk, another store): the best an agent can
    // do is find the store and say so.
    repairable: false,
    action: &Own::LowSpace,
};

pub static FAULTS: [SubjectFault; 2] = [EVICT_LEADER_FAULT, STORE_LOW_SPACE_FAULT];

/// TiKV's own faults.
enum Own {
    EvictLeader,
    LowSpace,
}

/// tikv-server's flag that caps the capacity a store reports (`raftstore.capacity`).
const CAPACITY_FLAG: &str = "--capacity";

#[async_trait::async_trait]
impl FaultAction for Own {
    async fn inject(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        match self {
            Self::EvictLeader => {
                let (pd, id) = store_at_leader(target, runtime).await?;
                let body = json!({ "name": EVICT_LEADER, "store_id": id });
                client()
                    .send(
                        reqwest::Method::POST,
                        &pd,
                        "/pd/api/v1/schedulers",
                        Some(&body),
                    )
                    .await
                    .map_err(|e| format!("PD did not add the scheduler: {e}"))?;
                Ok(format!(
                    "added {EVICT_LEADER} for store {id} ({target}) through PD at {pd}"
                ))
            }
            Self::LowSpace => {
                let node = store(target, runtime)?;
                let used = used_bytes(&node.address).await?;
                // What is left is a twentieth of what is used: under 5% of the capacity,
                // below both the monitor's threshold and TiKV's own reserve.
                let cap_kb = (used + used / 20).div_ceil(1024).max(1024);
                let flag = format!("{CAPACITY_FLAG}={cap_kb}KB");
                restart_with(target, runtime, Some(flag.clone())).await?;
                Ok(format!(
                    "restarted {target} with {flag} (it uses {used} bytes): about 5% of its capacity is left"
                ))
            }
        }
    }

    async fn heal(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        match self {
            Self::EvictLeader => {
                let (pd, id) = store_at_leader(target, runtime).await?;
                let c = client();
                let path = format!("/pd/api/v1/schedulers/{EVICT_LEADER}-{id}");
                // Already gone (the agent removed it) is healed too.
                let removed = match c.send(reqwest::Method::DELETE, &pd, &path, None).await {
                    Ok(_) => true,
                    Err(super::client::ProbeError::Answered { status: 404, .. }) => false,
                    Err(e) => return Err(format!("PD did not remove the scheduler: {e}")),
                };
                let evicting: Result<EvictLeaderConfig, _> = c
                    .json(
                        &pd,
                        &format!("/pd/api/v1/scheduler-config/{EVICT_LEADER}/list"),
                    )
                    .await;
                if evicting.is_ok_and(|e| e.store_ids().contains(&id)) {
                    return Err(format!("store {id} ({target}) is still evicted"));
                }
                Ok(if removed {
                    format!("removed {EVICT_LEADER}-{id} ({target})")
                } else {
                    format!("{EVICT_LEADER}-{id} ({target}) was already gone")
                })
            }
            Self::LowSpace => {
                store(target, runtime)?;
                Ok(if restart_with(target, runtime, None).await? {
                    format!("restarted {target} without its capacity cap")
                } else {
                    format!("{target} had no capacity cap; restarted it as it was")
                })
            }
        }
    }
}

/// The store node `target` of this cluster.
fn store(target: &str, runtime: &dyn Runtime) -> Result<crate::runtime::TopologyNode, String> {
    let t = runtime.topology().map_err(|e| e.to_string())?;
    t.nodes
        .into_iter()
        .find(|n| n.name == target && n.role == ROLE_STORE)
        .ok_or_else(|| format!("{target} is not a store of this TiKV cluster"))
}

/// What the store at `address` (its status port) says it uses, in bytes.
async fn used_bytes(address: &str) -> Result<u64, String> {
    let text = client()
        .text(address, "/metrics")
        .await
        .map_err(|e| format!("the store's metrics at {address}: {e}"))?;
    crate::subjects::exposition::sample(&text, "tikv_store_size_bytes", Some(("type", "used")))
        .map(|v| v as u64)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("the store at {address} reports no used size"))
}

/// Stops `target`, sets its `--capacity` to `cap` (or removes it), and starts it again.
/// Says whether a cap was there before. A runtime whose nodes' arguments are fixed
/// (Docker) is refused before anything is stopped.
async fn restart_with(
    target: &str,
    runtime: &dyn Runtime,
    cap: Option<String>,
) -> Result<bool, String> {
    if let Err(RuntimeError::Unsupported { .. }) = runtime.respec(target, &|_| {}).await {
        return Err(format!(
            "the {} runtime cannot change {target}'s arguments, so its capacity cannot be capped; disk_pressure fills its volume instead",
            runtime.kind()
        ));
    }
    match runtime.act(target, NodeAction::Stop).await {
        Ok(_) | Err(RuntimeError::WrongState { .. }) => {}
        Err(e) => return Err(format!("stopping {target}: {e}")),
    }
    let had = std::sync::Mutex::new(false);
    let edited = runtime
        .respec(target, &|args: &mut Vec<String>| {
            let before = args.len();
            let mut i = 0;
            while i < args.len() {
                if args[i] == CAPACITY_FLAG {
                    // `--capacity VALUE`, two words.
                    let end = (i + 2).min(args.len());
                    args.drain(i..end);
                } else if args[i].starts_with(&format!("{CAPACITY_FLAG}=")) {
                    args.remove(i);
                } else {
                    i += 1;
                }
            }
            if let Ok(mut h) = had.lock() {
                *h = args.len() != before;
            }
            args.extend(cap.clone());
        })
        .await;
    let started = runtime.act(target, NodeAction::Start).await;
    edited.map_err(|e| format!("changing {target}'s arguments: {e}"))?;
    started.map_err(|e| format!("starting {target} again: {e}"))?;
    Ok(had.into_inner().unwrap_or(false))
}

fn client() -> Client {
    Client::new(Duration::from_secs(5))
}

/// PD's leader's address and the id PD gave the store `target`, waiting a few seconds for
/// a leader and for the store to have joined.
async fn store_at_leader(target: &str, runtime: &dyn Runtime) -> Result<(String, u64), String> {
    let store = &store(target, runtime)?;
    let t = runtime.topology().map_err(|e| e.to_string())?;
    let members: Vec<_> = t.nodes.iter().filter(|n| n.role == ROLE_PD).collect();
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::from("no PD member answered");
    loop {
        for m in &members {
            let leader = match c.json::<Member>(&m.address, "/pd/api/v1/leader").await {
                Ok(l) => l,
                Err(e) => {
                    last = format!("{}: {e}", m.name);
                    continue;
                }
            };
            let Some(at) = members.iter().find(|n| n.name == leader.name) else {
                last = format!("PD's leader `{}` is not a member here", leader.name);
                continue;
            };
            match c.json::<Stores>(&at.address, "/pd/api/v1/stores").await {
                Ok(stores) => {
                    if let Some(s) = stores
                        .stores
                        .iter()
                        .find(|s| super::observe::same_store(&s.store.status_address, store))
                    {
                        return Ok((at.address.clone(), s.store.id));
                    }
                    last = format!("PD does not know {target} yet");
                }
                Err(e) => last = format!("PD's stores: {e}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
