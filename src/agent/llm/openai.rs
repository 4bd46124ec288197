//! OpenAI-compatible Chat Completions, streamed: for local or self-hosted models (Ollama,
//! vLLM, llama.cpp server) behind a configurable base URL.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedSender;
use tracing::instrument;

use super::anthropic::ApiKey;
use super::retry::{Failure, RetryPolicy, with_retries};
use super::{
    AssistantBlock, Conversation, Message, Model, ModelError, ModelEvent, StopReason, ToolCall,
    Turn, TurnRequest, Usage, UserBlock,
};

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// E.g. `http://127.0.0.1:11434/v1` (Ollama); `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    pub max_tokens: u32,
    pub retry: RetryPolicy,
    pub timeout: Duration,
}

pub struct OpenAi {
    http: reqwest::Client,
    key: Option<ApiKey>,
    settings: OpenAiSettings,
}

impl OpenAi {
    /// `key` may be absent: local servers rarely want one.
    pub fn new(settings: OpenAiSettings, key: Option<ApiKey>) -> Self {
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

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.settings.base_url.trim_end_matches('/')
        )
    }
}

pub fn request_body(conv: &Conversation, s: &OpenAiSettings) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": conv.system })];
    for m in &conv.messages {
        match m {
            Message::User(blocks) => {
                // Tool results are messages of their own, in call order, before any text.
                for b in blocks {
                    if let UserBlock::ToolResult {
                        tool_use_id,
                        content,
                        is_error,
                    } = b
                    {
                        let content = if *is_error {
                            format!("ERROR: {content}")
                        } else {
                            content.clone()
                        };
                        messages.push(json!({ "role": "tool", "tool_call_id": tool_use_id, "content": content }));
                    }
                }
                let text: Vec<&str> = blocks
                    .iter()
                    .filter_map(|b| match b {
                        UserBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                if !text.is_empty() {
                    messages.push(json!({ "role": "user", "content": text.join("\n\n") }));
                }
            }
            Message::Assistant(blocks) => {
                let text: String = blocks
                    .iter()
                    .filter_map(|b| match b {
                        AssistantBlock::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                let calls: Vec<Value> = blocks
                    .iter()
                    .filter_map(|b| match b {
                        AssistantBlock::ToolUse { id, name, input } => Some(json!({
                            "id": id,
                            "type": "function",
                            "function": { "name": name, "arguments": input.to_string() },
                        })),
                        _ => None,
                    })
                    .collect();
                let mut msg = json!({ "role": "assistant", "content": text });
                if !calls.is_empty() {
                    msg["tool_calls"] = Value::Array(calls);
                }
                messages.push(msg);
            }
        }
    }
    let tools: Vec<Value> = conv
        .tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": { "name": t.name, "description": t.description, "parameters": t.input_schema },
            })
        })
        .collect();
    let mut body = json!({
        "model": s.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": s.max_tokens,
    });
    if !tools.is_empty() {
        body["tools"] = Value::Array(tools);
    }
    body
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl OpenAi {
    async fn attempt(
        &self,
        body: &Value,
        events: &UnboundedSender<ModelEvent>,
    ) -> Result<Turn, Failure> {
        let url = self.url();
        let mut req = self.http.post(&url).json(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose());
        }
        let resp = req.send().await.map_err(|e| Failure::connect(&url, &e))?;
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
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls: BTreeMap<u64, PartialCall> = BTreeMap::new();
    let mut finish: Option<String> = None;
    let mut usage = Usage::default();
    let mut done = false;
    while let Some(item) = stream.next().await {
        let event = item?;
        if event.data.trim() == "[DONE]" {
            done = true;
            break;
        }
        let chunk: Value = serde_json::from_str(&event.data).map_err(|e| {
            Failure::protocol(format!(
                "malformed chunk: {e}: {}",
                event.data.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(err) = chunk.get("error") {
            let message = err["message"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string();
            return Err(Failure::Fatal(ModelError::Stream {
                kind: err["type"].as_str().unwrap_or("error").to_string(),
                message,
            }));
        }
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            usage.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(0);
            usage.output_tokens = u["completion_tokens"].as_u64().unwrap_or(0);
            let _ = events.send(ModelEvent::Usage(usage));
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        let delta = &choice["delta"];
        if let Some(t) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            text.push_str(t);
            let _ = events.send(ModelEvent::TextDelta { text: t.into() });
        }
        let reasoning = delta["reasoning_content"]
            .as_str()
            .or_else(|| delta["reasoning"].as_str());
        if let Some(t) = reasoning.filter(|t| !t.is_empty()) {
            thinking.push_str(t);
            let _ = events.send(ModelEvent::ThinkingDelta { thinking: t.into() });
        }
        if let Some(tc) = delta["tool_calls"].as_array() {
            for c in tc {
                let index = c["index"].as_u64().unwrap_or(0);
                let p = calls.entry(index).or_default();
                if let Some(id) = c["id"].as_str() {
                    p.id = id.into();
                }
                if let Some(n) = c["function"]["name"].as_str() {
                    p.name.push_str(n);
                }
                if let Some(a) = c["function"]["arguments"].as_str() {
                    p.arguments.push_str(a);
                }
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    if !done {
        return Err(Failure::cut("the stream ended before [DONE]"));
    }
    let finish =
        finish.ok_or_else(|| Failure::protocol("the stream ended without a finish_reason"))?;
    let mut blocks = Vec::new();
    if !thinking.is_empty() {
        // Local models' reasoning has no signature; it is shown, never sent back.
        blocks.push(AssistantBlock::Thinking {
            thinking,
            signature: String::new(),
        });
    }
    if !text.is_empty() {
        blocks.push(AssistantBlock::Text { text });
    }
    for (i, c) in calls {
        let input: Value = if c.arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&c.arguments).map_err(|e| {
                Failure::protocol(format!(
                    "the arguments of tool call {} ({}) are not valid JSON: {e}",
                    c.name, c.id
                ))
            })?
        };
        let id = if c.id.is_empty() {
            format!("call_{i}")
        } else {
            c.id
        };
        let _ = events.send(ModelEvent::ToolCall(ToolCall {
            id: id.clone(),
            name: c.name.clone(),
            input: input.clone(),
        }));
        blocks.push(AssistantBlock::ToolUse {
            id,
            name: c.name,
            input,
        });
    }
    let stop = match finish.as_str() {
        "stop" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" => StopReason::MaxTokens,
        "content_filter" => StopReason::Refusal,
        other => StopReason::Other(other.to_string()),
    };
    let _ = events.send(ModelEvent::Stop(stop.clone()));
    Ok(Turn {
        blocks,
        stop_reason: stop,
        usage,
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
impl Model for OpenAi {
    fn backend(&self) -> &'static str {
        "openai"
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
        let body = request_body(req.conversation, &self.settings);
        with_retries(self.settings.retry, self.settings.timeout, events, || {
            self.attempt(&body, events)
        })
        .await
    }
}
