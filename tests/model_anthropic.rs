//! The Anthropic backend against a local server speaking the Messages streaming protocol:
//! every event kind, split fragments, thinking, parallel tool calls, errors after 200,
//! retries (429 with retry-after, 529, cut streams) and what must not be retried.

mod common;

use std::time::{Duration, Instant};

use common::fake_llm::{FakeLlm, Msg, Reply, ev};
use operator::agent::llm::anthropic::{Anthropic, AnthropicSettings, ApiKey, Thinking};
use operator::agent::llm::retry::RetryPolicy;
use operator::agent::llm::{
    AssistantBlock, Conversation, Message, Model, ModelError, ModelEvent, StopReason, ToolDef,
    TurnRequest, UserBlock,
};
use operator::agent::tools;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const KEY: &str = "sk-ant-test-0123456789abcdef";

fn model(url: &str) -> Anthropic {
    Anthropic::new(
        AnthropicSettings {
            base_url: url.into(),
            model: "claude-sonnet-5".into(),
            max_tokens: 1024,
            thinking: Thinking::Adaptive,
            effort: Some("medium".into()),
            retry: RetryPolicy {
                max_retries: 2,
                base: Duration::from_millis(20),
                cap: Duration::from_secs(3),
            },
            timeout: Duration::from_secs(10),
        },
        ApiKey::new(KEY.into()),
    )
}

fn ticket() -> operator::tickets::Ticket {
    let now = operator::clock::now();
    operator::tickets::Ticket {
        id: 1,
        violation_key: "ratelimiter/0:node_down:ratelimiter-2".into(),
        subject: "ratelimiter".into(),
        instance: 0,
        invariant: "node_down".into(),
        entity: "ratelimiter-2".into(),
        severity: operator::invariant::Severity::Critical,
        status: operator::tickets::Status::InProgress,
        held: false,
        summary: "ratelimiter-2 is down".into(),
        detail: json!({"state": "down"}),
        occurrences: 1,
        observations: 1,
        opened_at: now,
        last_seen_at: now,
        cleared_at: None,
        resolved_at: None,
        resolution: None,
        claimed_by: Some("a".into()),
        lease_expires_at: None,
        attempts: 1,
        updated_at: now,
        incident_id: Some(1),
        root: true,
    }
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

async fn turn(
    m: &Anthropic,
    conv: &Conversation,
) -> (
    Result<operator::agent::llm::Turn, ModelError>,
    Vec<ModelEvent>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let t = operator::tickets::Claimed::of_one(ticket());
    let facts = Value::Null;
    let r = m
        .turn(
            &TurnRequest {
                conversation: conv,
                incident: &t,
                facts: &facts,
            },
            &tx,
        )
        .await;
    drop(tx);
    let mut events = Vec::new();
    while let Some(e) = rx.recv().await {
        events.push(e);
    }
    (r, events)
}

#[tokio::test]
async fn a_full_stream_with_thinking_text_and_two_tool_calls_split_in_fragments() {
    let stream = Msg::new(120)
        .thinking(&["The node is ", "down; check status."], "sig-abc")
        .text(&["Let me ", "look."])
        .tool(
            "toolu_1",
            "shell",
            &[
                "{\"comm",
                "and\": \"operator st",
                "atus\", \"reasoning\"",
                ": \"see\"}",
            ],
        )
        .tool("toolu_2", "observe", &[])
        .stop("tool_use", 57);
    // Split the bytes at awkward places: the parser must not care.
    let fake = FakeLlm::start(vec![Reply::sse_split(&stream, 7)]).await;
    let m = model(&fake.url);
    let (r, events) = turn(&m, &conversation()).await;
    let t = r.unwrap();
    assert_eq!(t.stop_reason, StopReason::ToolUse);
    assert_eq!((t.usage.input_tokens, t.usage.output_tokens), (120, 57));
    assert_eq!(
        t.blocks,
        vec![
            AssistantBlock::Thinking {
                thinking: "The node is down; check status.".into(),
                signature: "sig-abc".into()
            },
            AssistantBlock::Text {
                text: "Let me look.".into()
            },
            AssistantBlock::ToolUse {
                id: "toolu_1".into(),
                name: "shell".into(),
                input: json!({"command": "operator status", "reasoning": "see"})
            },
            AssistantBlock::ToolUse {
                id: "toolu_2".into(),
                name: "observe".into(),
                input: json!({})
            },
        ]
    );
    let texts: String = events
        .iter()
        .filter_map(|e| match e {
            ModelEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, "Let me look.");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ModelEvent::ThinkingDelta { .. }))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ModelEvent::ToolCall(_)))
            .count(),
        2
    );
    assert!(matches!(
        events.last(),
        Some(ModelEvent::Stop(StopReason::ToolUse))
    ));
}

#[tokio::test]
async fn the_request_is_what_the_api_documents() {
    let fake = FakeLlm::start(vec![Reply::sse(
        &Msg::new(1).text(&["ok"]).stop("end_turn", 1),
    )])
    .await;
    let m = model(&fake.url);
    let mut conv = conversation();
    conv.messages.push(Message::Assistant(vec![
        AssistantBlock::Thinking {
            thinking: "hm".into(),
            signature: "s1".into(),
        },
        AssistantBlock::ToolUse {
            id: "toolu_9".into(),
            name: "observe".into(),
            input: json!({}),
        },
    ]));
    conv.messages
        .push(Message::User(vec![UserBlock::ToolResult {
            tool_use_id: "toolu_9".into(),
            content: "all fine".into(),
            is_error: false,
        }]));
    turn(&m, &conv).await.0.unwrap();
    let req = &fake.requests()[0];
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.headers["x-api-key"], KEY);
    assert_eq!(req.headers["anthropic-version"], "2023-06-01");
    let b = &req.body;
    assert_eq!(b["model"], "claude-sonnet-5");
    assert_eq!(b["stream"], true);
    assert_eq!(b["max_tokens"], 1024);
    assert_eq!(b["thinking"], json!({"type": "adaptive"}));
    assert_eq!(b["output_config"], json!({"effort": "medium"}));
    assert_eq!(
        b["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    let tools = b["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 4);
    assert!(tools[..3].iter().all(|t| t.get("cache_control").is_none()));
    assert_eq!(tools[3]["cache_control"], json!({"type": "ephemeral"}));
    assert_eq!(
        tools[0]["input_schema"]["required"],
        json!(["command", "reasoning"])
    );
    // Thinking goes back with its signature; tool results as the user's first blocks.
    assert_eq!(
        b["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "hm", "signature": "s1"})
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "all fine", "is_error": false}]})
    );
}

#[tokio::test]
async fn an_overloaded_error_after_200_is_retried_and_others_are_not() {
    let overloaded = Msg::new(1)
        .raw(ev("error", json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})))
        .unfinished();
    let ok = Msg::new(1).text(&["fine"]).stop("end_turn", 2);
    let fake = FakeLlm::start(vec![Reply::sse(&overloaded), Reply::sse(&ok)]).await;
    let (r, events) = turn(&model(&fake.url), &conversation()).await;
    assert_eq!(
        r.unwrap().blocks,
        vec![AssistantBlock::Text {
            text: "fine".into()
        }]
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ModelEvent::Retrying { attempt: 1, .. }))
    );
    assert_eq!(fake.requests().len(), 2);

    let invalid = Msg::new(1)
        .raw(ev(
            "error",
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}}),
        ))
        .unfinished();
    let fake = FakeLlm::start(vec![Reply::sse(&invalid), Reply::sse(&ok)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    match r {
        Err(ModelError::Stream { kind, message }) => {
            assert_eq!(
                (kind.as_str(), message.as_str()),
                ("invalid_request_error", "bad")
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        fake.requests().len(),
        1,
        "a fatal stream error is not retried"
    );
}

#[tokio::test]
async fn rate_limits_honour_retry_after_and_529_is_retried() {
    let ok = Msg::new(1).text(&["fine"]).stop("end_turn", 2);
    let fake = FakeLlm::start(vec![
        Reply::Status {
            code: 429,
            headers: vec![("retry-after".into(), "1".into())],
            body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#
                .into(),
        },
        Reply::status(
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        Reply::sse(&ok),
    ])
    .await;
    let t0 = Instant::now();
    let (r, events) = turn(&model(&fake.url), &conversation()).await;
    assert!(r.is_ok(), "{r:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "retry-after was not honoured: {:?}",
        t0.elapsed()
    );
    let retries: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, ModelEvent::Retrying { .. }))
        .collect();
    assert_eq!(retries.len(), 2);
    assert_eq!(fake.requests().len(), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_say_what_the_api_said() {
    let fake = FakeLlm::start(vec![
        Reply::status(400, r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#),
        Reply::status(401, ""),
    ])
    .await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    match r {
        Err(ModelError::Http {
            status: 400,
            message,
        }) => assert_eq!(message, "max_tokens: too large"),
        other => panic!("{other:?}"),
    }
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Http { status: 401, ref message }) if message == "(no body)"),
        "{r:?}"
    );
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn retries_run_out_and_say_why() {
    let fake = FakeLlm::start(vec![
        Reply::status(500, "boom"),
        Reply::status(502, "boom"),
        Reply::status(503, "boom"),
    ])
    .await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Http { status: 503, .. })),
        "{r:?}"
    );
    assert_eq!(fake.requests().len(), 3);
    // Nothing listening at all.
    let (r, _) = turn(&model("http://127.0.0.1:1"), &conversation()).await;
    assert!(matches!(r, Err(ModelError::Connect { .. })), "{r:?}");
}

#[tokio::test]
async fn a_cut_stream_is_retried_and_a_broken_connection_too() {
    let cut = Msg::new(1).text(&["half"]).unfinished();
    let ok = Msg::new(1).text(&["whole"]).stop("end_turn", 2);
    let fake = FakeLlm::start(vec![
        Reply::sse(&cut),
        Reply::Sse {
            chunks: cut.clone(),
            delay: Duration::ZERO,
            abort: true,
        },
        Reply::sse(&ok),
    ])
    .await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert_eq!(
        r.unwrap().blocks,
        vec![AssistantBlock::Text {
            text: "whole".into()
        }]
    );
    assert_eq!(fake.requests().len(), 3);
    let fake = FakeLlm::start(vec![Reply::sse(&cut), Reply::sse(&cut), Reply::sse(&cut)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(matches!(r, Err(ModelError::Truncated(_))), "{r:?}");
}

#[tokio::test]
async fn malformed_events_and_invalid_tool_json_are_errors_not_guesses() {
    let malformed = Msg::new(1)
        .raw("event: content_block_delta\ndata: {not json\n\n".into())
        .stop("end_turn", 1);
    let fake = FakeLlm::start(vec![Reply::sse(&malformed)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Protocol(ref m)) if m.contains("malformed")),
        "{r:?}"
    );
    assert_eq!(fake.requests().len(), 1);

    let bad_json = Msg::new(1)
        .tool("toolu_1", "shell", &["{\"command\": \"ls\"", ", oops"])
        .stop("tool_use", 1);
    let fake = FakeLlm::start(vec![Reply::sse(&bad_json)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(
        matches!(r, Err(ModelError::Protocol(ref m)) if m.contains("not valid JSON")),
        "{r:?}"
    );

    let orphan = Msg::new(1)
        .raw(ev("content_block_delta", json!({"type": "content_block_delta", "index": 5, "delta": {"type": "text_delta", "text": "x"}})))
        .stop("end_turn", 1);
    let fake = FakeLlm::start(vec![Reply::sse(&orphan)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    assert!(matches!(r, Err(ModelError::Protocol(_))), "{r:?}");
}

#[tokio::test]
async fn unknown_events_and_blocks_are_skipped_and_every_stop_reason_is_read() {
    let s = Msg::new(1)
        .raw(ev("future_event", json!({"type": "future_event", "x": 1})))
        .raw(ev("content_block_start", json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "s1"}})))
        .raw(ev("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "mystery_delta"}})))
        .raw(ev("content_block_stop", json!({"type": "content_block_stop", "index": 0})))
        .stop("pause_turn", 1);
    let fake = FakeLlm::start(vec![Reply::sse(&s)]).await;
    let (r, _) = turn(&model(&fake.url), &conversation()).await;
    let t = r.unwrap();
    assert_eq!(t.stop_reason, StopReason::PauseTurn);
    assert!(t.blocks.is_empty());
    for (wire, want) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("refusal", StopReason::Refusal),
        (
            "model_context_window_exceeded",
            StopReason::ContextWindowExceeded,
        ),
        ("something_new", StopReason::Other("something_new".into())),
    ] {
        let fake = FakeLlm::start(vec![Reply::sse(&Msg::new(1).text(&["x"]).stop(wire, 1))]).await;
        assert_eq!(
            turn(&model(&fake.url), &conversation())
                .await
                .0
                .unwrap()
                .stop_reason,
            want
        );
    }
}

#[test]
fn tool_definitions_are_valid_schemas() {
    let all: Vec<String> = tools::NAMES.iter().map(|s| s.to_string()).collect();
    let defs: Vec<ToolDef> = tools::definitions(&all);
    for d in defs {
        assert_eq!(d.input_schema["type"], "object", "{}", d.name);
    }
}
