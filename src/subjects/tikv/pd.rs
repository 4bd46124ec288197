//! PD's HTTP answers, parsed exactly as PD v8.5 writes them (tikv/pd `server/api/*.go`,
//! `pkg/response/*.go`): sizes as Go's `units.BytesSize` strings (`"97.87GiB"`), protobuf
//! enums left out when zero (an Up store has no `state` key), ids and `last_heartbeat` (in
//! nanoseconds) above 2^53, errors as JSON string literals or plain text.

use serde::Deserialize;

/// `GET /pd/api/v1/stores`.
#[derive(Debug, Clone, Deserialize)]
pub struct Stores {
    pub count: u64,
    #[serde(default)]
    pub stores: Vec<StoreEntry>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreEntry {
    pub store: StoreMeta,
    #[serde(default)]
    pub status: StoreStatus,
}

/// A store as PD knows it. `state` is metapb's StoreState (0 Up, 1 Offline, 2 Tombstone),
/// `node_state` metapb's NodeState (0 Preparing, 1 Serving, 2 Removing, 3 Removed); both are
/// absent when zero. `state_name` says more: `Disconnected` after 20 s without a heartbeat,
/// `Down` after `max-store-down-time`.
#[derive(Debug, Clone, Deserialize)]
pub struct StoreMeta {
    pub id: u64,
    pub address: String,
    #[serde(default)]
    pub status_address: String,
    #[serde(default)]
    pub state: i32,
    #[serde(default)]
    pub node_state: i32,
    pub state_name: String,
    /// Unix time in nanoseconds.
    #[serde(default)]
    pub last_heartbeat: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StoreStatus {
    #[serde(default)]
    pub capacity: Option<String>,
    #[serde(default)]
    pub available: Option<String>,
    #[serde(default)]
    pub used_size: Option<String>,
    #[serde(default)]
    pub leader_count: u64,
    #[serde(default)]
    pub region_count: u64,
    #[serde(default)]
    pub pending_peer_count: u64,
}

/// One entry of `GET /pd/api/v1/health`: each member's own answer to a ping, so it stays
/// true with no leader.
#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    pub name: String,
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
    pub health: bool,
}

/// A PD member (`GET /pd/api/v1/leader`, and in `/members`).
#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub name: String,
    pub member_id: u64,
    #[serde(default)]
    pub client_urls: Vec<String>,
}

/// `GET /pd/api/v1/members`.
#[derive(Debug, Clone, Deserialize)]
pub struct Members {
    #[serde(default)]
    pub members: Vec<Member>,
    pub leader: Option<Member>,
}

/// `GET /pd/api/v1/regions/check/{kind}`: compact JSON, sent as `application/octet-stream`.
#[derive(Debug, Clone, Deserialize)]
pub struct RegionList {
    pub count: u64,
    #[serde(default)]
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Region {
    pub id: u64,
    #[serde(default)]
    pub peers: Vec<Peer>,
    pub leader: Option<Peer>,
    #[serde(default)]
    pub down_peers: Vec<DownPeer>,
    #[serde(default)]
    pub pending_peers: Vec<Peer>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Peer {
    pub id: u64,
    pub store_id: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DownPeer {
    pub peer: Peer,
    #[serde(default)]
    pub down_seconds: u64,
}

/// `GET /pd/api/v1/scheduler-config/evict-leader-scheduler/list`: the stores whose leaders
/// it moves away, by id (as strings: JSON object keys).
#[derive(Debug, Clone, Deserialize)]
pub struct EvictLeaderConfig {
    #[serde(rename = "store-id-ranges", default)]
    pub store_id_ranges: std::collections::BTreeMap<String, serde_json::Value>,
}

impl EvictLeaderConfig {
    pub fn store_ids(&self) -> Vec<u64> {
        self.store_id_ranges
            .keys()
            .filter_map(|k| k.parse().ok())
            .collect()
    }
}

/// `GET /pd/api/v1/cluster/status`, answered even before any store joined. Go's zero time
/// (`0001-01-01T00:00:00Z`) as the bootstrap time says no TiKV has bootstrapped the cluster.
/// `is_initialized` is narrower: more than one region, or the first with all its replicas.
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterStatus {
    pub raft_bootstrap_time: String,
    #[serde(default)]
    pub is_initialized: bool,
}

impl ClusterStatus {
    pub fn bootstrapped(&self) -> bool {
        !self.raft_bootstrap_time.starts_with("0001-01-01")
    }
}

/// `GET /pd/api/v1/config/replicate`: how many replicas each region should have (its
/// booleans are strings, and not read).
#[derive(Debug, Clone, Deserialize)]
pub struct Replication {
    #[serde(rename = "max-replicas")]
    pub max_replicas: u64,
}

/// `GET /pd/api/v1/stats/region`: the regions PD knows (its maps by store id are not read).
#[derive(Debug, Clone, Deserialize)]
pub struct RegionStats {
    pub count: u64,
    #[serde(default)]
    pub empty_count: u64,
}

/// The region checks the observer asks for, by PD's names.
pub const REGION_CHECKS: [&str; 5] = [
    "miss-peer",
    "down-peer",
    "pending-peer",
    "offline-peer",
    "extra-peer",
];

/// A size as PD writes it: Go's `units.BytesSize`, `%.4g` and a binary unit with no space
/// (`"97.87GiB"`, `"1.598TiB"`, `"512B"`, `"1e+03KiB"`). Lossy by four digits; exact bytes
/// come from metrics.
pub fn parse_size(text: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 9] = [
        ("KiB", 1 << 10),
        ("MiB", 1 << 20),
        ("GiB", 1 << 30),
        ("TiB", 1 << 40),
        ("PiB", 1 << 50),
        ("EiB", 1 << 60),
        ("ZiB", 0),
        ("YiB", 0),
        ("B", 1),
    ];
    let text = text.trim();
    let (unit, scale) = UNITS.iter().find(|(u, _)| text.ends_with(u))?;
    let number: f64 = text[..text.len() - unit.len()].trim().parse().ok()?;
    if *scale == 0 || !number.is_finite() || number < 0.0 {
        return None;
    }
    let bytes = number * *scale as f64;
    (bytes < u64::MAX as f64).then_some(bytes.round() as u64)
}

/// What a failed PD request said: a handler's JSON string literal
/// (`"[PD:cluster:ErrNotBootstrapped]…"`) or a redirect's plain text, trimmed.
pub fn error_text(body: &str) -> String {
    let t = body.trim();
    serde_json::from_str::<String>(t).unwrap_or_else(|_| t.to_string())
}

/// Whether PD said no member leads (a follower's 503 after waiting for one).
pub fn says_no_leader(status: u16, body: &str) -> bool {
    status == 503 || error_text(body).contains("ErrRedirectNoLeader")
}

/// Whether PD said no TiKV has joined yet.
pub fn says_not_bootstrapped(body: &str) -> bool {
    error_text(body).contains("ErrNotBootstrapped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_go_writes_them() {
        assert_eq!(parse_size("512B"), Some(512));
        assert_eq!(parse_size("1KiB"), Some(1024));
        assert_eq!(
            parse_size("97.87GiB"),
            Some((97.87 * (1u64 << 30) as f64).round() as u64)
        );
        assert_eq!(
            parse_size("1.598TiB"),
            Some((1.598 * (1u64 << 40) as f64).round() as u64)
        );
        assert_eq!(parse_size("1e+03KiB"), Some(1_024_000));
        assert_eq!(parse_size("0B"), Some(0));
        for bad in ["", "GiB", "12", "1.2GB", "-1KiB", "NaNB"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_are_read_from_json_strings_and_plain_text() {
        let not = "\"[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first\"";
        assert!(says_not_bootstrapped(not));
        assert!(error_text(not).starts_with("[PD:cluster:"));
        let redirect = "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n";
        assert!(says_no_leader(503, redirect));
        assert_eq!(error_text(redirect), redirect.trim());
    }
}
