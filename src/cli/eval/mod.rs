//! `operator eval`: campaigns of trials — run them, list them, analyse, compare, show a
//! trial's timeline, export.

mod report;
mod run;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use color_eyre::eyre::Result;

use super::Context;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Run a campaign file, or trials of one fault given by flags.
    Run(RunArgs),
    /// Campaigns in the DB, running ones first.
    List(ListArgs),
    /// Scores of a campaign, per (subject, fault, variant): win rate with its interval,
    /// times with unresolved trials censored, commands, cost.
    Analyze(IdArgs),
    /// Two campaigns side by side, slice by slice, with p-values.
    Compare(CompareArgs),
    /// A campaign's agent trials against baseline trials (no agent): its own, or another
    /// campaign's.
    CompareBaseline(CompareBaselineArgs),
    /// Every variant that met one subject's fault, across campaigns, pair by pair.
    CompareVariants(CompareVariantsArgs),
    /// One trial's timeline: steps, tickets, and what the agent did.
    Show(ShowArgs),
    /// A campaign's trials, one per line (JSON) or row (CSV).
    Export(ExportArgs),
    /// Ask a running campaign to stop (its harness heals and tears down), from any process.
    Stop(StopArgs),
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  operator eval run campaign campaigns/smoke.yaml
  operator eval run campaign campaigns/ratelimiter.yaml --resume 3
  operator eval run --subject ratelimiter --chaos node_kill --trials 5
  operator eval run --subject ratelimiter --chaos latency --param delay_ms=300 --variant campaigns/variants/observe.yaml
  operator eval run --subject ratelimiter --chaos node_kill --trials 3 --baseline

Trials run on instances 100 and up (a slot each), never on the cluster you use. Ctrl-C stops
the trials, heals their faults and tears the slots down; --resume runs what did not finish."
)]
pub struct RunArgs {
    #[command(subcommand)]
    pub campaign: Option<RunCampaign>,
    /// The subject (with --chaos).
    #[arg(long, requires = "chaos")]
    pub subject: Option<String>,
    /// The fault to inject in each trial.
    #[arg(long, requires = "subject")]
    pub chaos: Option<String>,
    /// A fault parameter, e.g. delay_ms=300 (repeatable).
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    #[arg(long, default_value_t = 1)]
    pub trials: u32,
    /// The agent: a variant file (YAML); default: the agent `operator agent` runs.
    #[arg(long, value_name = "FILE")]
    pub variant: Option<PathBuf>,
    /// These trials run with no agent: does the subject heal by itself?
    #[arg(long)]
    pub baseline: bool,
    /// Trials at once, each on its own slot.
    #[arg(long, default_value_t = 1)]
    pub parallel: u32,
    /// The seed the targets and parameters are drawn from.
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub common: RunCommon,
}

#[derive(Debug, Args, Clone)]
pub struct RunCommon {
    /// One JSON line per finished trial, then the campaign's scores.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunCampaign {
    /// A campaign file (see campaigns/README.md).
    Campaign {
        file: PathBuf,
        /// Rerun what did not finish in campaign ID (interrupted or invalid trials).
        #[arg(long, value_name = "ID")]
        resume: Option<i64>,
    },
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IdArgs {
    /// The campaign's id (see `operator eval list`).
    pub id: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    pub a: i64,
    pub b: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareBaselineArgs {
    pub id: i64,
    /// The campaign whose baseline trials to compare with (default: ID's own).
    #[arg(long, value_name = "BID")]
    pub baseline: Option<i64>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CompareVariantsArgs {
    pub subject: String,
    pub chaos: String,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The trial's id (see `operator eval analyze` or `export`).
    pub trial: i64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    pub id: i64,
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    pub id: i64,
}

pub async fn run(ctx: &Context, cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Run(a) => run::run(ctx, a).await,
        EvalCommand::List(a) => report::list(ctx, a).await,
        EvalCommand::Analyze(a) => report::analyze(ctx, a).await,
        EvalCommand::Compare(a) => report::compare(ctx, a).await,
        EvalCommand::CompareBaseline(a) => report::compare_baseline(ctx, a).await,
        EvalCommand::CompareVariants(a) => report::compare_variants(ctx, a).await,
        EvalCommand::Show(a) => report::show(ctx, a).await,
        EvalCommand::Export(a) => report::export(ctx, a).await,
        EvalCommand::Stop(a) => report::stop(ctx, a).await,
    }
}
