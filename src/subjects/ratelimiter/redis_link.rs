//! A Redis connection that comes back by itself: connected on first use, dropped on a
//! connection error or timeout, reconnected on the next use. Every call is bounded in time,
//! so a paused or partitioned Redis costs a timeout, never a hang.

use std::future::Future;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use tokio::sync::Mutex;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    #[error("redis unreachable: {0}")]
    Unreachable(String),
    #[error("redis did not answer within {}ms", .0.as_millis())]
    Timeout(Duration),
    #[error("redis error: {0}")]
    Command(String),
}

impl LinkError {
    /// The command reached Redis and Redis said no (as opposed to Redis being away).
    pub fn is_command(&self) -> bool {
        matches!(self, Self::Command(_))
    }
}

pub struct RedisLink {
    client: Client,
    timeout: Duration,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl RedisLink {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, LinkError> {
        let client = Client::open(url).map_err(|e| LinkError::Unreachable(e.to_string()))?;
        Ok(Self {
            client,
            timeout,
            conn: Mutex::new(None),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn connection(&self) -> Result<MultiplexedConnection, LinkError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        // Boxed: connecting is rare, and its future is large; inline, every probe's future
        // would carry (and copy) it each cycle.
        let connect = Box::pin(
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        );
        let conn = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| LinkError::Timeout(self.timeout))?
            .map_err(|e| LinkError::Unreachable(e.to_string()))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn forget(&self) {
        *self.conn.lock().await = None;
    }

    /// Runs `op` on the connection within the link's timeout.
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, LinkError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_within(self.timeout, op).await
    }

    /// Like [`run`](Self::run) with a longer budget, for work that takes several round trips.
    pub async fn run_within<T, F, Fut>(&self, budget: Duration, op: F) -> Result<T, LinkError>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let conn = self.connection().await?;
        match tokio::time::timeout(budget, op(conn)).await {
            Err(_) => {
                self.forget().await;
                Err(LinkError::Timeout(budget))
            }
            Ok(Err(e)) if is_link_failure(&e) => {
                self.forget().await;
                Err(if e.is_timeout() {
                    LinkError::Timeout(self.timeout)
                } else {
                    LinkError::Unreachable(e.to_string())
                })
            }
            Ok(Err(e)) => Err(LinkError::Command(e.to_string())),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

fn is_link_failure(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}
