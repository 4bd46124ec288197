//! One look at a limiter node: a single `GET /api/state` (its health, its view of the
//! counters, its latency histogram), every monitor cycle.
//!
//! It speaks hyper's client directly rather than through reqwest: this request is the
//! monitor's hottest path, and reqwest parses each URL twice (into the request, then again
//! for its redirect policy) and wraps the call in layers a health probe has no use for.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Uri;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use tracing::debug;

use super::latency;
use super::observe::NodeProbe;
use super::redis_state::Counter;
use crate::runtime::TopologyNode;
use crate::runtime::health::error_chain;
use crate::subjects::NodeState;

/// Keep-alive connections to the nodes, one pool for every probe.
#[derive(Clone)]
pub struct StateClient(Client<HttpConnector, Empty<Bytes>>);

impl Default for StateClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self(
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(4)
                .build(connector),
        )
    }
}

/// The URL of a node's state, asking for at most `max_keys` counters.
pub fn state_uri(address: &str, max_keys: usize) -> Result<Uri, String> {
    format!("http://{address}/api/state?max={max_keys}")
        .parse()
        .map_err(|e| format!("no URL for {address}: {e}"))
}

/// Why a request got no usable answer.
enum Failure {
    /// Nothing answered in time: something listens but is hung or paused.
    Timeout,
    /// The connection itself failed: nothing listens there.
    Connect(String),
    /// An answer came but could not be read.
    Other(String),
}

impl Failure {
    fn classify(self, timeout: Duration) -> (NodeState, String) {
        match self {
            Self::Timeout => (
                NodeState::Unresponsive,
                format!("no answer within {}ms", timeout.as_millis()),
            ),
            Self::Connect(chain) => (NodeState::Down, format!("not reachable: {chain}")),
            Self::Other(chain) => (NodeState::Degraded, format!("unreadable answer: {chain}")),
        }
    }
}

/// "connection refused" for the common case, else the whole chain of causes.
fn short_cause(chain: String) -> String {
    if chain.contains("Connection refused") || chain.contains("connection refused") {
        "connection refused".into()
    } else {
        chain
    }
}

/// The status and body of one GET, within `timeout` for the whole exchange.
async fn get(
    client: &StateClient,
    uri: &Uri,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), Failure> {
    let exchange = async {
        let resp = client.0.get(uri.clone()).await.map_err(|e| {
            if e.is_connect() {
                Failure::Connect(short_cause(error_chain(&e)))
            } else {
                Failure::Other(error_chain(&e))
            }
        })?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Other(error_chain(&e)))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Failure::Timeout)?
}

/// A node's `GET /api/state`, as much of it as the monitor reads.
#[derive(Deserialize)]
struct StateAnswer {
    healthy: bool,
    health: HealthAnswer,
    /// Left unread (None) rather than failing the whole answer when malformed.
    #[serde(default, deserialize_with = "lenient")]
    counters: Option<Vec<Counter>>,
    #[serde(default)]
    truncated: bool,
    #[serde(default, deserialize_with = "lenient")]
    check_histogram: Option<HistogramAnswer>,
}

#[derive(Deserialize)]
struct HealthAnswer {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    redis: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The `/check` histogram: `le` bounds, then counts with `+Inf`.
#[derive(Deserialize)]
struct HistogramAnswer {
    le: Vec<f64>,
    counts: Vec<f64>,
}

/// A field that is None when it is null, missing or not of its shape.
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(serde_json::from_value(v).ok())
}

pub type Probed = (NodeProbe, Option<latency::Buckets>);

#[tracing::instrument(level = "debug", skip_all, fields(node = %node.name))]
pub async fn probe_node(
    client: &StateClient,
    node: &TopologyNode,
    uri: Result<&Uri, &String>,
    timeout: Duration,
) -> Probed {
    let start = Instant::now();
    let mut probe = NodeProbe {
        name: node.name.clone(),
        address: node.address.clone(),
        advertised: node.advertised.clone(),
        state: NodeState::Down,
        detail: None,
        redis_unreachable: false,
        probe_ms: None,
        latency: None,
        counters: None,
        counters_truncated: false,
    };
    let uri = match uri {
        Ok(u) => u,
        Err(why) => {
            probe.detail = Some(format!("not reachable: {why}"));
            return (probe, None);
        }
    };
    let (status, body) = match get(client, uri, timeout).await {
        Ok(answer) => answer,
        Err(failure) => {
            let (state, detail) = failure.classify(timeout);
            probe.state = state;
            probe.detail = Some(detail);
            return (probe, None);
        }
    };
    probe.probe_ms = Some(start.elapsed().as_secs_f64() * 1000.0);
    let answer = match serde_json::from_slice::<StateAnswer>(&body) {
        Ok(a) if status.is_success() => a,
        _ => {
            probe.state = NodeState::Degraded;
            let snippet: String = String::from_utf8_lossy(&body).chars().take(80).collect();
            probe.detail = Some(format!(
                "/api/state answered {status} with something that is not its state: {snippet:?}"
            ));
            return (probe, None);
        }
    };
    let health = answer.health;
    if answer.healthy && health.status.as_deref() == Some("ok") {
        probe.state = NodeState::Up;
    } else {
        probe.state = NodeState::Degraded;
        probe.redis_unreachable = health.redis.as_deref() == Some("unreachable");
        let reason = health.reason.as_deref().unwrap_or("no reason given");
        probe.detail = Some(format!("unhealthy: {reason}"));
    }
    if let Some(list) = answer.counters {
        probe.counters = Some(list);
        probe.counters_truncated = answer.truncated;
    }
    let histogram = answer.check_histogram.and_then(histogram_of);
    debug!(state = probe.state.as_str(), "probed");
    (probe, histogram)
}

fn histogram_of(h: HistogramAnswer) -> Option<latency::Buckets> {
    if h.counts.len() != h.le.len() + 1 {
        return None;
    }
    Some(
        h.le.into_iter()
            .chain(std::iter::once(f64::INFINITY))
            .zip(h.counts)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(address: &str) -> TopologyNode {
        TopologyNode {
            name: "ratelimiter-1".into(),
            role: "ratelimiter".into(),
            address: address.into(),
            client: None,
            advertised: None,
        }
    }

    /// Serves one canned HTTP answer per connection, as many times as asked.
    async fn serve(answer: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        address
    }

    /// `body` as a 200 answer, as the node gives its state (healthy or not).
    fn ok(body: &str) -> &'static str {
        Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        )
    }

    async fn look(address: &str) -> Probed {
        let uri = state_uri(address, 10).unwrap();
        probe_node(
            &StateClient::default(),
            &node(address),
            Ok(&uri),
            Duration::from_millis(300),
        )
        .await
    }

    #[tokio::test]
    async fn a_healthy_answer_is_read_whole() {
        let body = r#"{"healthy":true,"health":{"status":"ok","redis":"ok"},"counters":[{"key":"a","count":2,"limit":5,"window_ms":1000,"remaining":3}],"truncated":false,"check_histogram":{"le":[0.1],"counts":[1,2]},"node_id":"x"}"#;
        let (probe, histogram) = look(&serve(ok(body)).await).await;
        assert_eq!(probe.state, NodeState::Up, "{:?}", probe.detail);
        assert_eq!(probe.counters.unwrap()[0].remaining, 3);
        assert_eq!(histogram.unwrap(), vec![(0.1, 1.0), (f64::INFINITY, 2.0)]);
    }

    #[tokio::test]
    async fn an_unhealthy_node_says_why_and_malformed_counters_are_left_unread() {
        // The node answers 200 with its state even when unhealthy: `healthy` says so.
        let body = r#"{"healthy":false,"health":{"status":"unhealthy","redis":"unreachable","reason":"Connection refused"},"counters":"oops"}"#;
        let (probe, _) = look(&serve(ok(body)).await).await;
        assert_eq!(probe.state, NodeState::Degraded);
        assert!(probe.redis_unreachable);
        assert_eq!(
            probe.detail.as_deref(),
            Some("unhealthy: Connection refused")
        );
        assert!(probe.counters.is_none());
    }

    #[tokio::test]
    async fn garbage_is_degraded_silence_unresponsive_and_nothing_down() {
        let garbage = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
        let (probe, _) = look(&serve(garbage).await).await;
        assert_eq!(probe.state, NodeState::Degraded);
        assert!(probe.detail.unwrap().contains("not its state"));

        // Accepts, never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = listener.local_addr().unwrap().to_string();
        let (probe, _) = look(&silent).await;
        assert_eq!(probe.state, NodeState::Unresponsive);
        assert_eq!(probe.detail.as_deref(), Some("no answer within 300ms"));
        drop(listener);

        let (probe, _) = look(&silent).await;
        assert_eq!(probe.state, NodeState::Down);
        assert_eq!(
            probe.detail.as_deref(),
            Some("not reachable: connection refused")
        );
    }
}
