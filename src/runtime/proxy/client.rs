//! The control API, from the side of whoever injects or heals a fault.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::link::LinkView;
use super::toxic::{Rule, Toxic};
use crate::runtime::health::error_chain;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the fault proxy at {address} does not answer: {reason}")]
    Unreachable { address: String, reason: String },
    #[error("the fault proxy at {address} said {status}: {message}")]
    Refused {
        address: String,
        status: u16,
        message: String,
    },
    #[error("the fault proxy at {address}: {message}")]
    Inconsistent { address: String, message: String },
}

pub struct ProxyClient {
    address: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl ProxyClient {
    /// `address`: the proxy's control `host:port`.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            http: crate::runtime::health::http_client(),
            token: None,
        }
    }

    /// With the token that changes need (see [`super::token`]).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ProxyError> {
        let mut url = reqwest::Url::parse(&format!("http://{}/", self.address)).map_err(|e| {
            ProxyError::Unreachable {
                address: self.address.clone(),
                reason: e.to_string(),
            }
        })?;
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        Ok(url)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ProxyError> {
        let unreachable = |e: reqwest::Error| ProxyError::Unreachable {
            address: self.address.clone(),
            reason: error_chain(&e),
        };
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if !status.is_success() {
            // The proxy says why in JSON; a rejection by the HTTP layer is plain text.
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| {
                    if text.trim().is_empty() {
                        "no reason given".into()
                    } else {
                        text.trim().to_string()
                    }
                });
            return Err(ProxyError::Refused {
                address: self.address.clone(),
                status: status.as_u16(),
                message,
            });
        }
        resp.json().await.map_err(unreachable)
    }

    pub async fn links(&self) -> Result<Vec<LinkView>, ProxyError> {
        self.call(self.http.get(self.url(&["links"])?)).await
    }

    pub async fn set(
        &self,
        link: &str,
        tag: &str,
        rule: impl Into<Rule>,
    ) -> Result<LinkView, ProxyError> {
        let url = self.url(&["links", link, "toxics", tag])?;
        self.call(self.http.put(url).json(&rule.into())).await
    }

    /// True if the tag had a toxic on the link.
    pub async fn remove(&self, link: &str, tag: &str) -> Result<bool, ProxyError> {
        let url = self.url(&["links", link, "toxics", tag])?;
        let v: serde_json::Value = self.call(self.http.delete(url)).await?;
        Ok(v["removed"].as_bool().unwrap_or(false))
    }

    /// Puts `toxic` under `tag` on every link that touches `node`; returns those links.
    /// With `dialer` (the address `node` listens on, on this host), also on the connections
    /// `node` dials through the other nodes' links, so that it is cut off both ways.
    pub async fn impair_node(
        &self,
        node: &str,
        tag: &str,
        toxic: Toxic,
        dialer: Option<SocketAddr>,
    ) -> Result<Vec<String>, ProxyError> {
        let rules: Vec<(String, Rule)> = self
            .links()
            .await?
            .into_iter()
            .filter_map(|l| {
                if super::touches(&l.name, node) {
                    Some((l.name, toxic.into()))
                } else if super::is_client_link(&l.name) {
                    None
                } else {
                    let dialed_by = Some(dialer?);
                    Some((l.name, Rule { toxic, dialed_by }))
                }
            })
            .collect();
        let mut links = Vec::new();
        for (link, rule) in rules {
            let view = self.set(&link, tag, rule).await?;
            if view.toxics.get(tag) != Some(&rule) {
                return Err(ProxyError::Inconsistent {
                    address: self.address.clone(),
                    message: format!("link `{link}` does not show the toxic just set"),
                });
            }
            links.push(match rule.dialed_by {
                Some(_) => format!("{link} (what {node} dials)"),
                None => link,
            });
        }
        Ok(links)
    }

    /// Removes `tag`'s toxics from every link and checks none is left; returns the links
    /// it was on.
    pub async fn clear_tag(&self, tag: &str) -> Result<Vec<String>, ProxyError> {
        let mut cleared = Vec::new();
        for l in self.links().await? {
            if l.toxics.contains_key(tag) {
                self.remove(&l.name, tag).await?;
                cleared.push(l.name);
            }
        }
        let left: Vec<String> = self
            .links()
            .await?
            .into_iter()
            .filter(|l| l.toxics.contains_key(tag))
            .map(|l| l.name)
            .collect();
        if !left.is_empty() {
            return Err(ProxyError::Inconsistent {
                address: self.address.clone(),
                message: format!("`{tag}` is still on {} after removal", left.join(", ")),
            });
        }
        Ok(cleared)
    }
}
