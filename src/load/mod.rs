//! Load: a subject's traffic at a steady rate, with served / refused / failed counts and
//! latency percentiles every second. Open loop: requests go out on schedule whether or not
//! earlier ones have answered, as real clients do. What a request is belongs to the subject
//! (its [`Workload`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// What one request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served: allowed by a rate limiter, a write acknowledged or a read answered.
    Ok,
    /// Answered with a refusal: blocked by a limit, or a write the cluster would not take.
    Refused,
    /// No answer, or an error.
    Failed,
}

/// A subject's traffic: what one request is, and what must outlive the run.
#[async_trait]
pub trait Workload: Send + Sync {
    /// Sends request number `n` (requests are numbered from 0 in the order they go out).
    async fn request(&self, n: u64, timeout: Duration) -> Outcome;
    /// What the printed lines call served and refused requests.
    fn words(&self) -> [&'static str; 2] {
        ["ok", "refused"]
    }
    /// Called every second and at the end, off the request path: saves what the workload
    /// must not lose if the process dies (the acknowledged writes an oracle checks later).
    async fn checkpoint(&self) -> Result<(), String> {
        Ok(())
    }
}

/// What the caller asks of a subject's workload.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Distinct keys to spread the requests over.
    pub keys: u32,
    /// A per-request limit, for subjects that take one.
    pub limit: Option<u64>,
}

#[derive(Clone)]
pub struct LoadSpec {
    pub workload: Arc<dyn Workload>,
    /// Requests per second, all nodes together.
    pub rate: u32,
    pub duration: Duration,
    pub timeout: Duration,
}

impl std::fmt::Debug for LoadSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadSpec")
            .field("rate", &self.rate)
            .field("duration", &self.duration)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Counts and latency over some span of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadStats {
    pub elapsed_s: f64,
    pub sent: u64,
    pub ok: u64,
    pub refused: u64,
    pub failed: u64,
    /// Requests not sent because too many were in flight.
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Why the last checkpoint failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_error: Option<String>,
}

struct Window {
    stats: LoadStats,
    latency: Histogram<u64>,
}

impl Window {
    #[expect(
        clippy::expect_used,
        reason = "constant bounds that hdrhistogram accepts: low ≥ 1, high ≥ 2·low, sigfig ≤ 5"
    )]
    fn new() -> Self {
        Self {
            stats: LoadStats::default(),
            // 1µs to 60s at 3 significant figures.
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("constant histogram bounds are valid"),
        }
    }

    fn add(&mut self, outcome: Outcome, micros: u64) {
        match outcome {
            Outcome::Ok => self.stats.ok += 1,
            Outcome::Refused => self.stats.refused += 1,
            Outcome::Failed => self.stats.failed += 1,
        }
        self.latency.saturating_record(micros.max(1));
    }

    fn finish(&mut self, elapsed: Duration) -> LoadStats {
        let ms = |q: f64| self.latency.value_at_quantile(q) as f64 / 1000.0;
        let mut s = self.stats.clone();
        s.elapsed_s = elapsed.as_secs_f64();
        if !self.latency.is_empty() {
            s.p50_ms = ms(0.5);
            s.p99_ms = ms(0.99);
            s.max_ms = self.latency.max() as f64 / 1000.0;
        }
        s
    }
}

/// Most requests in flight at once; beyond it, requests are counted as dropped.
const MAX_IN_FLIGHT: usize = 512;

/// Runs the load until its duration is over or `stop`; `on_second` gets the stats of each
/// second, and the totals are returned.
pub async fn run(
    spec: LoadSpec,
    stop: CancellationToken,
    mut on_second: impl FnMut(&LoadStats),
) -> LoadStats {
    let workload = spec.workload.clone();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Outcome, u64)>();
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(spec.rate.max(1)));
    let mut send = tokio::time::interval(period);
    send.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut report = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut deadline = tokio::time::Instant::now() + spec.duration;
    let (mut total, mut second) = (Window::new(), Window::new());
    let mut n: u64 = 0;
    let mut sending = true;
    loop {
        tokio::select! {
            // Stopped: send no more, but let the requests in flight answer (bounded by their
            // timeout), so that what they acknowledged is counted and checkpointed.
            _ = stop.cancelled(), if sending => {
                sending = false;
                if total.stats.ok + total.stats.refused + total.stats.failed == total.stats.sent {
                    break;
                }
                deadline = tokio::time::Instant::now() + spec.timeout + Duration::from_millis(100);
            }
            _ = tokio::time::sleep_until(deadline) => {
                if !sending {
                    break;
                }
                // Stop sending; let requests in flight finish (bounded by their timeout).
                sending = false;
                if total.stats.ok + total.stats.refused + total.stats.failed == total.stats.sent {
                    break;
                }
                deadline = tokio::time::Instant::now() + spec.timeout + Duration::from_millis(100);
            }
            _ = send.tick(), if sending => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    total.stats.dropped += 1;
                    second.stats.dropped += 1;
                    continue;
                };
                let tx = tx.clone();
                n += 1;
                total.stats.sent += 1;
                second.stats.sent += 1;
                let (workload, timeout, seq) = (workload.clone(), spec.timeout, n - 1);
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let outcome = workload.request(seq, timeout).await;
                    let _ = tx.send((outcome, t0.elapsed().as_micros() as u64));
                    drop(permit);
                });
            }
            Some((outcome, micros)) = rx.recv() => {
                total.add(outcome, micros);
                second.add(outcome, micros);
                let answered = total.stats.ok + total.stats.refused + total.stats.failed;
                if !sending && answered == total.stats.sent {
                    break; // every request has answered
                }
            }
            _ = report.tick() => {
                let mut s = second.finish(start.elapsed());
                s.checkpoint_error = workload.checkpoint().await.err();
                on_second(&s);
                second = Window::new();
            }
        }
    }
    while let Ok((outcome, micros)) = rx.try_recv() {
        total.add(outcome, micros);
    }
    let mut s = total.finish(start.elapsed());
    s.checkpoint_error = workload.checkpoint().await.err();
    s
}
