//! The rate limiter's traffic: `POST /check` on each limiter node in turn, over keys
//! `load-0` … `load-{keys-1}`; a 429 is a request the limit blocked.

use std::time::Duration;

use async_trait::async_trait;

use crate::load::{Outcome, Workload};

pub struct CheckWorkload {
    client: reqwest::Client,
    /// `host:port` of each limiter node, as clients reach it.
    targets: Vec<String>,
    keys: u32,
    limit: Option<u64>,
}

impl CheckWorkload {
    pub fn new(targets: Vec<String>, keys: u32, limit: Option<u64>) -> Self {
        Self {
            client: crate::runtime::health::http_client(),
            targets,
            keys: keys.max(1),
            limit,
        }
    }
}

#[async_trait]
impl Workload for CheckWorkload {
    async fn request(&self, n: u64, timeout: Duration) -> Outcome {
        let Some(target) = self.targets.get((n as usize) % self.targets.len().max(1)) else {
            return Outcome::Failed;
        };
        let key = format!("load-{}", n % u64::from(self.keys));
        let body = match self.limit {
            Some(l) => serde_json::json!({ "key": key, "limit": l }),
            None => serde_json::json!({ "key": key }),
        };
        let sent = self
            .client
            .post(format!("http://{target}/check"))
            .timeout(timeout)
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => Outcome::Ok,
            Ok(r) if r.status().as_u16() == 429 => Outcome::Refused,
            _ => Outcome::Failed,
        }
    }

    fn words(&self) -> [&'static str; 2] {
        ["allowed", "blocked"]
    }
}
