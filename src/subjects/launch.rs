//! Bringing a subject's cluster up: shared by the CLI, the TUI and the harness, which look the
//! subject up and hand it here.

use super::SubjectKind;
use crate::config::Config;
use crate::runtime::{ClusterPlan, Runtime, RuntimeError, UpReport};

/// Starts `subject`'s cluster and waits until it serves. Free ports are free when picked,
/// but another program may take one before a node binds it: pick again a few times. Fixed
/// ports are not retried.
pub async fn up(
    kind: &dyn SubjectKind,
    runtime: &dyn Runtime,
    config: &Config,
) -> Result<UpReport, RuntimeError> {
    let attempts = if config.runtime.local.base_port.is_some() {
        1
    } else {
        3
    };
    let mut attempt = 1;
    let report = loop {
        match runtime.up(planned(kind, runtime, config)?).await {
            Err(e) if attempt < attempts && lost_port_race(&e) => {
                tracing::warn!(error = %e, attempt, "a port was taken while starting; retrying");
                attempt += 1;
            }
            other => break other?,
        }
    };
    if let Err(reason) = kind.settle(runtime, config).await {
        // Leave nothing half made behind.
        let _ = runtime.down().await;
        return Err(RuntimeError::NotServing {
            subject: kind.name().to_string(),
            reason,
        });
    }
    Ok(report)
}

/// The subject's plan on `runtime`, each node told how to get its program in the subject's
/// words (on Docker the plan's own advice is about its images).
fn planned(
    kind: &dyn SubjectKind,
    runtime: &dyn Runtime,
    config: &Config,
) -> Result<ClusterPlan, RuntimeError> {
    let mut plan = kind.plan(runtime, config)?;
    for node in plan.nodes.iter_mut().filter(|_| runtime.kind() != "docker") {
        if let Some(name) = node.program.file_name().and_then(|n| n.to_str()) {
            node.install_hint = node.install_hint.take().or_else(|| kind.install_hint(name));
        }
    }
    Ok(plan)
}

/// Whether `kind`'s cluster could be brought up on `runtime`: every program or image its
/// plan needs is here. Nothing is started or recorded.
pub async fn preflight(
    kind: &dyn SubjectKind,
    runtime: &dyn Runtime,
    config: &Config,
) -> Result<(), RuntimeError> {
    runtime.check_plan(&planned(kind, runtime, config)?).await
}

fn lost_port_race(e: &RuntimeError) -> bool {
    match e {
        RuntimeError::PortInUse { .. } => true,
        RuntimeError::StartFailed { log_tail, .. } => log_tail.contains("in use"),
        // The engine could not publish a port on loopback.
        RuntimeError::Engine { message } => {
            message.contains("address already in use")
                || message.contains("port is already allocated")
        }
        _ => false,
    }
}

/// The wait after `up` until a subject's cluster serves, which each subject's `settle` loops
/// around its own look: the runtime's startup timeout, and what to say when it passes.
pub struct Settling {
    deadline: std::time::Instant,
    timeout: std::time::Duration,
    cluster: &'static str,
}

impl Settling {
    pub fn new(runtime: &dyn Runtime, cluster: &'static str) -> Self {
        Self {
            deadline: std::time::Instant::now() + runtime.startup_timeout(),
            timeout: runtime.startup_timeout(),
            cluster,
        }
    }

    /// `Some` once the wait is over: nothing is `waiting` (a line per thing still awaited),
    /// or the time is up, saying what was.
    pub fn over(&self, waiting: &[String]) -> Option<Result<(), String>> {
        if waiting.is_empty() {
            return Some(Ok(()));
        }
        (std::time::Instant::now() >= self.deadline).then(|| {
            Err(format!(
                "the {} cluster did not form within {}: {}",
                self.cluster,
                humantime::format_duration(self.timeout),
                waiting.join("; ")
            ))
        })
    }
}
