//! Latency quantiles from a Prometheus histogram: the histogram is cumulative, so the p99
//! over a window is taken from the difference between the newest scrape and the oldest one
//! inside the window. Shared by every subject that scrapes one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::exposition::label;

/// Cumulative bucket counts by upper bound (seconds), ascending, `+Inf` last.
pub type Buckets = Vec<(f64, f64)>;

/// Reads one histogram out of a `/metrics` text (the Prometheus / OpenMetrics text format):
/// the `_bucket` samples of `family`, by `le`, only those with the label `only` when given.
/// Only that histogram's lines are looked at, without regular expressions: a general parser
/// cost a quarter of the monitor's CPU on a 28-line page.
pub fn read(metrics_text: &str, family: &str, only: Option<(&str, &str)>) -> Option<Buckets> {
    let prefix = format!("{family}_bucket{{");
    let mut b: Buckets = metrics_text
        .lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (labels, value) = rest.rsplit_once('}')?;
            if let Some((k, v)) = only {
                if label(labels, k)? != v {
                    return None;
                }
            }
            let le = match label(labels, "le")? {
                "+Inf" => f64::INFINITY,
                le => le.parse().ok()?,
            };
            // The value, then an optional timestamp or exemplar.
            let count = value.split_whitespace().next()?.parse().ok()?;
            Some((le, count))
        })
        .collect();
    if b.is_empty() {
        return None;
    }
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    Some(b)
}

/// The latency of one node over the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyStat {
    pub p99_ms: f64,
    pub samples: u64,
}

/// Scrapes of one node's histogram over the last window.
#[derive(Debug, Default)]
pub struct LatencyWindow {
    scrapes: VecDeque<(Instant, Buckets)>,
}

impl LatencyWindow {
    /// Adds a scrape and returns the p99 over the window (None until two scrapes exist).
    pub fn update(
        &mut self,
        at: Instant,
        buckets: Buckets,
        window: Duration,
    ) -> Option<LatencyStat> {
        // A node restart resets its histogram: earlier scrapes no longer compare.
        if let Some((_, last)) = self.scrapes.back() {
            if total(last) > total(&buckets) || last.len() != buckets.len() {
                self.scrapes.clear();
            }
        }
        self.scrapes.push_back((at, buckets));
        // Keep the newest scrape at or before the window's start as the baseline.
        while self.scrapes.len() > 2 && self.scrapes[1].0 <= at.checked_sub(window).unwrap_or(at) {
            self.scrapes.pop_front();
        }
        let (_, old) = self.scrapes.front()?;
        let (_, new) = self.scrapes.back()?;
        if self.scrapes.len() < 2 {
            return None;
        }
        let delta: Buckets = new
            .iter()
            .zip(old)
            .map(|(n, o)| (n.0, (n.1 - o.1).max(0.0)))
            .collect();
        let samples = total(&delta) as u64;
        Some(LatencyStat {
            p99_ms: quantile(&delta, 0.99).map_or(0.0, |s| s * 1000.0),
            samples,
        })
    }

    pub fn reset(&mut self) {
        self.scrapes.clear();
    }
}

fn total(b: &Buckets) -> f64 {
    b.last().map_or(0.0, |l| l.1)
}

/// The q-quantile of a cumulative histogram, interpolated linearly inside its bucket as
/// Prometheus's `histogram_quantile` does; `None` when empty. A quantile in the `+Inf`
/// bucket is reported as the highest finite bound.
pub fn quantile(buckets: &Buckets, q: f64) -> Option<f64> {
    let count = total(buckets);
    if count <= 0.0 {
        return None;
    }
    let rank = q * count;
    let mut prev_bound = 0.0;
    let mut prev_count = 0.0;
    for &(bound, cum) in buckets {
        if cum >= rank {
            if bound.is_infinite() {
                return Some(prev_bound);
            }
            let in_bucket = cum - prev_count;
            let frac = if in_bucket > 0.0 {
                (rank - prev_count) / in_bucket
            } else {
                1.0
            };
            return Some(prev_bound + (bound - prev_bound) * frac);
        }
        prev_bound = bound;
        prev_count = cum;
    }
    Some(prev_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(counts: &[f64]) -> Buckets {
        [0.001, 0.01, 0.1, 1.0, f64::INFINITY]
            .iter()
            .copied()
            .zip(counts.iter().copied())
            .collect()
    }

    #[test]
    fn quantile_interpolates_inside_the_bucket() {
        // 100 requests, all between 10ms and 100ms.
        let b = buckets(&[0.0, 0.0, 100.0, 100.0, 100.0]);
        let p99 = quantile(&b, 0.99).unwrap();
        assert!((p99 - 0.0991).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(&buckets(&[0.0; 5]), 0.99), None);
        // Everything beyond the last finite bound: report that bound.
        assert_eq!(
            quantile(&buckets(&[0.0, 0.0, 0.0, 0.0, 5.0]), 0.99),
            Some(1.0)
        );
    }

    #[test]
    fn window_uses_the_difference_between_scrapes() {
        let mut w = LatencyWindow::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(10);
        // 1000 fast requests before the window.
        assert_eq!(
            w.update(t0, buckets(&[1000.0, 1000.0, 1000.0, 1000.0, 1000.0]), win),
            None
        );
        // Then 100 slow ones (between 100ms and 1s).
        let s = w
            .update(
                t0 + Duration::from_secs(1),
                buckets(&[1000.0, 1000.0, 1000.0, 1100.0, 1100.0]),
                win,
            )
            .unwrap();
        assert_eq!(s.samples, 100);
        assert!(s.p99_ms > 100.0, "{s:?}");
        // Long after, 100 fast ones: the slow ones have left the window.
        w.update(
            t0 + Duration::from_secs(20),
            buckets(&[1000.0, 1000.0, 1000.0, 1100.0, 1100.0]),
            win,
        );
        let s = w
            .update(
                t0 + Duration::from_secs(31),
                buckets(&[1100.0, 1100.0, 1100.0, 1200.0, 1200.0]),
                win,
            )
            .unwrap();
        assert_eq!(s.samples, 100);
        assert!(s.p99_ms <= 1.0, "{s:?}");
    }

    #[test]
    fn a_restarted_node_starts_a_new_window() {
        let mut w = LatencyWindow::default();
        let t0 = Instant::now();
        let win = Duration::from_secs(10);
        w.update(t0, buckets(&[500.0, 500.0, 500.0, 500.0, 500.0]), win);
        assert_eq!(
            w.update(
                t0 + Duration::from_secs(1),
                buckets(&[1.0, 1.0, 1.0, 1.0, 1.0]),
                win
            ),
            None
        );
    }

    #[test]
    fn reads_one_family_and_label() {
        let text = "# TYPE x histogram\nx_bucket{le=\"0.1\"} 3\nx_bucket{le=\"+Inf\"} 4\nx_sum 1\nx_count 4\ny_bucket{le=\"0.1\"} 9\n";
        assert_eq!(
            read(text, "x", None),
            Some(vec![(0.1, 3.0), (f64::INFINITY, 4.0)])
        );
        assert_eq!(read(text, "z", None), None);
        assert_eq!(read(text, "x", Some(("endpoint", "/a"))), None);
    }
}
