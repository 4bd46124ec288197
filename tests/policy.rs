//! `operator policy check` against a real instance: the policy learns the instance's
//! endpoints from its topology, answers as the agent's policy would, and exits 0 only when
//! every command would run without a person. And a reader that goes away (`| head -1`) ends
//! any command quietly.

mod common;

use std::process::Stdio;

use common::{Cluster, text};
use serde_json::Value;

fn check(c: &Cluster, args: &[&str]) -> (i32, Value) {
    let mut a = vec!["policy", "check", "--json"];
    a.extend_from_slice(args);
    let out = c.cmd(&a);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    (out.status.code().unwrap_or(-1), v)
}

fn class(v: &Value, i: usize) -> &str {
    v["commands"][i]["class"].as_str().unwrap()
}

#[test]
fn the_policy_judges_clients_by_the_instances_own_endpoints() {
    let c = Cluster::start("");
    let limiter = c.address("ratelimiter-1");
    let redis_port = c.address("redis").rsplit_once(':').unwrap().1.to_string();
    let ours = format!("curl -s http://{limiter}/health");
    let (code, v) = check(&c, &[&ours]);
    assert_eq!((code, class(&v, 0)), (0, "read_only"), "{v}");
    assert_eq!(v["runtime"], "local");
    assert!(v["topology"].is_string(), "{v}");
    // The same loopback, a port that is not the instance's: someone else's service.
    let (code, v) = check(&c, &["curl -s http://127.0.0.1:2375/containers/json"]);
    assert_eq!((code, class(&v, 0)), (1, "denied"), "{v}");
    assert_eq!(v["commands"][0]["decision"], "refuse");
    let (_, v) = check(
        &c,
        &[
            &format!("redis-cli -p {redis_port} PING"),
            "redis-cli -p 1 PING",
        ],
    );
    assert_eq!((class(&v, 0), class(&v, 1)), ("read_only", "denied"), "{v}");
    // Processes, not containers: any docker would reach the host's engine.
    let (code, v) = check(
        &c,
        &["docker ps", "DOCKER_HOST=tcp://10.0.0.5:2375 docker ps"],
    );
    assert_eq!(code, 1);
    assert_eq!((class(&v, 0), class(&v, 1)), ("denied", "denied"), "{v}");
    assert_eq!(v["commands"][0]["decision"], "refuse");
}

#[test]
fn modes_allow_rules_stdin_and_the_exit_status() {
    let c = Cluster::prepare("agent.policy.allow = [\"operator node kill\"]\n");
    let (code, v) = check(&c, &["operator node start ratelimiter-2"]);
    assert_eq!((code, class(&v, 0)), (0, "mutating"), "{v}");
    let (code, v) = check(
        &c,
        &["--mode", "approve", "operator node start ratelimiter-2"],
    );
    assert_eq!(
        (code, v["commands"][0]["decision"].as_str()),
        (1, Some("ask")),
        "{v}"
    );
    let (code, v) = check(
        &c,
        &["--mode", "observe", "operator node start ratelimiter-2"],
    );
    assert_eq!(code, 1);
    assert!(
        v["commands"][0]["why"]
            .as_str()
            .unwrap()
            .contains("would have run it"),
        "{v}"
    );
    // The user's allow rule lets a destructive command run without asking.
    let (code, v) = check(&c, &["operator node kill ratelimiter-2"]);
    assert_eq!(
        (code, v["commands"][0]["allowed_by_rule"].as_bool()),
        (0, Some(true)),
        "{v}"
    );
    // One command per line from stdin; one refusal makes the answer no.
    let mut child = c
        .command(&["policy", "check", "--json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"operator status\n\nenv\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["commands"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!((class(&v, 0), class(&v, 1)), ("read_only", "denied"));
    // For people: the class, the reason, what runs, and what the mode does.
    let out = c.cmd(&["policy", "check", "awk 'BEGIN{for(k in ENVIRON) print k}'"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    for want in [
        "class      denied",
        "reads the environment",
        "runs       awk",
        "refused",
    ] {
        assert!(shown.contains(want), "{want}:\n{shown}");
    }
    let err = c.fails(&["policy", "check", "--mode", "yolo", "ls"]);
    assert!(err.contains("auto, approve or observe"), "{err}");
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    let c = Cluster::start("");
    for args in [
        &["status", "--json"][..],
        &["status"],
        &["tickets", "list", "--json"],
        &["chaos", "list", "--json"],
        &["policy", "check", "--json", "ls"],
    ] {
        let mut child = c
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader is gone before the first byte is written.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(141), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

/// With no instance up the policy knows no endpoint: `policy check` says so, and every client
/// command is refused as reaching outside.
#[test]
fn with_no_instance_up_the_check_says_it_knows_no_endpoint() {
    let c = Cluster::prepare("");
    let (code, v) = check(&c, &["curl -s http://127.0.0.1:8001/health"]);
    assert_eq!((code, class(&v, 0)), (1, "denied"), "{v}");
    assert!(v["topology"].is_null(), "{v}");
    let out = c.cmd(&["policy", "check", "redis-cli -p 6379 PING"]);
    let said = text(&out.stdout);
    assert!(said.contains("is not up"), "{said}");
}
