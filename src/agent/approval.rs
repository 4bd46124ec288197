//! A person's yes or no. The session asks through one trait; the terminal, the TUI and
//! "nobody is there" answer it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::policy::Class;

/// A command waiting for a person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequest {
    pub session_id: i64,
    pub ticket_id: i64,
    pub command: String,
    pub reasoning: String,
    pub class: Class,
    /// Why a person is asked.
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Approve,
    /// Sent back to the model with the reason.
    Veto {
        reason: String,
    },
    /// Run this command instead.
    Edit {
        command: String,
    },
    /// Run it, and never ask again for commands starting with these words.
    AlwaysAllow {
        prefix: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub decision: Decision,
    /// Who answered, e.g. `person:alice`.
    pub by: String,
}

#[async_trait]
pub trait Approver: Send + Sync {
    async fn decide(&self, req: &ApprovalRequest) -> Answer;
}

/// No one to ask (a daemon without a terminal): every question is answered no.
pub struct Nobody;

#[async_trait]
impl Approver for Nobody {
    async fn decide(&self, _req: &ApprovalRequest) -> Answer {
        Answer {
            decision: Decision::Veto {
                reason: "no person is available to approve it (run the agent on a terminal, or in the TUI); find a less invasive way or escalate".into(),
            },
            by: "nobody".into(),
        }
    }
}

/// A question and where to send the answer: how the TUI receives approvals.
pub type Question = (ApprovalRequest, oneshot::Sender<Answer>);

/// Forwards questions over a channel; a dropped answer is a veto.
pub struct ChannelApprover {
    tx: mpsc::Sender<Question>,
}

impl ChannelApprover {
    pub fn new(tx: mpsc::Sender<Question>) -> Self {
        Self { tx }
    }
}

#[async_trait]
impl Approver for ChannelApprover {
    async fn decide(&self, req: &ApprovalRequest) -> Answer {
        let (tx, rx) = oneshot::channel();
        let gone = Answer {
            decision: Decision::Veto {
                reason: "the person's screen went away before answering".into(),
            },
            by: "nobody".into(),
        };
        if self.tx.send((req.clone(), tx)).await.is_err() {
            return gone;
        }
        rx.await.unwrap_or(gone)
    }
}

/// Asks on the terminal: `y` approve, `n` veto (with a reason), `e` edit, `a` always allow.
///
/// One thread reads stdin for the whole process and hands lines over a channel: a question
/// the session stopped waiting for (its time ran out) leaves no read behind to swallow the
/// next answer, and lines typed before a question is shown are not taken as its answer.
pub struct Terminal {
    user: String,
    lines: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Terminal {
    pub fn new() -> Self {
        Self {
            user: std::env::var("USER").unwrap_or_else(|_| "someone".into()),
            lines: Mutex::new(None),
        }
    }
}

/// Reads stdin line by line on a thread of its own; the channel closes at end of input.
fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        loop {
            s.clear();
            match std::io::stdin().read_line(&mut s) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(s.trim().to_string()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Prints a prompt and takes the next line typed.
async fn read_line(lines: &mut mpsc::UnboundedReceiver<String>, prompt: &str) -> Option<String> {
    use std::io::Write;
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    lines.recv().await
}

/// Says so on the terminal when a question is dropped unanswered.
struct Unanswered(bool);

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.0 {
            eprintln!("\n  (no longer waiting: the command was not run)");
        }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Self::new()
    }
}

/// The first two words of a command: a sensible prefix to always allow.
pub fn default_prefix(command: &str) -> String {
    command
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[async_trait]
impl Approver for Terminal {
    async fn decide(&self, req: &ApprovalRequest) -> Answer {
        // One question at a time; the lock holds the lines.
        let mut guard = self.lines.lock().await;
        let lines = guard.get_or_insert_with(stdin_lines);
        // What was typed before this question was shown is not its answer.
        while lines.try_recv().is_ok() {}
        let mut unanswered = Unanswered(true);
        eprintln!(
            "\n── approval needed · ticket #{} · {} ──\n  command:   {}\n  reasoning: {}\n  why asked: {}",
            req.ticket_id, req.class, req.command, req.reasoning, req.why
        );
        let by = format!("person:{}", self.user);
        let veto = |reason: &str| Answer {
            decision: Decision::Veto {
                reason: reason.into(),
            },
            by: by.clone(),
        };
        loop {
            let Some(choice) = read_line(
                lines,
                "  [y] approve  [n] veto  [e] edit  [a] always allow a prefix > ",
            )
            .await
            else {
                unanswered.0 = false;
                return veto("no answer (the terminal closed)");
            };
            let decision = match choice.as_str() {
                "y" | "Y" | "yes" => Decision::Approve,
                "n" | "N" | "no" => {
                    let reason = read_line(lines, "  reason (sent to the model): ")
                        .await
                        .unwrap_or_default();
                    Decision::Veto {
                        reason: if reason.is_empty() {
                            "vetoed".into()
                        } else {
                            reason
                        },
                    }
                }
                "e" | "E" => match read_line(lines, "  command to run instead: ").await {
                    Some(c) if !c.is_empty() => Decision::Edit { command: c },
                    _ => continue,
                },
                "a" | "A" => {
                    let d = default_prefix(&req.command);
                    let p = read_line(lines, &format!("  prefix to always allow [{d}]: "))
                        .await
                        .unwrap_or_default();
                    Decision::AlwaysAllow {
                        prefix: if p.is_empty() { d } else { p },
                    }
                }
                _ => continue,
            };
            unanswered.0 = false;
            return Answer { decision, by };
        }
    }
}
