//! etcd on the Docker runtime, against the real engine: three members in containers of the
//! image built from Debian's packages, their data on disk volumes that outlive a stop, cut
//! off by iptables, and repaired by the runbook agent from its sandbox. Skipped, saying so,
//! only where no engine answers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cluster, cycle_until, opened, resolved, text};
use operator::subjects::etcd::gateway::Gateway;
use operator::tickets::{Resolution, Status};
use serde_json::Value;

const STEP: Duration = Duration::from_millis(200);

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn container(c: &Cluster, node: &str) -> String {
    format!("operator-{}-{node}", c.instance)
}

fn gateway() -> Gateway {
    Gateway::new(Duration::from_secs(10))
}

/// The runbook agent, once, from its sandbox (with its own monitor), which must resolve the
/// ticket, verified by the monitor; the commands it ran, with their exit codes.
fn agent_repairs(c: &Cluster, invariant: &str, node: &str) -> Vec<String> {
    c.runbook_agent_once();
    let t = c
        .tickets()
        .into_iter()
        .find(|t| t.entity == node && t.invariant == invariant)
        .expect("a ticket");
    let ran = c.commands_of(t.id);
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified)),
        "{t:?} {ran:?}"
    );
    ran
}

fn verified(c: &Cluster) -> Value {
    let v = c.json(&["load", "etcd", "--verify"]);
    assert_eq!(
        (v["ok"].as_bool(), v["checked"].as_u64()),
        (Some(true), Some(10)),
        "{v}"
    );
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_in_containers_keeps_its_data_and_is_repaired_from_the_sandbox() {
    let endpoints = (1..=3)
        .map(|i| format!("http://etcd-{i}:2379"))
        .collect::<Vec<_>>()
        .join(",");
    // Re-adding a member changes the membership (destructive): the person's "always allow",
    // written down, lets the unattended agent do it.
    let extra = format!(
        "etcd.thresholds.lag_entries = 20\n[agent.policy]\nallow = [\"etcdctl --endpoints={endpoints} member add\"]\n"
    );
    let Some(c) = Cluster::prepare_docker(61, &extra) else {
        return;
    };
    let mut c = c.up_subject("etcd");
    // A disk volume, not a tmpfs: a member's log outlives a stop. An ext4 image of its own on
    // a loop device, so that a fault fills it and not the engine's disk.
    let volume = format!("{}-data", container(&c, "etcd-2"));
    let options = docker(&["volume", "inspect", "-f", "{{json .Options}}", &volume]);
    let options: Value = serde_json::from_str(&options).unwrap();
    assert_eq!(options["type"], "ext4", "{options}");
    let device = options["device"].as_str().unwrap().to_string();
    assert!(device.starts_with("/dev/loop"), "{options}");
    let mut m = c.monitor();
    let (fill, _) = c.inject(&["disk_pressure", "--target", "etcd-2", "--duration", "0"]);
    cycle_until(&mut m, 20, STEP, |r| opened(r, "low_disk_space", "etcd-2")).await;
    c.ok(&["chaos", "heal", &fill.to_string()]);
    cycle_until(&mut m, 20, STEP, |r| {
        resolved(r, "low_disk_space", "etcd-2")
    })
    .await;
    // Latency goes through the fault proxy, which carries every member's peer traffic: the
    // leader's messages a second late make every write a second slower, until healed.
    common::etcd_latency_slows_writes(&c).await;
    c.etcd_load_ten_keys();

    // A killed member: the agent starts its container again, with its data.
    let r = m.cycle().await.unwrap();
    assert!(
        common::violated(&r).is_empty(),
        "{:?}",
        common::violated(&r)
    );
    let (kill, _) = c.inject(&["node_kill", "--target", "etcd-2", "--duration", "0"]);
    cycle_until(&mut m, 20, STEP, |r| opened(r, "member_down", "etcd-2")).await;
    let ran = agent_repairs(&c, "member_down", "etcd-2");
    assert_eq!(
        ran.last().map(String::as_str),
        Some("docker start etcd-2 => 0"),
        "{ran:?}"
    );
    let files = docker(&[
        "exec",
        &container(&c, "etcd-2"),
        "ls",
        "/var/lib/etcd/member-data/member/snap",
    ]);
    assert!(
        files.contains("db"),
        "the backend survived the kill: {files}"
    );
    verified(&c);
    c.ok(&["chaos", "heal", &kill.to_string()]);

    // One member cut off from its peers by iptables: it loses the leader and falls behind
    // the writes the others take; both clear when the partition heals.
    common::etcd_partition_fires_and_clears(&c, &mut m, "etcd-3").await;
    c.etcd_load_ten_keys();
    verified(&c);

    // A full backend: from the sandbox, the agent compacts, defragments every member and
    // disarms the alarm with etcdctl, none of it needing a person.
    let (full, _) = c.inject(&["nospace", "--duration", "0"]);
    cycle_until(&mut m, 20, STEP, |r| opened(r, "alarm_active", "NOSPACE")).await;
    let ran = agent_repairs(&c, "alarm_active", "NOSPACE");
    for step in [" compact ", " defrag", "/v3/maintenance/alarm"] {
        assert!(
            ran.iter().any(|r| r.contains(step) && r.ends_with("=> 0")),
            "{step}: {ran:?}"
        );
    }
    c.ok(&["chaos", "heal", &full.to_string()]);
    verified(&c);

    // Two members killed: the quorum's ticket opens within two looks, and closes when the
    // fault's heal starts them again.
    cycle_until(&mut m, 20, STEP, |r| common::violated(r).is_empty()).await;
    let (lost, _) = c.inject(&["quorum_loss", "--target", "etcd-1", "--duration", "0"]);
    cycle_until(&mut m, 2, Duration::from_secs(1), |r| {
        opened(r, "quorum_lost", "cluster")
    })
    .await;
    c.ok(&["chaos", "heal", &lost.to_string()]);
    cycle_until(&mut m, 40, STEP, |r| common::violated(r).is_empty()).await;
    verified(&c);

    // A member removed from the cluster: from the sandbox, the agent adds it again and
    // starts its container, which sets its old data aside and joins empty.
    c.inject(&["member_removed", "--target", "etcd-2", "--duration", "0"]);
    cycle_until(&mut m, 40, STEP, |r| {
        opened(r, "membership_mismatch", "etcd-2")
    })
    .await;
    drop(m);
    let ran = agent_repairs(&c, "membership_mismatch", "etcd-2");
    assert_eq!(
        ran[ran.len() - 2..],
        [
            format!(
                "etcdctl --endpoints={endpoints} member add etcd-2 --peer-urls=http://faultproxy:12382 => 0"
            ),
            "docker start etcd-2 => 0".to_string()
        ],
        "{ran:?}"
    );
    let log = c.ok(&["node", "logs", "etcd-2"]);
    assert!(log.contains("was added to the cluster again"), "{log}");
    let members = gateway().members(&c.address("etcd-1")).await.unwrap();
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["etcd-1", "etcd-2", "etcd-3"]);
    verified(&c);
    let entry = gateway()
        .get(&c.address("etcd-2"), "/operator/load/k0003")
        .await
        .unwrap();
    assert!(entry.is_some(), "etcd-2 has the data again");

    // A person's reset from this machine: the runtime re-makes the member's container on
    // its volume, with a fresh data dir, joining the existing cluster.
    let out = c.ok(&["node", "reset", "etcd-3"]);
    assert!(out.contains("it serves again"), "{out}");
    let args = docker(&["inspect", "-f", "{{json .Args}}", &container(&c, "etcd-3")]);
    assert!(
        args.contains("member-data.1") && args.contains("existing"),
        "{args}"
    );
    verified(&c);
    let entry = gateway()
        .get(&c.address("etcd-3"), "/operator/load/k0003")
        .await
        .unwrap();
    assert!(entry.is_some(), "etcd-3 has the data again");

    // `down` lets go of the members' images: the loop device is free again.
    c.down();
    let out = Command::new("losetup").arg(&device).output().unwrap();
    assert!(
        !out.status.success(),
        "{device} is still attached: {}",
        text(&out.stdout)
    );
}
