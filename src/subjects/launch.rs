//! Building a subject and bringing its cluster up: shared by the CLI and the TUI.

use std::sync::Arc;

use super::{Subject, unknown_subject};
use crate::config::Config;
use crate::runtime::local::LocalRuntime;
use crate::runtime::{Runtime, RuntimeError, UpReport};

/// The subject called `name`, observing the instance `runtime` manages.
pub fn build(
    name: &str,
    runtime: Arc<dyn Runtime>,
    config: &Config,
) -> Result<Box<dyn Subject>, String> {
    match name {
        "ratelimiter" => Ok(Box::new(super::ratelimiter::RateLimiterSubject::new(
            runtime,
            config.ratelimiter.clone(),
        ))),
        other => Err(unknown_subject(other)),
    }
}

/// Starts `subject`'s cluster. Free ports are free when picked, but another program may take
/// one before a node binds it: pick again a few times. Fixed ports are not retried.
pub async fn up(
    subject: &str,
    runtime: &dyn Runtime,
    config: &Config,
) -> Result<UpReport, RuntimeError> {
    let cfg = &config.ratelimiter;
    let names = super::ratelimiter::topology::port_names(cfg);
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let attempts = if config.runtime.local.base_port.is_some() {
        1
    } else {
        3
    };
    let mut attempt = 1;
    debug_assert_eq!(subject, super::ratelimiter::topology::SUBJECT);
    loop {
        let plan = match runtime.kind() {
            // Containers each have their own address; the runtime publishes what it probes.
            "docker" => super::ratelimiter::topology::plan_docker(cfg, &config.runtime.docker),
            _ => {
                let ports = runtime.allocate_ports(&name_refs)?;
                super::ratelimiter::topology::plan(
                    cfg,
                    &config.runtime.local,
                    LocalRuntime::host(),
                    &ports,
                )
            }
        };
        match runtime.up(plan).await {
            Err(e) if attempt < attempts && lost_port_race(&e) => {
                tracing::warn!(error = %e, attempt, "a port was taken while starting; retrying");
                attempt += 1;
            }
            other => return other,
        }
    }
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
