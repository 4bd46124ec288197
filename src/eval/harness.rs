//! Running a campaign: validate everything first, store the plan, then run its trials on
//! `parallel` slots — each a worker taking the next pending trial — while a heartbeat tells
//! other processes the harness is alive and brings it their stop requests. Ctrl-C, SIGTERM or
//! a stop request: the running trials stop, their faults are healed, the slots torn down and
//! the campaign marked interrupted, for `--resume`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::campaign::{Campaign, DEFAULT_VARIANT, PlannedTrial};
use super::slot::{self, BASE_INSTANCE, HEARTBEAT, MAX_SLOTS};
use super::trial::{Progress, Slot, TrialEnd};
use crate::chaos::Fault;
use crate::config::Config;
use crate::paths::StateDir;
use crate::store::eval::{CampaignStatus, NewCampaign};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a harness works.
#[derive(Clone)]
pub struct Env {
    pub store: Store,
    pub state: StateDir,
    pub db: PathBuf,
    pub config: Config,
    pub config_path: Option<PathBuf>,
}

/// Checks what can only be checked against this machine before anything starts: every
/// variant's model can be built (its API key is set), every fault can be applied on the
/// campaign's runtime. Returns the models, by variant, for provenance.
pub async fn validate(
    campaign: &Campaign,
    env: &Env,
) -> Result<Vec<serde_json::Value>, HarnessError> {
    let file = campaign
        .file
        .as_ref()
        .map_or("the campaign".to_string(), |f| f.display().to_string());
    let mut models = Vec::new();
    for v in &campaign.variants {
        let cfg = v
            .agent_config(&env.config.agent)
            .map_err(|e| HarnessError::Invalid(format!("{file}: variant `{}`: {e}", v.name)))?;
        for subject in &campaign.subjects {
            let kind = crate::subjects::registry::kind(subject).map_err(HarnessError::Invalid)?;
            let model = crate::agent::build_model(&cfg, kind)
                .map_err(|e| HarnessError::Invalid(format!("{file}: variant `{}`: {e}", v.name)))?;
            models.push(json!({
                "variant": v.name,
                "subject": subject,
                "backend": model.backend(),
                "model": model.model(),
                "mode": cfg.mode.as_str(),
            }));
        }
    }
    // Asked of an instance past the slots' range, never up: another harness's slot may run
    // on another runtime.
    let kind = campaign.runtime.unwrap_or(env.config.runtime.kind);
    let runtime = slot::runtime(
        &env.state,
        &env.config,
        BASE_INSTANCE + MAX_SLOTS,
        Some(kind),
    )
    .map_err(|e| HarnessError::Invalid(format!("{file}: runtime: {e}")))?;
    // A subject whose programs or images are not here would make every trial invalid:
    // refused before anything is recorded, saying how to get them.
    for subject in &campaign.subjects {
        let kind = crate::subjects::registry::kind(subject).map_err(HarnessError::Invalid)?;
        crate::subjects::launch::preflight(kind, runtime.as_ref(), &env.config)
            .await
            .map_err(|e| HarnessError::Invalid(format!("{file}: {subject}: {e}")))?;
    }
    for f in &campaign.faults {
        if let Fault::Impair(imp) = Fault::from(f.kind) {
            runtime.mechanism(&imp).await.map_err(|why| {
                HarnessError::Invalid(format!(
                    "{file}: {} cannot be applied on the {} runtime here: {why}",
                    f.kind,
                    runtime.kind()
                ))
            })?;
        }
    }
    Ok(models)
}

fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Everything needed to say later what ran: the build, the files, the models, the machine.
pub fn provenance(
    campaign: &Campaign,
    models: Vec<serde_json::Value>,
    runtime: &str,
) -> serde_json::Value {
    let variants: Vec<serde_json::Value> = campaign
        .variants
        .iter()
        .map(|v| {
            json!({
                "name": v.name,
                "file": v.file.as_ref().map(|f| f.display().to_string()),
                "sha256": v.text.as_deref().map(sha256),
                "text": v.text,
                "default": v.name == DEFAULT_VARIANT,
            })
        })
        .collect();
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    json!({
        "operator_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("OPERATOR_GIT_REVISION").unwrap_or("unknown"),
        "campaign_file": campaign.file.as_ref().map(|f| f.display().to_string()),
        "campaign_sha256": sha256(&campaign.text),
        "campaign_text": campaign.text,
        "variants": variants,
        "models": models,
        "seed": campaign.seed.to_string(),
        "runtime": runtime,
        "machine": {
            "hostname": read("/proc/sys/kernel/hostname").trim(),
            "kernel": read("/proc/sys/kernel/osrelease").trim(),
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "memory_mib": mem_kib.map(|k| k / 1024),
        },
    })
}

/// Stores a validated campaign and its plan; returns its id.
pub async fn create(
    env: &Env,
    campaign: &Campaign,
    provenance: serde_json::Value,
) -> Result<i64, HarnessError> {
    let new = NewCampaign {
        name: campaign.name.clone(),
        spec: serde_json::to_value(campaign)
            .map_err(|e| HarnessError::Invalid(format!("the campaign: {e}")))?,
        provenance,
        pid: std::process::id(),
        trials: campaign
            .plan()
            .iter()
            .map(PlannedTrial::to_row)
            .collect::<Result<_, _>>()
            .map_err(|e| HarnessError::Invalid(format!("a planned trial: {e}")))?,
    };
    Ok(env.store.call(move |db| db.create_campaign(&new)).await?)
}

/// Runs the campaign's pending trials until none is left or `stop`; returns how it ended.
pub async fn run(
    env: Env,
    campaign: Arc<Campaign>,
    id: i64,
    progress: mpsc::UnboundedSender<Progress>,
    stop: CancellationToken,
) -> Result<CampaignStatus, HarnessError> {
    // The stored plans name subjects' own faults: chaos must know them to read them back.
    crate::subjects::registry::teach_chaos();
    let span = info_span!("campaign", id, name = %campaign.name);
    async {
        let pending = env
            .store
            .call(move |db| db.trials(id))
            .await?
            .iter()
            .filter(|t| t.status == crate::store::eval::TrialStatus::Pending)
            .count();
        let beat = {
            let (store, stop) = (env.store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tick.tick() => {}
                    }
                    match store.call(move |db| db.campaign_heartbeat(id)).await {
                        Ok(true) => {
                            info!("a stop was requested");
                            stop.cancel();
                        }
                        Ok(false) => {}
                        Err(e) => warn!(error = %e, "campaign heartbeat failed"),
                    }
                }
            })
        };
        let workers = (campaign.parallel as usize).min(pending).max(1);
        let mut tasks = Vec::new();
        for _ in 0..workers {
            tasks.push(tokio::spawn(worker(
                env.clone(),
                campaign.clone(),
                id,
                progress.clone(),
                stop.clone(),
            )));
        }
        let mut errors = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("a slot's worker failed: {e}")),
            }
        }
        let interrupted = stop.is_cancelled();
        stop.cancel();
        let _ = beat.await;
        let left = env
            .store
            .call(move |db| db.trials(id))
            .await?
            .iter()
            .filter(|t| t.status != crate::store::eval::TrialStatus::Done)
            .count();
        let (status, note) = if left == 0 {
            (CampaignStatus::Finished, String::new())
        } else if interrupted {
            (
                CampaignStatus::Interrupted,
                format!("stopped with {left} trials to run; `--resume {id}` runs them"),
            )
        } else {
            (
                CampaignStatus::Interrupted,
                format!("{left} trials did not run: {}", errors.join("; ")),
            )
        };
        env.store
            .call(move |db| db.end_campaign(id, status, &note))
            .await?;
        Ok(status)
    }
    .instrument(span)
    .await
}

/// One slot: claims it, runs trials on it until none is left, tears it down.
async fn worker(
    env: Env,
    campaign: Arc<Campaign>,
    id: i64,
    progress: mpsc::UnboundedSender<Progress>,
    stop: CancellationToken,
) -> Result<(), String> {
    let pid = std::process::id();
    let runtime_kind = campaign.runtime.unwrap_or(env.config.runtime.kind);
    let kind = runtime_kind.as_str();
    let claimed = env
        .store
        .call(move |db| db.claim_slot(id, pid, kind, BASE_INSTANCE, MAX_SLOTS))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("all {MAX_SLOTS} trial slots are taken"))?;
    let (n, instance) = (claimed.slot, claimed.instance);
    let _ = progress.send(Progress::Slot {
        slot: n,
        message: format!("slot {n}: instance {instance}"),
    });
    let current: Arc<Mutex<Option<i64>>> = Arc::default();
    let slot_stop = CancellationToken::new();
    let beat = {
        let (store, current, slot_stop) = (env.store.clone(), current.clone(), slot_stop.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = slot_stop.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let trial = *current.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = store.call(move |db| db.slot_heartbeat(n, pid, trial)).await {
                    warn!(error = %e, "slot heartbeat failed");
                }
            }
        })
    };
    let result = async {
        let runtime = slot::runtime(&env.state, &env.config, instance, Some(runtime_kind))
            .map_err(|e| e.to_string())?;
        let mut s = Slot::new(
            n,
            instance,
            runtime,
            env.store.clone(),
            env.state.clone(),
            env.db.clone(),
            env.config.clone(),
            env.config_path.clone(),
            campaign.clone(),
            progress.clone(),
        );
        let mut first = true;
        // Whatever ends the loop, the slot is torn down after it.
        let ran: Result<(), String> = loop {
            if stop.is_cancelled() {
                break Ok(());
            }
            let next = match env
                .store
                .call(move |db| db.next_trial(id, n, instance))
                .await
            {
                Ok(n) => n,
                Err(e) => break Err(e.to_string()),
            };
            let Some(trial) = next else {
                break Ok(());
            };
            if !first && !campaign.cooldown.is_zero() {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(campaign.cooldown) => {}
                }
            }
            first = false;
            *current.lock().unwrap_or_else(|e| e.into_inner()) = Some(trial.id);
            let tid = trial.id;
            let plan = match env.store.call(move |db| db.trial_plan(tid)).await {
                Ok(p) => match PlannedTrial::from_row(p) {
                    Ok(p) => p,
                    Err(e) => break Err(format!("trial #{tid}'s plan: {e}")),
                },
                Err(e) => break Err(e.to_string()),
            };
            match s.run(&trial, &plan, &stop).await {
                TrialEnd::Finished(outcome) => {
                    if let Err(e) = env
                        .store
                        .call(move |db| db.finish_trial(tid, &outcome))
                        .await
                    {
                        break Err(e.to_string());
                    }
                    if let Ok(Some(row)) = env.store.call(move |db| db.trial(tid)).await {
                        let _ = progress.send(Progress::Finished(Box::new(row)));
                    }
                }
                TrialEnd::Interrupted => {
                    // Its fault is healed; it reruns on `--resume`.
                    let _ = env
                        .store
                        .call(move |db| db.unfinish_trial(tid, "the campaign was stopped"))
                        .await;
                    break Ok(());
                }
            }
            *current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        };
        let notes = s.close().await;
        let _ = progress.send(Progress::Slot {
            slot: n,
            message: format!(
                "slot {n} torn down{}",
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", notes.join("; "))
                }
            ),
        });
        ran
    }
    .await;
    slot_stop.cancel();
    let _ = beat.await;
    if let Err(e) = env.store.call(move |db| db.release_slot(n, pid)).await {
        warn!(error = %e, slot = n, "could not free the slot");
    }
    result
}
