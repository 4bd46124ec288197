//! The runbook "model": offline and deterministic. Recipes per invariant (diagnose, repair,
//! then observe) become reasoning text and tool calls through the same event stream as a
//! real model, so everything downstream treats it like one. It is the default without an
//! API key and the baseline for evaluation.

use std::collections::BTreeMap;
use std::path::Path;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::{
    AssistantBlock, Message, Model, ModelError, ModelEvent, StopReason, ToolCall, Turn,
    TurnRequest, Usage, UserBlock,
};
use crate::agent::tools::{ESCALATE, OBSERVE, RESOLVE, SHELL};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Only when the ticket's detail has these values (e.g. `state: down`), or else the
    /// subject's facts (e.g. `runtime: docker`).
    #[serde(default)]
    pub when: BTreeMap<String, String>,
    pub say: String,
    pub run: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub diagnose: Vec<Step>,
    #[serde(default)]
    pub repair: Vec<Step>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub subject: String,
    pub recipes: BTreeMap<String, Recipe>,
}

impl Runbook {
    pub fn parse(text: &str, origin: &str) -> Result<Self, ModelError> {
        serde_norway::from_str(text)
            .map_err(|e| ModelError::Runbook(format!("runbook {origin} is invalid: {e}")))
    }

    /// `<dir>/<subject>.yaml` if a folder is given, else the subject's built-in runbook
    /// (`builtin`, its YAML).
    pub fn load(subject: &str, builtin: &str, dir: Option<&Path>) -> Result<Self, ModelError> {
        if let Some(dir) = dir {
            let path = dir.join(format!("{subject}.yaml"));
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ModelError::Runbook(format!("cannot read runbook {}: {e}", path.display()))
            })?;
            return Self::parse(&text, &path.display().to_string());
        }
        Self::parse(builtin, &format!("assets/runbooks/{subject}.yaml"))
    }
}

/// What a runbook turn does next.
enum Next {
    Shell(String, String),
    /// What to say, and how long to wait before looking.
    Observe(String, u64),
    Resolve(String),
    Escalate(String),
}

/// How often the runbook looks after a repair before it gives up, and how long it waits
/// between looks: a node just started needs a moment to listen.
const SETTLE_LOOKS: usize = 3;
const SETTLE_WAIT_SECONDS: u64 = 1;

pub struct RunbookModel {
    book: Runbook,
}

impl RunbookModel {
    pub fn new(book: Runbook) -> Self {
        Self { book }
    }

    fn fill(template: &str, vars: &BTreeMap<String, String>) -> String {
        vars.iter().fold(template.to_string(), |s, (k, v)| {
            s.replace(&format!("{{{k}}}"), v)
        })
    }

    /// The steps for this ticket, placeholders filled.
    /// The steps for the ticket (say, run), and how many of them diagnose.
    fn plan(&self, req: &TurnRequest) -> Option<(usize, Vec<(String, String)>)> {
        let t = req.ticket;
        let recipe = self.book.recipes.get(&t.invariant)?;
        let f = req.facts;
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        // The ticket's entity and its detail's values (`{detail.revision}`), every named value
        // of the subject's context (addresses, ready-made client commands) and the entity's
        // own of those kept per node, then the runtime's own commands: `{start}`, `{logs}`, …
        let mut vars: BTreeMap<String, String> = [
            ("entity".to_string(), t.entity.clone()),
            ("entity_address".to_string(), s(&f["nodes"][&t.entity])),
        ]
        .into_iter()
        .collect();
        if let Some(detail) = t.detail.as_object() {
            for (k, v) in detail {
                let text = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                vars.insert(format!("detail.{k}"), text);
            }
        }
        if let Some(facts) = f.as_object() {
            for (k, v) in facts {
                if v.is_string() {
                    vars.insert(k.clone(), s(v));
                } else if let Some(mine) = v.get(&t.entity).filter(|m| m.is_string()) {
                    // A fact kept per node (`peer_urls`): the entity's, as `{peer_urls[entity]}`.
                    vars.insert(format!("{k}[entity]"), s(mine));
                }
            }
        }
        if let Some(cmds) = f["commands"].as_object() {
            for (k, v) in cmds {
                vars.insert(k.clone(), s(v));
            }
        }
        // A `when` key is the ticket's detail's, else a fact's (`runtime: docker`).
        let matches = |step: &&Step| {
            step.when.iter().all(|(k, v)| {
                t.detail
                    .get(k)
                    .or_else(|| f.get(k))
                    .and_then(Value::as_str)
                    .is_some_and(|d| d == v)
            })
        };
        let diagnose = recipe.diagnose.iter().filter(matches).count();
        Some((
            diagnose,
            recipe
                .diagnose
                .iter()
                .filter(matches)
                .chain(recipe.repair.iter().filter(matches))
                .map(|st| (Self::fill(&st.say, &vars), Self::fill(&st.run, &vars)))
                .collect(),
        ))
    }

    fn next(&self, req: &TurnRequest) -> Next {
        let t = req.ticket;
        let Some((diagnose, plan)) = self.plan(req) else {
            return Next::Escalate(format!(
                "the runbook has no recipe for {}; a person needs to look at {}",
                t.invariant, t.entity
            ));
        };
        let msgs = &req.conversation.messages;
        let turns_done = msgs
            .iter()
            .filter(|m| matches!(m, Message::Assistant(_)))
            .count();
        if let Some((say, run)) = plan.get(turns_done) {
            return Next::Shell(say.clone(), run.clone());
        }
        if turns_done == plan.len() {
            return Next::Observe(
                "Now check, as the monitor does, whether the violation is gone.".into(),
                0,
            );
        }
        let repaired: Vec<&str> = plan
            .iter()
            .skip(diagnose)
            .map(|(_, run)| run.as_str())
            .collect();
        // The monitor was told it is fixed and did not see it so: a person's turn.
        let last_call = msgs.iter().rev().find_map(|m| match m {
            Message::Assistant(blocks) => blocks.iter().find_map(|b| match b {
                AssistantBlock::ToolUse { name, .. } => Some(name.as_str()),
                _ => None,
            }),
            _ => None,
        });
        if last_call == Some(RESOLVE) {
            return Next::Escalate(format!(
                "the monitor did not confirm the runbook's fix for {} on {}",
                t.invariant, t.entity
            ));
        }
        // After observing: resolve if it held; look again while a repaired node may still be
        // starting; else hand over.
        let last = msgs.iter().rev().find_map(|m| match m {
            Message::User(blocks) => blocks.iter().find_map(|b| match b {
                UserBlock::ToolResult { content, .. } => Some(content.clone()),
                _ => None,
            }),
            _ => None,
        });
        let gone = last
            .as_deref()
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .and_then(|v| v["ticket_violation_present"].as_bool())
            .map(|present| !present);
        let looks = turns_done - plan.len();
        match gone {
            Some(true) => Next::Resolve(if repaired.is_empty() {
                format!(
                    "{} on {} is gone; no repair was needed.",
                    t.invariant, t.entity
                )
            } else {
                format!(
                    "{} on {}: ran `{}`; the violation is gone.",
                    t.invariant,
                    t.entity,
                    repaired.join("`, `")
                )
            }),
            _ if !repaired.is_empty() && looks < SETTLE_LOOKS => Next::Observe(
                format!(
                    "Not gone yet; {} may still be coming up. Look again in {SETTLE_WAIT_SECONDS}s.",
                    t.entity
                ),
                SETTLE_WAIT_SECONDS,
            ),
            _ => Next::Escalate(format!(
                "the runbook's steps for {} did not clear it on {}; a person needs to look",
                t.invariant, t.entity
            )),
        }
    }
}

#[async_trait]
impl Model for RunbookModel {
    fn backend(&self) -> &'static str {
        "runbook"
    }

    fn model(&self) -> &str {
        "runbook"
    }

    async fn turn(
        &self,
        req: &TurnRequest<'_>,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<Turn, ModelError> {
        let n = req
            .conversation
            .messages
            .iter()
            .filter(|m| matches!(m, Message::Assistant(_)))
            .count();
        let (text, name, input) = match self.next(req) {
            Next::Shell(say, run) => (
                say.clone(),
                SHELL,
                json!({ "command": run, "reasoning": say }),
            ),
            Next::Observe(say, wait) => (say, OBSERVE, json!({ "wait_seconds": wait })),
            Next::Resolve(summary) => (
                "The violation is gone; the monitor will confirm.".to_string(),
                RESOLVE,
                json!({ "summary": summary }),
            ),
            Next::Escalate(reason) => (reason.clone(), ESCALATE, json!({ "reason": reason })),
        };
        let call = ToolCall {
            id: format!("runbook_{n}"),
            name: name.into(),
            input: input.clone(),
        };
        let _ = events.send(ModelEvent::TextDelta { text: text.clone() });
        let _ = events.send(ModelEvent::ToolCall(call.clone()));
        let _ = events.send(ModelEvent::Stop(StopReason::ToolUse));
        Ok(Turn {
            blocks: vec![
                AssistantBlock::Text { text },
                AssistantBlock::ToolUse {
                    id: call.id,
                    name: call.name,
                    input,
                },
            ],
            stop_reason: StopReason::ToolUse,
            usage: Usage::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::llm::Conversation;

    /// The subject's built-in runbook.
    fn builtin(subject: &str) -> Result<Runbook, ModelError> {
        let kind = crate::subjects::registry::kind(subject).map_err(ModelError::Runbook)?;
        Runbook::load(subject, kind.runbook(), None)
    }

    #[test]
    fn the_builtin_runbook_covers_every_invariant() {
        let book = builtin("ratelimiter").unwrap();
        for inv in [
            "node_down",
            "node_degraded",
            "redis_down",
            "high_latency",
            "over_limit",
            "counter_drift",
            "registry_mismatch",
            "subject_unreachable",
        ] {
            assert!(book.recipes.contains_key(inv), "{inv}");
        }
        let empty = tempfile::tempdir().unwrap();
        assert!(Runbook::load("tikv", "", Some(empty.path())).is_err());
        assert!(Runbook::parse("subject: x\nrecipes: {a: {diagnose: [{say: s}]}}", "t").is_err());
    }

    /// The runbook's next step for a killed node after `history` (each entry one turn: the
    /// tool called, and what came back).
    fn after(history: &[(&str, &str)], facts: &Value) -> Next {
        let model = RunbookModel::new(builtin("ratelimiter").unwrap());
        let ticket =
            crate::tui::fixtures::ticket(1, "ratelimiter-2", crate::tickets::Status::InProgress);
        let mut messages = vec![Message::User(vec![UserBlock::Text { text: "t".into() }])];
        for (i, (tool, result)) in history.iter().enumerate() {
            messages.push(Message::Assistant(vec![AssistantBlock::ToolUse {
                id: format!("t{i}"),
                name: (*tool).into(),
                input: json!({}),
            }]));
            messages.push(Message::User(vec![UserBlock::ToolResult {
                tool_use_id: format!("t{i}"),
                content: (*result).into(),
                is_error: false,
            }]));
        }
        let conversation = Conversation {
            system: String::new(),
            tools: vec![],
            messages,
        };
        model.next(&TurnRequest {
            conversation: &conversation,
            ticket: &ticket,
            facts,
        })
    }

    #[test]
    fn a_repaired_node_gets_a_few_looks_before_the_runbook_gives_up() {
        let facts = json!({"commands": {"status": "docker ps -a", "logs": "docker logs --tail 20", "start": "docker start"}});
        let present = r#"{"ticket_violation_present": true}"#;
        let gone = r#"{"ticket_violation_present": false}"#;
        let steps = [(SHELL, "exit code 0"); 3];
        match after(&steps[..0], &facts) {
            Next::Shell(_, run) => assert_eq!(run, "docker ps -a"),
            _ => panic!("diagnosis first"),
        }
        match after(&steps[..2], &facts) {
            Next::Shell(_, run) => assert_eq!(
                run, "docker start ratelimiter-2",
                "the runtime's own command"
            ),
            _ => panic!("then the repair"),
        }
        assert!(matches!(after(&steps, &facts), Next::Observe(_, 0)));
        let mut h = steps.to_vec();
        h.push((OBSERVE, present));
        assert!(
            matches!(after(&h, &facts), Next::Observe(_, SETTLE_WAIT_SECONDS)),
            "still starting: look again"
        );
        h.push((OBSERVE, gone));
        assert!(matches!(after(&h, &facts), Next::Resolve(_)));
        let mut h = steps.to_vec();
        h.extend([(OBSERVE, present); SETTLE_LOOKS]);
        assert!(
            matches!(after(&h, &facts), Next::Escalate(_)),
            "then a person"
        );
        let mut h = steps.to_vec();
        h.extend([(OBSERVE, gone), (RESOLVE, "the monitor still sees it")]);
        match after(&h, &facts) {
            Next::Escalate(why) => assert!(why.contains("did not confirm"), "{why}"),
            _ => panic!("a rejected resolve goes to a person"),
        }
    }

    #[test]
    fn a_fact_kept_per_node_is_the_tickets_entitys_own() {
        let model = RunbookModel::new(builtin("etcd").unwrap());
        let mut ticket =
            crate::tui::fixtures::ticket(1, "etcd-2", crate::tickets::Status::InProgress);
        ticket.invariant = "membership_mismatch".into();
        ticket.detail = json!({"problem": "removed"});
        let facts = json!({
            "runtime": "docker",
            "etcdctl": "etcdctl --endpoints=E",
            "peer_urls": {"etcd-1": "http://faultproxy:12381", "etcd-2": "http://faultproxy:12382"},
            "commands": {"start": "docker start"},
        });
        let conversation = Conversation {
            system: String::new(),
            tools: vec![],
            messages: vec![],
        };
        let (_, steps) = model
            .plan(&TurnRequest {
                conversation: &conversation,
                ticket: &ticket,
                facts: &facts,
            })
            .unwrap();
        let runs: Vec<&str> = steps.iter().map(|(_, run)| run.as_str()).collect();
        assert!(
            runs.contains(
                &"etcdctl --endpoints=E member add etcd-2 --peer-urls=http://faultproxy:12382"
            ),
            "{runs:?}"
        );
    }
}
