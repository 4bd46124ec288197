//! GETs to PD's API and a store's status port, with one deadline each. A refused
//! connection, a timeout and an error answer are told apart: a store that refuses is down, one
//! that does not answer in time is unresponsive, a PD follower that answers 503 has no leader.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::subjects::NodeState;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// Nothing listens, or the host is unreachable.
    #[error("not reachable: {0}")]
    Refused(String),
    /// No answer within the deadline (a PD follower waits about 3 s for a leader).
    #[error("no answer in time: {0}")]
    Timeout(String),
    /// An answer, but not a good one: PD's error text.
    #[error("HTTP {status}: {text}")]
    Answered { status: u16, text: String },
    /// A 200 whose body is not the shape PD writes.
    #[error("unreadable answer: {0}")]
    Unreadable(String),
}

impl ProbeError {
    /// How a node that failed this way looks.
    pub fn node_state(&self) -> NodeState {
        match self {
            Self::Refused(_) => NodeState::Down,
            Self::Timeout(_) => NodeState::Unresponsive,
            Self::Answered { .. } | Self::Unreadable(_) => NodeState::Degraded,
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
}

impl Client {
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: crate::runtime::health::http_client(),
            timeout,
        }
    }

    /// The body of `GET http://{address}{path}` when it is a 200.
    pub async fn text(&self, address: &str, path: &str) -> Result<String, ProbeError> {
        self.send(reqwest::Method::GET, address, path, None).await
    }

    /// A change through PD's API (a scheduler added or removed): the body of a 200.
    pub async fn send(
        &self,
        method: reqwest::Method,
        address: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, ProbeError> {
        let url = format!("http://{address}{path}");
        let mut req = self.http.request(method, &url).timeout(self.timeout);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| from_reqwest(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| from_reqwest(&e))?;
        if status == 200 {
            Ok(text)
        } else {
            Err(ProbeError::Answered {
                status,
                text: super::pd::error_text(&text),
            })
        }
    }

    /// A 200's body parsed as `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        address: &str,
        path: &str,
    ) -> Result<T, ProbeError> {
        let text = self.text(address, path).await?;
        serde_json::from_str(&text).map_err(|e| ProbeError::Unreadable(format!("{path}: {e}")))
    }
}

fn from_reqwest(e: &reqwest::Error) -> ProbeError {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_timeout() {
        ProbeError::Timeout(text)
    } else if e.is_connect() {
        ProbeError::Refused(text)
    } else {
        ProbeError::Unreadable(text)
    }
}
