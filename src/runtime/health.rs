//! Is a node ready? Asked by `up`, `node start` and `status`; the subject's monitor probes
//! much more than this.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum HealthCheck {
    /// `GET path` answers 200.
    Http { path: String },
    /// A Redis `PING` answers `+PONG`.
    RedisPing,
    /// The port accepts connections (a member that serves only once its cluster has formed).
    Tcp,
    /// Running is enough (a node that serves nothing, such as the agent's toolbox).
    Running,
}

/// What one look at a starting node found.
pub enum Starting {
    Healthy,
    /// Not yet, and why.
    Waiting(String),
    /// It will not become healthy: it exited.
    Gone(String),
}

/// Looks at a starting node every `every` until it is healthy, gone, or `timeout` has passed;
/// the error says why, with the last thing seen.
pub async fn wait_until_healthy<F, Fut>(
    timeout: Duration,
    every: Duration,
    mut look: F,
) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Starting>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match look().await {
            Starting::Healthy => return Ok(()),
            Starting::Gone(why) => return Err(why),
            Starting::Waiting(why) => why,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "not healthy after {}: {last}",
                humantime::format_duration(timeout)
            ));
        }
        tokio::time::sleep(every).await;
    }
}

impl HealthCheck {
    /// `Ok(())` when healthy, else why not.
    pub async fn probe(&self, address: &str, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.probe_inner(address)).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}ms", timeout.as_millis())),
        }
    }

    async fn probe_inner(&self, address: &str) -> Result<(), String> {
        match self {
            Self::Http { path } => {
                let client = http_client();
                let resp = client
                    .get(format!("http://{address}{path}"))
                    .send()
                    .await
                    .map_err(|e| error_chain(&e))?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    Err(format!("{path} answered {status}: {}", body.trim()))
                }
            }
            Self::Running => Ok(()),
            Self::Tcp => TcpStream::connect(address)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Self::RedisPing => {
                let mut s = TcpStream::connect(address)
                    .await
                    .map_err(|e| e.to_string())?;
                s.write_all(b"PING\r\n").await.map_err(|e| e.to_string())?;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
                let answer = String::from_utf8_lossy(&buf[..n]);
                if answer.starts_with("+PONG") {
                    Ok(())
                } else {
                    Err(format!("PING answered {}", answer.trim()))
                }
            }
        }
    }
}

/// Installs the TLS crypto provider (ring) once per process, before any HTTP client exists.
pub fn ensure_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An HTTP client for loopback and the project's own nodes: never through a proxy.
pub fn http_client() -> reqwest::Client {
    ensure_tls();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(4)
        .build()
        .unwrap_or_default()
}

/// An error with its causes, e.g. `error sending request: connection refused`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = cause.source();
    }
    msg
}
