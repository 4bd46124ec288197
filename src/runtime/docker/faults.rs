//! Network and disk faults on containers. Each runs in a short-lived helper container: network
//! faults share the target's network namespace with `NET_ADMIN` (so the target image needs no
//! tools), disk faults mount the target's data volume. What a fault adds carries its tag (the
//! netem qdisc handle, the iptables comment, the fill file's name), and heal removes only that.
//! Where the kernel lacks `sch_netem`, latency goes through the fault proxy instead.

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use tracing::instrument;

use super::DockerRuntime;
use super::engine::{Helper, engine_error, run_helper};
use super::record::{ContainerRecord, DockerRecord};
use crate::chaos::proxy::ProxyClient;
use crate::runtime::impair::PartitionMode;
use crate::runtime::{DiskUsage, FAULTPROXY, Impairment, RunState, RuntimeError};

/// The interface every container has on its network.
const IFACE: &str = "eth0";

fn impair_error(target: &str, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Impair {
        target: target.into(),
        message: message.into(),
    }
}

/// Whether `tc netem` works on this machine: asked once, of a throwaway namespace.
async fn netem(rt: &DockerRuntime) -> Result<(), String> {
    rt.netem
        .get_or_init(|| async {
            let docker = rt.docker().await.map_err(|e| e.to_string())?;
            let out = run_helper(
                docker,
                Helper {
                    image: &rt.config.toolbox_image,
                    script: "tc qdisc add dev lo root netem delay 1ms 2>&1".into(),
                    network_mode: Some("none".into()),
                    cap_add: vec!["NET_ADMIN".into()],
                    binds: vec![],
                    labels: rt.labels("probe").map_err(|e| e.to_string())?,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            if out.exit_code == 0 {
                Ok(())
            } else {
                Err(format!(
                    "this kernel lacks sch_netem (tc said: {})",
                    out.output.trim()
                ))
            }
        })
        .await
        .clone()
}

pub async fn mechanism(rt: &DockerRuntime, imp: &Impairment) -> Result<String, String> {
    Ok(match imp {
        Impairment::Latency { .. } => match netem(rt).await {
            Ok(()) => "tc netem in the node's network namespace (a helper container with NET_ADMIN)".into(),
            Err(why) => format!("the fault proxy, on the node's link to Redis: {why}"),
        },
        Impairment::Partition { .. } => {
            "iptables in the node's network namespace (a helper container with NET_ADMIN), against every peer".into()
        }
        Impairment::Bandwidth { .. } => "the fault proxy, on the node's link to Redis".into(),
        Impairment::DiskFill { .. } => format!(
            "a fill file on the node's data volume (a tmpfs of {}; Redis's volume)",
            rt.config.volume_size
        ),
    })
}

/// The netem qdisc handle a fault owns: its id, in the qdisc handle range.
fn handle(tag: &str) -> String {
    let id: u64 = tag.trim_start_matches("fault-").parse().unwrap_or_default();
    format!("{:x}", id % 0xfffe + 1)
}

async fn helper_in_netns(
    rt: &DockerRuntime,
    docker: &Docker,
    record: &DockerRecord,
    node: &ContainerRecord,
    script: String,
) -> Result<String, RuntimeError> {
    let out = run_helper(
        docker,
        Helper {
            image: &rt.config.toolbox_image,
            script,
            network_mode: Some(format!("container:{}", node.container)),
            cap_add: vec!["NET_ADMIN".into()],
            binds: vec![],
            labels: rt.labels(&record.subject)?,
        },
    )
    .await?;
    if out.exit_code != 0 {
        return Err(impair_error(
            &node.spec.name,
            format!(
                "the helper failed ({}): {}",
                out.exit_code,
                out.output.trim()
            ),
        ));
    }
    Ok(out.output)
}

/// The addresses of every other container on the instance's network.
async fn peers(
    docker: &Docker,
    record: &DockerRecord,
    node: &ContainerRecord,
) -> Result<Vec<String>, RuntimeError> {
    let net = docker
        .inspect_network(&record.network, None)
        .await
        .map_err(engine_error(format!(
            "inspecting network {}",
            record.network
        )))?;
    Ok(net
        .containers
        .unwrap_or_default()
        .into_values()
        .filter(|c| c.name.as_deref() != Some(&node.container))
        .filter_map(|c| c.ipv4_address)
        .filter_map(|a| a.split('/').next().map(str::to_string))
        .collect())
}

fn proxy(rt: &DockerRuntime, record: &DockerRecord) -> Result<ProxyClient, RuntimeError> {
    let node = record.node(FAULTPROXY)?;
    let address = rt
        .reach(node)
        .ok_or_else(|| impair_error(FAULTPROXY, "its control port is not published"))?;
    Ok(ProxyClient::new(address))
}

#[instrument(skip(rt, imp), fields(instance = rt.instance))]
pub async fn impair(
    rt: &DockerRuntime,
    target: &str,
    imp: &Impairment,
    tag: &str,
) -> Result<String, RuntimeError> {
    let record = rt.load()?;
    let node = record.node(target)?;
    let docker = rt.docker().await?;
    match *imp {
        Impairment::Latency {
            delay_ms,
            jitter_ms,
        } if netem(rt).await.is_ok() => {
            let h = handle(tag);
            let out = helper_in_netns(
                rt,
                docker,
                &record,
                node,
                format!(
                    "tc qdisc add dev {IFACE} root handle {h}: netem delay {delay_ms}ms {jitter_ms}ms \
                     && tc qdisc show dev {IFACE}"
                ),
            )
            .await?;
            if !out.contains(&format!("netem {h}:")) {
                return Err(impair_error(
                    target,
                    format!("the qdisc is not there: {out}"),
                ));
            }
            Ok(format!(
                "{} by tc netem (qdisc {h}: on {IFACE})",
                imp.describe()
            ))
        }
        Impairment::Latency { .. } | Impairment::Bandwidth { .. } => {
            let toxic = imp
                .toxic()
                .ok_or_else(|| impair_error(target, "no toxic for it"))?;
            let links = proxy(rt, &record)?
                .impair_node(target, tag, toxic)
                .await
                .map_err(|e| impair_error(target, e.to_string()))?;
            if links.is_empty() {
                return Err(impair_error(
                    target,
                    "no link of the fault proxy touches it",
                ));
            }
            Ok(format!(
                "{} on {} (fault proxy)",
                imp.describe(),
                links.join(", ")
            ))
        }
        Impairment::Partition { mode } => {
            let peers = peers(docker, &record, node).await?;
            if peers.is_empty() {
                return Err(impair_error(target, "it has no peers on the network"));
            }
            // Refusing answers a peer's SYN with a reset, which leaves through OUTPUT: that
            // rule must let resets pass, or the refusal turns into silence.
            let (inbound, outbound) = match mode {
                PartitionMode::Blackhole => ("-j DROP", "-j DROP"),
                PartitionMode::Refuse => (
                    "-p tcp -j REJECT --reject-with tcp-reset",
                    "-p tcp ! --tcp-flags RST RST -j REJECT --reject-with tcp-reset",
                ),
            };
            let mut script = String::from("set -e\n");
            for ip in &peers {
                script.push_str(&format!(
                    "iptables -I INPUT -s {ip} -m comment --comment {tag} {inbound}\n\
                     iptables -I OUTPUT -d {ip} -m comment --comment {tag} {outbound}\n"
                ));
            }
            script.push_str(&format!("iptables -S | grep -c -- '--comment {tag} '\n"));
            let out = helper_in_netns(rt, docker, &record, node, script).await?;
            let rules: usize = out
                .trim()
                .lines()
                .last()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if rules != 2 * peers.len() {
                return Err(impair_error(
                    target,
                    format!("expected {} rules, found {rules}", 2 * peers.len()),
                ));
            }
            Ok(format!(
                "{} by iptables: {rules} rules against {}",
                imp.describe(),
                peers.join(", ")
            ))
        }
        Impairment::DiskFill { percent } => {
            let Some(volume) = &node.volume else {
                return Err(RuntimeError::Unsupported {
                    what: imp.describe(),
                    runtime: "docker",
                    reason: format!("{target} has no data volume; only redis keeps data"),
                });
            };
            let file = fill_file(tag);
            let out = run_helper(
                docker,
                Helper {
                    image: &rt.config.toolbox_image,
                    script: format!(
                        "set -e\n\
                         size=$(df -B1 --output=size /data | tail -1)\n\
                         used=$(df -B1 --output=used /data | tail -1)\n\
                         want=$((size * {percent} / 100 - used))\n\
                         if [ \"$want\" -gt 0 ]; then fallocate -l \"$want\" /data/{file} || head -c \"$want\" /dev/zero > /data/{file} || true; fi\n\
                         df -B1 --output=size,used /data"
                    ),
                    network_mode: Some("none".into()),
                    cap_add: vec![],
                    binds: vec![format!("{volume}:/data")],
                    labels: rt.labels(&record.subject)?,
                },
            )
            .await?;
            let usage = parse_df(&out.output)
                .ok_or_else(|| impair_error(target, format!("df said: {}", out.output.trim())))?;
            if usage.used_percent() + 1.0 < f64::from(percent) {
                return Err(impair_error(
                    target,
                    format!("the volume is only {:.0}% full", usage.used_percent()),
                ));
            }
            Ok(format!(
                "filled {volume} to {:.0}% ({} of {} bytes) with /data/{file}",
                usage.used_percent(),
                usage.used_bytes,
                usage.size_bytes
            ))
        }
    }
}

fn fill_file(tag: &str) -> String {
    format!(".operator-fill-{tag}")
}

#[instrument(skip(rt, imp), fields(instance = rt.instance))]
pub async fn restore(
    rt: &DockerRuntime,
    target: &str,
    imp: &Impairment,
    tag: &str,
) -> Result<String, RuntimeError> {
    let record = rt.load()?;
    let node = record.node(target)?;
    let docker = rt.docker().await?;
    let running = rt.state_of(docker, &node.container).await?.0 != RunState::Exited;
    match imp {
        Impairment::Latency { .. } | Impairment::Bandwidth { .. } => {
            let mut notes = Vec::new();
            // Whichever carried it: the proxy (by tag), or a qdisc (by handle).
            let proxy_running = rt
                .state_of(docker, &record.node(FAULTPROXY)?.container)
                .await?
                .0
                != RunState::Exited;
            if proxy_running {
                let links = proxy(rt, &record)?
                    .clear_tag(tag)
                    .await
                    .map_err(|e| impair_error(target, e.to_string()))?;
                if !links.is_empty() {
                    notes.push(format!(
                        "removed it from {}; the proxy shows none left",
                        links.join(", ")
                    ));
                }
            }
            if matches!(imp, Impairment::Latency { .. }) && running && netem(rt).await.is_ok() {
                let h = handle(tag);
                let out = helper_in_netns(
                    rt,
                    docker,
                    &record,
                    node,
                    format!(
                        "if tc qdisc show dev {IFACE} | grep -q 'netem {h}: root'; then tc qdisc del dev {IFACE} root; echo removed; fi\n\
                         tc qdisc show dev {IFACE} | grep -c 'netem {h}:' || true"
                    ),
                )
                .await?;
                if out.trim().lines().last() != Some("0") {
                    return Err(impair_error(target, format!("qdisc {h}: is still there")));
                }
                if out.contains("removed") {
                    notes.push(format!("removed qdisc {h}: from {IFACE}"));
                }
            }
            Ok(if notes.is_empty() {
                "nothing of it was left".into()
            } else {
                notes.join("; ")
            })
        }
        Impairment::Partition { .. } => {
            if !running {
                return Ok(format!(
                    "{target} is not running: its rules went with its network namespace"
                ));
            }
            let out = helper_in_netns(
                rt,
                docker,
                &record,
                node,
                format!(
                    "iptables -S | grep -- '--comment {tag} ' | sed 's/^-A /-D /' | while read -r rule; do iptables $rule; done\n\
                     iptables -S | grep -c -- '--comment {tag} ' || true"
                ),
            )
            .await?;
            if out.trim().lines().last() != Some("0") {
                return Err(impair_error(
                    target,
                    format!("rules of {tag} are still there"),
                ));
            }
            Ok(format!(
                "removed the iptables rules of {tag}; iptables -S shows none left"
            ))
        }
        Impairment::DiskFill { .. } => {
            let Some(volume) = &node.volume else {
                return Ok("nothing was filled".into());
            };
            let file = fill_file(tag);
            let out = run_helper(
                docker,
                Helper {
                    image: &rt.config.toolbox_image,
                    script: format!(
                        "rm -f /data/{file}\ntest ! -e /data/{file} && echo gone\ndf -B1 --output=size,used /data"
                    ),
                    network_mode: Some("none".into()),
                    cap_add: vec![],
                    binds: vec![format!("{volume}:/data")],
                    labels: rt.labels(&record.subject)?,
                },
            )
            .await?;
            if !out.output.contains("gone") {
                return Err(impair_error(target, format!("/data/{file} is still there")));
            }
            let usage = parse_df(&out.output);
            Ok(format!(
                "deleted /data/{file}; {volume} is {} full",
                usage.map_or("?".into(), |u| format!("{:.0}%", u.used_percent()))
            ))
        }
    }
}

/// Runs a command in a container and returns its output; a non-zero exit is an error.
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> Result<String, RuntimeError> {
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(engine_error(format!("exec in {container}")))?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&created.id, None)
        .await
        .map_err(engine_error(format!("exec in {container}")))?
    {
        while let Some(chunk) = output.next().await {
            text.push_str(
                &chunk
                    .map_err(engine_error(format!("exec in {container}")))?
                    .to_string(),
            );
        }
    }
    let code = docker
        .inspect_exec(&created.id)
        .await
        .map_err(engine_error(format!("exec in {container}")))?
        .exit_code;
    if code != Some(0) {
        return Err(RuntimeError::Engine {
            message: format!(
                "`{}` in {container} failed ({code:?}): {}",
                cmd.join(" "),
                text.trim()
            ),
        });
    }
    Ok(text)
}

/// The numbers of `df -B1 --output=size,used`: the last line holding two of them.
pub fn parse_df(text: &str) -> Option<DiskUsage> {
    text.lines().rev().find_map(|l| {
        let mut it = l.split_whitespace().map(|w| w.parse::<u64>());
        match (it.next(), it.next()) {
            (Some(Ok(size)), Some(Ok(used))) => Some(DiskUsage {
                size_bytes: size,
                used_bytes: used,
            }),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read_from_its_last_line() {
        let u = parse_df("  1B-blocks      Used\n  67108864   6710886\n").unwrap();
        assert_eq!((u.size_bytes, u.used_bytes), (67108864, 6710886));
        assert!((u.used_percent() - 10.0).abs() < 0.01);
        assert!(parse_df("df: /data: No such file or directory").is_none());
    }

    #[test]
    fn each_fault_owns_a_distinct_qdisc_handle() {
        assert_eq!(handle("fault-1"), "2");
        assert_eq!(handle("fault-255"), "100");
        assert_ne!(handle("fault-7"), handle("fault-8"));
    }
}
