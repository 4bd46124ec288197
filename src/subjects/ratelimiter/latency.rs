//! Per-node p99 of `/check`, from the node's own request-duration histogram.

pub use crate::subjects::histogram::{Buckets, LatencyStat, LatencyWindow, quantile};

use super::service::metrics::REQUEST_DURATION;

/// The `/check` histogram out of a node's `/metrics` text.
pub fn check_histogram(metrics_text: &str) -> Option<Buckets> {
    crate::subjects::histogram::read(metrics_text, REQUEST_DURATION, Some(("endpoint", "/check")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_check_histogram_from_a_real_node_encoding() {
        let m = super::super::service::metrics::Metrics::new("ratelimiter-1");
        {
            // The family's guard must be dropped before the next get_or_create.
            let h = m
                .duration
                .get_or_create(&super::super::service::metrics::EndpointLabels {
                    endpoint: "/check".into(),
                });
            for _ in 0..10 {
                h.observe(0.003);
            }
        }
        m.duration
            .get_or_create(&super::super::service::metrics::EndpointLabels {
                endpoint: "/health".into(),
            })
            .observe(2.0);
        let text = m.encode();
        let b = check_histogram(&text).expect("histogram");
        // Every bound of /check's histogram, +Inf last, and none of /health's.
        assert_eq!(b.len(), super::super::service::metrics::BUCKETS.len() + 1);
        assert_eq!(b.last().unwrap(), &(f64::INFINITY, 10.0));
        assert_eq!(b[0].1, 0.0);
        // A page without it, or with garbage where it would be, has none.
        assert!(check_histogram("# EOF\n").is_none());
        assert!(check_histogram(&text.replace("/check", "/other")).is_none());
        let garbled = text.replace(" 10\n", " ten\n");
        assert!(check_histogram(&garbled).is_none_or(|g| g.len() < b.len()));
        let p99 = quantile(&b, 0.99).unwrap();
        assert!(p99 > 0.002 && p99 <= 0.005, "{p99}");
    }
}
