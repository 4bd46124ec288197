//! One trial, each step recorded with its time: reset → steady-state gate → snapshot →
//! inject (the fault outlives the trial) → the monitor's tickets for it (by instance and
//! time) → the agent, or none → the verdict, by the cluster's state → heal, always →
//! snapshot → record.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::campaign::{Campaign, PlannedTrial};
use super::score;
use crate::agent::approval::Nobody;
use crate::agent::local::LocalAgent;
use crate::chaos::SubjectFaults;
use crate::chaos::{Chaos, Fault, FaultStatus};
use crate::clock::{self, Timestamp};
use crate::config::Config;
use crate::monitor::Monitor;
use crate::paths::StateDir;
use crate::runtime::{RunState, Runtime, RuntimeError, is_rig};
use crate::store::Store;
use crate::store::eval::{TrialOutcome, TrialRow, Verdict};
use crate::subjects::{Snapshot, Subject, launch, registry};
use crate::tickets::{Status, Ticket};

/// How often the harness looks at the tickets while it waits.
const POLL: Duration = Duration::from_millis(200);
/// How much longer than the trial a fault lasts: only the subject or the agent ends it.
const FAULT_MARGIN: Duration = Duration::from_secs(120);

/// What a trial tells whoever shows the campaign.
#[derive(Debug, Clone)]
pub enum Progress {
    Step {
        trial: i64,
        slot: u32,
        step: String,
        detail: String,
    },
    Finished(Box<TrialRow>),
    Slot {
        slot: u32,
        message: String,
    },
}

/// A slot: one instance of the harness's range, its runtime and the monitor watching it.
pub struct Slot {
    pub slot: u32,
    pub instance: u32,
    pub runtime: Arc<dyn Runtime>,
    pub store: Store,
    pub state: StateDir,
    pub db: PathBuf,
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub campaign: Arc<Campaign>,
    pub progress: mpsc::UnboundedSender<Progress>,
    monitor: Option<(String, CancellationToken, tokio::task::JoinHandle<()>)>,
}

/// How a trial ended for the harness.
pub enum TrialEnd {
    Finished(Box<TrialOutcome>),
    /// Stopped from outside before a verdict: the trial goes back to pending.
    Interrupted,
}

/// What stopped a step.
enum Halt {
    Invalid(String),
    Stopped,
}

impl Slot {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        slot: u32,
        instance: u32,
        runtime: Arc<dyn Runtime>,
        store: Store,
        state: StateDir,
        db: PathBuf,
        config: Config,
        config_path: Option<PathBuf>,
        campaign: Arc<Campaign>,
        progress: mpsc::UnboundedSender<Progress>,
    ) -> Self {
        Self {
            slot,
            instance,
            runtime,
            store,
            state,
            db,
            config,
            config_path,
            campaign,
            progress,
            monitor: None,
        }
    }

    fn subject(&self, name: &str) -> Result<Box<dyn Subject>, String> {
        crate::subjects::registry::build(name, self.runtime.clone(), &self.config)
    }

    fn chaos(&self, subject: &'static dyn SubjectFaults) -> Chaos {
        Chaos::new(
            self.store.clone(),
            self.runtime.clone(),
            subject,
            self.config.chaos.durations.clone(),
            "eval",
        )
    }

    /// Runs the monitor of the slot for `subject`, as `operator monitor` would.
    fn watch(&mut self, subject: &str) -> Result<(), String> {
        if self.monitor.as_ref().is_some_and(|(s, _, _)| s == subject) {
            return Ok(());
        }
        self.unwatch();
        let m = self.campaign.monitor;
        let events = if m.events {
            self.runtime.events()
        } else {
            None
        };
        let monitor = Monitor::new(
            self.subject(subject)?,
            self.store.clone(),
            &self.config.tickets,
        )
        .with_events(events);
        let stop = CancellationToken::new();
        let mut traffic_of = self.subject(subject)?;
        let (s, instance) = (stop.clone(), self.instance);
        let task = tokio::spawn(async move {
            // The subject's background traffic, beside the monitor, for as long as it watches.
            let traffic = async {
                match traffic_of.load_spec().await {
                    Some(spec) => {
                        crate::load::run(spec, s.clone(), |_| {}).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::join!(
                monitor
                    .run(m.interval, s.clone(), |_| {})
                    .instrument(info_span!("eval_monitor", instance)),
                traffic.instrument(info_span!("eval_load", instance)),
            );
        });
        self.monitor = Some((subject.to_string(), stop, task));
        Ok(())
    }

    /// Stops the monitor and the load and waits (a little) for them to end, so that the
    /// load's last acknowledged writes are recorded.
    async fn stop_watching(&mut self) {
        if let Some((_, stop, mut task)) = self.monitor.take() {
            stop.cancel();
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    fn unwatch(&mut self) {
        if let Some((_, stop, task)) = self.monitor.take() {
            stop.cancel();
            task.abort();
        }
    }

    /// Stops the monitor and tears the instance down.
    pub async fn close(mut self) -> Vec<String> {
        self.unwatch();
        super::slot::teardown(
            &self.store,
            self.runtime.clone(),
            self.config.chaos.durations.clone(),
            "the campaign's slot was torn down",
        )
        .await
    }

    async fn step(&self, trial: &TrialRow, step: &str, detail: impl Into<String>) {
        let detail = detail.into();
        info!(trial = trial.id, step, %detail, "trial step");
        let (id, attempt, s, d) = (trial.id, trial.attempt, step.to_string(), detail.clone());
        if let Err(e) = self
            .store
            .call(move |db| db.trial_step(id, attempt, &s, &d))
            .await
        {
            warn!(trial = trial.id, error = %e, "could not record a trial step");
        }
        let _ = self.progress.send(Progress::Step {
            trial: trial.id,
            slot: self.slot,
            step: step.into(),
            detail,
        });
    }

    /// Runs one trial to its verdict, or until `stop`.
    pub async fn run(
        &mut self,
        trial: &TrialRow,
        plan: &PlannedTrial,
        stop: &CancellationToken,
    ) -> TrialEnd {
        let span = info_span!("trial", id = trial.id, seq = trial.seq, slot = self.slot);
        async {
            let started = Instant::now();
            let mut overhead = Duration::ZERO;
            let mut outcome = TrialOutcome::default();
            let prepared = self.prepare(trial, plan, stop).await;
            overhead += started.elapsed();
            let mut subject = match prepared {
                Ok(s) => s,
                Err(Halt::Stopped) => return TrialEnd::Interrupted,
                Err(Halt::Invalid(why)) => {
                    self.step(trial, "invalid", &why).await;
                    outcome.verdict = Some(Verdict::Invalid);
                    outcome.reason = why;
                    outcome.metrics.overhead_ms = overhead.as_millis() as u64;
                    return TrialEnd::Finished(Box::new(outcome));
                }
            };
            let trial_start = clock::now();
            let agent = if trial.baseline {
                None
            } else {
                match self.start_agent(plan) {
                    Ok(a) => Some(a),
                    Err(why) => {
                        self.step(trial, "invalid", &why).await;
                        outcome.verdict = Some(Verdict::Invalid);
                        outcome.reason = why;
                        return TrialEnd::Finished(Box::new(outcome));
                    }
                }
            };
            let result = self
                .fault_and_watch(trial, plan, subject.as_mut(), stop, &mut outcome)
                .await;
            if let Some((agent_stop, task)) = agent {
                agent_stop.cancel();
                let _ = task.await;
            }
            let healing = Instant::now();
            if let Some(id) = outcome.fault_id {
                match self.chaos(subject.kind().faults()).heal(id).await {
                    Ok(h) => {
                        self.step(trial, "heal", h.fault.note.clone()).await;
                    }
                    Err(e) => self.step(trial, "heal", format!("heal failed: {e}")).await,
                }
            }
            let after = subject.observe().await;
            self.snapshot(trial, "after", &after).await;
            // The safety oracle, once the load has stopped and recorded its last answers.
            self.stop_watching().await;
            let lost = match subject.verify_load().await {
                None => None,
                Some(Ok(v)) => {
                    self.step(trial, "verify", v.summary()).await;
                    (!v.lost.is_empty()).then(|| v.summary())
                }
                // Writes that cannot be read back are not known to be kept.
                Some(Err(e)) => {
                    let why = format!("the acknowledged writes cannot be verified: {e}");
                    self.step(trial, "verify", &why).await;
                    Some(why)
                }
            };
            overhead += healing.elapsed();
            match result {
                Err(Halt::Stopped) => return TrialEnd::Interrupted,
                Err(Halt::Invalid(why)) => {
                    outcome.verdict = Some(Verdict::Invalid);
                    outcome.reason = why;
                }
                Ok(()) => {}
            }
            // A repair that loses data is a failed repair, whatever the invariants say.
            if let Some(lost) = lost {
                if matches!(outcome.verdict, Some(Verdict::Resolved | Verdict::Clean)) {
                    outcome.verdict = Some(Verdict::Unresolved);
                    outcome.reason = format!("{}; but {lost}", outcome.reason);
                }
            }
            self.score(trial, trial_start, &mut outcome).await;
            outcome.metrics.overhead_ms = overhead.as_millis() as u64;
            let verdict = outcome.verdict.unwrap_or(Verdict::Invalid);
            self.step(trial, "verdict", format!("{verdict}: {}", outcome.reason))
                .await;
            TrialEnd::Finished(Box::new(outcome))
        }
        .instrument(span)
        .await
    }

    /// Reset, the steady-state gate and the first snapshot: the subject is clean and ready.
    async fn prepare(
        &mut self,
        trial: &TrialRow,
        plan: &PlannedTrial,
        stop: &CancellationToken,
    ) -> Result<Box<dyn Subject>, Halt> {
        let t = self.campaign.timeouts;
        let reset = tokio::select! {
            _ = stop.cancelled() => return Err(Halt::Stopped),
            r = self.reset(&plan.subject) => r,
        };
        let did = reset.map_err(|e| Halt::Invalid(format!("reset failed: {e}")))?;
        self.step(trial, "reset", did).await;
        self.watch(&plan.subject)
            .map_err(|e| Halt::Invalid(format!("cannot watch the subject: {e}")))?;
        let mut subject = self
            .subject(&plan.subject)
            .map_err(|e| Halt::Invalid(e.to_string()))?;
        let gate = tokio::select! {
            _ = stop.cancelled() => return Err(Halt::Stopped),
            g = gate(subject.as_mut(), t.healthy, self.campaign.monitor.interval) => g,
        };
        let snapshot = gate.map_err(|why| {
            Halt::Invalid(format!(
                "the steady-state gate did not pass within {}: {why}",
                humantime::format_duration(t.healthy)
            ))
        })?;
        // Tickets left by the last trial (a baseline that never healed) are not this one's.
        let instance = self.instance;
        let closed = self
            .store
            .call(move |db| {
                let open = db.tickets(&crate::tickets::TicketFilter {
                    active: true,
                    instance: Some(instance),
                    ..Default::default()
                })?;
                for t in &open {
                    db.resolve_manual(
                        t.id,
                        "eval",
                        "closed before the next trial: the cluster is healthy again",
                    )?;
                }
                Ok(open.len())
            })
            .await
            .map_err(|e| Halt::Invalid(format!("cannot close earlier tickets: {e}")))?;
        self.step(
            trial,
            "gate",
            format!(
                "two healthy observations in a row{}",
                if closed > 0 {
                    format!("; closed {closed} tickets of an earlier trial")
                } else {
                    String::new()
                }
            ),
        )
        .await;
        self.snapshot(trial, "before", &snapshot).await;
        Ok(subject)
    }

    /// Heals the instance's faults and resets the subject in place; brings it up when it is
    /// not, and takes it down and up when the reset fails.
    async fn reset(&mut self, subject: &str) -> Result<String, String> {
        // Whatever watched the last trial stops first: its load must not write into the
        // state this reset clears.
        self.stop_watching().await;
        let mut notes = Vec::new();
        let healed = self
            .chaos(registry::kind(subject)?.faults())
            .heal_all()
            .await
            .map_err(|e| format!("cannot heal the slot's faults: {e}"))?;
        for h in healed.iter().filter(|h| h.acted) {
            notes.push(format!("healed fault #{}", h.fault.id));
        }
        let running = match self.runtime.topology() {
            Ok(t) if t.subject == subject => true,
            Ok(_) => {
                self.unwatch();
                self.runtime.down().await.map_err(|e| e.to_string())?;
                false
            }
            Err(RuntimeError::NotUp { .. }) => false,
            Err(e) => return Err(e.to_string()),
        };
        if running {
            let mut s = self.subject(subject)?;
            match s.reset().await {
                Ok(did) => {
                    notes.push(did);
                    return Ok(notes.join("; "));
                }
                Err(e) => {
                    warn!(error = %e, "reset in place failed; down and up");
                    notes.push(format!("reset in place failed ({e}): down and up"));
                    self.unwatch();
                    let _ = self.runtime.down().await;
                }
            }
        }
        let up = launch::up(
            registry::kind(subject)?,
            self.runtime.as_ref(),
            &self.config,
        )
        .await
        .map_err(|e| format!("cannot bring instance {} up: {e}", self.instance))?;
        notes.push(format!("started {} nodes", up.nodes.len()));
        Ok(notes.join("; "))
    }

    async fn snapshot(&self, trial: &TrialRow, kind: &str, s: &Snapshot) {
        let body = serde_json::to_value(s).unwrap_or_default();
        let (id, attempt, k) = (trial.id, trial.attempt, kind.to_string());
        if let Err(e) = self
            .store
            .call(move |db| db.save_snapshot(id, attempt, &k, &body))
            .await
        {
            warn!(error = %e, "could not save a snapshot");
        }
    }

    /// The campaign's agent for this trial, working the slot's tickets until stopped.
    fn start_agent(
        &self,
        plan: &PlannedTrial,
    ) -> Result<(CancellationToken, tokio::task::JoinHandle<()>), String> {
        let v = self
            .campaign
            .variant(&plan.variant)
            .ok_or_else(|| format!("the campaign has no variant `{}`", plan.variant))?;
        let variant = v.load()?;
        let cfg = v.agent_config(&self.config.agent)?;
        let mut agent = LocalAgent {
            config: &cfg,
            variant: variant.as_ref(),
            subject: self.subject(&plan.subject)?,
            runtime: self.runtime.clone(),
            store: self.store.clone(),
            state: &self.state,
            db: &self.db,
            instance: self.instance,
            config_path: self.config_path.clone(),
            approver: Arc::new(Nobody),
            events: None,
            guidance: None,
        }
        .build()
        .map_err(|e| format!("cannot build the agent: {e}"))?;
        // Several slots' agents share this process: each needs a name of its own.
        agent.settings.agent_id = format!("eval-{}-slot{}", std::process::id(), self.slot);
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(
            async move {
                agent.run(s, false).await;
            }
            .instrument(info_span!("eval_agent", instance = self.instance)),
        );
        Ok((stop, task))
    }

    /// Injects the trial's fault and follows the tickets it causes to a verdict.
    async fn fault_and_watch(
        &self,
        trial: &TrialRow,
        plan: &PlannedTrial,
        subject: &mut dyn Subject,
        stop: &CancellationToken,
        outcome: &mut TrialOutcome,
    ) -> Result<(), Halt> {
        let t = self.campaign.timeouts;
        let since = match plan.fault {
            Some(fault) => {
                let target = self.target(plan, fault).await.map_err(Halt::Invalid)?;
                let duration =
                    t.detect + self.campaign.resolve_timeout(plan.baseline) + t.hold + FAULT_MARGIN;
                let record = self
                    .chaos(subject.kind().faults())
                    .inject(fault, Some(&target), Some(duration))
                    .await
                    .map_err(|e| Halt::Invalid(format!("inject failed: {e}")))?;
                outcome.fault_id = Some(record.id);
                outcome.target = Some(target.clone());
                outcome.injected_at = Some(record.injected_at);
                self.step(
                    trial,
                    "inject",
                    format!("{} on {target}: {}", record.fault, record.note),
                )
                .await;
                if record.status != FaultStatus::Active {
                    return Err(Halt::Invalid(format!(
                        "the fault did not take: {}",
                        record.note
                    )));
                }
                record.injected_at
            }
            None => {
                let now = clock::now();
                outcome.injected_at = Some(now);
                self.step(trial, "watch", "a control trial: no fault").await;
                now
            }
        };
        let deadline_detect = Instant::now() + t.detect;
        let resolve = self.campaign.resolve_timeout(plan.baseline);
        let deadline = Instant::now() + resolve;
        let (subject_name, instance) = (plan.subject.clone(), self.instance);
        let mut linked: Vec<i64> = Vec::new();
        loop {
            let tickets = self
                .store
                .call({
                    let s = subject_name.clone();
                    move |db| db.tickets_since(&s, instance, since)
                })
                .await
                .map_err(|e| Halt::Invalid(format!("cannot read the tickets: {e}")))?;
            for (ticket, opened) in &tickets {
                if !linked.contains(&ticket.id) {
                    linked.push(ticket.id);
                    let (id, attempt, tid) = (trial.id, trial.attempt, ticket.id);
                    let _ = self
                        .store
                        .call(move |db| db.link_ticket(id, attempt, tid))
                        .await;
                    if outcome.ttd_ms.is_none() {
                        outcome.ttd_ms = Some(ms_between(since, *opened));
                    }
                    self.step(
                        trial,
                        "detect",
                        format!(
                            "ticket #{} {} {}: {}",
                            ticket.id, ticket.invariant, ticket.entity, ticket.summary
                        ),
                    )
                    .await;
                }
            }
            outcome.metrics.tickets = linked.clone();
            for (t, _) in &tickets {
                if let Some(i) = t
                    .incident_id
                    .filter(|i| !outcome.metrics.incidents.contains(i))
                {
                    outcome.metrics.incidents.push(i);
                }
            }
            if plan.control {
                if !tickets.is_empty() {
                    outcome.verdict = Some(Verdict::FalseAlarm);
                    outcome.reason = format!("{} tickets opened with no fault", tickets.len());
                    return Ok(());
                }
                if Instant::now() >= deadline_detect {
                    // Clean unless the agent changed something: decided when scoring.
                    outcome.verdict = Some(Verdict::Clean);
                    outcome.reason =
                        format!("no ticket within {}", humantime::format_duration(t.detect));
                    return Ok(());
                }
            } else if tickets.is_empty() {
                if Instant::now() >= deadline_detect {
                    outcome.verdict = Some(Verdict::Undetected);
                    outcome.reason =
                        format!("no ticket within {}", humantime::format_duration(t.detect));
                    return Ok(());
                }
            } else if let Some(v) = self
                .judge(trial, &tickets, since, subject, stop, outcome)
                .await?
            {
                outcome.verdict = Some(v);
                return Ok(());
            }
            if Instant::now() >= deadline {
                outcome.verdict = Some(Verdict::Unresolved);
                let open: Vec<String> = tickets
                    .iter()
                    .filter(|(t, _)| t.status != Status::Resolved)
                    .map(|(t, _)| format!("#{} {} ({})", t.id, t.invariant, t.status))
                    .collect();
                outcome.reason = format!(
                    "not resolved within {}{}",
                    humantime::format_duration(resolve),
                    if open.is_empty() {
                        String::new()
                    } else {
                        format!(": {} still open", open.join(", "))
                    }
                );
                return Ok(());
            }
            tokio::select! {
                _ = stop.cancelled() => return Err(Halt::Stopped),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    /// Looks at the trial's tickets: a verdict when there is one.
    async fn judge(
        &self,
        trial: &TrialRow,
        tickets: &[(Ticket, Timestamp)],
        since: Timestamp,
        subject: &mut dyn Subject,
        stop: &CancellationToken,
        outcome: &mut TrialOutcome,
    ) -> Result<Option<Verdict>, Halt> {
        if let Some((t, _)) = tickets.iter().find(|(t, _)| t.status == Status::Escalated) {
            if !trial.baseline {
                outcome.reason = format!("the agent escalated ticket #{} ({})", t.id, t.invariant);
                return Ok(Some(Verdict::Escalated));
            }
        }
        if !tickets.iter().all(|(t, _)| t.status == Status::Resolved) {
            return Ok(None);
        }
        let last = tickets
            .iter()
            .filter_map(|(t, _)| t.resolved_at)
            .max()
            .unwrap_or_else(clock::now);
        let hold = self.campaign.timeouts.hold;
        self.step(
            trial,
            "hold",
            format!(
                "every ticket resolved; checking that the cluster holds for {}",
                humantime::format_duration(hold)
            ),
        )
        .await;
        let held = tokio::select! {
            _ = stop.cancelled() => return Err(Halt::Stopped),
            h = holds(subject, hold, self.campaign.monitor.interval) => h,
        };
        match held {
            Ok(()) => {
                outcome.ttr_ms = Some(ms_between(since, last));
                let how: Vec<String> = tickets
                    .iter()
                    .map(|(t, _)| format!("#{} {}", t.id, t.resolution.map_or("?", |r| r.as_str())))
                    .collect();
                outcome.reason = format!(
                    "every ticket resolved ({}) and the cluster held for {}",
                    how.join(", "),
                    humantime::format_duration(hold)
                );
                Ok(Some(Verdict::Resolved))
            }
            Err(why) => {
                self.step(trial, "hold", format!("did not hold: {why}"))
                    .await;
                Ok(None)
            }
        }
    }

    /// The fault's target: the campaign's, else one of the candidates chosen by the seed.
    async fn target(&self, plan: &PlannedTrial, fault: Fault) -> Result<String, String> {
        if let Some(t) = &plan.target {
            return Ok(t.clone());
        }
        let kind = fault.kind();
        let status = self.runtime.status().await.map_err(|e| e.to_string())?;
        let subject = registry::kind(&plan.subject)?.faults();
        let mut names: Vec<String> = match crate::chaos::default_target(subject, kind) {
            Some(role) => status
                .iter()
                .filter(|s| s.name == role || s.role == role)
                .map(|s| s.name.clone())
                .collect(),
            None => status
                .iter()
                .filter(|s| subject.random_target_fits(&s.role) && !is_rig(&s.role))
                .filter(|s| s.state == RunState::Running)
                .map(|s| s.name.clone())
                .collect(),
        };
        names.sort();
        if names.is_empty() {
            return Err(format!("no node to {} on this instance", kind.verb()));
        }
        Ok(names[(plan.pick % names.len() as u64) as usize].clone())
    }

    /// Counts what the agent did, and decides what depends on it.
    async fn score(&self, trial: &TrialRow, since: Timestamp, outcome: &mut TrialOutcome) {
        let tickets = outcome.metrics.tickets.clone();
        let sessions = self
            .store
            .call(move |db| {
                let mut out = Vec::new();
                for t in &tickets {
                    for s in db.sessions(Some(*t), 100)? {
                        if s.started_at >= since {
                            let entries = db.entries(s.id, 0)?;
                            out.push((s, entries));
                        }
                    }
                }
                // A session that worked an incident is found through each of its tickets.
                out.sort_by_key(|(s, _)| s.id);
                out.dedup_by_key(|(s, _)| s.id);
                Ok(out)
            })
            .await
            .unwrap_or_default();
        let counted = score::count(&sessions, outcome.target.as_deref());
        let tickets = std::mem::take(&mut outcome.metrics.tickets);
        let incidents = std::mem::take(&mut outcome.metrics.incidents);
        let overhead = outcome.metrics.overhead_ms;
        outcome.metrics = counted.metrics;
        outcome.metrics.tickets = tickets;
        outcome.metrics.incidents = incidents;
        outcome.metrics.overhead_ms = overhead;
        if !trial.baseline && !trial.control && !outcome.metrics.sessions.is_empty() {
            let ids = outcome.metrics.tickets.clone();
            let healed = self
                .store
                .call(move |db| {
                    let mut out = Vec::new();
                    for id in ids {
                        out.push(db.ticket(id)?);
                    }
                    Ok(out)
                })
                .await
                .unwrap_or_default();
            outcome.metrics.scoring_errors = score::self_healed_consequences(&healed);
        }
        if trial.control && outcome.verdict == Some(Verdict::Clean) && outcome.metrics.mutating > 0
        {
            outcome.verdict = Some(Verdict::FalseAlarm);
            outcome.reason = format!(
                "no ticket, but the agent ran {} commands that change things",
                outcome.metrics.mutating
            );
        }
        if !trial.baseline && !trial.control {
            outcome.localized = Some(counted.localized);
        }
        // A regression: a ticket that opened after the agent's first change, about something
        // the fault had not broken before it.
        if let (Some(first), Some(since)) = (counted.first_change, outcome.injected_at) {
            let (subject, instance) = (trial.subject.clone(), self.instance);
            let regressed = self
                .store
                .call(move |db| {
                    // When each ticket opened (or reopened) in this trial, not when its row
                    // was first made: a ticket an earlier trial opened may come back here.
                    // A ticket that joined an incident the fault opened follows from the
                    // fault (a restarted member lagging), not from the agent.
                    let mut before = Vec::new();
                    let mut incidents = Vec::new();
                    let mut after = Vec::new();
                    for (t, opened) in db.tickets_since(&subject, instance, since)? {
                        let key = (t.invariant.clone(), t.entity.clone());
                        if opened < first {
                            before.push(key);
                            incidents.extend(t.incident_id);
                        } else {
                            after.push((key, t.incident_id));
                        }
                    }
                    Ok(after.iter().any(|(k, i)| {
                        !before.contains(k) && !i.is_some_and(|i| incidents.contains(&i))
                    }))
                })
                .await
                .unwrap_or(false);
            outcome.regression = Some(regressed);
        } else if !trial.baseline {
            outcome.regression = Some(false);
        }
        let verdict = outcome.verdict.unwrap_or(Verdict::Invalid);
        let repairable = trial
            .fault
            .as_deref()
            .and_then(|name| {
                let subject = registry::kind(&trial.subject).ok()?;
                crate::chaos::FaultKind::parse_for(name, subject.faults())
            })
            .is_none_or(|k| k.repairable());
        outcome.won = match verdict {
            Verdict::Invalid => None,
            Verdict::Clean => Some(true),
            Verdict::FalseAlarm => Some(false),
            Verdict::Resolved => Some(true),
            Verdict::Escalated => Some(!repairable && outcome.localized == Some(true)),
            _ => Some(false),
        };
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.unwatch();
    }
}

fn ms_between(from: Timestamp, to: Timestamp) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

/// Whether one look at the subject is healthy: no violation, and nothing unknown but what
/// the subject cannot decide here by design or has disabled.
pub fn healthy(subject: &dyn Subject, s: &Snapshot) -> Result<(), String> {
    if let Some(e) = &s.observation.error {
        return Err(format!("cannot observe: {e}"));
    }
    if let Some(v) = s.assessment.violations.first() {
        return Err(format!("{} {}: {}", v.invariant, v.entity, v.summary));
    }
    let exempt = subject.undecidable();
    let disabled: Vec<&str> = subject
        .invariants()
        .iter()
        .filter(|i| !i.enabled)
        .map(|i| i.name)
        .collect();
    if let Some(u) = s.assessment.unknown.iter().find(|u| {
        !exempt.contains(&u.invariant.as_str()) && !disabled.contains(&u.invariant.as_str())
    }) {
        return Err(format!(
            "{} {} is unknown: {}",
            u.invariant,
            u.entity.as_deref().unwrap_or("(all)"),
            u.reason
        ));
    }
    Ok(())
}

/// The steady-state gate: two healthy observations in a row within `within`. Returns the
/// second, or why the last one was not healthy.
pub async fn gate(
    subject: &mut dyn Subject,
    within: Duration,
    interval: Duration,
) -> Result<Snapshot, String> {
    let deadline = Instant::now() + within;
    let mut in_a_row = 0;
    let mut last_why = "no observation yet".to_string();
    loop {
        let s = subject.observe().await;
        match healthy(subject, &s) {
            Ok(()) => {
                in_a_row += 1;
                if in_a_row >= 2 {
                    return Ok(s);
                }
            }
            Err(why) => {
                in_a_row = 0;
                last_why = why;
            }
        }
        if Instant::now() >= deadline {
            return Err(last_why);
        }
        tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
    }
}

/// The oracle after the tickets resolved: every look for `hold` is healthy.
pub async fn holds(
    subject: &mut dyn Subject,
    hold: Duration,
    interval: Duration,
) -> Result<(), String> {
    let until = Instant::now() + hold;
    loop {
        let s = subject.observe().await;
        healthy(subject, &s)?;
        if Instant::now() >= until {
            return Ok(());
        }
        tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
    }
}
