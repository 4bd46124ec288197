//! The proxy process: its links, and the HTTP control API that chaos drives from any process.
//!
//! `GET /health`, `GET /links`, `PUT /links/{link}/toxics/{tag}` (body: a [`Rule`]: a
//! toxic, and `dialed_by` to put it only on connections the node at that address dialed),
//! `DELETE /links/{link}/toxics/{tag}`; with a token, the last two need
//! `Authorization: Bearer <token>`. Toxics live only in this process: if it dies, every
//! fault it carried is gone with it, which is what heal wants anyway.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tracing::info;

use super::link::{Link, LinkSpec, LinkView};
use super::toxic::{PartitionMode, Rule, Toxic};

type Links = Arc<BTreeMap<String, Arc<Link>>>;

/// What the control API serves: the links, and the token that changes need, if any.
#[derive(Clone)]
pub struct Control {
    links: Links,
    token: Option<Arc<str>>,
}

impl Control {
    /// Whether `headers` carry the token, when there is one.
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| given.as_bytes() == token.as_bytes())
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({ "error": "changing toxics needs the proxy's token; use `operator chaos`" })),
    )
        .into_response()
}

/// How long a toxic change waits for a link's listener to follow it, so that a caller who
/// gets 200 can rely on the effect.
const SETTLE: Duration = Duration::from_secs(5);

/// Serves `links` and the control API on `control` until the process is told to stop.
pub async fn run(
    control: SocketAddr,
    specs: Vec<LinkSpec>,
    token: Option<String>,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(control)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("control address {control}: {e}")))?;
    let links = start(specs);
    for l in links.values() {
        if !l.wait_listening(true, SETTLE).await {
            return Err(std::io::Error::other(format!(
                "link `{}` cannot listen on {}",
                l.spec.name, l.spec.listen
            )));
        }
    }
    info!(%control, links = links.len(), "fault proxy ready");
    axum::serve(listener, router(links, token))
        .with_graceful_shutdown(crate::shutdown::signal())
        .await
}

/// Starts every link's listener; returns them by name.
pub fn start(specs: Vec<LinkSpec>) -> Links {
    let links: BTreeMap<_, _> = specs
        .into_iter()
        .map(|s| (s.name.clone(), Link::new(s)))
        .collect();
    for l in links.values() {
        tokio::spawn(Arc::clone(l).serve());
    }
    Arc::new(links)
}

pub fn router(links: Links, token: Option<String>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/links", get(list))
        .route("/links/{link}/toxics/{tag}", put(set).delete(remove))
        .with_state(Control {
            links,
            token: token.map(Arc::from),
        })
}

fn not_found(link: &str, links: &Links) -> Response {
    let known: Vec<_> = links.keys().cloned().collect();
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("no link `{link}`; links: {}", known.join(", ")) })),
    )
        .into_response()
}

async fn list(State(c): State<Control>) -> Json<Vec<LinkView>> {
    Json(c.links.values().map(|l| l.view()).collect())
}

async fn set(
    State(c): State<Control>,
    headers: HeaderMap,
    Path((link, tag)): Path<(String, String)>,
    Json(rule): Json<Rule>,
) -> Response {
    if !c.allows(&headers) {
        return unauthorized();
    }
    let links = &c.links;
    let Some(l) = links.get(&link) else {
        return not_found(&link, links);
    };
    l.set_toxic(&tag, rule);
    if refuses_all(&rule) && !l.wait_listening(false, SETTLE).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("link `{link}` still listens on {}; the refusal did not take", l.spec.listen) })),
        )
            .into_response();
    }
    Json(l.view()).into_response()
}

async fn remove(
    State(c): State<Control>,
    headers: HeaderMap,
    Path((link, tag)): Path<(String, String)>,
) -> Response {
    if !c.allows(&headers) {
        return unauthorized();
    }
    let links = &c.links;
    let Some(l) = links.get(&link) else {
        return not_found(&link, links);
    };
    let removed = l.remove_toxic(&tag);
    let refusing = l.view().toxics.values().any(refuses_all);
    if !refusing && !l.wait_listening(true, SETTLE).await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "error": format!("link `{link}` cannot listen on {} again", l.spec.listen), "removed": removed })),
        )
            .into_response();
    }
    Json(json!({ "removed": removed, "link": l.view() })).into_response()
}

/// A refusal on every connection closes the link's listener; one scoped to a dialer does not.
fn refuses_all(rule: &Rule) -> bool {
    rule.dialed_by.is_none()
        && rule.toxic
            == Toxic::Partition {
                mode: PartitionMode::Refuse,
            }
}
