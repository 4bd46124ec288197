//! `operator agent`: claims tickets and works them, headless, printing what it does.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use color_eyre::eyre::Result;
use operator::agent::approval::{Approver, Nobody, Terminal};
use operator::agent::audit::{Entry, Kind};
use operator::agent::llm::ModelEvent;
use operator::agent::local::LocalAgent;
use operator::agent::session::{AgentEvent, Outcome};
use operator::agent::variant::Variant;
use operator::config::{AgentConfig, Backend};
use operator::monitor::Monitor;
use operator::policy::Mode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::output;
use super::output::say;
use super::{Context, parse_duration};

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum ModeArg {
    #[default]
    Auto,
    Approve,
    Observe,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BackendArg {
    Auto,
    Anthropic,
    Openai,
    Runbook,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  operator agent                          runbook agent (no API key needed), mode auto
  ANTHROPIC_API_KEY=… operator agent      Claude
  operator agent --mode approve           ask on this terminal before any change
  operator agent --once --with-monitor    one ticket, with a monitor in this process
  operator agent --variant campaigns/terse.yaml")]
pub struct AgentArgs {
    /// The model (e.g. claude-sonnet-5, or a local model name for --backend openai).
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// auto: asks before destructive commands; approve: before any change; observe: reads only.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Work one ticket (waiting for one to open), then exit.
    #[arg(long)]
    pub once: bool,
    /// Also run the monitor in this process (otherwise run `operator monitor` beside it).
    #[arg(long)]
    pub with_monitor: bool,
    /// Monitor interval when --with-monitor.
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// A variant file (YAML): model, system prompt, tools, mode, budgets.
    #[arg(long, value_name = "FILE")]
    pub variant: Option<PathBuf>,
    /// One JSON event per line instead of the readable log.
    #[arg(long)]
    pub json: bool,
}

/// The agent's configuration: the config file's, then the variant's, then the flags.
pub fn resolve(
    ctx: &Context,
    model: Option<&str>,
    backend: Option<BackendArg>,
    mode: Option<ModeArg>,
    variant: Option<&std::path::Path>,
) -> Result<(AgentConfig, Option<Variant>)> {
    let mut cfg = ctx.config.agent.clone();
    let variant = variant.map(Variant::load).transpose()?;
    if let Some(v) = &variant {
        cfg = v.apply(&cfg);
    }
    if let Some(m) = model {
        cfg.model = m.to_string();
    }
    if let Some(b) = backend {
        cfg.backend = match b {
            BackendArg::Auto => Backend::Auto,
            BackendArg::Anthropic => Backend::Anthropic,
            BackendArg::Openai => Backend::Openai,
            BackendArg::Runbook => Backend::Runbook,
        };
    }
    if let Some(m) = mode {
        cfg.mode = match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Approve => Mode::Approve,
            ModeArg::Observe => Mode::Observe,
        };
    }
    Ok((cfg, variant))
}

pub async fn run(ctx: &Context, args: AgentArgs) -> Result<()> {
    let name = ctx.subject_name(None)?;
    let (cfg, variant) = resolve(
        ctx,
        args.model.as_deref(),
        args.backend,
        args.mode,
        args.variant.as_deref(),
    )?;
    let interactive = std::io::stdin().is_terminal();
    let approver: Arc<dyn Approver> = if interactive {
        Arc::new(Terminal::new())
    } else {
        Arc::new(Nobody)
    };
    let store = ctx.store().await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let mut agent = LocalAgent {
        config: &cfg,
        variant: variant.as_ref(),
        subject: ctx.subject(&name)?,
        runtime: ctx.runtime()?,
        store: store.clone(),
        state: &ctx.state,
        db: &ctx.db,
        instance: ctx.instance,
        config_path: ctx.config_path.clone(),
        approver,
        events: Some(tx),
        guidance: None,
    }
    .build()?;
    if let Some(why) = agent.deps.executor.unsandboxed() {
        eprintln!("warning: the agent's commands run UNSANDBOXED: {why}");
    }
    let agent_id = agent.settings.agent_id.clone();
    let model = agent.deps.model.clone();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        // SIGTERM or Ctrl-C: the session in flight lets go of its ticket, and the agent ends.
        tokio::spawn(async move {
            operator::shutdown::signal().await;
            stop.cancel();
        });
    }
    if args.with_monitor {
        let monitor = Monitor::new(ctx.subject(&name)?, store.clone(), &ctx.config.tickets)
            .with_events(ctx.runtime()?.events());
        let interval = args.interval.unwrap_or(ctx.config.monitor.interval);
        tokio::spawn(monitor.run(interval, stop.clone(), |_| {}));
    }
    if !args.json {
        eprintln!(
            "agent {agent_id}: {} {} · mode {} · {name} instance {}{}; Ctrl-C stops",
            model.backend(),
            model.model(),
            cfg.mode.as_str(),
            ctx.instance,
            if interactive {
                ""
            } else {
                " · no terminal: nobody can approve"
            },
        );
    }
    let printer = tokio::spawn(print_events(rx, args.json));
    let outcomes = agent.run(stop.clone(), args.once).await;
    stop.cancel();
    drop(agent);
    let _ = printer.await;
    if args.once && outcomes.is_empty() && !args.json {
        eprintln!("stopped before any ticket was worked");
    }
    let failed = outcomes
        .iter()
        .any(|(_, o)| matches!(o, Outcome::GaveBack(_) | Outcome::Interrupted(_)));
    if args.once && failed {
        color_eyre::eyre::bail!(
            "the session did not finish: {}",
            outcomes[0].1.reason().unwrap_or("?")
        );
    }
    Ok(())
}

/// The readable log (or JSON lines) of what the agent does.
async fn print_events(mut rx: mpsc::UnboundedReceiver<AgentEvent>, json: bool) {
    while let Some(ev) = rx.recv().await {
        if json {
            if !matches!(
                ev,
                AgentEvent::Model {
                    event: ModelEvent::TextDelta { .. } | ModelEvent::ThinkingDelta { .. },
                    ..
                }
            ) {
                let _ = output::json_line(&ev);
            }
            continue;
        }
        match ev {
            AgentEvent::Started {
                session_id,
                ticket,
                incident_id,
                tickets,
            } => {
                let more = operator::agent::session::more_tickets(tickets);
                say!(
                    "\nincident #{incident_id}: #{} {} {}{more} — session {session_id}\n  {}",
                    ticket.id,
                    ticket.invariant,
                    ticket.entity,
                    ticket.summary
                )
            }
            AgentEvent::Model {
                event: ModelEvent::Retrying { attempt, reason },
                ..
            } => {
                say!("  … retrying the model (attempt {attempt}): {reason}")
            }
            AgentEvent::Model { .. } => {}
            AgentEvent::Step { entry, .. } => print_entry(&entry),
            AgentEvent::Ended {
                outcome,
                usage,
                cost_usd,
                ..
            } => {
                let cost = cost_usd.map_or(String::new(), |c| format!(" · ${c:.4}"));
                let why = outcome.reason().map_or(String::new(), |r| format!(": {r}"));
                say!(
                    "  = {}{why} · {} tokens{cost}",
                    outcome.label(),
                    usage.input_tokens + usage.output_tokens
                );
            }
        }
    }
}

pub fn print_entry(e: &Entry) {
    let first_lines = |s: &str, n: usize| {
        let lines: Vec<&str> = s.lines().collect();
        let mut out: Vec<String> = lines.iter().take(n).map(|l| format!("      {l}")).collect();
        if lines.len() > n {
            out.push(format!("      … {} more lines", lines.len() - n));
        }
        out.join("\n")
    };
    match e.kind.unwrap_or(Kind::Note) {
        Kind::Text => say!("  ▸ {}", e.content.trim()),
        Kind::Thinking => say!("  ~ {}", e.content.trim().lines().next().unwrap_or("")),
        Kind::ToolCall => match &e.command {
            Some(c) => say!("  $ {c}   [{}]", e.policy.as_deref().unwrap_or("?")),
            None => {
                let tool = e.tool.as_deref().unwrap_or("?");
                let what = e.content.trim();
                if what.is_empty() || what == tool {
                    say!("  → {tool}");
                } else {
                    say!("  → {tool}: {what}");
                }
            }
        },
        Kind::Approval => match e.decision.as_deref() {
            Some("run") => {}
            Some(d) => say!(
                "    {d} by {}: {}",
                e.actor.as_deref().unwrap_or("?"),
                e.content
            ),
            None => {}
        },
        Kind::ToolResult => {
            let head = e.content.lines().next().unwrap_or("");
            let dur = e.duration_ms.map_or(String::new(), |d| format!(" · {d}ms"));
            say!("    {head}{dur}");
            let rest: String = e.content.lines().skip(1).collect::<Vec<_>>().join("\n");
            if !rest.trim().is_empty() {
                say!("{}", first_lines(&rest, 6));
            }
        }
        Kind::Verify => say!("  ✓ {}", e.content),
        Kind::Guidance => say!("  » guidance: {}", e.content),
        Kind::Error => say!("  ! {}", e.content),
        Kind::Note => say!("  · {}", e.content),
    }
}
