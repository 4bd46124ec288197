//! The fault catalogue.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// SIGKILL (or `docker kill`): the node stays dead until someone starts it.
    NodeKill,
    /// SIGSTOP (or `docker pause`): the node holds its connections but answers nothing.
    Pause,
}

impl FaultKind {
    pub const ALL: [FaultKind; 2] = [Self::NodeKill, Self::Pause];
    pub const NAMES: &'static [&'static str] = &["node_kill", "pause"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NodeKill => "node_kill",
            Self::Pause => "pause",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn description(self) -> &'static str {
        match self {
            Self::NodeKill => "kill a node; heal starts it again",
            Self::Pause => {
                "freeze a node (it accepts connections but answers nothing); heal resumes it"
            }
        }
    }

    /// What heal does, in words for the ledger.
    pub fn heal_action(self) -> &'static str {
        match self {
            Self::NodeKill => "start",
            Self::Pause => "resume",
        }
    }
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_kinds() {
        for (k, n) in FaultKind::ALL.iter().zip(FaultKind::NAMES) {
            assert_eq!(k.as_str(), *n);
            assert_eq!(FaultKind::parse(n), Some(*k));
        }
        assert_eq!(FaultKind::parse("meltdown"), None);
    }
}
