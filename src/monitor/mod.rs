//! The monitor: observe → check → upsert tickets, on an interval. It is the only writer of
//! "violation seen / cleared". The same loop runs headless (`operator monitor`) or as a task
//! inside the TUI; both report each cycle through a callback.

pub mod grace;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use self::grace::Grace;
use crate::clock::Timestamp;
use crate::runtime::NodeEvent;
use crate::subjects::{NodeState, Snapshot, Subject};
use crate::tickets::{CycleInput, Observed, StoreError, TicketChange, TicketStore, violation_key};

/// The fastest the monitor may observe.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// What one cycle saw and did.
#[derive(Debug, Clone, Serialize)]
pub struct CycleReport {
    pub cycle: u64,
    pub at: Timestamp,
    pub subject: String,
    pub instance: u32,
    pub nodes_up: usize,
    pub nodes_total: usize,
    /// Nodes not up, with their state.
    pub nodes_out: Vec<(String, NodeState)>,
    pub observation_error: Option<String>,
    /// Violations seen (including those still in their grace period).
    pub violations: usize,
    /// Violations still in their grace period.
    pub pending: usize,
    pub changes: Vec<TicketChange>,
    /// Tickets of this instance not resolved, after this cycle.
    pub active_tickets: usize,
    pub observe_ms: f64,
    pub cycle_ms: f64,
    /// The runtime's events that made this cycle run before its tick (`ratelimiter-2 die`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub woken_by: Vec<String>,
    /// The full snapshot, for views that show more than a line.
    #[serde(skip)]
    pub snapshot: Option<Snapshot>,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the ticket store task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub struct Monitor {
    subject: Box<dyn Subject>,
    store: TicketStore,
    flap_window: Duration,
    grace: Grace,
    graces: HashMap<String, Duration>,
    cycle: u64,
    events: Option<BoxStream<'static, NodeEvent>>,
}

/// Events that arrive this close together wake one cycle, not one each.
const EVENT_GATHER: Duration = Duration::from_millis(20);

impl Monitor {
    pub fn new(subject: Box<dyn Subject>, store: TicketStore, flap_window: Duration) -> Self {
        let graces = subject
            .invariants()
            .iter()
            .map(|i| (i.name.to_string(), i.grace))
            .collect();
        Self {
            subject,
            store,
            flap_window,
            grace: Grace::default(),
            graces,
            cycle: 0,
            events: None,
        }
    }

    /// Also cycles as soon as the runtime reports something happening to a node (a container
    /// dying or pausing), rather than at the next tick only. When the stream ends, the loop
    /// goes on polling.
    pub fn with_events(mut self, events: Option<BoxStream<'static, NodeEvent>>) -> Self {
        self.events = events;
        self
    }

    /// Observes once and applies the verdict to the tickets.
    pub async fn cycle(&mut self) -> Result<CycleReport, MonitorError> {
        self.cycle += 1;
        let span = info_span!(
            "monitor_cycle",
            cycle = self.cycle,
            subject = self.subject.name()
        );
        async {
            let start = Instant::now();
            let snapshot = self.subject.observe().await;
            let observe_ms = start.elapsed().as_secs_f64() * 1000.0;
            let (subject, instance) = (self.subject.name().to_string(), self.subject.instance());
            let violations = &snapshot.assessment.violations;
            let keys: Vec<String> = violations
                .iter()
                .map(|v| violation_key(&subject, instance, &v.invariant, &v.entity))
                .collect();
            let due = self.grace.update(
                Instant::now(),
                keys.iter().zip(violations).map(|(k, v)| {
                    (
                        k.as_str(),
                        self.graces.get(&v.invariant).copied().unwrap_or_default(),
                    )
                }),
            );
            let observed: Vec<Observed> = violations
                .iter()
                .zip(&due)
                .map(|(v, due)| Observed {
                    violation: v.clone(),
                    due: *due,
                })
                .collect();
            let store = self.store.clone();
            let unknown = snapshot.assessment.unknown.clone();
            let at = snapshot.observation.at;
            let flap_window = self.flap_window;
            let (subj, inst) = (subject.clone(), instance);
            // SQLite calls block: keep them off the async workers.
            let (changes, active) = tokio::task::spawn_blocking(move || {
                let changes = store.apply(&CycleInput {
                    subject: &subj,
                    instance: inst,
                    at,
                    flap_window,
                    violations: &observed,
                    unknown: &unknown,
                })?;
                let active = store
                    .list(&crate::tickets::TicketFilter {
                        active: true,
                        subject: Some(subj.clone()),
                        instance: Some(inst),
                        ..Default::default()
                    })?
                    .len();
                Ok::<_, StoreError>((changes, active))
            })
            .await??;
            let obs = &snapshot.observation;
            Ok(CycleReport {
                cycle: self.cycle,
                at,
                subject,
                instance,
                nodes_up: obs.nodes_up(),
                nodes_total: obs.nodes.len(),
                nodes_out: obs
                    .nodes
                    .iter()
                    .filter(|n| n.state != NodeState::Up)
                    .map(|n| (n.name.clone(), n.state))
                    .collect(),
                observation_error: obs.error.clone(),
                violations: violations.len(),
                pending: due.iter().filter(|d| !**d).count(),
                changes,
                active_tickets: active,
                observe_ms,
                cycle_ms: start.elapsed().as_secs_f64() * 1000.0,
                woken_by: Vec::new(),
                snapshot: Some(snapshot),
            })
        }
        .instrument(span)
        .await
    }

    /// Cycles every `interval` until `stop`, handing each report to `on_cycle`. A cycle that
    /// fails (the DB, say) is reported and the loop goes on.
    pub async fn run(
        mut self,
        interval: Duration,
        stop: CancellationToken,
        mut on_cycle: impl FnMut(Result<CycleReport, MonitorError>),
    ) {
        let interval = interval.max(MIN_INTERVAL);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = self.events.take();
        loop {
            let mut woken_by = Vec::new();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
                e = next_event(&mut events) => match e {
                    Some(e) => {
                        woken_by.push(format!("{} {}", e.node, e.action));
                        // Gather what comes with it (a kill brings `kill` then `die`).
                        let gather = tokio::time::sleep(EVENT_GATHER);
                        tokio::pin!(gather);
                        loop {
                            tokio::select! {
                                _ = &mut gather => break,
                                e = next_event(&mut events) => match e {
                                    Some(e) => woken_by.push(format!("{} {}", e.node, e.action)),
                                    None => break,
                                },
                            }
                        }
                        info!(events = ?woken_by, "woken by the runtime");
                        tick.reset();
                    }
                    None => {
                        warn!("the runtime's event stream ended; polling only");
                        events = None;
                        continue;
                    }
                },
            }
            let report = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.cycle() => r,
            };
            if let Err(e) = &report {
                warn!(error = %e, "monitor cycle failed");
            }
            on_cycle(report.map(|mut r| {
                r.woken_by = woken_by;
                r
            }));
        }
    }
}

/// The next event, or never when there is no stream.
async fn next_event(events: &mut Option<BoxStream<'static, NodeEvent>>) -> Option<NodeEvent> {
    match events {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}
