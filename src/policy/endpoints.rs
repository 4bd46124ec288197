//! Where the agent's network clients may point: the instance's own nodes and, on a
//! container runtime, the Docker endpoint its commands are given (the filtering proxy).
//! Anything else — another engine, a loopback port that is not the instance's, a host outside
//! — is outside the instance, whatever the client (`curl`, `wget`, `redis-cli`, `nc`,
//! `docker`) and however its address is spelt.

use std::net::Ipv4Addr;

use crate::runtime::Topology;

/// The instance's endpoints, as the policy judges a client's target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// `(host, port)` of every node, as clients, peers and the operator reach it; loopback
    /// hosts are kept as `127.0.0.1`.
    addresses: Vec<(String, u16)>,
    /// The Docker endpoint the commands' `docker` reaches by default (`DOCKER_HOST`), when the
    /// instance runs on containers; `None` where its nodes are processes, so that `docker`
    /// could only reach the host's engine.
    docker: Option<String>,
    /// Which node each address belongs to: `(host, port, node)`.
    owners: Vec<(String, u16, String)>,
}

/// Where a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: u16 },
    Unix(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tcp { host, port } => write!(f, "{host}:{port}"),
            Self::Unix(p) => write!(f, "unix socket {p}"),
        }
    }
}

impl Endpoints {
    pub fn new(addresses: impl IntoIterator<Item = (String, u16)>, docker: Option<String>) -> Self {
        Self {
            addresses: addresses
                .into_iter()
                .map(|(h, p)| (canonical_host(&h), p))
                .collect(),
            docker,
            owners: Vec::new(),
        }
    }

    /// Every address of every node of the topology, and the Docker endpoint commands get.
    pub fn from_topology(t: &Topology, docker: Option<String>) -> Self {
        let mut nodes = Vec::new();
        for n in &t.nodes {
            for a in [
                Some(n.address.as_str()),
                n.client.as_deref(),
                n.advertised.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                if let Some((h, p)) = a.rsplit_once(':') {
                    if let Ok(p) = p.parse() {
                        nodes.push((n.name.clone(), h.to_string(), p));
                    }
                }
            }
            // On a container network a node is also reached by its name.
            if t.runtime != "local" {
                if let Some((_, p)) = n.advertised_address().rsplit_once(':') {
                    if let Ok(p) = p.parse() {
                        nodes.push((n.name.clone(), n.name.clone(), p));
                    }
                }
            }
        }
        Self::of_nodes(nodes, docker)
    }

    /// Endpoints from `(node, host, port)`: each address, and which node it reaches.
    pub fn of_nodes(
        nodes: impl IntoIterator<Item = (String, String, u16)>,
        docker: Option<String>,
    ) -> Self {
        let nodes: Vec<(String, String, u16)> = nodes.into_iter().collect();
        let mut addresses: Vec<(String, u16)> =
            nodes.iter().map(|(_, h, p)| (h.clone(), *p)).collect();
        addresses.sort();
        addresses.dedup();
        Self {
            owners: nodes
                .into_iter()
                .map(|(n, h, p)| (canonical_host(&h), p, n))
                .collect(),
            ..Self::new(addresses, docker)
        }
    }

    /// The node a TCP target reaches, by the topology's addresses.
    pub fn node_at(&self, target: &Target) -> Option<&str> {
        let Target::Tcp { host, port } = target else {
            return None;
        };
        let host = canonical_host(host);
        self.owners
            .iter()
            .find(|(h, p, _)| *h == host && p == port)
            .map(|(_, _, n)| n.as_str())
    }

    pub fn docker(&self) -> Option<&str> {
        self.docker.as_deref()
    }

    /// Whether a TCP or unix target is one of the instance's.
    /// Whether `host` is one of the instance's hosts (at any of its ports).
    pub fn knows_host(&self, host: &str) -> bool {
        let host = canonical_host(host);
        self.addresses.iter().any(|(h, _)| *h == host)
    }

    pub fn reaches(&self, target: &Target) -> bool {
        match target {
            Target::Tcp { host, port } => {
                let host = canonical_host(host);
                self.addresses.iter().any(|(h, p)| *h == host && p == port)
            }
            Target::Unix(path) => self
                .docker
                .as_deref()
                .and_then(|d| d.strip_prefix("unix://"))
                .is_some_and(|d| d == path),
        }
    }

    /// Whether `address` (`-H`, `DOCKER_HOST`) is the Docker endpoint commands are given.
    pub fn is_docker(&self, address: &str) -> bool {
        let given = |a: &str| a.trim_end_matches('/').to_string();
        self.docker
            .as_deref()
            .is_some_and(|d| given(d) == given(address))
    }
}

/// A host as a connection would reach it: every spelling of loopback (`localhost`, `127.1`,
/// `2130706433`, `0x7f.1`, `[::1]`, `0`) is `127.0.0.1`; names are lower-cased. A name
/// under `localhost` (`data.localhost`) is not: the resolver may send the question on, and
/// the name with it.
pub fn canonical_host(host: &str) -> String {
    let h = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" {
        return "127.0.0.1".into();
    }
    if let Some(ip) = inet_aton(&h) {
        if ip.is_loopback() || ip.is_unspecified() {
            return "127.0.0.1".into();
        }
        return ip.to_string();
    }
    h
}

/// IPv4 as the C library reads it (and so curl and redis-cli): one to four parts, each
/// decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes.
fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut nums = Vec::with_capacity(parts.len());
    for p in &parts {
        let n = if let Some(hex) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u64::from_str_radix(hex, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u64::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse::<u64>().ok()?
        };
        nums.push(n);
    }
    let (last, init) = nums.split_last()?;
    if init.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bytes = 4 - init.len();
    if *last >= 1u64 << (8 * rest_bytes as u32) {
        return None;
    }
    let mut v: u32 = 0;
    for (i, n) in init.iter().enumerate() {
        v |= (*n as u32) << (24 - 8 * i as u32);
    }
    v |= *last as u32;
    Some(Ipv4Addr::from(v))
}

/// The target of a URL (`scheme://user@host:port/…`, or `host:port/…` without a scheme,
/// taken as HTTP the way curl does), with the scheme's default port: the web's, or the one
/// `schemes` gives (a subject's client's, `redis://` at 6379).
pub fn url_target(url: &str, schemes: &[(&str, u16)]) -> Option<Target> {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("http".to_string(), url),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let (host, port) = if let Some(inner) = host_port.strip_prefix('[') {
        let (h, after) = inner.split_once(']')?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (host_port.to_string(), None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let default = match scheme.as_str() {
        "https" | "wss" => 443,
        "ftp" => 21,
        // A subject's client's scheme (`redis://`), else the web's.
        s => schemes
            .iter()
            .find(|(name, _)| *name == s)
            .map_or(80, |(_, port)| *port),
    };
    let port = match port {
        Some("") | None => default,
        Some(p) => p.parse().ok()?,
    };
    Some(Target::Tcp { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Endpoints {
        Endpoints::new(
            [
                ("127.0.0.1".to_string(), 8001),
                ("ratelimiter-1".into(), 8000),
            ],
            Some("unix:///run/operator/agent.sock".into()),
        )
    }

    fn tcp(host: &str, port: u16) -> Target {
        Target::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn every_spelling_of_loopback_is_loopback() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1",
            "127.0.1",
            "2130706433",
            "0x7f000001",
            "0x7f.1",
            "0177.0.0.1",
            "[::1]",
            "::1",
            "0",
            "0.0.0.0",
            "127.9.9.9",
            "localhost.",
        ] {
            assert_eq!(canonical_host(h), "127.0.0.1", "{h}");
            assert!(ours().reaches(&tcp(h, 8001)), "{h}");
        }
        assert_eq!(canonical_host("data.localhost"), "data.localhost");
        assert!(!ours().reaches(&tcp("secret.localhost", 8001)));
        assert_eq!(canonical_host("10.1"), "10.0.0.1");
        assert_eq!(canonical_host("256.1.1.1"), "256.1.1.1");
    }

    #[test]
    fn only_the_instances_ports_and_names_are_reached() {
        let e = ours();
        assert!(!e.reaches(&tcp("127.0.0.1", 2375)));
        assert!(!e.reaches(&tcp("ratelimiter-1", 22)));
        assert!(!e.reaches(&tcp("example.com", 8000)));
        assert!(e.reaches(&tcp("RATELIMITER-1", 8000)));
        assert!(e.reaches(&Target::Unix("/run/operator/agent.sock".into())));
        assert!(!e.reaches(&Target::Unix("/var/run/docker.sock".into())));
        assert!(e.is_docker("unix:///run/operator/agent.sock"));
        assert!(!e.is_docker("tcp://10.0.0.1:2375"));
        assert!(!Endpoints::default().is_docker("unix:///var/run/docker.sock"));
    }

    #[test]
    fn urls_give_their_host_and_port() {
        assert_eq!(
            url_target("http://127.0.0.1:8001/health", &[]),
            Some(tcp("127.0.0.1", 8001))
        );
        assert_eq!(
            url_target("https://example.com/x", &[]),
            Some(tcp("example.com", 443))
        );
        assert_eq!(url_target("example.com", &[]), Some(tcp("example.com", 80)));
        assert_eq!(url_target("user:pw@h:9/x", &[]), Some(tcp("h", 9)));
        assert_eq!(
            url_target("http://[::1]:8001/", &[]),
            Some(tcp("::1", 8001))
        );
        assert_eq!(
            url_target("redis://redis", &[("redis", 6379)]),
            Some(tcp("redis", 6379))
        );
        assert_eq!(url_target("http://h:notaport/", &[]), None);
    }
}
