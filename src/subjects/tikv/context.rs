//! What an agent is told about a TiKV cluster: its PD members and stores, how to look at them
//! through PD's HTTP API (or pd-ctl where the image has it), and the commands that repair them
//! where its commands run.

use serde_json::json;

use super::observe::EVICT_LEADER;
use super::programs::VERSION;
use super::topology::{ROLE_PD, ROLE_STORE};
use crate::runtime::Topology;
use crate::runtime::commands::{Commands, reach};
use crate::subjects::{InvariantInfo, SubjectContext};

pub fn describe(t: &Topology, rules: &[InvariantInfo]) -> SubjectContext {
    let cmd = Commands::for_runtime(&t.runtime);
    let of = |role: &str| -> Vec<_> { t.nodes.iter().filter(|n| n.role == role).collect() };
    let (members, stores) = (of(ROLE_PD), of(ROLE_STORE));
    // Any member serves PD's API: a follower forwards to the leader.
    let pd = members.first().map_or(String::new(), |n| reach(t, n));
    let api = format!("http://{pd}/pd/api/v1");
    let mut d = format!(
        "The subject is a TiKV {VERSION} cluster (instance {instance}, {runtime} runtime): \
         {s} TiKV stores hold the data in regions replicated three times by Raft, and {m} PD \
         members (Placement Driver, itself a Raft group needing {majority} of them) keep the \
         cluster's map, elect a leader among themselves and schedule regions and their leaders \
         across stores. Only PD's leader answers for the cluster (stores, regions, schedulers); \
         without one, clients fail with \"PD server timeout\". A store that stops sending \
         heartbeats is Disconnected after 20 s and Down after 30 min; with three stores there is \
         no spare, so a dead store's regions stay short of a peer until it returns. An \
         evict-leader scheduler keeps every leader off a store (for maintenance); one left \
         behind leaves that store idle. A store stops taking writes when its disk is nearly \
         full (reserve {reserve}).\n\n",
        instance = t.instance,
        runtime = t.runtime,
        s = stores.len(),
        m = members.len(),
        majority = members.len() / 2 + 1,
        reserve = "64MB",
    );
    if t.runtime == "docker" {
        d.push_str(
            "Your commands run in a toolbox container on the cluster's network (curl, jq, the \
             docker CLI). Nodes are containers, reached by their names; `docker exec pd-1 \
             /pd-ctl -u http://pd-1:2379 …` runs pd-ctl from PD's image. `docker` there talks \
             to the operator's filtering proxy: inspect, logs, start, stop, restart, kill, \
             pause, unpause and exec in this cluster's containers, by name; nothing else.\n\n",
        );
    }
    d.push_str(&SubjectContext::node_lines(t));
    d.push_str(&format!(
        "\nUseful commands (PD's API answers JSON; sizes are strings such as \"1.6GiB\"):\n\
         - `curl -s {api}/health` — each PD member's own health; `curl -s {api}/leader`, `{api}/members`\n\
         - `curl -s {api}/stores` — each store's state (Up, Disconnected, Down, Offline, Tombstone), leaders, regions, space\n\
         - `curl -s {api}/regions/check/miss-peer` (also down-peer, pending-peer, offline-peer, extra-peer) — regions short of health\n\
         - `curl -s {api}/schedulers` — the schedulers PD runs; `curl -s {api}/scheduler-config/{EVICT_LEADER}/list` — the stores an evict-leader scheduler empties\n\
         - `curl -s -X DELETE {api}/schedulers/{EVICT_LEADER}-STORE_ID` — remove one store's evict-leader scheduler (its leaders come back)\n\
         - `curl -s http://STORE_STATUS/metrics` — a store's metrics (tikv_store_size_bytes, tikv_grpc_msg_duration_seconds, tikv_raftstore_region_count)\n\
         - `{status}` — every node's state; `{logs} NODE` — a node's log\n\
         - `{start} NODE`, `{resume} NODE`, `{restart} NODE` — bring a node back (no node restarts by itself)\n\
         - `{stop} NODE`, `{kill} NODE`, `{pause} NODE` — take one out (destructive: a person approves)\n\
         Deleting a store, a PD member or a region, and every unsafe recovery, lose data or \
         replicas: a person decides them.\n\n\
         Invariants the monitor checks:\n",
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
    SubjectContext {
        description: d,
        facts: json!({
            "subject": t.subject,
            "instance": t.instance,
            "runtime": t.runtime,
            "pd": pd,
            "pd_api": api,
            "nodes": SubjectContext::node_addresses(t),
            "commands": cmd.to_json(),
        }),
    }
}
