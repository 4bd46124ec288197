//! Changing who is in the cluster: removing a member (the `member_removed` fault) and
//! re-making one from empty (`operator node reset`, the repair). A removed member cannot
//! simply start again: the others refuse its old identity, and its data dir says it was
//! removed. The way back is the one etcd documents: add it to the member list again, then
//! start it with an empty data dir and `--initial-cluster-state existing`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::gateway::{Gateway, GatewayError, Member};
use super::topology::{LOCAL_DATA_DIR, members};
use crate::runtime::{NodeAction, Runtime, RuntimeError};

/// The member list as a member other than `except` answers it (a quorum answers), and
/// that member's address.
async fn list_from_another(
    gateway: &Gateway,
    runtime: &dyn Runtime,
    except: &str,
) -> Result<(String, Vec<Member>), String> {
    let mut errors = Vec::new();
    for (name, address) in members(runtime)?.into_iter().filter(|(n, _)| n != except) {
        match gateway.members(&address).await {
            Ok(list) => return Ok((address, list)),
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Err(format!(
        "no other member answers with the member list (is a majority up?): {}",
        errors.join("; ")
    ))
}

/// etcd refuses a membership change until every member has been connected for a while
/// (its strict reconfiguration check: a cluster that just formed or just lost a member is
/// "unhealthy"); how long to keep asking.
const RECONFIG_PATIENCE: Duration = Duration::from_secs(15);

/// Runs a membership change, again while etcd calls the cluster too unsettled for it.
async fn reconfigure<T, F, Fut>(what: &str, mut change: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, GatewayError>>,
{
    let deadline = Instant::now() + RECONFIG_PATIENCE;
    loop {
        match change().await {
            Ok(v) => return Ok(v),
            Err(e) if e.to_string().contains("unhealthy cluster") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    }
}

/// Removes `target` from the cluster, through another member. etcd then stops the removed
/// member by itself.
pub async fn remove(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    if !members(runtime)?.iter().any(|(n, _)| n == target) {
        return Err(format!("{target} is not a member of this etcd cluster"));
    }
    let gateway = Gateway::new(Duration::from_secs(5));
    let (via, list) = list_from_another(&gateway, runtime, target).await?;
    let member = list
        .iter()
        .find(|m| m.name == target)
        .ok_or_else(|| format!("{target} is not in the member list already"))?;
    reconfigure(&format!("removing {target}"), || {
        gateway.member_remove(&via, member.id)
    })
    .await?;
    Ok(format!(
        "removed {target} (member {:x}) from the cluster",
        member.id
    ))
}

/// The value of `--flag` in `args`.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn set_flag(args: &mut Vec<String>, name: &str, value: String) {
    match args.iter().position(|a| a == name) {
        Some(i) if i + 1 < args.len() => args[i + 1] = value,
        _ => {
            args.push(name.to_string());
            args.push(value);
        }
    }
}

/// The next generation of a data dir: `member-data` → `member-data.1` → `member-data.2`.
/// A new dir rather than a wiped one: nothing is deleted that a person might still want,
/// and a crash half-way leaves the old data whole.
pub fn next_data_dir(current: &str) -> String {
    match current.rsplit_once('.') {
        Some((base, n)) if n.parse::<u32>().is_ok() => {
            format!("{base}.{}", n.parse::<u32>().unwrap_or(0) + 1)
        }
        _ => format!("{current}.1"),
    }
}

/// Re-makes `target` from empty: stops it, takes its old identity out of the member list,
/// adds it again, and starts it on a fresh data dir as a member joining an existing
/// cluster; waits until it serves. Needs a quorum of the others.
pub async fn reset(target: &str, runtime: &dyn Runtime) -> Result<String, String> {
    if !members(runtime)?.iter().any(|(n, _)| n == target) {
        return Err(format!(
            "{target} is not a member of this etcd cluster; members: {}",
            members(runtime)?
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let gateway = Gateway::new(Duration::from_secs(5));
    let (via, list) = list_from_another(&gateway, runtime, target).await?;
    // Membership changes need a quorum of the others: ask before touching anything.
    let others_serving = {
        let mut n = 0;
        for (name, address) in members(runtime)?.iter().filter(|(n, _)| n != target) {
            if gateway.status(address).await.is_ok_and(|s| s.leader != 0) {
                n += 1;
            } else {
                tracing::debug!(member = %name, "not serving with a leader");
            }
        }
        n
    };
    let voters = list.iter().filter(|m| !m.is_learner).count().max(1);
    if others_serving < voters / 2 + 1 {
        return Err(format!(
            "only {others_serving} of the other members serve with a leader: a membership change needs a majority of the {voters} listed; bring them back first"
        ));
    }
    let mut did = Vec::new();
    let was_running = match runtime.act(target, NodeAction::Stop).await {
        Ok(_) => {
            did.push(format!("stopped {target}"));
            true
        }
        Err(RuntimeError::WrongState { .. }) => false,
        Err(e) => return Err(format!("stopping {target}: {e}")),
    };
    // Its peer URL and data dir as recorded (changing nothing yet): whether the runtime
    // can change its arguments at all is known before the member list changes.
    let seen = Mutex::new(None::<(String, String)>);
    let read = runtime
        .respec(target, &|args: &mut Vec<String>| {
            if let (Some(peer), Ok(mut s)) = (
                flag(args, "--initial-advertise-peer-urls").map(str::to_string),
                seen.lock(),
            ) {
                let dir = flag(args, "--data-dir")
                    .unwrap_or(LOCAL_DATA_DIR)
                    .to_string();
                *s = Some((peer, dir));
            }
        })
        .await;
    let found = seen.into_inner().ok().flatten();
    let (peer, dir) = match (read, found) {
        (Ok(_), Some(found)) => found,
        (read, _) => {
            if was_running {
                let _ = runtime.act(target, NodeAction::Start).await;
            }
            return Err(match read {
                Err(e) => format!("{target} cannot be re-made here: {e}"),
                Ok(args) => format!(
                    "{target}'s arguments name no --initial-advertise-peer-urls: {}",
                    args.join(" ")
                ),
            });
        }
    };
    // Its old identity, by name or by peer URL (a member added but never started has no
    // name yet); then the new one. Only then its arguments change: a node restarted after
    // a failure here comes back as it was, never empty under an old identity.
    for m in list
        .iter()
        .filter(|m| m.name == target || m.peer_urls.contains(&peer))
    {
        reconfigure(
            &format!("removing {target}'s old identity {:x}", m.id),
            || gateway.member_remove(&via, m.id),
        )
        .await?;
        did.push(format!("removed its old identity {:x}", m.id));
    }
    let id = reconfigure(&format!("adding {target} at {peer}"), || {
        gateway.member_add(&via, &peer)
    })
    .await?;
    did.push(format!("added it again as member {id:x}"));
    // A fresh data dir, joining an existing cluster: the others as listed, and this one.
    let mut cluster: Vec<String> = list
        .iter()
        .filter(|m| m.name != target && !m.name.is_empty())
        .filter_map(|m| m.peer_urls.first().map(|u| format!("{}={u}", m.name)))
        .collect();
    cluster.push(format!("{target}={peer}"));
    let fresh = next_data_dir(&dir);
    runtime
        .respec(target, &|args: &mut Vec<String>| {
            set_flag(args, "--data-dir", fresh.clone());
            set_flag(args, "--initial-cluster", cluster.join(","));
            set_flag(args, "--initial-cluster-state", "existing".into());
        })
        .await
        .map_err(|e| format!("changing {target}'s arguments: {e}"))?;
    did.push(format!("gave it the fresh data dir {fresh}"));
    runtime
        .act(target, NodeAction::Start)
        .await
        .map_err(|e| format!("starting {target}: {e}"))?;
    let address = members(runtime)?
        .into_iter()
        .find(|(n, _)| n == target)
        .map(|(_, a)| a)
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match gateway.status(&address).await {
            Ok(s) if s.leader != 0 && s.header.member_id == id => break,
            Ok(_) | Err(GatewayError::Answered { .. }) if Instant::now() < deadline => {}
            Err(e) if Instant::now() >= deadline => {
                return Err(format!("{target} did not serve again within 20s: {e}"));
            }
            Ok(_) if Instant::now() >= deadline => {
                return Err(format!("{target} did not join a leader within 20s"));
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    did.push("it serves again".into());
    Ok(format!("{target}: {}", did.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dirs_go_to_the_next_generation() {
        assert_eq!(next_data_dir("member-data"), "member-data.1");
        assert_eq!(next_data_dir("member-data.1"), "member-data.2");
        assert_eq!(
            next_data_dir("/var/lib/etcd/data.9"),
            "/var/lib/etcd/data.10"
        );
        assert_eq!(next_data_dir("/var/lib/etcd"), "/var/lib/etcd.1");
    }

    #[test]
    fn flags_are_replaced_in_place_or_added() {
        let mut a: Vec<String> = ["--name", "etcd-1", "--data-dir", "d"]
            .map(String::from)
            .to_vec();
        set_flag(&mut a, "--data-dir", "d.1".into());
        set_flag(&mut a, "--initial-cluster-state", "existing".into());
        assert_eq!(flag(&a, "--data-dir"), Some("d.1"));
        assert_eq!(flag(&a, "--initial-cluster-state"), Some("existing"));
        assert_eq!(a.len(), 6);
    }
}
