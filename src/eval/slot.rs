//! Trial slots: instances kept for the harness (never the user's instance 0), each claimed in
//! the DB by one harness with its pid and a heartbeat, so that parallel trials — and two
//! `eval run` at once — never share nodes, tickets or ledger rows; and the sweep that any
//! `operator` command runs, which tears down the slots of a harness that is gone.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::chaos::Chaos;
use crate::config::{Config, RuntimeKind};
use crate::paths::StateDir;
use crate::runtime::{Runtime, RuntimeError};
use crate::store::eval::{CampaignStatus, SlotRow};
use crate::store::{Store, StoreError};
use crate::tickets::TicketFilter;

/// The first instance number of the harness's range: slot N is instance `BASE + N`.
pub const BASE_INSTANCE: u32 = 100;
/// How many slots exist.
pub const MAX_SLOTS: u32 = 64;
/// How often a harness says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A slot whose harness has not said so for this long is abandoned, even if a process with
/// its pid exists (pids are reused). Long enough that a DB held by another process for a
/// while (its busy timeout is 10 s) never passes for a dead harness.
pub const STALE_AFTER: Duration = Duration::from_secs(120);

/// Whether the harness with this pid still runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    crate::runtime::local::process::running(pid)
}

fn abandoned(slot: &SlotRow, now: crate::clock::Timestamp) -> bool {
    let stale = chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    !alive(slot.pid) || now - slot.heartbeat_at > stale
}

/// The runtime of a slot's instance.
pub fn runtime(
    state: &StateDir,
    config: &Config,
    instance: u32,
    kind: Option<RuntimeKind>,
) -> Result<Arc<dyn Runtime>, RuntimeError> {
    crate::runtime::open::open(state, instance, &config.runtime, kind)
}

/// Heals every live fault of a slot's instance — whatever its duration —, closes its
/// tickets and takes it down.
pub async fn teardown(
    store: &Store,
    runtime: Arc<dyn Runtime>,
    durations: std::collections::BTreeMap<String, Duration>,
    why: &str,
) -> Vec<String> {
    let instance = runtime.instance();
    let mut notes = Vec::new();
    // The instance's subject as its record names it; a slot that is down has no faults
    // left to heal but generic ones, which any subject's chaos heals.
    let subject = runtime
        .topology()
        .ok()
        .and_then(|t| crate::subjects::registry::kind(&t.subject).ok())
        .unwrap_or(crate::subjects::registry::REGISTRY[0]);
    let chaos = Chaos::new(
        store.clone(),
        runtime.clone(),
        subject.faults(),
        durations,
        "eval",
    );
    match chaos.heal_all().await {
        Ok(h) => {
            for f in h.iter().filter(|h| h.acted) {
                notes.push(format!("healed fault #{} ({})", f.fault.id, f.fault.fault));
            }
        }
        Err(e) => notes.push(format!("could not heal instance {instance}'s faults: {e}")),
    }
    let why = why.to_string();
    let closed = store
        .call(move |db| {
            let open = db.tickets(&TicketFilter {
                active: true,
                instance: Some(instance),
                ..TicketFilter::default()
            })?;
            for t in &open {
                db.resolve_manual(t.id, "eval", &why)?;
            }
            Ok(open.len())
        })
        .await;
    match closed {
        Ok(0) => {}
        Ok(n) => notes.push(format!("closed {n} tickets")),
        Err(e) => notes.push(format!(
            "could not close instance {instance}'s tickets: {e}"
        )),
    }
    match runtime.down().await {
        Ok(d) if !d.stopped.is_empty() => notes.push(format!("stopped {}", d.stopped.join(", "))),
        Ok(_) => {}
        Err(RuntimeError::NotUp { .. }) => {}
        Err(e) => notes.push(format!("could not take instance {instance} down: {e}")),
    }
    notes
}

/// What the sweep found and did.
#[derive(Debug, Default)]
pub struct Swept {
    pub slots: Vec<(SlotRow, Vec<String>)>,
    pub campaigns: Vec<i64>,
}

/// Finds the slots whose harness is gone (its pid, its heartbeat), heals their faults,
/// closes their tickets, takes them down and frees them; marks campaigns whose harness is
/// gone as interrupted (`--resume` reruns what did not finish).
pub async fn sweep(store: &Store, state: &StateDir, config: &Config) -> Result<Swept, StoreError> {
    let now = crate::clock::now();
    let mut out = Swept::default();
    let slots = store.call(|db| db.slots()).await?;
    for slot in slots.into_iter().filter(|s| abandoned(s, now)) {
        warn!(
            slot = slot.slot,
            pid = slot.pid,
            "tearing down a slot whose harness is gone"
        );
        let kind = RuntimeKind::parse(&slot.runtime);
        let notes = match runtime(state, config, slot.instance, kind) {
            Ok(rt) => {
                teardown(
                    store,
                    rt,
                    config.chaos.durations.clone(),
                    "the trial's harness is gone; its slot was torn down",
                )
                .await
            }
            Err(e) => vec![format!("cannot open instance {}: {e}", slot.instance)],
        };
        let (s, pid) = (slot.slot, slot.pid);
        store.call(move |db| db.release_slot(s, pid)).await?;
        out.slots.push((slot, notes));
    }
    let stale = chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let campaigns = store.call(|db| db.campaigns(50)).await?;
    for c in campaigns
        .into_iter()
        .filter(|c| c.status == CampaignStatus::Running)
    {
        let gone =
            c.pid.is_none_or(|p| !alive(p)) || c.heartbeat_at.is_none_or(|h| now - h > stale);
        if !gone {
            continue;
        }
        let id = c.id;
        let note = format!(
            "its harness (pid {}) is gone; `operator eval run campaign FILE --resume {id}` finishes it",
            c.pid.unwrap_or_default()
        );
        store
            .call(move |db| {
                for t in db.trials(id)? {
                    if t.status == crate::store::eval::TrialStatus::Running {
                        db.unfinish_trial(t.id, "its harness is gone")?;
                    }
                }
                db.end_campaign(id, CampaignStatus::Interrupted, &note)
            })
            .await?;
        info!(campaign = id, "marked interrupted: its harness is gone");
        out.campaigns.push(id);
    }
    Ok(out)
}
