//! The rate limiter's section of the config (`[ratelimiter]`): its nodes, their settings and
//! the monitor's thresholds, with the checks types cannot express.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::invariant::RuleOverride;

/// The rate limiter subject: its nodes, their programs and images, their settings and the
/// monitor's thresholds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimiterConfig {
    /// Rate-limiter nodes (plus one Redis).
    pub nodes: u8,
    /// The Redis server program on the local runtime (a name on PATH or a path).
    pub redis_server: String,
    /// The `ratelimiter` program on the local runtime; by default the one next to the
    /// `operator` binary.
    pub ratelimiter_bin: Option<PathBuf>,
    /// The images on the Docker runtime, built by `./scripts/build-images.sh`.
    pub image: String,
    pub redis_image: String,
    pub default_limit: u64,
    pub default_window_ms: u64,
    pub node_ttl_seconds: u64,
    pub node_heartbeat_seconds: u64,
    /// A node's timeout on each Redis call.
    pub redis_timeout_ms: u64,
    /// How long the monitor waits for any one probe.
    #[serde(with = "humantime_serde")]
    pub probe_timeout: Duration,
    /// The most counter keys one observation reads.
    pub max_keys: usize,
    pub thresholds: RateLimiterThresholds,
    pub invariants: RateLimiterInvariants,
}

impl Default for RateLimiterConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            redis_server: "redis-server".into(),
            ratelimiter_bin: None,
            image: "operator/ratelimiter".into(),
            redis_image: "operator/redis".into(),
            default_limit: 100,
            default_window_ms: 60_000,
            node_ttl_seconds: 30,
            node_heartbeat_seconds: 10,
            redis_timeout_ms: 1000,
            probe_timeout: Duration::from_millis(500),
            max_keys: 10_000,
            thresholds: RateLimiterThresholds::default(),
            invariants: RateLimiterInvariants::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimiterThresholds {
    /// `high_latency` fires when a node's p99 of `/check` exceeds this.
    pub latency_p99_ms: f64,
    /// The window the p99 is computed over.
    #[serde(with = "humantime_serde")]
    pub latency_window: Duration,
    /// Fewer requests than this in the window: too few to judge.
    pub latency_min_samples: u64,
    /// `counter_drift` fires when a node's count for a key differs from Redis by more.
    pub drift_tolerance: u64,
    /// Redis counts as degraded above this share of `maxmemory`.
    pub redis_memory_ratio: f64,
    /// `low_disk_space` fires when Redis's data volume is fuller than this (percent).
    pub disk_used_percent: f64,
}

impl Default for RateLimiterThresholds {
    fn default() -> Self {
        Self {
            latency_p99_ms: 100.0,
            latency_window: Duration::from_secs(10),
            latency_min_samples: 20,
            drift_tolerance: 5,
            redis_memory_ratio: 0.9,
            disk_used_percent: 80.0,
        }
    }
}

/// Per-invariant overrides; anything left out keeps the subject's default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimiterInvariants {
    pub node_down: RuleOverride,
    pub node_degraded: RuleOverride,
    pub redis_down: RuleOverride,
    pub high_latency: RuleOverride,
    pub over_limit: RuleOverride,
    pub counter_drift: RuleOverride,
    pub registry_mismatch: RuleOverride,
    pub subject_unreachable: RuleOverride,
}

impl RateLimiterInvariants {
    pub fn get(&self, invariant: &str) -> Option<&RuleOverride> {
        Some(match invariant {
            "node_down" => &self.node_down,
            "node_degraded" => &self.node_degraded,
            "redis_down" => &self.redis_down,
            "high_latency" => &self.high_latency,
            "over_limit" => &self.over_limit,
            "counter_drift" => &self.counter_drift,
            "registry_mismatch" => &self.registry_mismatch,
            "subject_unreachable" => &self.subject_unreachable,
            _ => return None,
        })
    }
}

impl crate::config::Section for RateLimiterConfig {
    const NAME: &'static str = super::topology::SUBJECT;

    /// Checks that cannot be expressed in types: the offending key and why.
    fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        let rl = self;
        if !(1..=9).contains(&rl.nodes) {
            return bad(
                "ratelimiter.nodes",
                format!("{} nodes: choose 1 to 9", rl.nodes),
            );
        }
        if rl.default_limit == 0 {
            return bad("ratelimiter.default_limit", "must be at least 1".into());
        }
        if rl.default_window_ms == 0 {
            return bad("ratelimiter.default_window_ms", "must be at least 1".into());
        }
        if rl.node_heartbeat_seconds == 0 || rl.node_heartbeat_seconds >= rl.node_ttl_seconds {
            return bad(
                "ratelimiter.node_heartbeat_seconds",
                format!(
                    "must be at least 1 and shorter than node_ttl_seconds ({})",
                    rl.node_ttl_seconds
                ),
            );
        }
        if rl.probe_timeout.is_zero() {
            return bad("ratelimiter.probe_timeout", "must be more than 0".into());
        }
        let ratio = rl.thresholds.redis_memory_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return bad(
                "ratelimiter.thresholds.redis_memory_ratio",
                format!("{ratio} is not a share between 0 and 1"),
            );
        }
        let disk = rl.thresholds.disk_used_percent;
        if !(disk > 0.0 && disk <= 100.0) {
            return bad(
                "ratelimiter.thresholds.disk_used_percent",
                format!("{disk} is not a percentage between 0 and 100"),
            );
        }
        Ok(())
    }
}
