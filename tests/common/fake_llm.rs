//! A local server speaking the Anthropic Messages and OpenAI Chat Completions streaming
//! protocols from a script, byte for byte as documented, and recording every request.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A 200 event stream, sent in these chunks (split anywhere, even mid-event).
    Sse {
        chunks: Vec<String>,
        delay: Duration,
        /// Break the connection after the chunks instead of ending the body.
        abort: bool,
    },
    /// A plain answer: status, headers, body.
    Status {
        code: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Never answer (for timeouts and killed agents).
    Hang,
}

impl Reply {
    pub fn sse(events: &[String]) -> Self {
        Self::Sse {
            chunks: events.to_vec(),
            delay: Duration::ZERO,
            abort: false,
        }
    }

    /// The same stream cut into `n`-byte pieces.
    pub fn sse_split(events: &[String], n: usize) -> Self {
        let all: String = events.concat();
        let bytes = all.as_bytes();
        let chunks = bytes
            .chunks(n)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        Self::Sse {
            chunks,
            delay: Duration::from_millis(1),
            abort: false,
        }
    }

    pub fn status(code: u16, body: &str) -> Self {
        Self::Status {
            code,
            headers: vec![],
            body: body.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

#[derive(Clone, Default)]
struct Shared {
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

pub struct FakeLlm {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeLlm {
    pub async fn start(script: Vec<Reply>) -> Self {
        let shared = Shared::default();
        shared.script.lock().unwrap().extend(script);
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    pub fn push(&self, r: Reply) {
        self.shared.script.lock().unwrap().push_back(r);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn left(&self) -> usize {
        self.shared.script.lock().unwrap().len()
    }
}

async fn answer(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    shared.requests.lock().unwrap().push(Recorded {
        path: uri.path().to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = shared.script.lock().unwrap().pop_front();
    match next {
        None => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the fake model's script is exhausted",
        )
            .into_response(),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Reply::Status {
            code,
            headers,
            body,
        }) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), body).into_response();
            for (k, v) in headers {
                r.headers_mut().insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            r
        }
        Some(Reply::Sse {
            chunks,
            delay,
            abort,
        }) => {
            let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>))
                .then(move |c| async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    c.map(Bytes::from)
                })
                .chain(futures::stream::iter(abort.then(|| {
                    Err(std::io::Error::other("connection broken on purpose"))
                })));
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

/// One server-sent event, as the Messages API writes it.
pub fn ev(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Builds an Anthropic stream: blocks of text, thinking or tool calls, then the stop.
pub struct Msg {
    events: Vec<String>,
    index: usize,
}

impl Msg {
    pub fn new(input_tokens: u64) -> Self {
        let start = ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01", "type": "message", "role": "assistant",
                "content": [], "model": "claude-sonnet-5", "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        );
        Self {
            events: vec![start, ev("ping", json!({"type": "ping"}))],
            index: 0,
        }
    }

    pub fn text(mut self, parts: &[&str]) -> Self {
        let i = self.index;
        self.events.push(ev("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}})));
        for p in parts {
            self.events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "text_delta", "text": p}})));
        }
        self.events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
        self.index += 1;
        self
    }

    pub fn thinking(mut self, parts: &[&str], signature: &str) -> Self {
        let i = self.index;
        self.events.push(ev("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": {"type": "thinking", "thinking": ""}})));
        for p in parts {
            self.events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "thinking_delta", "thinking": p}})));
        }
        self.events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "signature_delta", "signature": signature}})));
        self.events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
        self.index += 1;
        self
    }

    /// A tool call whose input JSON arrives in these fragments.
    pub fn tool(mut self, id: &str, name: &str, fragments: &[&str]) -> Self {
        let i = self.index;
        self.events.push(ev("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}})));
        for f in fragments {
            self.events.push(ev("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": {"type": "input_json_delta", "partial_json": f}})));
        }
        self.events.push(ev(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": i}),
        ));
        self.index += 1;
        self
    }

    /// A tool call with a whole input object, split in two fragments.
    pub fn call(self, id: &str, name: &str, input: Value) -> Self {
        let s = input.to_string();
        let (a, b) = s.split_at(s.len() / 2);
        let (a, b) = (a.to_string(), b.to_string());
        self.tool(id, name, &[&a, &b])
    }

    pub fn raw(mut self, event: String) -> Self {
        self.events.push(event);
        self
    }

    pub fn stop(mut self, reason: &str, output_tokens: u64) -> Vec<String> {
        self.events.push(ev("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})));
        self.events
            .push(ev("message_stop", json!({"type": "message_stop"})));
        self.events
    }

    /// The events so far, without a stop (a cut stream).
    pub fn unfinished(self) -> Vec<String> {
        self.events
    }
}

/// An OpenAI Chat Completions chunk.
pub fn chunk(delta: Value, finish: Option<&str>) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama3.1",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    )
}

pub fn usage_chunk(prompt: u64, completion: u64) -> String {
    format!(
        "data: {}\n\n",
        json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "llama3.1",
               "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    )
}

pub fn done() -> String {
    "data: [DONE]\n\n".into()
}
