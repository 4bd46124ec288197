//! What `eval list`, `analyze`, `compare*`, `show` and `export` print.

use color_eyre::eyre::{Result, eyre};
use operator::clock;
use operator::eval::analyze::{self, Compared, Side, Slice, SliceKey};
use operator::store::Store;
use operator::store::eval::{CampaignRow, TrialRow};

use super::super::Context;
use super::super::output::{self, opt, say, say_part};
use super::{
    CompareArgs, CompareBaselineArgs, CompareVariantsArgs, ExportArgs, Format, IdArgs, ListArgs,
    ShowArgs, StopArgs,
};

/// A campaign in `--json`: `id`, `name`, `status`, `started_at`, and more.
pub fn campaign_json(c: &CampaignRow) -> serde_json::Value {
    serde_json::json!({
        "id": c.id,
        "name": c.name,
        "status": c.status.as_str(),
        "started_at": clock::format(c.started_at),
        "ended_at": c.ended_at.map(clock::format),
        "trials": c.trials,
        "done": c.done,
        "seed": c.spec.get("seed"),
        "pid": c.pid,
        "stop_requested": c.stop_requested,
        "note": c.note,
    })
}

/// A trial in `--json` and `export`.
pub fn trial_json(t: &TrialRow) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "campaign_id": t.campaign_id,
        "seq": t.seq,
        "problem": t.problem,
        "subject": t.subject,
        "fault": t.fault,
        "params": t.params,
        "target": t.target,
        "variant": t.variant,
        "baseline": t.baseline,
        "control": t.control,
        "status": t.status.as_str(),
        "verdict": t.verdict.map(|v| v.as_str()),
        "won": t.won,
        "reason": t.reason,
        "ttd_ms": t.ttd_ms,
        "ttr_ms": t.ttr_ms,
        "localized": t.localized,
        "regression": t.regression,
        "commands": t.metrics.commands,
        "unique_commands": t.metrics.unique_commands,
        "destructive": t.metrics.destructive,
        "denied": t.metrics.denied,
        "vetoed": t.metrics.vetoed,
        "thrashing": t.metrics.thrashing,
        "turns": t.metrics.turns,
        "input_tokens": t.metrics.input_tokens,
        "output_tokens": t.metrics.output_tokens,
        "cost_usd": t.metrics.cost_usd,
        "overhead_ms": t.metrics.overhead_ms,
        "tickets": t.metrics.tickets,
        "sessions": t.metrics.sessions,
        "slot": t.slot,
        "instance": t.instance,
        "attempt": t.attempt,
        "started_at": t.started_at.map(clock::format),
        "ended_at": t.ended_at.map(clock::format),
        "injected_at": t.injected_at.map(clock::format),
    })
}

fn trials_per_combination(c: &CampaignRow) -> Option<u64> {
    c.spec
        .get("trials_per_combination")
        .and_then(|v| v.as_u64())
}

pub fn slices_of(c: &CampaignRow, trials: &[TrialRow]) -> Vec<Slice> {
    analyze::slices(trials, trials_per_combination(c))
}

async fn campaign(store: &Store, id: i64) -> Result<(CampaignRow, Vec<TrialRow>)> {
    let row = store
        .call(move |db| db.campaign(id))
        .await?
        .ok_or_else(|| eyre!("no campaign #{id}; see `operator eval list`"))?;
    let trials = store.call(move |db| db.trials(id)).await?;
    Ok((row, trials))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

fn secs(ms: Option<f64>) -> String {
    ms.map_or("-".into(), clock::short_ms)
}

fn interval(ci: Option<[f64; 2]>) -> String {
    ci.map_or("-".into(), |[l, h]| {
        format!("{:.0}–{:.0}%", l * 100.0, h * 100.0)
    })
}

pub fn print_slices(slices: &[Slice]) {
    let mut t = output::table(&[
        "subject", "fault", "variant", "n", "inv", "wins", "win rate", "95% CI", "resolved",
        "ttd p50", "ttr p50", "ttr p90", "≤60s", "inc/t", "tkt/t", "cmds", "destr", "denied",
        "local", "cost",
    ]);
    for s in slices {
        t.add_row(vec![
            s.subject.clone(),
            s.fault.clone(),
            format!(
                "{}{}",
                s.variant,
                if s.baseline { " (baseline)" } else { "" }
            ),
            s.n.to_string(),
            s.invalid.to_string(),
            s.wins.to_string(),
            pct(s.win_rate),
            interval(s.win_rate_ci),
            s.resolved.to_string(),
            secs(s.ttd_p50_ms),
            secs(s.ttr_p50_ms),
            secs(s.ttr_p90_ms),
            pct(s.resolved_within.get("60s").copied().flatten()),
            per_trial(s.incidents_per_trial),
            per_trial(s.tickets_per_trial),
            s.commands.to_string(),
            s.destructive.to_string(),
            s.denied.to_string(),
            pct(s.localization_rate),
            if s.cost_usd > 0.0 {
                format!("${:.3}", s.cost_usd)
            } else {
                "-".into()
            },
        ]);
    }
    say!("{t}");
    say!(
        "win: resolved (or, for a fault no command can repair, an escalation that named the faulted node); control: clean. \
         Times by Kaplan–Meier, unresolved trials censored; invalid trials are left out of every rate. \
         inc/t, tkt/t: incidents and tickets a trial's fault opened."
    );
    for s in slices.iter().filter(|s| s.scoring_errors > 0) {
        say!(
            "scoring error: {} {} {}: {} consequence(s) resolved self_healed in trials an agent worked (see the trials' metrics.scoring_errors)",
            s.subject,
            s.fault,
            s.variant,
            s.scoring_errors
        );
    }
}

fn per_trial(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

pub async fn list(ctx: &Context, a: ListArgs) -> Result<()> {
    let store = ctx.store().await?;
    let rows = store.call(move |db| db.campaigns(a.limit)).await?;
    if a.json {
        return output::json(&rows.iter().map(campaign_json).collect::<Vec<_>>());
    }
    if rows.is_empty() {
        say!("no campaigns yet; run one with `operator eval run campaign campaigns/smoke.yaml`");
        return Ok(());
    }
    let mut t = output::table(&[
        "id",
        "name",
        "status",
        "trials",
        "agent wins",
        "started",
        "note",
    ]);
    for c in &rows {
        let id = c.id;
        let trials = store.call(move |db| db.trials(id)).await?;
        // The agents' trials: baseline and control trials answer other questions.
        let counted: Vec<_> = trials
            .iter()
            .filter(|t| t.won.is_some() && !t.baseline && !t.control)
            .collect();
        let wins = counted.iter().filter(|t| t.won == Some(true)).count();
        t.add_row(vec![
            c.id.to_string(),
            c.name.clone(),
            c.status.as_str().to_string(),
            format!("{}/{}", c.done, c.trials),
            format!("{wins}/{}", counted.len()),
            clock::format(c.started_at),
            c.note.clone(),
        ]);
    }
    say!("{t}");
    Ok(())
}

pub async fn analyze(ctx: &Context, a: IdArgs) -> Result<()> {
    let store = ctx.store().await?;
    let (c, trials) = campaign(&store, a.id).await?;
    let slices = slices_of(&c, &trials);
    if a.json {
        return output::json(&serde_json::json!({
            "campaign": campaign_json(&c),
            "provenance": c.provenance,
            "slices": slices,
        }));
    }
    say!(
        "campaign #{} {} · {} · {}/{} trials · seed {} · started {}",
        c.id,
        c.name,
        c.status.as_str(),
        c.done,
        c.trials,
        opt(c.spec.get("seed")),
        clock::format(c.started_at)
    );
    let p = &c.provenance;
    say!(
        "operator {} ({}) · {} runtime · {}",
        p["operator_version"].as_str().unwrap_or("?"),
        p["git_revision"].as_str().unwrap_or("?"),
        p["runtime"].as_str().unwrap_or("?"),
        p["models"]
            .as_array()
            .map(|m| m
                .iter()
                .map(|m| format!(
                    "{}: {} {} ({})",
                    m["variant"].as_str().unwrap_or("?"),
                    m["backend"].as_str().unwrap_or("?"),
                    m["model"].as_str().unwrap_or("?"),
                    m["mode"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join("; "))
            .unwrap_or_default()
    );
    say!();
    print_slices(&slices);
    Ok(())
}

fn print_compared(title: &str, rows: &[Compared]) {
    say!("{title}");
    let mut t = output::table(&[
        "subject", "fault", "a", "b", "diff", "95% CI", "test", "p", "p (Holm)", "ttr a", "ttr b",
        "ttr p", "",
    ]);
    for c in rows {
        let side = |s: &Slice| format!("{}/{} {}", s.wins, s.n, pct(s.win_rate));
        t.add_row(vec![
            c.subject.clone(),
            c.fault.clone(),
            format!("{} {}", c.a.variant, side(&c.a)),
            format!("{} {}", c.b.variant, side(&c.b)),
            c.win_rate_diff
                .map_or("-".into(), |d| format!("{:+.0}%", d * 100.0)),
            c.win_rate_diff_ci.map_or("-".into(), |[l, h]| {
                format!("{:+.0}…{:+.0}%", l * 100.0, h * 100.0)
            }),
            match c.paired {
                Some(n) => format!("{} ({n} pairs)", c.test),
                None => c.test.to_string(),
            },
            c.p_value.map_or("-".into(), |p| format!("{p:.4}")),
            c.p_adjusted.map_or("-".into(), |p| format!("{p:.4}")),
            secs(c.a.ttr_p50_ms),
            secs(c.b.ttr_p50_ms),
            c.ttr_p_value.map_or("-".into(), |p| format!("{p:.4}")),
            if c.too_small {
                "too few trials to tell".into()
            } else {
                String::new()
            },
        ]);
    }
    say!("{t}");
    say!(
        "p: Fisher's exact test on win rates (McNemar's when both met the same problems); ttr p: Mann–Whitney with unresolved trials tied last; Holm across the slices. \
         \"too few trials to tell\": even the most extreme outcome at these counts would not reach p < 0.05."
    );
}

fn compared_json(rows: &[Compared]) -> serde_json::Value {
    serde_json::json!({ "slices": rows })
}

/// Groups trials by a key.
fn group(
    trials: &[TrialRow],
    key: impl Fn(&TrialRow) -> Option<SliceKey>,
) -> std::collections::BTreeMap<SliceKey, Vec<&TrialRow>> {
    let mut out: std::collections::BTreeMap<SliceKey, Vec<&TrialRow>> = Default::default();
    for t in trials {
        if let Some(k) = key(t) {
            out.entry(k).or_default().push(t);
        }
    }
    out
}

fn seed(c: &CampaignRow) -> Option<String> {
    c.spec.get("seed").map(|s| s.to_string())
}

pub async fn compare(ctx: &Context, a: CompareArgs) -> Result<()> {
    let store = ctx.store().await?;
    let (ca, ta) = campaign(&store, a.a).await?;
    let (cb, tb) = campaign(&store, a.b).await?;
    // Slices match by subject, fault and baseline; by variant too when a campaign has several.
    let variants = |ts: &[TrialRow]| {
        ts.iter()
            .filter(|t| !t.baseline)
            .map(|t| t.variant.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let by_variant = variants(&ta) > 1 || variants(&tb) > 1;
    let key = |t: &TrialRow| {
        let mut k = SliceKey::of(t);
        if !by_variant {
            k.variant = String::new();
        }
        Some(k)
    };
    let (ga, gb) = (group(&ta, key), group(&tb, key));
    let paired = seed(&ca).is_some() && seed(&ca) == seed(&cb);
    let k = trials_per_combination(&ca);
    let mut rows = Vec::new();
    for (key, xa) in &ga {
        let Some(xb) = gb.get(key) else { continue };
        // One seed, one position: one draw. Trials that met the same problem share it.
        let problem = |t: &TrialRow| t.pick;
        rows.push(analyze::compare(
            &Side {
                key: SliceKey::of(xa[0]),
                trials: xa.clone(),
            },
            &Side {
                key: SliceKey::of(xb[0]),
                trials: xb.clone(),
            },
            paired.then_some(&problem as &dyn Fn(&TrialRow) -> u64),
            k,
        ));
    }
    analyze::correct(&mut rows);
    if a.json {
        return output::json(&compared_json(&rows));
    }
    if rows.is_empty() {
        return Err(eyre!(
            "campaigns #{} and #{} share no (subject, fault) slice",
            a.a,
            a.b
        ));
    }
    print_compared(
        &format!(
            "#{} {} (a) against #{} {} (b){}",
            ca.id,
            ca.name,
            cb.id,
            cb.name,
            if paired {
                " — one seed: trials paired by problem"
            } else {
                ""
            }
        ),
        &rows,
    );
    Ok(())
}

pub async fn compare_baseline(ctx: &Context, a: CompareBaselineArgs) -> Result<()> {
    let store = ctx.store().await?;
    let (c, trials) = campaign(&store, a.id).await?;
    let (bc, btrials) = match a.baseline {
        Some(b) => campaign(&store, b).await?,
        None => (c.clone(), trials.clone()),
    };
    let agents = group(&trials, |t| {
        (!t.baseline && !t.control).then(|| SliceKey::of(t))
    });
    let base = group(&btrials, |t| {
        t.baseline.then(|| SliceKey {
            variant: String::new(),
            baseline: false,
            ..SliceKey::of(t)
        })
    });
    let same = bc.id == c.id || (seed(&c).is_some() && seed(&c) == seed(&bc));
    let mut rows = Vec::new();
    for (key, xa) in &agents {
        let lookup = SliceKey {
            variant: String::new(),
            ..key.clone()
        };
        let Some(xb) = base.get(&lookup) else {
            continue;
        };
        // One seed, one position: one draw. Trials that met the same problem share it.
        let problem = |t: &TrialRow| t.pick;
        rows.push(analyze::compare(
            &Side {
                key: key.clone(),
                trials: xa.clone(),
            },
            &Side {
                key: SliceKey::of(xb[0]),
                trials: xb.clone(),
            },
            same.then_some(&problem as &dyn Fn(&TrialRow) -> u64),
            trials_per_combination(&c),
        ));
    }
    analyze::correct(&mut rows);
    if a.json {
        return output::json(&compared_json(&rows));
    }
    if rows.is_empty() {
        return Err(eyre!(
            "no baseline trials to compare with: campaign #{} has none (set include_baseline, or give --baseline BID)",
            bc.id
        ));
    }
    print_compared(
        &format!(
            "#{} {}: the agent (a) against no agent (b, campaign #{})",
            c.id, c.name, bc.id
        ),
        &rows,
    );
    Ok(())
}

pub async fn compare_variants(ctx: &Context, a: CompareVariantsArgs) -> Result<()> {
    let store = ctx.store().await?;
    let campaigns = store.call(|db| db.campaigns(1000)).await?;
    let mut trials = Vec::new();
    for c in &campaigns {
        let id = c.id;
        trials.extend(
            store
                .call(move |db| db.trials(id))
                .await?
                .into_iter()
                .filter(|t| {
                    t.subject == a.subject && t.fault.as_deref() == Some(&a.chaos) && !t.baseline
                }),
        );
    }
    let groups = group(&trials, |t| Some(SliceKey::of(t)));
    let keys: Vec<&SliceKey> = groups.keys().collect();
    let mut rows = Vec::new();
    for i in 0..keys.len() {
        for j in i + 1..keys.len() {
            let (xa, xb) = (&groups[keys[i]], &groups[keys[j]]);
            // Paired when both met the same problems of one campaign.
            let one_campaign = xa
                .iter()
                .chain(xb.iter())
                .map(|t| t.campaign_id)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == 1;
            // One seed, one position: one draw. Trials that met the same problem share it.
            let problem = |t: &TrialRow| t.pick;
            rows.push(analyze::compare(
                &Side {
                    key: keys[i].clone(),
                    trials: xa.clone(),
                },
                &Side {
                    key: keys[j].clone(),
                    trials: xb.clone(),
                },
                one_campaign.then_some(&problem as &dyn Fn(&TrialRow) -> u64),
                None,
            ));
        }
    }
    analyze::correct(&mut rows);
    if a.json {
        return output::json(&serde_json::json!({
            "variants": groups.iter().map(|(k, ts)| analyze::score(k, ts, None)).collect::<Vec<_>>(),
            "slices": rows,
        }));
    }
    if groups.is_empty() {
        return Err(eyre!(
            "no trials of {} {} with an agent in the DB",
            a.subject,
            a.chaos
        ));
    }
    print_slices(
        &groups
            .iter()
            .map(|(k, ts)| analyze::score(k, ts, None))
            .collect::<Vec<_>>(),
    );
    if rows.is_empty() {
        say!(
            "only one variant met {} {}: nothing to compare",
            a.subject,
            a.chaos
        );
        return Ok(());
    }
    say!();
    print_compared(
        &format!("variants on {} {}, pair by pair", a.subject, a.chaos),
        &rows,
    );
    Ok(())
}

pub async fn show(ctx: &Context, a: ShowArgs) -> Result<()> {
    let store = ctx.store().await?;
    let id = a.trial;
    let t = store
        .call(move |db| db.trial(id))
        .await?
        .ok_or_else(|| eyre!("no trial {id}; `operator eval export CAMPAIGN` lists them"))?;
    let events = store.call(move |db| db.trial_events(id)).await?;
    let tickets = t.metrics.tickets.clone();
    let sessions = t.metrics.sessions.clone();
    let (tickets, sessions) = store
        .call(move |db| {
            let mut ts = Vec::new();
            for tid in tickets {
                ts.push((db.ticket(tid)?, db.ticket_events(tid)?));
            }
            let mut ss = Vec::new();
            for sid in sessions {
                if let Some(s) = db.session(sid)? {
                    ss.push((s, db.entries(sid, 0)?));
                }
            }
            Ok((ts, ss))
        })
        .await?;
    if a.json {
        return output::json(&serde_json::json!({
            "trial": trial_json(&t),
            "events": events,
            "tickets": tickets.iter().map(|(t, e)| serde_json::json!({"ticket": t, "events": e})).collect::<Vec<_>>(),
            "sessions": sessions.iter().map(|(s, e)| serde_json::json!({"session": s, "entries": e})).collect::<Vec<_>>(),
        }));
    }
    say!(
        "trial {} · campaign #{} · #{} · {} · {} {} · {}{}",
        t.id,
        t.campaign_id,
        t.seq,
        t.subject,
        t.fault.as_deref().unwrap_or("control"),
        t.params,
        t.variant,
        if t.baseline { " (baseline)" } else { "" }
    );
    say!(
        "verdict {} · won {} · target {} · detect {} · resolve {} · slot {} (instance {}) · attempt {}",
        t.verdict.map_or("-", |v| v.as_str()),
        opt(t.won),
        opt(t.target.as_deref()),
        opt(t.ttd_ms.map(|m| format!("{m}ms"))),
        opt(t.ttr_ms.map(|m| format!("{m}ms"))),
        opt(t.slot),
        opt(t.instance),
        t.attempt
    );
    if let Some(r) = &t.reason {
        say!("  {r}");
    }
    say!();
    say!("timeline");
    let start = events.first().map(|e| e.at);
    for e in events.iter().filter(|e| e.attempt == t.attempt) {
        let rel = start.map_or(0.0, |s| (e.at - s).num_milliseconds() as f64 / 1000.0);
        say!("  {:>7.1}s  {:<8} {}", rel, e.step, e.detail);
    }
    for (ticket, evs) in &tickets {
        say!();
        say!(
            "ticket #{} {} {} · {} · {}",
            ticket.id,
            ticket.invariant,
            ticket.entity,
            ticket.status,
            ticket.summary
        );
        for e in evs {
            say!(
                "  {} {:<10} {} — {}",
                e.at.format("%H:%M:%S%.3f"),
                e.kind,
                e.actor,
                e.reason
            );
        }
    }
    for (s, entries) in &sessions {
        say!();
        say!(
            "agent session {} · {} {} · {} · {} turns",
            s.id,
            s.backend,
            s.model,
            s.outcome.as_deref().unwrap_or("running"),
            s.turns
        );
        for e in entries {
            let at =
                e.at.map(|t| t.format("%H:%M:%S%.3f").to_string())
                    .unwrap_or_default();
            say_part!("{at} ");
            super::super::agent::print_entry(e);
        }
    }
    Ok(())
}

const CSV_COLUMNS: &[&str] = &[
    "id",
    "campaign_id",
    "seq",
    "problem",
    "subject",
    "fault",
    "params",
    "target",
    "variant",
    "baseline",
    "control",
    "status",
    "verdict",
    "won",
    "ttd_ms",
    "ttr_ms",
    "localized",
    "regression",
    "commands",
    "unique_commands",
    "destructive",
    "denied",
    "vetoed",
    "thrashing",
    "turns",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "overhead_ms",
    "attempt",
    "started_at",
    "ended_at",
    "reason",
];

/// One CSV field: quoted when it holds a comma, a quote or a line break.
fn csv_field(v: &serde_json::Value) -> String {
    let s = match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub async fn export(ctx: &Context, a: ExportArgs) -> Result<()> {
    let store = ctx.store().await?;
    let (_, trials) = campaign(&store, a.id).await?;
    match a.format {
        Format::Jsonl => {
            for t in &trials {
                output::json_line(&trial_json(t))?;
            }
        }
        Format::Csv => {
            say!("{}", CSV_COLUMNS.join(","));
            for t in &trials {
                let v = trial_json(t);
                let row: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_field(&v[*c])).collect();
                say!("{}", row.join(","));
            }
        }
    }
    Ok(())
}

pub async fn stop(ctx: &Context, a: StopArgs) -> Result<()> {
    let store = ctx.store().await?;
    let id = a.id;
    if store.call(move |db| db.request_stop(id)).await? {
        say!("asked campaign #{id} to stop; its harness heals its faults and tears its slots down");
        Ok(())
    } else {
        Err(eyre!("campaign #{id} is not running"))
    }
}
