//! One session: one incident (its tickets, roots first), one conversation with a model,
//! every tool call through the policy, the approver and the executor, every step in the
//! audit — until the monitor confirms the fix of every ticket, the agent escalates, or a
//! budget or an error ends it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::approval::{ApprovalRequest, Approver, Decision};
use super::audit::{Audit, Ending, Entry, Kind, NewSession};
use super::executor::Executor;
use super::lease::Lease;
use super::llm::{
    AssistantBlock, Conversation, Message, Model, ModelEvent, StopReason, ToolCall, TurnRequest,
    Usage, UserBlock,
};
use super::prompt;
use super::tools::{self, CallError, Tool};
use crate::clock::{self, Timestamp};
use crate::config::{Budgets, Price};
use crate::policy::{Class, Gate, Mode, Policy, gate};
use crate::store::Store;
use crate::subjects::Subject;
use crate::tickets::{Claimed, Status, Ticket};

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// The monitor confirmed the fix.
    Resolved,
    Escalated(String),
    /// The session failed; the ticket went back (to `open`, or to `escalated` when its
    /// attempts are spent).
    GaveBack(String),
    /// Someone else changed the ticket meanwhile (a person resolved it, the lease was lost).
    Interrupted(String),
    /// The agent was stopped; it let go of the ticket.
    Stopped,
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::Escalated(_) => "escalated",
            Self::GaveBack(_) => "gave_back",
            Self::Interrupted(_) => "interrupted",
            Self::Stopped => "stopped",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Resolved => None,
            Self::Stopped => Some("the agent was stopped"),
            Self::Escalated(r) | Self::GaveBack(r) | Self::Interrupted(r) => Some(r),
        }
    }
}

/// What a session tells whoever watches it (the CLI printer, the TUI).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    Started {
        session_id: i64,
        /// The incident's lead ticket (its first root).
        ticket: Box<Ticket>,
        incident_id: i64,
        /// How many tickets the incident holds when the session starts.
        tickets: usize,
    },
    /// A model event as it streams.
    Model { session_id: i64, event: ModelEvent },
    /// A step written to the audit.
    Step { session_id: i64, entry: Entry },
    Ended {
        session_id: i64,
        ticket_id: i64,
        outcome: Outcome,
        usage: Usage,
        cost_usd: Option<f64>,
    },
}

/// ` and 2 more tickets` after a session's lead ticket, for the lines that announce it.
pub fn more_tickets(tickets: usize) -> String {
    match tickets {
        0 | 1 => String::new(),
        2 => " and 1 more ticket".to_string(),
        n => format!(" and {} more tickets", n - 1),
    }
}

/// Keeps a prefix a person chose to always allow (in the config file).
pub type KeepAllowed = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Everything a session works with; shared by the agent's sessions.
pub struct Deps {
    pub store: Store,
    pub audit: Audit,
    pub model: Arc<dyn Model>,
    pub executor: Arc<dyn Executor>,
    pub policy: Arc<Mutex<Policy>>,
    pub approver: Arc<dyn Approver>,
    /// Called with each prefix a person chose to always allow, to keep it.
    pub keep_allowed: KeepAllowed,
    pub events: Option<mpsc::UnboundedSender<AgentEvent>>,
    /// A person's guidance, delivered to the model on its next turn.
    pub guidance: Option<Arc<Mutex<mpsc::UnboundedReceiver<String>>>>,
}

/// How a session behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    pub agent_id: String,
    pub mode: Mode,
    pub budgets: Budgets,
    pub lease: Duration,
    pub verify_window: Duration,
    pub tools: Vec<String>,
    /// The system prompt template; `{mode}`, `{executor}`, `{subject}` are filled in.
    pub system_prompt: String,
    pub variant: String,
    pub prices: std::collections::BTreeMap<String, Price>,
}

/// How many times in a row the model may stop without a tool call before the session fails.
const MAX_NUDGES: u32 = 2;

enum Step {
    Continue,
    End(Outcome),
}

struct Run<'a> {
    deps: &'a Deps,
    s: &'a Settings,
    subject: &'a mut dyn Subject,
    /// The incident's lead ticket, which names the session.
    ticket: Ticket,
    incident: i64,
    session_id: i64,
    /// Steps go to the audit in order, without holding up the session.
    audit: AuditWriter,
    lease: Lease,
    conv: Conversation,
    facts: serde_json::Value,
    usage: Usage,
    turns: u32,
    started: Instant,
}

/// Writes a session's steps to the audit in the order they happen, on a task of its own,
/// and tells watchers each step as stored.
struct AuditWriter {
    tx: mpsc::UnboundedSender<Entry>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditWriter {
    fn spawn(
        audit: Audit,
        session_id: i64,
        events: Option<mpsc::UnboundedSender<AgentEvent>>,
    ) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Entry>();
        let task = tokio::spawn(
            async move {
                while let Some(entry) = rx.recv().await {
                    match audit.log(session_id, &entry).await {
                        Ok(stored) => {
                            if let Some(tx) = &events {
                                let _ = tx.send(AgentEvent::Step {
                                    session_id,
                                    entry: stored,
                                });
                            }
                        }
                        Err(e) => warn!(error = %e, "cannot write to the audit"),
                    }
                }
            }
            .in_current_span(),
        );
        Self { tx, task }
    }

    fn send(&self, mut entry: Entry) {
        entry.at.get_or_insert_with(clock::now);
        let _ = self.tx.send(entry);
    }

    /// Waits until every step sent is written.
    async fn flush(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

/// Runs one session on an incident this agent has claimed, until it ends or `stop`.
pub async fn run(
    deps: &Deps,
    s: &Settings,
    subject: &mut dyn Subject,
    claimed: Claimed,
    stop: &CancellationToken,
) -> Outcome {
    let ticket = claimed.lead().clone();
    let incident = claimed.incident.id;
    let span = info_span!("agent_session", incident, ticket = ticket.id, agent = %s.agent_id);
    async move {
        let count = claimed.tickets.len();
        let lease = Lease::keep(deps.store.clone(), claimed.clone(), &s.agent_id, s.lease);
        let session_id = match deps
            .audit
            .start(NewSession {
                ticket_id: ticket.id,
                incident_id: incident,
                agent_id: s.agent_id.clone(),
                backend: deps.model.backend().to_string(),
                model: deps.model.model().to_string(),
                mode: s.mode.as_str().to_string(),
                variant: s.variant.clone(),
            })
            .await
        {
            Ok(id) => id,
            Err(e) => {
                let why = format!("cannot write the audit: {e}");
                give_back(deps, s, incident, &why).await;
                return Outcome::GaveBack(why);
            }
        };
        let audit = AuditWriter::spawn(deps.audit.clone(), session_id, deps.events.clone());
        if let Some(tx) = &deps.events {
            let _ = tx.send(AgentEvent::Started {
                session_id,
                ticket: Box::new(ticket.clone()),
                incident_id: incident,
                tickets: count,
            });
        }
        let context = match subject.context() {
            Ok(c) => c,
            Err(e) => {
                let why = format!("cannot describe the subject: {e}");
                let run = Run::bare(
                    deps,
                    s,
                    subject,
                    (ticket, incident),
                    session_id,
                    audit,
                    lease,
                );
                return run.finish(Outcome::GaveBack(why)).await;
            }
        };
        let system = prompt::system(
            &s.system_prompt,
            s.mode,
            &deps.executor.describe(),
            &context,
        );
        let conv = Conversation {
            system,
            tools: tools::definitions(&s.tools),
            messages: vec![Message::User(vec![UserBlock::Text {
                text: prompt::incident_message(&claimed),
            }])],
        };
        let mut run = Run {
            deps,
            s,
            subject,
            ticket,
            incident,
            session_id,
            audit,
            lease,
            conv,
            facts: context.facts,
            usage: Usage::default(),
            turns: 0,
            started: Instant::now(),
        };
        let outcome = tokio::select! {
            o = run.turns() => o,
            _ = stop.cancelled() => Outcome::Stopped,
        };
        run.finish(outcome).await
    }
    .instrument(span)
    .await
}

async fn give_back(deps: &Deps, s: &Settings, incident: i64, why: &str) {
    let (agent, why, attempts) = (s.agent_id.clone(), why.to_string(), s.budgets.attempts);
    if let Err(e) = deps
        .store
        .call(move |db| db.give_back(incident, &agent, &why, attempts))
        .await
    {
        warn!(incident, error = %e, "could not give the incident back");
    }
}

impl<'a> Run<'a> {
    fn bare(
        deps: &'a Deps,
        s: &'a Settings,
        subject: &'a mut dyn Subject,
        (ticket, incident): (Ticket, i64),
        session_id: i64,
        audit: AuditWriter,
        lease: Lease,
    ) -> Self {
        Self {
            deps,
            s,
            subject,
            ticket,
            incident,
            session_id,
            audit,
            lease,
            conv: Conversation {
                system: String::new(),
                tools: Vec::new(),
                messages: Vec::new(),
            },
            facts: serde_json::Value::Null,
            usage: Usage::default(),
            turns: 0,
            started: Instant::now(),
        }
    }

    fn log(&self, entry: Entry) {
        self.audit.send(entry);
    }

    fn note(&self, kind: Kind, text: impl Into<String>) {
        self.log(Entry::new(kind, text));
    }

    fn cost(&self) -> Option<f64> {
        super::cost::estimate(self.deps.model.model(), &self.usage, &self.s.prices)
    }

    /// Which budget is spent, if any.
    fn over_budget(&self) -> Option<String> {
        let b = &self.s.budgets;
        if self.turns >= b.turns {
            return Some(format!("turn budget spent ({} turns)", b.turns));
        }
        if self.started.elapsed() >= b.wall_clock {
            return Some(format!(
                "time budget spent ({})",
                humantime::format_duration(b.wall_clock)
            ));
        }
        let used = self.usage.input_tokens + self.usage.output_tokens;
        if used >= b.tokens {
            return Some(format!("token budget spent ({used} of {})", b.tokens));
        }
        None
    }

    async fn turns(&mut self) -> Outcome {
        let mut nudges = 0;
        loop {
            if let Some(why) = self.over_budget() {
                return self.escalate(&why).await;
            }
            if self.lease.is_lost() {
                return Outcome::Interrupted(
                    "this agent no longer holds the incident (its lease was lost)".into(),
                );
            }
            self.deliver_guidance().await;
            self.turns += 1;
            let (tx, mut rx) = mpsc::unbounded_channel();
            let forward = self.deps.events.clone().map(|events| {
                let session_id = self.session_id;
                tokio::spawn(async move {
                    while let Some(event) = rx.recv().await {
                        let _ = events.send(AgentEvent::Model { session_id, event });
                    }
                })
            });
            let claimed = self.lease.claimed();
            let req = TurnRequest {
                conversation: &self.conv,
                incident: &claimed,
                facts: &self.facts,
            };
            let result = self.deps.model.turn(&req, &tx).await;
            drop(tx);
            if let Some(f) = forward {
                let _ = f.await;
            }
            let turn = match result {
                Ok(t) => t,
                Err(e) => return self.fail(&format!("the model failed: {e}")).await,
            };
            self.usage.add(turn.usage);
            self.record_blocks(&turn.blocks);
            let calls = turn.tool_calls();
            match &turn.stop_reason {
                StopReason::Refusal => {
                    self.conv.messages.push(Message::Assistant(turn.blocks));
                    return self.escalate("the model refused to continue").await;
                }
                StopReason::ContextWindowExceeded => {
                    return self
                        .escalate("the conversation outgrew the model's context window")
                        .await;
                }
                StopReason::PauseTurn => {
                    self.note(Kind::Note, "the API paused the turn; continuing it");
                    self.conv.messages.push(Message::Assistant(turn.blocks));
                    continue;
                }
                StopReason::Other(r) => {
                    return self
                        .fail(&format!(
                            "the model stopped for a reason this build does not know: {r}"
                        ))
                        .await;
                }
                _ => {}
            }
            if turn.blocks.is_empty() {
                return self.fail("the model returned an empty answer").await;
            }
            self.conv
                .messages
                .push(Message::Assistant(turn.blocks.clone()));
            if calls.is_empty() {
                nudges += 1;
                if nudges > MAX_NUDGES {
                    return self
                        .fail("the model kept answering without using a tool")
                        .await;
                }
                let text = if turn.stop_reason == StopReason::MaxTokens {
                    "Your answer was cut off at the token limit. Be brief: one tool call at a time."
                } else {
                    "Use a tool: investigate with `shell` or `observe`, and finish with `resolve` (the monitor will verify) or `escalate`."
                };
                self.note(Kind::Note, format!("nudged the model: {text}"));
                self.conv
                    .messages
                    .push(Message::User(vec![UserBlock::Text { text: text.into() }]));
                continue;
            }
            nudges = 0;
            let mut results = Vec::with_capacity(calls.len());
            let mut ended = None;
            for call in &calls {
                if ended.is_some() {
                    results.push(tool_result(
                        call,
                        "not run: the session ended with an earlier tool call",
                        true,
                    ));
                    continue;
                }
                match self.call(call).await {
                    Ok((content, is_error, step)) => {
                        results.push(tool_result(call, &content, is_error));
                        if let Step::End(o) = step {
                            ended = Some(o);
                        }
                    }
                    Err(outcome) => return outcome,
                }
            }
            self.conv.messages.push(Message::User(results));
            if let Some(o) = ended {
                return o;
            }
        }
    }

    /// Text and thinking, one audit entry per block.
    fn record_blocks(&self, blocks: &[AssistantBlock]) {
        for b in blocks {
            match b {
                AssistantBlock::Text { text } if !text.trim().is_empty() => {
                    self.note(Kind::Text, text.clone())
                }
                AssistantBlock::Thinking { thinking, .. } if !thinking.trim().is_empty() => {
                    self.note(Kind::Thinking, thinking.clone())
                }
                _ => {}
            }
        }
    }

    async fn deliver_guidance(&mut self) {
        let Some(rx) = &self.deps.guidance else {
            return;
        };
        let mut texts = Vec::new();
        {
            let mut rx = rx.lock().await;
            while let Ok(g) = rx.try_recv() {
                texts.push(g);
            }
        }
        for g in texts {
            self.note(Kind::Guidance, g.clone());
            let text = format!("Guidance from the person watching: {g}");
            match self.conv.messages.last_mut() {
                Some(Message::User(blocks)) => blocks.push(UserBlock::Text { text }),
                _ => self
                    .conv
                    .messages
                    .push(Message::User(vec![UserBlock::Text { text }])),
            }
        }
    }

    /// Runs one tool call: `Ok((content, is_error, step))`, or the session's end.
    async fn call(&mut self, call: &ToolCall) -> Result<(String, bool, Step), Outcome> {
        let tool = match tools::parse(call, &self.s.tools) {
            Ok(t) => t,
            Err(CallError::Unknown(name)) => {
                return Err(self
                    .fail(&format!(
                        "the model called `{name}`, a tool it was not offered"
                    ))
                    .await);
            }
            Err(CallError::BadInput(why)) => {
                self.log(Entry {
                    tool: Some(call.name.clone()),
                    tool_use_id: Some(call.id.clone()),
                    detail: call.input.clone(),
                    ..Entry::new(Kind::ToolCall, why.clone())
                });
                return Ok((why, true, Step::Continue));
            }
        };
        let base = Entry {
            tool: Some(call.name.clone()),
            tool_use_id: Some(call.id.clone()),
            detail: call.input.clone(),
            ..Entry::default()
        };
        match tool {
            Tool::Shell { command, reasoning } => Ok(self.shell(base, command, reasoning).await),
            Tool::Observe { wait_seconds } => {
                self.log(Entry {
                    kind: Some(Kind::ToolCall),
                    ..base.clone()
                });
                if wait_seconds > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(wait_seconds)).await;
                }
                let content = self.observe().await;
                self.log(Entry {
                    kind: Some(Kind::ToolResult),
                    content: content.clone(),
                    ..base
                });
                Ok((content, false, Step::Continue))
            }
            Tool::Resolve { summary } => {
                self.log(Entry {
                    kind: Some(Kind::ToolCall),
                    content: summary.clone(),
                    ..base.clone()
                });
                Ok(self.resolve(base, &summary).await)
            }
            Tool::Escalate { reason } => {
                self.log(Entry {
                    kind: Some(Kind::ToolCall),
                    content: reason.clone(),
                    ..base
                });
                Err(self.escalate(&reason).await)
            }
        }
    }

    async fn shell(
        &mut self,
        base: Entry,
        command: String,
        reasoning: String,
    ) -> (String, bool, Step) {
        let verdict = self.deps.policy.lock().await.classify(&command);
        self.log(Entry {
            kind: Some(Kind::ToolCall),
            content: reasoning.clone(),
            command: Some(command.clone()),
            policy: Some(verdict.class.as_str().into()),
            ..base.clone()
        });
        let decision = |d: &str, actor: &str, why: String| Entry {
            kind: Some(Kind::Approval),
            content: why,
            command: Some(command.clone()),
            policy: Some(verdict.class.as_str().into()),
            decision: Some(d.into()),
            actor: Some(actor.into()),
            ..base.clone()
        };
        let mut to_run = command.clone();
        // The class the command runs at: what it may change through the operator's verbs.
        let mut grant = verdict.class;
        let mut note = String::new();
        match gate(self.s.mode, &verdict) {
            Gate::Run => {
                let by = if verdict.allowed && verdict.class > Class::ReadOnly {
                    "allow rule"
                } else {
                    "policy"
                };
                self.log(decision("run", by, verdict.reason()));
            }
            Gate::Refuse(why) => {
                self.log(decision("refused", "policy", why.clone()));
                return (why, true, Step::Continue);
            }
            Gate::Ask(why) => {
                self.log(decision("ask", "policy", why.clone()));
                let req = ApprovalRequest {
                    session_id: self.session_id,
                    ticket_id: self.ticket.id,
                    command: command.clone(),
                    reasoning: reasoning.clone(),
                    class: verdict.class,
                    why,
                };
                // A person has what is left of the session's time to answer, and only while
                // this agent still holds the ticket.
                let left = self
                    .s
                    .budgets
                    .wall_clock
                    .saturating_sub(self.started.elapsed());
                let answer = tokio::select! {
                    a = tokio::time::timeout(left, self.deps.approver.decide(&req)) => a,
                    _ = self.lease.lost() => {
                        let why = "this agent lost the ticket while the command waited for a person; it was not run";
                        self.log(decision("expired", "agent", why.into()));
                        return (why.into(), true, Step::End(Outcome::Interrupted(why.into())));
                    }
                };
                let Ok(answer) = answer else {
                    let why = format!(
                        "nobody answered within the session's time budget ({}); the command was not run and a person decides",
                        humantime::format_duration(self.s.budgets.wall_clock)
                    );
                    self.log(decision("expired", "agent", why.clone()));
                    let outcome = self.escalate(&why).await;
                    return (why, true, Step::End(outcome));
                };
                match answer.decision {
                    Decision::Approve => {
                        self.log(decision("approved", &answer.by, "approved".into()))
                    }
                    Decision::Veto { reason } => {
                        self.log(decision("vetoed", &answer.by, reason.clone()));
                        return (
                            format!("vetoed by {}: {reason}", answer.by),
                            true,
                            Step::Continue,
                        );
                    }
                    Decision::Edit { command: edited } => {
                        let v = self.deps.policy.lock().await.classify(&edited);
                        if v.class == Class::Denied {
                            self.log(decision(
                                "refused",
                                "policy",
                                format!("the edited command is denied: {}", v.reason()),
                            ));
                            return (
                                format!(
                                    "a person edited your command to `{edited}`, which the policy denies: {}",
                                    v.reason()
                                ),
                                true,
                                Step::Continue,
                            );
                        }
                        // Audited as what it is: the edited command's own class.
                        self.log(Entry {
                            command: Some(edited.clone()),
                            policy: Some(v.class.as_str().into()),
                            ..decision("edited", &answer.by, format!("edited to: {edited}"))
                        });
                        note = format!(
                            "A person ({}) edited your command; ran `{edited}` instead.\n",
                            answer.by
                        );
                        grant = v.class;
                        to_run = edited;
                    }
                    Decision::AlwaysAllow { prefix } => {
                        self.deps.policy.lock().await.allow_prefix(&prefix);
                        if let Err(e) = (self.deps.keep_allowed)(&prefix) {
                            self.note(
                                Kind::Error,
                                format!("could not keep the allow rule `{prefix}`: {e}"),
                            );
                        }
                        self.log(decision(
                            "allowed_always",
                            &answer.by,
                            format!("always allow `{prefix}`"),
                        ));
                    }
                }
            }
        }
        // Only for a ticket this agent holds now: an approval can outlast a lease.
        if let Err(why) = self.lease.confirm().await {
            let why = format!("not run: {why}");
            self.log(decision("expired", "agent", why.clone()));
            return (why.clone(), true, Step::End(Outcome::Interrupted(why)));
        }
        let timeout = self.s.budgets.command_timeout;
        let unsandboxed = self.deps.executor.unsandboxed();
        match self.deps.executor.run(&to_run, timeout, grant).await {
            Ok(out) => {
                self.log(Entry {
                    kind: Some(Kind::ToolResult),
                    content: out.for_model(),
                    command: Some(to_run.clone()),
                    exit_code: out.exit_code,
                    duration_ms: Some(out.duration_ms as i64),
                    detail: json!({ "timed_out": out.timed_out, "omitted_bytes": out.omitted_bytes, "signal": out.signal, "unsandboxed": unsandboxed }),
                    ..base
                });
                let text = format!(
                    "{note}{}",
                    prompt::untrusted("command output", &out.for_model())
                );
                (
                    self.deps.audit.redactor().redact(&text),
                    !out.success(),
                    Step::Continue,
                )
            }
            Err(e) => {
                let why = e.to_string();
                self.log(Entry {
                    kind: Some(Kind::ToolResult),
                    content: why.clone(),
                    command: Some(to_run),
                    ..base
                });
                (why, true, Step::Continue)
            }
        }
    }

    /// A fresh observation, and whether each ticket's violation of the incident is in it.
    async fn observe(&mut self) -> String {
        let snap = self.subject.observe().await;
        let claimed = self.lease.claimed();
        let a = &snap.assessment;
        let tickets: Vec<_> = claimed
            .active()
            .map(|t| {
                let present = if a.is_unknown(&t.invariant, &t.entity) {
                    serde_json::Value::Null
                } else {
                    json!(
                        a.violations
                            .iter()
                            .any(|v| v.invariant == t.invariant && v.entity == t.entity)
                    )
                };
                json!({
                    "id": t.id, "invariant": t.invariant, "entity": t.entity,
                    "root": t.root, "violation_present": present,
                })
            })
            .collect();
        let presence: Vec<Option<bool>> = tickets
            .iter()
            .map(|t| t["violation_present"].as_bool())
            .collect();
        // Gone only when every ticket's violation is known to be gone.
        let all_gone = if presence.contains(&Some(true)) {
            json!(false)
        } else if presence.contains(&None) {
            serde_json::Value::Null
        } else {
            json!(true)
        };
        let nodes: Vec<_> = snap
            .observation
            .nodes
            .iter()
            .map(
                |n| json!({ "name": n.name, "role": n.role, "state": n.state, "detail": n.detail }),
            )
            .collect();
        let all: Vec<_> = a
            .violations
            .iter()
            .map(|v| json!({ "invariant": v.invariant, "entity": v.entity, "summary": v.summary }))
            .collect();
        let v = json!({
            "incident": claimed.incident.id,
            "all_gone": all_gone,
            "tickets": tickets,
            "observation_error": snap.observation.error,
            "nodes": nodes,
            "violations": all,
        });
        serde_json::to_string_pretty(&v).unwrap_or_default()
    }

    /// The agent says the incident is fixed: every ticket goes to verifying, and the session
    /// waits for the monitor's verdict on each.
    async fn resolve(&mut self, base: Entry, summary: &str) -> (String, bool, Step) {
        let id = self.incident;
        let agent = self.s.agent_id.clone();
        let session = self.session_id;
        let (a, text) = (agent.clone(), summary.to_string());
        if let Err(e) = self
            .deps
            .store
            .call(move |db| db.mark_verifying(id, &a, session, &text))
            .await
        {
            let why = format!("cannot mark the incident as verifying: {e}");
            return (why, true, Step::Continue);
        }
        let since: Timestamp = clock::now();
        let deadline = Instant::now() + self.s.verify_window;
        let verdict = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let c = match self.deps.store.call(move |db| db.incident(id)).await {
                Ok(c) => c,
                Err(e) => break Err(format!("cannot read the incident: {e}")),
            };
            if c.incident.status == Status::Resolved {
                break Ok(c);
            }
            let still = c
                .tickets
                .iter()
                .find(|t| t.status == Status::Verifying && t.last_seen_at > since);
            let joined = c
                .tickets
                .iter()
                .find(|t| matches!(t.status, Status::Open | Status::InProgress));
            if let Some(t) = still {
                break Err(format!(
                    "the monitor still sees {} on {}: {}",
                    t.invariant, t.entity, t.summary
                ));
            }
            if let Some(t) = joined {
                break Err(format!(
                    "ticket #{} ({} on {}) joined the incident meanwhile: {}",
                    t.id, t.invariant, t.entity, t.summary
                ));
            }
            match c.incident.status {
                Status::Verifying if Instant::now() >= deadline => {
                    break Err(format!(
                        "the monitor did not confirm the fix within {} (is a monitor running?)",
                        humantime::format_duration(self.s.verify_window)
                    ));
                }
                Status::Verifying => {}
                other => break Err(format!("the incident became {other} meanwhile")),
            }
        };
        match verdict {
            Ok(c) => {
                let how: Vec<String> = c
                    .tickets
                    .iter()
                    .map(|t| match t.resolution {
                        Some(r) => format!("#{} resolved ({})", t.id, r.as_str()),
                        None => format!("#{} resolved", t.id),
                    })
                    .collect();
                self.log(Entry {
                    kind: Some(Kind::Verify),
                    content: format!(
                        "the monitor saw every violation of incident #{id} gone: {}",
                        how.join(", ")
                    ),
                    ..base
                });
                (
                    "The monitor confirmed the fix; every ticket of the incident is resolved."
                        .into(),
                    false,
                    Step::End(Outcome::Resolved),
                )
            }
            Err(why) => {
                self.log(Entry {
                    kind: Some(Kind::Verify),
                    content: why.clone(),
                    ..base
                });
                let status = self.deps.store.call(move |db| db.incident(id)).await;
                match status.map(|c| c.incident.status) {
                    Ok(Status::Verifying | Status::InProgress) => {
                        let (a, w) = (agent.clone(), why.clone());
                        let failed = self
                            .deps
                            .store
                            .call(move |db| db.verify_failed(id, &a, &w))
                            .await;
                        if let Err(e) = failed {
                            return (
                                e.to_string(),
                                true,
                                Step::End(Outcome::Interrupted(e.to_string())),
                            );
                        }
                        (
                            format!("Not resolved: {why}. Keep working, or escalate."),
                            true,
                            Step::Continue,
                        )
                    }
                    _ => (why.clone(), true, Step::End(Outcome::Interrupted(why))),
                }
            }
        }
    }

    async fn escalate(&mut self, reason: &str) -> Outcome {
        let actor = format!("agent:{}", self.s.agent_id);
        let (id, why) = (self.incident, reason.to_string());
        match self
            .deps
            .store
            .call(move |db| db.escalate(id, &actor, &why))
            .await
        {
            Ok(_) => Outcome::Escalated(reason.to_string()),
            Err(e) => Outcome::Interrupted(format!("could not escalate ({reason}): {e}")),
        }
    }

    async fn fail(&mut self, why: &str) -> Outcome {
        self.note(Kind::Error, why);
        give_back(self.deps, self.s, self.incident, why).await;
        Outcome::GaveBack(why.to_string())
    }

    async fn finish(self, outcome: Outcome) -> Outcome {
        if let Outcome::GaveBack(why) = &outcome {
            // `fail` gave it back already unless the session never started talking.
            if self.turns == 0 {
                self.note(Kind::Error, why.clone());
                give_back(self.deps, self.s, self.incident, why).await;
            }
        }
        if outcome == Outcome::Stopped {
            // Let go at once: another agent may claim it now, not when the lease runs out.
            self.note(
                Kind::Note,
                "the agent was stopped; it let go of the incident",
            );
            let (id, agent) = (self.incident, self.s.agent_id.clone());
            let released = self
                .deps
                .store
                .call(move |db| db.release(id, &agent, "the agent was stopped"))
                .await;
            if let Err(e) = released {
                warn!(incident = id, error = %e, "could not release the incident");
            }
        }
        let cost = self.cost();
        drop(self.lease);
        let ending = Ending {
            outcome: outcome.label().to_string(),
            summary: outcome.reason().map(str::to_string),
            turns: self.turns,
            tokens: self.usage.into(),
            cost_usd: cost.unwrap_or(0.0),
            error: match &outcome {
                Outcome::GaveBack(r) | Outcome::Interrupted(r) => Some(r.clone()),
                _ => None,
            },
        };
        self.audit.flush().await;
        if let Err(e) = self.deps.audit.end(self.session_id, ending).await {
            warn!(error = %e, "cannot close the session in the audit");
        }
        info!(
            outcome = outcome.label(),
            turns = self.turns,
            "session ended"
        );
        if let Some(tx) = &self.deps.events {
            let _ = tx.send(AgentEvent::Ended {
                session_id: self.session_id,
                ticket_id: self.ticket.id,
                outcome: outcome.clone(),
                usage: self.usage,
                cost_usd: cost,
            });
        }
        outcome
    }
}

fn tool_result(call: &ToolCall, content: &str, is_error: bool) -> UserBlock {
    UserBlock::ToolResult {
        tool_use_id: call.id.clone(),
        content: content.to_string(),
        is_error,
    }
}
