//! `operator monitor`: the monitor loop, headless, with a heartbeat line per cycle.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use color_eyre::eyre::Result;
use operator::monitor::{CycleReport, MIN_INTERVAL, Monitor, MonitorError};
use operator::tickets::ChangeKind;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::output;
use super::output::say;
use super::{Context, parse_duration};

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  operator monitor\n  operator monitor --interval 200ms\n  operator monitor --once --json"
)]
pub struct MonitorArgs {
    /// The subject to watch (default: the one running in this instance).
    #[arg(long)]
    pub subject: Option<String>,
    /// Time between observations (at least 100ms). Default: monitor.interval, 1s.
    #[arg(long, value_parser = parse_duration, env = "OPERATOR_MONITOR_INTERVAL")]
    pub interval: Option<Duration>,
    /// Observe once, print, and exit.
    #[arg(long)]
    pub once: bool,
    /// One JSON report per cycle instead of a heartbeat line.
    #[arg(long)]
    pub json: bool,
}

/// How often the monitor heals overdue faults. The sweep rides on the monitor's own beat
/// rather than a timer of its own: each wake-up of an idle process costs CPU (see
/// `monitor::ticker`), and a healthy cycle is cheap enough for that to show.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

pub async fn run(ctx: &Context, args: MonitorArgs) -> Result<()> {
    let name = ctx.subject_name(args.subject.as_deref())?;
    let subject = ctx.subject(&name)?;
    let store = ctx.store().await?;
    let interval = args.interval.unwrap_or(ctx.config.monitor.interval);
    if interval < MIN_INTERVAL {
        color_eyre::eyre::bail!(
            "--interval {} is too short: the monitor observes at most every 100ms",
            humantime::format_duration(interval)
        );
    }
    let mut monitor = Monitor::new(subject, store, &ctx.config.tickets);
    if args.once {
        print(&monitor.cycle().await, args.json)?;
        return Ok(());
    }
    let events = ctx.runtime()?.events();
    let follows = events.is_some();
    let monitor = monitor.with_events(events);
    let stop = CancellationToken::new();
    // Faults whose time is up heal even if the process that injected them is gone (each has
    // a healer of its own: this is the backstop).
    let sweep_due = Arc::new(Notify::new());
    let sweeper = {
        let chaos = ctx.chaos(&name, "monitor").await?;
        let stop = stop.clone();
        let due = sweep_due.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = chaos.sweep().await {
                    warn!(error = %e, "chaos sweep failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = due.notified() => {}
                }
            }
        })
    };
    let mut swept = Instant::now();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            operator::shutdown::signal().await;
            stop.cancel();
        });
    }
    if !args.json {
        eprintln!(
            "monitoring {name} instance {} every {}{} (DB {}); Ctrl-C stops",
            ctx.instance,
            humantime::format_duration(interval),
            if follows {
                " and on the engine's events"
            } else {
                ""
            },
            ctx.db.display()
        );
    }
    let json = args.json;
    monitor
        .run(interval, stop.clone(), |report| {
            if let Err(e) = print(&report, json) {
                warn!(error = %e, "could not print a cycle report");
            }
            if swept.elapsed() >= SWEEP_EVERY {
                swept = Instant::now();
                sweep_due.notify_one();
            }
        })
        .await;
    stop.cancel();
    let _ = sweeper.await;
    Ok(())
}

fn print(report: &Result<CycleReport, MonitorError>, json: bool) -> Result<()> {
    let r = match report {
        Ok(r) => r,
        Err(e) => {
            if json {
                return output::json_line(&serde_json::json!({ "error": e.to_string() }));
            }
            say!(
                "{} monitor cycle failed: {e}",
                operator::clock::format(operator::clock::now())
            );
            return Ok(());
        }
    };
    if json {
        return output::json_line(r);
    }
    let nodes = match &r.observation_error {
        Some(e) => format!("cannot observe: {e}"),
        None => {
            let out = r
                .nodes_out
                .iter()
                .map(|(n, s)| format!("{n} {}", s.as_str()))
                .collect::<Vec<_>>();
            if out.is_empty() {
                format!("nodes {}/{} up", r.nodes_up, r.nodes_total)
            } else {
                format!(
                    "nodes {}/{} up ({})",
                    r.nodes_up,
                    r.nodes_total,
                    out.join(", ")
                )
            }
        }
    };
    let pending = if r.pending > 0 {
        format!(" ({} in grace)", r.pending)
    } else {
        String::new()
    };
    let woken = if r.woken_by.is_empty() {
        String::new()
    } else {
        format!(" · woken by {}", r.woken_by.join(", "))
    };
    say!(
        "{} #{} {nodes} · violations {}{pending} · tickets {} active · {:.0}ms{woken}",
        operator::clock::format(r.at),
        r.cycle,
        r.violations,
        r.active_tickets,
        r.cycle_ms
    );
    for c in &r.changes {
        let what = match c.change {
            ChangeKind::Opened => "opened".to_string(),
            ChangeKind::Reopened => "reopened".to_string(),
            ChangeKind::Resolved(res) => format!("resolved ({})", res.as_str()),
            ChangeKind::Cleared => "cleared".to_string(),
            ChangeKind::SeenAgain => "seen again".to_string(),
        };
        say!(
            "  ticket #{} {what}: {} {} — {}",
            c.ticket_id,
            c.invariant,
            c.entity,
            c.summary
        );
    }
    Ok(())
}
