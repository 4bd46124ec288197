//! `up`, `down`, `status`, `node`: the subject cluster's life.

use std::time::Instant;

use clap::{Args, ValueEnum};
use color_eyre::eyre::{Result, eyre};
use operator::clock;
use operator::runtime::{NodeAction, NodeStatus, RuntimeError};
use operator::subjects;

use super::Context;
use super::output::{self, opt};
use super::output::{say, say_part};

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The subject to run (see `operator up --help`); by default `monitor.subject` of the
    /// config.
    pub subject: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:
  OPERATOR_INSTANCE=3 docker compose -f compose/ratelimiter.yml up -d
  operator --instance 3 adopt
  operator --instance 3 monitor

`down` then lets go of the cluster without removing it; compose stops it.")]
pub struct AdoptArgs {
    /// The owner label the cluster's containers carry (compose/ratelimiter.yml: compose).
    #[arg(long, default_value = "compose")]
    pub owner: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// The subject to stop, as `up` takes it: refused when the instance runs another.
    pub subject: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum NodeVerb {
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Resume,
    /// Re-make the node from empty, the subject's way (an etcd member: re-added to the
    /// cluster on a fresh data dir). Its data is not carried over.
    Reset,
    /// Print the node's log.
    Logs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  operator node kill ratelimiter-2\n  operator node start ratelimiter-2\n  operator node logs redis -n 20 --follow\n  operator node reset etcd-2        # an etcd member removed from its cluster"
)]
pub struct NodeArgs {
    pub verb: NodeVerb,
    /// The node, e.g. redis or ratelimiter-2 (see `operator status`).
    pub node: String,
    /// Lines of log to print.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub lines: usize,
    /// Keep printing the log as it grows.
    #[arg(short, long)]
    pub follow: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn up(ctx: &Context, args: UpArgs) -> Result<()> {
    let name = args
        .subject
        .clone()
        .unwrap_or_else(|| ctx.config.monitor.subject.clone());
    let kind = subjects::registry::kind(&name).map_err(|e| eyre!(e))?;
    let runtime = ctx.runtime()?;
    if !args.json {
        eprintln!(
            "starting {name} instance {}: {}…",
            ctx.instance,
            kind.about()
        );
    }
    let start = Instant::now();
    let report = subjects::launch::up(kind, runtime.as_ref(), &ctx.config).await?;
    if args.json {
        return output::json(&report);
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    print_nodes(&report.nodes);
    say!(
        "\ninstance {} is up in {:.1}s. Watch it with `operator monitor`; stop it with `operator down`.",
        ctx.instance,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

pub async fn adopt(ctx: &Context, args: AdoptArgs) -> Result<()> {
    let runtime = operator::runtime::docker::DockerRuntime::new(
        ctx.state.clone(),
        ctx.instance,
        ctx.config.runtime.docker.clone(),
    );
    let roles = |subject: &str, role: &str| {
        subjects::registry::kind(subject)
            .ok()
            .and_then(|k| k.adopted_role(role))
    };
    let record = operator::runtime::docker::adopt::adopt(&runtime, &args.owner, &roles).await?;
    let nodes = operator::runtime::Runtime::status(&runtime).await?;
    if args.json {
        return output::json(&nodes);
    }
    print_nodes(&nodes);
    say!(
        "\nadopted {} instance {} ({} containers on {}). `operator down` lets go of it; compose stops it.",
        record.subject,
        ctx.instance,
        record.nodes.len(),
        record.network
    );
    Ok(())
}

pub async fn down(ctx: &Context, args: DownArgs) -> Result<()> {
    if let Some(s) = &args.subject {
        ctx.subject_name(Some(s))?;
    }
    match ctx.runtime()?.down().await {
        Ok(report) if args.json => output::json(&report),
        Ok(report) => {
            for note in &report.notes {
                say!("{note}");
            }
            if !report.notes.is_empty() {
                return Ok(());
            }
            if report.stopped.is_empty() {
                say!(
                    "instance {}: no node was running; state removed",
                    ctx.instance
                );
            } else {
                say!(
                    "instance {}: stopped {}; state removed",
                    ctx.instance,
                    report.stopped.join(", ")
                );
            }
            Ok(())
        }
        Err(RuntimeError::NotUp { .. }) => {
            if args.json {
                output::json(&serde_json::json!({ "stopped": [], "removed": [] }))
            } else {
                say!("instance {} is not up; nothing to stop", ctx.instance);
                Ok(())
            }
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn status(ctx: &Context, args: StatusArgs) -> Result<()> {
    let nodes = ctx.runtime()?.status().await?;
    if args.json {
        return output::json(&nodes);
    }
    print_nodes(&nodes);
    Ok(())
}

fn print_nodes(nodes: &[NodeStatus]) {
    let mut t = output::table(&[
        "node", "role", "state", "health", "pid", "address", "up for", "log",
    ]);
    let now = clock::now();
    for n in nodes {
        let health = match n.healthy {
            Some(true) => "healthy",
            Some(false) => "unhealthy",
            None => "-",
        };
        t.add_row(vec![
            n.name.clone(),
            n.role.clone(),
            n.state.as_str().to_string(),
            health.to_string(),
            opt(n.pid),
            n.address.clone(),
            opt(n.started_at.map(|s| clock::age(s, now))),
            n.log.display().to_string(),
        ]);
    }
    say!("{t}");
}

pub async fn node(ctx: &Context, args: NodeArgs) -> Result<()> {
    let runtime = ctx.runtime()?;
    let action = match args.verb {
        NodeVerb::Logs => return logs(ctx, &args).await,
        NodeVerb::Reset => return reset(ctx, &args).await,
        NodeVerb::Start => NodeAction::Start,
        NodeVerb::Stop => NodeAction::Stop,
        NodeVerb::Restart => NodeAction::Restart,
        NodeVerb::Kill => NodeAction::Kill,
        NodeVerb::Pause => NodeAction::Pause,
        NodeVerb::Resume => NodeAction::Resume,
    };
    let status = runtime.act(&args.node, action).await?;
    if args.json {
        return output::json(&status);
    }
    let pid = status.pid.map(|p| format!(", pid {p}")).unwrap_or_default();
    say!(
        "{}: {} ({}{pid})",
        status.name,
        status.state.as_str(),
        match status.healthy {
            Some(true) => "healthy",
            Some(false) => "not healthy",
            None => "no health check",
        }
    );
    Ok(())
}

async fn reset(ctx: &Context, args: &NodeArgs) -> Result<()> {
    let runtime = ctx.runtime()?;
    let subject = ctx.subject_name(None)?;
    let did = operator::subjects::registry::kind(&subject)
        .map_err(|e| eyre!(e))?
        .reset_node(&args.node, runtime.as_ref())
        .await
        .map_err(|e| eyre!(e))?;
    if args.json {
        return output::json(&serde_json::json!({ "node": args.node, "did": did }));
    }
    say!("{did}");
    Ok(())
}

async fn logs(ctx: &Context, args: &NodeArgs) -> Result<()> {
    let runtime = ctx.runtime()?;
    let text = runtime.logs(&args.node, args.lines).await?;
    if !text.is_empty() {
        say!("{text}");
    }
    if !args.follow {
        return Ok(());
    }
    // Follow by size: print what was appended since the last look.
    let log = runtime
        .status()
        .await?
        .into_iter()
        .find(|n| n.name == args.node)
        .map(|n| n.log)
        .ok_or_else(|| eyre!("no node {}", args.node))?;
    let mut offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
        }
        let len = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            offset = 0;
        }
        if len > offset {
            use std::io::{Read, Seek, SeekFrom};
            let mut f = std::fs::File::open(&log)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            say_part!("{}", String::from_utf8_lossy(&buf));
            offset = len;
        }
    }
}
