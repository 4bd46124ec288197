//! `operator load`: steady /check traffic with a line of results per second.

use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};
use operator::load::{self, LoadSpec, LoadStats};
use operator::subjects::ratelimiter::topology::ROLE_LIMITER;
use tokio_util::sync::CancellationToken;

use super::output;
use super::output::say;
use super::{Context, parse_duration};

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  operator load --rate 200 --duration 30s --keys 20")]
pub struct LoadArgs {
    /// The subject (only the rate limiter takes load for now).
    #[arg(default_value = "ratelimiter")]
    pub subject: String,
    /// Requests per second, across all limiter nodes.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// How long to send.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Distinct keys to spread the requests over.
    #[arg(long, default_value_t = 10)]
    pub keys: u32,
    /// A limit sent with each request (a key's own limit wins).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Each request gives up after this long.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub timeout: Duration,
    /// One JSON line per second and one for the totals.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: LoadArgs) -> Result<()> {
    ctx.subject_name(Some(&args.subject))?;
    if args.rate == 0 {
        return Err(eyre!("--rate must be at least 1"));
    }
    let topology = ctx.runtime()?.topology()?;
    let targets: Vec<String> = topology
        .nodes
        .iter()
        .filter(|n| n.role == ROLE_LIMITER)
        .map(|n| n.client_address().to_string())
        .collect();
    if targets.is_empty() {
        return Err(eyre!("instance {} has no rate-limiter node", ctx.instance));
    }
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
    }
    if !args.json {
        eprintln!(
            "sending {} req/s for {} to {} nodes over {} keys; Ctrl-C stops",
            args.rate,
            humantime::format_duration(args.duration),
            targets.len(),
            args.keys
        );
    }
    let json = args.json;
    let spec = LoadSpec {
        targets,
        rate: args.rate,
        duration: args.duration,
        keys: args.keys,
        limit: args.limit,
        timeout: args.timeout,
    };
    let total = load::run(spec, stop, |s| {
        let _ = print(s, json, false);
    })
    .await;
    print(&total, json, true)
}

fn print(s: &LoadStats, json: bool, total: bool) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        v["total"] = total.into();
        return output::json_line(&v);
    }
    say!(
        "{}{:>5.0}s  sent {:>6}  allowed {:>6}  blocked {:>6}  failed {:>5}{}  p50 {:>7.2}ms  p99 {:>7.2}ms",
        if total { "total " } else { "" },
        s.elapsed_s,
        s.sent,
        s.allowed,
        s.blocked,
        s.failed,
        if s.dropped > 0 {
            format!("  dropped {}", s.dropped)
        } else {
            String::new()
        },
        s.p50_ms,
        s.p99_ms
    );
    Ok(())
}
