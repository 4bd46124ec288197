//! The policy's word on the rate limiter's programs: `redis-cli` (where it connects, and
//! what its Redis command does: reads are read-only, writes mutating, whatever erases,
//! reconfigures or runs code destructive or denied), `redis-server`, `redis-benchmark` and
//! the `ratelimiter` binary itself.

use crate::policy::ProgramVerdict;
use crate::policy::{Class, Route, Target, glob_matches, url_target};

/// The rate limiter's HTTP API: its reads; a check (one request counted, as a client does);
/// resetting one named counter and setting one named limit, the repairs its runbook uses.
/// Any other write goes to a person.
pub const ROUTES: [Route; 7] = [
    Route::new(
        "GET",
        "/health",
        Class::ReadOnly,
        "the rate limiter's health",
    ),
    Route::new(
        "GET",
        "/metrics",
        Class::ReadOnly,
        "the rate limiter's metrics",
    ),
    Route::new("GET", "/api/*", Class::ReadOnly, "the rate limiter's reads"),
    Route::new("POST", "/check", Class::Mutating, "counts one request"),
    Route::new(
        "POST",
        "/api/counters/*/reset",
        Class::Mutating,
        "resets one counter",
    ),
    Route::new(
        "PUT",
        "/api/limits/*",
        Class::Mutating,
        "sets one key's limit",
    ),
    Route::new(
        "*",
        "/api/*",
        Class::Destructive,
        "a write to the rate limiter's API",
    ),
];

pub fn classify(program: &str, args: &[Option<&str>]) -> Option<ProgramVerdict> {
    let version = args.iter().any(|a| matches!(a, Some("--version" | "-v"))) && args.len() == 1;
    match program {
        "redis-cli" => Some(redis_cli(args)),
        "redis-server" | "ratelimiter" if version => Some(ProgramVerdict::one(
            Class::ReadOnly,
            "prints its version",
            Vec::new(),
        )),
        // Modules, replication into any folder, `--daemonize`: a person decides.
        "redis-server" => Some(ProgramVerdict::one(
            Class::Destructive,
            "starts a Redis server by hand (the operator starts nodes: `operator node start`)",
            Vec::new(),
        )),
        // Its Redis and the name it registers under are whatever its flags say: a node by
        // hand may reach outside or pass for one of the instance's.
        "ratelimiter" => Some(ProgramVerdict::one(
            Class::Destructive,
            "starts a rate-limiter node by hand (the operator starts nodes: `operator node start`)",
            Vec::new(),
        )),
        "redis-benchmark" => Some(ProgramVerdict::one(
            Class::Destructive,
            "redis-benchmark runs the commands it is given, many times over",
            Vec::new(),
        )),
        _ => None,
    }
}

fn mark(v: &mut ProgramVerdict, class: Class, reason: impl Into<String>) {
    v.marks.push((class, reason.into()));
}

/// `redis-cli [options] [command]`: where it connects and what its command does.
fn redis_cli(args: &[Option<&str>]) -> ProgramVerdict {
    let mut v = ProgramVerdict {
        marks: Vec::new(),
        targets: Vec::new(),
    };
    const WITH_VALUE: &[&str] = &[
        "-h",
        "-p",
        "-s",
        "-a",
        "-u",
        "-n",
        "-r",
        "-i",
        "-d",
        "-D",
        "--user",
        "--pass",
        "--cacert",
        "--cacertdir",
        "--cert",
        "--key",
        "--sni",
        "--pattern",
        "--count",
        "--quoted-pattern",
        "--intrinsic-latency",
        "--memkeys-samples",
        "--rdb",
        "--functions-rdb",
        "--pipe-timeout",
        "-t",
    ];
    /// Options that take no value and only shape the output or the connection.
    const PLAIN: &[&str] = &[
        "-c",
        "-e",
        "-3",
        "-2",
        "--raw",
        "--no-raw",
        "--csv",
        "--json",
        "--quoted-json",
        "--verbose",
        "--no-auth-warning",
        "--tls",
        "--insecure",
        "--version",
        "-v",
        "--help",
    ];
    let l = args;
    let mut i = 0;
    let mut special: Option<&str> = None;
    let (mut host, mut port, mut uri, mut socket) = ("127.0.0.1", "6379", None, None);
    let mut explicit_address = false;
    while i < l.len() {
        let value = l.get(i + 1).copied().flatten();
        match l[i] {
            Some("-h") => {
                host = value.unwrap_or(host);
                explicit_address = true;
            }
            Some("-p") => {
                port = value.unwrap_or(port);
                explicit_address = true;
            }
            Some("-u") => uri = value,
            Some("-s") => socket = value,
            _ => {}
        }
        match l[i] {
            Some("--eval") => {
                v.marks.push((
                    Class::Destructive,
                    "redis-cli --eval runs a Lua script".into(),
                ));
                return v;
            }
            Some("--pipe" | "-x") => {
                mark(
                    &mut v,
                    Class::Denied,
                    "redis-cli reads commands or values from its input, which cannot be checked",
                );
                return v;
            }
            // A switch (no value): the client becomes a replica and prints every write of
            // the master, without end.
            Some("--replica" | "--slave") => {
                mark(
                    &mut v,
                    Class::Destructive,
                    "redis-cli --replica streams every write of the server, without end",
                );
                i += 1;
            }
            Some("--rdb" | "--functions-rdb") => {
                mark(
                    &mut v,
                    Class::Destructive,
                    "redis-cli writes a dump file wherever it is told",
                );
                i += 2;
            }
            Some(
                a @ ("--scan"
                | "--bigkeys"
                | "--memkeys"
                | "--hotkeys"
                | "--stat"
                | "--latency"
                | "--latency-history"
                | "--latency-dist"
                | "--intrinsic-latency"),
            ) => {
                special = Some(a);
                i += if a == "--intrinsic-latency" { 2 } else { 1 };
            }
            // `-r N` repeats the command N times, forever when N is negative: past a few, a
            // flood.
            Some("-r") => {
                let repeats = value.and_then(|n| n.parse::<i64>().ok());
                // Paced by `-i` (a tenth of a second or more), a hundred; unpaced, ten.
                let paced = l.windows(2).any(|w| {
                    w[0] == Some("-i")
                        && w[1]
                            .and_then(|s| s.parse::<f64>().ok())
                            .is_some_and(|s| s >= 0.1)
                });
                let most = if paced { 100 } else { 10 };
                if !repeats.is_some_and(|n| (0..=most).contains(&n)) {
                    mark(
                        &mut v,
                        Class::Destructive,
                        "redis-cli -r repeats its command more than ten times unpaced (a hundred with -i 0.1 or more), or forever",
                    );
                }
                i += 2;
            }
            Some(a) if WITH_VALUE.contains(&a) => i += 2,
            Some(a) if PLAIN.contains(&a) => i += 1,
            // An option it does not know may take the next word as its value, and so hide
            // the command that really runs (`-X GET FLUSHALL`): a person decides.
            Some(a) if a.starts_with('-') && a.len() > 1 => {
                mark(
                    &mut v,
                    Class::Destructive,
                    format!("redis-cli {a} is an option the policy does not read"),
                );
                return v;
            }
            _ => break,
        }
    }
    // Unquoted, a word known only at run time among its options splits into several: an
    // option and its value (`-n $(echo 0 -h HOST)`, `-h $(…)`), so the server it reaches is
    // not known.
    if l[..i.min(l.len())].iter().any(Option::is_none) {
        mark(
            &mut v,
            Class::Destructive,
            "redis-cli is given an option known only when it runs, which may name another server",
        );
        return v;
    }
    // The modes that repeat (`--stat`, `--latency`, …) do so every `-i` seconds: below a
    // tenth, a flood.
    if special.is_some()
        && l[..i.min(l.len())].windows(2).any(|w| {
            w[0] == Some("-i")
                && !w[1]
                    .and_then(|s| s.parse::<f64>().ok())
                    .is_some_and(|s| s >= 0.1)
        })
    {
        mark(
            &mut v,
            Class::Destructive,
            "redis-cli repeats its mode more often than ten times a second",
        );
    }
    // Only among its options: after the command, `-v` is an argument (`EVAL … 0 -v`).
    if l[..i.min(l.len())]
        .iter()
        .any(|a| matches!(a, Some("--version" | "-v" | "--help")))
    {
        // Prints its version or usage and reaches no server.
        return v;
    }
    // Every address it is given counts: `-u URL -h HOST` connects to the last one parsed.
    if let Some(s) = socket {
        v.targets.push(Some(Target::Unix(s.to_string())));
    }
    if let Some(u) = uri {
        // redis-cli splits a URL's credentials at the first `@`: with several, the host it
        // dials may not be the one a parser finds.
        if u.matches('@').count() > 1 {
            mark(
                &mut v,
                Class::Destructive,
                "redis-cli -u with several @ in its URL may dial another host than it seems",
            );
        }
        v.targets.push(url_target(u, &super::URL_SCHEMES));
    }
    if (socket.is_none() && uri.is_none()) || explicit_address {
        v.targets.push(port.parse().ok().map(|port| Target::Tcp {
            host: host.to_string(),
            port,
        }));
    }
    let rest = &l[i.min(l.len())..];
    let Some(first) = rest.first() else {
        if special.is_none() {
            mark(
                &mut v,
                Class::Denied,
                "redis-cli without a command reads commands from its input, which cannot be checked",
            );
        }
        return v;
    };
    let Some(cmd) = first.map(str::to_ascii_uppercase) else {
        v.marks.push((
            Class::Denied,
            "a Redis command only known at run time".into(),
        ));
        return v;
    };
    let sub = rest
        .get(1)
        .copied()
        .flatten()
        .map(str::to_ascii_uppercase)
        .unwrap_or_default();
    let dynamic = rest[1..].iter().any(Option::is_none);
    let class = redis_command(&cmd, &sub, &rest[1..]);
    match &class {
        (Class::ReadOnly, _) => {}
        (c, why) => mark(&mut v, *c, why.clone()),
    }
    if dynamic && class.0 >= Class::Mutating {
        mark(
            &mut v,
            Class::Destructive,
            format!("Redis {cmd} on keys only known at run time"),
        );
    }
    v
}

/// `CONFIG SET p v [p v …]`: only tuning known to lose no data and lock no client out
/// needs no person (the slow log, latency monitoring, the log level, and lifting the memory
/// limit); every other setting (passwords, `bind`, `port`, `maxclients`, persistence, files,
/// eviction) goes to a person, and those that write files where they should not are denied.
fn config_set(args: &[Option<&str>]) -> (Class, String) {
    const FILES: &[&str] = &[
        "dir",
        "dbfilename",
        "logfile",
        "appenddirname",
        "appendfilename",
    ];
    const TUNING: &[&str] = &[
        "slowlog-log-slower-than",
        "slowlog-max-len",
        "latency-monitor-threshold",
        "loglevel",
    ];
    let pairs: Vec<(Option<&str>, Option<&str>)> = args[1..]
        .chunks(2)
        .map(|c| (c[0], c.get(1).copied().flatten()))
        .collect();
    if pairs.is_empty() || args[1..].len() % 2 != 0 {
        return (
            Class::Destructive,
            "Redis CONFIG SET without a value for each setting".into(),
        );
    }
    let mut worst = (Class::Mutating, String::new());
    for (param, value) in pairs {
        let (Some(param), Some(value)) = (param, value) else {
            return (
                Class::Destructive,
                "Redis CONFIG SET of a setting only known at run time".into(),
            );
        };
        let param = param.to_ascii_lowercase();
        let verdict = if FILES.contains(&param.as_str()) {
            (
                Class::Denied,
                format!("Redis CONFIG SET {param} writes files where it should not"),
            )
        } else if tuning_within_bounds(&param, value)
            && (TUNING.contains(&param.as_str()) || (param == "maxmemory" && value == "0"))
        {
            (
                Class::Mutating,
                format!("changes the Redis setting {param}"),
            )
        } else {
            (
                Class::Destructive,
                format!(
                    "Redis CONFIG SET {param} can lock clients out or lose data; a person decides"
                ),
            )
        };
        if verdict.0 > worst.0 || worst.1.is_empty() {
            worst = verdict;
        }
    }
    worst
}

/// Tuning values that keep Redis as observable as it was and its memory bounded: a log
/// level that still logs, a slow log of at most ten thousand entries.
fn tuning_within_bounds(param: &str, value: &str) -> bool {
    match param {
        "loglevel" => matches!(
            value.to_ascii_lowercase().as_str(),
            "debug" | "verbose" | "notice" | "warning"
        ),
        "slowlog-max-len" => value.parse::<u64>().is_ok_and(|n| n <= 10_000),
        "slowlog-log-slower-than" | "latency-monitor-threshold" => value.parse::<i64>().is_ok(),
        _ => true,
    }
}

/// What one Redis command does, by its name (and subcommand).
fn redis_command(cmd: &str, sub: &str, args: &[Option<&str>]) -> (Class, String) {
    const READ: &[&str] = &[
        "PING",
        "ECHO",
        "INFO",
        "GET",
        "MGET",
        "STRLEN",
        "GETRANGE",
        "EXISTS",
        "TTL",
        "PTTL",
        "TYPE",
        "KEYS",
        "SCAN",
        "HGET",
        "HMGET",
        "HGETALL",
        "HKEYS",
        "HVALS",
        "HLEN",
        "HEXISTS",
        "HSCAN",
        "HSTRLEN",
        "ZCARD",
        "ZCOUNT",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZSCORE",
        "ZMSCORE",
        "ZRANK",
        "ZREVRANK",
        "ZSCAN",
        "ZLEXCOUNT",
        "SMEMBERS",
        "SCARD",
        "SISMEMBER",
        "SMISMEMBER",
        "SSCAN",
        "SRANDMEMBER",
        "LRANGE",
        "LLEN",
        "LINDEX",
        "LPOS",
        "XLEN",
        "XRANGE",
        "XREAD",
        "LCS",
        "GEORADIUS_RO",
        "GEORADIUSBYMEMBER_RO",
        "XREVRANGE",
        "XINFO",
        "XPENDING",
        "DBSIZE",
        "TIME",
        "LASTSAVE",
        "ROLE",
        "OBJECT",
        "COMMAND",
        "LATENCY",
        "DUMP",
        "RANDOMKEY",
        "PFCOUNT",
        "BITCOUNT",
        "GETBIT",
        "BITPOS",
        "GEOPOS",
        "GEODIST",
        "GEOHASH",
        "GEOSEARCH",
        "SELECT",
        "READONLY",
        "HELLO",
        "AUTH",
        "WAIT",
        "SUBSCRIBE",
        "PSUBSCRIBE",
        "PUBSUB",
        "SINTER",
        "SUNION",
        "SDIFF",
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "TOUCH",
        "EXPIRETIME",
        "PEXPIRETIME",
        "SORT_RO",
    ];
    const WRITE: &[&str] = &[
        "SET",
        "SETNX",
        "MSET",
        "MSETNX",
        "GETSET",
        "APPEND",
        "INCR",
        "INCRBY",
        "DECR",
        "DECRBY",
        "INCRBYFLOAT",
        "PERSIST",
        "COPY",
        "HSET",
        "HSETNX",
        "HMSET",
        "HINCRBY",
        "HINCRBYFLOAT",
        "ZADD",
        "ZINCRBY",
        "SADD",
        "LPUSH",
        "RPUSH",
        "LPUSHX",
        "RPUSHX",
        "LSET",
        "LINSERT",
        "XADD",
        "XACK",
        "PUBLISH",
        "PFADD",
        "GEOADD",
        "BGSAVE",
        "SAVE",
        "BGREWRITEAOF",
        "SORT",
    ];
    /// Commands that delete keys, members or their lifetimes: what they take is gone.
    const LOSES: &[&str] = &[
        // An offset far out makes a value of hundreds of megabytes.
        "SETBIT",
        "SETRANGE",
        "SETEX",
        "PSETEX",
        "GETDEL",
        "GETEX",
        "DEL",
        "UNLINK",
        "EXPIRE",
        "PEXPIRE",
        "EXPIREAT",
        "PEXPIREAT",
        "RENAME",
        "RENAMENX",
        "HDEL",
        "ZREM",
        "ZREMRANGEBYSCORE",
        "ZREMRANGEBYRANK",
        "ZREMRANGEBYLEX",
        "ZPOPMIN",
        "ZPOPMAX",
        "SREM",
        "SPOP",
        "SMOVE",
        "LPOP",
        "RPOP",
        "LREM",
        "LTRIM",
        "LMOVE",
        "XDEL",
        "XTRIM",
    ];
    match (cmd, sub) {
        ("FLUSHALL" | "FLUSHDB", _) => (Class::Denied, format!("Redis {cmd} erases every key")),
        ("DEBUG", _) => (
            Class::Denied,
            "Redis DEBUG can crash or corrupt the server".into(),
        ),
        ("SHUTDOWN", _)
            if args
                .iter()
                .filter_map(|a| *a)
                .any(|a| a.eq_ignore_ascii_case("NOSAVE")) =>
        {
            (Class::Denied, "Redis SHUTDOWN NOSAVE loses data".into())
        }
        ("SHUTDOWN", _) => (Class::Destructive, "stops the Redis server".into()),
        ("CONFIG", "GET") => {
            // A pattern that can match a password setting reads a credential.
            let secret = args.iter().skip(1).any(|a| match a {
                Some(p) => {
                    let p = p.to_ascii_lowercase();
                    [
                        "requirepass",
                        "masterauth",
                        "masteruser",
                        "tls-key-file-pass",
                        "tls-client-key-file-pass",
                    ]
                    .iter()
                    .any(|s| glob_matches(&p, s))
                        || ["pass", "auth"].iter().any(|w| p.contains(w))
                }
                None => true,
            });
            if secret {
                (
                    Class::Denied,
                    "Redis CONFIG GET of a password setting reads a credential".into(),
                )
            } else {
                (Class::ReadOnly, String::new())
            }
        }
        ("CONFIG", "SET") => config_set(args),
        ("CONFIG", "RESETSTAT") => (Class::Mutating, "resets Redis statistics".into()),
        ("CONFIG", _) => (Class::Destructive, format!("Redis CONFIG {sub}")),
        ("CLIENT", "LIST" | "INFO" | "GETNAME" | "ID") => (Class::ReadOnly, String::new()),
        ("CLIENT", "SETNAME" | "SETINFO") => (Class::Mutating, "names a Redis connection".into()),
        ("CLIENT", _) => (
            Class::Destructive,
            format!("Redis CLIENT {sub} disrupts connections"),
        ),
        // The logs a person reads after the fact: erasing them is theirs to decide.
        ("SLOWLOG" | "LATENCY", "RESET") => (
            Class::Destructive,
            format!("Redis {cmd} RESET erases a log a person may need"),
        ),
        ("SLOWLOG", _) => (Class::ReadOnly, String::new()),
        ("MEMORY", "PURGE") => (Class::Mutating, "purges Redis memory".into()),
        ("MEMORY", _) => (Class::ReadOnly, String::new()),
        ("SCRIPT", "LOAD" | "EXISTS") => (Class::Mutating, "loads a Lua script".into()),
        ("SCRIPT", _) => (Class::Destructive, format!("Redis SCRIPT {sub}")),
        ("EVAL" | "EVALSHA" | "EVAL_RO" | "EVALSHA_RO" | "FCALL" | "FCALL_RO" | "FUNCTION", _) => {
            (Class::Destructive, "runs a Lua script in Redis".into())
        }
        ("ACL", "LOG")
            if args
                .iter()
                .any(|a| a.is_some_and(|a| a.eq_ignore_ascii_case("RESET"))) =>
        {
            (
                Class::Destructive,
                "Redis ACL LOG RESET erases the security log".into(),
            )
        }
        ("ACL", "WHOAMI" | "LOG" | "CAT" | "USERS") => (Class::ReadOnly, String::new()),
        (
            "REPLICAOF" | "SLAVEOF" | "MIGRATE" | "MOVE" | "SWAPDB" | "FAILOVER" | "RESTORE"
            | "CLUSTER" | "ACL" | "MODULE" | "SYNC" | "PSYNC",
            _,
        ) => (
            Class::Destructive,
            format!("Redis {cmd} changes replication, data placement or access"),
        ),
        // A negative count repeats members: Redis builds a reply of that many, whatever the
        // key holds, in its own memory. A count within a page is a reader's.
        ("SRANDMEMBER" | "ZRANDMEMBER" | "HRANDFIELD", _)
            if args.get(1).is_some_and(|count| {
                count.is_none_or(|c| {
                    c.parse::<i64>()
                        .map_or(true, |n| !(0..=10_000).contains(&n))
                })
            }) =>
        {
            (
                Class::Destructive,
                format!(
                    "Redis {cmd} with a negative, large or unknown count builds a reply of that many members"
                ),
            )
        }
        ("ZRANDMEMBER" | "HRANDFIELD", _) => (Class::ReadOnly, String::new()),
        // Every command the server receives, without end, and the server slows while it runs.
        ("MONITOR", _) => (
            Class::Destructive,
            "Redis MONITOR streams every command the server receives, without end, and slows it"
                .into(),
        ),
        (c, _) if READ.contains(&c) => (Class::ReadOnly, String::new()),
        // Writes whose options delete: an expiry (SET … PX 1), a trim (XADD … MAXLEN 0), a
        // replaced destination (COPY … REPLACE, SORT … STORE).
        ("SET" | "XADD" | "COPY" | "SORT", _)
            if args.iter().skip(1).any(|a| {
                a.is_none_or(|a| {
                    let a = a.to_ascii_uppercase();
                    matches!(
                        a.as_str(),
                        "EX" | "PX" | "EXAT" | "PXAT" | "MAXLEN" | "MINID" | "REPLACE" | "STORE"
                    )
                })
            }) =>
        {
            (
                Class::Destructive,
                format!("Redis {cmd} with an option that expires, trims or replaces keys"),
            )
        }
        (c, _) if LOSES.contains(&c) => (
            Class::Destructive,
            format!("Redis {c} deletes keys, members or their lifetimes"),
        ),
        (c, _) if WRITE.contains(&c) => (Class::Mutating, format!("Redis {c} changes data")),
        (c, _) => (
            Class::Destructive,
            format!("Redis {c} is not a command the policy knows"),
        ),
    }
}
