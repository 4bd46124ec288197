//! The `ratelimiter` service: our subject. HTTP on one port, shared state in Redis, a
//! registry entry kept alive by heartbeats and removed on a graceful shutdown.

pub mod http;
pub mod limiter;
pub mod metrics;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, warn};

use super::redis_link::RedisLink;
use super::redis_state::{self, Defaults};

/// A Redis-backed sliding-window rate limiter node.
///
/// Every flag can also be set by its `RATELIMITER_*` environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "ratelimiter", version, about, long_about = None)]
pub struct Settings {
    /// Redis holding the shared counters and the node registry.
    #[arg(
        long,
        env = "RATELIMITER_REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// This node's id in the registry and on every metric.
    #[arg(long, env = "RATELIMITER_NODE_ID", default_value = "ratelimiter-1")]
    pub node_id: String,
    /// Address to listen on.
    #[arg(long, env = "RATELIMITER_NODE_HOST", default_value = "127.0.0.1")]
    pub node_host: String,
    #[arg(long, env = "RATELIMITER_NODE_PORT", default_value_t = 8000)]
    pub node_port: u16,
    /// Address other nodes and the monitor reach this node at (default: host:port).
    #[arg(long, env = "RATELIMITER_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
    /// Requests allowed per window for keys without a limit of their own.
    #[arg(long, env = "RATELIMITER_DEFAULT_LIMIT", default_value_t = 100)]
    pub default_limit: u64,
    #[arg(long, env = "RATELIMITER_DEFAULT_WINDOW_MS", default_value_t = 60_000)]
    pub default_window_ms: u64,
    /// The registry entry expires this long after the last heartbeat.
    #[arg(long, env = "RATELIMITER_NODE_TTL_SECONDS", default_value_t = 30)]
    pub node_ttl_seconds: u64,
    #[arg(long, env = "RATELIMITER_NODE_HEARTBEAT_SECONDS", default_value_t = 10)]
    pub node_heartbeat_seconds: u64,
    /// Each Redis call gives up after this long.
    #[arg(long, env = "RATELIMITER_REDIS_TIMEOUT_MS", default_value_t = 1000)]
    pub redis_timeout_ms: u64,
}

impl Settings {
    pub fn advertise(&self) -> String {
        self.advertise_address
            .clone()
            .unwrap_or_else(|| format!("{}:{}", self.node_host, self.node_port))
    }

    pub fn defaults(&self) -> Defaults {
        Defaults {
            limit: self.default_limit,
            window_ms: self.default_window_ms,
        }
    }
}

/// A refused request, kept for `/api/blocks`.
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    pub key: String,
    pub at: String,
    pub count: u64,
    pub limit: u64,
    pub retry_after_seconds: u64,
}

const BLOCKS_KEPT: usize = 100;

/// Everything a request handler needs.
pub struct Node {
    pub settings: Settings,
    pub redis: RedisLink,
    pub metrics: metrics::Metrics,
    pub started: Instant,
    pub registered_at: String,
    pub registered: AtomicBool,
    pub blocks: Mutex<VecDeque<Block>>,
}

impl Node {
    pub async fn record_block(&self, block: Block) {
        let mut blocks = self.blocks.lock().await;
        if blocks.len() == BLOCKS_KEPT {
            blocks.pop_front();
        }
        blocks.push_back(block);
    }

    async fn register(&self) {
        let s = &self.settings;
        let advertise = s.advertise();
        let result = self
            .redis
            .run(|mut c| async move {
                redis_state::register(
                    &mut c,
                    &s.node_id,
                    &advertise,
                    &self.registered_at,
                    s.node_ttl_seconds,
                )
                .await
            })
            .await;
        let ok = result.is_ok();
        if let Err(e) = result {
            warn!(error = %e, "registry heartbeat failed");
        }
        if self.registered.swap(ok, Ordering::Relaxed) != ok {
            info!(registered = ok, "registry state changed");
        }
        self.metrics.registered.set(i64::from(ok));
    }

    async fn deregister(&self) {
        let id = &self.settings.node_id;
        match self
            .redis
            .run(|mut c| async move { redis_state::deregister(&mut c, id).await })
            .await
        {
            Ok(()) => info!("deregistered"),
            Err(e) => warn!(error = %e, "could not deregister; the entry expires with its TTL"),
        }
    }
}

/// Runs a node until SIGTERM or SIGINT, then deregisters and drains.
pub async fn run(settings: Settings) -> color_eyre::Result<()> {
    let timeout = Duration::from_millis(settings.redis_timeout_ms);
    let redis = RedisLink::new(&settings.redis_url, timeout)?;
    let metrics = metrics::Metrics::new(&settings.node_id);
    let node = Arc::new(Node {
        registered_at: crate::clock::format(crate::clock::now()),
        settings: settings.clone(),
        redis,
        metrics,
        started: Instant::now(),
        registered: AtomicBool::new(false),
        blocks: Mutex::new(VecDeque::new()),
    });
    let bind = format!("{}:{}", settings.node_host, settings.node_port);
    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .map_err(|e| color_eyre::eyre::eyre!("cannot listen on {bind}: {e}"))?;
    node.register().await;

    let stop = CancellationToken::new();
    let heartbeat = {
        let node = node.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let every = Duration::from_secs(node.settings.node_heartbeat_seconds);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        node.register().instrument(tracing::debug_span!("heartbeat")).await;
                    }
                }
            }
        })
    };

    info!(%bind, advertise = %settings.advertise(), redis = %settings.redis_url, "listening");
    let app = http::router(node.clone());
    let shutdown = {
        let node = node.clone();
        let stop = stop.clone();
        async move {
            crate::shutdown::signal().await;
            info!("shutting down");
            stop.cancel();
            node.deregister().await;
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    heartbeat.abort();
    info!("stopped");
    Ok(())
}
