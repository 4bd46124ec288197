//! An agent session as the Agent tab shows it, built from audit entries (the same ones,
//! whether the agent runs in this process or in another one) and live text as it streams.

use crate::agent::audit::{Entry, Kind, Session};
use crate::policy::Class;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardStatus {
    /// Waiting for the policy.
    Proposed,
    /// Waiting for a person.
    Asked,
    /// Approved (by the policy, an allow rule or a person) and running.
    Running {
        by: String,
    },
    Done,
    Vetoed {
        by: String,
        reason: String,
    },
    Refused {
        reason: String,
    },
}

/// A tool call and what became of it.
#[derive(Debug, Clone)]
pub struct ToolCard {
    pub tool_use_id: String,
    pub tool: String,
    pub command: Option<String>,
    /// A person's edit of the command, which ran instead.
    pub edited: Option<String>,
    pub reasoning: String,
    pub class: Option<Class>,
    pub status: CardStatus,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<i64>,
    pub output: String,
    pub expanded: bool,
}

#[derive(Debug, Clone)]
pub enum Item {
    Text(String),
    Thinking(String),
    Tool(ToolCard),
    Note { kind: Kind, text: String },
}

#[derive(Debug, Clone)]
pub struct SessionView {
    pub id: i64,
    /// The lead ticket of the incident it works.
    pub ticket_id: i64,
    pub incident_id: Option<i64>,
    pub label: String,
    pub outcome: Option<String>,
    pub reason: Option<String>,
    pub tokens: u64,
    pub cost_usd: Option<f64>,
    pub items: Vec<Item>,
    /// Text streaming in, not yet a finished block.
    pub streaming: String,
    pub streaming_thinking: String,
    /// The agent runs in this process: its steps arrive as events, not from the DB.
    pub live: bool,
    /// The last audit entry applied.
    pub last_seq: i64,
}

impl SessionView {
    pub fn new(id: i64, ticket_id: i64, label: String, live: bool) -> Self {
        Self {
            id,
            ticket_id,
            incident_id: None,
            label,
            outcome: None,
            reason: None,
            tokens: 0,
            cost_usd: None,
            items: Vec::new(),
            streaming: String::new(),
            streaming_thinking: String::new(),
            live,
            last_seq: 0,
        }
    }

    pub fn from_session(s: &Session, live: bool) -> Self {
        let mut v = Self::new(
            s.id,
            s.ticket_id,
            format!("{} {}", s.backend, s.model),
            live,
        );
        v.incident_id = s.incident_id;
        v.outcome = s.outcome.clone();
        v.reason = s.summary.clone();
        v.tokens = (s.input_tokens + s.output_tokens).max(0) as u64;
        v.cost_usd = Some(s.cost_usd);
        v
    }

    fn card(&mut self, id: &Option<String>) -> Option<&mut ToolCard> {
        let id = id.as_deref()?;
        self.items.iter_mut().rev().find_map(|i| match i {
            Item::Tool(c) if c.tool_use_id == id => Some(c),
            _ => None,
        })
    }

    /// Applies one audit entry (in order; entries already applied are skipped).
    pub fn apply(&mut self, e: &Entry) {
        if e.seq != 0 && e.seq <= self.last_seq {
            return;
        }
        self.last_seq = self.last_seq.max(e.seq);
        let kind = e.kind.unwrap_or(Kind::Note);
        match kind {
            Kind::Text => {
                self.streaming.clear();
                self.items.push(Item::Text(e.content.clone()));
            }
            Kind::Thinking => {
                self.streaming_thinking.clear();
                self.items.push(Item::Thinking(e.content.clone()));
            }
            Kind::ToolCall => {
                // A call whose input did not fit the tool comes as a note of its own.
                let tool = e.tool.clone().unwrap_or_default();
                self.items.push(Item::Tool(ToolCard {
                    tool_use_id: e.tool_use_id.clone().unwrap_or_default(),
                    tool,
                    command: e.command.clone(),
                    edited: None,
                    reasoning: e.content.clone(),
                    class: e.policy.as_deref().and_then(Class::parse),
                    status: CardStatus::Proposed,
                    exit_code: None,
                    duration_ms: None,
                    output: String::new(),
                    expanded: false,
                }));
            }
            Kind::Approval => {
                let by = e.actor.clone().unwrap_or_default();
                let decision = e.decision.clone().unwrap_or_default();
                let content = e.content.clone();
                let command = e.command.clone();
                if let Some(c) = self.card(&e.tool_use_id) {
                    c.status = match decision.as_str() {
                        "ask" => CardStatus::Asked,
                        "vetoed" => CardStatus::Vetoed {
                            by,
                            reason: content,
                        },
                        "refused" => CardStatus::Refused { reason: content },
                        "edited" => {
                            c.edited = command;
                            CardStatus::Running { by }
                        }
                        _ => CardStatus::Running { by },
                    };
                }
            }
            Kind::ToolResult => {
                let (out, exit, dur) = (e.content.clone(), e.exit_code, e.duration_ms);
                if let Some(c) = self.card(&e.tool_use_id) {
                    c.output = out;
                    c.exit_code = exit;
                    c.duration_ms = dur;
                    c.status = CardStatus::Done;
                }
            }
            other => self.items.push(Item::Note {
                kind: other,
                text: e.content.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, kind: Kind, content: &str) -> Entry {
        Entry {
            seq,
            tool_use_id: Some("t1".into()),
            ..Entry::new(kind, content)
        }
    }

    #[test]
    fn a_tool_card_follows_its_call_decision_and_result() {
        let mut v = SessionView::new(1, 2, "runbook".into(), false);
        v.apply(&entry(1, Kind::Text, "looking"));
        v.apply(&Entry {
            command: Some("operator node kill x".into()),
            policy: Some("destructive".into()),
            tool: Some("shell".into()),
            ..entry(2, Kind::ToolCall, "why")
        });
        v.apply(&Entry {
            decision: Some("ask".into()),
            ..entry(3, Kind::Approval, "destructive")
        });
        let card = |v: &SessionView| match &v.items[1] {
            Item::Tool(c) => c.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(card(&v).status, CardStatus::Asked);
        assert_eq!(card(&v).class, Some(Class::Destructive));
        v.apply(&Entry {
            decision: Some("vetoed".into()),
            actor: Some("person:ann".into()),
            ..entry(4, Kind::Approval, "no")
        });
        assert_eq!(
            card(&v).status,
            CardStatus::Vetoed {
                by: "person:ann".into(),
                reason: "no".into()
            }
        );
        // An entry seen twice (from the DB and live) is applied once.
        v.apply(&entry(4, Kind::Text, "again"));
        assert_eq!(v.items.len(), 2);
    }
}
