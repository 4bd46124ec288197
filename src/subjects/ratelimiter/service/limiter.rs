//! The sliding-window log, decided in one atomic Lua script so that concurrent requests on
//! every node see one consistent count.

use std::sync::LazyLock;

use redis::RedisResult;
use redis::aio::MultiplexedConnection;

use crate::subjects::ratelimiter::redis_state::{
    Defaults, applied_key, counter_key, limit_key, seq_key,
};

/// KEYS: counter zset, member sequence, key's own limit, limit last applied.
/// ARGV: requested limit, requested window (or ""), default limit, default window.
///
/// A key's own limit wins over what a request asks for: a client cannot raise its limit.
/// Time is Redis's, so nodes with skewed clocks still agree.
const SCRIPT: &str = r"
local own = redis.call('HMGET', KEYS[3], 'limit', 'window_ms')
local limit = tonumber(own[1]) or tonumber(ARGV[1]) or tonumber(ARGV[3])
local window = tonumber(own[2]) or tonumber(ARGV[2]) or tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  return {0, count, limit, window, reset, now}
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now, now .. '-' .. seq)
redis.call('PEXPIRE', KEYS[1], window)
redis.call('PEXPIRE', KEYS[2], window)
redis.call('HSET', KEYS[4], 'limit', limit, 'window_ms', window)
redis.call('PEXPIRE', KEYS[4], window)
return {1, count + 1, limit, window, 0, now}
";

static LIMITER: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT));

/// The limiter's answer for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Entries in the window, this request included if it was admitted.
    pub count: u64,
    pub limit: u64,
    pub window_ms: u64,
    /// Until the oldest entry leaves the window (0 when allowed).
    pub reset_ms: u64,
    /// Redis time of the decision, ms since the epoch.
    pub now_ms: u64,
}

impl Decision {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.count)
    }

    pub fn retry_after_seconds(&self) -> u64 {
        self.reset_ms.div_ceil(1000)
    }
}

pub async fn check(
    conn: &mut MultiplexedConnection,
    key: &str,
    limit: Option<u64>,
    window_ms: Option<u64>,
    defaults: Defaults,
) -> RedisResult<Decision> {
    let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
    let (allowed, count, limit, window_ms, reset_ms, now_ms): (u8, u64, u64, u64, i64, u64) =
        LIMITER
            .key(counter_key(key))
            .key(seq_key(key))
            .key(limit_key(key))
            .key(applied_key(key))
            .arg(opt(limit))
            .arg(opt(window_ms))
            .arg(defaults.limit)
            .arg(defaults.window_ms)
            .invoke_async(conn)
            .await?;
    Ok(Decision {
        allowed: allowed == 1,
        count,
        limit,
        window_ms,
        reset_ms: u64::try_from(reset_ms).unwrap_or(0),
        now_ms,
    })
}
