//! A person approving and vetoing on the terminal: the real binary in a real terminal
//! (tmux), driven by keystrokes.

mod common;

use common::fake_llm::{FakeLlm, Msg, Reply};
use common::tmux::Tmux;
use common::{Cluster, TicketDb};
use operator::tickets::{Resolution, Status};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_vetoes_then_always_allows_on_the_terminal() {
    let c = Cluster::start("agent.verify_window = \"5s\"\n");
    c.ok(&["node", "kill", "ratelimiter-2"]);
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let ticket = c.tickets()[0].id;
    let start =
        json!({"command": "operator node start ratelimiter-2", "reasoning": "bring it back"});
    let fake = FakeLlm::start(vec![
        Reply::sse(
            &Msg::new(10)
                .call("toolu_1", "shell", start.clone())
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call("toolu_2", "shell", start)
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call("toolu_3", "observe", json!({}))
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call("toolu_4", "resolve", json!({"summary": "started it"}))
                .stop("tool_use", 5),
        ),
    ])
    .await;
    let cmd = format!(
        "env -u OPERATOR_CONFIG ANTHROPIC_API_KEY=sk-ant-test-tmux-key ANTHROPIC_BASE_URL={} {} --config {} --state-dir {} agent --once --mode approve --with-monitor --interval 200ms; echo AGENT-EXIT=$?; sleep 120",
        fake.url,
        common::OPERATOR,
        c.config_path().display(),
        c.state_dir().display()
    );
    let t = Tmux::start(&cmd, 200, 60);
    t.wait_history("approval needed", 1).await;
    t.keys(&["n", "Enter"]);
    t.wait_history("reason (sent to the model)", 1).await;
    t.keys(&["use the least invasive way", "Enter"]);
    t.wait_history("approval needed", 2).await;
    t.keys(&["a", "Enter"]);
    t.wait_history("prefix to always allow", 1).await;
    t.keys(&["Enter"]);
    let screen = t.wait_history("AGENT-EXIT=", 1).await;
    assert!(screen.contains("AGENT-EXIT=0"), "{screen}");
    assert!(screen.contains("vetoed by person:"), "{screen}");

    let reqs = fake.requests();
    let veto = &reqs[1].body["messages"].as_array().unwrap().last().unwrap()["content"][0];
    assert_eq!(veto["is_error"], true);
    let content = veto["content"].as_str().unwrap();
    assert!(
        content.contains("vetoed by person:") && content.contains("use the least invasive way"),
        "{content}"
    );
    let t = c.store().ticket(ticket).unwrap();
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified))
    );
    // The prefix is kept in the config file, so the next run does not ask.
    assert_eq!(c.config().agent.policy.allow, ["operator node start"]);
    let s = &c.json(&["audit", "list"])[0];
    let entries = c.json(&["audit", "show", &s["id"].to_string()]);
    let decisions: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "approval")
        .filter_map(|e| e["decision"].as_str())
        .collect();
    assert_eq!(decisions, ["ask", "vetoed", "ask", "allowed_always"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_nobody_approves() {
    let c = Cluster::start("agent.verify_window = \"5s\"\n");
    c.ok(&["node", "kill", "ratelimiter-1"]);
    c.monitor().cycle().await.unwrap();
    let fake = FakeLlm::start(vec![
        Reply::sse(
            &Msg::new(10)
                .call(
                    "toolu_1",
                    "shell",
                    json!({"command": "operator node kill ratelimiter-3", "reasoning": "why not"}),
                )
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call("toolu_2", "escalate", json!({"reason": "needs a person"}))
                .stop("tool_use", 5),
        ),
    ])
    .await;
    let mut cmd = c.command(&["agent", "--once"]);
    cmd.env("ANTHROPIC_API_KEY", "sk-ant-test-nobody")
        .env("ANTHROPIC_BASE_URL", &fake.url);
    let out = tokio::process::Command::from(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let reqs = fake.requests();
    let veto = &reqs[1].body["messages"].as_array().unwrap().last().unwrap()["content"][0];
    assert!(
        veto["content"]
            .as_str()
            .unwrap()
            .contains("no person is available"),
        "{veto}"
    );
    let running = c
        .json(&["status"])
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["name"] == "ratelimiter-3" && n["state"] == "running");
    assert!(running, "the destructive command must not have run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_edits_the_command_before_it_runs() {
    let c = Cluster::start("agent.verify_window = \"5s\"\n");
    c.ok(&["node", "kill", "ratelimiter-3"]);
    c.monitor().cycle().await.unwrap();
    let ticket = c.tickets()[0].id;
    let fake = FakeLlm::start(vec![
        // The model reaches for a kill of Redis (destructive); the person narrows it to a
        // start (mutating).
        Reply::sse(
            &Msg::new(10)
                .call(
                    "toolu_1",
                    "shell",
                    json!({"command": "operator node kill redis", "reasoning": "restart"}),
                )
                .stop("tool_use", 5),
        ),
        Reply::sse(
            &Msg::new(10)
                .call(
                    "toolu_2",
                    "resolve",
                    json!({"summary": "started ratelimiter-3"}),
                )
                .stop("tool_use", 5),
        ),
    ])
    .await;
    let cmd = format!(
        "env -u OPERATOR_CONFIG ANTHROPIC_API_KEY=sk-ant-test-tmux-key ANTHROPIC_BASE_URL={} {} --config {} --state-dir {} agent --once --mode approve --with-monitor --interval 200ms; echo AGENT-EXIT=$?; sleep 120",
        fake.url,
        common::OPERATOR,
        c.config_path().display(),
        c.state_dir().display()
    );
    let t = Tmux::start(&cmd, 200, 60);
    t.wait_history("approval needed", 1).await;
    t.keys(&["e", "Enter"]);
    t.wait_history("command to run instead", 1).await;
    t.keys(&["operator node start ratelimiter-3", "Enter"]);
    let screen = t.wait_history("AGENT-EXIT=", 1).await;
    assert!(screen.contains("AGENT-EXIT=0"), "{screen}");
    let reqs = fake.requests();
    let result = &reqs[1].body["messages"].as_array().unwrap().last().unwrap()["content"][0];
    let content = result["content"].as_str().unwrap();
    assert!(
        content.contains("edited your command")
            && content.contains("operator node start ratelimiter-3"),
        "{content}"
    );
    assert_eq!(result["is_error"], false);
    let t = c.store().ticket(ticket).unwrap();
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified))
    );
    // Redis was never restarted: the person's command ran, not the model's.
    let s = &c.json(&["audit", "list"])[0];
    let entries = c.json(&["audit", "show", &s["id"].to_string()]);
    let ran: Vec<&str> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "tool_result")
        .filter_map(|e| e["command"].as_str())
        .collect();
    assert_eq!(ran, ["operator node start ratelimiter-3"]);
    // Each command is audited with its own class.
    let class_of = |kind: &str, decision: Option<&str>| -> String {
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["kind"] == kind && decision.is_none_or(|d| e["decision"] == d))
            .unwrap_or_else(|| panic!("no {kind} {decision:?}"))["policy"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(class_of("tool_call", None), "destructive");
    assert_eq!(class_of("approval", Some("edited")), "mutating");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_approval_ends_within_the_budget_and_swallows_no_later_answer() {
    let c = Cluster::start(
        "agent.verify_window = \"5s\"\nagent.budgets.wall_clock = \"4s\"\nagent.poll_interval = \"100ms\"\n",
    );
    c.ok(&["node", "kill", "ratelimiter-2"]);
    c.monitor().cycle().await.unwrap();
    let first = c.tickets()[0].id;
    let start = |node: &str| json!({"command": format!("operator node start {node}"), "reasoning": "bring it back"});
    let call = |id: &str, tool: &str, input: serde_json::Value| {
        Reply::sse(&Msg::new(10).call(id, tool, input).stop("tool_use", 5))
    };
    let resolved = || json!({"summary": "started it"});
    let fake = FakeLlm::start(vec![
        call("toolu_1", "shell", start("ratelimiter-2")),
        call("toolu_2", "shell", start("ratelimiter-3")),
        call("toolu_3", "resolve", resolved()),
        call("toolu_4", "shell", start("ratelimiter-1")),
        call("toolu_5", "resolve", resolved()),
    ])
    .await;
    let cmd = format!(
        "env -u OPERATOR_CONFIG ANTHROPIC_API_KEY=sk-ant-test-tmux-key ANTHROPIC_BASE_URL={} {} --config {} --state-dir {} agent --mode approve --with-monitor --interval 200ms; echo AGENT-EXIT=$?; sleep 120",
        fake.url,
        common::OPERATOR,
        c.config_path().display(),
        c.state_dir().display()
    );
    let running = |c: &Cluster, node: &str| {
        c.json(&["status"])
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == node && n["state"] == "running")
    };
    let t = Tmux::start(&cmd, 200, 60);
    t.wait_history("approval needed", 1).await;
    // Nobody answers: the session's 4s run out, the command is not run, a person decides.
    t.wait_history("no longer waiting: the command was not run", 1)
        .await;
    let escalated = c.store().ticket(first).unwrap();
    assert_eq!(escalated.status, Status::Escalated);
    let why = c.store().ticket_events(first).unwrap().pop().unwrap();
    assert!(why.reason.contains("nobody answered"), "{}", why.reason);
    let session = &c.json(&["audit", "list", "--ticket", &first.to_string()])[0];
    let entries = c.json(&["audit", "show", &session["id"].to_string()]);
    let list = entries["entries"].as_array().unwrap();
    let expired: Vec<_> = list.iter().filter(|e| e["decision"] == "expired").collect();
    assert_eq!(expired.len(), 1, "{entries}");
    assert!(expired[0]["content"].as_str().unwrap().contains("not run"));
    assert!(
        !list.iter().any(|e| e["kind"] == "tool_result"),
        "nothing ran: {entries}"
    );
    assert!(
        !running(&c, "ratelimiter-2"),
        "the unanswered command never ran"
    );
    // The next question gets the next answer typed: nothing left over from the dead one
    // reads it first.
    c.ok(&["node", "kill", "ratelimiter-3"]);
    t.wait_history("approval needed", 2).await;
    t.keys(&["y", "Enter"]);
    assert!(
        common::wait_for(std::time::Duration::from_secs(10), || running(
            &c,
            "ratelimiter-3"
        )),
        "the answer to the second question was swallowed"
    );
    // A line typed before a question is shown is not its answer.
    t.wait_history("resolved", 1).await;
    t.keys(&["y", "Enter"]);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    c.ok(&["node", "kill", "ratelimiter-1"]);
    t.wait_history("approval needed", 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(
        !running(&c, "ratelimiter-1"),
        "a stray line approved the third question"
    );
    t.keys(&["y", "Enter"]);
    assert!(common::wait_for(std::time::Duration::from_secs(10), || {
        running(&c, "ratelimiter-1")
    }));
}
