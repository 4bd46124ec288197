//! The rate limiter's expected topology: one Redis and N limiter nodes, and how to run them.

use std::path::PathBuf;

use crate::config::{LocalRuntimeConfig, RateLimiterConfig};
use crate::runtime::{ClusterPlan, HealthCheck, NodeSpec};

pub const SUBJECT: &str = "ratelimiter";
pub const REDIS: &str = "redis";
pub const ROLE_REDIS: &str = "redis";
pub const ROLE_LIMITER: &str = "ratelimiter";

/// `redis`, `ratelimiter-1` … `ratelimiter-N`, in start order.
pub fn node_names(cfg: &RateLimiterConfig) -> Vec<String> {
    std::iter::once(REDIS.to_string())
        .chain((1..=cfg.nodes).map(|i| format!("ratelimiter-{i}")))
        .collect()
}

/// The `ratelimiter` program: as configured, else the one beside the running binary (or
/// beside its parent folder, for test binaries in `target/*/deps`), else from `PATH`.
pub fn ratelimiter_program(local: &LocalRuntimeConfig) -> PathBuf {
    if let Some(p) = &local.ratelimiter_bin {
        return p.clone();
    }
    if let Ok(p) = std::env::var("OPERATOR_RATELIMITER_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().ok();
    let beside = exe
        .as_ref()
        .and_then(|e| e.parent())
        .into_iter()
        .flat_map(|dir| [dir.join("ratelimiter"), dir.join("..").join("ratelimiter")]);
    beside
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("ratelimiter"))
}

/// How to run every node on `host`, with `ports` in the order of [`node_names`].
pub fn plan(
    cfg: &RateLimiterConfig,
    local: &LocalRuntimeConfig,
    host: &str,
    ports: &[u16],
) -> ClusterPlan {
    let names = node_names(cfg);
    let redis_port = ports[0];
    let redis = NodeSpec {
        name: REDIS.into(),
        role: ROLE_REDIS.into(),
        host: host.into(),
        port: redis_port,
        program: PathBuf::from(&local.redis_server),
        args: [
            "--port",
            &redis_port.to_string(),
            "--bind",
            host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        env: vec![],
        health: HealthCheck::RedisPing,
    };
    let program = ratelimiter_program(local);
    let limiters = names
        .iter()
        .zip(ports)
        .skip(1)
        .map(|(name, port)| NodeSpec {
            name: name.clone(),
            role: ROLE_LIMITER.into(),
            host: host.into(),
            port: *port,
            program: program.clone(),
            args: vec![],
            env: [
                (
                    "RATELIMITER_REDIS_URL",
                    format!("redis://{host}:{redis_port}"),
                ),
                ("RATELIMITER_NODE_ID", name.clone()),
                ("RATELIMITER_NODE_HOST", host.to_string()),
                ("RATELIMITER_NODE_PORT", port.to_string()),
                ("RATELIMITER_DEFAULT_LIMIT", cfg.default_limit.to_string()),
                (
                    "RATELIMITER_DEFAULT_WINDOW_MS",
                    cfg.default_window_ms.to_string(),
                ),
                (
                    "RATELIMITER_NODE_TTL_SECONDS",
                    cfg.node_ttl_seconds.to_string(),
                ),
                (
                    "RATELIMITER_NODE_HEARTBEAT_SECONDS",
                    cfg.node_heartbeat_seconds.to_string(),
                ),
                (
                    "RATELIMITER_REDIS_TIMEOUT_MS",
                    cfg.redis_timeout_ms.to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            health: HealthCheck::Http {
                path: "/health".into(),
            },
        });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: std::iter::once(redis).chain(limiters).collect(),
    }
}
