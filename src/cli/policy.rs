//! `operator policy check`: what the agent's policy says of commands, without running them —
//! as `kubectl auth can-i` answers for RBAC.

use std::io::BufRead;

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};
use serde::Serialize;

use operator::agent::executor::LocalEnv;
use operator::agent::local;
use operator::policy::{Gate, Mode, gate};
use operator::subjects::registry;

use super::output::{self, say};
use super::{Context, Exit};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Classify commands as the agent's policy would, and say what a mode would do with them.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
}

const CHECK_EXAMPLES: &str = "\
Each argument is one command line, as the agent would send it (quote it). `-` reads one
command per line from stdin. The policy is the one an agent of this instance works under:
the config's agent.policy.allow and deny rules, the operator's own state protected, and the
instance's endpoints (its nodes' addresses; on Docker, the agent's API proxy).

Exit status: 0 when every command would run without a person in the mode, 1 otherwise.

Examples:
  operator policy check 'operator node start ratelimiter-2'
  operator policy check 'docker -H tcp://10.0.0.5:2375 ps' 'redis-cli FLUSHALL'
  operator policy check --mode approve 'curl -s -X POST http://127.0.0.1:8001/api/counters/k/reset'
  operator policy check --json - < commands.txt";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The commands (each one argument), or `-` for one per line on stdin.
    #[arg(required = true, value_name = "COMMAND")]
    pub commands: Vec<String>,
    /// The mode to judge them in: auto, approve or observe.
    #[arg(long, default_value = "auto", value_parser = parse_mode)]
    pub mode: Mode,
    #[arg(long)]
    pub json: bool,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    Mode::parse(s).ok_or_else(|| format!("unknown mode `{s}`; use auto, approve or observe"))
}

#[derive(Debug, Serialize)]
struct Judged {
    command: String,
    class: String,
    reasons: Vec<String>,
    invocations: Vec<Vec<String>>,
    /// Every invocation matches an allow rule.
    allowed_by_rule: bool,
    /// `run`, `ask` (a person decides) or `refuse`.
    decision: &'static str,
    /// What the agent would be told, for `ask` and `refuse`.
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: &'static str,
    instance: u32,
    runtime: &'static str,
    docker_endpoint: Option<String>,
    /// `None` when no instance is up: then no endpoint is the instance's, and every client
    /// command is judged as reaching outside.
    topology: Option<String>,
    all_run: bool,
    commands: Vec<Judged>,
}

pub async fn run(ctx: &Context, c: PolicyCommand) -> Result<()> {
    let PolicyCommand::Check(a) = c;
    let commands = if a.commands == ["-"] {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<_>>>()
            .wrap_err("reading commands from stdin")?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        a.commands
    };
    let runtime = ctx.runtime()?;
    let cfg = &ctx.config.agent;
    let instance_dir = ctx.state.instance(ctx.instance);
    let executor = local::executor(
        cfg,
        runtime.as_ref(),
        LocalEnv {
            cwd: &instance_dir,
            state_dir: ctx.state.root(),
            db: &ctx.db,
            instance: ctx.instance,
            config: ctx.config_path.as_deref(),
            output_limit: cfg.budgets.output_bytes,
        },
        false,
    )?;
    let docker = local::docker_endpoint(runtime.as_ref(), executor.as_ref());
    let rt = runtime.clone();
    let d = docker.clone();
    let endpoints = tokio::task::spawn_blocking(move || local::endpoints(rt.as_ref(), d)).await?;
    // An instance that is up is judged by its subject's words alone (another subject's
    // client is unknown there); with none up, by every subject's.
    let topology = runtime.topology().ok();
    let subjects = match &topology {
        Some(t) => vec![registry::kind(&t.subject).map_err(|e| eyre!(e))?.words()],
        None => registry::every_subjects_words(),
    };
    let policy = local::policy(
        cfg,
        (&ctx.state, &ctx.db, ctx.config_path.as_deref()),
        ctx.instance,
        subjects,
    )
    .with_endpoints(endpoints);
    let judged: Vec<Judged> = commands
        .into_iter()
        .map(|command| {
            let v = policy.classify(&command);
            let (decision, why) = match gate(a.mode, &v) {
                Gate::Run => ("run", None),
                Gate::Ask(w) => ("ask", Some(w)),
                Gate::Refuse(w) => ("refuse", Some(w)),
            };
            Judged {
                command,
                class: v.class.to_string(),
                reasons: v.reasons,
                invocations: v.invocations,
                allowed_by_rule: v.allowed,
                decision,
                why,
            }
        })
        .collect();
    let all_run = judged.iter().all(|j| j.decision == "run");
    let report = Report {
        mode: a.mode.as_str(),
        instance: ctx.instance,
        runtime: runtime.kind(),
        docker_endpoint: docker,
        topology: topology
            .as_ref()
            .map(|t| format!("{} instance {}", t.subject, t.instance)),
        all_run,
        commands: judged,
    };
    if a.json {
        output::json(&report)?;
    } else {
        if report.topology.is_none() {
            say!(
                "note: instance {} is not up, so the policy knows none of its endpoints: every \
                 client command is judged as reaching outside the instance (start it with \
                 `operator up`), and commands are judged by every subject's words\n",
                report.instance
            );
        }
        for (i, j) in report.commands.iter().enumerate() {
            if i > 0 {
                say!();
            }
            say!("{}", j.command);
            say!("  class      {}", j.class);
            say!("  because    {}", j.reasons.join("; "));
            for inv in &j.invocations {
                say!("  runs       {}", inv.join(" "));
            }
            if j.allowed_by_rule {
                say!("  allowed    by an agent.policy.allow rule");
            }
            let what = match j.decision {
                "run" => "runs without asking".to_string(),
                "ask" => "waits for a person's yes or no".to_string(),
                _ => "refused".to_string(),
            };
            say!("  in {:<7} {what}", report.mode);
            if let Some(w) = &j.why {
                say!("             {w}");
            }
        }
    }
    if !all_run {
        return Err(Exit(1).into());
    }
    Ok(())
}
