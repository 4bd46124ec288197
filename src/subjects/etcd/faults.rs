//! etcd's own faults: a backend filled to its quota (`nospace`), a majority of members
//! killed at once (`quorum_loss`) and a member taken out of the cluster (`member_removed`). Each is undone by its heal and checked undone.

use std::time::Duration;

use super::gateway::{Gateway, GatewayError};
use super::topology::ROLE_MEMBER;
use crate::chaos::FaultAction;
use crate::chaos::faults::SubjectFault;
use crate::runtime::{NodeAction, Runtime};

pub const NOSPACE: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "nospace",
    description: "rewrite a few large keys until the backend quota raises the NOSPACE alarm; heal compacts, defragments and disarms",
    heal_action: "reclaim the backend",
    verb: "fill up",
    default_target: None,
    repairable: true,
    action: &Own::Nospace,
};

pub const QUORUM_LOSS: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "quorum_loss",
    description: "kill the target and enough other members that no majority is left; heal starts them",
    heal_action: "start the members",
    verb: "kill",
    default_target: None,
    repairable: true,
    action: &Own::QuorumLoss,
};

pub const MEMBER_REMOVED: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "member_removed",
    description: "remove the target from the member list (it stops itself); heal re-adds it with a fresh data dir",
    heal_action: "re-add the member",
    verb: "remove",
    default_target: None,
    repairable: true,
    action: &Own::MemberRemoved,
};

pub static FAULTS: [SubjectFault; 3] = [NOSPACE, QUORUM_LOSS, MEMBER_REMOVED];

/// Where `nospace` writes: a few keys rewritten, so that a compaction frees their history.
pub const NOSPACE_PREFIX: &str = "/operator/nospace/";
const NOSPACE_KEYS: usize = 4;
const NOSPACE_VALUE_BYTES: usize = 512 * 1024;
/// etcd's gRPC code for "mvcc: database space exceeded".
const RESOURCE_EXHAUSTED: i64 = 8;

fn member_address(runtime: &dyn Runtime, name: &str) -> Result<String, String> {
    let t = runtime.topology().map_err(|e| e.to_string())?;
    t.nodes
        .iter()
        .find(|n| n.name == name && n.role == ROLE_MEMBER)
        .map(|n| n.address.clone())
        .ok_or_else(|| format!("{name} is not a member of this etcd cluster"))
}

/// etcd's own faults.
enum Own {
    Nospace,
    QuorumLoss,
    MemberRemoved,
}

#[async_trait::async_trait]
impl FaultAction for Own {
    async fn inject(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        match self {
            Self::Nospace => fill(target, runtime).await,
            Self::QuorumLoss => kill_majority(target, runtime).await,
            Self::MemberRemoved => super::membership::remove(target, runtime).await,
        }
    }

    async fn heal(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        match self {
            Self::Nospace => reclaim(target, runtime).await,
            Self::QuorumLoss => start_members(runtime).await,
            Self::MemberRemoved => rejoin(target, runtime).await,
        }
    }
}

async fn fill(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    let address = member_address(runtime, target)?;
    let gateway = Gateway::new(Duration::from_secs(10));
    let value = "x".repeat(NOSPACE_VALUE_BYTES);
    let status = gateway.status(&address).await.map_err(|e| e.to_string())?;
    // Enough rewrites to pass any quota the member could have, twice over.
    let quota_writes = 2 * (status.db_size as usize).max(64 * 1024 * 1024) / NOSPACE_VALUE_BYTES;
    for i in 0..quota_writes {
        let key = format!("{NOSPACE_PREFIX}{}", i % NOSPACE_KEYS);
        match gateway.put(&address, &key, &value).await {
            Ok(_) => {}
            Err(GatewayError::Answered {
                code: Some(RESOURCE_EXHAUSTED),
                ..
            }) => {
                let s = gateway.status(&address).await.map_err(|e| e.to_string())?;
                if !s.alarms().iter().any(|a| a == "NOSPACE") {
                    return Err("writes are refused, but no NOSPACE alarm shows".into());
                }
                return Ok(format!(
                    "rewrote {NOSPACE_KEYS} keys under {NOSPACE_PREFIX} {i} times ({} MiB) through {target} until the NOSPACE alarm (revision {}, backend {} bytes)",
                    i * NOSPACE_VALUE_BYTES / (1024 * 1024),
                    s.header.revision,
                    s.db_size
                ));
            }
            Err(e) => return Err(format!("writing {key}: {e}")),
        }
    }
    Err(format!(
        "{quota_writes} writes of {NOSPACE_VALUE_BYTES} bytes and still no NOSPACE alarm: is the quota larger than 64 MiB?"
    ))
}

/// Deletes the fill, compacts, defragments every member and disarms the alarm: what a
/// person (or the agent) does about NOSPACE, done again harmlessly if it was done.
async fn reclaim(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    let address = member_address(runtime, target)?;
    let gateway = Gateway::new(Duration::from_secs(15));
    let deleted = gateway
        .delete_prefix(&address, NOSPACE_PREFIX)
        .await
        .map_err(|e| format!("deleting the fill: {e}"))?;
    let s = gateway.status(&address).await.map_err(|e| e.to_string())?;
    match gateway.compact(&address, s.header.revision).await {
        Ok(()) | Err(GatewayError::Answered { code: Some(11), .. }) => {}
        Err(e) => return Err(format!("compacting: {e}")),
    }
    for (name, a) in super::topology::members(runtime)? {
        gateway
            .defragment(&a)
            .await
            .map_err(|e| format!("defragmenting {name}: {e}"))?;
    }
    let disarmed = gateway
        .disarm_all(&address)
        .await
        .map_err(|e| format!("disarming: {e}"))?;
    let after = gateway.status(&address).await.map_err(|e| e.to_string())?;
    if !after.alarms().is_empty() {
        return Err(format!(
            "alarms still raised: {}",
            after.alarms().join(", ")
        ));
    }
    Ok(format!(
        "deleted {deleted} fill keys, compacted to revision {}, defragmented every member (backend now {} bytes){}",
        s.header.revision,
        after.db_size,
        if disarmed.is_empty() {
            String::new()
        } else {
            format!(", disarmed {}", disarmed.join(", "))
        }
    ))
}

async fn kill_majority(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    let members = super::topology::members(runtime)?;
    let majority = members.len() / 2 + 1;
    // Leave fewer than a majority: the target first, then the members after it in order.
    let kill = members.len() + 1 - majority;
    let start = members
        .iter()
        .position(|(n, _)| n == target)
        .ok_or_else(|| format!("{target} is not a member of this etcd cluster"))?;
    let mut killed = Vec::new();
    for i in 0..kill {
        let (name, _) = &members[(start + i) % members.len()];
        runtime
            .act(name, NodeAction::Kill)
            .await
            .map_err(|e| format!("killing {name}: {e}"))?;
        killed.push(name.clone());
    }
    Ok(format!(
        "killed {} of {} members ({}): no majority is left",
        killed.len(),
        members.len(),
        killed.join(", ")
    ))
}

/// Re-makes the removed member, unless it is a serving member again (the agent's repair).
async fn rejoin(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    let address = member_address(runtime, target)?;
    let gateway = Gateway::new(Duration::from_secs(2));
    if let (Ok(s), Ok(list)) = (
        gateway.status(&address).await,
        gateway.members(&address).await,
    ) {
        if s.leader != 0
            && list
                .iter()
                .any(|m| m.name == target && m.id == s.header.member_id)
        {
            return Ok(format!("{target} is a serving member again"));
        }
    }
    super::membership::reset(target, runtime).await
}

async fn start_members(runtime: &dyn Runtime) -> Result<String, String> {
    let did = crate::runtime::bring_back(runtime, Some(ROLE_MEMBER)).await?;
    Ok(if did.is_empty() {
        "every member was running again".into()
    } else {
        did.join(", ")
    })
}
