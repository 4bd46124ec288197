//! The toolbox's way out: only to its instance. Rules in the toolbox's own network namespace
//! (set by a helper with NET_ADMIN, as the partition fault sets its own) let through loopback
//! (the engine's embedded resolver answers at 127.0.0.11 there) and the instance's subnet, and
//! drop the rest — first of all the gateway, which is this machine: the toolbox reaches Docker
//! through the proxy's socket, never over TCP, and on a cloud host the same route leads to the
//! host's services and its metadata address. A container's network namespace is new at each
//! start, so the rules are set at each start; whether they hold is written beside the
//! instance's record, for the agent to read before it runs anything in auto mode.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::record::{ContainerRecord, DockerRecord};
use super::{DockerRuntime, faults};

/// The chain that holds the rules, and their comment.
const CHAIN: &str = "OPERATOR_EGRESS";

/// Where the outcome of the last start is kept: `confined`, or why not.
pub fn status_path(instance_dir: &Path) -> PathBuf {
    instance_dir.join("toolbox.egress")
}

/// Why the toolbox's egress is not confined to its instance, or `None` when it is.
pub fn open_because(instance_dir: &Path) -> Option<String> {
    match std::fs::read_to_string(status_path(instance_dir)) {
        Ok(s) if s.trim() == "confined" => None,
        Ok(s) => Some(s.trim().to_string()),
        Err(_) => Some("no rules were set on the toolbox's network (it has not started since the operator learned to)".into()),
    }
}

/// The script run in the toolbox's namespace: the chain, first in OUTPUT, and what it holds.
pub fn script(subnet: &str, gateway: &str) -> String {
    format!(
        "set -e\n\
         iptables -N {CHAIN} 2>/dev/null || iptables -F {CHAIN}\n\
         iptables -A {CHAIN} -o lo -j RETURN\n\
         iptables -A {CHAIN} -d {gateway} -j DROP\n\
         iptables -A {CHAIN} -d {subnet} -j RETURN\n\
         iptables -A {CHAIN} -j DROP\n\
         iptables -C OUTPUT -j {CHAIN} 2>/dev/null || iptables -I OUTPUT 1 -j {CHAIN}\n\
         if ip6tables -S >/dev/null 2>&1; then\n\
           ip6tables -N {CHAIN} 2>/dev/null || ip6tables -F {CHAIN}\n\
           ip6tables -A {CHAIN} -o lo -j RETURN\n\
           ip6tables -A {CHAIN} -j DROP\n\
           ip6tables -C OUTPUT -j {CHAIN} 2>/dev/null || ip6tables -I OUTPUT 1 -j {CHAIN}\n\
         fi\n\
         iptables -S {CHAIN} | grep -c -- '-j DROP'\n"
    )
}

/// Sets the rules in the toolbox's namespace and writes down whether they hold.
pub async fn confine(
    rt: &DockerRuntime,
    docker: &bollard::Docker,
    record: &DockerRecord,
    toolbox: &ContainerRecord,
) {
    let outcome = match faults::subnet(docker, record).await {
        Ok((subnet, gateway)) => {
            faults::helper_in_netns(rt, docker, record, toolbox, script(&subnet, &gateway))
                .await
                .map_err(|e| e.to_string())
                .and_then(|out| {
                    // Two drops: the gateway's and the rest's.
                    if out.trim().lines().last() == Some("2") {
                        Ok(format!("{subnet} but {gateway}"))
                    } else {
                        Err(format!("the rules did not take: {}", out.trim()))
                    }
                })
        }
        Err(e) => Err(e.to_string()),
    };
    let text = match &outcome {
        Ok(to) => {
            info!(to = %to, "the toolbox reaches only its instance");
            "confined\n".to_string()
        }
        Err(why) => {
            warn!(why = %why, "the toolbox's egress is not confined");
            format!("cannot confine the toolbox's egress to its instance: {why}\n")
        }
    };
    if let Err(e) = std::fs::write(status_path(&rt.dir()), text) {
        warn!(error = %e, "cannot write down the toolbox's egress");
    }
}
