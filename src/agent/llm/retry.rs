//! When and how long to wait before asking a model API again.

use std::future::Future;
use std::time::Duration;

use rand::RngExt;
use tokio::sync::mpsc::UnboundedSender;
use tracing::warn;

use super::{ModelError, ModelEvent, Turn};

/// Why one attempt at a turn failed, and whether another is worth it.
pub enum Failure {
    Retry {
        error: ModelError,
        after: Option<Duration>,
    },
    Fatal(ModelError),
}

impl Failure {
    /// The error, whether or not it would be retried.
    pub fn into_error(self) -> ModelError {
        match self {
            Self::Retry { error, .. } | Self::Fatal(error) => error,
        }
    }

    pub fn protocol(msg: impl Into<String>) -> Self {
        Self::Fatal(ModelError::Protocol(msg.into()))
    }

    pub fn connect(url: &str, e: &reqwest::Error) -> Self {
        Self::Retry {
            error: ModelError::Connect {
                url: url.into(),
                message: crate::runtime::health::error_chain(e),
            },
            after: None,
        }
    }

    pub fn cut(message: impl Into<String>) -> Self {
        Self::Retry {
            error: ModelError::Truncated(message.into()),
            after: None,
        }
    }

    /// A non-200 answer: retried or not by its status; the message from the JSON error body
    /// both APIs use (`{"error": {"message": …}}`), else the body itself.
    pub async fn from_response(resp: reqwest::Response) -> Self {
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| {
                let b = body.trim();
                if b.is_empty() {
                    "(no body)".into()
                } else {
                    b.chars().take(500).collect()
                }
            });
        let error = ModelError::Http { status, message };
        if retryable_status(status) {
            Self::Retry { error, after }
        } else {
            Self::Fatal(error)
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or retries run out; each attempt must
/// finish within `timeout`. Retries are announced on `events`.
pub async fn with_retries<F, Fut>(
    policy: RetryPolicy,
    timeout: Duration,
    events: &UnboundedSender<ModelEvent>,
    mut attempt: F,
) -> Result<Turn, ModelError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Turn, Failure>>,
{
    let mut n = 0;
    loop {
        let outcome = tokio::time::timeout(timeout, attempt())
            .await
            .unwrap_or_else(|_| {
                Err(Failure::cut(format!(
                    "no complete answer within {}s",
                    timeout.as_secs()
                )))
            });
        match outcome {
            Ok(turn) => return Ok(turn),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry { error, .. }) if n >= policy.max_retries => return Err(error),
            Err(Failure::Retry { error, after }) => {
                let wait = policy.delay(n, after);
                n += 1;
                warn!(%error, attempt = n, wait_ms = wait.as_millis() as u64, "retrying the model API");
                let _ = events.send(ModelEvent::Retrying {
                    attempt: n,
                    reason: error.to_string(),
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter (between half and all of `base * 2^attempt`, capped);
    /// a server's `retry-after` wins when it asks for longer.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.cap);
        let jittered = exp.mul_f64(rand::rng().random_range(0.5..=1.0));
        retry_after.map_or(jittered, |r| r.max(jittered).min(self.cap.max(r)))
    }
}

/// 429 (rate limited), 5xx and 529 (overloaded) are worth retrying; other 4xx are our fault.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// `retry-after` in seconds (or `retry-after-ms`), as the APIs send it.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    get("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| get("retry-after").map(Duration::from_secs_f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_with_jitter_and_respect_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 0..6 {
            let d = p.delay(attempt, None);
            let full = (p.base * 2u32.pow(attempt)).min(p.cap);
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(p.delay(0, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [429, 500, 502, 503, 529] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 413] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn reads_retry_after_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", "150".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
    }
}
