//! The Anthropic Messages API, streamed (server-sent events).
//!
//! Tool-input JSON arrives in fragments and is parsed when its block stops; usage in
//! `message_delta` is cumulative; an `error` event may arrive after HTTP 200. Transient
//! failures (connection, 429, 5xx, 529, an overloaded stream, a cut stream) are retried with
//! backoff; anything else is reported, never guessed around.

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, instrument};

use super::retry::{Failure, RetryPolicy, with_retries};
use super::{
    AssistantBlock, Conversation, Message, Model, ModelError, ModelEvent, StopReason, ToolCall,
    Turn, TurnRequest, Usage, UserBlock,
};

pub const API_VERSION: &str = "2023-06-01";
pub use crate::config::ANTHROPIC_BASE_URL as DEFAULT_BASE_URL;
/// The current Claude Sonnet model.
pub const DEFAULT_MODEL: &str = "claude-sonnet-5";
pub const KEY_VARIABLE: &str = "ANTHROPIC_API_KEY";

/// An API key that never prints itself.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

pub use crate::config::Thinking;

#[derive(Debug, Clone)]
pub struct AnthropicSettings {
    pub base_url: String,
    pub model: String,
    pub max_tokens: u32,
    pub thinking: Thinking,
    /// `low`, `medium`, `high`, … (`output_config.effort`); None leaves the API's default.
    pub effort: Option<String>,
    pub retry: RetryPolicy,
    /// The whole turn, streaming included, must finish within this.
    pub timeout: Duration,
}

pub struct Anthropic {
    http: reqwest::Client,
    key: ApiKey,
    settings: AnthropicSettings,
}

impl Anthropic {
    pub fn new(settings: AnthropicSettings, key: ApiKey) -> Self {
        crate::runtime::health::ensure_tls();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            http,
            key,
            settings,
        }
    }

    /// The key from `ANTHROPIC_API_KEY`, or a clear error naming the variable.
    pub fn key_from_env() -> Result<ApiKey, ModelError> {
        match std::env::var(KEY_VARIABLE) {
            Ok(k) if !k.trim().is_empty() => Ok(ApiKey::new(k.trim().to_string())),
            _ => Err(ModelError::MissingKey {
                backend: "anthropic",
                variable: KEY_VARIABLE.into(),
            }),
        }
    }

    fn url(&self) -> String {
        format!(
            "{}/v1/messages",
            self.settings.base_url.trim_end_matches('/')
        )
    }

    /// The request body: system prompt and tools marked for prompt caching.
    pub fn body(&self, conv: &Conversation) -> Value {
        request_body(conv, &self.settings)
    }
}

pub fn request_body(conv: &Conversation, s: &AnthropicSettings) -> Value {
    let cache = json!({ "type": "ephemeral" });
    let n = conv.tools.len();
    let tools: Vec<Value> = conv
        .tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = json!({
                "name": t.name,
                "description": t.description,
                "input_schema": t.input_schema,
            });
            if i + 1 == n {
                v["cache_control"] = cache.clone();
            }
            v
        })
        .collect();
    let messages: Vec<Value> = conv.messages.iter().map(message_json).collect();
    let mut body = json!({
        "model": s.model,
        "max_tokens": s.max_tokens,
        "stream": true,
        "system": [{ "type": "text", "text": conv.system, "cache_control": cache }],
        "messages": messages,
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    match s.thinking {
        Thinking::Adaptive => body["thinking"] = json!({ "type": "adaptive" }),
        Thinking::Disabled => body["thinking"] = json!({ "type": "disabled" }),
        Thinking::Default => {}
    }
    if let Some(effort) = &s.effort {
        body["output_config"] = json!({ "effort": effort });
    }
    body
}

fn message_json(m: &Message) -> Value {
    match m {
        Message::User(blocks) => json!({
            "role": "user",
            "content": blocks.iter().map(|b| match b {
                UserBlock::Text { text } => json!({ "type": "text", "text": text }),
                UserBlock::ToolResult { tool_use_id, content, is_error } => json!({
                    "type": "tool_result",
                    "tool_use_id": tool_use_id,
                    "content": content,
                    "is_error": is_error,
                }),
            }).collect::<Vec<_>>(),
        }),
        Message::Assistant(blocks) => json!({
            "role": "assistant",
            "content": blocks.iter().map(|b| match b {
                AssistantBlock::Text { text } => json!({ "type": "text", "text": text }),
                AssistantBlock::Thinking { thinking, signature } => json!({
                    "type": "thinking", "thinking": thinking, "signature": signature,
                }),
                AssistantBlock::RedactedThinking { data } => json!({
                    "type": "redacted_thinking", "data": data,
                }),
                AssistantBlock::ToolUse { id, name, input } => json!({
                    "type": "tool_use", "id": id, "name": name, "input": input,
                }),
            }).collect::<Vec<_>>(),
        }),
    }
}

/// A content block being streamed.
enum Building {
    Text(String),
    Thinking {
        text: String,
        signature: String,
    },
    Redacted(String),
    Tool {
        id: String,
        name: String,
        json: String,
    },
    /// A block type this build does not know: skipped.
    Unknown,
}

#[derive(Default)]
struct StreamState {
    blocks: Vec<(usize, Building)>,
    done: Vec<AssistantBlock>,
    usage: Usage,
    stop: Option<StopReason>,
    finished: bool,
}

fn u(v: &Value, k: &str) -> Option<u64> {
    v.get(k).and_then(Value::as_u64)
}

impl StreamState {
    fn usage_from(&mut self, v: &Value) {
        // Counts are cumulative: the latest value of each field wins.
        if let Some(n) = u(v, "input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = u(v, "output_tokens") {
            self.usage.output_tokens = n;
        }
        if let Some(n) = u(v, "cache_creation_input_tokens") {
            self.usage.cache_creation_input_tokens = n;
        }
        if let Some(n) = u(v, "cache_read_input_tokens") {
            self.usage.cache_read_input_tokens = n;
        }
    }

    fn block(&mut self, index: usize) -> Result<&mut Building, Failure> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
            .ok_or_else(|| {
                Failure::protocol(format!(
                    "a delta for content block {index}, which never started"
                ))
            })
    }

    /// Handles one event; `finished` is set at `message_stop`.
    fn on_event(
        &mut self,
        data: &Value,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<(), Failure> {
        let kind = data["type"].as_str().unwrap_or_default();
        match kind {
            "ping" => {}
            "message_start" => self.usage_from(&data["message"]["usage"]),
            "content_block_start" => {
                let index = u(data, "index")
                    .ok_or_else(|| Failure::protocol("content_block_start without an index"))?
                    as usize;
                let b = &data["content_block"];
                let building = match b["type"].as_str().unwrap_or_default() {
                    "text" => Building::Text(b["text"].as_str().unwrap_or_default().to_string()),
                    "thinking" => Building::Thinking {
                        text: b["thinking"].as_str().unwrap_or_default().to_string(),
                        signature: b["signature"].as_str().unwrap_or_default().to_string(),
                    },
                    "redacted_thinking" => {
                        Building::Redacted(b["data"].as_str().unwrap_or_default().to_string())
                    }
                    "tool_use" => Building::Tool {
                        id: b["id"].as_str().unwrap_or_default().to_string(),
                        name: b["name"].as_str().unwrap_or_default().to_string(),
                        json: String::new(),
                    },
                    other => {
                        debug!(
                            block = other,
                            "skipping a content block type this build does not know"
                        );
                        Building::Unknown
                    }
                };
                self.blocks.push((index, building));
            }
            "content_block_delta" => {
                let index = u(data, "index")
                    .ok_or_else(|| Failure::protocol("content_block_delta without an index"))?
                    as usize;
                let d = &data["delta"];
                let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
                match (self.block(index)?, d["type"].as_str().unwrap_or_default()) {
                    (Building::Text(t), "text_delta") => {
                        let s = text("text");
                        t.push_str(&s);
                        let _ = events.send(ModelEvent::TextDelta { text: s });
                    }
                    (Building::Thinking { text: t, .. }, "thinking_delta") => {
                        let s = text("thinking");
                        t.push_str(&s);
                        let _ = events.send(ModelEvent::ThinkingDelta { thinking: s });
                    }
                    (Building::Thinking { signature, .. }, "signature_delta") => {
                        signature.push_str(&text("signature"));
                    }
                    (Building::Tool { json, .. }, "input_json_delta") => {
                        json.push_str(&text("partial_json"));
                    }
                    (Building::Unknown, _) | (_, "citations_delta") => {}
                    (_, other) => {
                        return Err(Failure::protocol(format!(
                            "a {other} for content block {index}, which is not of that kind"
                        )));
                    }
                }
            }
            "content_block_stop" => {
                let index = u(data, "index")
                    .ok_or_else(|| Failure::protocol("content_block_stop without an index"))?
                    as usize;
                let pos = self
                    .blocks
                    .iter()
                    .position(|(i, _)| *i == index)
                    .ok_or_else(|| {
                        Failure::protocol(format!("content block {index} stopped without starting"))
                    })?;
                let (_, b) = self.blocks.remove(pos);
                match b {
                    Building::Text(text) => self.done.push(AssistantBlock::Text { text }),
                    Building::Thinking { text, signature } => {
                        self.done.push(AssistantBlock::Thinking {
                            thinking: text,
                            signature,
                        })
                    }
                    Building::Redacted(data) => {
                        self.done.push(AssistantBlock::RedactedThinking { data })
                    }
                    Building::Tool { id, name, json } => {
                        let input: Value = if json.trim().is_empty() {
                            json!({})
                        } else {
                            serde_json::from_str(&json).map_err(|e| {
                                Failure::protocol(format!(
                                    "the input of tool call {name} ({id}) is not valid JSON: {e}"
                                ))
                            })?
                        };
                        let _ = events.send(ModelEvent::ToolCall(ToolCall {
                            id: id.clone(),
                            name: name.clone(),
                            input: input.clone(),
                        }));
                        self.done.push(AssistantBlock::ToolUse { id, name, input });
                    }
                    Building::Unknown => {}
                }
            }
            "message_delta" => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    self.stop = Some(StopReason::parse(r));
                }
                self.usage_from(&data["usage"]);
                let _ = events.send(ModelEvent::Usage(self.usage));
            }
            "message_stop" => self.finished = true,
            "error" => {
                let e = &data["error"];
                let kind = e["type"].as_str().unwrap_or("error").to_string();
                let message = e["message"].as_str().unwrap_or_default().to_string();
                let error = ModelError::Stream {
                    kind: kind.clone(),
                    message,
                };
                return Err(match kind.as_str() {
                    "overloaded_error" | "api_error" | "rate_limit_error" => {
                        Failure::Retry { error, after: None }
                    }
                    _ => Failure::Fatal(error),
                });
            }
            other => debug!(
                event = other,
                "ignoring an event type this build does not know"
            ),
        }
        Ok(())
    }
}

impl Anthropic {
    async fn attempt(
        &self,
        body: &Value,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<Turn, Failure> {
        let url = self.url();
        let resp = self
            .http
            .post(&url)
            .header("x-api-key", self.key.expose())
            .header("anthropic-version", API_VERSION)
            .header("content-type", "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| Failure::connect(&url, &e))?;
        if resp.status().as_u16() != 200 {
            return Err(Failure::from_response(resp).await);
        }
        read_stream(resp.bytes_stream(), events).await
    }
}

/// Reads one streamed answer, whatever carries its bytes: the HTTP body, or a recording.
async fn read_stream<B, E>(
    bytes: impl futures::Stream<Item = Result<B, E>> + Unpin,
    events: &UnboundedSender<ModelEvent>,
) -> Result<Turn, Failure>
where
    B: AsRef<[u8]>,
    E: std::error::Error,
{
    let mut stream = super::sse::events(bytes);
    let mut state = StreamState::default();
    while let Some(item) = stream.next().await {
        let event = item?;
        let data: Value = serde_json::from_str(&event.data).map_err(|e| {
            Failure::protocol(format!(
                "malformed `{}` event: {e}: {}",
                event.event,
                event.data.chars().take(200).collect::<String>()
            ))
        })?;
        state.on_event(&data, events)?;
        if state.finished {
            break;
        }
    }
    if !state.finished {
        return Err(Failure::cut("the stream ended before message_stop"));
    }
    let stop = state
        .stop
        .ok_or_else(|| Failure::protocol("message_stop without a stop_reason"))?;
    if !state.blocks.is_empty() {
        return Err(Failure::protocol(
            "message_stop with content blocks still open",
        ));
    }
    let _ = events.send(ModelEvent::Stop(stop.clone()));
    Ok(Turn {
        blocks: state.done,
        stop_reason: stop,
        usage: state.usage,
    })
}

/// Decodes a recorded stream delivered in `chunks` (cut anywhere, as the network may), for
/// tests and fuzzing: the same code the live path runs.
pub fn decode_recorded(chunks: &[&[u8]]) -> Result<Turn, ModelError> {
    super::sse::decode_recorded(
        chunks,
        |bytes, tx| async move { read_stream(bytes, &tx).await },
    )
}

#[async_trait]
impl Model for Anthropic {
    fn backend(&self) -> &'static str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.settings.model
    }

    #[instrument(skip_all, fields(model = %self.settings.model))]
    async fn turn(
        &self,
        req: &TurnRequest<'_>,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<Turn, ModelError> {
        let body = self.body(req.conversation);
        with_retries(self.settings.retry, self.settings.timeout, events, || {
            self.attempt(&body, events)
        })
        .await
    }
}
