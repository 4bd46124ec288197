//! TiKV's own faults: an evict-leader scheduler left behind on a store (`evict_leader`), the
//! leftover of a maintenance that never finished. Undone by removing it, and checked undone.

use std::time::{Duration, Instant};

use serde_json::json;

use super::client::Client;
use super::observe::EVICT_LEADER;
use super::pd::{EvictLeaderConfig, Member, Stores};
use super::topology::{ROLE_PD, ROLE_STORE};
use crate::chaos::FaultAction;
use crate::chaos::faults::SubjectFault;
use crate::runtime::Runtime;

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

pub static FAULTS: [SubjectFault; 1] = [EVICT_LEADER_FAULT];

/// TiKV's own faults.
enum Own {
    EvictLeader,
}

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
        }
    }
}

fn client() -> Client {
    Client::new(Duration::from_secs(5))
}

/// PD's leader's address and the id PD gave the store `target`, waiting a few seconds for
/// a leader and for the store to have joined.
async fn store_at_leader(target: &str, runtime: &dyn Runtime) -> Result<(String, u64), String> {
    let t = runtime.topology().map_err(|e| e.to_string())?;
    let store = t
        .nodes
        .iter()
        .find(|n| n.name == target && n.role == ROLE_STORE)
        .ok_or_else(|| format!("{target} is not a store of this TiKV cluster"))?;
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
