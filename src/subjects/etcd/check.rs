//! etcd's invariants, as a pure function of one observation.
//!
//! One incident, one ticket: with the quorum lost, members that know no leader are the
//! quorum's ticket; a member removed from the cluster is membership's ticket, not a down
//! member's. What could not be seen is unknown, never healthy.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::json;

use super::config::EtcdConfig;
use super::observe::{EtcdObservation, MemberProbe};
use crate::invariant::{Checker, Consequence};
use crate::subjects::{Assessment, InvariantInfo, Severity};

pub const MEMBER_DOWN: &str = "member_down";
pub const QUORUM_LOST: &str = "quorum_lost";
pub const NO_LEADER: &str = "no_leader";
pub const LEADER_FLAPPING: &str = "leader_flapping";
pub const ALARM_ACTIVE: &str = "alarm_active";
pub const BACKEND_NEAR_QUOTA: &str = "backend_near_quota";
pub const MEMBER_LAGGING: &str = "member_lagging";
pub const MEMBERSHIP_MISMATCH: &str = "membership_mismatch";
pub const SLOW_COMMITS: &str = "slow_commits";
pub const LOW_DISK_SPACE: &str = "low_disk_space";
pub const SUBJECT_UNREACHABLE: &str = "subject_unreachable";

/// The entity of cluster-wide invariants.
pub const CLUSTER: &str = "cluster";

pub const NAMES: &[&str] = &[
    MEMBER_DOWN,
    QUORUM_LOST,
    NO_LEADER,
    LEADER_FLAPPING,
    ALARM_ACTIVE,
    BACKEND_NEAR_QUOTA,
    MEMBER_LAGGING,
    MEMBERSHIP_MISMATCH,
    SLOW_COMMITS,
    LOW_DISK_SPACE,
    SUBJECT_UNREACHABLE,
];

/// What follows from what: members down, or cut off from the list, take the quorum, the
/// leader and the others' progress with them.
pub const CONSEQUENCES: &[Consequence] = &[
    Consequence {
        invariant: QUORUM_LOST,
        follows_from: &[MEMBER_DOWN, MEMBERSHIP_MISMATCH],
        same_entity: false,
    },
    Consequence {
        invariant: NO_LEADER,
        follows_from: &[MEMBER_DOWN, MEMBERSHIP_MISMATCH, QUORUM_LOST],
        same_entity: false,
    },
    Consequence {
        invariant: MEMBER_LAGGING,
        follows_from: &[MEMBER_DOWN, MEMBERSHIP_MISMATCH],
        same_entity: false,
    },
    Consequence {
        invariant: LEADER_FLAPPING,
        follows_from: &[MEMBER_DOWN, MEMBERSHIP_MISMATCH, QUORUM_LOST],
        same_entity: false,
    },
];

/// The invariants with their defaults, overridden by the config.
pub fn catalogue(cfg: &EtcdConfig) -> Vec<InvariantInfo> {
    // An election takes up to two election timeouts: give a leaderless member that long.
    let election = cfg.election_timeout * 2;
    let defaults: [(&'static str, &'static str, Severity, Duration); 11] = [
        (
            MEMBER_DOWN,
            "every expected member answers its status request",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            QUORUM_LOST,
            "a majority of the members answer and know a leader",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            NO_LEADER,
            "every member that answers knows the leader",
            Severity::Warning,
            election,
        ),
        (
            LEADER_FLAPPING,
            "the leader changes at most a few times within the leader window",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            ALARM_ACTIVE,
            "no alarm (NOSPACE, CORRUPT) is raised: under NOSPACE the cluster takes no writes",
            Severity::Critical,
            Duration::ZERO,
        ),
        (
            BACKEND_NEAR_QUOTA,
            "each member's backend stays under the quota threshold",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            MEMBER_LAGGING,
            "each member has applied nearly everything the leader committed",
            Severity::Warning,
            Duration::from_secs(3),
        ),
        (
            MEMBERSHIP_MISMATCH,
            "the cluster's member list is the expected topology, and every member is of this cluster",
            Severity::Critical,
            Duration::from_secs(2),
        ),
        (
            SLOW_COMMITS,
            "each member's backend commit and WAL fsync p99 stay under their thresholds",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            LOW_DISK_SPACE,
            "each member's data volume stays under the disk threshold (where the runtime bounds it, as Docker does): a full one stops its log",
            Severity::Warning,
            Duration::ZERO,
        ),
        (
            SUBJECT_UNREACHABLE,
            "the cluster can be observed at all",
            Severity::Critical,
            Duration::ZERO,
        ),
    ];
    crate::invariant::catalogue(&defaults, |name| cfg.invariants.get(name).cloned())
}

pub fn assess(obs: &EtcdObservation, cfg: &EtcdConfig, rules: &[InvariantInfo]) -> Assessment {
    let mut c = Checker::new(rules);
    if let Some(e) = &obs.error {
        c.violate(
            SUBJECT_UNREACHABLE,
            CLUSTER,
            format!("the etcd cluster cannot be observed: {e}"),
            json!({ "error": e }),
        );
        for r in rules.iter().filter(|r| r.name != SUBJECT_UNREACHABLE) {
            c.out
                .unknown_all(r.name, "the cluster could not be observed");
        }
        return c.out;
    }
    let removed = membership(&mut c, obs);
    let answering: Vec<&MemberProbe> = obs.members.iter().filter(|m| m.answered()).collect();
    if answering.is_empty() {
        for inv in [ALARM_ACTIVE, LEADER_FLAPPING, MEMBERSHIP_MISMATCH] {
            c.out.unknown_all(inv, "no member answered");
        }
    }
    // Down members.
    for m in &obs.members {
        if m.answered() {
            continue;
        }
        for inv in [NO_LEADER, BACKEND_NEAR_QUOTA, MEMBER_LAGGING, SLOW_COMMITS] {
            c.out.unknown_for(inv, &m.name, "the member did not answer");
        }
        if removed.contains(m.name.as_str()) {
            c.out.unknown_for(
                MEMBER_DOWN,
                &m.name,
                "removed from the cluster: membership_mismatch's ticket",
            );
            continue;
        }
        c.violate(
            MEMBER_DOWN,
            &m.name,
            format!(
                "{} does not answer: {}",
                m.name,
                m.detail.as_deref().unwrap_or("no answer")
            ),
            json!({ "state": m.state.as_str(), "address": m.address, "detail": m.detail }),
        );
    }
    // The quorum: a majority answering and knowing a leader.
    let majority = obs.majority();
    let led = answering.iter().filter(|m| m.knows_leader()).count();
    let quorum = led >= majority;
    if !quorum {
        c.violate(
            QUORUM_LOST,
            CLUSTER,
            format!(
                "only {led} of {} members answer with a leader; a quorum needs {majority}",
                obs.members.len()
            ),
            json!({
                "members": obs.members.len(),
                "answering": answering.len(),
                "with_leader": led,
                "majority": majority,
                "down": obs.members.iter().filter(|m| !m.answered()).map(|m| &m.name).collect::<Vec<_>>(),
                // Starting this one alone brings a majority back (for 3 members, 2 down).
                "first_down": obs.members.iter().find(|m| !m.answered()).map(|m| &m.name),
            }),
        );
        c.out
            .unknown_all(NO_LEADER, "the quorum is lost: quorum_lost's ticket");
        c.out
            .unknown_all(MEMBER_LAGGING, "no leader to compare with");
    } else {
        for m in answering.iter().filter(|m| !m.knows_leader()) {
            c.violate(
                NO_LEADER,
                &m.name,
                format!(
                    "{} answers but knows no leader, while a quorum has one",
                    m.name
                ),
                json!({ "state": m.state.as_str(), "address": m.address }),
            );
        }
        lagging(&mut c, obs, cfg);
    }
    let nospace = alarms(&mut c, &answering);
    flapping(&mut c, &answering, cfg);
    for m in &answering {
        near_quota(&mut c, m, cfg, nospace);
        slow(&mut c, m, cfg);
    }
    for m in &obs.members {
        disk(&mut c, m, cfg);
    }
    c.out
}

/// A volume that could not be measured is unknown.
fn disk(c: &mut Checker, m: &MemberProbe, cfg: &EtcdConfig) {
    // No bounded volume (the local runtime; a stopped member's is not mounted): nothing to
    // judge, and nothing hidden either.
    let Some(disk) = m.disk else {
        if let Some(why) = &m.disk_error {
            c.out.unknown_for(LOW_DISK_SPACE, &m.name, why);
        }
        return;
    };
    if let Some((summary, detail)) = disk.over(&m.name, cfg.thresholds.disk_used_percent) {
        c.violate(LOW_DISK_SPACE, &m.name, summary, detail);
    }
}

/// Compares the member list with the topology; the expected members it lacks.
fn membership<'a>(c: &mut Checker, obs: &'a EtcdObservation) -> BTreeSet<&'a str> {
    let mut removed = BTreeSet::new();
    // Members answering for another cluster than most do: a data dir from elsewhere.
    let mut clusters: HashMap<u64, usize> = HashMap::new();
    for s in obs.members.iter().filter_map(|m| m.status.as_ref()) {
        *clusters.entry(s.header.cluster_id).or_default() += 1;
    }
    let main = clusters.iter().max_by_key(|(_, n)| **n).map(|(id, _)| *id);
    for m in &obs.members {
        if let (Some(s), Some(main)) = (&m.status, main) {
            if s.header.cluster_id != main {
                c.violate(
                    MEMBERSHIP_MISMATCH,
                    &m.name,
                    format!(
                        "{} answers for another cluster ({:x}, not {main:x}): its data is not this cluster's",
                        m.name, s.header.cluster_id
                    ),
                    json!({ "problem": "other_cluster", "cluster_id": s.header.cluster_id.to_string(), "expected_cluster_id": main.to_string() }),
                );
            }
        }
    }
    let Some(list) = &obs.member_list else {
        let reason = obs
            .member_list_error
            .clone()
            .unwrap_or_else(|| "no member answered".into());
        c.out
            .unknown_all(MEMBERSHIP_MISMATCH, format!("no member list: {reason}"));
        return removed;
    };
    let expected: BTreeSet<&str> = obs.members.iter().map(|m| m.name.as_str()).collect();
    for name in &expected {
        if !list.iter().any(|l| l.name == *name) {
            // An added member not yet started has no name: it may be this one coming back.
            let pending = list.iter().any(|l| l.name.is_empty());
            removed.insert(*name);
            c.violate(
                MEMBERSHIP_MISMATCH,
                name,
                format!(
                    "{name} is not a member of the cluster{}",
                    if pending { " (an added member has not started yet)" } else { "" }
                ),
                json!({ "problem": if pending { "not_started" } else { "removed" }, "member_list_from": obs.member_list_from }),
            );
        }
    }
    for l in list.iter().filter(|l| l.name.is_empty()) {
        // Added but never started: a member the topology does not run.
        let entity = format!("member {:x}", l.id);
        c.violate(
            MEMBERSHIP_MISMATCH,
            &entity,
            format!(
                "the cluster lists a member that never started ({:x} at {}): the topology runs no such member",
                l.id,
                l.peer_urls.join(", ")
            ),
            json!({ "problem": "never_started", "id": l.id.to_string(), "peer_urls": l.peer_urls }),
        );
    }
    for l in list {
        if !l.name.is_empty() && !expected.contains(l.name.as_str()) {
            c.violate(
                MEMBERSHIP_MISMATCH,
                &l.name,
                format!(
                    "{} is a member of the cluster but not of the expected topology",
                    l.name
                ),
                json!({ "problem": "unknown", "id": l.id.to_string(), "peer_urls": l.peer_urls }),
            );
        }
    }
    removed
}

fn lagging(c: &mut Checker, obs: &EtcdObservation, cfg: &EtcdConfig) {
    let Some(leader) = obs.leader_probe().and_then(|l| l.status.as_ref()) else {
        c.out
            .unknown_all(MEMBER_LAGGING, "the leader did not answer");
        return;
    };
    for m in obs.members.iter() {
        let Some(s) = &m.status else { continue };
        let lag = leader.raft_index.saturating_sub(s.raft_applied_index);
        if lag > cfg.thresholds.lag_entries {
            c.violate(
                MEMBER_LAGGING,
                &m.name,
                format!(
                    "{} has applied {lag} entries fewer than the leader has committed (threshold {})",
                    m.name, cfg.thresholds.lag_entries
                ),
                json!({ "lag": lag, "applied": s.raft_applied_index, "leader_committed": leader.raft_index }),
            );
        }
    }
}

/// Raises `alarm_active` per alarm; whether NOSPACE is among them.
fn alarms(c: &mut Checker, answering: &[&MemberProbe]) -> bool {
    let mut seen: HashMap<String, Vec<&str>> = HashMap::new();
    let mut raised_by: HashMap<String, BTreeSet<u64>> = HashMap::new();
    for m in answering {
        if let Some(s) = &m.status {
            for a in s.alarms() {
                raised_by
                    .entry(a.clone())
                    .or_default()
                    .extend(s.alarm_members(&a));
                seen.entry(a).or_default().push(&m.name);
            }
        }
    }
    // Where a compaction would go: the newest revision any member reports.
    let revision = answering
        .iter()
        .filter_map(|m| m.status.as_ref().map(|s| s.header.revision))
        .max();
    let nospace = seen.contains_key("NOSPACE");
    let mut names: Vec<_> = seen.into_iter().collect();
    names.sort();
    for (alarm, members) in names {
        let what = match alarm.as_str() {
            "NOSPACE" => "the backend is out of quota: the cluster takes only reads and deletes",
            "CORRUPT" => "a member's data differs from its peers'",
            _ => "an alarm is raised",
        };
        // The members that raised it, in decimal and apart by spaces, as a repair names
        // each when it disarms (`for id in 7 12; do …`).
        let member_ids = raised_by
            .get(&alarm)
            .into_iter()
            .flatten()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" ");
        c.violate(
            ALARM_ACTIVE,
            &alarm,
            format!("alarm {alarm}: {what}"),
            json!({ "alarm": alarm, "reported_by": members, "member_ids": member_ids, "revision": revision }),
        );
    }
    nospace
}

fn flapping(c: &mut Checker, answering: &[&MemberProbe], cfg: &EtcdConfig) {
    let t = &cfg.thresholds;
    let Some((most, by)) = answering
        .iter()
        .filter_map(|m| m.leader_changes.map(|n| (n, &m.name)))
        .max()
    else {
        c.out
            .unknown_all(LEADER_FLAPPING, "no member's metrics were read");
        return;
    };
    if most > t.leader_changes {
        c.violate(
            LEADER_FLAPPING,
            CLUSTER,
            format!(
                "{most} leader changes within {} (seen by {by}; threshold {})",
                humantime::format_duration(t.leader_window),
                t.leader_changes
            ),
            json!({ "changes": most, "seen_by": by, "window_s": t.leader_window.as_secs() }),
        );
    }
}

/// Under the NOSPACE alarm a full backend is alarm_active's ticket (one incident, one
/// ticket): unknown here. One that is back under the threshold holds even then, so that a
/// ticket opened just before the alarm can resolve once the space is reclaimed.
fn near_quota(c: &mut Checker, m: &MemberProbe, cfg: &EtcdConfig, nospace: bool) {
    let Some(s) = &m.status else { return };
    let quota = m.quota_bytes.unwrap_or(cfg.quota_backend_bytes);
    if quota == 0 {
        return;
    }
    let used = s.db_size as f64 * 100.0 / quota as f64;
    if used > cfg.thresholds.quota_used_percent && nospace {
        c.out.unknown_for(
            BACKEND_NEAR_QUOTA,
            &m.name,
            "past the quota: the NOSPACE alarm is alarm_active's ticket",
        );
    } else if used > cfg.thresholds.quota_used_percent {
        c.violate(
            BACKEND_NEAR_QUOTA,
            &m.name,
            format!(
                "{}'s backend is {used:.0}% of its quota ({} of {} bytes; {} in use)",
                m.name, s.db_size, quota, s.db_size_in_use
            ),
            json!({ "db_size": s.db_size, "db_size_in_use": s.db_size_in_use, "quota": quota, "used_percent": used, "revision": s.header.revision }),
        );
    }
}

fn slow(c: &mut Checker, m: &MemberProbe, cfg: &EtcdConfig) {
    let t = &cfg.thresholds;
    let judged = |s: &Option<crate::subjects::histogram::LatencyStat>| {
        s.filter(|s| s.samples >= t.latency_min_samples)
    };
    let (commit, fsync) = (judged(&m.commit), judged(&m.fsync));
    // Too few commits in the window: nothing is writing slowly. (A disk that hangs outright
    // shows as a lagging member or a lost quorum.)
    let slow_commit = commit.filter(|s| s.p99_ms > t.commit_p99_ms);
    let slow_fsync = fsync.filter(|s| s.p99_ms > t.fsync_p99_ms);
    if slow_commit.is_some() || slow_fsync.is_some() {
        c.violate(
            SLOW_COMMITS,
            &m.name,
            format!(
                "{} writes slowly: backend commit p99 {}, WAL fsync p99 {}",
                m.name,
                commit.map_or("unknown".into(), |s| format!("{:.1} ms", s.p99_ms)),
                fsync.map_or("unknown".into(), |s| format!("{:.1} ms", s.p99_ms)),
            ),
            json!({
                "commit_p99_ms": commit.map(|s| s.p99_ms),
                "fsync_p99_ms": fsync.map(|s| s.p99_ms),
                "commit_threshold_ms": t.commit_p99_ms,
                "fsync_threshold_ms": t.fsync_p99_ms,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::NodeState;
    use crate::subjects::etcd::gateway::{Header, Status};

    fn member(name: &str, db_size: u64, alarm: bool) -> MemberProbe {
        MemberProbe {
            name: name.into(),
            address: format!("{name}:2379"),
            state: NodeState::Up,
            detail: None,
            probe_ms: Some(1.0),
            status: Some(Status {
                header: Header {
                    cluster_id: 1,
                    member_id: 7,
                    revision: 40,
                    raft_term: 2,
                },
                leader: 7,
                db_size,
                db_size_in_use: db_size,
                errors: if alarm {
                    vec!["memberID:7 alarm:NOSPACE ".into()]
                } else {
                    Vec::new()
                },
                ..Status::default()
            }),
            leader_changes: Some(0),
            quota_bytes: Some(1000),
            commit: None,
            fsync: None,
            disk: None,
            disk_error: None,
        }
    }

    #[test]
    fn under_nospace_a_full_backend_is_the_alarms_and_a_reclaimed_one_holds() {
        let cfg = EtcdConfig::default();
        let rules = catalogue(&cfg);
        let obs = EtcdObservation {
            error: None,
            members: vec![member("etcd-1", 990, true), member("etcd-2", 10, false)],
            member_list: None,
            member_list_from: None,
            member_list_error: Some("not asked".into()),
        };
        let a = assess(&obs, &cfg, &rules);
        assert!(
            !a.violations
                .iter()
                .any(|v| v.invariant == BACKEND_NEAR_QUOTA),
            "{:?}",
            a.violations
        );
        assert!(a.is_unknown(BACKEND_NEAR_QUOTA, "etcd-1"));
        assert!(!a.is_unknown(BACKEND_NEAR_QUOTA, "etcd-2"));
        assert!(a.violations.iter().any(|v| v.invariant == ALARM_ACTIVE));
        // Without the alarm, the full one is a violation of its own.
        let obs = EtcdObservation {
            members: vec![member("etcd-1", 990, false), member("etcd-2", 10, false)],
            ..obs
        };
        let a = assess(&obs, &cfg, &rules);
        let full: Vec<&str> = a
            .violations
            .iter()
            .filter(|v| v.invariant == BACKEND_NEAR_QUOTA)
            .map(|v| v.entity.as_str())
            .collect();
        assert_eq!(full, ["etcd-1"]);
    }

    #[test]
    fn a_full_member_volume_is_low_disk_space_and_an_unmeasured_one_unknown() {
        use crate::runtime::DiskUsage;
        let cfg = EtcdConfig::default();
        let rules = catalogue(&cfg);
        let mut full = member("etcd-1", 10, false);
        full.disk = Some(DiskUsage {
            size_bytes: 1000,
            used_bytes: 910,
        });
        let mut roomy = member("etcd-2", 10, false);
        roomy.disk = Some(DiskUsage {
            size_bytes: 1000,
            used_bytes: 100,
        });
        let mut stopped = member("etcd-3", 10, false);
        stopped.disk_error = Some("etcd-3 is not running".into());
        let obs = EtcdObservation {
            error: None,
            members: vec![full, roomy, stopped, member("etcd-4", 10, false)],
            member_list: None,
            member_list_from: None,
            member_list_error: Some("not asked".into()),
        };
        let a = assess(&obs, &cfg, &rules);
        let low: Vec<&str> = a
            .violations
            .iter()
            .filter(|v| v.invariant == LOW_DISK_SPACE)
            .map(|v| v.entity.as_str())
            .collect();
        assert_eq!(low, ["etcd-1"]);
        assert!(!a.is_unknown(LOW_DISK_SPACE, "etcd-2"));
        assert!(a.is_unknown(LOW_DISK_SPACE, "etcd-3"));
        assert!(
            !a.is_unknown(LOW_DISK_SPACE, "etcd-4"),
            "no bounded volume: nothing to judge"
        );
    }
}
