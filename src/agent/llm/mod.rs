//! One model interface, three backends: a conversation plus tool definitions in, a stream of
//! events out (text, thinking, tool calls, usage, stop reason), and the finished turn.
//!
//! Everything downstream — the session loop, the audit, the TUI — sees the same events
//! whether Claude, a local model, or the offline runbook produced them.

pub mod anthropic;
pub mod openai;
pub mod retry;
pub mod runbook;
mod sse;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use crate::tickets::Claimed;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDef {
    pub name: String,
    pub description: String,
    /// JSON Schema of the input object.
    pub input_schema: Value,
}

/// What the user side of the conversation says: text, or the results of tool calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum UserBlock {
    Text {
        text: String,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        is_error: bool,
    },
}

/// What the model said, block by block, kept exactly so it can be sent back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AssistantBlock {
    Text {
        text: String,
    },
    /// Reasoning, with the signature the API needs to accept it back.
    Thinking {
        thinking: String,
        signature: String,
    },
    /// Reasoning the API chose to hide; sent back as it came.
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", content = "content", rename_all = "snake_case")]
pub enum Message {
    User(Vec<UserBlock>),
    Assistant(Vec<AssistantBlock>),
}

/// Everything a backend needs for one turn.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub system: String,
    pub tools: Vec<ToolDef>,
    pub messages: Vec<Message>,
}

/// Tokens spent by one turn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
    }

    pub fn add(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }
}

/// The store keeps a session's tokens in its own row type.
impl From<Usage> for crate::store::audit::Tokens {
    fn from(u: Usage) -> Self {
        Self {
            input: u.input_tokens,
            output: u.output_tokens,
            cache_read: u.cache_read_input_tokens,
            cache_write: u.cache_creation_input_tokens,
        }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    StopSequence,
    /// The API paused a long turn; send it back as is to continue.
    PauseTurn,
    Refusal,
    ContextWindowExceeded,
    /// A reason this build does not know, kept verbatim.
    Other(String),
}

impl StopReason {
    pub fn parse(s: &str) -> Self {
        match s {
            "end_turn" => Self::EndTurn,
            "tool_use" => Self::ToolUse,
            "max_tokens" => Self::MaxTokens,
            "stop_sequence" => Self::StopSequence,
            "pause_turn" => Self::PauseTurn,
            "refusal" => Self::Refusal,
            "model_context_window_exceeded" => Self::ContextWindowExceeded,
            other => Self::Other(other.to_string()),
        }
    }
}

/// A tool call whose input has been parsed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub input: Value,
}

/// What streams out of a backend while a turn is produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ModelEvent {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    ToolCall(ToolCall),
    /// Cumulative for the turn so far.
    Usage(Usage),
    /// A transient failure; the backend tries again.
    Retrying {
        attempt: u32,
        reason: String,
    },
    Stop(StopReason),
}

/// One finished turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub blocks: Vec<AssistantBlock>,
    pub stop_reason: StopReason,
    pub usage: Usage,
}

impl Turn {
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        self.blocks
            .iter()
            .filter_map(|b| match b {
                AssistantBlock::ToolUse { id, name, input } => Some(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("{variable} is not set: the {backend} backend needs an API key in it")]
    MissingKey {
        backend: &'static str,
        variable: String,
    },
    #[error("cannot reach the model API at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the model API answered {status}: {message}")]
    Http { status: u16, message: String },
    #[error("the model API reported an error in the stream ({kind}): {message}")]
    Stream { kind: String, message: String },
    #[error("the model API sent something we cannot read: {0}")]
    Protocol(String),
    #[error("the model's answer stopped before it was complete: {0}")]
    Truncated(String),
    #[error("{0}")]
    Runbook(String),
}

/// What a model is working on, for backends that need more than the conversation (the
/// runbook reads the incident's tickets).
pub struct TurnRequest<'a> {
    pub conversation: &'a Conversation,
    /// The incident and its tickets, roots first, as of this turn.
    pub incident: &'a Claimed,
    /// Facts the prompt's templates may use: addresses, ports.
    pub facts: &'a Value,
}

#[async_trait]
pub trait Model: Send + Sync {
    /// `anthropic`, `openai` or `runbook`.
    fn backend(&self) -> &'static str;
    fn model(&self) -> &str;
    /// Produces one turn, sending events as they come.
    async fn turn(
        &self,
        req: &TurnRequest<'_>,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<Turn, ModelError>;
}
