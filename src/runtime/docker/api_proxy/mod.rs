//! The agent's only way to the Docker engine: a filtering proxy of the Engine API, served by
//! the operator on a unix socket that is mounted into the toolbox. It lets through a few calls
//! on the containers of one instance (`rules`), resolves the container a request names — a
//! node name such as `ratelimiter-2` works too — against the engine's labels, and sends the
//! request on with the container's id in place of the name, so that what was checked is what
//! runs. Everything else gets a 403 whose message the docker CLI prints and the model reads.
//! Streams (logs, stats) and hijacked connections (exec) pass through untouched.

pub mod body;
pub mod rules;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::Docker;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HOST, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use self::rules::{Access, Route};
use super::engine::{LABEL_NODE, LABEL_ROLE};
use crate::runtime::{RuntimeError, is_rig};

type Body = BoxBody<Bytes, hyper::Error>;

/// Whose containers the agent may touch.
#[derive(Debug, Clone)]
pub struct Scope {
    pub instance: u32,
    pub owner: String,
    /// The engine's address, as `engine::engine_address` gives it.
    pub engine: String,
}

impl Scope {
    fn labels(&self) -> Vec<String> {
        super::engine::instance_labels(self.instance, &self.owner)
    }
}

/// A running proxy; when dropped, it stops taking connections and its socket goes (calls in
/// flight, such as a followed log, run to their end).
pub struct ApiProxy {
    socket: PathBuf,
    stop: CancellationToken,
}

impl ApiProxy {
    /// Serves the proxy on `socket` (replacing a stale file there) until dropped.
    pub async fn serve(socket: &Path, scope: Scope) -> Result<Self, RuntimeError> {
        let docker = super::engine::connect(&scope.engine).await?;
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir)
                .map_err(RuntimeError::io(format!("creating {}", dir.display())))?;
        }
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket).map_err(RuntimeError::io(format!(
            "serving the Docker API proxy on {}",
            socket.display()
        )))?;
        let stop = CancellationToken::new();
        let state = Arc::new(State { scope, docker });
        let token = stop.clone();
        tokio::spawn(
            async move {
                loop {
                    let stream = tokio::select! {
                        _ = token.cancelled() => break,
                        accepted = listener.accept() => match accepted {
                            Ok((s, _)) => s,
                            Err(e) => {
                                // Out of file descriptors, say: do not spin on it.
                                warn!(error = %e, "accepting a connection failed");
                                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                                continue;
                            }
                        },
                    };
                    let state = state.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(state.handle(req).await) }
                        });
                        if let Err(e) = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await
                        {
                            debug!(error = %e, "a proxy connection ended with an error");
                        }
                    });
                }
            }
            .instrument(info_span!("docker_api_proxy", socket = %socket.display())),
        );
        info!(socket = %socket.display(), "Docker API proxy serving");
        Ok(Self {
            socket: socket.to_path_buf(),
            stop,
        })
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }
}

impl Drop for ApiProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// What of the client's body goes on to the engine: never its bytes, at most what we make
/// of them.
#[derive(Clone, Copy)]
enum Sent {
    /// Nothing: the call needs none.
    Nothing,
    /// An exec's configuration, parsed, checked and written anew.
    ExecCreate,
    /// An exec's start, parsed and written anew (its stream follows on the upgraded
    /// connection).
    ExecStart,
    /// Nothing, and the answer (a container's inspection) has its environment's values
    /// hidden.
    Inspect,
}

/// A container of the instance, as the engine labels it.
struct Ours {
    id: String,
    node: String,
    role: String,
}

struct State {
    scope: Scope,
    docker: Docker,
}

fn message(status: StatusCode, text: &str) -> Response<Body> {
    let body = serde_json::json!({ "message": text }).to_string();
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

impl State {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let span = info_span!("docker_api", method = %req.method(), path = %path);
        async {
            let route = rules::route(req.method(), &path);
            let prefix = &path[..path.len() - rules::unversioned(&path).len()];
            let query = req.uri().query().map(str::to_string);
            // What goes on with the call: calls that need no body get none, whatever was sent
            // (an old API version would read host settings from a start's body).
            let (target, body) = match route {
                Route::Refuse(why) => return self.refused(req, why).await,
                Route::Plain => (path.clone(), Sent::Nothing),
                Route::List => {
                    let mut pairs: Vec<(String, String)> = query
                        .as_deref()
                        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                        .unwrap_or_default();
                    let filters: Vec<String> = pairs
                        .iter()
                        .filter(|(k, _)| k == "filters")
                        .map(|(_, v)| v.clone())
                        .collect();
                    if filters.len() > 1 {
                        let why = "`filters` is given more than once".to_string();
                        return self.refused(req, why).await;
                    }
                    pairs.retain(|(k, _)| k != "filters");
                    pairs.push((
                        "filters".into(),
                        rules::narrow_filters(
                            filters.first().map(String::as_str),
                            &self.scope.labels(),
                        ),
                    ));
                    let q = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs)
                        .finish();
                    return self
                        .forward(req, format!("{path}?{q}"), Sent::Nothing)
                        .await;
                }
                Route::Container {
                    reference,
                    access,
                    rest,
                } => match self.resolve(&reference).await {
                    Err(why) => return self.refused(req, why).await,
                    Ok(c) => {
                        if let Err(why) = self.may(&c, access) {
                            return self.refused(req, why).await;
                        }
                        let body = match access {
                            Access::Exec => Sent::ExecCreate,
                            Access::Read if rest == "/json" => Sent::Inspect,
                            Access::Read | Access::Change => Sent::Nothing,
                        };
                        (format!("{prefix}/containers/{}{rest}", c.id), body)
                    }
                },
                Route::Exec { id, rest } => match self.exec_container(&id).await {
                    Err(why) => return self.refused(req, why).await,
                    Ok(c) => {
                        if let Err(why) = self.may(&c, Access::Exec) {
                            return self.refused(req, why).await;
                        }
                        let body = if rest == "/start" {
                            Sent::ExecStart
                        } else {
                            Sent::Nothing
                        };
                        (format!("{prefix}/exec/{id}{rest}"), body)
                    }
                },
            };
            let target = match query {
                Some(q) => format!("{target}?{q}"),
                None => target,
            };
            self.forward(req, target, body).await
        }
        .instrument(span)
        .await
    }

    /// A 403 with the reason. The request's body is read first (up to a bound): a client
    /// still sending it would otherwise meet a closed connection instead of the answer.
    async fn refused(&self, req: Request<Incoming>, why: String) -> Response<Body> {
        warn!(%why, "refused");
        let _ = http_body_util::Limited::new(req.into_body(), 1 << 20)
            .collect()
            .await;
        message(StatusCode::FORBIDDEN, &why)
    }

    /// The instance's containers, fresh from the engine.
    async fn ours(&self) -> Result<Vec<Ours>, String> {
        let list =
            super::engine::containers_of(&self.docker, self.scope.instance, &self.scope.owner)
                .await
                .map_err(|e| {
                    format!(
                        "the engine did not list containers: {}",
                        super::engine::describe(&e)
                    )
                })?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                Some(Ours {
                    id: c.id?,
                    node: labels.get(LABEL_NODE)?.clone(),
                    role: labels.get(LABEL_ROLE).cloned().unwrap_or_default(),
                })
            })
            .collect())
    }

    /// The container `reference` means: a node name, a container name, or an id (prefix).
    async fn resolve(&self, reference: &str) -> Result<Ours, String> {
        let ours = self.ours().await?;
        let names = |o: &Ours| {
            [
                o.node.clone(),
                format!("operator-{}-{}", self.scope.instance, o.node),
            ]
        };
        let found = ours
            .iter()
            .position(|o| {
                names(o)
                    .iter()
                    .any(|n| n == reference.trim_start_matches('/'))
            })
            .or_else(|| {
                let by_id: Vec<usize> = (0..ours.len())
                    .filter(|&i| reference.len() >= 4 && ours[i].id.starts_with(reference))
                    .collect();
                (by_id.len() == 1).then(|| by_id[0])
            });
        match found.and_then(|i| ours.get(i)) {
            Some(o) => Ok(Ours {
                id: o.id.clone(),
                node: o.node.clone(),
                role: o.role.clone(),
            }),
            None => Err(format!(
                "no container `{reference}` in instance {}: the agent may touch only {}",
                self.scope.instance,
                ours.iter()
                    .map(|o| o.node.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    async fn exec_container(&self, exec: &str) -> Result<Ours, String> {
        let inspected = self
            .docker
            .inspect_exec(exec)
            .await
            .map_err(|e| format!("no exec `{exec}`: {}", super::engine::describe(&e)))?;
        let id = inspected.container_id.unwrap_or_default();
        self.ours()
            .await?
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| {
                format!(
                    "exec `{exec}` runs in a container outside instance {}",
                    self.scope.instance
                )
            })
    }

    /// The rig (the fault proxy, the toolbox) may be read, never changed.
    fn may(&self, c: &Ours, access: Access) -> Result<(), String> {
        if access != Access::Read && is_rig(&c.role) {
            return Err(format!(
                "`{}` is part of the test rig ({}), not the subject: the agent may read it, not change it or exec in it",
                c.node, c.role
            ));
        }
        Ok(())
    }

    /// Sends the request on to the engine with `target` as its path and query, and the
    /// answer back; a 101 (exec, attach) joins the two connections.
    async fn forward(
        &self,
        mut req: Request<Incoming>,
        target: String,
        sent: Sent,
    ) -> Response<Body> {
        debug!(%target, "forwarding");
        let client_upgrade = req
            .headers()
            .contains_key(UPGRADE)
            .then(|| hyper::upgrade::on(&mut req));
        let (mut parts, body) = req.into_parts();
        parts.headers.remove(hyper::header::TRANSFER_ENCODING);
        let bytes = match sent {
            Sent::Nothing | Sent::Inspect => Bytes::new(),
            Sent::ExecCreate | Sent::ExecStart => {
                let raw = match http_body_util::Limited::new(body, body::MAX_BODY)
                    .collect()
                    .await
                {
                    Ok(b) => b.to_bytes(),
                    Err(e) => {
                        return message(
                            StatusCode::BAD_REQUEST,
                            &format!("unreadable request body: {e}"),
                        );
                    }
                };
                let ours = match sent {
                    Sent::ExecCreate => body::ExecCreate::parse(&raw)
                        .and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string())),
                    _ => body::ExecStart::parse(&raw)
                        .and_then(|e| serde_json::to_vec(&e).map_err(|e| e.to_string())),
                };
                match ours {
                    Ok(b) => Bytes::from(b),
                    Err(why) => {
                        warn!(%why, "refused");
                        return message(StatusCode::FORBIDDEN, &why);
                    }
                }
            }
        };
        if bytes.is_empty() {
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.headers.remove(hyper::header::CONTENT_TYPE);
        } else {
            parts.headers.insert(
                hyper::header::CONTENT_LENGTH,
                HeaderValue::from(bytes.len()),
            );
            parts.headers.insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let body: Body = Full::new(bytes).map_err(|never| match never {}).boxed();
        let io = match connect(&self.scope.engine).await {
            Ok(io) => io,
            Err(e) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    &format!("the operator could not reach the engine: {e}"),
                );
            }
        };
        let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(io)).await
        {
            Ok(x) => x,
            Err(e) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    &format!("engine handshake failed: {e}"),
                );
            }
        };
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                debug!(error = %e, "engine connection ended with an error");
            }
        });
        parts.uri = match target.parse() {
            Ok(u) => u,
            Err(e) => return message(StatusCode::BAD_REQUEST, &format!("bad path {target}: {e}")),
        };
        parts
            .headers
            .insert(HOST, HeaderValue::from_static("docker"));
        let mut resp = match sender.send_request(Request::from_parts(parts, body)).await {
            Ok(r) => r,
            Err(e) => {
                return message(
                    StatusCode::BAD_GATEWAY,
                    &format!("the engine did not answer: {e}"),
                );
            }
        };
        if matches!(sent, Sent::Inspect) && resp.status() == StatusCode::OK {
            return hidden_env(resp).await;
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let engine_upgrade = hyper::upgrade::on(&mut resp);
            if let Some(client_upgrade) = client_upgrade {
                tokio::spawn(
                    async move {
                        match tokio::try_join!(client_upgrade, engine_upgrade) {
                            Ok((client, engine)) => {
                                let _ = tokio::io::copy_bidirectional(
                                    &mut TokioIo::new(client),
                                    &mut TokioIo::new(engine),
                                )
                                .await;
                            }
                            Err(e) => debug!(error = %e, "upgrade failed"),
                        }
                    }
                    .in_current_span(),
                );
            }
        }
        resp.map(BodyExt::boxed)
    }
}

/// The engine's inspection of a container, its environment's values hidden.
async fn hidden_env(resp: Response<Incoming>) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    let raw = match http_body_util::Limited::new(body, 16 << 20).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return message(
                StatusCode::BAD_GATEWAY,
                &format!("the engine's answer could not be read: {e}"),
            );
        }
    };
    let Some(hidden) = body::hide_env(&raw) else {
        return message(
            StatusCode::BAD_GATEWAY,
            "the engine's inspection was not JSON; it is not passed on",
        );
    };
    parts.headers.remove(hyper::header::TRANSFER_ENCODING);
    parts.headers.insert(
        hyper::header::CONTENT_LENGTH,
        HeaderValue::from(hidden.len()),
    );
    Response::from_parts(
        parts,
        Full::new(Bytes::from(hidden))
            .map_err(|never| match never {})
            .boxed(),
    )
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A fresh connection to the engine: one request each, so nothing rides on an allowed one.
async fn connect(engine: &str) -> std::io::Result<Box<dyn Io>> {
    if let Some(rest) = engine
        .strip_prefix("tcp://")
        .or_else(|| engine.strip_prefix("http://"))
    {
        return Ok(Box::new(tokio::net::TcpStream::connect(rest).await?));
    }
    let path = engine.strip_prefix("unix://").unwrap_or(engine);
    Ok(Box::new(tokio::net::UnixStream::connect(path).await?))
}
