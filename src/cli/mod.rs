//! The `operator` command line: parsing, the shared context every command needs, dispatch.

mod agent;
mod audit;
mod chaos;
mod cluster;
mod docker_api;
mod eval;
mod faultproxy;
mod incidents;
mod load;
mod monitor;
mod output;
mod policy;
mod tickets;
mod tui;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};

use operator::chaos::Chaos;
use operator::config::{Config, RuntimeKind};
use operator::paths::StateDir;
use operator::runtime::Runtime;
use operator::store::Store;
use operator::subjects::{self, Subject};

const EXAMPLES: &str = "\
Examples:
  operator                             the full-screen app (starts the cluster if needed)
  operator demo                        a guided demo, step by step
  operator up                          start Redis and three rate-limiter nodes
  operator --runtime docker up         the same as containers (./scripts/build-images.sh first)
  operator monitor                     watch them; open and resolve tickets
  operator chaos inject node_kill      break one node (in another terminal)
  operator tickets list                see what the monitor found
  operator incidents list              the same, grouped by cause
  operator eval run campaign campaigns/smoke.yaml   score the agent over many faults
  operator down                        stop everything and clean up

Configuration: --config FILE (or OPERATOR_CONFIG); see operator.example.toml.
Logs: <state dir>/logs/operator.log (level: -v, -vv, or OPERATOR_LOG).";

/// Watches a distributed system, opens tickets when its invariants break, and lets an agent
/// repair it under a person's eye.
#[derive(Debug, Parser)]
#[command(name = "operator", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Config file (TOML). Default: ~/.config/operator/config.toml when it exists.
    #[arg(
        long,
        global = true,
        env = "OPERATOR_CONFIG",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Where pids, node logs and the DB live. Default: ~/.local/state/operator.
    #[arg(
        long,
        global = true,
        env = "OPERATOR_STATE_DIR",
        hide_env_values = true,
        value_name = "DIR"
    )]
    pub state_dir: Option<PathBuf>,
    /// The ticket DB. Default: <state dir>/operator.db.
    #[arg(
        long,
        global = true,
        env = "OPERATOR_DB",
        hide_env_values = true,
        value_name = "FILE"
    )]
    pub db: Option<PathBuf>,
    /// Which copy of the cluster: each instance has its own ports and state.
    #[arg(long, global = true, env = "OPERATOR_INSTANCE", default_value_t = 0)]
    pub instance: u32,
    /// Where the cluster runs: local (processes) or docker (containers). An instance that is
    /// up keeps the runtime it was started on. Default: runtime.kind in the config (local).
    #[arg(long, global = true, env = "OPERATOR_RUNTIME", value_name = "RUNTIME", value_parser = parse_runtime)]
    pub runtime: Option<RuntimeKind>,
    /// More detail in the log file (-v debug, -vv trace) and full error reports.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a subject cluster and wait until every node is healthy.
    Up(cluster::UpArgs),
    /// Stop the cluster and remove everything `up` made.
    Down(cluster::DownArgs),
    /// Take over a cluster started with the operator's labels by docker compose.
    Adopt(cluster::AdoptArgs),
    /// Show each node of the cluster.
    Status(cluster::StatusArgs),
    /// Act on one node: start, stop, restart, kill, pause, resume, logs.
    Node(cluster::NodeArgs),
    /// Observe the cluster on an interval; open and resolve tickets.
    Monitor(monitor::MonitorArgs),
    /// List, show, resolve and hold tickets.
    #[command(subcommand)]
    Tickets(tickets::TicketsCommand),
    /// List and show incidents: the tickets of one cause, worked together.
    #[command(subcommand)]
    Incidents(incidents::IncidentsCommand),
    /// Inject and heal faults.
    #[command(subcommand)]
    Chaos(chaos::ChaosCommand),
    /// Send /check traffic to the cluster and report what happens.
    Load(load::LoadArgs),
    /// Claim tickets and repair them with a model (Claude, a local model, or the runbook).
    Agent(agent::AgentArgs),
    /// What agents did: sessions, reasoning, commands, decisions.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Evaluation campaigns: inject faults many times, score the agent by the cluster's state.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Ask the agent's command policy what it would say, without running anything.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The full-screen app (the default command): cluster, tickets, agent, chaos.
    Tui(tui::TuiArgs),
    /// A guided demo in the app: healthy cluster, load, a fault, detection, AI repair, proof.
    Demo(tui::DemoArgs),
    /// The fault-injecting TCP proxy that `up` starts in the data path (not run by hand).
    Faultproxy(faultproxy::FaultProxyArgs),
    /// The filtering Docker API proxy: the agent's only way to Docker on the Docker runtime.
    DockerApi(docker_api::DockerApiArgs),
}

impl Cli {
    /// Commands that are one loop waiting on the network, best on a single thread.
    pub fn single_threaded(&self) -> bool {
        matches!(
            self.command,
            Some(Command::Monitor(_) | Command::Faultproxy(_) | Command::DockerApi(_))
        )
    }
}

/// Ends the command with this status and no message: the command already said what it had
/// to (`policy check` answering "no").
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

fn parse_runtime(s: &str) -> Result<RuntimeKind, String> {
    RuntimeKind::parse(s).ok_or_else(|| format!("unknown runtime `{s}`; use local or docker"))
}

/// Parses a duration such as `1s`, `250ms`, `5m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try e.g. 500ms, 2s, 5m)"))
}

/// What every command needs, resolved once from flags, environment and config.
pub struct Context {
    pub config: Config,
    /// The config file named by `--config` / `OPERATOR_CONFIG`, for child processes.
    pub config_path: Option<PathBuf>,
    pub state: StateDir,
    pub db: PathBuf,
    pub instance: u32,
    /// The runtime asked for on the command line or in the environment.
    pub wanted_runtime: Option<RuntimeKind>,
}

impl Context {
    pub fn new(global: &Global) -> Result<Self> {
        let mut config = Config::load(global.config.as_deref())?;
        // What only the subjects, the agent and chaos know is checked here, at the top.
        subjects::registry::check_config(&config)?;
        operator::agent::tools::check_config(&config)?;
        if config.monitor.subject.is_empty() {
            config.monitor.subject = subjects::registry::names()[0].to_string();
        }
        let state = StateDir::new(
            global
                .state_dir
                .clone()
                .or_else(|| config.state_dir.clone())
                .unwrap_or_else(StateDir::default_root),
        );
        let db = global
            .db
            .clone()
            .or_else(|| config.db.clone())
            .unwrap_or_else(|| state.default_db());
        Ok(Self {
            config,
            config_path: global.config.clone(),
            state,
            db,
            instance: global.instance,
            wanted_runtime: global.runtime,
        })
    }

    /// The instance's runtime: the one it runs on, else `--runtime`, else the config's.
    pub fn runtime(&self) -> Result<Arc<dyn Runtime>> {
        Ok(operator::runtime::open::open(
            &self.state,
            self.instance,
            &self.config.runtime,
            self.wanted_runtime,
        )?)
    }

    pub async fn store(&self) -> Result<Store> {
        Ok(Store::open(&self.db).await?)
    }

    /// The subject recorded for this instance, else `wanted`, else the configured default.
    pub fn subject_name(&self, wanted: Option<&str>) -> Result<String> {
        if let Some(w) = wanted.filter(|w| !subjects::registry::is_known(w)) {
            return Err(eyre!(subjects::registry::unknown_subject(w)));
        }
        let recorded = self.runtime()?.topology().ok().map(|t| t.subject);
        let name = match (wanted, recorded) {
            (Some(w), Some(r)) if w != r => {
                return Err(eyre!(
                    "instance {} runs `{r}`, not `{w}`; use `--instance N` for another cluster",
                    self.instance
                ));
            }
            (Some(w), _) => w.to_string(),
            (None, Some(r)) => r,
            (None, None) => self.config.monitor.subject.clone(),
        };
        if !subjects::registry::is_known(&name) {
            return Err(eyre!(subjects::registry::unknown_subject(&name)));
        }
        Ok(name)
    }

    pub fn subject(&self, name: &str) -> Result<Box<dyn Subject>> {
        subjects::registry::build(name, self.runtime()?, &self.config).map_err(|e| eyre!(e))
    }

    /// Chaos on the instance, which runs `subject`.
    pub async fn chaos(&self, subject: &str, actor: &str) -> Result<Chaos> {
        let kind = subjects::registry::kind(subject).map_err(|e| eyre!(e))?;
        Ok(Chaos::new(
            self.store().await?,
            self.runtime()?,
            kind.faults(),
            self.config.chaos.durations.clone(),
            actor,
        ))
    }
}

pub async fn run(cli: Cli) -> Result<()> {
    // The proxy runs as a node: it logs to stderr (its node log), not into a state dir.
    if let Some(Command::Faultproxy(a)) = cli.command {
        operator::logging::init_stderr("info");
        return faultproxy::run(a).await;
    }
    let ctx = Context::new(&cli.global)?;
    let _log = operator::logging::init(
        &ctx.state.logs(),
        match cli.global.verbose {
            0 => "info",
            1 => "debug",
            _ => "trace",
        },
    )
    .wrap_err_with(|| format!("cannot write logs under {}", ctx.state.logs().display()))?;
    if !matches!(
        cli.command,
        Some(Command::Policy(_) | Command::DockerApi(_) | Command::Faultproxy(_))
    ) {
        sweep_abandoned_slots(&ctx).await;
    }
    let Some(command) = cli.command else {
        return tui::run(&ctx, tui::TuiArgs::default(), false).await;
    };
    match command {
        Command::Up(a) => cluster::up(&ctx, a).await,
        Command::Down(a) => cluster::down(&ctx, a).await,
        Command::Adopt(a) => cluster::adopt(&ctx, a).await,
        Command::Status(a) => cluster::status(&ctx, a).await,
        Command::Node(a) => cluster::node(&ctx, a).await,
        Command::Monitor(a) => monitor::run(&ctx, a).await,
        Command::Tickets(c) => tickets::run(&ctx, c).await,
        Command::Incidents(c) => incidents::run(&ctx, c).await,
        Command::Chaos(c) => chaos::run(&ctx, c).await,
        Command::Load(a) => load::run(&ctx, a).await,
        Command::Agent(a) => agent::run(&ctx, a).await,
        Command::Audit(c) => audit::run(&ctx, c).await,
        Command::Eval(c) => eval::run(&ctx, c).await,
        Command::Policy(c) => policy::run(&ctx, c).await,
        Command::Tui(a) => tui::run(&ctx, a, false).await,
        Command::Demo(a) => tui::demo(&ctx, a).await,
        Command::Faultproxy(a) => faultproxy::run(a).await,
        Command::DockerApi(a) => docker_api::run(&ctx, a).await,
    }
}

/// Tears down the trial slots of an evaluation harness that is gone (killed, crashed): heals
/// their faults whatever their duration, closes their tickets, stops their nodes. Says what
/// it did; a DB that cannot be opened is the command's own error to report.
async fn sweep_abandoned_slots(ctx: &Context) {
    let Ok(store) = ctx.store().await else {
        return;
    };
    match operator::eval::slot::sweep(&store, &ctx.state, &ctx.config).await {
        Ok(swept) => {
            for (slot, notes) in &swept.slots {
                eprintln!(
                    "note: tore down trial slot {} (instance {}) of a harness that is gone (pid {}){}",
                    slot.slot,
                    slot.instance,
                    slot.pid,
                    if notes.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", notes.join("; "))
                    }
                );
            }
            for id in &swept.campaigns {
                eprintln!(
                    "note: campaign #{id} was interrupted (its harness is gone); `operator eval run campaign FILE --resume {id}` finishes it"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not sweep abandoned trial slots"),
    }
}
