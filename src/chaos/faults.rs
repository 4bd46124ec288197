//! The fault catalogue, and a fault with its parameters.

use serde::{Deserialize, Serialize};

use super::subject::{FaultAction, SubjectFaults};
use crate::runtime::Impairment;
use crate::runtime::impair::PartitionMode;

/// A fault a subject adds to the catalogue: its name, words, and how a target is drawn. Its
/// `action` injects and heals it.
pub struct SubjectFault {
    pub subject: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub heal_action: &'static str,
    pub verb: &'static str,
    /// The node it aims at when none is named; `None`: a random node fit for faults.
    pub default_target: Option<&'static str>,
    /// Whether an agent's commands can end it (else the best is a localized escalation).
    pub repairable: bool,
    /// The subject's code that applies and undoes it.
    pub action: &'static dyn FaultAction,
}

impl std::fmt::Debug for SubjectFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.subject)
    }
}

/// The subjects' own faults, as the top floor tells them at start ([`know`]): names read back
/// from the ledger and from stored plans are found here. Chaos does not look subjects up.
static KNOWN: std::sync::OnceLock<Vec<&'static SubjectFault>> = std::sync::OnceLock::new();

/// Tells chaos every subject's own faults, so that their names read back from the ledger and
/// from stored plans. The first call counts; later ones change nothing.
pub fn know(faults: Vec<&'static SubjectFault>) {
    let _ = KNOWN.set(faults);
}

/// A subject's fault, named by its name in the ledger, campaigns and plans.
#[derive(Clone, Copy)]
pub struct OwnRef(pub &'static SubjectFault);

impl OwnRef {
    /// The subject fault called `name`, among those chaos was told of ([`know`]).
    pub fn find(name: &str) -> Option<Self> {
        KNOWN
            .get()
            .into_iter()
            .flatten()
            .find(|f| f.name == name)
            .map(|f| OwnRef(f))
    }
}

impl std::fmt::Debug for OwnRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.name)
    }
}

impl PartialEq for OwnRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for OwnRef {}

impl std::hash::Hash for OwnRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.name.hash(state)
    }
}

impl Serialize for OwnRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for OwnRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::find(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown subject fault `{name}`")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// SIGKILL (or `docker kill`): the node stays dead until someone starts it.
    NodeKill,
    /// SIGSTOP (or `docker pause`): the node holds its connections but answers nothing.
    Pause,
    Latency,
    NetworkPartition,
    Bandwidth,
    DiskPressure,
    /// One a subject adds (etcd's `nospace`, …).
    Own(OwnRef),
}

impl Serialize for FaultKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FaultKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown fault `{name}`; faults: {}",
                Self::NAMES.join(", ")
            ))
        })
    }
}

impl FaultKind {
    /// The generic faults, which every subject takes.
    pub const ALL: [FaultKind; 6] = [
        Self::NodeKill,
        Self::Pause,
        Self::Latency,
        Self::NetworkPartition,
        Self::Bandwidth,
        Self::DiskPressure,
    ];
    /// Their names.
    pub const NAMES: &'static [&'static str] = &[
        "node_kill",
        "pause",
        "latency",
        "network_partition",
        "bandwidth",
        "disk_pressure",
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeKill => "node_kill",
            Self::Pause => "pause",
            Self::Latency => "latency",
            Self::NetworkPartition => "network_partition",
            Self::Bandwidth => "bandwidth",
            Self::DiskPressure => "disk_pressure",
            Self::Own(o) => o.0.name,
        }
    }

    /// A generic fault, or one a subject adds.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .or_else(|| OwnRef::find(s).map(Self::Own))
    }

    /// A generic fault or one of `subject`'s own, by name.
    pub fn parse_for(s: &str, subject: &dyn SubjectFaults) -> Option<Self> {
        Self::catalogue(subject)
            .into_iter()
            .find(|k| k.as_str() == s)
    }

    /// The faults `subject` takes: the generic ones, then its own.
    pub fn catalogue(subject: &dyn SubjectFaults) -> Vec<Self> {
        Self::ALL
            .into_iter()
            .chain(subject.own().iter().map(|f| Self::Own(OwnRef(f))))
            .collect()
    }

    /// The names of the generic faults and of `subjects`' own, for messages.
    pub fn names_for(subjects: &[&dyn SubjectFaults]) -> Vec<String> {
        let mut names: Vec<String> = Self::NAMES.iter().map(|n| n.to_string()).collect();
        for s in subjects {
            for f in s.own() {
                names.push(format!("{} ({})", f.name, f.subject));
            }
        }
        names
    }

    /// The subject whose own fault this is; `None` for a generic one.
    pub fn subject(self) -> Option<&'static str> {
        match self {
            Self::Own(o) => Some(o.0.subject),
            _ => None,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::NodeKill => "kill a node; heal starts it again",
            Self::Pause => {
                "freeze a node (it accepts connections but answers nothing); heal resumes it"
            }
            Self::Latency => "delay what a node sends (with jitter); heal removes the delay",
            Self::NetworkPartition => {
                "cut a node off from all its peers, Redis included; heal reconnects it"
            }
            Self::Bandwidth => "throttle a node's links; heal lifts the limit",
            Self::DiskPressure => "fill a node's data volume; heal deletes the fill",
            Self::Own(o) => o.0.description,
        }
    }

    /// What heal does, in words for the ledger.
    pub fn heal_action(self) -> &'static str {
        match self {
            Self::NodeKill => "start",
            Self::Pause => "resume",
            Self::Latency | Self::NetworkPartition | Self::Bandwidth => "restore the network",
            Self::DiskPressure => "free the disk",
            Self::Own(o) => o.0.heal_action,
        }
    }

    /// What `inject` does to this kind's target, in words for refusals.
    pub fn verb(self) -> &'static str {
        match self {
            Self::NodeKill => "kill",
            Self::Pause => "pause",
            Self::Latency => "slow down",
            Self::NetworkPartition => "cut off",
            Self::Bandwidth => "throttle",
            Self::DiskPressure => "fill up",
            Self::Own(o) => o.0.verb,
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault with its parameters, as injected and recorded in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    NodeKill,
    Pause,
    Impair(Impairment),
    /// A subject's own fault: the subject injects and heals it.
    Own {
        name: OwnRef,
    },
}

/// The defaults: a delay well over the `high_latency` threshold, a silent partition (as
/// dropped packets are), a link slow enough to notice, a disk over the usual alert line.
pub const DEFAULT_DELAY_MS: u64 = 150;
pub const DEFAULT_JITTER_MS: u64 = 50;
pub const DEFAULT_BYTES_PER_SEC: u64 = 16 * 1024;
pub const DEFAULT_FILL_PERCENT: u8 = 90;

impl Fault {
    pub fn kind(&self) -> FaultKind {
        match self {
            Self::NodeKill => FaultKind::NodeKill,
            Self::Pause => FaultKind::Pause,
            Self::Impair(Impairment::Latency { .. }) => FaultKind::Latency,
            Self::Impair(Impairment::Partition { .. }) => FaultKind::NetworkPartition,
            Self::Impair(Impairment::Bandwidth { .. }) => FaultKind::Bandwidth,
            Self::Impair(Impairment::DiskFill { .. }) => FaultKind::DiskPressure,
            Self::Own { name } => FaultKind::Own(*name),
        }
    }

    pub fn impairment(&self) -> Option<&Impairment> {
        match self {
            Self::Impair(i) => Some(i),
            _ => None,
        }
    }

    /// The fault a ledger row describes: its parameters, or the kind's defaults for rows
    /// written before faults had parameters.
    pub fn from_record(kind: FaultKind, params: &serde_json::Value) -> Self {
        params
            .get("impairment")
            .and_then(|v| serde_json::from_value::<Impairment>(v.clone()).ok())
            .map(Self::Impair)
            .filter(|f| f.kind() == kind)
            .unwrap_or_else(|| kind.into())
    }
}

/// Why a fault's parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("{fault} takes no parameter `{name}`; {fault} takes {}", expected(.valid))]
    Unknown {
        fault: FaultKind,
        name: String,
        valid: &'static [&'static str],
    },
    #[error("{fault} parameter `{name}`: {message}")]
    Bad {
        fault: FaultKind,
        name: String,
        message: String,
    },
}

/// A delay range from its ends; one end alone is a range of one value.
fn range(min: Option<u64>, max: Option<u64>) -> Option<(u64, u64)> {
    match (min, max) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        (Some(v), None) | (None, Some(v)) => Some((v, v)),
        (None, None) => None,
    }
}

fn expected(valid: &[&str]) -> String {
    if valid.is_empty() {
        "none".into()
    } else {
        valid.join(", ")
    }
}

impl FaultKind {
    /// The parameters this fault takes (campaigns and `eval run --param` name them so).
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Self::NodeKill | Self::Pause | Self::Own(_) => &[],
            Self::Latency => &["delay_ms", "jitter_ms", "min_ms", "max_ms"],
            Self::NetworkPartition => &["mode"],
            Self::Bandwidth => &["bytes_per_sec"],
            Self::DiskPressure => &["percent"],
        }
    }

    /// Whether a command of the agent can end this fault. The fault proxy's impairments sit
    /// outside every node (no restart or config change lifts them): the best an agent can do
    /// is to say where the trouble is and escalate.
    pub fn repairable(self) -> bool {
        match self {
            Self::Latency | Self::NetworkPartition | Self::Bandwidth => false,
            Self::Own(o) => o.0.repairable,
            _ => true,
        }
    }
}

impl Fault {
    /// The kind's defaults with `params` applied; a parameter the kind does not take, or a
    /// value out of range, is refused with its name.
    pub fn with_params(
        kind: FaultKind,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, ParamError> {
        let mut fault = Fault::from(kind);
        for name in params.keys() {
            if !kind.params().contains(&name.as_str()) {
                return Err(ParamError::Unknown {
                    fault: kind,
                    name: name.clone(),
                    valid: kind.params(),
                });
            }
        }
        let bad = |name: &str, message: String| ParamError::Bad {
            fault: kind,
            name: name.into(),
            message,
        };
        let number = |name: &str, min: u64, max: u64| -> Result<Option<u64>, ParamError> {
            let Some(v) = params.get(name) else {
                return Ok(None);
            };
            let n = v
                .as_u64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| bad(name, format!("`{v}` is not a whole number")))?;
            if !(min..=max).contains(&n) {
                return Err(bad(name, format!("{n} is outside {min}..={max}")));
            }
            Ok(Some(n))
        };
        if let Fault::Impair(imp) = &mut fault {
            match imp {
                Impairment::Latency {
                    delay_ms,
                    jitter_ms,
                } => {
                    *delay_ms = number("delay_ms", 1, 600_000)?.unwrap_or(*delay_ms);
                    *jitter_ms = number("jitter_ms", 0, 600_000)?.unwrap_or(*jitter_ms);
                    let min = number("min_ms", 1, 600_000)?;
                    let max = number("max_ms", 1, 600_000)?;
                    if let Some((lo, hi)) = range(min, max) {
                        if lo > hi {
                            return Err(bad("min_ms", format!("{lo} is above max_ms {hi}")));
                        }
                        if params.contains_key("delay_ms") || params.contains_key("jitter_ms") {
                            return Err(bad(
                                "min_ms",
                                "a range (min_ms, max_ms) is drawn from once per trial; give it or delay_ms and jitter_ms, not both".into(),
                            ));
                        }
                        // Not drawn yet (see `draw_delay`): its low end, steady.
                        *delay_ms = lo;
                        *jitter_ms = 0;
                    }
                }
                Impairment::Partition { mode } => {
                    if let Some(v) = params.get("mode") {
                        let s = v.as_str().unwrap_or_default();
                        *mode = PartitionMode::parse(s).ok_or_else(|| {
                            bad("mode", format!("`{v}` is not blackhole or refuse"))
                        })?;
                    }
                }
                Impairment::Bandwidth { bytes_per_sec } => {
                    *bytes_per_sec =
                        number("bytes_per_sec", 1, u64::MAX)?.unwrap_or(*bytes_per_sec);
                }
                Impairment::DiskFill { percent } => {
                    if let Some(p) = number("percent", 1, 100)? {
                        *percent = u8::try_from(p).unwrap_or(100);
                    }
                }
            }
        }
        Ok(fault)
    }

    /// Draws a latency's delay from its range (`min_ms`, `max_ms`) with `pick`: the range
    /// becomes one steady `delay_ms` (and `jitter_ms` 0), so what ran is what is stored and
    /// shown. Parameters without a range are left as they are.
    pub fn draw_delay(params: &mut serde_json::Map<String, serde_json::Value>, pick: u64) {
        let read = |name: &str| {
            params
                .get(name)
                .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
        };
        let Some((lo, hi)) = range(read("min_ms"), read("max_ms")) else {
            return;
        };
        let delay = if lo < hi {
            lo + pick % (hi - lo + 1)
        } else {
            lo
        };
        params.remove("min_ms");
        params.remove("max_ms");
        params.insert("delay_ms".into(), delay.into());
        params.insert("jitter_ms".into(), 0.into());
    }

    /// The parameters of this fault, by the names `with_params` takes.
    pub fn params(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        if let Some(imp) = self.impairment() {
            match *imp {
                Impairment::Latency {
                    delay_ms,
                    jitter_ms,
                } => {
                    m.insert("delay_ms".into(), delay_ms.into());
                    m.insert("jitter_ms".into(), jitter_ms.into());
                }
                Impairment::Partition { mode } => {
                    m.insert("mode".into(), mode.as_str().into());
                }
                Impairment::Bandwidth { bytes_per_sec } => {
                    m.insert("bytes_per_sec".into(), bytes_per_sec.into());
                }
                Impairment::DiskFill { percent } => {
                    m.insert("percent".into(), percent.into());
                }
            }
        }
        m
    }
}

impl From<FaultKind> for Fault {
    fn from(kind: FaultKind) -> Self {
        match kind {
            FaultKind::NodeKill => Self::NodeKill,
            FaultKind::Pause => Self::Pause,
            FaultKind::Latency => Self::Impair(Impairment::Latency {
                delay_ms: DEFAULT_DELAY_MS,
                jitter_ms: DEFAULT_JITTER_MS,
            }),
            FaultKind::NetworkPartition => Self::Impair(Impairment::Partition {
                mode: PartitionMode::Blackhole,
            }),
            FaultKind::Bandwidth => Self::Impair(Impairment::Bandwidth {
                bytes_per_sec: DEFAULT_BYTES_PER_SEC,
            }),
            FaultKind::DiskPressure => Self::Impair(Impairment::DiskFill {
                percent: DEFAULT_FILL_PERCENT,
            }),
            FaultKind::Own(name) => Self::Own { name },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kinds() {
        for (k, n) in FaultKind::ALL.iter().zip(FaultKind::NAMES) {
            assert_eq!(k.as_str(), *n);
            assert_eq!(FaultKind::parse(n), Some(*k));
            assert_eq!(
                Fault::from(*k).kind(),
                *k,
                "defaults of {k} are of its kind"
            );
        }
        assert_eq!(FaultKind::parse("meltdown"), None);
    }

    #[test]
    fn params_are_named_checked_and_round_trip() {
        let map = |v: serde_json::Value| v.as_object().cloned().unwrap();
        let f = Fault::with_params(
            FaultKind::Latency,
            &map(serde_json::json!({"delay_ms": 300, "jitter_ms": "0"})),
        )
        .unwrap();
        assert_eq!(
            f,
            Fault::Impair(Impairment::Latency {
                delay_ms: 300,
                jitter_ms: 0
            })
        );
        assert_eq!(
            Fault::with_params(FaultKind::Latency, &f.params()).unwrap(),
            f
        );
        let err = Fault::with_params(FaultKind::Pause, &map(serde_json::json!({"delay_ms": 1})))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`delay_ms`") && err.contains("takes none"),
            "{err}"
        );
        let err = Fault::with_params(FaultKind::Latency, &map(serde_json::json!({"delay": 1})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("delay_ms, jitter_ms"), "{err}");
        let err = Fault::with_params(
            FaultKind::DiskPressure,
            &map(serde_json::json!({"percent": 120})),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("outside 1..=100"), "{err}");
        let err = Fault::with_params(
            FaultKind::NetworkPartition,
            &map(serde_json::json!({"mode": "drop"})),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("blackhole or refuse"), "{err}");
        assert!(FaultKind::NodeKill.repairable() && !FaultKind::Latency.repairable());
    }

    #[test]
    fn parameters_come_back_from_the_ledger() {
        let f = Fault::Impair(Impairment::Latency {
            delay_ms: 400,
            jitter_ms: 0,
        });
        let params = serde_json::json!({ "duration": "1m", "impairment": f.impairment() });
        assert_eq!(Fault::from_record(FaultKind::Latency, &params), f);
        // Rows from before parameters, or of another kind, fall back to the defaults.
        assert_eq!(
            Fault::from_record(FaultKind::Latency, &serde_json::json!({})),
            FaultKind::Latency.into()
        );
        assert_eq!(Fault::from_record(FaultKind::Pause, &params), Fault::Pause);
    }
}
