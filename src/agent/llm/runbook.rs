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
use crate::tickets::{Claimed, Ticket};

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
/// between looks: a node just started needs a moment to listen, and a member added again
/// copies the leader's data first. Ten seconds in all, the monitor's verify window.
const SETTLE_LOOKS: usize = 5;
const SETTLE_WAIT_SECONDS: u64 = 2;

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

    /// One ticket's steps (say, run), placeholders filled, and how many of them diagnose;
    /// `None` when the runbook has no recipe for its invariant.
    fn steps(&self, t: &Ticket, f: &Value) -> Option<(usize, Vec<(String, String)>)> {
        let recipe = self.book.recipes.get(&t.invariant)?;
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

    /// The incident's plan: each open ticket's recipe, roots first, a step whose command an
    /// earlier ticket's recipe already holds left out (a member that one ticket starts is
    /// not started again for the quorum it brings back).
    fn plan(&self, req: &TurnRequest) -> Result<Plan, String> {
        let mut plan = Plan::default();
        for t in &req.incident.tickets {
            if let Some((diagnose, steps)) = self.steps(t, req.facts) {
                plan.diagnoses
                    .extend(steps.into_iter().take(diagnose).map(|(_, run)| run));
            }
        }
        for t in req.incident.active() {
            let Some((diagnose, steps)) = self.steps(t, req.facts) else {
                return Err(format!(
                    "the runbook has no recipe for {}; a person needs to look at {}",
                    t.invariant, t.entity
                ));
            };
            for (i, (say, run)) in steps.into_iter().enumerate() {
                if plan.steps.iter().any(|(_, r)| *r == run) {
                    continue;
                }
                if i >= diagnose {
                    plan.repairs.push(run.clone());
                }
                plan.steps.push((say, run));
            }
        }
        Ok(plan)
    }

    fn next(&self, req: &TurnRequest) -> Next {
        let what = describe(req.incident);
        let plan = match self.plan(req) {
            Ok(p) => p,
            Err(why) => return Next::Escalate(why),
        };
        let msgs = &req.conversation.messages;
        let calls: Vec<(&str, &Value)> = msgs
            .iter()
            .filter_map(|m| match m {
                Message::Assistant(blocks) => Some(blocks),
                _ => None,
            })
            .flatten()
            .filter_map(|b| match b {
                AssistantBlock::ToolUse { name, input, .. } => Some((name.as_str(), input)),
                _ => None,
            })
            .collect();
        // Steps already done (by this recipe or another's) are not run again.
        let ran = |run: &str| {
            calls
                .iter()
                .any(|(name, input)| *name == SHELL && input["command"].as_str() == Some(run))
        };
        if let Some((say, run)) = plan.steps.iter().find(|(_, run)| !ran(run)) {
            return Next::Shell(say.clone(), run.clone());
        }
        // What this session repaired: the plan's repairs, and any other command it ran that
        // diagnoses nothing. A repair changes the tickets' details (a member added again is
        // then `not_started`), so the plan of now may no longer hold the steps that ran.
        let mut repaired: Vec<&str> = plan.repairs.iter().map(String::as_str).collect();
        for (name, input) in &calls {
            let Some(run) = input["command"].as_str() else {
                continue;
            };
            if *name == SHELL
                && !plan.diagnoses.iter().any(|d| d == run)
                && !repaired.contains(&run)
            {
                repaired.push(run);
            }
        }
        let last_call = calls.last().map(|(name, _)| *name);
        match last_call {
            None | Some(SHELL) => {
                return Next::Observe(
                    "Now check, as the monitor does, whether every violation of the incident is gone."
                        .into(),
                    0,
                );
            }
            // The monitor was told it is fixed and did not see it so: a person's turn.
            Some(RESOLVE) => {
                return Next::Escalate(format!(
                    "the monitor did not confirm the runbook's fix for {what}"
                ));
            }
            _ => {}
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
            .and_then(|v| v["all_gone"].as_bool());
        let looks = calls
            .iter()
            .rev()
            .take_while(|(name, _)| *name == OBSERVE)
            .count();
        match gone {
            Some(true) => Next::Resolve(if repaired.is_empty() {
                format!("{what}: gone; no repair was needed.")
            } else {
                format!(
                    "{what}: ran `{}`; every violation is gone.",
                    repaired.join("`, `")
                )
            }),
            _ if !repaired.is_empty() && looks < SETTLE_LOOKS => Next::Observe(
                format!(
                    "Not all gone yet; what was repaired may still be coming up. Look again in {SETTLE_WAIT_SECONDS}s."
                ),
                SETTLE_WAIT_SECONDS,
            ),
            _ => Next::Escalate(format!(
                "the runbook's steps did not clear {what}; a person needs to look"
            )),
        }
    }
}

/// The incident's plan, in order.
#[derive(Default)]
struct Plan {
    steps: Vec<(String, String)>,
    /// The commands of its repair steps.
    repairs: Vec<String>,
    /// The commands of every ticket's diagnosis, a cleared ticket's too: what ran and is not
    /// one of these repaired something.
    diagnoses: Vec<String>,
}

/// `member_down on etcd-1, member_down on etcd-2, quorum_lost on cluster`.
fn describe(incident: &Claimed) -> String {
    incident
        .active()
        .map(|t| format!("{} on {}", t.invariant, t.entity))
        .collect::<Vec<_>>()
        .join(", ")
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

    /// A conversation of `history`: each entry one turn, the tool called with its input,
    /// and what came back.
    fn conversation(history: &[(&str, Value, &str)]) -> Conversation {
        let mut messages = vec![Message::User(vec![UserBlock::Text { text: "t".into() }])];
        for (i, (tool, input, result)) in history.iter().enumerate() {
            messages.push(Message::Assistant(vec![AssistantBlock::ToolUse {
                id: format!("t{i}"),
                name: (*tool).into(),
                input: input.clone(),
            }]));
            messages.push(Message::User(vec![UserBlock::ToolResult {
                tool_use_id: format!("t{i}"),
                content: (*result).into(),
                is_error: false,
            }]));
        }
        Conversation {
            system: String::new(),
            tools: vec![],
            messages,
        }
    }

    /// A turn of a test conversation: the tool, its input, what came back.
    type Turned = (&'static str, Value, &'static str);

    /// Runs the runbook's shell steps for `incident` until it asks for something else:
    /// the commands it ran, the history, and what it asked.
    fn run_steps(
        model: &RunbookModel,
        incident: &Claimed,
        facts: &Value,
        mut history: Vec<Turned>,
    ) -> (Vec<String>, Vec<Turned>, Next) {
        let mut ran = Vec::new();
        loop {
            let conversation = conversation(&history);
            let next = model.next(&TurnRequest {
                conversation: &conversation,
                incident,
                facts,
            });
            match next {
                Next::Shell(_, run) => {
                    history.push((SHELL, json!({ "command": run }), "exit code 0"));
                    ran.push(run);
                    assert!(ran.len() < 50, "the runbook loops: {ran:?}");
                }
                other => return (ran, history, other),
            }
        }
    }

    #[test]
    fn a_repaired_node_gets_a_few_looks_before_the_runbook_gives_up() {
        let model = RunbookModel::new(builtin("ratelimiter").unwrap());
        let incident = crate::tui::fixtures::incident(
            crate::tui::fixtures::ticket(1, "ratelimiter-2", crate::tickets::Status::InProgress),
            vec![],
        );
        let facts = json!({"commands": {"status": "docker ps -a", "logs": "docker logs --tail 20", "start": "docker start"}});
        let present = r#"{"all_gone": false}"#;
        let gone = r#"{"all_gone": true}"#;
        let (ran, steps, next) = run_steps(&model, &incident, &facts, vec![]);
        assert_eq!(
            ran.first().map(String::as_str),
            Some("docker ps -a"),
            "diagnosis first"
        );
        assert_eq!(
            ran.last().map(String::as_str),
            Some("docker start ratelimiter-2"),
            "then the repair, with the runtime's own command"
        );
        assert!(matches!(next, Next::Observe(_, 0)));
        let next = |h: &[(&str, Value, &str)]| {
            model.next(&TurnRequest {
                conversation: &conversation(h),
                incident: &incident,
                facts: &facts,
            })
        };
        let mut h = steps.clone();
        h.push((OBSERVE, json!({}), present));
        assert!(
            matches!(next(&h), Next::Observe(_, SETTLE_WAIT_SECONDS)),
            "still starting: look again"
        );
        h.push((OBSERVE, json!({}), gone));
        assert!(matches!(next(&h), Next::Resolve(_)));
        let mut h = steps.clone();
        h.extend(std::iter::repeat_n(
            (OBSERVE, json!({}), present),
            SETTLE_LOOKS,
        ));
        assert!(matches!(next(&h), Next::Escalate(_)), "then a person");
        let mut h = steps.clone();
        h.extend([
            (OBSERVE, json!({}), gone),
            (RESOLVE, json!({}), "the monitor still sees it"),
        ]);
        match next(&h) {
            Next::Escalate(why) => assert!(why.contains("did not confirm"), "{why}"),
            _ => panic!("a rejected resolve goes to a person"),
        }
    }

    #[test]
    fn an_incident_runs_each_tickets_recipe_roots_first_and_each_step_once() {
        use crate::tickets::Status::InProgress;
        let model = RunbookModel::new(builtin("etcd").unwrap());
        let member = |id, entity: &str| {
            let mut t = crate::tui::fixtures::ticket(id, entity, InProgress);
            t.invariant = "member_down".into();
            t.incident_id = Some(1);
            t
        };
        let mut quorum = crate::tui::fixtures::ticket(3, "cluster", InProgress);
        quorum.invariant = "quorum_lost".into();
        quorum.root = false;
        quorum.incident_id = Some(1);
        quorum.detail = json!({"first_down": "etcd-1"});
        let incident =
            crate::tui::fixtures::incident(member(1, "etcd-1"), vec![member(2, "etcd-2"), quorum]);
        let facts = json!({
            "runtime": "local",
            "etcdctl": "etcdctl --endpoints=E",
            "commands": {"status": "operator status", "logs": "operator node logs", "start": "operator node start"},
        });
        let (ran, _, next) = run_steps(&model, &incident, &facts, vec![]);
        let starts: Vec<&str> = ran
            .iter()
            .map(String::as_str)
            .filter(|r| r.starts_with("operator node start"))
            .collect();
        assert_eq!(
            starts,
            ["operator node start etcd-1", "operator node start etcd-2"],
            "each member started once, though the quorum's recipe starts etcd-1 too: {ran:?}"
        );
        let mut sorted = ran.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ran.len(), "no step twice: {ran:?}");
        assert!(
            ran.iter().position(|r| r.contains("endpoint status"))
                > ran.iter().position(|r| r == "operator node start etcd-2"),
            "the consequence's steps after the roots': {ran:?}"
        );
        assert!(matches!(next, Next::Observe(_, 0)));
        // A step done already (a member the session just started) is not run again when a
        // ticket that holds it joins later.
        let first = crate::tui::fixtures::incident(member(1, "etcd-1"), vec![]);
        let (ran_first, history, _) = run_steps(&model, &first, &facts, vec![]);
        assert!(ran_first.contains(&"operator node start etcd-1".to_string()));
        let (ran_after, _, _) = run_steps(&model, &incident, &facts, history);
        assert!(
            !ran_after.contains(&"operator node start etcd-1".to_string()),
            "{ran_after:?}"
        );
        assert!(ran_after.contains(&"operator node start etcd-2".to_string()));
    }

    /// etcd-2 removed from a cluster on Docker: its ticket, and the subject's facts.
    fn removed_member_on_docker() -> (Ticket, Value) {
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
        (ticket, facts)
    }

    #[test]
    fn a_fact_kept_per_node_is_the_tickets_entitys_own() {
        let model = RunbookModel::new(builtin("etcd").unwrap());
        let (ticket, facts) = removed_member_on_docker();
        let plan = model
            .plan(&TurnRequest {
                conversation: &conversation(&[]),
                incident: &crate::tui::fixtures::incident(ticket, vec![]),
                facts: &facts,
            })
            .unwrap();
        let runs: Vec<&str> = plan.steps.iter().map(|(_, run)| run.as_str()).collect();
        assert!(
            runs.contains(
                &"etcdctl --endpoints=E member add etcd-2 --peer-urls=http://faultproxy:12382"
            ),
            "{runs:?}"
        );
    }

    /// A repair that changes the ticket's detail (a member added again is `not_started`
    /// until it joins) leaves the plan of now without the steps that ran: the runbook still
    /// gives the member its looks, and names what it ran, instead of handing over at once.
    #[test]
    fn a_repair_that_changes_the_tickets_detail_still_gets_its_looks() {
        let model = RunbookModel::new(builtin("etcd").unwrap());
        let (mut ticket, facts) = removed_member_on_docker();
        let removed = crate::tui::fixtures::incident(ticket.clone(), vec![]);
        let (ran, mut h, _) = run_steps(&model, &removed, &facts, vec![]);
        assert_eq!(
            ran.last().map(String::as_str),
            Some("docker start etcd-2"),
            "{ran:?}"
        );
        h.push((OBSERVE, json!({}), r#"{"all_gone": false}"#));
        for problem in ["not_started", "something_else"] {
            ticket.detail = json!({ "problem": problem });
            let joining = crate::tui::fixtures::incident(ticket.clone(), vec![]);
            let next = |h: &[Turned]| {
                model.next(&TurnRequest {
                    conversation: &conversation(h),
                    incident: &joining,
                    facts: &facts,
                })
            };
            assert!(
                matches!(next(&h), Next::Observe(_, SETTLE_WAIT_SECONDS)),
                "{problem}: look again"
            );
            let mut done = h.clone();
            done.push((OBSERVE, json!({}), r#"{"all_gone": true}"#));
            match next(&done) {
                Next::Resolve(why) => assert!(
                    why.contains("member add etcd-2") && why.contains("docker start etcd-2"),
                    "{why}"
                ),
                _ => panic!("{problem}: resolved once gone"),
            }
        }
    }
}
