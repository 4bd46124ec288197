//! `operator agent`: claims tickets and works them, headless, printing what it does.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, ValueEnum};
use color_eyre::eyre::{Result, WrapErr};
use operator::agent::approval::{Approver, Nobody, Terminal};
use operator::agent::audit::{Audit, Entry, Kind};
use operator::agent::executor::{LocalEnv, LocalExecutor};
use operator::agent::llm::ModelEvent;
use operator::agent::policy::{Mode, Policy, Protected};
use operator::agent::redact::Redactor;
use operator::agent::session::{AgentEvent, Deps, Outcome, Settings};
use operator::agent::variant::Variant;
use operator::agent::{Agent, build_model, prompt};
use operator::config::{Backend, Config};
use operator::monitor::Monitor;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::output;
use super::{Context, parse_duration};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
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

pub async fn run(ctx: &Context, args: AgentArgs) -> Result<()> {
    let name = ctx.subject_name(None)?;
    let mut cfg = ctx.config.agent.clone();
    let variant = match &args.variant {
        Some(p) => Some(Variant::load(p)?),
        None => None,
    };
    if let Some(v) = &variant {
        cfg = v.apply(&cfg);
    }
    if let Some(m) = &args.model {
        cfg.model = m.clone();
    }
    if let Some(b) = args.backend {
        cfg.backend = match b {
            BackendArg::Auto => Backend::Auto,
            BackendArg::Anthropic => Backend::Anthropic,
            BackendArg::Openai => Backend::Openai,
            BackendArg::Runbook => Backend::Runbook,
        };
    }
    if let Some(m) = args.mode {
        cfg.mode = match m {
            ModeArg::Auto => Mode::Auto,
            ModeArg::Approve => Mode::Approve,
            ModeArg::Observe => Mode::Observe,
        };
    }
    let model = build_model(&cfg, &name)?;
    let store = ctx.store()?;
    let instance_dir = ctx.state.instance(ctx.instance);
    std::fs::create_dir_all(&instance_dir)
        .wrap_err_with(|| format!("cannot create {}", instance_dir.display()))?;
    let executor = LocalExecutor::new(LocalEnv {
        cwd: &instance_dir,
        state_dir: ctx.state.root(),
        db: &ctx.db,
        instance: ctx.instance,
        config: ctx.config_path.as_deref(),
        output_limit: cfg.budgets.output_bytes,
    });
    let policy = Policy::new(
        &cfg.policy.allow,
        &cfg.policy.deny,
        Protected {
            state_dir: absolute(ctx.state.root()),
            db: absolute(&ctx.db),
            cwd: absolute(&instance_dir),
        },
    );
    let interactive = std::io::stdin().is_terminal();
    let approver: Arc<dyn Approver> = if interactive {
        Arc::new(Terminal::new())
    } else {
        Arc::new(Nobody)
    };
    let config_file = ctx.config_path.clone().or_else(Config::default_path);
    let keep_allowed = Arc::new(move |prefix: &str| match &config_file {
        Some(p) => operator::config::remember_allowed(p, prefix),
        None => Err("no config file to keep it in".into()),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let agent_id = format!("agent-{}", std::process::id());
    let deps = Deps {
        store: store.clone(),
        audit: Audit::new(store.clone(), Redactor::from_env()),
        model: model.clone(),
        executor: Arc::new(executor),
        policy: Arc::new(Mutex::new(policy)),
        approver,
        keep_allowed,
        events: Some(tx),
        guidance: None,
    };
    let settings = Settings {
        agent_id: agent_id.clone(),
        mode: cfg.mode,
        budgets: cfg.budgets.clone(),
        lease: cfg
            .lease
            .unwrap_or(cfg.budgets.wall_clock + Duration::from_secs(60)),
        verify_window: cfg.verify_window,
        tools: cfg.tools.clone(),
        system_prompt: variant
            .as_ref()
            .and_then(|v| v.system_prompt.clone())
            .unwrap_or_else(|| prompt::DEFAULT_SYSTEM.to_string()),
        variant: variant
            .as_ref()
            .map_or("default".into(), |v| v.name.clone()),
        prices: cfg.prices.clone(),
    };
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
    }
    if args.with_monitor {
        let mut monitor = Monitor::new(
            ctx.subject(&name)?,
            store.clone(),
            ctx.config.tickets.flap_window,
        );
        let interval = args.interval.unwrap_or(ctx.config.monitor.interval);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = monitor.cycle().await {
                            tracing::warn!(error = %e, "monitor cycle failed");
                        }
                    }
                }
            }
        });
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
    let mut agent = Agent {
        deps,
        settings,
        subject: ctx.subject(&name)?,
        poll: cfg.poll_interval,
    };
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

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
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
            AgentEvent::Started { session_id, ticket } => println!(
                "\n#{} {} {} — session {session_id}\n  {}",
                ticket.id, ticket.invariant, ticket.entity, ticket.summary
            ),
            AgentEvent::Model {
                event: ModelEvent::Retrying { attempt, reason },
                ..
            } => {
                println!("  … retrying the model (attempt {attempt}): {reason}")
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
                println!(
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
        Kind::Text => println!("  ▸ {}", e.content.trim()),
        Kind::Thinking => println!("  ~ {}", e.content.trim().lines().next().unwrap_or("")),
        Kind::ToolCall => match &e.command {
            Some(c) => println!("  $ {c}   [{}]", e.policy.as_deref().unwrap_or("?")),
            None => {
                let tool = e.tool.as_deref().unwrap_or("?");
                let what = e.content.trim();
                if what.is_empty() || what == tool {
                    println!("  → {tool}");
                } else {
                    println!("  → {tool}: {what}");
                }
            }
        },
        Kind::Approval => match e.decision.as_deref() {
            Some("run") => {}
            Some(d) => println!(
                "    {d} by {}: {}",
                e.actor.as_deref().unwrap_or("?"),
                e.content
            ),
            None => {}
        },
        Kind::ToolResult => {
            let head = e.content.lines().next().unwrap_or("");
            let dur = e.duration_ms.map_or(String::new(), |d| format!(" · {d}ms"));
            println!("    {head}{dur}");
            let rest: String = e.content.lines().skip(1).collect::<Vec<_>>().join("\n");
            if !rest.trim().is_empty() {
                println!("{}", first_lines(&rest, 6));
            }
        }
        Kind::Verify => println!("  ✓ {}", e.content),
        Kind::Guidance => println!("  » guidance: {}", e.content),
        Kind::Error => println!("  ! {}", e.content),
        Kind::Note => println!("  · {}", e.content),
    }
}
