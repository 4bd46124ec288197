//! An incident's claim, kept alive: the lease is short (a crashed agent's incident is claimed
//! again within seconds) and renewed on a heartbeat for as long as the session runs — while
//! the model streams, a command runs, an approval waits or the fix is being verified. Each
//! renewal takes in the tickets that joined the incident since, and the session sees them.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::store::{Store, StoreError};
use crate::tickets::Claimed;

/// The heartbeat of one session's claim; it stops when dropped.
pub struct Lease {
    store: Store,
    incident: i64,
    /// The incident as the last renewal found it.
    latest: watch::Sender<Claimed>,
    agent: String,
    duration: Duration,
    stop: CancellationToken,
    lost: CancellationToken,
}

impl Lease {
    /// Renews the claim every third of `duration` until dropped, or until the incident is
    /// no longer this agent's (then [`Lease::lost`] fires).
    pub fn keep(store: Store, claimed: Claimed, agent: &str, duration: Duration) -> Self {
        let incident = claimed.incident.id;
        let lease = Self {
            store,
            incident,
            latest: watch::Sender::new(claimed),
            agent: agent.to_string(),
            duration,
            stop: CancellationToken::new(),
            lost: CancellationToken::new(),
        };
        let (store, agent, stop, lost, latest) = (
            lease.store.clone(),
            lease.agent.clone(),
            lease.stop.clone(),
            lease.lost.clone(),
            lease.latest.clone(),
        );
        let beat = (duration / 3).max(Duration::from_millis(100));
        tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(beat) => {}
                    }
                    match renew(&store, incident, &agent, duration).await {
                        Ok(c) => {
                            latest.send_replace(c);
                        }
                        Err(e) if e.is_lost_claim() => {
                            warn!(error = %e, "the lease is lost");
                            lost.cancel();
                            break;
                        }
                        // Busy or failing: the next beat tries again, within the lease.
                        Err(e) => warn!(error = %e, "could not renew the lease"),
                    }
                }
            }
            .instrument(info_span!("lease", incident)),
        );
        lease
    }

    /// The incident and its tickets as of the last renewal.
    pub fn claimed(&self) -> Claimed {
        self.latest.borrow().clone()
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Resolves when the claim is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Renews now: proof that this agent holds the incident at this moment, or why not.
    pub async fn confirm(&self) -> Result<(), String> {
        if self.is_lost() {
            return Err("this agent no longer holds the incident (its lease was lost)".into());
        }
        match renew(&self.store, self.incident, &self.agent, self.duration).await {
            Ok(c) => {
                self.latest.send_replace(c);
                Ok(())
            }
            Err(e) => {
                if e.is_lost_claim() {
                    self.lost.cancel();
                }
                Err(format!(
                    "this agent cannot confirm it still holds the incident: {e}"
                ))
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn renew(
    store: &Store,
    id: i64,
    agent: &str,
    lease: Duration,
) -> Result<Claimed, StoreError> {
    let agent = agent.to_string();
    store
        .call(move |db| db.renew_lease(id, &agent, lease))
        .await
}
