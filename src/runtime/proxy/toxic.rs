//! What a fault does to a link, in toxiproxy's terms: each toxic is owned by a tag (the fault
//! that set it), and a link's effect is all its toxics together.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How a partitioned link fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionMode {
    /// Connections are refused, open ones closed: the peer knows at once.
    Refuse,
    /// Nothing gets through and nothing is said, like dropped packets: the peer waits.
    /// Bytes are held, not lost, as TCP would retransmit them once the link heals.
    Blackhole,
}

impl PartitionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Refuse => "refuse",
            Self::Blackhole => "blackhole",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refuse" => Some(Self::Refuse),
            "blackhole" => Some(Self::Blackhole),
            _ => None,
        }
    }
}

/// One effect on a link, in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Toxic {
    /// Every chunk of the answer waits `delay_ms` ± up to `jitter_ms`; order is kept.
    Latency {
        delay_ms: u64,
        jitter_ms: u64,
    },
    Partition {
        mode: PartitionMode,
    },
    /// At most this many bytes per second on each connection, each way.
    Bandwidth {
        bytes_per_sec: u64,
    },
}

/// A toxic as a link holds it: on every connection, or only on those one node dialed (to cut
/// a node off from peers it reaches through links that are not its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(flatten)]
    pub toxic: Toxic,
    /// Only connections dialed by the process that listens on this address (see `dialer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialed_by: Option<SocketAddr>,
}

impl From<Toxic> for Rule {
    fn from(toxic: Toxic) -> Self {
        Self {
            toxic,
            dialed_by: None,
        }
    }
}

/// The combined effect of a link's toxics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effect {
    pub partition: Option<PartitionMode>,
    pub delay: Duration,
    pub jitter: Duration,
    pub bytes_per_sec: Option<u64>,
}

impl Effect {
    /// Toxics add up: delays sum, the tightest bandwidth wins, and a refusal outranks a
    /// black hole.
    pub fn of<'a>(toxics: impl IntoIterator<Item = &'a Toxic>) -> Self {
        let mut e = Self::default();
        for t in toxics {
            match *t {
                Toxic::Latency {
                    delay_ms,
                    jitter_ms,
                } => {
                    e.delay += Duration::from_millis(delay_ms);
                    e.jitter += Duration::from_millis(jitter_ms);
                }
                Toxic::Partition { mode } => {
                    e.partition = match (e.partition, mode) {
                        (Some(PartitionMode::Refuse), _) | (_, PartitionMode::Refuse) => {
                            Some(PartitionMode::Refuse)
                        }
                        _ => Some(PartitionMode::Blackhole),
                    }
                }
                Toxic::Bandwidth { bytes_per_sec } => {
                    let b = bytes_per_sec.max(1);
                    e.bytes_per_sec = Some(e.bytes_per_sec.map_or(b, |x| x.min(b)));
                }
            }
        }
        e
    }

    /// The delay for one chunk, `unit` in [-1, 1] choosing where in the jitter it falls.
    pub fn delay_for(&self, unit: f64) -> Duration {
        let jitter = self.jitter.as_secs_f64() * unit.clamp(-1.0, 1.0);
        Duration::from_secs_f64((self.delay.as_secs_f64() + jitter).max(0.0))
    }

    /// How long `bytes` take at the link's bandwidth.
    pub fn transfer_time(&self, bytes: usize) -> Duration {
        self.bytes_per_sec.map_or(Duration::ZERO, |rate| {
            Duration::from_secs_f64(bytes as f64 / rate as f64)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(toxics: &[(&str, Toxic)]) -> Vec<Toxic> {
        toxics.iter().map(|(_, t)| *t).collect()
    }

    #[test]
    fn no_toxics_no_effect() {
        assert_eq!(Effect::of(std::iter::empty()), Effect::default());
    }

    #[test]
    fn toxics_add_up() {
        let e = Effect::of(&set(&[
            (
                "a",
                Toxic::Latency {
                    delay_ms: 100,
                    jitter_ms: 10,
                },
            ),
            (
                "b",
                Toxic::Latency {
                    delay_ms: 50,
                    jitter_ms: 0,
                },
            ),
            (
                "c",
                Toxic::Bandwidth {
                    bytes_per_sec: 1000,
                },
            ),
            ("d", Toxic::Bandwidth { bytes_per_sec: 500 }),
            (
                "e",
                Toxic::Partition {
                    mode: PartitionMode::Blackhole,
                },
            ),
            (
                "f",
                Toxic::Partition {
                    mode: PartitionMode::Refuse,
                },
            ),
        ]));
        assert_eq!(e.delay, Duration::from_millis(150));
        assert_eq!(e.jitter, Duration::from_millis(10));
        assert_eq!(e.bytes_per_sec, Some(500));
        assert_eq!(e.partition, Some(PartitionMode::Refuse));
        assert_eq!(e.transfer_time(250), Duration::from_millis(500));
    }

    #[test]
    fn jitter_stays_within_bounds_and_never_negative() {
        let e = Effect {
            delay: Duration::from_millis(20),
            jitter: Duration::from_millis(50),
            ..Effect::default()
        };
        assert_eq!(e.delay_for(0.0), Duration::from_millis(20));
        assert_eq!(e.delay_for(1.0), Duration::from_millis(70));
        assert_eq!(e.delay_for(-1.0), Duration::ZERO);
        assert_eq!(e.delay_for(7.0), Duration::from_millis(70));
    }

    #[test]
    fn toxics_read_as_toxiproxy_like_json() {
        let t: Toxic =
            serde_json::from_str(r#"{"type":"latency","delay_ms":200,"jitter_ms":20}"#).unwrap();
        assert_eq!(
            t,
            Toxic::Latency {
                delay_ms: 200,
                jitter_ms: 20
            }
        );
        let t: Toxic = serde_json::from_str(r#"{"type":"partition","mode":"refuse"}"#).unwrap();
        assert_eq!(
            t,
            Toxic::Partition {
                mode: PartitionMode::Refuse
            }
        );
    }

    #[test]
    fn a_rule_is_its_toxic_with_an_optional_dialer() {
        let plain = Rule::from(Toxic::Partition {
            mode: PartitionMode::Blackhole,
        });
        let json = serde_json::to_string(&plain).unwrap();
        assert_eq!(json, r#"{"type":"partition","mode":"blackhole"}"#);
        let scoped: Rule = serde_json::from_str(
            r#"{"type":"partition","mode":"blackhole","dialed_by":"127.0.0.1:2379"}"#,
        )
        .unwrap();
        assert_eq!(scoped.toxic, plain.toxic);
        assert_eq!(scoped.dialed_by, Some("127.0.0.1:2379".parse().unwrap()));
        assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), plain);
    }
}
