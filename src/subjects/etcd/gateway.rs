//! etcd's JSON gateway and HTTP endpoints, over reqwest: no gRPC stack, no `protoc` at build
//! time, and the same requests a person makes with curl. The gateway's shapes: 64-bit numbers
//! as decimal strings, zero and empty fields left out, keys and values in base64.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::runtime::health::error_chain;
use crate::subjects::NodeState;

/// A u64 the gateway writes as a string (or, rarely, as a number).
fn u64_str<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        S(String),
        N(u64),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.parse().map_err(de::Error::custom),
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Header {
    #[serde(deserialize_with = "u64_str")]
    pub cluster_id: u64,
    #[serde(deserialize_with = "u64_str")]
    pub member_id: u64,
    #[serde(deserialize_with = "u64_str")]
    pub revision: u64,
    #[serde(deserialize_with = "u64_str")]
    pub raft_term: u64,
}

/// `/v3/maintenance/status`: a member's own view, answered without quorum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    pub header: Header,
    pub version: String,
    #[serde(rename = "dbSize", deserialize_with = "u64_str")]
    pub db_size: u64,
    #[serde(rename = "dbSizeInUse", deserialize_with = "u64_str")]
    pub db_size_in_use: u64,
    /// 0 (left out) when the member knows no leader.
    #[serde(deserialize_with = "u64_str")]
    pub leader: u64,
    #[serde(rename = "raftIndex", deserialize_with = "u64_str")]
    pub raft_index: u64,
    #[serde(rename = "raftTerm", deserialize_with = "u64_str")]
    pub raft_term: u64,
    #[serde(rename = "raftAppliedIndex", deserialize_with = "u64_str")]
    pub raft_applied_index: u64,
    /// Alarms (`memberID:… alarm:NOSPACE `) and `etcdserver: no leader`.
    pub errors: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

impl Status {
    /// The alarms this member reports, by name (`NOSPACE`, `CORRUPT`).
    pub fn alarms(&self) -> Vec<String> {
        self.errors
            .iter()
            .filter_map(|e| e.split("alarm:").nth(1))
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect()
    }

    /// The members that raised `alarm`, by id: etcd writes each alarm as
    /// `memberID:7 alarm:NOSPACE`, and disarming one names its member.
    pub fn alarm_members(&self, alarm: &str) -> Vec<u64> {
        self.errors
            .iter()
            .filter_map(|e| {
                let (member, raised) = e.split_once("alarm:")?;
                (raised.trim() == alarm).then_some(())?;
                member.trim().strip_prefix("memberID:")?.trim().parse().ok()
            })
            .collect()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Member {
    #[serde(rename = "ID", deserialize_with = "u64_str")]
    pub id: u64,
    /// Empty for a member added but not yet started.
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MemberList {
    members: Vec<Member>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Kv {
    key: String,
    value: String,
    #[serde(deserialize_with = "u64_str")]
    mod_revision: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Range {
    kvs: Vec<Kv>,
    header: Header,
}

/// A key and its value as read, with the revision that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub mod_revision: u64,
}

/// What went wrong asking a member, sorted the way an observer judges a node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Nothing listens.
    #[error("{0}")]
    Refused(String),
    /// No answer in time.
    #[error("{0}")]
    Timeout(String),
    /// An answer, but an error (a gRPC code in `{"error","message","code"}`, or HTTP).
    #[error("{message}")]
    Answered { code: Option<i64>, message: String },
}

impl GatewayError {
    /// How a member that failed this way looks.
    pub fn node_state(&self) -> NodeState {
        match self {
            Self::Refused(_) => NodeState::Down,
            Self::Timeout(_) => NodeState::Unresponsive,
            Self::Answered { .. } => NodeState::Degraded,
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        let text = error_chain(e);
        if e.is_timeout() {
            Self::Timeout(format!("no answer in time: {text}"))
        } else if e.is_connect() {
            Self::Refused(format!("not reachable: {text}"))
        } else {
            Self::Answered {
                code: None,
                message: format!("unreadable answer: {text}"),
            }
        }
    }
}

/// One HTTP client for every member (connections kept alive), with a per-call timeout.
#[derive(Clone)]
pub struct Gateway {
    http: reqwest::Client,
    timeout: Duration,
}

impl Gateway {
    pub fn new(timeout: Duration) -> Self {
        Self {
            http: crate::runtime::health::http_client(),
            timeout,
        }
    }

    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            http: self.http.clone(),
            timeout,
        }
    }

    async fn post(&self, address: &str, path: &str, body: Value) -> Result<Value, GatewayError> {
        let resp = self
            .http
            .post(format!("http://{address}{path}"))
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| GatewayError::from_reqwest(&e))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| GatewayError::from_reqwest(&e))?;
        let value: Value = serde_json::from_str(&text).map_err(|_| GatewayError::Answered {
            code: None,
            message: format!("{path} answered {status}: {}", text.trim()),
        })?;
        if !status.is_success() || value.get("error").is_some() {
            return Err(GatewayError::Answered {
                code: value["code"].as_i64(),
                message: format!(
                    "{path} answered {status}: {}",
                    value["message"]
                        .as_str()
                        .or(value["error"].as_str())
                        .unwrap_or(text.trim())
                ),
            });
        }
        Ok(value)
    }

    fn parse<T: serde::de::DeserializeOwned>(path: &str, v: Value) -> Result<T, GatewayError> {
        serde_json::from_value(v).map_err(|e| GatewayError::Answered {
            code: None,
            message: format!("{path} answered something unexpected: {e}"),
        })
    }

    pub async fn status(&self, address: &str) -> Result<Status, GatewayError> {
        let path = "/v3/maintenance/status";
        Self::parse(path, self.post(address, path, json!({})).await?)
    }

    pub async fn members(&self, address: &str) -> Result<Vec<Member>, GatewayError> {
        let path = "/v3/cluster/member/list";
        let list: MemberList = Self::parse(path, self.post(address, path, json!({})).await?)?;
        Ok(list.members)
    }

    pub async fn metrics(&self, address: &str) -> Result<String, GatewayError> {
        let resp = self
            .http
            .get(format!("http://{address}/metrics"))
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| GatewayError::from_reqwest(&e))?;
        resp.text()
            .await
            .map_err(|e| GatewayError::from_reqwest(&e))
    }

    /// Writes `key`; the answer's header says at which revision, in which cluster.
    pub async fn put(&self, address: &str, key: &str, value: &str) -> Result<Header, GatewayError> {
        let v = self
            .post(
                address,
                "/v3/kv/put",
                json!({"key": B64.encode(key), "value": B64.encode(value)}),
            )
            .await?;
        Self::parse("/v3/kv/put", v["header"].clone())
    }

    /// One key (linearizable), `None` when it is not there.
    pub async fn get(&self, address: &str, key: &str) -> Result<Option<Entry>, GatewayError> {
        let path = "/v3/kv/range";
        let v = self
            .post(address, path, json!({"key": B64.encode(key)}))
            .await?;
        let r: Range = Self::parse(path, v)?;
        Ok(r.kvs.first().map(|kv| Entry {
            key: decode(&kv.key),
            value: decode(&kv.value),
            mod_revision: kv.mod_revision,
        }))
    }

    /// Every key under `prefix`, with its value (linearizable: it needs a quorum).
    pub async fn range_prefix(
        &self,
        address: &str,
        prefix: &str,
    ) -> Result<(Vec<Entry>, Header), GatewayError> {
        let path = "/v3/kv/range";
        let v = self
            .post(
                address,
                path,
                json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))}),
            )
            .await?;
        let r: Range = Self::parse(path, v)?;
        Ok((
            r.kvs
                .iter()
                .map(|kv| Entry {
                    key: decode(&kv.key),
                    value: decode(&kv.value),
                    mod_revision: kv.mod_revision,
                })
                .collect(),
            r.header,
        ))
    }

    /// Deletes every key under `prefix`; how many there were.
    pub async fn delete_prefix(&self, address: &str, prefix: &str) -> Result<u64, GatewayError> {
        let v = self
            .post(
                address,
                "/v3/kv/deleterange",
                json!({"key": B64.encode(prefix), "range_end": B64.encode(prefix_end(prefix))}),
            )
            .await?;
        Ok(v["deleted"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0))
    }

    pub async fn compact(&self, address: &str, revision: u64) -> Result<(), GatewayError> {
        self.post(
            address,
            "/v3/kv/compaction",
            json!({"revision": revision.to_string(), "physical": true}),
        )
        .await
        .map(|_| ())
    }

    pub async fn defragment(&self, address: &str) -> Result<(), GatewayError> {
        self.post(address, "/v3/maintenance/defragment", json!({}))
            .await
            .map(|_| ())
    }

    /// Raises an alarm on `member_id` (the test's way to a CORRUPT alarm).
    pub async fn alarm_activate(
        &self,
        address: &str,
        member_id: u64,
        alarm: &str,
    ) -> Result<(), GatewayError> {
        self.post(
            address,
            "/v3/maintenance/alarm",
            json!({"action": "ACTIVATE", "memberID": member_id.to_string(), "alarm": alarm}),
        )
        .await
        .map(|_| ())
    }

    /// Disarms every alarm the cluster holds; the ones it disarmed, by name.
    pub async fn disarm_all(&self, address: &str) -> Result<Vec<String>, GatewayError> {
        let path = "/v3/maintenance/alarm";
        let v = self.post(address, path, json!({"action": "GET"})).await?;
        let mut done = Vec::new();
        for a in v["alarms"].as_array().into_iter().flatten() {
            let alarm = a["alarm"].as_str().unwrap_or("NOSPACE").to_string();
            self.post(
                address,
                path,
                json!({"action": "DEACTIVATE", "memberID": a["memberID"], "alarm": alarm}),
            )
            .await?;
            done.push(alarm);
        }
        Ok(done)
    }

    pub async fn member_remove(&self, address: &str, id: u64) -> Result<(), GatewayError> {
        self.post(
            address,
            "/v3/cluster/member/remove",
            json!({"ID": id.to_string()}),
        )
        .await
        .map(|_| ())
    }

    pub async fn member_add(&self, address: &str, peer_url: &str) -> Result<u64, GatewayError> {
        let path = "/v3/cluster/member/add";
        let v = self
            .post(address, path, json!({"peerURLs": [peer_url]}))
            .await?;
        let m: Member = Self::parse(path, v["member"].clone())?;
        Ok(m.id)
    }
}

/// A base64 key or value as text; what is not base64 reads as empty.
fn decode(s: &str) -> String {
    B64.decode(s)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The end of the range of keys that start with `prefix` (etcd's `--prefix`).
pub fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte 0xff: to the end of the keyspace.
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gateways_shapes_as_seen_on_3_4() {
        let s: Status = serde_json::from_str(
            r#"{"header":{"cluster_id":"8570459336700167655","member_id":"11539305337000706507","revision":"1","raft_term":"12"},"version":"3.4.23","dbSize":"20480","leader":"3542974012341521924","raftIndex":"9","raftTerm":"12","raftAppliedIndex":"9","dbSizeInUse":"16384"}"#,
        )
        .unwrap();
        assert_eq!(s.header.member_id, 11_539_305_337_000_706_507);
        assert_eq!(s.leader, 3_542_974_012_341_521_924);
        assert_eq!((s.raft_index, s.raft_applied_index), (9, 9));
        assert!(s.errors.is_empty() && !s.is_learner);
        // No quorum: no leader, an error; under NOSPACE: the alarm.
        let s: Status = serde_json::from_str(
            r#"{"header":{},"version":"3.4.23","dbSize":"20480","errors":["etcdserver: no leader","memberID:8645782499530242234 alarm:NOSPACE "]}"#,
        )
        .unwrap();
        assert_eq!(s.leader, 0);
        assert_eq!(s.alarms(), vec!["NOSPACE"]);
        let m: MemberList = serde_json::from_str(
            r#"{"members":[{"ID":"3542974012341521924","name":"m3","peerURLs":["http://127.0.0.1:23803"],"clientURLs":["http://127.0.0.1:23793"]},{"ID":"99","peerURLs":["http://x:1"],"isLearner":true}]}"#,
        )
        .unwrap();
        assert_eq!(m.members[0].name, "m3");
        assert_eq!(m.members[1].name, "");
        assert!(m.members[1].is_learner && m.members[1].client_urls.is_empty());
    }

    #[test]
    fn prefix_end_is_the_next_key_after_every_key_with_the_prefix() {
        assert_eq!(prefix_end("load/"), b"load0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }
}
