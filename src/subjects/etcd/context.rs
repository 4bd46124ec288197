//! What an agent is told about an etcd cluster: its members, how to look at them with
//! `etcdctl` and the gateway, and the commands that repair them where its commands run.

use serde_json::json;

use super::config::EtcdConfig;
use super::topology::{ROLE_MEMBER, docker_peer_url};
use crate::runtime::Topology;
use crate::runtime::commands::{Commands, reach};
use crate::subjects::{InvariantInfo, SubjectContext};

pub fn describe(t: &Topology, cfg: &EtcdConfig, rules: &[InvariantInfo]) -> SubjectContext {
    let cmd = Commands::for_runtime(&t.runtime);
    let members: Vec<_> = t.nodes.iter().filter(|n| n.role == ROLE_MEMBER).collect();
    let endpoints = members
        .iter()
        .map(|n| format!("http://{}", reach(t, n)))
        .collect::<Vec<_>>()
        .join(",");
    let etcdctl = format!("etcdctl --endpoints={endpoints}");
    let any_member = members.first().map_or(String::new(), |n| reach(t, n));
    // On Docker a member's peers know it by its link through the fault proxy, which an agent
    // needs to add it back; locally `operator node reset` knows it.
    let peer_urls: serde_json::Map<String, serde_json::Value> = if t.runtime == "docker" {
        members
            .iter()
            .filter_map(|n| Some((n.name.clone(), docker_peer_url(cfg, &n.name)?.into())))
            .collect()
    } else {
        serde_json::Map::new()
    };
    let mut d = String::new();
    d.push_str(&format!(
        "The subject is an etcd {version} cluster of {n} members (instance {instance}, {runtime} \
         runtime): a key-value store replicated by Raft. It serves while a majority ({majority}) \
         of members agree on a leader. Its backend quota is {quota} bytes: past it the cluster \
         raises the NOSPACE alarm and refuses writes until history is compacted, every member \
         defragmented and the alarm disarmed. Raft heartbeat {hb} ms, election timeout {el} ms. \
         A member's data lives in its data directory; a member that comes back with an empty \
         one cannot rejoin by itself.\n\n",
        version = "3.4",
        n = members.len(),
        instance = t.instance,
        runtime = t.runtime,
        majority = members.len() / 2 + 1,
        quota = cfg.quota_backend_bytes,
        hb = cfg.heartbeat.as_millis(),
        el = cfg.election_timeout.as_millis(),
    ));
    if t.runtime == "docker" {
        d.push_str(
            "Your commands run in a toolbox container on the cluster's network (curl, jq, \
             etcdctl, the docker CLI). Members are containers, reached by their names. `docker` \
             there talks to the operator's filtering proxy: it lets you inspect, read logs of, \
             start, stop, restart, kill, pause, unpause and exec in this cluster's containers, \
             by name; anything else is refused. Members reach each other through the fault \
             proxy's container: a member's peer URL, its identity in the cluster, is ",
        );
        d.push_str(
            &peer_urls
                .iter()
                .map(|(m, u)| format!("{} for {m}", u.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        d.push_str(".\n\n");
    }
    d.push_str(&SubjectContext::node_lines(t));
    d.push_str(&format!(
        "\nUseful commands:\n\
         - `{etcdctl} endpoint status -w table` — each member's leader, raft index, DB size, errors and alarms\n\
         - `{etcdctl} endpoint health`, `{etcdctl} member list -w table`, `{etcdctl} alarm list`\n\
         - `{etcdctl} compact REVISION`, `{etcdctl} defrag`, then for each member ID that `{etcdctl} alarm list` shows with NOSPACE `curl -s -X POST http://{any_member}/v3/maintenance/alarm -d '{{\"action\":\"DEACTIVATE\",\"memberID\":\"ID\",\"alarm\":\"NOSPACE\"}}'` — reclaim a full backend, in that order (`alarm disarm` clears every alarm, CORRUPT too: a person approves it)\n\
         - `curl -s -X POST -d '{{}}' http://{any_member}/v3/maintenance/status` — one member's own view (answers without quorum)\n\
         - `{status}` — every node's state; `{logs} NODE` — a node's log\n\
         - `{start} NODE`, `{resume} NODE`, `{restart} NODE` — bring a member back (no member restarts by itself)\n\
         - `{stop} NODE`, `{kill} NODE`, `{pause} NODE` — take one out (destructive: a person approves)\n\
         - {remake}\n\n\
         Invariants the monitor checks:\n",
        remake = if cmd.reset.is_empty() {
            format!(
                "a member removed from the cluster: `{etcdctl} member add NODE --peer-urls=PEER_URL` (NODE's, above), then `{} NODE` — its container, finding itself added again, sets its old data aside and joins empty (member add is destructive: a person approves)",
                cmd.start
            )
        } else {
            format!(
                "`{} NODE` — re-make a member removed from the cluster: added again, started on a fresh data dir, joining the existing cluster (destructive: a person approves)",
                cmd.reset
            )
        },
        status = cmd.status,
        logs = cmd.logs,
        start = cmd.start,
        resume = cmd.resume,
        restart = cmd.restart,
        stop = cmd.stop,
        kill = cmd.kill,
        pause = cmd.pause,
    ));
    d.push_str(&SubjectContext::invariant_lines(rules));
    let nodes = SubjectContext::node_addresses(t);
    SubjectContext {
        description: d,
        facts: json!({
            "subject": t.subject,
            "instance": t.instance,
            "runtime": t.runtime,
            "endpoints": endpoints,
            "etcdctl": etcdctl,
            "any_member": any_member,
            "nodes": nodes,
            "peer_urls": peer_urls,
            "commands": cmd.to_json(),
        }),
    }
}
