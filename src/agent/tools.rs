//! The tools the model is offered, and the parsing of its calls.

use serde_json::{Value, json};

use super::llm::{ToolCall, ToolDef};

pub const SHELL: &str = "shell";
pub const OBSERVE: &str = "observe";
pub const RESOLVE: &str = "resolve";
pub const ESCALATE: &str = "escalate";
pub const NAMES: &[&str] = &[SHELL, OBSERVE, RESOLVE, ESCALATE];
/// Checks `agent.tools`: each must be one of [`NAMES`].
pub fn check_config(config: &crate::config::Config) -> Result<(), crate::config::ConfigError> {
    match config
        .agent
        .tools
        .iter()
        .find(|t| !NAMES.contains(&t.as_str()))
    {
        Some(t) => Err(config.invalid(
            "agent.tools",
            format!("unknown tool `{t}`; tools: {}", NAMES.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The longest an observe call may wait before looking.
pub const MAX_OBSERVE_WAIT: u64 = 10;

/// A parsed tool call.
#[derive(Debug, Clone, PartialEq)]
pub enum Tool {
    Shell {
        command: String,
        reasoning: String,
    },
    /// After waiting `wait_seconds` (a node just started may need a moment).
    Observe {
        wait_seconds: u64,
    },
    Resolve {
        summary: String,
    },
    Escalate {
        reason: String,
    },
}

pub fn definitions(enabled: &[String]) -> Vec<ToolDef> {
    let all = [
        ToolDef {
            name: SHELL.into(),
            description: "Run one shell command against the cluster, where the system prompt \
                says commands run. Every command is checked by a policy first: read-only commands run, \
                others may need a person's approval or be refused, and the result says so. \
                Prefer the least invasive command that can work."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "command": { "type": "string", "description": "The command line to run." },
                    "reasoning": { "type": "string", "description": "Why this command, in one or two sentences; shown to the person watching." }
                },
                "required": ["command", "reasoning"]
            }),
        },
        ToolDef {
            name: OBSERVE.into(),
            description: "Observe the cluster now, exactly as the monitor does: every node's \
                state, every invariant that is violated, and whether this ticket's violation \
                is still present. Use it to verify a fix before resolving; a node that was just \
                started may need a moment, so you may wait up to 10 seconds first."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "wait_seconds": { "type": "integer", "minimum": 0, "maximum": MAX_OBSERVE_WAIT, "description": "Wait this long before looking (default 0)." }
                }
            }),
        },
        ToolDef {
            name: RESOLVE.into(),
            description: "Say the ticket is fixed. The ticket is resolved only when the monitor \
                sees the violation gone; if it does not, you are told and can keep working."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "summary": { "type": "string", "description": "What was wrong and what you did." }
                },
                "required": ["summary"]
            }),
        },
        ToolDef {
            name: ESCALATE.into(),
            description: "Hand the ticket to a person: when you cannot fix it safely, when the \
                fix needs a destructive step you were not allowed, or when you are unsure."
                .into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "reason": { "type": "string", "description": "Why, and what a person should look at." }
                },
                "required": ["reason"]
            }),
        },
    ];
    all.into_iter()
        .filter(|t| enabled.contains(&t.name))
        .collect()
}

/// What went wrong with a call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// A tool we did not offer: the session cannot trust what it is doing.
    Unknown(String),
    /// The input does not fit the tool: the model is told and may try again.
    BadInput(String),
}

fn text(input: &Value, key: &str) -> Option<String> {
    input
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn parse(call: &ToolCall, offered: &[String]) -> Result<Tool, CallError> {
    if !offered.contains(&call.name) {
        return Err(CallError::Unknown(call.name.clone()));
    }
    let input = &call.input;
    match call.name.as_str() {
        SHELL => {
            let command = text(input, "command").ok_or_else(|| {
                CallError::BadInput("the shell tool needs a non-empty `command`".into())
            })?;
            Ok(Tool::Shell {
                command,
                reasoning: text(input, "reasoning").unwrap_or_default(),
            })
        }
        OBSERVE => {
            let wait = input.get("wait_seconds").map_or(Ok(0), |w| {
                w.as_u64()
                    .filter(|w| *w <= MAX_OBSERVE_WAIT)
                    .ok_or_else(|| {
                        CallError::BadInput(format!(
                            "`wait_seconds` must be a whole number from 0 to {MAX_OBSERVE_WAIT}"
                        ))
                    })
            })?;
            Ok(Tool::Observe { wait_seconds: wait })
        }
        RESOLVE => Ok(Tool::Resolve {
            summary: text(input, "summary").unwrap_or_else(|| "(no summary)".into()),
        }),
        ESCALATE => Ok(Tool::Escalate {
            reason: text(input, "reason").unwrap_or_else(|| "(no reason given)".into()),
        }),
        other => Err(CallError::Unknown(other.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        NAMES.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_calls_and_refuses_unknown_tools() {
        let call = |name: &str, input: Value| ToolCall {
            id: "t1".into(),
            name: name.into(),
            input,
        };
        assert_eq!(
            parse(
                &call("shell", json!({"command": " ls ", "reasoning": "look"})),
                &all()
            ),
            Ok(Tool::Shell {
                command: "ls".into(),
                reasoning: "look".into()
            })
        );
        assert!(matches!(
            parse(&call("shell", json!({"reasoning": "x"})), &all()),
            Err(CallError::BadInput(_))
        ));
        assert_eq!(
            parse(&call("rm_everything", json!({})), &all()),
            Err(CallError::Unknown("rm_everything".into()))
        );
        let only_shell = vec!["shell".to_string()];
        assert!(matches!(
            parse(&call("resolve", json!({})), &only_shell),
            Err(CallError::Unknown(_))
        ));
        assert_eq!(definitions(&only_shell).len(), 1);
    }
}
