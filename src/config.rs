//! One TOML file with defaults good enough that none is needed.
//!
//! Precedence: flags over environment (`OPERATOR_*`, handled by the CLI) over this file over
//! the defaults below. An invalid file is reported with its path, line and key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::subjects::Severity;

/// Everything Operator can be told.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// State directory; `--state-dir` / `OPERATOR_STATE_DIR` win over it.
    pub state_dir: Option<PathBuf>,
    /// Ticket DB; `--db` / `OPERATOR_DB` win over it. Default `<state dir>/operator.db`.
    pub db: Option<PathBuf>,
    pub runtime: RuntimeConfig,
    pub monitor: MonitorConfig,
    pub tickets: TicketsConfig,
    pub chaos: ChaosConfig,
    pub ratelimiter: RateLimiterConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Local,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    pub kind: RuntimeKind,
    pub local: LocalRuntimeConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocalRuntimeConfig {
    /// The Redis server program (a name on PATH or a path).
    pub redis_server: String,
    /// The `ratelimiter` program; by default the one next to the `operator` binary.
    pub ratelimiter_bin: Option<PathBuf>,
    /// Fixed ports: node i of instance n listens on `base_port + 10*n + i`. Unset: free
    /// ports are picked.
    pub base_port: Option<u16>,
    /// How long `up` and `node start` wait for a node to become healthy.
    #[serde(with = "humantime_serde")]
    pub startup_timeout: Duration,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
}

impl Default for LocalRuntimeConfig {
    fn default() -> Self {
        Self {
            redis_server: "redis-server".into(),
            ratelimiter_bin: None,
            base_port: None,
            startup_timeout: Duration::from_secs(15),
            stop_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// The subject watched when none is named.
    pub subject: String,
    /// Time between observations; at least 100ms.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self {
            subject: "ratelimiter".into(),
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    /// A violation that comes back within this time of its ticket's resolution reopens that
    /// ticket (and counts an occurrence) instead of opening a new one.
    #[serde(with = "humantime_serde")]
    pub flap_window: Duration,
}

impl Default for TicketsConfig {
    fn default() -> Self {
        Self {
            flap_window: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChaosConfig {
    /// Default durations per fault, after which it heals itself. A fault missing here does not
    /// heal itself unless `--duration` is given.
    #[serde(with = "durations")]
    pub durations: BTreeMap<String, Duration>,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        Self {
            durations: BTreeMap::from([("pause".to_string(), Duration::from_secs(60))]),
        }
    }
}

mod durations {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.iter()
            .map(|(k, v)| (k.clone(), humantime::format_duration(*v).to_string()))
            .collect::<BTreeMap<_, _>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Duration>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| {
                humantime::parse_duration(&v)
                    .map(|d| (k, d))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}

/// The rate limiter subject: its nodes, their settings and the monitor's thresholds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimiterConfig {
    /// Rate-limiter nodes (plus one Redis).
    pub nodes: u8,
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
}

impl Default for RateLimiterThresholds {
    fn default() -> Self {
        Self {
            latency_p99_ms: 100.0,
            latency_window: Duration::from_secs(10),
            latency_min_samples: 20,
            drift_tolerance: 5,
            redis_memory_ratio: 0.9,
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

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    /// How long a violation must last before it opens a ticket.
    #[serde(with = "humantime_serde::option")]
    pub grace: Option<Duration>,
}

/// What went wrong reading a config file, with where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}, line {line}, key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("config file {path}, line {line}: {message}: `{text}`")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
        /// The offending line.
        text: String,
    },
}

impl Config {
    /// The file used when neither `--config` nor `OPERATOR_CONFIG` names one; it may be absent.
    pub fn default_path() -> Option<PathBuf> {
        dirs::config_dir().map(|d| d.join("operator").join("config.toml"))
    }

    /// Reads `explicit` (which must exist), else the default file if it exists, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        match explicit {
            Some(path) => Self::from_file(path),
            None => match Self::default_path().filter(|p| p.exists()) {
                Some(path) => Self::from_file(&path),
                None => Ok(Self::default()),
            },
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses `text`; `path` only names the file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let syntax = |e: toml::de::Error| {
            let line = e.span().map_or(1, |s| line_at(text, s.start));
            ConfigError::Syntax {
                path: path.to_path_buf(),
                line,
                message: e.message().trim().to_string(),
                text: text
                    .lines()
                    .nth(line - 1)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }
        };
        let de = toml::Deserializer::parse(text).map_err(syntax)?;
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| line_at(text, s.start))
                .or_else(|| line_of_key(text, &key))
                .unwrap_or(1);
            ConfigError::Invalid {
                path: path.to_path_buf(),
                line,
                key,
                message: inner.message().to_string(),
            }
        })?;
        config
            .validate()
            .map_err(|(key, message)| ConfigError::Invalid {
                path: path.to_path_buf(),
                line: line_of_key(text, &key).unwrap_or(1),
                key,
                message,
            })?;
        Ok(config)
    }

    /// Checks that cannot be expressed in types. Returns the offending key and why.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_string(), m));
        if self.monitor.interval < Duration::from_millis(100) {
            return bad(
                "monitor.interval",
                format!(
                    "{} is too short: the monitor observes at most every 100ms",
                    humantime::format_duration(self.monitor.interval)
                ),
            );
        }
        let rl = &self.ratelimiter;
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
        for fault in self.chaos.durations.keys() {
            if !crate::chaos::FaultKind::NAMES.contains(&fault.as_str()) {
                return bad(
                    &format!("chaos.durations.{fault}"),
                    format!(
                        "unknown fault; known faults: {}",
                        crate::chaos::FaultKind::NAMES.join(", ")
                    ),
                );
            }
        }
        Ok(())
    }
}

fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Finds the line that sets a dotted key such as `ratelimiter.thresholds.drift_tolerance`,
/// following `[table]` headers. Good enough for the files people write by hand.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let mut table = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = header.trim().to_string();
            if table == dotted {
                return Some(i + 1);
            }
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            let full = if table.is_empty() {
                k.to_string()
            } else {
                format!("{table}.{k}")
            };
            if full == dotted || dotted.starts_with(&format!("{full}.")) {
                return Some(i + 1);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("operator.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.monitor.interval, Duration::from_secs(1));
        assert_eq!(c.ratelimiter.nodes, 3);
        assert_eq!(c.tickets.flap_window, Duration::from_secs(300));
    }

    #[test]
    fn the_example_file_is_valid_and_matches_the_defaults() {
        let text = include_str!("../operator.example.toml");
        let c = parse(text).unwrap();
        let d = Config::default();
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            serde_json::to_value(&d).unwrap(),
            "operator.example.toml should document the defaults"
        );
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse("[monitor]\ninterval = \"2s\"\nintervall = \"3s\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("operator.toml"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("intervall"), "{msg}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse("[ratelimiter]\nnodes = \"three\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("ratelimiter.nodes"), "{msg}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let err = parse("\n[ratelimiter.invariants.node_down]\ngrace = \"soon\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(
            msg.contains("ratelimiter.invariants.node_down.grace"),
            "{msg}"
        );
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = parse("[monitor]\ninterval = \n").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { line: 2, .. }), "{err}");
        let err = parse("a = 1\nstate_dir = \"x\"\nstate_dir = \"y\"\n").unwrap_err();
        assert!(
            err.to_string().contains("line 3") && err.to_string().contains("state_dir = \"y\""),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_are_refused_with_their_line() {
        let err = parse("[monitor]\n\ninterval = \"10ms\"\n").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("line 3") && msg.contains("monitor.interval"),
            "{msg}"
        );
        let err = parse("[chaos.durations]\nmeltdown = \"1s\"\n").unwrap_err();
        assert!(err.to_string().contains("node_kill"), "{err}");
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/operator.toml"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/operator.toml"));
    }
}
