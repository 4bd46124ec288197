//! The guided demo's state: seven steps from a healthy cluster to a verified repair. The
//! words of each step are the subject's ([`DemoScript`]); `update` moves through the steps
//! and `views::demo` shows what really happened in each.

use crate::chaos::FaultRecord;
use crate::clock::Timestamp;
use crate::subjects::DemoScript;
use crate::tickets::{Status, Ticket};

#[derive(Debug, Clone)]
pub struct Demo {
    /// The subject's words for each step, and the ticket its kill opens.
    pub script: &'static DemoScript,
    /// 0-based index into the script's steps.
    pub step: usize,
    pub fault: Option<FaultRecord>,
    /// The ticket's opening and resolution times, from its history.
    pub opened_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub runs: u32,
}

impl Demo {
    pub fn new(script: &'static DemoScript) -> Self {
        Self {
            script,
            step: 0,
            fault: None,
            opened_at: None,
            resolved_at: None,
            runs: 1,
        }
    }

    pub fn steps(&self) -> usize {
        self.script.steps.len()
    }

    pub fn finished(&self) -> bool {
        self.step + 1 == self.steps()
    }

    /// The first step again, for another run.
    pub fn again(&self) -> Self {
        Self {
            runs: self.runs + 1,
            ..Self::new(self.script)
        }
    }

    /// The demo's ticket: the one the kill opens on the killed node, active or resolved
    /// after the kill.
    pub fn ticket<'a>(&self, tickets: &'a [Ticket]) -> Option<&'a Ticket> {
        let f = self.fault.as_ref()?;
        tickets.iter().find(|t| {
            t.invariant == self.script.ticket
                && t.entity == f.target
                && (t.status != Status::Resolved
                    || t.resolved_at.is_some_and(|r| r >= f.injected_at))
        })
    }
}
