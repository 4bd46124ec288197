//! `operator tickets`: what the monitor found, and a person's say over it.

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, eyre};
use operator::clock;
use operator::tickets::{Status, Ticket, TicketFilter};

use super::Context;
use super::output::say;
use super::output::{self, opt};

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// List tickets, newest first.
    List(ListArgs),
    /// One ticket with its history.
    Show(ShowArgs),
    /// Close a ticket by hand (the monitor reopens it if the violation is still there).
    Resolve(ActArgs),
    /// Keep a ticket from being resolved automatically.
    Hold(ActArgs),
    /// Let a held ticket be resolved automatically again.
    Unhold(ActArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only tickets in this status: open, in_progress, verifying, resolved, escalated.
    #[arg(long, value_parser = parse_status)]
    pub status: Option<Status>,
    /// Only tickets that are not resolved.
    #[arg(long, conflicts_with = "status")]
    pub active: bool,
    /// Only tickets of this instance.
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
    /// Refuse a ticket of another instance (the sandbox's `operator` always asks this).
    #[arg(long)]
    pub this_instance: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ActArgs {
    pub id: i64,
    /// Why, for the ticket's history.
    #[arg(long, default_value = "by hand")]
    pub reason: String,
    #[arg(long)]
    pub json: bool,
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!(
            "unknown status `{s}`; statuses: {}",
            Status::ALL.map(Status::as_str).join(", ")
        )
    })
}

/// Who a person is in the ticket history.
fn actor() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    format!("cli:{user}")
}

pub async fn run(ctx: &Context, cmd: TicketsCommand) -> Result<()> {
    let store = ctx.store().await?;
    match cmd {
        TicketsCommand::List(a) => {
            let filter = TicketFilter {
                status: a.status,
                active: a.active,
                instance: a.this_instance.then_some(ctx.instance),
                limit: Some(a.limit),
                ..Default::default()
            };
            let tickets = store.call(move |db| db.tickets(&filter)).await?;
            if a.json {
                return output::json(&tickets);
            }
            if tickets.is_empty() {
                say!("no tickets");
                return Ok(());
            }
            let now = clock::now();
            let mut t = output::table(&[
                "id",
                "status",
                "severity",
                "invariant",
                "entity",
                "age",
                "occ",
                "summary",
            ]);
            for k in &tickets {
                let status = match (k.status, k.resolution, k.held) {
                    (Status::Resolved, Some(r), _) => format!("resolved ({})", r.as_str()),
                    (s, _, true) => format!("{s} (held)"),
                    (s, _, false) => s.to_string(),
                };
                t.add_row(vec![
                    k.id.to_string(),
                    status,
                    k.severity.as_str().to_string(),
                    k.invariant.clone(),
                    k.entity.clone(),
                    clock::age(k.opened_at, now),
                    k.occurrences.to_string(),
                    k.summary.clone(),
                ]);
            }
            say!("{t}");
            Ok(())
        }
        TicketsCommand::Show(a) => {
            let id = a.id;
            let (ticket, events) = store
                .call(move |db| Ok((db.ticket(id)?, db.ticket_events(id)?)))
                .await?;
            if a.this_instance && ticket.instance != ctx.instance {
                color_eyre::eyre::bail!(
                    "ticket {id} is instance {}'s, not this instance's ({})",
                    ticket.instance,
                    ctx.instance
                );
            }
            if a.json {
                let mut v = serde_json::to_value(&ticket)?;
                v["events"] = serde_json::to_value(&events)?;
                return output::json(&v);
            }
            print_ticket(&ticket);
            say!("\nhistory:");
            for e in &events {
                let moved = match (e.from_status, e.to_status) {
                    (Some(f), Some(t)) if f != t => format!(" {f} → {t}"),
                    (None, Some(t)) => format!(" → {t}"),
                    _ => String::new(),
                };
                say!(
                    "  {} {:<10}{moved}  by {}: {}",
                    clock::format(e.at),
                    e.kind,
                    e.actor,
                    e.reason
                );
            }
            Ok(())
        }
        TicketsCommand::Resolve(a) => {
            let (id, reason) = (a.id, a.reason.clone());
            let t = store
                .call(move |db| db.resolve_manual(id, &actor(), &reason))
                .await?;
            done(&t, a.json, "resolved by hand")
        }
        TicketsCommand::Hold(a) => {
            let (id, reason) = (a.id, a.reason.clone());
            let t = store
                .call(move |db| db.set_held(id, true, &actor(), &reason))
                .await?;
            done(&t, a.json, "held: it will not be resolved automatically")
        }
        TicketsCommand::Unhold(a) => {
            let (id, reason) = (a.id, a.reason.clone());
            let t = store
                .call(move |db| db.set_held(id, false, &actor(), &reason))
                .await?;
            if !t.held {
                return done(&t, a.json, "no longer held");
            }
            Err(eyre!("ticket #{} is still held", t.id))
        }
    }
}

fn done(t: &Ticket, json: bool, what: &str) -> Result<()> {
    if json {
        return output::json(t);
    }
    say!("ticket #{} {what} ({} {})", t.id, t.invariant, t.entity);
    Ok(())
}

fn print_ticket(t: &Ticket) {
    let ts = |v: Option<clock::Timestamp>| opt(v.map(clock::format));
    say!("ticket #{} · {} · {}", t.id, t.status, t.severity.as_str());
    say!("  {}", t.summary);
    let rows = [
        ("key", t.violation_key.clone()),
        ("invariant", t.invariant.clone()),
        ("entity", t.entity.clone()),
        ("held", t.held.to_string()),
        ("occurrences", t.occurrences.to_string()),
        ("observations", t.observations.to_string()),
        ("opened", clock::format(t.opened_at)),
        ("last seen", clock::format(t.last_seen_at)),
        ("cleared", ts(t.cleared_at)),
        ("resolved", ts(t.resolved_at)),
        ("resolution", opt(t.resolution.map(|r| r.as_str()))),
        ("claimed by", opt(t.claimed_by.clone())),
        ("attempts", t.attempts.to_string()),
    ];
    for (k, v) in rows {
        say!("  {k:<13}{v}");
    }
    say!("  detail       {}", t.detail);
}
