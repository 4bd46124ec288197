//! The rate limiter's expected topology: one Redis and N limiter nodes, and how to run them.

use std::path::PathBuf;

use super::config::RateLimiterConfig;
use crate::config::{DockerRuntimeConfig, LocalRuntimeConfig};
use crate::runtime::proxy;
use crate::runtime::{ClusterPlan, FAULTPROXY, HealthCheck, NodeSpec};

pub const SUBJECT: &str = "ratelimiter";
pub const REDIS: &str = "redis";
pub const ROLE_REDIS: &str = "redis";
pub const ROLE_LIMITER: &str = "ratelimiter";

/// `redis`, `ratelimiter-1` … `ratelimiter-N`: the subject's own nodes.
pub fn node_names(cfg: &RateLimiterConfig) -> Vec<String> {
    std::iter::once(REDIS.to_string())
        .chain((1..=cfg.nodes).map(|i| format!("ratelimiter-{i}")))
        .collect()
}

/// What needs a local port, in order: Redis, the fault proxy's control API, then for each
/// limiter its own port, its client link and its link to Redis.
pub fn port_names(cfg: &RateLimiterConfig) -> Vec<String> {
    let mut names = vec![REDIS.to_string(), FAULTPROXY.to_string()];
    for n in node_names(cfg).into_iter().skip(1) {
        names.push(proxy::client_link(&n));
        names.push(proxy::peer_link(&n, REDIS));
        names.push(n);
    }
    names
}

pub fn ratelimiter_program(cfg: &RateLimiterConfig) -> PathBuf {
    crate::subjects::our_program(
        "ratelimiter",
        cfg.ratelimiter_bin.as_ref(),
        "OPERATOR_RATELIMITER_BIN",
    )
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn limiter_env(cfg: &RateLimiterConfig, name: &str, redis_url: String) -> Vec<(String, String)> {
    [
        ("RATELIMITER_REDIS_URL", redis_url),
        ("RATELIMITER_NODE_ID", name.to_string()),
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
    .collect()
}

/// How to run every node as local processes on `host`, with `ports` in the order of
/// [`port_names`]. Each limiter reaches Redis, and clients reach each limiter, through the
/// fault proxy, so that network faults sit in the data path.
pub fn plan(
    cfg: &RateLimiterConfig,
    local: &LocalRuntimeConfig,
    host: &str,
    ports: &[u16],
) -> ClusterPlan {
    let port_of = |name: &str| {
        port_names(cfg)
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| ports[i])
    };
    let addr = |name: &str| format!("{host}:{}", port_of(name));
    let redis_port = port_of(REDIS);
    let redis = NodeSpec {
        install_hint: None,
        name: REDIS.into(),
        role: ROLE_REDIS.into(),
        host: host.into(),
        port: redis_port,
        program: PathBuf::from(&cfg.redis_server),
        args: strings(&[
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
        ]),
        env: vec![],
        health: HealthCheck::RedisPing,
        client: None,
        image: None,
        data_dir: None,
        durable: false,
        files: Vec::new(),
    };
    let limiters: Vec<String> = node_names(cfg).into_iter().skip(1).collect();
    let mut proxy_args = strings(&["faultproxy", "--control", &addr(FAULTPROXY)]);
    for n in &limiters {
        let client = proxy::client_link(n);
        let to_redis = proxy::peer_link(n, REDIS);
        for (link, upstream) in [(&client, addr(n)), (&to_redis, addr(REDIS))] {
            proxy_args.push("--link".into());
            proxy_args.push(format!("{link}={}>{upstream}", addr(link)));
        }
    }
    let faultproxy = proxy::node_spec(
        host,
        port_of(FAULTPROXY),
        crate::subjects::operator_program(local),
        proxy_args,
        None,
    );
    let program = ratelimiter_program(cfg);
    let limiters = limiters.iter().map(|name| {
        let port = port_of(name);
        let mut env = limiter_env(
            cfg,
            name,
            format!("redis://{}", addr(&proxy::peer_link(name, REDIS))),
        );
        env.push(("RATELIMITER_NODE_HOST".into(), host.to_string()));
        env.push(("RATELIMITER_NODE_PORT".into(), port.to_string()));
        NodeSpec {
            install_hint: None,
            name: name.clone(),
            role: ROLE_LIMITER.into(),
            host: host.into(),
            port,
            program: program.clone(),
            args: vec![],
            env,
            health: HealthCheck::Http {
                path: "/health".into(),
            },
            client: Some(addr(&proxy::client_link(name))),
            image: None,
            data_dir: None,
            durable: false,
            files: Vec::new(),
        }
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: [redis, faultproxy].into_iter().chain(limiters).collect(),
    }
}

/// Ports inside the containers: fixed, as each container has its own address.
pub const DOCKER_REDIS_PORT: u16 = 6379;
pub const DOCKER_LIMITER_PORT: u16 = 8000;

/// How to run every node as a container on the instance's network, each reached by its name.
/// Limiters reach Redis through the fault proxy (its link `ratelimiter-N>redis` listens on
/// port 7000+N); Redis keeps an append-only file on its data volume, so that a full disk
/// is a real failure.
pub fn plan_docker(cfg: &RateLimiterConfig, docker: &DockerRuntimeConfig) -> ClusterPlan {
    let redis = NodeSpec {
        install_hint: None,
        name: REDIS.into(),
        role: ROLE_REDIS.into(),
        host: REDIS.into(),
        port: DOCKER_REDIS_PORT,
        program: "redis-server".into(),
        args: strings(&[
            "--bind",
            "0.0.0.0",
            "--protected-mode",
            "no",
            "--port",
            &DOCKER_REDIS_PORT.to_string(),
            "--dir",
            "/data",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]),
        env: vec![],
        health: HealthCheck::RedisPing,
        client: None,
        image: Some(cfg.redis_image.clone()),
        data_dir: Some("/data".into()),
        durable: false,
        files: Vec::new(),
    };
    let limiters: Vec<String> = node_names(cfg).into_iter().skip(1).collect();
    let link_port = |i: usize| proxy::DOCKER_CONTROL_PORT + 1 + i as u16;
    let mut proxy_args = strings(&[
        "faultproxy",
        "--control",
        &format!("0.0.0.0:{}", proxy::DOCKER_CONTROL_PORT),
    ]);
    for (i, n) in limiters.iter().enumerate() {
        proxy_args.push("--link".into());
        proxy_args.push(format!(
            "{}=0.0.0.0:{}>{REDIS}:{DOCKER_REDIS_PORT}",
            proxy::peer_link(n, REDIS),
            link_port(i)
        ));
    }
    let faultproxy = proxy::node_spec(
        FAULTPROXY,
        proxy::DOCKER_CONTROL_PORT,
        "/usr/local/bin/operator".into(),
        proxy_args,
        Some(docker.toolbox_image.clone()),
    );
    let limiters = limiters.iter().enumerate().map(|(i, name)| {
        let mut env = limiter_env(cfg, name, format!("redis://{FAULTPROXY}:{}", link_port(i)));
        env.push(("RATELIMITER_NODE_HOST".into(), "0.0.0.0".into()));
        env.push((
            "RATELIMITER_NODE_PORT".into(),
            DOCKER_LIMITER_PORT.to_string(),
        ));
        env.push((
            "RATELIMITER_ADVERTISE_ADDRESS".into(),
            format!("{name}:{DOCKER_LIMITER_PORT}"),
        ));
        NodeSpec {
            install_hint: None,
            name: name.clone(),
            role: ROLE_LIMITER.into(),
            host: name.clone(),
            port: DOCKER_LIMITER_PORT,
            program: "/usr/local/bin/ratelimiter".into(),
            args: vec![],
            env,
            health: HealthCheck::Http {
                path: "/health".into(),
            },
            client: None,
            image: Some(cfg.image.clone()),
            data_dir: None,
            durable: false,
            files: Vec::new(),
        }
    });
    ClusterPlan {
        subject: SUBJECT.into(),
        nodes: [redis, faultproxy].into_iter().chain(limiters).collect(),
    }
}
