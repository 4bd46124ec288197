//! `operator tui` (the default) and `operator demo`: the full-screen app.

use std::path::PathBuf;

use clap::Args;
use color_eyre::eyre::{Result, bail, eyre};
use operator::tui::{Launch, services};

use super::Context;
use super::agent::{BackendArg, ModeArg, resolve};

#[derive(Debug, Args, Default)]
#[command(
    after_help = "Keys: 1-4 switch tabs, ? lists every key of the tab you are on, q quits.
The app brings the cluster up if it is down, and runs the monitor, the agent and, on demand,
a load generator. Headless `operator monitor` and `operator agent` on the same DB show up live."
)]
pub struct TuiArgs {
    /// The subject (default: the one running in this instance, else ratelimiter).
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
    /// auto: asks before destructive commands; approve: before any change; observe: reads only.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// A variant file (YAML) for the agent.
    #[arg(long, value_name = "FILE")]
    pub variant: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Space moves to the next step, and at the last one runs the demo again; each step runs in the background and shows what
really happened. Works without an API key (the runbook agent) and with one (Claude)."
)]
pub struct DemoArgs {
    /// The subject to demonstrate (`ratelimiter`, `etcd`, …); by default the one the
    /// instance runs, else `monitor.subject` of the config.
    pub subject: Option<String>,
    #[arg(long)]
    pub model: Option<String>,
    #[arg(long, value_enum)]
    pub backend: Option<BackendArg>,
}

pub async fn run(ctx: &Context, args: TuiArgs, demo: bool) -> Result<()> {
    let subject = ctx.subject_name(args.subject.as_deref())?;
    let runtime = ctx.runtime()?;
    if demo && runtime.topology().is_err() {
        // The demo brings its cluster up: a program or image that is not here is said now,
        // before the app takes the screen, and nothing is started.
        let kind = operator::subjects::registry::kind(&subject).map_err(|e| eyre!(e))?;
        operator::subjects::launch::preflight(kind, runtime.as_ref(), &ctx.config)
            .await
            .map_err(|e| eyre!("the {subject} demo cannot start: {e}"))?;
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!(
            "the TUI needs a terminal; for scripts use `operator monitor`, `operator agent` and `--json`"
        );
    }
    let (agent, variant) = resolve(
        ctx,
        args.model.as_deref(),
        args.backend,
        args.mode,
        args.variant.as_deref(),
    )?;
    let kind = operator::subjects::registry::kind(&subject).map_err(|e| eyre!(e))?;
    let agent_label = match operator::agent::build_model(&agent, kind) {
        Ok(m) if m.backend() == "runbook" => "runbook".to_string(),
        Ok(m) => format!("{} {}", m.backend(), m.model()),
        Err(e) => format!("none ({e})"),
    };
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(e) => {
            // A locked DB, or one from a newer build: say so in the app, not as a crash.
            operator::tui::show_error("The ticket DB cannot be opened", &format!("{e:#}")).await?;
            bail!("{e:#}");
        }
    };
    let launch = Launch {
        ctx: services::Context {
            config: ctx.config.clone(),
            config_path: ctx.config_path.clone(),
            state: ctx.state.clone(),
            db: ctx.db.clone(),
            instance: ctx.instance,
            subject,
            kind,
            runtime,
            store,
            agent,
            variant,
        },
        demo,
        agent_label,
    };
    operator::tui::run(launch).await?;
    Ok(())
}

pub async fn demo(ctx: &Context, args: DemoArgs) -> Result<()> {
    let tui = TuiArgs {
        subject: args.subject,
        model: args.model,
        backend: args.backend,
        mode: Some(ModeArg::Auto),
        ..TuiArgs::default()
    };
    run(ctx, tui, true).await
}
