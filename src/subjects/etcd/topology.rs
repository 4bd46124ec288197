//! The etcd cluster's expected topology: N members, and how to run them on each runtime.
//!
//! On both runtimes every member's peers reach it through the fault proxy (the link
//! `peers>etcd-N`; locally its clients too, by `clients>etcd-N`), so that network faults sit in
//! its data path; the monitor reaches each member directly.

use std::path::PathBuf;

use super::config::EtcdConfig;
use crate::config::LocalRuntimeConfig;
use crate::runtime::proxy;
use crate::runtime::{ClusterPlan, FAULTPROXY, HealthCheck, NodeSpec};

pub const SUBJECT: &str = "etcd";
pub const ROLE_MEMBER: &str = "etcd";
/// Where a member keeps its data: under its working folder locally, on its volume in Docker.
pub const LOCAL_DATA_DIR: &str = "member-data";
pub const DOCKER_DATA_DIR: &str = "/var/lib/etcd";
pub const DOCKER_CLIENT_PORT: u16 = 2379;
pub const DOCKER_PEER_PORT: u16 = 2380;
/// On Docker the fault proxy's port `DOCKER_PEER_LINK_PORT + N` carries etcd-N's peers'
/// traffic to it.
pub const DOCKER_PEER_LINK_PORT: u16 = 12380;

/// The members an instance's recorded topology lists: (name, address as the monitor
/// reaches it).
pub fn members(runtime: &dyn crate::runtime::Runtime) -> Result<Vec<(String, String)>, String> {
    let t = runtime.topology().map_err(|e| e.to_string())?;
    Ok(t.nodes
        .iter()
        .filter(|n| n.role == ROLE_MEMBER)
        .map(|n| (n.name.clone(), n.address.clone()))
        .collect())
}

/// `etcd-1` … `etcd-N`.
pub fn member_names(cfg: &EtcdConfig) -> Vec<String> {
    (1..=cfg.members).map(|i| format!("etcd-{i}")).collect()
}

/// The link a member's peers reach it by.
pub fn peer_link(member: &str) -> String {
    proxy::peer_link("peers", member)
}

fn peer_port_name(member: &str) -> String {
    format!("{member}/peer")
}

/// What needs a local port, in order: the fault proxy's control API, then per member its
/// client port, its peer port and the proxy's two links to it.
pub fn port_names(cfg: &EtcdConfig) -> Vec<String> {
    let mut names = vec![FAULTPROXY.to_string()];
    for m in member_names(cfg) {
        names.push(proxy::client_link(&m));
        names.push(peer_link(&m));
        names.push(peer_port_name(&m));
        names.push(m);
    }
    names
}

/// The cluster's token: members of one instance only ever join each other.
pub fn token(instance: u32) -> String {
    format!("operator-etcd-{instance}")
}

/// The flags every member runs with, whatever the runtime; `initial_cluster` lists every
/// member's advertised peer URL. `state` is `new` when the cluster is made, `existing` when
/// a member rejoins it empty.
#[allow(clippy::too_many_arguments)]
pub fn member_args(
    cfg: &EtcdConfig,
    name: &str,
    data_dir: &str,
    listen_client: &str,
    advertise_client: &str,
    listen_peer: &str,
    advertise_peer: &str,
    initial_cluster: &str,
    state: &str,
    instance: u32,
) -> Vec<String> {
    [
        ("--name", name.to_string()),
        ("--data-dir", data_dir.to_string()),
        ("--listen-client-urls", format!("http://{listen_client}")),
        (
            "--advertise-client-urls",
            format!("http://{advertise_client}"),
        ),
        ("--listen-peer-urls", format!("http://{listen_peer}")),
        (
            "--initial-advertise-peer-urls",
            format!("http://{advertise_peer}"),
        ),
        ("--initial-cluster", initial_cluster.to_string()),
        ("--initial-cluster-state", state.to_string()),
        ("--initial-cluster-token", token(instance)),
        ("--quota-backend-bytes", cfg.quota_backend_bytes.to_string()),
        (
            "--heartbeat-interval",
            cfg.heartbeat.as_millis().to_string(),
        ),
        (
            "--election-timeout",
            cfg.election_timeout.as_millis().to_string(),
        ),
        // Keeps steady load's history from ever filling the quota: every five minutes,
        // compact all but the last thousand revisions.
        ("--auto-compaction-mode", "revision".to_string()),
        ("--auto-compaction-retention", "1000".to_string()),
        ("--logger", "zap".to_string()),
        ("--log-level", "warn".to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// How to run every member as a local process on `host`, with `ports` in the order of
/// [`port_names`].
pub fn plan(
    cfg: &EtcdConfig,
    local: &LocalRuntimeConfig,
    host: &str,
    ports: &[u16],
    instance: u32,
    state: &str,
) -> ClusterPlan {
    let names = port_names(cfg);
    let port_of = |name: &str| {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| ports.get(i).copied())
            .unwrap_or(0)
    };
    let addr = |name: &str| format!("{host}:{}", port_of(name));
    let members = member_names(cfg);
    let initial_cluster = members
        .iter()
        .map(|m| format!("{m}=http://{}", addr(&peer_link(m))))
        .collect::<Vec<_>>()
        .join(",");
    let mut proxy_args = vec![
        "faultproxy".to_string(),
        "--control".to_string(),
        addr(FAULTPROXY),
    ];
    for m in &members {
        for (link, upstream) in [
            (proxy::client_link(m), addr(m)),
            (peer_link(m), addr(&peer_port_name(m))),
        ] {
            proxy_args.push("--link".into());
            proxy_args.push(format!("{link}={}>{upstream}", addr(&link)));
        }
    }
    let faultproxy = proxy::node_spec(
        host,
        port_of(FAULTPROXY),
        crate::subjects::operator_program(local),
        proxy_args,
        None,
    );
    let etcd = PathBuf::from(&cfg.etcd_bin);
    let members = members.iter().map(|m| NodeSpec {
        install_hint: None,
        name: m.clone(),
        role: ROLE_MEMBER.into(),
        host: host.into(),
        port: port_of(m),
        program: etcd.clone(),
        args: member_args(
            cfg,
            m,
            LOCAL_DATA_DIR,
            &addr(m),
            &addr(m),
            &addr(&peer_port_name(m)),
            &addr(&peer_link(m)),
            &initial_cluster,
            state,
            instance,
        ),
        env: vec![],
        // A member serves its clients only once it has joined a cluster with a leader,
        // which needs a majority started: until then it only accepts connections.
        health: HealthCheck::Tcp,
        client: Some(addr(&proxy::client_link(m))),
        image: None,
        data_dir: None,
        durable: false,
        files: Vec::new(),
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: std::iter::once(faultproxy).chain(members).collect(),
    }
}

/// Where a member's peers reach it on Docker: the fault proxy's port for it, by position in
/// the topology (`etcd-2` is `faultproxy:12382`). It is the member's identity in the cluster.
pub fn docker_peer_url(cfg: &EtcdConfig, member: &str) -> Option<String> {
    let i = member_names(cfg).iter().position(|m| m == member)?;
    Some(format!(
        "http://{FAULTPROXY}:{}",
        DOCKER_PEER_LINK_PORT + 1 + i as u16
    ))
}

/// How to run every member as a container on the instance's network, reached by its name,
/// its data on a volume that outlives a stop (a member that comes back empty breaks Raft).
/// Peers talk through the fault proxy's container, as they do through its process locally.
pub fn plan_docker(
    cfg: &EtcdConfig,
    toolbox_image: &str,
    instance: u32,
    state: &str,
) -> ClusterPlan {
    let members = member_names(cfg);
    let peer_url = |m: &str| docker_peer_url(cfg, m).unwrap_or_default();
    let initial_cluster = members
        .iter()
        .map(|m| format!("{m}={}", peer_url(m)))
        .collect::<Vec<_>>()
        .join(",");
    let endpoints = members
        .iter()
        .map(|m| format!("http://{m}:{DOCKER_CLIENT_PORT}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut proxy_args = vec![
        "faultproxy".to_string(),
        "--control".to_string(),
        format!("0.0.0.0:{}", proxy::DOCKER_CONTROL_PORT),
    ];
    for (i, m) in members.iter().enumerate() {
        proxy_args.push("--link".into());
        proxy_args.push(format!(
            "{}=0.0.0.0:{}>{m}:{DOCKER_PEER_PORT}",
            peer_link(m),
            DOCKER_PEER_LINK_PORT + 1 + i as u16
        ));
    }
    let faultproxy = proxy::node_spec(
        FAULTPROXY,
        proxy::DOCKER_CONTROL_PORT,
        "/usr/local/bin/operator".into(),
        proxy_args,
        Some(toolbox_image.to_string()),
    );
    let nodes = members.iter().map(|m| NodeSpec {
        install_hint: None,
        name: m.clone(),
        role: ROLE_MEMBER.into(),
        host: m.clone(),
        port: DOCKER_CLIENT_PORT,
        // The image's entrypoint: etcd, but a member added again rejoins empty.
        program: "/usr/local/bin/etcd-member".into(),
        args: member_args(
            cfg,
            m,
            // A folder on the volume, so that a reset's next generation is on it too.
            &format!("{DOCKER_DATA_DIR}/{LOCAL_DATA_DIR}"),
            &format!("0.0.0.0:{DOCKER_CLIENT_PORT}"),
            &format!("{m}:{DOCKER_CLIENT_PORT}"),
            &format!("0.0.0.0:{DOCKER_PEER_PORT}"),
            peer_url(m).trim_start_matches("http://"),
            &initial_cluster,
            state,
            instance,
        ),
        env: vec![("OPERATOR_ETCD_ENDPOINTS".into(), endpoints.clone())],
        health: HealthCheck::Tcp,
        client: None,
        image: Some(cfg.image.clone()),
        data_dir: Some(DOCKER_DATA_DIR.into()),
        durable: true,
        files: Vec::new(),
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: std::iter::once(faultproxy).chain(nodes).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_member_is_told_the_whole_cluster_by_its_proxied_peer_urls() {
        let cfg = EtcdConfig::default();
        let names = port_names(&cfg);
        let ports: Vec<u16> = (0..names.len() as u16).map(|i| 20_000 + i).collect();
        let p = plan(
            &cfg,
            &LocalRuntimeConfig::default(),
            "127.0.0.1",
            &ports,
            4,
            "new",
        );
        assert_eq!(p.nodes.len(), 4);
        let m1 = &p.nodes[1];
        assert_eq!(m1.name, "etcd-1");
        let arg = |flag: &str| {
            let i = m1.args.iter().position(|a| a == flag).expect(flag);
            m1.args[i + 1].clone()
        };
        let peer_link_port =
            20_000 + names.iter().position(|n| n == "peers>etcd-1").unwrap() as u16;
        assert_eq!(
            arg("--initial-advertise-peer-urls"),
            format!("http://127.0.0.1:{peer_link_port}")
        );
        assert!(
            arg("--initial-cluster")
                .starts_with(&format!("etcd-1=http://127.0.0.1:{peer_link_port},etcd-2="))
        );
        assert_eq!(arg("--initial-cluster-token"), "operator-etcd-4");
        assert_eq!(arg("--election-timeout"), "1000");
        assert_eq!(arg("--quota-backend-bytes"), "16777216");
        // The proxy forwards that link to the member's own peer port.
        let proxy = &p.nodes[0];
        let peer_port = 20_000 + names.iter().position(|n| n == "etcd-1/peer").unwrap() as u16;
        assert!(proxy.args.contains(&format!(
            "peers>etcd-1=127.0.0.1:{peer_link_port}>127.0.0.1:{peer_port}"
        )));
    }

    #[test]
    fn on_docker_every_member_is_known_to_its_peers_by_its_link_through_the_proxy() {
        let cfg = EtcdConfig::default();
        let p = plan_docker(&cfg, "operator/toolbox", 2, "new");
        let names: Vec<&str> = p.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["faultproxy", "etcd-1", "etcd-2", "etcd-3"]);
        let m2 = &p.nodes[2];
        let arg = |flag: &str| {
            let i = m2.args.iter().position(|a| a == flag).expect(flag);
            m2.args[i + 1].clone()
        };
        assert_eq!(
            arg("--initial-advertise-peer-urls"),
            "http://faultproxy:12382"
        );
        assert_eq!(arg("--listen-peer-urls"), "http://0.0.0.0:2380");
        assert_eq!(
            arg("--initial-cluster"),
            "etcd-1=http://faultproxy:12381,etcd-2=http://faultproxy:12382,etcd-3=http://faultproxy:12383"
        );
        assert!(
            p.nodes[0]
                .args
                .contains(&"peers>etcd-2=0.0.0.0:12382>etcd-2:2380".to_string())
        );
        assert_eq!(
            docker_peer_url(&cfg, "etcd-3").as_deref(),
            Some("http://faultproxy:12383")
        );
        assert_eq!(docker_peer_url(&cfg, "etcd-9"), None);
    }
}
