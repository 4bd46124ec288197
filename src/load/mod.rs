//! Load: `/check` traffic at a steady rate across the limiter nodes, with allowed / blocked /
//! failed counts and latency percentiles every second. Open loop: requests go out on
//! schedule whether or not earlier ones have answered, as real clients do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// `host:port` of each node.
    pub targets: Vec<String>,
    /// Requests per second, all nodes together.
    pub rate: u32,
    pub duration: Duration,
    /// Distinct keys, `load-0` … `load-{keys-1}`, chosen in turn.
    pub keys: u32,
    /// Per-request limit, if any (a key's own limit wins).
    pub limit: Option<u64>,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Blocked,
    Failed,
}

/// Counts and latency over some span of the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadStats {
    pub elapsed_s: f64,
    pub sent: u64,
    pub allowed: u64,
    pub blocked: u64,
    pub failed: u64,
    /// Requests not sent because too many were in flight.
    pub dropped: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
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
            Outcome::Allowed => self.stats.allowed += 1,
            Outcome::Blocked => self.stats.blocked += 1,
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
    let client = crate::runtime::health::http_client();
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
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => {
                if !sending {
                    break;
                }
                // Stop sending; let requests in flight finish (bounded by their timeout).
                sending = false;
                if total.stats.allowed + total.stats.blocked + total.stats.failed == total.stats.sent {
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
                let target = &spec.targets[(n as usize) % spec.targets.len().max(1)];
                let key = format!("load-{}", n % u64::from(spec.keys.max(1)));
                let body = match spec.limit {
                    Some(l) => serde_json::json!({ "key": key, "limit": l }),
                    None => serde_json::json!({ "key": key }),
                };
                let req = client
                    .post(format!("http://{target}/check"))
                    .timeout(spec.timeout)
                    .json(&body);
                let tx = tx.clone();
                n += 1;
                total.stats.sent += 1;
                second.stats.sent += 1;
                tokio::spawn(async move {
                    let t0 = Instant::now();
                    let outcome = match req.send().await {
                        Ok(r) if r.status().is_success() => Outcome::Allowed,
                        Ok(r) if r.status().as_u16() == 429 => Outcome::Blocked,
                        _ => Outcome::Failed,
                    };
                    let _ = tx.send((outcome, t0.elapsed().as_micros() as u64));
                    drop(permit);
                });
            }
            Some((outcome, micros)) = rx.recv() => {
                total.add(outcome, micros);
                second.add(outcome, micros);
                let answered = total.stats.allowed + total.stats.blocked + total.stats.failed;
                if !sending && answered == total.stats.sent {
                    break; // every request has answered
                }
            }
            _ = report.tick() => {
                let s = second.finish(start.elapsed());
                on_second(&s);
                second = Window::new();
            }
        }
    }
    while let Ok((outcome, micros)) = rx.try_recv() {
        total.add(outcome, micros);
    }
    total.finish(start.elapsed())
}
