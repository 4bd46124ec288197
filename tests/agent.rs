//! The agent end to end: the real binary, a real cluster and DB, and a model that is either
//! the offline runbook or a local server speaking the Anthropic protocol from a script.

mod common;

use common::TicketDb;

use std::time::Duration;

use common::fake_llm::{FakeLlm, Msg, Reply};
use common::{Cluster, text, wait_for};
use operator::tickets::{Resolution, Status, Ticket};
use serde_json::{Value, json};

const KEY: &str = "sk-ant-test-e2e-SECRET-0123456789";

/// Settings that keep agent tests quick.
const FAST: &str = "agent.verify_window = \"5s\"\nagent.poll_interval = \"100ms\"\n";

/// `operator agent …` with `env`, run to its end without blocking the fake server.
async fn agent(c: &Cluster, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = c.command(&[&["agent"], args].concat());
    cmd.env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the agent did not finish within a minute")
        .expect("run the agent")
}

fn claude_env(fake: &FakeLlm) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_API_KEY", KEY.to_string()),
        ("ANTHROPIC_BASE_URL", fake.url.clone()),
    ]
}

async fn claude(c: &Cluster, fake: &FakeLlm, args: &[&str]) -> std::process::Output {
    let env = claude_env(fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    agent(c, args, &env).await
}

fn ticket_for(c: &Cluster, entity: &str) -> Option<Ticket> {
    c.tickets().into_iter().find(|t| t.entity == entity)
}

/// Kills a node and waits for its ticket, with a monitor cycle of our own.
async fn incident(c: &Cluster, node: &str) -> Ticket {
    c.ok(&["node", "kill", node]);
    let mut m = c.monitor();
    for _ in 0..10 {
        m.cycle().await.unwrap();
        if let Some(t) = ticket_for(c, node) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no ticket for {node}");
}

fn audit_entries(c: &Cluster, session: i64) -> Vec<Value> {
    let v = c.json(&["audit", "show", &session.to_string()]);
    v["entries"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_agent_repairs_a_killed_node_and_the_monitor_verifies_it() {
    let c = Cluster::start(FAST);
    let t = incident(&c, "ratelimiter-2").await;
    let out = agent(
        &c,
        &["--once", "--with-monitor", "--interval", "200ms"],
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let t = c.store().ticket(t.id).unwrap();
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified))
    );
    let status = c.json(&["status"]);
    assert!(
        status
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "running")
    );
    let sessions = c.json(&["audit", "list"]);
    let s = &sessions[0];
    assert_eq!(
        (s["backend"].as_str(), s["outcome"].as_str()),
        (Some("runbook"), Some("resolved"))
    );
    let entries = audit_entries(&c, s["id"].as_i64().unwrap());
    let commands: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "tool_call")
        .filter_map(|e| e["command"].as_str())
        .collect();
    assert_eq!(
        commands,
        [
            "operator status",
            "operator node logs -n 20 ratelimiter-2",
            "operator node start ratelimiter-2"
        ]
    );
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"verify"), "{kinds:?}");
    let start = entries
        .iter()
        .find(|e| e["kind"] == "tool_result" && e["command"] == "operator node start ratelimiter-2")
        .unwrap();
    assert_eq!(start["exit_code"], 0);
    let policy: Vec<&str> = entries
        .iter()
        .filter(|e| e["kind"] == "tool_call")
        .filter_map(|e| e["policy"].as_str())
        .collect();
    assert_eq!(policy, ["read_only", "read_only", "mutating"]);
    let readable = c.ok(&["audit", "show", &s["id"].to_string()]);
    assert!(
        readable.contains("$ operator node start ratelimiter-2"),
        "{readable}"
    );
    let events: Vec<String> = c
        .store()
        .ticket_events(t.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(events, ["opened", "claimed", "verifying", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_through_the_api_repairs_it_and_the_key_never_lands_anywhere() {
    let c = Cluster::start(FAST);
    let t = incident(&c, "ratelimiter-3").await;
    let fake = FakeLlm::start(vec![
        // Two calls at once, their input split in fragments; and the model repeating the key.
        Reply::sse_split(
            &Msg::new(900)
                .thinking(&["Node down. ", "Check first."], "sig-1")
                .text(&[&format!("Looking (my key is {KEY})")])
                .call("toolu_a", "shell", json!({"command": "operator status", "reasoning": "see every node"}))
                .call("toolu_b", "shell", json!({"command": "operator node logs ratelimiter-3 -n 5", "reasoning": "why it died"}))
                .stop("tool_use", 80),
            13,
        ),
        Reply::sse(&Msg::new(1400).call("toolu_c", "shell", json!({"command": "operator node start ratelimiter-3", "reasoning": "bring it back"})).stop("tool_use", 30)),
        Reply::sse(&Msg::new(1600).call("toolu_d", "observe", json!({})).stop("tool_use", 10)),
        Reply::sse(&Msg::new(1800).text(&["Fixed."]).call("toolu_e", "resolve", json!({"summary": "restarted ratelimiter-3"})).stop("tool_use", 20)),
    ])
    .await;
    let out = claude(
        &c,
        &fake,
        &["--once", "--with-monitor", "--interval", "200ms"],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let t = c.store().ticket(t.id).unwrap();
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified))
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 4);
    assert!(reqs.iter().all(|r| r.headers["x-api-key"] == KEY));
    // The second request: the assistant turn sent back whole (thinking with its signature),
    // then one user message whose first blocks are the two results, in call order.
    let msgs = reqs[1].body["messages"].as_array().unwrap();
    let assistant = &msgs[msgs.len() - 2];
    assert_eq!(assistant["role"], "assistant");
    assert_eq!(
        assistant["content"][0],
        json!({"type": "thinking", "thinking": "Node down. Check first.", "signature": "sig-1"})
    );
    let results = msgs.last().unwrap();
    assert_eq!(results["role"], "user");
    let blocks = results["content"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (
            blocks[0]["type"].as_str(),
            blocks[0]["tool_use_id"].as_str()
        ),
        (Some("tool_result"), Some("toolu_a"))
    );
    assert_eq!(blocks[1]["tool_use_id"], "toolu_b");
    assert_eq!(
        (
            blocks[0]["is_error"].as_bool(),
            blocks[1]["is_error"].as_bool()
        ),
        (Some(false), Some(false))
    );
    assert!(
        blocks[0]["content"]
            .as_str()
            .unwrap()
            .contains("ratelimiter-3")
    );
    assert!(
        blocks[0]["content"]
            .as_str()
            .unwrap()
            .contains("<untrusted source=\"command output\">")
    );
    // The observe result tells the model the violation is gone.
    let observe =
        &reqs[3].body["messages"].as_array().unwrap().last().unwrap()["content"][0]["content"];
    let observed: Value = serde_json::from_str(observe.as_str().unwrap()).unwrap();
    assert_eq!(observed["all_gone"], true);
    assert_eq!(observed["tickets"][0]["violation_present"], false);
    // Tokens and cost are counted.
    let s = &c.json(&["audit", "list"])[0];
    assert_eq!(
        (s["backend"].as_str(), s["model"].as_str()),
        (Some("anthropic"), Some("claude-sonnet-5"))
    );
    assert_eq!(s["input_tokens"], 900 + 1400 + 1600 + 1800);
    assert_eq!(s["output_tokens"], 80 + 30 + 10 + 20);
    assert!(s["cost_usd"].as_f64().unwrap() > 0.0);
    // The key is in no file we wrote: not the DB, not its WAL, not the logs.
    drop(c.store());
    let mut files = vec![c.db_path(), c.db_path().with_extension("db-wal")];
    files.extend(
        std::fs::read_dir(c.state_dir().join("logs"))
            .unwrap()
            .flatten()
            .map(|e| e.path()),
    );
    for f in files.iter().filter(|f| f.exists()) {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(KEY),
            "the API key is in {}",
            f.display()
        );
    }
    let entries = audit_entries(&c, s["id"].as_i64().unwrap());
    assert!(entries.iter().any(|e| {
        e["content"]
            .as_str()
            .unwrap_or("")
            .contains("my key is [REDACTED]")
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_model_output_gives_the_ticket_back_and_never_resolves_it() {
    let c = Cluster::start(&format!("{FAST}agent.budgets.attempts = 3\n"));
    let t = incident(&c, "ratelimiter-1").await;
    let fake = FakeLlm::start(vec![
        // A tool we never offered.
        Reply::sse(
            &Msg::new(10)
                .call("toolu_x", "delete_cluster", json!({}))
                .stop("tool_use", 5),
        ),
        // An empty answer.
        Reply::sse(&Msg::new(10).stop("end_turn", 0)),
        // The API failing, through every retry.
        Reply::status(500, "boom"),
        Reply::status(500, "boom"),
        Reply::status(500, "boom"),
        Reply::status(500, "boom"),
        Reply::status(500, "boom"),
    ])
    .await;
    let reasons = ["delete_cluster", "empty answer", "500"];
    for (i, want) in reasons.iter().enumerate() {
        let out = claude(&c, &fake, &["--once"]).await;
        assert!(!out.status.success(), "a failed session fails the command");
        let t = c.store().ticket(t.id).unwrap();
        let expected = if i < 2 {
            Status::Open
        } else {
            Status::Escalated
        };
        assert_eq!(t.status, expected, "after session {}", i + 1);
        let last = c.store().ticket_events(t.id).unwrap().pop().unwrap();
        assert!(last.reason.contains(want), "{want}: {}", last.reason);
    }
    let t = c.store().ticket(t.id).unwrap();
    assert_eq!((t.attempts, t.resolution), (3, None));
    assert!(
        c.store()
            .ticket_events(t.id)
            .unwrap()
            .iter()
            .all(|e| e.kind != "resolved")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_model_without_a_key_is_a_clear_error() {
    let c = Cluster::start("");
    let out = agent(&c, &["--once", "--model", "claude-sonnet-5"], &[]).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("ANTHROPIC_API_KEY is not set"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_mode_runs_only_reads_and_says_what_it_would_have_done() {
    let c = Cluster::start(FAST);
    let t = incident(&c, "ratelimiter-2").await;
    let fake = FakeLlm::start(vec![
        Reply::sse(
            &Msg::new(10)
                .call(
                    "toolu_1",
                    "shell",
                    json!({"command": "operator node start ratelimiter-2", "reasoning": "fix"}),
                )
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call(
                    "toolu_2",
                    "escalate",
                    json!({"reason": "observe mode: start ratelimiter-2"}),
                )
                .stop("tool_use", 5),
        ),
    ])
    .await;
    let out = claude(&c, &fake, &["--once", "--mode", "observe"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reqs = fake.requests();
    let result = &reqs[1].body["messages"].as_array().unwrap().last().unwrap()["content"][0];
    assert_eq!(result["is_error"], true);
    let content = result["content"].as_str().unwrap();
    assert!(
        content.contains("observe mode") && content.contains("would have run it"),
        "{content}"
    );
    assert_eq!(c.store().ticket(t.id).unwrap().status, Status::Escalated);
    let down = c
        .json(&["status"])
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == "ratelimiter-2" && n["state"] == "exited");
    assert!(down, "observe mode must not have started the node");
}

/// An agent whose model never answers, claiming `t`; returns once it holds the ticket.
fn hanging_agent(c: &Cluster, fake: &FakeLlm, t: &Ticket) -> common::Child {
    let mut cmd = c.command(&["agent", "--once"]);
    for (k, v) in &claude_env(fake) {
        cmd.env(k, v);
    }
    let agent = common::Child(
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_for(Duration::from_secs(10), || c
        .store()
        .ticket(t.id)
        .unwrap()
        .status
        == Status::InProgress));
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_agents_ticket_is_claimed_again_within_seconds_not_minutes() {
    // The default lease (15s), kept alive while the model streams.
    let c = Cluster::start(FAST);
    let t = incident(&c, "ratelimiter-2").await;
    let fake = FakeLlm::start(vec![Reply::Hang]).await;
    let mut first = hanging_agent(&c, &fake, &t);
    let held = c.store().ticket(t.id).unwrap();
    // Longer than a lease: the heartbeat keeps the claim while the model says nothing.
    tokio::time::sleep(Duration::from_secs(17)).await;
    let still = c.store().ticket(t.id).unwrap();
    assert_eq!(
        (still.status, &still.claimed_by),
        (Status::InProgress, &held.claimed_by)
    );
    assert!(
        still.lease_expires_at > held.lease_expires_at,
        "the lease was renewed: {:?} then {:?}",
        held.lease_expires_at,
        still.lease_expires_at
    );
    first.0.kill().unwrap();
    let _ = first.0.wait();
    let killed = std::time::Instant::now();
    let out = agent(
        &c,
        &[
            "--once",
            "--with-monitor",
            "--interval",
            "200ms",
            "--backend",
            "runbook",
        ],
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "repaired {:?} after the kill",
        killed.elapsed()
    );
    let t = c.store().ticket(t.id).unwrap();
    assert_eq!(
        (t.status, t.resolution, t.attempts),
        (Status::Resolved, Some(Resolution::Verified), 2)
    );
    let kinds: Vec<String> = c
        .store()
        .ticket_events(t.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    // The monitor may see the node back before the agent starts verifying: it
    // then notes the violation cleared while the agent still holds the ticket.
    let repaired = ["opened", "claimed", "released", "claimed"];
    let either = [
        [&repaired[..], &["verifying", "resolved"]].concat(),
        [&repaired[..], &["cleared", "verifying", "resolved"]].concat(),
    ];
    assert!(either.iter().any(|e| *e == kinds), "{kinds:?}");
    // Nothing is lost: the dead agent's session is in the audit, unfinished.
    let sessions = c.json(&["audit", "list", "--ticket", &t.id.to_string()]);
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    assert_eq!(sessions[1]["outcome"], Value::Null);
    assert_eq!(sessions[0]["outcome"], "resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_that_is_stopped_lets_go_of_its_ticket_at_once() {
    let c = Cluster::start(FAST);
    let t = incident(&c, "ratelimiter-2").await;
    let fake = FakeLlm::start(vec![Reply::Hang]).await;
    let mut a = hanging_agent(&c, &fake, &t);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopped = std::time::Instant::now();
    assert!(wait_for(Duration::from_secs(5), || c
        .store()
        .ticket(t.id)
        .unwrap()
        .status
        == Status::Open));
    assert!(stopped.elapsed() < Duration::from_secs(5));
    let status = a.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let t = c.store().ticket(t.id).unwrap();
    // The cut session is not counted against the ticket's attempts.
    assert_eq!((t.claimed_by, t.attempts), (None, 0));
    let last = c.store().ticket_events(t.id).unwrap().pop().unwrap();
    assert_eq!(last.kind, "released");
    assert!(last.reason.contains("stopped"), "{}", last.reason);
    let sessions = c.json(&["audit", "list", "--ticket", &t.id.to_string()]);
    assert_eq!(sessions[0]["outcome"], "stopped");
}
