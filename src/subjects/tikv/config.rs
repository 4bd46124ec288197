//! The `[tikv]` section: where PD's and TiKV's programs are (the local runtime) or which
//! images run them (Docker), how many of each, and the monitor's thresholds.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::invariant::RuleOverride;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TikvConfig {
    /// PD members: an odd number, so that a majority is well defined.
    pub pd_members: u8,
    /// TiKV stores: three hold the default three replicas with no spare.
    pub stores: u8,
    /// The `pd-server` program on the local runtime; when it is not found, TiUP's
    /// components folder is searched.
    pub pd_bin: String,
    /// The `tikv-server` program on the local runtime, found the same way.
    pub tikv_bin: String,
    /// TiUP's home (`~/.tiup` when unset), whose `components/pd/*/` and `components/tikv/*/`
    /// hold the programs `tiup install pd tikv` fetched.
    pub tiup_home: Option<PathBuf>,
    /// The images on the Docker runtime, pinned.
    pub pd_image: String,
    pub tikv_image: String,
    /// How long the monitor waits for any one probe.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    pub thresholds: TikvThresholds,
    /// Per-invariant overrides by name, e.g. `[tikv.invariants.leader_imbalance]`.
    pub invariants: BTreeMap<String, RuleOverride>,
}

impl Default for TikvConfig {
    fn default() -> Self {
        Self {
            pd_members: 3,
            stores: 3,
            pd_bin: "pd-server".into(),
            tikv_bin: "tikv-server".into(),
            tiup_home: None,
            pd_image: "pingcap/pd:v8.5.7".into(),
            tikv_image: "pingcap/tikv:v8.5.7".into(),
            probe_timeout: Duration::from_millis(800),
            thresholds: TikvThresholds::default(),
            invariants: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TikvThresholds {
    /// `low_space` fires when a store's available space is below this share of its capacity
    /// (percent), or below its reserve.
    pub available_percent: f64,
    /// `leader_imbalance` fires when a store holds fewer leaders than this share of an even
    /// split (percent), once there are at least `leader_min_regions` leaders in all.
    pub leader_share_percent: f64,
    pub leader_min_regions: u64,
    /// `high_latency` fires when a store's gRPC p99 over `latency_window` exceeds this,
    /// judged on at least `latency_min_samples` requests.
    pub grpc_p99_ms: f64,
    #[serde(with = "humantime_serde")]
    pub latency_window: Duration,
    pub latency_min_samples: u64,
}

impl Default for TikvThresholds {
    fn default() -> Self {
        Self {
            available_percent: 10.0,
            leader_share_percent: 25.0,
            leader_min_regions: 6,
            grpc_p99_ms: 500.0,
            latency_window: Duration::from_secs(30),
            latency_min_samples: 5,
        }
    }
}

impl crate::config::Section for TikvConfig {
    const NAME: &'static str = super::topology::SUBJECT;

    /// Checks types cannot express: the key under `[tikv]` at fault and why.
    fn validate(&self) -> Result<(), (String, String)> {
        let known_invariants = super::check::NAMES;
        let bad = |k: &str, m: String| Err((format!("tikv.{k}"), m));
        if !(1..=7).contains(&self.pd_members) || self.pd_members % 2 == 0 {
            return bad(
                "pd_members",
                format!(
                    "{} PD members: choose 1, 3, 5 or 7 (an odd number has a clear majority)",
                    self.pd_members
                ),
            );
        }
        if !(1..=7).contains(&self.stores) {
            return bad("stores", format!("{} stores: choose 1 to 7", self.stores));
        }
        if self.probe_timeout.is_zero() {
            return bad("probe_timeout", "must be more than 0".into());
        }
        for (key, v) in [
            (
                "thresholds.available_percent",
                self.thresholds.available_percent,
            ),
            (
                "thresholds.leader_share_percent",
                self.thresholds.leader_share_percent,
            ),
        ] {
            if !(v > 0.0 && v <= 100.0) {
                return bad(key, format!("{v} is not a percentage between 0 and 100"));
            }
        }
        if self.thresholds.latency_window.is_zero() {
            return bad("thresholds.latency_window", "must be more than 0".into());
        }
        for name in self.invariants.keys() {
            if !known_invariants.contains(&name.as_str()) {
                return bad(
                    &format!("invariants.{name}"),
                    format!(
                        "unknown invariant `{name}`; tikv's invariants: {}",
                        known_invariants.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }
}
