//! Network and disk faults on containers. Each runs in a short-lived helper container: network
//! faults share the target's network namespace with `NET_ADMIN` (so the target image needs no
//! tools), disk faults mount the target's data volume (a tmpfs, or an ext4 image: see `disk`).
//! What a fault adds carries its tag (the netem qdisc handle, the iptables comment, the fill
//! file's name), and heal removes only that.
//! Where the kernel lacks `sch_netem`, latency goes through the fault proxy instead.

use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use tracing::instrument;

use super::DockerRuntime;
use super::engine::{Helper, engine_error, run_helper};
use super::record::{ContainerRecord, DockerRecord};
use crate::runtime::impair::PartitionMode;
use crate::runtime::proxy::{ProxyClient, token};
use crate::runtime::{DiskUsage, FAULTPROXY, Impairment, RunState, RuntimeError};

/// The interface every container has on its network.
const IFACE: &str = "eth0";

fn impair_error(target: &str, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Impair {
        target: target.into(),
        message: message.into(),
    }
}

/// Whether `tc netem` works on this machine: asked of a throwaway namespace, and remembered
/// once `tc` has answered (an engine that could not be asked is asked again next time).
async fn netem(rt: &DockerRuntime) -> Result<(), String> {
    let answer = rt
        .netem
        .get_or_try_init(|| async {
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
            Ok::<_, String>(if out.exit_code == 0 {
                Ok(())
            } else {
                Err(format!(
                    "this kernel lacks sch_netem (tc said: {})",
                    out.output.trim()
                ))
            })
        })
        .await;
    match answer {
        Ok(definitive) => definitive.clone(),
        Err(e) => Err(format!("cannot tell whether tc netem works here: {e}")),
    }
}

pub async fn mechanism(rt: &DockerRuntime, imp: &Impairment) -> Result<String, String> {
    Ok(match imp {
        Impairment::Latency { .. } => match netem(rt).await {
            Ok(()) => "tc netem in the node's network namespace (a helper container with NET_ADMIN)".into(),
            Err(why) => format!("the fault proxy, on every link of the node through it: {why}"),
        },
        Impairment::Partition { .. } => {
            "iptables in the node's network namespace (a helper container with NET_ADMIN), against the instance's whole subnet".into()
        }
        Impairment::Bandwidth { .. } => {
            "the fault proxy, on every link of the node through it (each connection, each way)".into()
        }
        Impairment::DiskFill { .. } => format!(
            "a fill file on the node's data volume (a tmpfs of {}, or an ext4 image of {} for data that must outlive a stop)",
            rt.config.volume_size, rt.config.durable_volume_size
        ),
    })
}

/// The netem qdisc handle a fault owns: its id, in the qdisc handle range.
fn handle(tag: &str) -> Result<String, RuntimeError> {
    let id: u64 = tag
        .strip_prefix("fault-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| impair_error(tag, "not a fault's tag (fault-<id>)"))?;
    Ok(format!("{:x}", id % 0xfffe + 1))
}

pub(super) async fn helper_in_netns(
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

/// The instance network's subnet and gateway: every peer is in the one, and the other is
/// how this machine (the monitor's probes) reaches a published port.
pub(super) async fn subnet(
    docker: &Docker,
    record: &DockerRecord,
) -> Result<(String, String), RuntimeError> {
    let net = docker
        .inspect_network(&record.network, None)
        .await
        .map_err(engine_error(format!(
            "inspecting network {}",
            record.network
        )))?;
    net.ipam
        .and_then(|i| i.config)
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| Some((c.subnet?, c.gateway?)))
        .ok_or_else(|| RuntimeError::Impair {
            target: record.network.clone(),
            message: "the network reports no subnet and gateway".into(),
        })
}

fn proxy(rt: &DockerRuntime, record: &DockerRecord) -> Result<ProxyClient, RuntimeError> {
    let node = record.node(FAULTPROXY)?;
    let address = rt
        .reach(node)
        .ok_or_else(|| impair_error(FAULTPROXY, "its control port is not published"))?;
    Ok(ProxyClient::new(address).with_token(token::read(&rt.dir())))
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
            let h = handle(tag)?;
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
            if record.node(FAULTPROXY).is_err() {
                let netem = match (imp, netem(rt).await) {
                    (Impairment::Latency { .. }, Err(why)) => format!("{why}; and "),
                    _ => String::new(),
                };
                return Err(RuntimeError::Unsupported {
                    what: imp.describe(),
                    runtime: "docker",
                    reason: format!(
                        "{netem}none of this instance's links go through the fault proxy"
                    ),
                });
            }
            let toxic = imp
                .toxic()
                .ok_or_else(|| impair_error(target, "no toxic for it"))?;
            let links = proxy(rt, &record)?
                // Each container dials from its own address, past any scope the proxy could
                // tell by this host's process tables: partitions there are iptables'.
                .impair_node(target, tag, toxic, None)
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
            // The whole subnet, so that a peer that restarts with another address, or joins
            // later, is cut off too; but not the gateway, through which this machine probes.
            let (subnet, gateway) = subnet(docker, &record).await?;
            // Refusing answers a peer's SYN with a reset, which leaves through OUTPUT: that
            // rule must let resets pass, or the refusal turns into silence.
            let (inbound, outbound) = match mode {
                PartitionMode::Blackhole => ("-j DROP", "-j DROP"),
                PartitionMode::Refuse => (
                    "-p tcp -j REJECT --reject-with tcp-reset",
                    "-p tcp ! --tcp-flags RST RST -j REJECT --reject-with tcp-reset",
                ),
            };
            let c = format!("-m comment --comment {tag}");
            let script = format!(
                "set -e\n\
                 iptables -I INPUT -i {IFACE} -s {subnet} {c} {inbound}\n\
                 iptables -I OUTPUT -o {IFACE} -d {subnet} {c} {outbound}\n\
                 iptables -I INPUT -i {IFACE} -s {gateway} {c} -j ACCEPT\n\
                 iptables -I OUTPUT -o {IFACE} -d {gateway} {c} -j ACCEPT\n\
                 iptables -S | grep -c -- '--comment {tag} '\n"
            );
            let out = helper_in_netns(rt, docker, &record, node, script).await?;
            let rules: usize = out
                .trim()
                .lines()
                .last()
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            if rules != 4 {
                return Err(impair_error(
                    target,
                    format!("expected 4 rules, found {rules}"),
                ));
            }
            Ok(format!(
                "{} by iptables: {target} cut off from {subnet} both ways, but for this machine at {gateway}",
                imp.describe(),
            ))
        }
        Impairment::DiskFill { percent } => {
            let Some(volume) = &node.volume else {
                return Err(RuntimeError::Unsupported {
                    what: imp.describe(),
                    runtime: "docker",
                    reason: format!("{target} has no data volume"),
                });
            };
            if node.spec.durable && rt.loop_device(docker, node).await.is_none() {
                return Err(RuntimeError::Unsupported {
                    what: imp.describe(),
                    runtime: "docker",
                    reason: format!(
                        "{target}'s data volume is on the engine's own disk, not size-bounded: filling it would fill that disk (its subject's quota bounds it instead; runtime.docker.durable_volume_size bounds it where loop devices can be made: as root, with a local engine)"
                    ),
                });
            }
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
            // Whether or not netem worked when it was injected: a qdisc of its is looked for.
            if matches!(imp, Impairment::Latency { .. }) && running {
                let h = handle(tag)?;
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

/// Runs a short command in a container and returns its output; a non-zero exit, or no end
/// within 10 s, is an error.
pub async fn exec(docker: &Docker, container: &str, cmd: &[&str]) -> Result<String, RuntimeError> {
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        exec_inner(docker, container, cmd),
    )
    .await
    .map_err(|_| RuntimeError::Engine {
        message: format!("`{}` in {container} did not end within 10s", cmd.join(" ")),
    })?
}

async fn exec_inner(
    docker: &Docker,
    container: &str,
    cmd: &[&str],
) -> Result<String, RuntimeError> {
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
        assert_eq!(handle("fault-1").unwrap(), "2");
        assert_eq!(handle("fault-255").unwrap(), "100");
        assert_ne!(handle("fault-7").unwrap(), handle("fault-8").unwrap());
        assert!(handle("someone-else").is_err());
    }
}
