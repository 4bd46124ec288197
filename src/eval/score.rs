//! What a trial's agent did, counted from its audit: commands, their classes and decisions,
//! thrashing, whether it named the faulted node, tokens and cost.

use std::collections::{BTreeSet, HashMap};

use crate::agent::audit::{Entry, Kind, Session};
use crate::store::eval::TrialMetrics;
use crate::tickets::{Resolution, Ticket};

/// The same command this many times within [`THRASH_WINDOW_S`] is thrashing.
pub const THRASH_COUNT: usize = 3;
pub const THRASH_WINDOW_S: i64 = 60;

/// Decisions after which a command ran.
const RAN: &[&str] = &["run", "approved", "edited", "allowed_always"];

/// What the sessions of one trial did.
pub struct Counted {
    pub metrics: TrialMetrics,
    /// Whether a command or a session's summary named the target.
    pub localized: bool,
    /// When the first command that changed something ran.
    pub first_change: Option<crate::clock::Timestamp>,
}

/// Counts `sessions` (each with its entries) of a trial whose fault hit `target`.
pub fn count(sessions: &[(Session, Vec<Entry>)], target: Option<&str>) -> Counted {
    let mut m = TrialMetrics::default();
    let mut unique = BTreeSet::new();
    let mut times: HashMap<String, Vec<crate::clock::Timestamp>> = HashMap::new();
    let mut localized = false;
    let mut first_change = None;
    let names = |text: &str| target.is_some_and(|t| !t.is_empty() && text.contains(t));
    for (s, entries) in sessions {
        m.sessions.push(s.id);
        if !m.models.contains(&s.model) {
            m.models.push(s.model.clone());
        }
        m.turns += u32::try_from(s.turns.max(0)).unwrap_or(u32::MAX);
        m.input_tokens += s.input_tokens.max(0) as u64;
        m.output_tokens += s.output_tokens.max(0) as u64;
        m.cost_usd += s.cost_usd;
        if s.summary.as_deref().is_some_and(names) {
            localized = true;
        }
        for e in entries {
            let Some(command) = e.command.as_deref() else {
                if e.kind == Some(Kind::ToolCall)
                    && matches!(e.tool.as_deref(), Some("escalate" | "resolve"))
                    && names(&e.content)
                {
                    localized = true;
                }
                continue;
            };
            match e.kind {
                Some(Kind::ToolCall) => {
                    m.commands += 1;
                    unique.insert(command.to_string());
                    if e.policy.as_deref() == Some("destructive") {
                        m.destructive += 1;
                    }
                    if names(command) || names(&e.content) {
                        localized = true;
                    }
                    if let Some(at) = e.at {
                        times.entry(command.to_string()).or_default().push(at);
                    }
                }
                Some(Kind::Approval) => match e.decision.as_deref() {
                    Some("refused") => m.denied += 1,
                    Some("vetoed") => m.vetoed += 1,
                    Some(d) if RAN.contains(&d) => {
                        let changes =
                            matches!(e.policy.as_deref(), Some("mutating" | "destructive"));
                        if changes {
                            m.mutating += 1;
                            if first_change.is_none() || e.at < first_change {
                                first_change = e.at;
                            }
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    m.unique_commands = unique.len() as u32;
    m.thrashing = times.values().filter(|t| thrashes(t)).count() as u32;
    Counted {
        metrics: m,
        localized,
        first_change,
    }
}

/// Whether some window of [`THRASH_WINDOW_S`] holds [`THRASH_COUNT`] runs of one command.
fn thrashes(times: &[crate::clock::Timestamp]) -> bool {
    let mut t = times.to_vec();
    t.sort();
    t.windows(THRASH_COUNT)
        .any(|w| (w[THRASH_COUNT - 1] - w[0]).num_seconds() <= THRASH_WINDOW_S)
}

/// The tickets of an agent trial that followed from a root and ended `self_healed`: the
/// label says nobody acted, yet an agent worked the trial. A scoring error to show, never a
/// win for the system.
pub fn self_healed_consequences(tickets: &[Ticket]) -> Vec<String> {
    tickets
        .iter()
        .filter(|t| !t.root && t.resolution == Some(Resolution::SelfHealed))
        .map(|t| {
            format!(
                "ticket #{} ({} on {}) of incident #{} resolved self_healed though an agent worked the trial",
                t.id,
                t.invariant,
                t.entity,
                t.incident_id.map_or("?".to_string(), |i| i.to_string())
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(summary: &str) -> Session {
        Session {
            id: 1,
            ticket_id: 1,
            incident_id: Some(1),
            agent_id: "a".into(),
            backend: "runbook".into(),
            model: "runbook".into(),
            mode: "auto".into(),
            variant: "default".into(),
            started_at: crate::clock::now(),
            ended_at: None,
            outcome: None,
            summary: Some(summary.into()),
            turns: 3,
            input_tokens: 10,
            output_tokens: 5,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            cost_usd: 0.5,
            error: None,
        }
    }

    fn call(cmd: &str, class: &str, secs: i64) -> Entry {
        Entry {
            kind: Some(Kind::ToolCall),
            command: Some(cmd.into()),
            policy: Some(class.into()),
            at: Some(crate::clock::now() + chrono::Duration::seconds(secs)),
            ..Entry::default()
        }
    }

    fn decided(cmd: &str, class: &str, decision: &str, secs: i64) -> Entry {
        Entry {
            kind: Some(Kind::Approval),
            decision: Some(decision.into()),
            ..call(cmd, class, secs)
        }
    }

    #[test]
    fn counts_commands_decisions_thrashing_and_localization() {
        let entries = vec![
            call("operator status", "read_only", 0),
            decided("operator status", "read_only", "run", 0),
            call("operator node start ratelimiter-2", "mutating", 1),
            decided("operator node start ratelimiter-2", "mutating", "run", 1),
            call("operator status", "read_only", 20),
            call("operator status", "read_only", 40),
            call("rm -rf /", "denied", 41),
            decided("rm -rf /", "denied", "refused", 41),
            call("operator node kill redis", "destructive", 42),
            decided("operator node kill redis", "destructive", "vetoed", 42),
        ];
        let c = count(&[(session("restarted it"), entries)], Some("ratelimiter-2"));
        let m = &c.metrics;
        assert_eq!((m.commands, m.unique_commands), (6, 4));
        assert_eq!(
            (m.mutating, m.destructive, m.denied, m.vetoed),
            (1, 1, 1, 1)
        );
        assert_eq!(m.thrashing, 1, "operator status three times in 40 s");
        assert!(c.localized);
        assert!(c.first_change.is_some());
        assert_eq!((m.turns, m.input_tokens, m.cost_usd), (3, 10, 0.5));
        let c = count(&[(session("all fine"), vec![])], Some("ratelimiter-2"));
        assert!(!c.localized && c.first_change.is_none());
        assert!(
            count(
                &[(session("ratelimiter-2 is slow"), vec![])],
                Some("ratelimiter-2")
            )
            .localized
        );
    }

    #[test]
    fn a_consequence_self_healed_in_an_agent_trial_is_a_scoring_error() {
        use crate::tickets::Status;
        let mut root = crate::tui::fixtures::ticket(1, "etcd-1", Status::Resolved);
        root.resolution = Some(Resolution::SelfHealed);
        let mut quorum = crate::tui::fixtures::ticket(2, "cluster", Status::Resolved);
        quorum.invariant = "quorum_lost".into();
        quorum.root = false;
        quorum.incident_id = Some(1);
        let verified = quorum.clone();
        quorum.resolution = Some(Resolution::SelfHealed);
        assert!(self_healed_consequences(&[root.clone(), verified]).is_empty());
        let errors = self_healed_consequences(&[root, quorum]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("#2") && errors[0].contains("incident #1"),
            "{errors:?}"
        );
    }
}
