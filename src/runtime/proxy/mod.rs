//! The fault proxy: a TCP proxy on each node's links (clients → node, node → its peers) that
//! adds latency with jitter, partitions (refuse or black hole) and bandwidth limits on
//! command. It is how network faults work where `tc netem` cannot (the local runtime, or a
//! kernel without `sch_netem`). Toxiproxy's model, in-process and in Rust: see the README for
//! why not the `noxious` crate.

pub mod client;
pub mod dialer;
pub mod link;
pub mod server;
pub mod token;
pub mod toxic;

#[cfg(test)]
mod tests;

pub use client::{ProxyClient, ProxyError};
pub use link::{LinkSpec, LinkView};
pub use toxic::{PartitionMode, Rule, Toxic};

/// The fault proxy's control port in its container on the Docker runtime (each instance has
/// its own network, so every instance uses the same).
pub const DOCKER_CONTROL_PORT: u16 = 7000;

/// The fault proxy as a node of a plan: `program faultproxy --control ADDR --link …`,
/// healthy when its control API answers.
pub fn node_spec(
    host: &str,
    port: u16,
    program: std::path::PathBuf,
    args: Vec<String>,
    image: Option<String>,
) -> crate::runtime::NodeSpec {
    crate::runtime::NodeSpec {
        install_hint: None,
        name: crate::runtime::FAULTPROXY.into(),
        role: crate::runtime::ROLE_FAULTPROXY.into(),
        host: host.into(),
        port,
        program,
        args,
        env: vec![],
        health: crate::runtime::HealthCheck::Http {
            path: "/health".into(),
        },
        client: None,
        image,
        data_dir: None,
        durable: false,
        files: Vec::new(),
    }
}

/// The link clients use to reach `node`.
pub fn client_link(node: &str) -> String {
    format!("clients>{node}")
}

/// The link `node` uses to reach `upstream`.
pub fn peer_link(node: &str, upstream: &str) -> String {
    format!("{node}>{upstream}")
}

/// Whether `link` is one that clients (not nodes) dial.
pub fn is_client_link(link: &str) -> bool {
    link.starts_with("clients>")
}

/// Whether `link` touches `node` at either end.
pub fn touches(link: &str, node: &str) -> bool {
    link.split('>').any(|end| end == node)
}
