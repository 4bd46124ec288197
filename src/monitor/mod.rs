//! The monitor: observe → check → upsert tickets, on an interval. It is the only writer of
//! "violation seen / cleared". The same loop runs headless (`operator monitor`) or as a task
//! inside the TUI; both report each cycle through a callback.

pub mod grace;
mod ticker;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use self::grace::Grace;
use self::ticker::Ticker;
use crate::clock::Timestamp;
use crate::config::TicketsConfig;
use crate::runtime::NodeEvent;
use crate::store::{Store, StoreError};
use crate::subjects::{NodeState, Snapshot, Subject};
use crate::tickets::{Applied, CycleInput, Observed, TicketChange, violation_key};

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
    /// What this cycle changed, and what earlier cycles changed after their reports went
    /// out (a DB slow to take writes).
    pub changes: Vec<TicketChange>,
    /// Tickets of this instance not resolved, as of the last cycle the DB took.
    pub active_tickets: usize,
    /// Cycles whose verdict the DB has not taken yet (another process holds its lock).
    #[serde(skip_serializing_if = "is_zero")]
    pub pending_writes: usize,
    pub observe_ms: f64,
    pub cycle_ms: f64,
    /// The runtime's events that made this cycle run before its tick (`ratelimiter-2 die`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub woken_by: Vec<String>,
    /// The full snapshot, for views that show more than a line.
    #[serde(skip)]
    pub snapshot: Option<Snapshot>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A cycle's verdict on its way into the DB.
type Write = oneshot::Receiver<Result<Applied, StoreError>>;

pub struct Monitor {
    subject: Box<dyn Subject>,
    store: Store,
    flap_window: Duration,
    correlation_window: Duration,
    grace: Grace,
    graces: HashMap<String, Duration>,
    cycle: u64,
    events: Option<BoxStream<'static, NodeEvent>>,
    /// How long a cycle waits for the DB before it reports without it (`None`: as long as it
    /// takes). The verdicts still go in, in order.
    write_wait: Option<Duration>,
    /// Verdicts sent to the DB that it has not taken yet, oldest first.
    pending: VecDeque<Write>,
    /// The writes' order: each waits for the one before it.
    last_write: Option<tokio::task::JoinHandle<()>>,
    active: usize,
    /// When the DB last said this instance had no ticket open: until `QUIET_RECHECK` later,
    /// a cycle that sees nothing wrong has nothing to tell it.
    quiet_since: Option<Instant>,
}

/// How long a monitor trusts "nothing open, nothing wrong" before asking the DB again (a
/// ticket another monitor of the instance opened is resolved by it, or by us this late).
const QUIET_RECHECK: Duration = Duration::from_secs(5);

/// Events that arrive this close together wake one cycle, not one each.
const EVENT_GATHER: Duration = Duration::from_millis(20);

impl Monitor {
    pub fn new(subject: Box<dyn Subject>, store: Store, tickets: &TicketsConfig) -> Self {
        let graces = subject
            .invariants()
            .iter()
            .map(|i| (i.name.to_string(), i.grace))
            .collect();
        Self {
            subject,
            store,
            flap_window: tickets.flap_window,
            correlation_window: tickets.correlation_window,
            grace: Grace::default(),
            graces,
            cycle: 0,
            events: None,
            write_wait: None,
            pending: VecDeque::new(),
            last_write: None,
            active: 0,
            quiet_since: None,
        }
    }

    /// Sends a cycle's verdict to the DB after every earlier one.
    fn submit(&mut self, input: CycleInput) -> Write {
        let (tx, rx) = oneshot::channel();
        let store = self.store.clone();
        let before = self.last_write.take();
        self.last_write = Some(tokio::spawn(
            async move {
                if let Some(b) = before {
                    let _ = b.await;
                }
                let _ = tx.send(store.call(move |db| db.apply(&input)).await);
            }
            .in_current_span(),
        ));
        rx
    }

    /// Takes what the DB finished of the verdicts sent earlier.
    fn collect(&mut self, changes: &mut Vec<TicketChange>) -> Result<(), MonitorError> {
        while let Some(w) = self.pending.front_mut() {
            match w.try_recv() {
                Ok(applied) => {
                    self.pending.pop_front();
                    let a = applied?;
                    self.active = a.active;
                    changes.extend(a.changes);
                }
                Err(oneshot::error::TryRecvError::Empty) => break,
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.pending.pop_front();
                }
            }
        }
        Ok(())
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
            let at = snapshot.observation.at;
            let quiet = violations.is_empty()
                && self.pending.is_empty()
                && self
                    .quiet_since
                    .is_some_and(|q| q.elapsed() < QUIET_RECHECK);
            let mut changes = Vec::new();
            if !quiet {
                let write = self.submit(CycleInput {
                    subject: subject.clone(),
                    instance,
                    at,
                    flap_window: self.flap_window,
                    violations: observed,
                    unknown: snapshot.assessment.unknown.clone(),
                    consequences: self.subject.kind().consequences(),
                    correlation_window: self.correlation_window,
                });
                self.pending.push_back(write);
                self.collect(&mut changes)?;
                if let Some(w) = self.pending.back_mut() {
                    let waited = match self.write_wait {
                        None => Some(w.await),
                        Some(wait) => tokio::time::timeout(wait, w).await.ok(),
                    };
                    if let Some(applied) = waited {
                        self.pending.pop_back();
                        if let Ok(a) = applied {
                            let a = a?;
                            self.active = a.active;
                            changes.extend(a.changes);
                        }
                    }
                }
            }
            if self.active > 0 || !violations.is_empty() {
                self.quiet_since = None;
            } else if !quiet && self.pending.is_empty() {
                self.quiet_since = Some(Instant::now());
            }
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
                active_tickets: self.active,
                pending_writes: self.pending.len(),
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
        // A DB held by another process delays the tickets, never the next look.
        self.write_wait = Some(interval / 2);
        let mut tick = Ticker::new(interval);
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
