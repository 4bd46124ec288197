//! `operator load`: the subject's steady traffic with a line of results per second, and
//! `--verify`, the safety oracle of subjects whose load records what was acknowledged.

use std::time::Duration;

use clap::Args;
use color_eyre::eyre::{Result, eyre};
use operator::load::{self, LoadOptions, LoadSpec, LoadStats};
use tokio_util::sync::CancellationToken;

use super::output;
use super::output::say;
use super::{Context, parse_duration};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  operator load --rate 200 --duration 30s --keys 20
  operator load etcd --rate 50 --duration 1m      # writes and reads, every ack recorded
  operator load etcd --verify                     # exit 1 if an acknowledged write is gone")]
pub struct LoadArgs {
    /// The subject; by default the one the instance runs.
    pub subject: Option<String>,
    /// Requests per second, across all nodes.
    #[arg(long, default_value_t = 50)]
    pub rate: u32,
    /// How long to send.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Distinct keys to spread the requests over.
    #[arg(long, default_value_t = 10)]
    pub keys: u32,
    /// A limit sent with each request, for the rate limiter (a key's own limit wins).
    #[arg(long)]
    pub limit: Option<u64>,
    /// Each request gives up after this long.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub timeout: Duration,
    /// Send nothing: check that every write an earlier load saw acknowledged is still
    /// there with its latest value; print what was lost and exit 1 if anything was, 2 if
    /// it cannot be told (the cluster does not answer).
    #[arg(long)]
    pub verify: bool,
    /// One JSON line per second and one for the totals (with --verify: the verdict).
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, args: LoadArgs) -> Result<()> {
    let name = ctx.subject_name(args.subject.as_deref())?;
    let mut subject = ctx.subject(&name)?;
    if args.verify {
        return verify(subject.as_mut(), &name, args.json).await;
    }
    if args.rate == 0 {
        return Err(eyre!("--rate must be at least 1"));
    }
    let options = LoadOptions {
        keys: args.keys,
        limit: args.limit,
    };
    let workload = subject.workload(&options).await.map_err(|e| eyre!(e))?;
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
            "sending {} req/s to {name} for {} over {} keys; Ctrl-C stops",
            args.rate,
            humantime::format_duration(args.duration),
            args.keys
        );
    }
    let (json, words) = (args.json, workload.words());
    let spec = LoadSpec {
        workload,
        rate: args.rate,
        duration: args.duration,
        timeout: args.timeout,
    };
    let total = load::run(spec, stop, |s| {
        let _ = print(s, json, false, words);
    })
    .await;
    print(&total, json, true, words)?;
    match total.checkpoint_error {
        Some(e) => Err(eyre!("the acknowledged writes could not be recorded: {e}")),
        None => Ok(()),
    }
}

async fn verify(
    subject: &mut dyn operator::subjects::Subject,
    name: &str,
    json: bool,
) -> Result<()> {
    let Some(verdict) = subject.verify_load().await else {
        return Err(eyre!("the {name} subject's load records nothing to verify"));
    };
    // Exit 2: not known either way (the cluster does not answer, the record is unreadable).
    let verdict = match verdict {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot verify: {e}");
            return Err(super::Exit(2).into());
        }
    };
    if json {
        let mut v = serde_json::to_value(&verdict)?;
        v["ok"] = verdict.lost.is_empty().into();
        output::json_line(&v)?;
    } else {
        say!("{}", verdict.summary());
        for l in &verdict.lost {
            say!(
                "  lost {}: acknowledged {:?} at revision {}, found {}",
                l.key,
                l.expected,
                l.revision,
                l.found
            );
        }
    }
    if verdict.lost.is_empty() {
        Ok(())
    } else {
        Err(super::Exit(1).into())
    }
}

fn print(s: &LoadStats, json: bool, total: bool, words: [&str; 2]) -> Result<()> {
    if json {
        let mut v = serde_json::to_value(s)?;
        v["total"] = total.into();
        return output::json_line(&v);
    }
    say!(
        "{}{:>5.0}s  sent {:>6}  {} {:>6}  {} {:>6}  failed {:>5}{}  p50 {:>7.2}ms  p99 {:>7.2}ms",
        if total { "total " } else { "" },
        s.elapsed_s,
        s.sent,
        words[0],
        s.ok,
        words[1],
        s.refused,
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
