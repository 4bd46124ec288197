//! The rate limiter's own faults, whose repair is more than a restart: Redis's memory capped
//! far below what it holds under `noeviction` (`redis_maxmemory`: Redis refuses every plain
//! write — per-key limits, the nodes' heartbeats; the limiter's Lua script it lets through,
//! as Redis does for scripts that declare no flags), and a key's
//! counter filled with entries dated an hour ahead, as a writer with a skewed clock leaves
//! them (`stale_counter`: the key stays blocked, past its limit, until someone resets it).
//! Each is undone by its heal and checked undone.

use std::time::Duration;

use super::redis_link::RedisLink;
use super::redis_state;
use super::topology::{ROLE_LIMITER, ROLE_REDIS};
use crate::chaos::FaultAction;
use crate::chaos::faults::SubjectFault;
use crate::runtime::Runtime;

pub const REDIS_MAXMEMORY: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "redis_maxmemory",
    description: "cap Redis's memory at 1 byte under noeviction: plain writes (limits, heartbeats) are refused; heal lifts the cap",
    heal_action: "lift the memory cap",
    verb: "cap the memory of",
    default_target: Some(ROLE_REDIS),
    repairable: true,
    action: &Own::RedisMaxmemory,
};

pub const STALE_COUNTER: SubjectFault = SubjectFault {
    subject: super::topology::SUBJECT,
    name: "stale_counter",
    description: "fill one key's counter past its limit with entries dated an hour ahead (a skewed clock): the key stays blocked; heal resets it",
    heal_action: "reset the counter",
    verb: "skew a counter through",
    default_target: Some(ROLE_REDIS),
    repairable: true,
    action: &Own::StaleCounter,
};

pub static FAULTS: [SubjectFault; 2] = [REDIS_MAXMEMORY, STALE_COUNTER];

/// The key `stale_counter` skews: one the background load uses, so that clients feel it.
pub const STALE_KEY: &str = "load-0";
/// How far ahead its entries are dated.
const SKEW_MS: u64 = 3_600_000;

fn redis_link(runtime: &dyn Runtime) -> Result<RedisLink, String> {
    let t = runtime.topology().map_err(|e| e.to_string())?;
    let redis = t
        .nodes
        .iter()
        .find(|n| n.role == ROLE_REDIS)
        .ok_or("the recorded topology has no redis node")?;
    RedisLink::new(
        &format!("redis://{}", redis.address),
        Duration::from_secs(2),
    )
    .map_err(|e| e.to_string())
}

/// The rate limiter's own faults, each applied and undone through Redis.
enum Own {
    RedisMaxmemory,
    StaleCounter,
}

#[async_trait::async_trait]
impl FaultAction for Own {
    async fn inject(&self, _target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        let link = redis_link(runtime)?;
        match self {
            Self::RedisMaxmemory => cap_memory(&link).await,
            Self::StaleCounter => skew_counter(&link).await,
        }
    }

    async fn heal(&self, _target: &str, runtime: &dyn Runtime) -> Result<String, String> {
        let link = redis_link(runtime)?;
        match self {
            Self::RedisMaxmemory => lift_cap(&link).await,
            Self::StaleCounter => reset_counter(&link, runtime).await,
        }
    }
}

async fn cap_memory(link: &RedisLink) -> Result<String, String> {
    link.run(|mut c| async move {
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory-policy")
            .arg("noeviction")
            .query_async(&mut c)
            .await?;
        // Far below what it holds: every write that needs memory is refused.
        let () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("maxmemory")
            .arg("1")
            .query_async(&mut c)
            .await?;
        Ok(())
    })
    .await
    .map_err(|e| format!("capping Redis's memory: {e}"))?;
    Ok("set Redis's maxmemory to 1 byte under noeviction: plain writes are refused".into())
}

async fn maxmemory(c: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<String> {
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(c)
        .await?;
    Ok(got.get(1).cloned().unwrap_or_default())
}

/// Back to no cap, as the cluster was started (the policy stays noeviction, Redis's
/// default); says so when there was nothing to lift.
async fn lift_cap(link: &RedisLink) -> Result<String, String> {
    let (before, after) = link
        .run(|mut c| async move {
            let before = maxmemory(&mut c).await?;
            let () = redis::cmd("CONFIG")
                .arg("SET")
                .arg("maxmemory")
                .arg("0")
                .query_async(&mut c)
                .await?;
            Ok((before, maxmemory(&mut c).await?))
        })
        .await
        .map_err(|e| format!("lifting Redis's memory cap: {e}"))?;
    match (before.as_str(), after.as_str()) {
        (_, a) if a != "0" => Err(format!("Redis's maxmemory is still {a}")),
        ("0", _) => Ok("nothing left to lift: Redis's maxmemory was 0 already".into()),
        (b, _) => Ok(format!(
            "lifted Redis's memory cap of {b} bytes (maxmemory 0, as the cluster was started)"
        )),
    }
}

async fn skew_counter(link: &RedisLink) -> Result<String, String> {
    let (added, limit) = link
        .run(|mut c| async move {
            let now = redis_state::time_ms(&mut c).await?;
            let own: Option<u64> = redis::cmd("HGET")
                .arg(redis_state::limit_key(STALE_KEY))
                .arg("limit")
                .query_async(&mut c)
                .await?;
            let applied: Option<u64> = redis::cmd("HGET")
                .arg(redis_state::applied_key(STALE_KEY))
                .arg("limit")
                .query_async(&mut c)
                .await?;
            let limit = own.or(applied).unwrap_or(100);
            // Past the limit, so that the key is over it whatever its window.
            let n = limit + 5;
            let mut pipe = redis::pipe();
            for i in 0..n {
                pipe.cmd("ZADD")
                    .arg(redis_state::counter_key(STALE_KEY))
                    .arg(now + SKEW_MS + i)
                    .arg(format!("skewed-{i}"))
                    .ignore();
            }
            // No expiry: blocked requests never refresh it, and it must outlive the test of
            // time it stands for (an hour).
            pipe.cmd("PERSIST")
                .arg(redis_state::counter_key(STALE_KEY))
                .ignore();
            let () = pipe.query_async(&mut c).await?;
            Ok((n, limit))
        })
        .await
        .map_err(|e| format!("skewing {STALE_KEY}'s counter: {e}"))?;
    Ok(format!(
        "added {added} entries dated an hour ahead to {STALE_KEY}'s counter (limit {limit}): it stays blocked"
    ))
}

/// Entries of the key dated after Redis's now.
async fn ahead(link: &RedisLink) -> Result<u64, String> {
    link.run(|mut c| async move {
        let now = redis_state::time_ms(&mut c).await?;
        redis::cmd("ZCOUNT")
            .arg(redis_state::counter_key(STALE_KEY))
            .arg(format!("({now}"))
            .arg("+inf")
            .query_async(&mut c)
            .await
    })
    .await
    .map_err(|e| format!("reading {STALE_KEY}'s counter: {e}"))
}

/// Through a node's API, as a person would, else in Redis directly; says so when nothing
/// dated ahead was left.
async fn reset_counter(link: &RedisLink, runtime: &dyn Runtime) -> Result<String, String> {
    if ahead(link).await? == 0 {
        return Ok(format!(
            "nothing left to reset: {STALE_KEY}'s counter holds no entry dated ahead"
        ));
    }
    let t = runtime.topology().map_err(|e| e.to_string())?;
    let http = crate::runtime::health::http_client();
    let mut how = None;
    for n in t.nodes.iter().filter(|n| n.role == ROLE_LIMITER) {
        let url = format!("http://{}/api/counters/{STALE_KEY}/reset", n.address);
        if let Ok(r) = http.post(&url).timeout(Duration::from_secs(2)).send().await {
            if r.status().is_success() {
                how = Some(format!("reset {STALE_KEY}'s counter through {}", n.name));
                break;
            }
        }
    }
    let how = match how {
        Some(h) => h,
        None => {
            link.run(|mut c| async move { redis_state::reset_counter(&mut c, STALE_KEY).await })
                .await
                .map_err(|e| format!("resetting {STALE_KEY}'s counter: {e}"))?;
            format!("reset {STALE_KEY}'s counter in Redis (no node answered)")
        }
    };
    match ahead(link).await? {
        0 => Ok(how),
        n => Err(format!(
            "{how}, but {n} entries dated ahead are still there"
        )),
    }
}
