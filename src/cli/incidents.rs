//! `operator incidents`: the tickets of one cause, as the monitor grouped them and the agent
//! worked them.

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, bail};
use operator::clock;
use operator::tickets::{Claimed, Incident, IncidentFilter, Status};

use super::Context;
use super::output::{self, opt, say};

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first, resolved ones too.
    List(ListArgs),
    /// One incident: its tickets (roots first), who worked it, and its sessions.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "\
An incident is the tickets of one cause: a subject declares which violations follow from
which (two etcd members down take the quorum with them), and tickets that open within the
correlation window of each other ([tickets] correlation_window, 30 s by default), or while an
agent works the incident, are grouped. An agent claims, repairs and verifies an incident
whole.")]
pub struct ListArgs {
    /// Only incidents that are not resolved.
    #[arg(long)]
    pub active: bool,
    /// Only incidents of this instance.
    #[arg(long)]
    pub this_instance: bool,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub id: i64,
    /// Refuse an incident of another instance (the sandbox's `operator` always asks this).
    #[arg(long)]
    pub this_instance: bool,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, cmd: IncidentsCommand) -> Result<()> {
    let store = ctx.store().await?;
    match cmd {
        IncidentsCommand::List(a) => {
            let filter = IncidentFilter {
                active: a.active,
                instance: a.this_instance.then_some(ctx.instance),
                limit: Some(a.limit),
                ..Default::default()
            };
            let incidents = store.call(move |db| db.incidents(&filter)).await?;
            if a.json {
                return output::json(&incidents);
            }
            if incidents.is_empty() {
                say!("no incidents");
                return Ok(());
            }
            let now = clock::now();
            let mut t = output::table(&[
                "id",
                "status",
                "subject",
                "age",
                "roots",
                "tickets",
                "attempts",
                "worked by",
            ]);
            for i in &incidents {
                t.add_row(vec![
                    i.id.to_string(),
                    i.status.to_string(),
                    format!("{}/{}", i.subject, i.instance),
                    clock::age(i.opened_at, now),
                    ids(&i.roots),
                    ids(&i.tickets),
                    i.attempts.to_string(),
                    opt(i.worked_by.clone()),
                ]);
            }
            say!("{t}");
            Ok(())
        }
        IncidentsCommand::Show(a) => {
            let id = a.id;
            let (claimed, sessions) = store
                .call(move |db| {
                    let c = db.incident(id)?;
                    let lead = c.lead().id;
                    let sessions = db.sessions(Some(lead), 100)?;
                    Ok((c, sessions))
                })
                .await?;
            if a.this_instance && claimed.incident.instance != ctx.instance {
                bail!(
                    "incident {id} is instance {}'s, not this instance's ({})",
                    claimed.incident.instance,
                    ctx.instance
                );
            }
            if a.json {
                let mut v = serde_json::to_value(&claimed.incident)?;
                v["ticket_details"] = serde_json::to_value(&claimed.tickets)?;
                v["sessions"] = serde_json::to_value(&sessions)?;
                return output::json(&v);
            }
            print_incident(&claimed);
            if !sessions.is_empty() {
                say!("\nsessions:");
                for s in &sessions {
                    say!(
                        "  #{} {} {} · {} · {}",
                        s.id,
                        s.backend,
                        s.model,
                        clock::format(s.started_at),
                        opt(s.outcome.clone())
                    );
                }
            }
            Ok(())
        }
    }
}

fn ids(ids: &[i64]) -> String {
    ids.iter()
        .map(|i| format!("#{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_incident(c: &Claimed) {
    let i: &Incident = &c.incident;
    let ts = |v: Option<clock::Timestamp>| opt(v.map(clock::format));
    say!(
        "incident #{} · {} · {}/{}",
        i.id,
        i.status,
        i.subject,
        i.instance
    );
    let rows = [
        ("opened", clock::format(i.opened_at)),
        ("resolved", ts(i.resolved_at)),
        ("claimed by", opt(i.claimed_by.clone())),
        ("worked by", opt(i.worked_by.clone())),
        ("attempts", i.attempts.to_string()),
        (
            "fixed by",
            opt(i.session_id.map(|s| format!("session #{s}"))),
        ),
    ];
    for (k, v) in rows {
        say!("  {k:<11}{v}");
    }
    say!("\ntickets:");
    for t in &c.tickets {
        let status = match (t.status, t.resolution) {
            (Status::Resolved, Some(r)) => format!("resolved ({})", r.as_str()),
            (s, _) => s.to_string(),
        };
        let indent = if t.root { "" } else { "  ↳ " };
        say!(
            "  {indent}#{} {} {} · {status} · {}",
            t.id,
            t.invariant,
            t.entity,
            t.summary
        );
    }
}
