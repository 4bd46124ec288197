//! A ticket's claim, kept alive: the lease is short (a crashed agent's ticket is claimed
//! again within seconds) and renewed on a heartbeat for as long as the session runs — while
//! the model streams, a command runs, an approval waits or the fix is being verified.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info_span, warn};

use crate::store::{Store, StoreError};

/// The heartbeat of one session's claim; it stops when dropped.
pub struct Lease {
    store: Store,
    ticket: i64,
    agent: String,
    duration: Duration,
    stop: CancellationToken,
    lost: CancellationToken,
}

impl Lease {
    /// Renews the claim every third of `duration` until dropped, or until the ticket is no
    /// longer this agent's (then [`Lease::lost`] fires).
    pub fn keep(store: Store, ticket: i64, agent: &str, duration: Duration) -> Self {
        let lease = Self {
            store,
            ticket,
            agent: agent.to_string(),
            duration,
            stop: CancellationToken::new(),
            lost: CancellationToken::new(),
        };
        let (store, agent, stop, lost) = (
            lease.store.clone(),
            lease.agent.clone(),
            lease.stop.clone(),
            lease.lost.clone(),
        );
        let beat = (duration / 3).max(Duration::from_millis(100));
        tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(beat) => {}
                    }
                    match renew(&store, ticket, &agent, duration).await {
                        Ok(()) => {}
                        Err(e @ StoreError::Transition { .. }) => {
                            warn!(error = %e, "the lease is lost");
                            lost.cancel();
                            break;
                        }
                        // Busy or failing: the next beat tries again, within the lease.
                        Err(e) => warn!(error = %e, "could not renew the lease"),
                    }
                }
            }
            .instrument(info_span!("lease", ticket)),
        );
        lease
    }

    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Resolves when the claim is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Renews now: proof that this agent holds the ticket at this moment, or why not.
    pub async fn confirm(&self) -> Result<(), String> {
        if self.is_lost() {
            return Err("this agent no longer holds the ticket (its lease was lost)".into());
        }
        renew(&self.store, self.ticket, &self.agent, self.duration)
            .await
            .map_err(|e| {
                if matches!(e, StoreError::Transition { .. }) {
                    self.lost.cancel();
                }
                format!("this agent cannot confirm it still holds the ticket: {e}")
            })
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn renew(store: &Store, id: i64, agent: &str, lease: Duration) -> Result<(), StoreError> {
    let agent = agent.to_string();
    store
        .call(move |db| db.renew_lease(id, &agent, lease).map(|_| ()))
        .await
}
