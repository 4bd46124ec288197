//! `operator chaos`: faults by hand.

use std::time::Duration;

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};
use operator::chaos::{Fault, FaultKind, FaultRecord, Healed};
use operator::clock;
use operator::runtime::impair::PartitionMode;

use super::output::say;
use super::output::{self, opt};
use super::{Context, parse_duration};

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// The fault catalogue and the faults in effect.
    List(ListArgs),
    /// Apply a fault to a node.
    Inject(InjectArgs),
    /// Undo a fault (or all of them).
    Heal(HealArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Also faults already healed.
    #[arg(long)]
    pub all: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  operator chaos inject node_kill --target ratelimiter-2
  operator chaos inject pause --duration 30s
  operator chaos inject node_kill --duration 0          (never heals itself)
  operator chaos inject latency --delay 300ms --jitter 100ms
  operator chaos inject network_partition --mode refuse --target ratelimiter-1
  operator chaos inject bandwidth --rate 4096
  operator chaos inject disk_pressure --percent 95      (Docker runtime; fills a node's data volume)

`operator chaos list` says how each fault is applied on this runtime, or why it cannot be.")]
pub struct InjectArgs {
    /// The fault: node_kill, pause, latency, network_partition, bandwidth or disk_pressure.
    #[arg(value_parser = parse_fault)]
    pub fault: FaultKind,
    /// The node (default: the subject's choice, e.g. the rate limiter's Redis for
    /// disk_pressure; else a random running node of the subject).
    #[arg(long)]
    pub target: Option<String>,
    /// Heal by itself after this long; 0 for never. Default: chaos.durations in the config
    /// (1m for pause and the network faults, 2m for disk_pressure; node_kill never).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// latency: the delay added to what the node sends [default: 150ms].
    #[arg(long, value_parser = parse_duration)]
    pub delay: Option<Duration>,
    /// latency: up to this much more or less, at random [default: 50ms].
    #[arg(long, value_parser = parse_duration)]
    pub jitter: Option<Duration>,
    /// network_partition: `blackhole` (nothing gets through, nothing is said) or `refuse`
    /// (connections refused at once) [default: blackhole].
    #[arg(long, value_parser = parse_mode)]
    pub mode: Option<PartitionMode>,
    /// bandwidth: bytes per second each way [default: 16384].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: Option<u64>,
    /// disk_pressure: fill the data volume up to this percentage [default: 90].
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub percent: Option<u8>,
    #[arg(long)]
    pub json: bool,
}

impl InjectArgs {
    /// The fault with the flags applied; a flag that does not belong to it is an error.
    fn fault(&self) -> Result<Fault> {
        let given = [
            ("--delay", self.delay.is_some(), FaultKind::Latency),
            ("--jitter", self.jitter.is_some(), FaultKind::Latency),
            ("--mode", self.mode.is_some(), FaultKind::NetworkPartition),
            ("--rate", self.rate.is_some(), FaultKind::Bandwidth),
            ("--percent", self.percent.is_some(), FaultKind::DiskPressure),
        ];
        for (flag, set, kind) in given {
            if set && kind != self.fault {
                return Err(eyre!("{flag} applies to {kind}, not to {}", self.fault));
            }
        }
        // The flags are the catalogue's parameters under other names.
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let mut params = serde_json::Map::new();
        let mut set = |name: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                params.insert(name.into(), v);
            }
        };
        set("delay_ms", self.delay.map(|d| ms(d).into()));
        set("jitter_ms", self.jitter.map(|d| ms(d).into()));
        set("mode", self.mode.map(|m| m.as_str().into()));
        set("bytes_per_sec", self.rate.map(Into::into));
        set("percent", self.percent.map(Into::into));
        Ok(Fault::with_params(self.fault, &params)?)
    }
}

fn parse_mode(s: &str) -> Result<PartitionMode, String> {
    PartitionMode::parse(s).ok_or_else(|| format!("unknown mode `{s}`; use blackhole or refuse"))
}

#[derive(Debug, Args)]
pub struct HealArgs {
    /// The fault's id (see `operator chaos list`).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub id: Option<i64>,
    /// Every fault in effect on this instance.
    #[arg(long)]
    pub all: bool,
    /// Wait until the fault expires, then heal it (used by `inject` for self-healing).
    #[arg(long, hide = true, requires = "id")]
    pub at_expiry: bool,
    #[arg(long)]
    pub json: bool,
}

/// A generic fault or any subject's own; `inject` then refuses one of another subject than
/// the instance's.
fn parse_fault(s: &str) -> Result<FaultKind, String> {
    let subjects = operator::subjects::registry::every_subjects_faults();
    subjects
        .iter()
        .find_map(|k| FaultKind::parse_for(s, *k))
        .ok_or_else(|| {
            format!(
                "unknown fault `{s}`; known faults: {}",
                FaultKind::names_for(&subjects).join(", ")
            )
        })
}

pub async fn run(ctx: &Context, cmd: ChaosCommand) -> Result<()> {
    let subject = ctx.subject_name(None)?;
    let kind = operator::subjects::registry::kind(&subject).map_err(|e| eyre!(e))?;
    let chaos = ctx.chaos(&subject, "cli").await?;
    if !matches!(
        cmd,
        ChaosCommand::Heal(HealArgs {
            at_expiry: true,
            ..
        })
    ) {
        for h in chaos.sweep().await? {
            eprintln!(
                "note: healed fault #{} on the way: {}",
                h.fault.id, h.fault.note
            );
        }
    }
    match cmd {
        ChaosCommand::List(a) => {
            let faults = chaos.faults(a.all).await?;
            let mut catalogue = Vec::new();
            for k in FaultKind::catalogue(kind.faults()) {
                let how = chaos.mechanism(k).await;
                catalogue.push(serde_json::json!({
                    "fault": k.as_str(),
                    "description": k.description(),
                    "default_duration": chaos.default_duration(k).map(|d| humantime::format_duration(d).to_string()),
                    "targets": operator::chaos::default_target(kind.faults(), k).unwrap_or("any node"),
                    "available": how.is_ok(),
                    "how": how.as_ref().unwrap_or_else(|e| e),
                }));
            }
            if a.json {
                return output::json(
                    &serde_json::json!({ "catalogue": catalogue, "faults": faults }),
                );
            }
            let mut t =
                output::table(&["fault", "heals itself after", "what it does", "how, here"]);
            for c in &catalogue {
                let how = c["how"].as_str().unwrap_or_default();
                t.add_row(vec![
                    c["fault"].as_str().unwrap_or_default().to_string(),
                    c["default_duration"]
                        .as_str()
                        .unwrap_or("never")
                        .to_string(),
                    c["description"].as_str().unwrap_or_default().to_string(),
                    if c["available"].as_bool() == Some(true) {
                        how.to_string()
                    } else {
                        format!("unavailable: {how}")
                    },
                ]);
            }
            say!("{t}\n");
            print_faults(&faults, a.all);
            Ok(())
        }
        ChaosCommand::Inject(a) => {
            let f = chaos
                .inject(a.fault()?, a.target.as_deref(), a.duration)
                .await?;
            if f.expires_at.is_some() {
                spawn_expiry_healer(ctx, f.id)?;
            }
            if a.json {
                return output::json(&f);
            }
            let until = match f.expires_at {
                Some(e) => format!("heals itself at {}", clock::format(e)),
                None => format!("until `operator chaos heal {}`", f.id),
            };
            say!(
                "fault #{}: {} on {} ({until}): {}",
                f.id,
                f.fault,
                f.target,
                f.note
            );
            Ok(())
        }
        ChaosCommand::Heal(a) => {
            let healed: Vec<Healed> = match (a.id, a.all, a.at_expiry) {
                (Some(id), _, true) => chaos.heal_at_expiry(id).await?.into_iter().collect(),
                (Some(id), _, false) => vec![chaos.heal(id).await?],
                (None, true, _) => chaos.heal_all().await?,
                (None, false, _) => return Err(eyre!("name a fault id, or --all")),
            };
            if a.json {
                return output::json(&healed);
            }
            if healed.is_empty() && !a.at_expiry {
                say!("no fault in effect on instance {}", ctx.instance);
            }
            for h in &healed {
                let what = if h.acted {
                    "healed"
                } else {
                    "was already healed"
                };
                say!(
                    "fault #{} ({} on {}) {what}: {}",
                    h.fault.id,
                    h.fault.fault,
                    h.fault.target,
                    h.fault.note
                );
            }
            Ok(())
        }
    }
}

fn print_faults(faults: &[FaultRecord], all: bool) {
    if faults.is_empty() {
        say!("no fault in effect");
        return;
    }
    say!("{}", if all { "faults:" } else { "in effect:" });
    let now = clock::now();
    let mut t = output::table(&[
        "id",
        "fault",
        "target",
        "status",
        "injected",
        "time left",
        "note",
    ]);
    for f in faults {
        let left = f.expires_at.filter(|_| f.status.is_live()).map(|e| {
            humantime::format_duration(Duration::from_secs((e - now).num_seconds().max(0) as u64))
                .to_string()
        });
        t.add_row(vec![
            f.id.to_string(),
            f.fault.to_string(),
            f.target.clone(),
            f.status.as_str().to_string(),
            clock::age(f.injected_at, now) + " ago",
            opt(left),
            f.note.clone(),
        ]);
    }
    say!("{t}");
}

/// A detached `operator chaos heal ID --at-expiry`, so the fault heals on time even after
/// this command has returned.
fn spawn_expiry_healer(ctx: &Context, id: i64) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().wrap_err("cannot find the operator binary")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.state.logs().join("chaos-healer.log"))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--state-dir")
        .arg(ctx.state.root())
        .arg("--db")
        .arg(&ctx.db)
        .arg("--instance")
        .arg(ctx.instance.to_string());
    if let Some(c) = &ctx.config_path {
        cmd.arg("--config").arg(c);
    }
    cmd.args(["chaos", "heal", &id.to_string(), "--at-expiry"])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn().wrap_err("cannot start the expiry healer")?;
    // Reap it if we are still around when it finishes.
    std::thread::spawn(move || child.wait());
    Ok(())
}
