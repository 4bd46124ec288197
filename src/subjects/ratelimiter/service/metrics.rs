//! Prometheus metrics of one node. Every series carries `node_id`; the request-duration
//! histogram is recorded for every request by the HTTP layer, and the monitor reads it.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The histogram's name, shared with the monitor that reads it.
pub const REQUEST_DURATION: &str = "ratelimiter_request_duration_seconds";

/// Upper bounds in seconds: fine below 10ms where a healthy node lives, coarse above.
pub const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub endpoint: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub redis_up: Gauge,
    pub registered: Gauge,
}

fn histogram() -> Histogram {
    Histogram::new(BUCKETS.iter().copied())
}

impl Metrics {
    pub fn new(node_id: &str) -> Self {
        let mut registry = Registry::with_labels(std::iter::once((
            Cow::Borrowed("node_id"),
            Cow::Owned(node_id.to_string()),
        )));
        let requests = Family::<RequestLabels, Counter>::default();
        let duration = Family::new_with_constructor(histogram as fn() -> Histogram);
        let decisions = Family::<DecisionLabels, Counter>::default();
        let redis_up = Gauge::default();
        let registered = Gauge::default();
        registry.register(
            "ratelimiter_http_requests",
            "HTTP requests by endpoint, method and status",
            requests.clone(),
        );
        registry.register(
            REQUEST_DURATION,
            "Time to answer a request, by endpoint",
            duration.clone(),
        );
        registry.register(
            "ratelimiter_decisions",
            "Rate-limit decisions: allowed, blocked, or error (Redis failed)",
            decisions.clone(),
        );
        registry.register(
            "ratelimiter_redis_up",
            "1 if the last Redis call succeeded",
            redis_up.clone(),
        );
        registry.register(
            "ratelimiter_registered",
            "1 if the last registry heartbeat succeeded",
            registered.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            decisions,
            redis_up,
            registered,
        }
    }

    pub fn decision(&self, result: &'static str) {
        self.decisions
            .get_or_create(&DecisionLabels { result })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_has_the_node_id_and_the_histogram_records() {
        let m = Metrics::new("ratelimiter-7");
        m.duration
            .get_or_create(&EndpointLabels {
                endpoint: "/check".into(),
            })
            .observe(0.003);
        m.decision("allowed");
        let text = m.encode();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert!(!samples.is_empty());
        for line in &samples {
            assert!(line.contains("node_id=\"ratelimiter-7\""), "{line}");
        }
        let bucket = text
            .lines()
            .find(|l| {
                l.starts_with("ratelimiter_request_duration_seconds_bucket")
                    && l.contains("le=\"0.005\"")
                    && l.contains("endpoint=\"/check\"")
            })
            .expect("the 5ms bucket of /check");
        assert!(bucket.ends_with(" 1"), "{bucket}");
    }
}
