//! The TiKV cluster's expected topology: PD members `pd-1…` and stores `tikv-1…`, and how
//! to run them.
//!
//! Locally, every node's traffic from the others passes the fault proxy, so network faults
//! sit in its data path: a PD member's peers reach it by `peers>pd-N`, stores and members
//! reach PD's clients' port by `clients>pd-N`, and stores reach each other (Raft) and are
//! reached by clients through `clients>tikv-N`, the address each store advertises. The
//! monitor reaches PD's and each store's status port directly.

use std::path::PathBuf;

use super::config::TikvConfig;
use crate::config::LocalRuntimeConfig;
use crate::runtime::proxy;
use crate::runtime::{ClusterPlan, FAULTPROXY, HealthCheck, NodeFile, NodeSpec};

pub const SUBJECT: &str = "tikv";
pub const ROLE_PD: &str = "pd";
pub const ROLE_STORE: &str = "tikv";
/// Where a node keeps its data, under its working folder locally.
pub const LOCAL_DATA_DIR: &str = "data";
/// The file in a store's working folder holding the settings that have no flag.
pub const STORE_CONFIG: &str = "tikv.toml";
/// On Docker: PD's client and peer ports, a store's server and status ports.
pub const DOCKER_PD_CLIENT_PORT: u16 = 2379;
pub const DOCKER_PD_PEER_PORT: u16 = 2380;
pub const DOCKER_STORE_PORT: u16 = 20160;
pub const DOCKER_STATUS_PORT: u16 = 20180;
/// Where a node keeps its data in its container, on its volume.
pub const DOCKER_DATA_DIR: &str = "/var/lib/operator-data";
/// On Docker the fault proxy's port `BASE + N` carries the traffic to the N-th PD member's
/// peer port, to its client port, and to the N-th store's server port.
pub const DOCKER_PD_PEER_LINK_PORT: u16 = 12380;
pub const DOCKER_PD_CLIENT_LINK_PORT: u16 = 12480;
pub const DOCKER_STORE_LINK_PORT: u16 = 12580;

/// TiKV's settings that have no command-line flag: an open-file need within the limits a
/// process gets without root (TiKV refuses to start below 1000 + both `max-open-files`,
/// 82 920 by default), and a small disk reserve (5 GB by default, more than a test volume
/// holds, so every store would call itself full).
pub const STORE_SETTINGS: &str = "\
[rocksdb]
max-open-files = 1024

[raftdb]
max-open-files = 1024

[storage]
reserve-space = \"64MB\"
";

/// `pd-1` … `pd-N`.
pub fn pd_names(cfg: &TikvConfig) -> Vec<String> {
    (1..=cfg.pd_members).map(|i| format!("pd-{i}")).collect()
}

/// `tikv-1` … `tikv-N`.
pub fn store_names(cfg: &TikvConfig) -> Vec<String> {
    (1..=cfg.stores).map(|i| format!("tikv-{i}")).collect()
}

/// The link a PD member's peers reach it by.
pub fn peer_link(member: &str) -> String {
    proxy::peer_link("peers", member)
}

fn peer_port_name(member: &str) -> String {
    format!("{member}/peer")
}

fn status_port_name(store: &str) -> String {
    format!("{store}/status")
}

/// What needs a local port, in order: the fault proxy's control API; per PD member its
/// client and peer ports and the proxy's two links to it; per store its server and status
/// ports and the proxy's link to its server.
pub fn port_names(cfg: &TikvConfig) -> Vec<String> {
    let mut names = vec![FAULTPROXY.to_string()];
    for m in pd_names(cfg) {
        names.push(proxy::client_link(&m));
        names.push(peer_link(&m));
        names.push(peer_port_name(&m));
        names.push(m);
    }
    for s in store_names(cfg) {
        names.push(proxy::client_link(&s));
        names.push(status_port_name(&s));
        names.push(s);
    }
    names
}

/// A PD member's flags, whatever the runtime; `initial_cluster` lists every member's
/// advertised peer URL.
pub fn pd_args(
    name: &str,
    data_dir: &str,
    listen_client: &str,
    advertise_client: &str,
    listen_peer: &str,
    advertise_peer: &str,
    initial_cluster: &str,
) -> Vec<String> {
    [
        ("--name", name.to_string()),
        ("--data-dir", data_dir.to_string()),
        ("--client-urls", format!("http://{listen_client}")),
        (
            "--advertise-client-urls",
            format!("http://{advertise_client}"),
        ),
        ("--peer-urls", format!("http://{listen_peer}")),
        ("--advertise-peer-urls", format!("http://{advertise_peer}")),
        ("--initial-cluster", initial_cluster.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// A store's flags, whatever the runtime. It advertises its status address too: without
/// it PD records `0.0.0.0:20180`, which nobody else can reach.
pub fn store_args(
    data_dir: &str,
    listen: &str,
    advertise: &str,
    status: &str,
    advertise_status: &str,
    pd: &str,
    config: &str,
) -> Vec<String> {
    [
        ("--addr", listen.to_string()),
        ("--advertise-addr", advertise.to_string()),
        ("--status-addr", status.to_string()),
        ("--advertise-status-addr", advertise_status.to_string()),
        ("--data-dir", data_dir.to_string()),
        ("--pd", pd.to_string()),
        ("--config", config.to_string()),
    ]
    .into_iter()
    .flat_map(|(k, v)| [k.to_string(), v])
    .collect()
}

/// How to run every node as a local process on `host`, with `ports` in the order of
/// [`port_names`]; `pd_bin` and `tikv_bin` are the programs as found.
pub fn plan(
    cfg: &TikvConfig,
    local: &LocalRuntimeConfig,
    host: &str,
    ports: &[u16],
    (pd_bin, tikv_bin): (PathBuf, PathBuf),
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
    let members = pd_names(cfg);
    let stores = store_names(cfg);
    let initial_cluster = members
        .iter()
        .map(|m| format!("{m}=http://{}", addr(&peer_link(m))))
        .collect::<Vec<_>>()
        .join(",");
    let pd_endpoints = members
        .iter()
        .map(|m| addr(&proxy::client_link(m)))
        .collect::<Vec<_>>()
        .join(",");
    let mut proxy_args = vec![
        "faultproxy".to_string(),
        "--control".to_string(),
        addr(FAULTPROXY),
    ];
    let mut links: Vec<(String, String)> = Vec::new();
    for m in &members {
        links.push((proxy::client_link(m), addr(m)));
        links.push((peer_link(m), addr(&peer_port_name(m))));
    }
    for s in &stores {
        links.push((proxy::client_link(s), addr(s)));
    }
    for (link, upstream) in links {
        proxy_args.push("--link".into());
        proxy_args.push(format!("{link}={}>{upstream}", addr(&link)));
    }
    let faultproxy = proxy::node_spec(
        host,
        port_of(FAULTPROXY),
        crate::subjects::operator_program(local),
        proxy_args,
        None,
    );
    // Named by role: a program configured under another name is still TiKV's.
    let pd = members.iter().map(|m| NodeSpec {
        install_hint: super::programs::install_hint("pd-server"),
        name: m.clone(),
        role: ROLE_PD.into(),
        host: host.into(),
        port: port_of(m),
        program: pd_bin.clone(),
        args: pd_args(
            m,
            LOCAL_DATA_DIR,
            &addr(m),
            &addr(&proxy::client_link(m)),
            &addr(&peer_port_name(m)),
            &addr(&peer_link(m)),
            &initial_cluster,
        ),
        env: vec![],
        // A member answers its own health once it listens, leader or not.
        health: HealthCheck::Http {
            path: "/pd/api/v1/health".into(),
        },
        client: Some(addr(&proxy::client_link(m))),
        image: None,
        data_dir: None,
        durable: false,
        files: Vec::new(),
    });
    let tikv = stores.iter().map(|s| NodeSpec {
        install_hint: super::programs::install_hint("tikv-server"),
        name: s.clone(),
        role: ROLE_STORE.into(),
        host: host.into(),
        // The monitor's door to a store is its status port.
        port: port_of(&status_port_name(s)),
        program: tikv_bin.clone(),
        args: store_args(
            LOCAL_DATA_DIR,
            &addr(s),
            &addr(&proxy::client_link(s)),
            &addr(&status_port_name(s)),
            &addr(&status_port_name(s)),
            &pd_endpoints,
            STORE_CONFIG,
        ),
        env: vec![],
        // A store serves its status port before it has joined PD; the store's state is the
        // observer's to judge.
        health: HealthCheck::Http {
            path: "/status".into(),
        },
        client: Some(addr(&proxy::client_link(s))),
        image: None,
        data_dir: None,
        durable: false,
        files: store_files(),
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: std::iter::once(faultproxy).chain(pd).chain(tikv).collect(),
    }
}

/// The settings file every store starts with.
fn store_files() -> Vec<NodeFile> {
    vec![NodeFile {
        name: STORE_CONFIG.into(),
        contents: STORE_SETTINGS.into(),
    }]
}

/// The fault proxy's address for the link at `base + 1 + i` on Docker.
fn docker_link(base: u16, i: usize) -> String {
    format!("{FAULTPROXY}:{}", base + 1 + i as u16)
}

/// How to run every node as a container of the pinned images on the instance's network,
/// reached by its name, its data on a volume that outlives a stop. As locally, PD's peers,
/// the stores' PD clients and the stores' Raft traffic pass the fault proxy's container.
/// `pull_hint` says how to get an image the engine lacks.
pub fn plan_docker(
    cfg: &TikvConfig,
    toolbox_image: &str,
    pull_hint: &dyn Fn(&str) -> String,
) -> ClusterPlan {
    let members = pd_names(cfg);
    let stores = store_names(cfg);
    let initial_cluster = members
        .iter()
        .enumerate()
        .map(|(i, m)| format!("{m}=http://{}", docker_link(DOCKER_PD_PEER_LINK_PORT, i)))
        .collect::<Vec<_>>()
        .join(",");
    let pd_endpoints = (0..members.len())
        .map(|i| docker_link(DOCKER_PD_CLIENT_LINK_PORT, i))
        .collect::<Vec<_>>()
        .join(",");
    let mut proxy_args = vec![
        "faultproxy".to_string(),
        "--control".to_string(),
        format!("0.0.0.0:{}", proxy::DOCKER_CONTROL_PORT),
    ];
    let mut link = |name: String, base: u16, i: usize, upstream: String| {
        proxy_args.push("--link".into());
        proxy_args.push(format!("{name}=0.0.0.0:{}>{upstream}", base + 1 + i as u16));
    };
    for (i, m) in members.iter().enumerate() {
        link(
            peer_link(m),
            DOCKER_PD_PEER_LINK_PORT,
            i,
            format!("{m}:{DOCKER_PD_PEER_PORT}"),
        );
        link(
            proxy::client_link(m),
            DOCKER_PD_CLIENT_LINK_PORT,
            i,
            format!("{m}:{DOCKER_PD_CLIENT_PORT}"),
        );
    }
    for (i, s) in stores.iter().enumerate() {
        link(
            proxy::client_link(s),
            DOCKER_STORE_LINK_PORT,
            i,
            format!("{s}:{DOCKER_STORE_PORT}"),
        );
    }
    let faultproxy = proxy::node_spec(
        FAULTPROXY,
        proxy::DOCKER_CONTROL_PORT,
        "/usr/local/bin/operator".into(),
        proxy_args,
        Some(toolbox_image.to_string()),
    );
    let pd = members.iter().enumerate().map(|(i, m)| NodeSpec {
        install_hint: Some(pull_hint(&cfg.pd_image)),
        name: m.clone(),
        role: ROLE_PD.into(),
        host: m.clone(),
        port: DOCKER_PD_CLIENT_PORT,
        program: "/pd-server".into(),
        args: pd_args(
            m,
            DOCKER_DATA_DIR,
            &format!("0.0.0.0:{DOCKER_PD_CLIENT_PORT}"),
            &docker_link(DOCKER_PD_CLIENT_LINK_PORT, i),
            &format!("0.0.0.0:{DOCKER_PD_PEER_PORT}"),
            &docker_link(DOCKER_PD_PEER_LINK_PORT, i),
            &initial_cluster,
        ),
        env: vec![],
        health: HealthCheck::Http {
            path: "/pd/api/v1/health".into(),
        },
        client: None,
        image: Some(cfg.pd_image.clone()),
        data_dir: Some(DOCKER_DATA_DIR.into()),
        durable: true,
        files: Vec::new(),
    });
    let tikv = stores.iter().enumerate().map(|(i, s)| NodeSpec {
        install_hint: Some(pull_hint(&cfg.tikv_image)),
        name: s.clone(),
        role: ROLE_STORE.into(),
        host: s.clone(),
        port: DOCKER_STATUS_PORT,
        program: "/tikv-server".into(),
        args: store_args(
            DOCKER_DATA_DIR,
            &format!("0.0.0.0:{DOCKER_STORE_PORT}"),
            &docker_link(DOCKER_STORE_LINK_PORT, i),
            &format!("0.0.0.0:{DOCKER_STATUS_PORT}"),
            &format!("{s}:{DOCKER_STATUS_PORT}"),
            &pd_endpoints,
            STORE_CONFIG,
        ),
        env: vec![],
        health: HealthCheck::Http {
            path: "/status".into(),
        },
        client: None,
        image: Some(cfg.tikv_image.clone()),
        data_dir: Some(DOCKER_DATA_DIR.into()),
        durable: true,
        files: store_files(),
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: std::iter::once(faultproxy).chain(pd).chain(tikv).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compose file runs the cluster the Docker runtime does: every node's program and
    /// arguments as planned, and the stores' settings file as written.
    #[test]
    fn the_compose_file_runs_the_docker_plan() {
        let compose: serde_json::Value =
            serde_norway::from_str(include_str!("../../../compose/tikv.yml")).unwrap();
        let plan = plan_docker(&TikvConfig::default(), "operator/toolbox", &|_| {
            String::new()
        });
        for node in &plan.nodes {
            let service = &compose["services"][&node.name];
            let words = |key: &str| -> Vec<String> {
                service[key]
                    .as_array()
                    .map(|a| a.iter().map(|w| w.as_str().unwrap().to_string()).collect())
                    .unwrap_or_default()
            };
            let mut argv = words("entrypoint");
            argv.extend(words("command"));
            let mut planned = vec![node.program.display().to_string()];
            planned.extend(node.args.clone());
            assert_eq!(argv, planned, "{}", node.name);
            if let Some(image) = &node.image {
                assert_eq!(service["image"], image.as_str(), "{}", node.name);
            }
            assert_eq!(service["labels"]["operator.role"], node.role.as_str());
            assert_eq!(service["labels"]["operator.port"], node.port.to_string());
            if !node.files.is_empty() {
                assert_eq!(
                    service["working_dir"],
                    crate::runtime::docker::NODE_FILES_DIR
                );
            }
        }
        assert_eq!(include_str!("../../../compose/tikv.toml"), STORE_SETTINGS);
    }

    #[test]
    fn stores_reach_pd_and_each_other_through_the_proxy_and_read_their_settings() {
        let cfg = TikvConfig::default();
        let names = port_names(&cfg);
        let ports: Vec<u16> = (0..names.len() as u16).map(|i| 30_000 + i).collect();
        let p = plan(
            &cfg,
            &LocalRuntimeConfig::default(),
            "127.0.0.1",
            &ports,
            ("pd-server".into(), "tikv-server".into()),
        );
        let port = |n: &str| 30_000 + names.iter().position(|x| x == n).unwrap() as u16;
        let store = p.nodes.iter().find(|n| n.name == "tikv-2").unwrap();
        let arg = |flag: &str| {
            let i = store.args.iter().position(|a| a == flag).expect(flag);
            store.args[i + 1].clone()
        };
        assert_eq!(
            arg("--advertise-addr"),
            format!("127.0.0.1:{}", port("clients>tikv-2"))
        );
        assert!(arg("--pd").starts_with(&format!("127.0.0.1:{},", port("clients>pd-1"))));
        assert_eq!(store.port, port("tikv-2/status"));
        assert_eq!(store.files[0].name, STORE_CONFIG);
        assert!(
            store
                .install_hint
                .as_deref()
                .unwrap()
                .contains("tiup install tikv")
        );
    }
}
