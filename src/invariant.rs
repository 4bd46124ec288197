//! The vocabulary of invariants, on the ground floor: subjects speak it when they judge an
//! observation, the config when it overrides a rule, tickets and the store when they keep a
//! violation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// What the config may say of one invariant: each field left out keeps the subject's default.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleOverride {
    pub enabled: Option<bool>,
    pub severity: Option<Severity>,
    /// How long a violation must last before it opens a ticket.
    #[serde(with = "humantime_serde::option")]
    pub grace: Option<Duration>,
}

/// An invariant as configured: what it promises, how bad a break is, how long to wait.
#[derive(Debug, Clone, Serialize)]
pub struct InvariantInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub severity: Severity,
    /// A violation must persist this long before it opens a ticket.
    #[serde(with = "humantime_serde")]
    pub grace: Duration,
    pub enabled: bool,
}

/// A subject's invariants: its defaults (name, what it promises, severity, grace), each
/// overridden by what the config says of it (`overrides(name)`).
pub fn catalogue(
    defaults: &[(&'static str, &'static str, Severity, Duration)],
    overrides: impl Fn(&str) -> Option<RuleOverride>,
) -> Vec<InvariantInfo> {
    defaults
        .iter()
        .map(|&(name, description, severity, grace)| {
            let o = overrides(name).unwrap_or_default();
            InvariantInfo {
                name,
                description,
                severity: o.severity.unwrap_or(severity),
                grace: o.grace.unwrap_or(grace),
                enabled: o.enabled.unwrap_or(true),
            }
        })
        .collect()
}

/// One invariant's violations follow from another's: two members down take the quorum with
/// them, so their tickets are one incident. A subject declares these; the monitor hands them
/// to the store as data, and the store groups tickets by them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Consequence {
    pub invariant: &'static str,
    /// The invariants whose violations cause this one.
    pub follows_from: &'static [&'static str],
    /// Only from a violation on the same entity (a node degraded because that node is down),
    /// not from one anywhere in the instance (a quorum lost because some member is down).
    pub same_entity: bool,
}

impl Consequence {
    /// Whether a violation of `invariant` on `entity` follows from one of `cause` on
    /// `cause_entity` under these declarations.
    pub fn follows(
        declared: &[Consequence],
        (invariant, entity): (&str, &str),
        (cause, cause_entity): (&str, &str),
    ) -> bool {
        declared.iter().any(|c| {
            c.invariant == invariant
                && c.follows_from.contains(&cause)
                && (!c.same_entity || entity == cause_entity)
        })
    }
}

/// One broken promise about one entity (a node, a key, the subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub entity: String,
    pub severity: Severity,
    /// One line a person reads first.
    pub summary: String,
    /// The evidence, as observed.
    pub detail: serde_json::Value,
}

/// Part of the invariant space an observation could not decide: an invariant for one entity,
/// or for all of them (`entity: None`). Tickets inside it are neither refreshed nor resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub invariant: String,
    pub entity: Option<String>,
    pub reason: String,
}

impl Scope {
    pub fn covers(&self, invariant: &str, entity: &str) -> bool {
        self.invariant == invariant && self.entity.as_deref().is_none_or(|e| e == entity)
    }
}

/// The invariants' verdict on one observation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Assessment {
    pub violations: Vec<Violation>,
    pub unknown: Vec<Scope>,
}

impl Assessment {
    pub fn is_unknown(&self, invariant: &str, entity: &str) -> bool {
        self.unknown.iter().any(|s| s.covers(invariant, entity))
    }

    pub fn unknown_all(&mut self, invariant: &str, reason: impl Into<String>) {
        self.unknown.push(Scope {
            invariant: invariant.into(),
            entity: None,
            reason: reason.into(),
        });
    }

    pub fn unknown_for(&mut self, invariant: &str, entity: &str, reason: impl Into<String>) {
        self.unknown.push(Scope {
            invariant: invariant.into(),
            entity: Some(entity.into()),
            reason: reason.into(),
        });
    }
}

/// An assessment under way against a catalogue: a violation of an invariant the config
/// disabled, or does not list, is dropped; one that counts carries its severity.
pub struct Checker<'a> {
    rules: std::collections::HashMap<&'static str, &'a InvariantInfo>,
    pub out: Assessment,
}

impl<'a> Checker<'a> {
    pub fn new(rules: &'a [InvariantInfo]) -> Self {
        Self {
            rules: rules.iter().map(|r| (r.name, r)).collect(),
            out: Assessment::default(),
        }
    }

    pub fn violate(
        &mut self,
        invariant: &str,
        entity: &str,
        summary: String,
        detail: serde_json::Value,
    ) {
        let Some(rule) = self.rules.get(invariant).filter(|r| r.enabled) else {
            return;
        };
        self.out.violations.push(Violation {
            invariant: invariant.into(),
            entity: entity.into(),
            severity: rule.severity,
            summary,
            detail,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_for_all_entities_covers_each() {
        let mut a = Assessment::default();
        a.unknown_all("over_limit", "redis unreachable");
        a.unknown_for("node_degraded", "ratelimiter-2", "down");
        assert!(a.is_unknown("over_limit", "user:1"));
        assert!(a.is_unknown("node_degraded", "ratelimiter-2"));
        assert!(!a.is_unknown("node_degraded", "ratelimiter-1"));
        assert!(!a.is_unknown("node_down", "ratelimiter-2"));
    }
}
