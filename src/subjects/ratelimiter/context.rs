//! What an agent is told about a rate-limiter cluster: its nodes, how to look at them, and
//! the commands that repair them — the ones that work where its commands run: on this
//! machine (`operator …`, loopback addresses) or in the Docker runtime's toolbox (`docker …`
//! through the operator's filtering proxy, nodes by their names on the instance's network).

use serde_json::json;

use super::config::RateLimiterConfig;
use super::topology::{ROLE_LIMITER, ROLE_REDIS};
use crate::runtime::Topology;
use crate::runtime::commands::{Commands, reach};
use crate::subjects::{InvariantInfo, SubjectContext};

pub fn describe(t: &Topology, cfg: &RateLimiterConfig, rules: &[InvariantInfo]) -> SubjectContext {
    let cmd = Commands::for_runtime(&t.runtime);
    let redis = t.nodes.iter().find(|n| n.role == ROLE_REDIS);
    let redis_address = redis.map_or(String::new(), |r| reach(t, r));
    let (redis_host, redis_port) = redis_address
        .rsplit_once(':')
        .map_or(("127.0.0.1", "6379"), |(h, p)| (h, p));
    let redis_cli = format!("redis-cli -h {redis_host} -p {redis_port}");
    let limiters: Vec<_> = t.nodes.iter().filter(|n| n.role == ROLE_LIMITER).collect();
    let any_node = limiters.first().map_or(String::new(), |n| reach(t, n));
    let mut d = String::new();
    d.push_str(&format!(
        "The subject is a rate limiter: {} HTTP nodes sharing their counters in one Redis \
         (instance {}, {} runtime). Each node decides `POST /check {{key, limit?, window_ms?}}` with a \
         sliding-window log kept in Redis (sorted set `ratelimit:{{key}}`, one entry per admitted \
         request, default limit {} per {} ms; a key's own limit lives in the hash \
         `ratelimit:limit:{{key}}`). Nodes register in Redis as `ratelimiter:nodes:{{id}}` (TTL {} s, \
         heartbeat every {} s).\n\n",
        limiters.len(),
        t.instance,
        t.runtime,
        cfg.default_limit,
        cfg.default_window_ms,
        cfg.node_ttl_seconds,
        cfg.node_heartbeat_seconds
    ));
    if t.runtime == "docker" {
        d.push_str(
            "Your commands run in a toolbox container on the cluster's network (curl, jq, \
             redis-cli, the docker CLI). Nodes are containers, reached by their names. `docker` \
             there talks to the operator's filtering proxy: it lets you inspect, read logs and \
             stats of, start, stop, restart, kill, pause, unpause and exec in this cluster's \
             containers, by node name; anything else is refused.\n\n",
        );
    }
    d.push_str(&SubjectContext::node_lines(t));
    let disk = match t.runtime.as_str() {
        "docker" => cmd.in_node(redis.map_or("redis", |r| r.name.as_str()), "df -h /data"),
        _ => "df -h .".to_string(),
    };
    d.push_str(&format!(
        "\nEach limiter node answers `GET /health` (503 with a reason when Redis is unreachable), \
         `GET /metrics` (Prometheus), `GET /api/nodes`, `GET /api/counters`, `GET /api/limits`, \
         `PUT /api/limits/{{key}} {{limit, window_ms?}}`, `POST /api/counters/{{key}}/reset`, `GET /api/blocks`.\n\n\
         Useful commands:\n\
         - `{status}` — every node's state\n\
         - `{logs} NODE` — a node's log\n\
         - `{start} NODE`, `{resume} NODE`, `{restart} NODE` — bring a node back (no node restarts by itself)\n\
         - `{stop} NODE`, `{kill} NODE`, `{pause} NODE` — take one out (destructive: a person approves)\n\
         - `curl -s http://{any_node}/health` and the other endpoints above\n\
         - `{redis_cli} PING`, `INFO`, `ZCARD ratelimit:KEY`, `HGETALL ratelimiter:nodes:NODE`, `TTL …`\n\
         - `{disk}` — how full Redis's data folder is\n\n\
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
    let nodes = SubjectContext::node_addresses(t);
    SubjectContext {
        description: d,
        facts: json!({
            "subject": t.subject,
            "instance": t.instance,
            "runtime": t.runtime,
            "redis": redis.map(|r| r.name.clone()),
            "redis_address": redis_address,
            "redis_port": redis_port,
            "redis_cli": redis_cli,
            "any_node": any_node,
            "nodes": nodes,
            "disk": disk,
            "commands": cmd.to_json(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TopologyNode;

    fn topology(runtime: &str) -> Topology {
        let node = |name: &str, role: &str, address: &str, advertised: &str| TopologyNode {
            name: name.into(),
            role: role.into(),
            address: address.into(),
            client: None,
            advertised: Some(advertised.into()),
        };
        Topology {
            subject: "ratelimiter".into(),
            instance: 0,
            runtime: runtime.into(),
            nodes: vec![
                node("redis", "redis", "127.0.0.1:7001", "redis:6379"),
                node(
                    "faultproxy",
                    "faultproxy",
                    "127.0.0.1:7002",
                    "faultproxy:7000",
                ),
                node(
                    "ratelimiter-1",
                    "ratelimiter",
                    "127.0.0.1:7003",
                    "ratelimiter-1:8000",
                ),
            ],
        }
    }

    #[test]
    fn the_agent_is_told_what_works_where_its_commands_run() {
        let cfg = RateLimiterConfig::default();
        let local = describe(&topology("local"), &cfg, &[]);
        assert!(local.description.contains("`operator node start NODE`"));
        assert!(
            local
                .description
                .contains("curl -s http://127.0.0.1:7003/health")
        );
        assert_eq!(local.facts["redis_cli"], "redis-cli -h 127.0.0.1 -p 7001");
        assert_eq!(local.facts["commands"]["resume"], "operator node resume");

        let docker = describe(&topology("docker"), &cfg, &[]);
        assert!(docker.description.contains("`docker start NODE`"));
        assert!(docker.description.contains("toolbox container"));
        assert!(
            docker
                .description
                .contains("curl -s http://ratelimiter-1:8000/health")
        );
        assert!(!docker.description.contains("operator node"));
        assert_eq!(docker.facts["redis_cli"], "redis-cli -h redis -p 6379");
        assert_eq!(docker.facts["nodes"]["ratelimiter-1"], "ratelimiter-1:8000");
        assert_eq!(docker.facts["commands"]["resume"], "docker unpause");
        assert!(
            docker
                .description
                .contains("faultproxy (faultproxy) at faultproxy:7000 (part of the test rig")
        );
    }
}
