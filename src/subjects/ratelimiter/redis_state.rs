//! The rate limiter's shared state in Redis: key names, and the readers and writers both
//! the nodes and the monitor use, so that they count the same way.
//!
//! - `ratelimit:{key}`: sorted set, one member per admitted request, scored by Redis time (ms)
//! - `ratelimit:{key}:seq`: member sequence
//! - `ratelimit:{key}:applied`: hash `limit`, `window_ms` last applied by `/check`
//! - `ratelimit:limit:{key}`: hash `limit`, `window_ms` set by `PUT /api/limits/{key}`
//! - `ratelimiter:nodes:{id}`: hash `id`, `address`, `registered_at`, `last_heartbeat_ms`,
//!   with a TTL refreshed by each heartbeat

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands, RedisResult};
use serde::{Deserialize, Serialize};

pub fn counter_key(key: &str) -> String {
    format!("ratelimit:{key}")
}
pub fn seq_key(key: &str) -> String {
    format!("ratelimit:{key}:seq")
}
pub fn applied_key(key: &str) -> String {
    format!("ratelimit:{key}:applied")
}
pub fn limit_key(key: &str) -> String {
    format!("ratelimit:limit:{key}")
}
pub fn node_key(id: &str) -> String {
    format!("ratelimiter:nodes:{id}")
}

const COUNTER_PATTERN: &str = "ratelimit:*";
const LIMIT_PATTERN: &str = "ratelimit:limit:*";
const NODE_PATTERN: &str = "ratelimiter:nodes:*";

/// Limits used when a key has none of its own.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub limit: u64,
    pub window_ms: u64,
}

/// A key's live count within its window, and the limit that applies to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub key: String,
    pub count: u64,
    pub limit: u64,
    pub window_ms: u64,
    pub remaining: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CounterScan {
    pub counters: Vec<Counter>,
    /// More keys exist than were read.
    pub truncated: bool,
    /// Redis's clock when counting, in ms since the epoch.
    pub now_ms: u64,
}

/// Redis's own clock in ms: every node and the monitor count against the same time.
pub async fn time_ms(conn: &mut MultiplexedConnection) -> RedisResult<u64> {
    let (secs, micros): (u64, u64) = redis::cmd("TIME").query_async(conn).await?;
    Ok(secs * 1000 + micros / 1000)
}

/// Keys matching `pattern` (and `kind`, a Redis type), at most `max`; true if there were more.
pub async fn scan(
    conn: &mut MultiplexedConnection,
    pattern: &str,
    kind: Option<&str>,
    max: usize,
) -> RedisResult<(Vec<String>, bool)> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        if let Some(kind) = kind {
            cmd.arg("TYPE").arg(kind);
        }
        let (next, batch): (u64, Vec<String>) = cmd.query_async(conn).await?;
        keys.extend(batch);
        cursor = next;
        if keys.len() > max {
            keys.sort_unstable();
            keys.truncate(max);
            return Ok((keys, true));
        }
        if cursor == 0 {
            keys.sort_unstable();
            keys.dedup();
            return Ok((keys, false));
        }
    }
}

/// Deletes every counter, sequence and limit (the nodes' registrations stay): a clean
/// slate for the next trial. Returns how many keys went.
pub async fn clear_data(conn: &mut MultiplexedConnection) -> RedisResult<usize> {
    let (keys, _) = scan(conn, COUNTER_PATTERN, None, usize::MAX - 1).await?;
    for chunk in keys.chunks(500) {
        let _: () = conn.del(chunk).await?;
    }
    Ok(keys.len())
}

/// Every counter's in-window count and effective limit: a key's own limit, else the one
/// last applied by `/check`, else the defaults.
pub async fn counters(
    conn: &mut MultiplexedConnection,
    defaults: Defaults,
    max: usize,
) -> RedisResult<CounterScan> {
    let (zsets, truncated) = scan(conn, COUNTER_PATTERN, Some("zset"), max).await?;
    let keys: Vec<String> = zsets
        .iter()
        .filter_map(|k| k.strip_prefix("ratelimit:").map(str::to_string))
        .collect();
    let now_ms = time_ms(conn).await?;
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("HMGET")
            .arg(limit_key(key))
            .arg("limit")
            .arg("window_ms");
        pipe.cmd("HMGET")
            .arg(applied_key(key))
            .arg("limit")
            .arg("window_ms");
    }
    let settings: Vec<(Option<u64>, Option<u64>)> = if keys.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let effective: Vec<(u64, u64)> = settings
        .chunks(2)
        .map(|pair| {
            let (own, applied) = (pair[0], pair[1]);
            (
                own.0.or(applied.0).unwrap_or(defaults.limit),
                own.1.or(applied.1).unwrap_or(defaults.window_ms),
            )
        })
        .collect();
    let mut pipe = redis::pipe();
    for (key, (_, window)) in keys.iter().zip(&effective) {
        pipe.cmd("ZCOUNT")
            .arg(counter_key(key))
            .arg(format!("({}", now_ms.saturating_sub(*window)))
            .arg("+inf");
    }
    let counts: Vec<u64> = if keys.is_empty() {
        Vec::new()
    } else {
        pipe.query_async(conn).await?
    };
    let counters = keys
        .into_iter()
        .zip(effective)
        .zip(counts)
        .map(|((key, (limit, window_ms)), count)| Counter {
            key,
            count,
            limit,
            window_ms,
            remaining: limit.saturating_sub(count),
        })
        .collect();
    Ok(CounterScan {
        counters,
        truncated,
        now_ms,
    })
}

/// A limit set for one key by `PUT /api/limits/{key}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitEntry {
    pub key: String,
    pub limit: u64,
    pub window_ms: Option<u64>,
}

pub async fn limits(conn: &mut MultiplexedConnection, max: usize) -> RedisResult<Vec<LimitEntry>> {
    let (hashes, _) = scan(conn, LIMIT_PATTERN, Some("hash"), max).await?;
    let mut out = Vec::with_capacity(hashes.len());
    for h in hashes {
        let (limit, window_ms): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
            .arg(&h)
            .arg("limit")
            .arg("window_ms")
            .query_async(conn)
            .await?;
        if let (Some(key), Some(limit)) = (h.strip_prefix("ratelimit:limit:"), limit) {
            out.push(LimitEntry {
                key: key.into(),
                limit,
                window_ms,
            });
        }
    }
    Ok(out)
}

pub async fn set_limit(
    conn: &mut MultiplexedConnection,
    key: &str,
    limit: u64,
    window_ms: Option<u64>,
) -> RedisResult<()> {
    let mut fields = vec![("limit", limit)];
    fields.extend(window_ms.map(|w| ("window_ms", w)));
    let hkey = limit_key(key);
    if window_ms.is_none() {
        let _: () = conn.hdel(&hkey, "window_ms").await?;
    }
    conn.hset_multiple(hkey, &fields).await
}

/// Forgets a key's count; true if there was one.
pub async fn reset_counter(conn: &mut MultiplexedConnection, key: &str) -> RedisResult<bool> {
    let removed: u64 = conn
        .del(&[counter_key(key), seq_key(key), applied_key(key)])
        .await?;
    Ok(removed > 0)
}

/// `address`, `registered_at`, `last_heartbeat_ms` as stored.
type EntryFields = (Option<String>, Option<String>, Option<u64>);

/// A node's entry in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistryEntry {
    pub id: String,
    pub address: String,
    pub registered_at: String,
    pub last_heartbeat_ms: Option<u64>,
    /// Time to live in ms; `None` when the key never expires (which it always should).
    pub ttl_ms: Option<u64>,
}

pub async fn registry(
    conn: &mut MultiplexedConnection,
    max: usize,
) -> RedisResult<Vec<RegistryEntry>> {
    let (keys, _) = scan(conn, NODE_PATTERN, Some("hash"), max).await?;
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    // Every entry's fields and TTL in one round trip.
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("HMGET")
            .arg(key)
            .arg("address")
            .arg("registered_at")
            .arg("last_heartbeat_ms")
            .cmd("PTTL")
            .arg(key);
    }
    let answers: Vec<redis::Value> = pipe.query_async(conn).await?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, pair) in keys.iter().zip(answers.chunks(2)) {
        let [fields, ttl] = pair else { continue };
        let (address, registered_at, beat): EntryFields = redis::from_redis_value(fields.clone())?;
        let ttl: i64 = redis::from_redis_value(ttl.clone())?;
        if ttl == -2 {
            continue; // expired between SCAN and now
        }
        let id = key.strip_prefix("ratelimiter:nodes:").unwrap_or(key);
        out.push(RegistryEntry {
            id: id.into(),
            address: address.unwrap_or_default(),
            registered_at: registered_at.unwrap_or_default(),
            last_heartbeat_ms: beat,
            ttl_ms: u64::try_from(ttl).ok(),
        });
    }
    Ok(out)
}

/// Writes (or rewrites) a node's entry and its TTL in one transaction.
pub async fn register(
    conn: &mut MultiplexedConnection,
    id: &str,
    address: &str,
    registered_at: &str,
    ttl_seconds: u64,
) -> RedisResult<()> {
    let key = node_key(id);
    let now = time_ms(conn).await?;
    redis::pipe()
        .atomic()
        .hset_multiple(
            &key,
            &[
                ("id", id.to_string()),
                ("address", address.to_string()),
                ("registered_at", registered_at.to_string()),
                ("last_heartbeat_ms", now.to_string()),
            ],
        )
        .ignore()
        .expire(&key, ttl_seconds as i64)
        .ignore()
        .query_async(conn)
        .await
}

pub async fn deregister(conn: &mut MultiplexedConnection, id: &str) -> RedisResult<()> {
    conn.del(node_key(id)).await
}
