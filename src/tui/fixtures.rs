//! App states for snapshot tests and render benchmarks: a fixed clock, a three-node cluster,
//! tickets, an agent session. Nothing here runs anything.

use serde_json::json;

use super::app::{App, Campaigns, Level, PendingApproval, TrialTimeline};
use super::session_view::SessionView;
use super::theme::Theme;
use crate::agent::approval::ApprovalRequest;
use crate::agent::audit::{Entry, Kind};
use crate::chaos::{FaultKind, FaultRecord, FaultStatus};
use crate::clock::{self, Timestamp};
use crate::load::LoadStats;
use crate::monitor::CycleReport;
use crate::policy::{Class, Mode};
use crate::store::eval::{
    CampaignRow, CampaignStatus, TrialEvent, TrialMetrics, TrialRow, TrialStatus, Verdict,
};
use crate::subjects::{
    Assessment, InvariantInfo, NodeObservation, NodeState, Observation, Severity, Snapshot,
    Violation,
};
use crate::tickets::{Resolution, Status, Ticket, TicketEvent};

pub fn t0() -> Timestamp {
    clock::parse("2026-11-26T12:00:00Z").unwrap_or_default()
}

pub fn at(secs: i64) -> Timestamp {
    t0() + chrono::Duration::seconds(secs)
}

fn invariants() -> Vec<InvariantInfo> {
    let cfg = crate::subjects::ratelimiter::config::RateLimiterConfig::default();
    crate::subjects::ratelimiter::check::catalogue(&cfg)
}

fn node(name: &str, role: &str, state: NodeState, detail: Option<&str>) -> NodeObservation {
    NodeObservation {
        name: name.into(),
        role: role.into(),
        address: format!("127.0.0.1:{}", 7000 + name.len()),
        state,
        detail: detail.map(str::to_string),
        probe_ms: (state == NodeState::Up).then_some(1.2),
    }
}

/// A monitor report; `down` names a limiter node that is down.
pub fn cycle(down: Option<&str>) -> CycleReport {
    let nodes: Vec<NodeObservation> = ["redis", "ratelimiter-1", "ratelimiter-2", "ratelimiter-3"]
        .iter()
        .map(|n| {
            let role = if *n == "redis" {
                "redis"
            } else {
                "ratelimiter"
            };
            if Some(*n) == down {
                node(
                    n,
                    role,
                    NodeState::Down,
                    Some("not reachable: connection refused"),
                )
            } else {
                node(n, role, NodeState::Up, None)
            }
        })
        .collect();
    let violations: Vec<Violation> = down
        .map(|d| Violation {
            invariant: "node_down".into(),
            entity: d.into(),
            severity: Severity::Critical,
            summary: format!("{d} is down: not reachable: connection refused"),
            detail: json!({"state": "down"}),
        })
        .into_iter()
        .collect();
    let up = nodes.iter().filter(|n| n.state == NodeState::Up).count();
    CycleReport {
        cycle: 42,
        at: at(0),
        subject: "ratelimiter".into(),
        instance: 0,
        nodes_up: up,
        nodes_total: nodes.len(),
        nodes_out: nodes
            .iter()
            .filter(|n| n.state != NodeState::Up)
            .map(|n| (n.name.clone(), n.state))
            .collect(),
        observation_error: None,
        violations: violations.len(),
        pending: 0,
        changes: vec![],
        active_tickets: violations.len(),
        pending_writes: 0,
        observe_ms: 3.0,
        cycle_ms: 4.0,
        woken_by: Vec::new(),
        snapshot: Some(Snapshot {
            observation: Observation {
                at: at(0),
                subject: "ratelimiter".into(),
                instance: 0,
                error: None,
                nodes,
                facts: json!({}).into(),
                duration_ms: 3.0,
            },
            assessment: Assessment {
                violations,
                unknown: vec![],
            },
        }),
    }
}

pub fn ticket(id: i64, entity: &str, status: Status) -> Ticket {
    Ticket {
        id,
        violation_key: format!("ratelimiter/0:node_down:{entity}"),
        subject: "ratelimiter".into(),
        instance: 0,
        invariant: "node_down".into(),
        entity: entity.into(),
        severity: Severity::Critical,
        status,
        held: false,
        summary: format!("{entity} is down: not reachable: connection refused"),
        detail: json!({"state": "down"}),
        occurrences: 1,
        observations: 3,
        opened_at: at(-30),
        last_seen_at: at(-2),
        cleared_at: None,
        resolved_at: (status == Status::Resolved).then(|| at(-1)),
        resolution: (status == Status::Resolved).then_some(Resolution::Verified),
        claimed_by: matches!(status, Status::InProgress | Status::Verifying)
            .then(|| "agent-7".to_string()),
        lease_expires_at: None,
        attempts: 1,
        updated_at: at(-1),
        incident_id: Some(id),
        root: true,
    }
}

/// An incident of `first` and the other tickets (the first's id is the incident's), as the
/// store returns it.
pub fn incident(first: Ticket, rest: Vec<Ticket>) -> crate::tickets::Claimed {
    let mut c = crate::tickets::Claimed::of_one(first);
    for t in rest {
        if t.root {
            c.incident.roots.push(t.id);
        }
        c.incident.tickets.push(t.id);
        c.tickets.push(t);
    }
    c
}

pub fn events(id: i64) -> Vec<TicketEvent> {
    let e = |n: i64,
             kind: &str,
             from: Option<Status>,
             to: Option<Status>,
             actor: &str,
             reason: &str| TicketEvent {
        id: n,
        ticket_id: id,
        at: at(-30 + n * 5),
        kind: kind.into(),
        from_status: from,
        to_status: to,
        actor: actor.into(),
        reason: reason.into(),
    };
    vec![
        e(
            1,
            "opened",
            None,
            Some(Status::Open),
            "monitor",
            "ratelimiter-2 is down",
        ),
        e(
            2,
            "claimed",
            Some(Status::Open),
            Some(Status::InProgress),
            "agent:agent-7",
            "claimed with a lease",
        ),
    ]
}

fn entry(seq: i64, kind: Kind, content: &str) -> Entry {
    Entry {
        seq,
        at: Some(at(-20 + seq)),
        ..Entry::new(kind, content)
    }
}

fn tool(seq: i64, id: &str, command: &str, class: &str, why: &str) -> Entry {
    Entry {
        tool: Some("shell".into()),
        tool_use_id: Some(id.into()),
        command: Some(command.into()),
        policy: Some(class.into()),
        ..entry(seq, Kind::ToolCall, why)
    }
}

fn decided(seq: i64, id: &str, decision: &str, actor: &str, why: &str) -> Entry {
    Entry {
        tool_use_id: Some(id.into()),
        decision: Some(decision.into()),
        actor: Some(actor.into()),
        ..entry(seq, Kind::Approval, why)
    }
}

fn result(seq: i64, id: &str, exit: i32, ms: i64, out: &str) -> Entry {
    Entry {
        tool_use_id: Some(id.into()),
        exit_code: Some(exit),
        duration_ms: Some(ms),
        ..entry(seq, Kind::ToolResult, out)
    }
}

/// How far the agent's session has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Diagnosing,
    /// Its repair waits for a person.
    Waiting,
    Vetoed,
    Resolved,
}

pub fn session(stage: Stage) -> SessionView {
    let mut s = SessionView::new(3, 1, "anthropic claude-sonnet-5".into(), true);
    let mut es = vec![
        entry(
            1,
            Kind::Thinking,
            "The node is down. Look at the cluster first, then its log.",
        ),
        entry(
            2,
            Kind::Text,
            "ratelimiter-2 does not answer. Let me see how every node is doing.",
        ),
        tool(
            3,
            "t1",
            "operator status",
            "read_only",
            "see every node's state",
        ),
        decided(4, "t1", "run", "policy", "reads only"),
        result(
            5,
            "t1",
            0,
            41,
            "exit code 0\nstdout:\nredis          running  healthy\nratelimiter-1  running  healthy\nratelimiter-2  exited   -\nratelimiter-3  running  healthy",
        ),
        tool(
            6,
            "t2",
            "operator node start ratelimiter-2",
            "mutating",
            "it exited; start it again",
        ),
        decided(
            7,
            "t2",
            "ask",
            "policy",
            "mutating: starts or resumes a node",
        ),
    ];
    match stage {
        Stage::Diagnosing => {
            es.truncate(5);
        }
        Stage::Waiting => {}
        Stage::Vetoed => es.push(decided(
            8,
            "t2",
            "vetoed",
            "person:ann",
            "check its log first",
        )),
        Stage::Resolved => {
            es.push(decided(8, "t2", "approved", "person:ann", "approved"));
            es.push(result(
                9,
                "t2",
                0,
                88,
                "exit code 0\nstdout:\nratelimiter-2: running (healthy, pid 4242)",
            ));
            es.push(entry(
                10,
                Kind::Verify,
                "the monitor saw the violation gone: resolved (verified)",
            ));
        }
    }
    for e in &es {
        s.apply(e);
    }
    s.tokens = 5120;
    s.cost_usd = Some(0.0213);
    if stage == Stage::Resolved {
        s.outcome = Some("resolved".into());
    }
    if stage == Stage::Vetoed {
        s.streaming = "Understood; reading its log first".into();
    }
    s
}

pub fn approval() -> PendingApproval {
    // Nobody listens for the answer here; tests look at the effect.
    let (reply, _) = tokio::sync::oneshot::channel();
    PendingApproval {
        req: ApprovalRequest {
            session_id: 3,
            ticket_id: 1,
            command: "operator node start ratelimiter-2".into(),
            reasoning: "it exited; start it again".into(),
            class: Class::Mutating,
            why: "mutating: starts or resumes a node".into(),
        },
        reply: Some(reply),
    }
}

pub fn load_history(n: usize) -> Vec<LoadStats> {
    (0..n)
        .map(|i| LoadStats {
            elapsed_s: i as f64,
            sent: 50,
            ok: 40 + (i % 5) as u64,
            refused: 10 - (i % 5) as u64,
            failed: u64::from(i % 17 == 0),
            dropped: 0,
            p50_ms: 1.1,
            p99_ms: 2.0 + (i % 7) as f64,
            max_ms: 12.0,
            checkpoint_error: None,
        })
        .collect()
}

/// The app in a known state: healthy, or with ratelimiter-2 down and an agent at `stage`.
pub fn app(down: bool, stage: Option<Stage>) -> App {
    let mut a = App::new(
        "ratelimiter",
        crate::subjects::registry::kind("ratelimiter")
            .map(|k| crate::chaos::FaultKind::catalogue(k.faults()))
            .unwrap_or_default(),
        0,
        Mode::Approve,
        Theme { color: false },
        at(0),
    );
    a.size = (100, 32);
    a.agent_label = "anthropic claude-sonnet-5".into();
    a.invariants = invariants();
    // Once the fix is verified, the node is up again.
    let node_down = down && stage != Some(Stage::Resolved);
    a.cycle = Some(Box::new(cycle(node_down.then_some("ratelimiter-2"))));
    a.load.extend(load_history(40));
    a.load_running = true;
    a.push_log(Level::Info, "Operator started; press ? for keys");
    if down {
        a.push_log(
            Level::Error,
            "ticket #1 opened: node_down ratelimiter-2 — ratelimiter-2 is down",
        );
        let status = match stage {
            Some(Stage::Resolved) => Status::Resolved,
            Some(_) => Status::InProgress,
            None => Status::Open,
        };
        a.tickets = vec![ticket(1, "ratelimiter-2", status)];
        a.detail = Some(super::app::TicketDetail {
            ticket_id: 1,
            events: events(1),
            sessions: vec![],
        });
    }
    if let Some(stage) = stage {
        a.sessions.push(session(stage));
        if stage == Stage::Waiting {
            a.approvals.push_back(approval());
        }
    }
    a
}

/// A large state: `tickets` tickets and a session of about `lines` lines, for benchmarks.
pub fn big(tickets: usize, lines: usize) -> App {
    let mut a = app(true, Some(Stage::Resolved));
    a.tickets = (0..tickets as i64)
        .map(|i| {
            ticket(
                i + 1,
                &format!("ratelimiter-{}", i % 3 + 1),
                if i % 4 == 0 {
                    Status::Open
                } else {
                    Status::Resolved
                },
            )
        })
        .collect();
    let mut s = session(Stage::Resolved);
    let per_card = 8;
    for i in 0..(lines / per_card) as i64 {
        let id = format!("b{i}");
        s.apply(&tool(
            100 + 3 * i,
            &id,
            "operator node logs ratelimiter-2 -n 5",
            "read_only",
            "read the log",
        ));
        s.apply(&decided(101 + 3 * i, &id, "run", "policy", "reads only"));
        s.apply(&result(
            102 + 3 * i,
            &id,
            0,
            12,
            "exit code 0\nstdout:\nline one\nline two\nline three\nline four\nline five",
        ));
    }
    a.sessions = vec![s];
    a.faults = vec![FaultRecord {
        id: 1,
        fault: FaultKind::Pause.as_str().into(),
        subject: "ratelimiter".into(),
        instance: 0,
        runtime: "local".into(),
        target: "ratelimiter-3".into(),
        params: json!({}),
        status: FaultStatus::Active,
        injected_at: at(-10),
        expires_at: Some(at(50)),
        healed_at: None,
        injected_by: "tui".into(),
        healed_by: None,
        note: String::new(),
        updated_at: at(-10),
    }];
    a
}

/// A trial of the fixture campaigns.
pub fn trial(id: i64, seq: u32, fault: Option<&str>, verdict: Option<Verdict>) -> TrialRow {
    let done = verdict.is_some();
    TrialRow {
        id,
        campaign_id: 2,
        seq,
        problem: seq / 2,
        subject: "ratelimiter".into(),
        fault: fault.map(Into::into),
        params: json!({}),
        target: fault.map(|_| "ratelimiter-2".into()),
        fixed_target: None,
        pick: 7,
        variant: if seq % 2 == 1 {
            "none".into()
        } else {
            "default".into()
        },
        baseline: seq % 2 == 1,
        control: fault.is_none(),
        status: if done {
            TrialStatus::Done
        } else {
            TrialStatus::Running
        },
        step: (!done).then(|| "detect".into()),
        slot: Some(0),
        instance: Some(100),
        attempt: 1,
        verdict,
        reason: verdict.map(|v| format!("{v} on purpose")),
        won: verdict.map(|v| matches!(v, Verdict::Resolved | Verdict::Clean)),
        started_at: Some(at(-60 + i64::from(seq) * 10)),
        ended_at: done.then(|| at(-52 + i64::from(seq) * 10)),
        injected_at: Some(at(-59 + i64::from(seq) * 10)),
        ttd_ms: fault.map(|_| 24),
        ttr_ms: (verdict == Some(Verdict::Resolved)).then_some(1400),
        fault_id: None,
        localized: Some(true),
        regression: Some(false),
        metrics: TrialMetrics {
            commands: if seq % 2 == 1 { 0 } else { 4 },
            sessions: vec![1],
            ..TrialMetrics::default()
        },
    }
}

fn campaign_row(
    id: i64,
    name: &str,
    status: CampaignStatus,
    done: usize,
    trials: usize,
) -> CampaignRow {
    CampaignRow {
        id,
        name: name.into(),
        status,
        started_at: at(-600 * id),
        ended_at: None,
        spec: json!({"seed": "1", "trials_per_combination": 1}),
        provenance: json!({}),
        pid: (status == CampaignStatus::Running).then_some(4242),
        heartbeat_at: Some(at(-1)),
        stop_requested: false,
        note: if status == CampaignStatus::Finished {
            String::new()
        } else {
            "running on 1 slot".into()
        },
        trials,
        done,
    }
}

/// A running campaign (three trials done, one at its detect step) and a finished one.
pub fn campaigns() -> Campaigns {
    let running = vec![
        trial(11, 0, Some("node_kill"), Some(Verdict::Resolved)),
        trial(12, 1, Some("node_kill"), Some(Verdict::Unresolved)),
        trial(13, 2, Some("pause"), Some(Verdict::Resolved)),
        trial(14, 3, Some("pause"), None),
    ];
    let finished = vec![
        trial(1, 0, Some("node_kill"), Some(Verdict::Resolved)),
        trial(2, 1, Some("node_kill"), Some(Verdict::Unresolved)),
        trial(3, 2, None, Some(Verdict::Clean)),
    ];
    Campaigns {
        list: vec![
            campaign_row(2, "smoke", CampaignStatus::Running, 3, 5),
            campaign_row(1, "smoke", CampaignStatus::Finished, 3, 3),
        ],
        trials: [(2, running), (1, finished)].into_iter().collect(),
        files: vec![
            "campaigns/ratelimiter.yaml".into(),
            "campaigns/smoke.yaml".into(),
        ],
        sel: 0,
        trial_sel: None,
        timeline: None,
    }
}

/// The timeline of trial 11: every step, and its agent's session.
pub fn timeline() -> TrialTimeline {
    let steps = [
        (0, "reset", "cleared 12 Redis keys"),
        (1, "gate", "two healthy observations in a row"),
        (
            2,
            "inject",
            "node_kill on ratelimiter-2: killed ratelimiter-2",
        ),
        (
            2,
            "detect",
            "ticket #1 node_down ratelimiter-2: ratelimiter-2 is down",
        ),
        (
            4,
            "hold",
            "every ticket resolved; checking that the cluster holds for 5s",
        ),
        (9, "heal", "ratelimiter-2 was already running again"),
        (
            9,
            "verdict",
            "resolved: every ticket resolved (#1 verified) and the cluster held for 5s",
        ),
    ];
    TrialTimeline {
        trial: trial(11, 0, Some("node_kill"), Some(Verdict::Resolved)),
        events: steps
            .iter()
            .enumerate()
            .map(|(i, (s, step, detail))| TrialEvent {
                id: i as i64,
                trial_id: 11,
                attempt: 1,
                at: at(-60 + s),
                step: (*step).into(),
                detail: (*detail).into(),
            })
            .collect(),
        session: Some(session(Stage::Resolved)),
    }
}
