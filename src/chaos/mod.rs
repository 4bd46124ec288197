//! Chaos: faults injected on purpose, each recorded in the ledger before it is applied,
//! healed on demand, on expiry, or by the sweep that every operator process runs at start
//! (so a crash never leaves a fault behind).

pub mod faults;
mod subject;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::seq::IndexedRandom;
use tracing::{info, instrument, warn};

pub use self::faults::{Fault, FaultKind};
pub use self::subject::{FaultAction, SubjectFaults};
use crate::clock;
use crate::runtime::{NodeAction, RunState, Runtime, RuntimeError, impair, is_rig};
pub use crate::store::ledger::{FaultRecord, FaultStatus, NewFault};
use crate::store::{Store, StoreError};

/// A fault left `injecting` or `healing` this long was abandoned by a crashed process.
const ABANDONED_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("unknown target `{target}`; nodes of this instance: {known}")]
    UnknownTarget { target: String, known: String },
    #[error("{0}")]
    NotApplicable(String),
    #[error("fault #{} ({}) is already active on {}; heal it first with `operator chaos heal {}`", .0.id, .0.fault, .0.target, .0.id)]
    AlreadyActive(Box<FaultRecord>),
    #[error("no fault #{0} in the ledger")]
    NotFound(i64),
    #[error("no running node to target")]
    NoTarget,
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The node `kind` aims at on `subject` when none is named.
pub fn default_target(subject: &dyn SubjectFaults, kind: FaultKind) -> Option<&'static str> {
    if let FaultKind::Own(o) = kind {
        return o.0.default_target;
    }
    subject.default_target(kind)
}

/// Injects and heals faults on one subject instance.
pub struct Chaos {
    store: Store,
    runtime: Arc<dyn Runtime>,
    /// The instance's subject: its own faults, and where faults aim.
    subject: &'static dyn SubjectFaults,
    durations: BTreeMap<String, Duration>,
    actor: String,
}

/// What a heal found and did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Healed {
    pub fault: FaultRecord,
    /// False when it was already healed (by someone else, or it never took).
    pub acted: bool,
}

impl Chaos {
    /// `actor` names this process in the ledger (`cli`, `tui`, `eval`).
    pub fn new(
        store: Store,
        runtime: Arc<dyn Runtime>,
        subject: &'static dyn SubjectFaults,
        durations: BTreeMap<String, Duration>,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            store,
            runtime,
            subject,
            durations,
            actor: actor.into(),
        }
    }

    /// Faults of this instance, newest first: only live ones unless `all`.
    pub async fn faults(&self, all: bool) -> Result<Vec<FaultRecord>, ChaosError> {
        let instance = self.runtime.instance();
        Ok(self
            .store
            .call(move |db| db.faults(Some(instance), all))
            .await?)
    }

    async fn fault(&self, id: i64) -> Result<FaultRecord, ChaosError> {
        self.store
            .call(move |db| db.fault(id))
            .await?
            .ok_or(ChaosError::NotFound(id))
    }

    async fn set_status(
        &self,
        id: i64,
        status: FaultStatus,
        note: &str,
        healed_by: bool,
    ) -> Result<(), ChaosError> {
        let note = note.to_string();
        let actor = healed_by.then(|| self.actor.clone());
        Ok(self
            .store
            .call(move |db| db.set_fault_status(id, status, &note, actor.as_deref()))
            .await?)
    }

    /// How long `fault` lasts when no duration is given.
    pub fn default_duration(&self, fault: FaultKind) -> Option<Duration> {
        self.durations.get(fault.as_str()).copied()
    }

    /// Applies `fault` to `target` (or to a random running node fit for it). `duration`:
    /// `Some(0)` means no expiry; `None` takes the configured default.
    #[instrument(skip(self, fault), fields(instance = self.runtime.instance()))]
    pub async fn inject(
        &self,
        fault: impl Into<Fault>,
        target: Option<&str>,
        duration: Option<Duration>,
    ) -> Result<FaultRecord, ChaosError> {
        let fault: Fault = fault.into();
        let kind = fault.kind();
        if let Some(imp) = fault.impairment() {
            // Refuse what this runtime cannot do before anything is recorded.
            if let Err(reason) = self.runtime.mechanism(imp).await {
                return Err(ChaosError::NotApplicable(format!(
                    "{kind} is not available on the {} runtime here: {reason}",
                    self.runtime.kind()
                )));
            }
        }
        let topology = self.runtime.topology()?;
        if let Some(owner) = kind.subject().filter(|s| *s != topology.subject) {
            return Err(ChaosError::NotApplicable(format!(
                "{kind} is a fault of {owner}; instance {} runs {}",
                topology.instance, topology.subject
            )));
        }
        let status = self.runtime.status().await?;
        let known = || {
            status
                .iter()
                .filter(|s| !is_rig(&s.role))
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let target =
            match target.or(default_target(self.subject, kind)) {
                Some(t) => status.iter().find(|s| s.name == t).ok_or_else(|| {
                    ChaosError::UnknownTarget {
                        target: t.into(),
                        known: known(),
                    }
                })?,
                None => {
                    let candidates: Vec<_> = status
                        .iter()
                        .filter(|s| {
                            self.subject.random_target_fits(&s.role) && s.state == RunState::Running
                        })
                        .collect();
                    *candidates
                        .choose(&mut rand::rng())
                        .ok_or(ChaosError::NoTarget)?
                }
            };
        if is_rig(&target.role) {
            return Err(ChaosError::NotApplicable(format!(
                "{} is part of the test rig ({}) rather than the subject; choose one of: {}",
                target.name,
                target.role,
                known()
            )));
        }
        match (kind, target.state) {
            (_, RunState::Exited) => {
                return Err(ChaosError::NotApplicable(format!(
                    "{} is already down; nothing to {}",
                    target.name,
                    kind.verb()
                )));
            }
            (FaultKind::Pause, RunState::Paused) => {
                return Err(ChaosError::NotApplicable(format!(
                    "{} is already paused",
                    target.name
                )));
            }
            _ => {}
        }
        let duration = duration
            .or(self.default_duration(kind))
            .filter(|d| !d.is_zero());
        let expires_at =
            duration.map(|d| clock::now() + chrono::Duration::from_std(d).unwrap_or_default());
        let new = NewFault {
            fault: kind.as_str().to_string(),
            subject: topology.subject.clone(),
            instance: topology.instance,
            runtime: self.runtime.kind().to_string(),
            target: target.name.clone(),
            params: serde_json::json!({
                "duration": duration.map(|d| humantime::format_duration(d).to_string()),
                "impairment": fault.impairment(),
            }),
            expires_at,
            injected_by: self.actor.clone(),
        };
        let record = self.store.call(move |db| db.record_fault(&new)).await?;
        let record = record.map_err(|existing| ChaosError::AlreadyActive(Box::new(existing)))?;
        let applied = match &fault {
            Fault::NodeKill => self
                .runtime
                .act(&target.name, NodeAction::Kill)
                .await
                .map(|s| format!("killed {}", s.name)),
            Fault::Pause => self
                .runtime
                .act(&target.name, NodeAction::Pause)
                .await
                .map(|s| format!("paused {}", s.name)),
            Fault::Impair(imp) => {
                self.runtime
                    .impair(&target.name, imp, &impair::tag(record.id))
                    .await
            }
            Fault::Own { name } => self.own(*name, &target.name, true).await,
        };
        match applied {
            Ok(note) => {
                self.set_status(record.id, FaultStatus::Active, &note, false)
                    .await?;
                info!(id = record.id, fault = %kind, target = %target.name, %note, "fault injected");
            }
            Err(e) => {
                // Take back whatever part of it took, so nothing is left half applied.
                match &fault {
                    Fault::Impair(imp) => {
                        let _ = self
                            .runtime
                            .restore(&target.name, imp, &impair::tag(record.id))
                            .await;
                    }
                    Fault::Own { name } => {
                        let _ = self.own(*name, &target.name, false).await;
                    }
                    _ => {}
                }
                self.set_status(record.id, FaultStatus::Failed, &e.to_string(), false)
                    .await?;
                return Err(e.into());
            }
        }
        self.fault(record.id).await
    }

    /// A subject's own fault, injected or healed by its subject.
    async fn own(
        &self,
        fault: faults::OwnRef,
        target: &str,
        inject: bool,
    ) -> Result<String, RuntimeError> {
        if fault.0.subject != self.subject.name() {
            return Err(RuntimeError::Impair {
                target: target.to_string(),
                message: format!(
                    "{} is a fault of {}, not of {}",
                    fault.0.name,
                    fault.0.subject,
                    self.subject.name()
                ),
            });
        }
        let action = fault.0.action;
        let done = if inject {
            action.inject(target, self.runtime.as_ref()).await
        } else {
            action.heal(target, self.runtime.as_ref()).await
        };
        done.map_err(|message| RuntimeError::Impair {
            target: target.to_string(),
            message,
        })
    }

    /// How `kind` (with its defaults) is applied on this runtime, or why it cannot be.
    pub async fn mechanism(&self, kind: FaultKind) -> Result<String, String> {
        match Fault::from(kind) {
            Fault::Own { name } => Ok(format!("{}'s own: {}", name.0.subject, name.0.description)),
            Fault::Impair(imp) => self.runtime.mechanism(&imp).await,
            Fault::NodeKill | Fault::Pause => Ok(match self.runtime.kind() {
                "local" => format!(
                    "{} to the process",
                    if kind == FaultKind::NodeKill {
                        "SIGKILL"
                    } else {
                        "SIGSTOP"
                    }
                ),
                other => format!("the {other} runtime's {}", kind.verb()),
            }),
        }
    }

    /// Heals one fault, from any process. Idempotent: a fault already healed is returned as is.
    #[instrument(skip(self), fields(instance = self.runtime.instance()))]
    pub async fn heal(&self, id: i64) -> Result<Healed, ChaosError> {
        let stale = chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or_default();
        let record = self.fault(id).await?;
        if record.instance != self.runtime.instance() {
            return Err(ChaosError::NotApplicable(format!(
                "fault #{id} is on instance {}; use `--instance {}`",
                record.instance, record.instance
            )));
        }
        let actor = self.actor.clone();
        let claimed = self
            .store
            .call(move |db| db.claim_heal(id, &actor, stale))
            .await?;
        if !claimed {
            let fault = self.fault(id).await?;
            return Ok(Healed {
                fault,
                acted: false,
            });
        }
        let note = match self.undo(&record).await {
            Ok(note) => note,
            Err(e) => {
                // Back to active, so that a later heal or the sweep tries again.
                let msg = format!("heal failed: {e}");
                self.set_status(id, FaultStatus::Active, &msg, false)
                    .await?;
                warn!(id, error = %e, "heal failed");
                return Err(e);
            }
        };
        self.set_status(id, FaultStatus::Healed, &note, true)
            .await?;
        info!(id, %note, "fault healed");
        let fault = self.fault(id).await?;
        Ok(Healed { fault, acted: true })
    }

    /// Undoes a fault and checks that it is undone; says what it did.
    async fn undo(&self, record: &FaultRecord) -> Result<String, ChaosError> {
        let Some(kind) = FaultKind::parse_for(&record.fault, self.subject) else {
            return Err(ChaosError::NotApplicable(format!(
                "fault #{} is `{}`, which {} does not know",
                record.id,
                record.fault,
                self.subject.name()
            )));
        };
        if let FaultKind::Own(name) = kind {
            return match self.own(name, &record.target, false).await {
                Ok(note) => Ok(note),
                Err(_) if matches!(self.runtime.topology(), Err(RuntimeError::NotUp { .. })) => {
                    Ok("the instance is down; nothing left to heal".into())
                }
                Err(e) => Err(e.into()),
            };
        }
        if let Fault::Impair(imp) = Fault::from_record(kind, &record.params) {
            return match self
                .runtime
                .restore(&record.target, &imp, &impair::tag(record.id))
                .await
            {
                Ok(note) => Ok(note),
                Err(RuntimeError::NotUp { .. }) => {
                    Ok("the instance is down; nothing left to heal".into())
                }
                Err(e) => Err(e.into()),
            };
        }
        let status = match self.runtime.status().await {
            Ok(s) => s,
            Err(RuntimeError::NotUp { .. }) => {
                return Ok("the instance is down; nothing left to heal".into());
            }
            Err(e) => return Err(e.into()),
        };
        let Some(node) = status.iter().find(|s| s.name == record.target) else {
            return Ok(format!(
                "{} is no longer part of the instance",
                record.target
            ));
        };
        let target = &record.target;
        match (kind, node.state) {
            (FaultKind::NodeKill, RunState::Exited) => {
                let s = self.runtime.act(target, NodeAction::Start).await?;
                Ok(format!(
                    "started {target} again (pid {})",
                    s.pid.unwrap_or_default()
                ))
            }
            (FaultKind::NodeKill, _) => Ok(format!("{target} was already running again")),
            (FaultKind::Pause, RunState::Paused) => {
                let s = self.runtime.act(target, NodeAction::Resume).await?;
                if s.state == RunState::Paused {
                    return Err(ChaosError::NotApplicable(format!(
                        "{target} is still paused"
                    )));
                }
                Ok(format!("resumed {target}"))
            }
            (FaultKind::Pause, RunState::Running) => Ok(format!("{target} was already running")),
            (FaultKind::Pause, RunState::Exited) => {
                Ok(format!("{target} is down; nothing to resume"))
            }
            (kind, _) => Ok(format!("{kind} has nothing to undo on {target}")),
        }
    }

    /// Heals every live fault of this instance.
    pub async fn heal_all(&self) -> Result<Vec<Healed>, ChaosError> {
        let mut out = Vec::new();
        for f in self.faults(false).await? {
            out.push(self.heal(f.id).await?);
        }
        Ok(out)
    }

    /// Heals what should not be live any more: expired faults, and faults a crashed
    /// process left half injected or half healed.
    pub async fn sweep(&self) -> Result<Vec<Healed>, ChaosError> {
        let now = clock::now();
        let abandoned = now - chrono::Duration::from_std(ABANDONED_AFTER).unwrap_or_default();
        let mut out = Vec::new();
        for f in self.faults(false).await? {
            let due = match f.status {
                FaultStatus::Active => f.expires_at.is_some_and(|e| e <= now),
                FaultStatus::Injecting | FaultStatus::Healing => f.updated_at <= abandoned,
                _ => false,
            };
            if due {
                match self.heal(f.id).await {
                    Ok(h) => out.push(h),
                    Err(e) => warn!(id = f.id, error = %e, "sweep could not heal"),
                }
            }
        }
        Ok(out)
    }

    /// Waits until fault `id` expires, then heals it (unless someone already did).
    pub async fn heal_at_expiry(&self, id: i64) -> Result<Option<Healed>, ChaosError> {
        loop {
            let f = self.fault(id).await?;
            if !f.status.is_live() {
                return Ok(None);
            }
            let Some(expires) = f.expires_at else {
                return Ok(None);
            };
            let left = (expires - clock::now()).to_std().unwrap_or_default();
            if left.is_zero() {
                return self.heal(id).await.map(Some);
            }
            // Wake up now and then: the fault may be healed by hand meanwhile.
            tokio::time::sleep(left.min(Duration::from_secs(5))).await;
        }
    }
}
