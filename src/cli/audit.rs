//! `operator audit`: what agents did, session by session.

use clap::{Args, Subcommand};
use color_eyre::eyre::{Result, eyre};
use operator::agent::audit::Audit;
use operator::agent::redact::Redactor;
use operator::clock;

use super::Context;
use super::output::{self, opt};
use super::output::{say, say_part};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Agent sessions, newest first.
    List(ListArgs),
    /// One session as a timeline: reasoning, commands, decisions, results.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the sessions of this ticket.
    #[arg(long)]
    pub ticket: Option<i64>,
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub session: i64,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(ctx: &Context, cmd: AuditCommand) -> Result<()> {
    let audit = Audit::new(ctx.store().await?, Redactor::from_env());
    match cmd {
        AuditCommand::List(a) => {
            let sessions = audit.sessions(a.ticket, a.limit).await?;
            if a.json {
                return output::json(&sessions);
            }
            if sessions.is_empty() {
                say!("no agent sessions");
                return Ok(());
            }
            let now = clock::now();
            let mut t = output::table(&[
                "session", "ticket", "backend", "model", "mode", "outcome", "turns", "tokens",
                "cost", "started", "took",
            ]);
            for s in &sessions {
                let took = s.ended_at.map(|e| {
                    format!(
                        "{:.1}s",
                        (e - s.started_at).num_milliseconds() as f64 / 1000.0
                    )
                });
                t.add_row(vec![
                    s.id.to_string(),
                    format!("#{}", s.ticket_id),
                    s.backend.clone(),
                    s.model.clone(),
                    s.mode.clone(),
                    s.outcome.clone().unwrap_or_else(|| "running".into()),
                    s.turns.to_string(),
                    (s.input_tokens + s.output_tokens).to_string(),
                    format!("${:.4}", s.cost_usd),
                    clock::age(s.started_at, now) + " ago",
                    opt(took),
                ]);
            }
            say!("{t}");
            Ok(())
        }
        AuditCommand::Show(a) => {
            let s = audit
                .session(a.session)
                .await?
                .ok_or_else(|| eyre!("no agent session {}", a.session))?;
            let entries = audit.entries(a.session, 0).await?;
            if a.json {
                let mut v = serde_json::to_value(&s)?;
                v["entries"] = serde_json::to_value(&entries)?;
                return output::json(&v);
            }
            say!(
                "session {} · ticket #{} · {} {} · mode {} · variant {}",
                s.id,
                s.ticket_id,
                s.backend,
                s.model,
                s.mode,
                s.variant
            );
            say!(
                "started {} · {} · {} turns · {} in / {} out tokens (cache {} read, {} written) · ${:.4}",
                clock::format(s.started_at),
                s.outcome.as_deref().unwrap_or("running"),
                s.turns,
                s.input_tokens,
                s.output_tokens,
                s.cache_read_tokens,
                s.cache_write_tokens,
                s.cost_usd
            );
            if let Some(summary) = &s.summary {
                say!("  {summary}");
            }
            say!();
            for e in &entries {
                let at =
                    e.at.map(|t| t.format("%H:%M:%S%.3f").to_string())
                        .unwrap_or_default();
                say_part!("{at} ");
                super::agent::print_entry(e);
            }
            Ok(())
        }
    }
}
