//! The OpenAI-compatible backend against a local server speaking Chat Completions streaming.

mod common;

use std::time::Duration;

use common::fake_llm::{FakeLlm, Reply, chunk, done, usage_chunk};
use operator::agent::llm::openai::{OpenAi, OpenAiSettings};
use operator::agent::llm::retry::RetryPolicy;
use operator::agent::llm::{
    AssistantBlock, Conversation, Message, Model, ModelError, StopReason, TurnRequest, UserBlock,
};
use operator::agent::tools;
use serde_json::{Value, json};
use tokio::sync::mpsc;

fn model(url: &str) -> OpenAi {
    OpenAi::new(
        OpenAiSettings {
            base_url: format!("{url}/v1"),
            model: "llama3.1".into(),
            max_tokens: 512,
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(20),
                cap: Duration::from_secs(2),
            },
            timeout: Duration::from_secs(10),
        },
        None,
    )
}

fn conversation() -> Conversation {
    let offered: Vec<String> = tools::NAMES.iter().map(|s| s.to_string()).collect();
    Conversation {
        system: "You are an SRE.".into(),
        tools: tools::definitions(&offered),
        messages: vec![Message::User(vec![UserBlock::Text {
            text: "Ticket #1".into(),
        }])],
    }
}

async fn turn(m: &OpenAi, conv: &Conversation) -> Result<operator::agent::llm::Turn, ModelError> {
    let (tx, _rx) = mpsc::unbounded_channel();
    let now = operator::clock::now();
    let t = operator::tickets::Ticket {
        id: 1,
        violation_key: "k".into(),
        subject: "ratelimiter".into(),
        instance: 0,
        invariant: "node_down".into(),
        entity: "n".into(),
        severity: operator::invariant::Severity::Critical,
        status: operator::tickets::Status::InProgress,
        held: false,
        summary: "s".into(),
        detail: json!({}),
        occurrences: 1,
        observations: 1,
        opened_at: now,
        last_seen_at: now,
        cleared_at: None,
        resolved_at: None,
        resolution: None,
        claimed_by: None,
        lease_expires_at: None,
        attempts: 1,
        updated_at: now,
        incident_id: Some(1),
        root: true,
    };
    m.turn(
        &TurnRequest {
            conversation: conv,
            incident: &operator::tickets::Claimed::of_one(t.clone()),
            facts: &Value::Null,
        },
        &tx,
    )
    .await
}

#[tokio::test]
async fn text_and_two_tool_calls_arrive_in_pieces() {
    let stream = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "thinking it over"}), None),
        chunk(json!({"content": "Checking "}), None),
        chunk(json!({"content": "status."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "shell", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\": \"operator"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function", "function": {"name": "observe", "arguments": "{}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": " status\", \"reasoning\": \"look\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        usage_chunk(300, 40),
        done(),
    ];
    let fake = FakeLlm::start(vec![Reply::sse_split(&stream, 11)]).await;
    let t = turn(&model(&fake.url), &conversation()).await.unwrap();
    assert_eq!(t.stop_reason, StopReason::ToolUse);
    assert_eq!((t.usage.input_tokens, t.usage.output_tokens), (300, 40));
    assert_eq!(
        t.blocks,
        vec![
            AssistantBlock::Thinking {
                thinking: "thinking it over".into(),
                signature: String::new()
            },
            AssistantBlock::Text {
                text: "Checking status.".into()
            },
            AssistantBlock::ToolUse {
                id: "call_a".into(),
                name: "shell".into(),
                input: json!({"command": "operator status", "reasoning": "look"})
            },
            AssistantBlock::ToolUse {
                id: "call_b".into(),
                name: "observe".into(),
                input: json!({})
            },
        ]
    );
}

#[tokio::test]
async fn the_request_carries_tools_and_tool_results_in_order() {
    let fake = FakeLlm::start(vec![Reply::sse(&[
        chunk(json!({"content": "ok"}), Some("stop")),
        done(),
    ])])
    .await;
    let mut conv = conversation();
    conv.messages.push(Message::Assistant(vec![
        AssistantBlock::Text {
            text: "two at once".into(),
        },
        AssistantBlock::ToolUse {
            id: "call_a".into(),
            name: "shell".into(),
            input: json!({"command": "ls"}),
        },
        AssistantBlock::ToolUse {
            id: "call_b".into(),
            name: "observe".into(),
            input: json!({}),
        },
    ]));
    conv.messages.push(Message::User(vec![
        UserBlock::ToolResult {
            tool_use_id: "call_a".into(),
            content: "a.txt".into(),
            is_error: false,
        },
        UserBlock::ToolResult {
            tool_use_id: "call_b".into(),
            content: "vetoed".into(),
            is_error: true,
        },
        UserBlock::Text {
            text: "Guidance: be careful".into(),
        },
    ]));
    let t = turn(&model(&fake.url), &conv).await.unwrap();
    assert_eq!(t.stop_reason, StopReason::EndTurn);
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/v1/chat/completions");
    assert!(
        !req.headers.contains_key("authorization"),
        "no key, no header"
    );
    let b = &req.body;
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"], json!({"include_usage": true}));
    assert_eq!(b["tools"][0]["function"]["name"], "shell");
    let m = b["messages"].as_array().unwrap();
    assert_eq!(
        m[0],
        json!({"role": "system", "content": "You are an SRE."})
    );
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        "{\"command\":\"ls\"}"
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "a.txt"})
    );
    assert_eq!(
        m[4],
        json!({"role": "tool", "tool_call_id": "call_b", "content": "ERROR: vetoed"})
    );
    assert_eq!(
        m[5],
        json!({"role": "user", "content": "Guidance: be careful"})
    );
}

#[tokio::test]
async fn errors_retries_and_bad_arguments() {
    let ok = vec![chunk(json!({"content": "ok"}), Some("stop")), done()];
    let fake = FakeLlm::start(vec![
        Reply::Status {
            code: 429,
            headers: vec![("retry-after".into(), "0".into())],
            body: "{}".into(),
        },
        Reply::sse(&[chunk(json!({"content": "half"}), None)]),
        Reply::sse(&ok),
    ])
    .await;
    assert!(turn(&model(&fake.url), &conversation()).await.is_ok());
    assert_eq!(fake.requests().len(), 3);

    let fake = FakeLlm::start(vec![Reply::sse(&[
        "data: {\"error\": {\"message\": \"model not loaded\", \"type\": \"server_error\"}}\n\n"
            .into(),
    ])])
    .await;
    let r = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Stream { ref message, .. }) if message == "model not loaded"),
        "{r:?}"
    );

    let fake = FakeLlm::start(vec![Reply::sse(&[
        chunk(json!({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "shell", "arguments": "{broken"}}]}), Some("tool_calls")),
        done(),
    ])])
    .await;
    let r = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Protocol(ref m)) if m.contains("not valid JSON")),
        "{r:?}"
    );

    let fake = FakeLlm::start(vec![Reply::status(
        404,
        r#"{"error": {"message": "model llama3.1 not found"}}"#,
    )])
    .await;
    let r = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Http { status: 404, ref message }) if message.contains("not found")),
        "{r:?}"
    );
}
