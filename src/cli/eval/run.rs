//! `operator eval run`: validate, plan, run on slots, show progress, print the scores.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use operator::eval::harness::{self, Env};
use operator::eval::trial::Progress;
use operator::eval::{Campaign, TrialRow};
use operator::store::eval::CampaignStatus;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::super::output::{self, say};
use super::super::{Context, Exit};
use super::{RunArgs, RunCampaign, report};

/// A campaign built from `eval run` flags, as the YAML a person would have written.
fn from_flags(a: &RunArgs) -> Result<Campaign> {
    let (Some(subject), Some(chaos)) = (&a.subject, &a.chaos) else {
        return Err(eyre!(
            "give a campaign (`operator eval run campaign FILE`) or --subject and --chaos"
        ));
    };
    let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut params = Vec::new();
    for p in &a.params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| eyre!("--param {p}: write it as NAME=VALUE, e.g. delay_ms=300"))?;
        params.push(format!("{}: {}", q(k.trim()), q(v.trim())));
    }
    let mut text = format!(
        "name: {}\nsubjects: [{}]\nchaos_types:\n  - type: {}\n    params: {{{}}}\ntrials_per_combination: {}\nparallel: {}\ninclude_baseline: {}\n",
        q(&format!("{subject} {chaos}")),
        q(subject),
        q(chaos),
        params.join(", "),
        a.trials,
        a.parallel,
        a.baseline
    );
    if let Some(v) = &a.variant {
        let abs = std::path::absolute(v).unwrap_or_else(|_| v.clone());
        text.push_str(&format!("variant: {}\n", q(&abs.display().to_string())));
    }
    if let Some(s) = a.seed {
        text.push_str(&format!("seed: {s}\n"));
    }
    let mut c = Campaign::parse(&text, Path::new("the command line")).map_err(|e| match e {
        // Said in the flags' own words: the YAML is ours, not the person's.
        operator::eval::campaign::CampaignError::Invalid { key, message, .. } => {
            let flag = match key.as_str() {
                k if k.contains(".params.") => {
                    format!("--param {}", k.rsplit('.').next().unwrap_or(k))
                }
                k if k.starts_with("chaos_types") => "--chaos".into(),
                "subjects" => "--subject".into(),
                "trials_per_combination" => "--trials".into(),
                "variant" | "variants" => "--variant".into(),
                other => format!("--{other}"),
            };
            eyre!("{flag}: {message}")
        }
        other => other.into(),
    })?;
    c.file = None;
    c.include_agents = !a.baseline;
    Ok(c)
}

pub async fn run(ctx: &Context, a: RunArgs) -> Result<()> {
    let json = a.common.json;
    let store = ctx.store().await?;
    let env = Env {
        store: store.clone(),
        state: ctx.state.clone(),
        db: ctx.db.clone(),
        config: ctx.config.clone(),
        config_path: ctx.config_path.clone(),
    };
    let (campaign, id) = match &a.campaign {
        Some(RunCampaign::Campaign {
            file,
            resume: Some(id),
        }) => {
            let id = *id;
            let row = store
                .call(move |db| db.campaign(id))
                .await?
                .ok_or_else(|| eyre!("no campaign #{id}; see `operator eval list`"))?;
            if row.status == CampaignStatus::Running {
                return Err(eyre!(
                    "campaign #{id} is running (pid {}); stop it first with `operator eval stop {id}`",
                    row.pid.unwrap_or_default()
                ));
            }
            let campaign: Campaign = serde_json::from_value(row.spec)
                .wrap_err_with(|| format!("campaign #{id}'s stored plan is unreadable"))?;
            if let Ok(text) = std::fs::read_to_string(file) {
                if text != campaign.text {
                    eprintln!(
                        "note: {} changed since campaign #{id} started; resuming the plan it started with",
                        file.display()
                    );
                }
            }
            harness::validate(&campaign, &env).await?;
            let pid = std::process::id();
            let left = store.call(move |db| db.resume_campaign(id, pid)).await?;
            if !json {
                eprintln!(
                    "resuming campaign #{id} {}: {left} trials to run",
                    campaign.name
                );
            }
            (campaign, id)
        }
        other => {
            let campaign = match other {
                Some(RunCampaign::Campaign { file, .. }) => Campaign::load(file)?,
                None => from_flags(&a)?,
            };
            let models = harness::validate(&campaign, &env).await?;
            let runtime = campaign.runtime.unwrap_or(ctx.config.runtime.kind);
            let provenance = harness::provenance(&campaign, models, runtime.as_str());
            let id = harness::create(&env, &campaign, provenance).await?;
            if !json {
                eprintln!(
                    "campaign #{id} {}: {} trials, {} at once, seed {}, {} runtime; Ctrl-C stops",
                    campaign.name,
                    campaign.plan().len(),
                    campaign.parallel,
                    campaign.seed,
                    runtime.as_str()
                );
            }
            (campaign, id)
        }
    };
    let total = store
        .call(move |db| db.trials(id))
        .await?
        .iter()
        .filter(|t| t.status != operator::store::eval::TrialStatus::Done)
        .count();
    let stop = CancellationToken::new();
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            operator::shutdown::signal().await;
            stop.cancel();
        });
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let shown = tokio::spawn(show_progress(rx, total as u64, json));
    let status = harness::run(env, Arc::new(campaign), id, tx, stop.clone()).await?;
    let _ = shown.await;
    let row = store
        .call(move |db| db.campaign(id))
        .await?
        .ok_or_else(|| eyre!("campaign #{id} vanished from the DB"))?;
    let trials = store.call(move |db| db.trials(id)).await?;
    if json {
        output::json_line(&serde_json::json!({
            "campaign": report::campaign_json(&row),
            "slices": report::slices_of(&row, &trials),
        }))?;
    } else {
        say!();
        report::print_slices(&report::slices_of(&row, &trials));
    }
    match status {
        CampaignStatus::Finished => Ok(()),
        _ => {
            eprintln!(
                "campaign #{id} interrupted: {}",
                if row.note.is_empty() {
                    "stopped"
                } else {
                    &row.note
                }
            );
            Err(Exit(130).into())
        }
    }
}

/// The bar (trials done, running, outcomes so far, elapsed, ETA) and a line per trial.
async fn show_progress(mut rx: mpsc::UnboundedReceiver<Progress>, total: u64, json: bool) {
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} trials · {msg} · ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.enable_steady_tick(Duration::from_millis(500));
        b
    });
    let mut verdicts: BTreeMap<String, u64> = BTreeMap::new();
    let mut running: BTreeMap<u32, String> = BTreeMap::new();
    let line = |text: String| match &bar {
        Some(b) => b.println(text),
        None if !json => eprintln!("{text}"),
        None => {}
    };
    while let Some(p) = rx.recv().await {
        match p {
            Progress::Slot { message, .. } => line(format!("  {message}")),
            Progress::Step { slot, step, .. } => {
                running.insert(slot, step);
            }
            Progress::Finished(t) => {
                if let Some(s) = t.slot {
                    running.remove(&s);
                }
                if let Some(v) = t.verdict {
                    *verdicts.entry(v.as_str().into()).or_default() += 1;
                }
                if json {
                    let _ = output::json_line(&report::trial_json(&t));
                } else {
                    line(finished_line(&t));
                }
                if let Some(b) = &bar {
                    b.inc(1);
                }
            }
        }
        if let Some(b) = &bar {
            let outcomes: Vec<String> = verdicts.iter().map(|(v, n)| format!("{v} {n}")).collect();
            b.set_message(format!(
                "running {}{}",
                running.len(),
                if outcomes.is_empty() {
                    String::new()
                } else {
                    format!(" · {}", outcomes.join(" · "))
                }
            ));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("-".into(), |m| operator::clock::short_ms(m as f64))
}

fn finished_line(t: &TrialRow) -> String {
    let what = match (&t.fault, &t.target) {
        (Some(f), Some(target)) => format!("{f} on {target}"),
        (Some(f), None) => f.clone(),
        (None, _) => "control".into(),
    };
    format!(
        "  trial {} (#{}) {what} · {}{} · {} · detect {} · resolve {} · {} commands{}",
        t.id,
        t.seq,
        t.variant,
        if t.baseline { " (baseline)" } else { "" },
        t.verdict.map_or("?", |v| v.as_str()),
        secs(t.ttd_ms),
        secs(t.ttr_ms),
        t.metrics.commands,
        t.reason
            .as_deref()
            .filter(|r| !r.is_empty())
            .map_or(String::new(), |r| format!(" — {r}"))
    )
}
