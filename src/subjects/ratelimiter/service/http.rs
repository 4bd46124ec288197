//! The node's HTTP API, in the shapes the earlier implementation used (REFERENCE.md), with
//! per-key limits honoured by `/check` and a `/health` that tells the truth.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::Instrument;

use super::metrics::{EndpointLabels, RequestLabels};
use super::{Block, Node, limiter};
use crate::subjects::ratelimiter::redis_link::LinkError;
use crate::subjects::ratelimiter::redis_state;

type Shared = Arc<Node>;

pub fn router(node: Shared) -> Router {
    Router::new()
        .route("/check", post(check))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/nodes", get(nodes))
        .route("/api/counters", get(counters))
        .route("/api/state", get(state))
        .route("/api/counters/{key}/reset", post(reset_counter))
        .route("/api/limits", get(limits))
        .route("/api/limits/{key}", put(set_limit))
        .route("/api/blocks", get(blocks))
        .layer(middleware::from_fn_with_state(node.clone(), record))
        .with_state(node)
}

/// Records every request in the counters and the duration histogram.
async fn record(State(node): State<Shared>, req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let method = req.method().to_string();
    let start = Instant::now();
    let span = tracing::debug_span!("request", %method, %endpoint);
    let resp = next.run(req).instrument(span).await;
    let m = &node.metrics;
    m.duration
        .get_or_create(&EndpointLabels {
            endpoint: endpoint.clone(),
        })
        .observe(start.elapsed().as_secs_f64());
    m.requests
        .get_or_create(&RequestLabels {
            endpoint,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn bad_body(shape: &str, e: &JsonRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("expected a JSON body {shape}: {}", e.body_text()),
    )
}

/// Redis away is 503 (the node cannot decide); Redis saying no is 500.
fn redis_error(node: &Node, e: &LinkError) -> Response {
    if !e.is_command() {
        node.metrics.redis_up.set(0);
    }
    let status = if e.is_command() {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error(status, e.to_string())
}

#[derive(Debug, Deserialize)]
struct CheckRequest {
    key: String,
    limit: Option<u64>,
    window_ms: Option<u64>,
}

const MAX_KEY_LEN: usize = 512;

async fn check(
    State(node): State<Shared>,
    body: Result<Json<CheckRequest>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(e) => return bad_body(r#"{"key": "...", "limit"?: n, "window_ms"?: n}"#, &e),
    };
    if req.key.is_empty() || req.key.len() > MAX_KEY_LEN {
        return error(
            StatusCode::BAD_REQUEST,
            format!("key must be 1 to {MAX_KEY_LEN} bytes"),
        );
    }
    if req.limit == Some(0) || req.window_ms == Some(0) {
        return error(
            StatusCode::BAD_REQUEST,
            "limit and window_ms must be at least 1",
        );
    }
    let defaults = node.settings.defaults();
    let key = req.key.clone();
    let decision = node
        .redis
        .run(|mut c| async move {
            limiter::check(&mut c, &key, req.limit, req.window_ms, defaults).await
        })
        .await;
    let d = match decision {
        Ok(d) => d,
        Err(e) => {
            node.metrics.decision("error");
            return redis_error(&node, &e);
        }
    };
    node.metrics.redis_up.set(1);
    let mut headers = HeaderMap::new();
    headers.insert("X-RateLimit-Limit", HeaderValue::from(d.limit));
    headers.insert("X-RateLimit-Remaining", HeaderValue::from(d.remaining()));
    let body = json!({
        "allowed": d.allowed,
        "current_count": d.count,
        "remaining": d.remaining(),
        "retry_after_seconds": d.retry_after_seconds(),
        "limit": d.limit,
        "window_ms": d.window_ms,
        "node_id": node.settings.node_id,
    });
    if d.allowed {
        node.metrics.decision("allowed");
        return (StatusCode::OK, headers, Json(body)).into_response();
    }
    node.metrics.decision("blocked");
    let reset_epoch_s = (d.now_ms + d.reset_ms).div_ceil(1000);
    headers.insert("X-RateLimit-Reset", HeaderValue::from(reset_epoch_s));
    headers.insert("Retry-After", HeaderValue::from(d.retry_after_seconds()));
    node.record_block(Block {
        key: req.key,
        at: crate::clock::format(crate::clock::now()),
        count: d.count,
        limit: d.limit,
        retry_after_seconds: d.retry_after_seconds(),
    })
    .await;
    (StatusCode::TOO_MANY_REQUESTS, headers, Json(body)).into_response()
}

/// What `/health` says: healthy when Redis answers.
async fn health_report(node: &Node) -> (StatusCode, serde_json::Value) {
    let ping = node
        .redis
        .run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
        .await;
    let uptime = node.started.elapsed().as_secs();
    let registered = node.registered.load(Ordering::Relaxed);
    match ping {
        Ok(_) => {
            node.metrics.redis_up.set(1);
            let body = json!({
                "status": "ok",
                "node_id": node.settings.node_id,
                "redis": "ok",
                "registered": registered,
                "uptime_seconds": uptime,
            });
            (StatusCode::OK, body)
        }
        Err(e) => {
            node.metrics.redis_up.set(0);
            let body = json!({
                "status": "unhealthy",
                "node_id": node.settings.node_id,
                "redis": "unreachable",
                "reason": e.to_string(),
                "registered": registered,
                "uptime_seconds": uptime,
            });
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
    }
}

async fn health(State(node): State<Shared>) -> Response {
    let (status, body) = health_report(&node).await;
    (status, Json(body)).into_response()
}

/// Everything the monitor reads of a node, in one request instead of three: its health as
/// `/health` says it, its counters as `/api/counters` lists them, and the `/check` histogram
/// of `/metrics` (cumulative counts: one per bound in `le`, then `+Inf`).
async fn state(State(node): State<Shared>, Query(q): Query<CountersQuery>) -> Response {
    let (status, health) = health_report(&node).await;
    let counters = if status.is_success() {
        counter_scan(&node, q.max).await.ok()
    } else {
        None
    };
    let histogram = crate::subjects::ratelimiter::latency::check_histogram(&node.metrics.encode())
        .map(|b| {
            let le: Vec<f64> = b
                .iter()
                .map(|(le, _)| *le)
                .filter(|le| le.is_finite())
                .collect();
            let counts: Vec<f64> = b.iter().map(|(_, c)| *c).collect();
            json!({ "le": le, "counts": counts })
        });
    Json(json!({
        "healthy": status.is_success(),
        "health": health,
        "counters": counters.as_ref().map(|c| &c.counters),
        "truncated": counters.as_ref().is_some_and(|c| c.truncated),
        "check_histogram": histogram,
        "node_id": node.settings.node_id,
    }))
    .into_response()
}

async fn metrics(State(node): State<Shared>) -> Response {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics.encode(),
    )
        .into_response()
}

const MAX_LISTED: usize = 10_000;

async fn nodes(State(node): State<Shared>) -> Response {
    let result = node
        .redis
        .run(|mut c| async move {
            let entries = redis_state::registry(&mut c, MAX_LISTED).await?;
            let now = redis_state::time_ms(&mut c).await?;
            Ok((entries, now))
        })
        .await;
    let (entries, now) = match result {
        Ok(v) => v,
        Err(e) => return redis_error(&node, &e),
    };
    let stale_after = 2 * node.settings.node_heartbeat_seconds * 1000;
    let nodes: Vec<_> = entries
        .into_iter()
        .map(|e| {
            let fresh = e
                .last_heartbeat_ms
                .is_some_and(|b| now.saturating_sub(b) <= stale_after);
            json!({
                "id": e.id,
                "address": e.address,
                "state": if fresh { "active" } else { "stale" },
                "registered_at": e.registered_at,
                "last_heartbeat_ms": e.last_heartbeat_ms,
                "ttl_ms": e.ttl_ms,
            })
        })
        .collect();
    Json(json!({ "nodes": nodes })).into_response()
}

#[derive(Debug, Deserialize)]
struct CountersQuery {
    max: Option<usize>,
}

async fn counter_scan(
    node: &Node,
    max: Option<usize>,
) -> Result<redis_state::CounterScan, LinkError> {
    let defaults = node.settings.defaults();
    let max = max.unwrap_or(1000).min(MAX_LISTED);
    let budget = node.redis.timeout() * 5;
    node.redis
        .run_within(budget, |mut c| async move {
            redis_state::counters(&mut c, defaults, max).await
        })
        .await
}

async fn counters(State(node): State<Shared>, Query(q): Query<CountersQuery>) -> Response {
    match counter_scan(&node, q.max).await {
        Ok(scan) => Json(json!({
            "counters": scan.counters,
            "truncated": scan.truncated,
            "node_id": node.settings.node_id,
        }))
        .into_response(),
        Err(e) => redis_error(&node, &e),
    }
}

async fn reset_counter(State(node): State<Shared>, Path(key): Path<String>) -> Response {
    let k = key.clone();
    match node
        .redis
        .run(|mut c| async move { redis_state::reset_counter(&mut c, &k).await })
        .await
    {
        Ok(existed) => Json(json!({ "key": key, "reset": existed })).into_response(),
        Err(e) => redis_error(&node, &e),
    }
}

async fn limits(State(node): State<Shared>) -> Response {
    match node
        .redis
        .run_within(node.redis.timeout() * 5, |mut c| async move {
            redis_state::limits(&mut c, MAX_LISTED).await
        })
        .await
    {
        Ok(limits) => Json(json!({
            "limits": limits,
            "default": {
                "limit": node.settings.default_limit,
                "window_ms": node.settings.default_window_ms,
            },
        }))
        .into_response(),
        Err(e) => redis_error(&node, &e),
    }
}

#[derive(Debug, Deserialize)]
struct LimitRequest {
    limit: u64,
    window_ms: Option<u64>,
}

async fn set_limit(
    State(node): State<Shared>,
    Path(key): Path<String>,
    body: Result<Json<LimitRequest>, JsonRejection>,
) -> Response {
    let req = match body {
        Ok(Json(req)) => req,
        Err(e) => return bad_body(r#"{"limit": n, "window_ms"?: n}"#, &e),
    };
    if req.limit == 0 || req.window_ms == Some(0) {
        return error(
            StatusCode::BAD_REQUEST,
            "limit and window_ms must be at least 1",
        );
    }
    let k = key.clone();
    match node
        .redis
        .run(|mut c| async move {
            redis_state::set_limit(&mut c, &k, req.limit, req.window_ms).await
        })
        .await
    {
        Ok(()) => Json(json!({
            "key": key,
            "limit": req.limit,
            "window_ms": req.window_ms,
        }))
        .into_response(),
        Err(e) => redis_error(&node, &e),
    }
}

async fn blocks(State(node): State<Shared>) -> Response {
    let blocks: Vec<Block> = node.blocks.lock().await.iter().rev().cloned().collect();
    Json(json!({ "blocks": blocks, "node_id": node.settings.node_id })).into_response()
}
