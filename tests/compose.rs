//! The compose files against the real engine: `compose/ratelimiter.yml` brings up the same
//! cluster `up --runtime docker` would, `operator adopt` takes it over (status, monitor,
//! chaos, and a start that moves a published port), and `compose/agent.yml` runs the monitor
//! and the agent in containers that hold no Docker socket: a node killed from outside is
//! repaired by the containerized agent and verified by the containerized monitor. Skipped,
//! saying so, only where no engine answers.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Cluster, text, wait_for};
use serde_json::Value;

const INSTANCE: u32 = 61;

/// `docker compose` (the plugin) or `docker-compose`, whichever this machine has.
fn compose() -> Command {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut c = if plugin {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("compose"));
    c
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().expect("run compose");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Takes both projects down (volumes too) however the test ends.
struct Projects {
    api_dir: tempfile::TempDir,
}

impl Projects {
    fn cmd(&self, file: &str, project: &str, args: &[&str]) -> Command {
        let mut c = compose();
        c.args(["-f", file, "-p", project])
            .args(args)
            .env("OPERATOR_INSTANCE", INSTANCE.to_string())
            .env("OPERATOR_API_DIR", self.api_dir.path())
            .env_remove("ANTHROPIC_API_KEY");
        c
    }
}

impl Drop for Projects {
    fn drop(&mut self) {
        for (file, project) in [("agent.yml", "op61agent"), ("ratelimiter.yml", "op61")] {
            // Services stopped one at a time before `down`: compose stops them all at once,
            // and an engine before 20.10.27 can deadlock as a network empties that way
            // (moby/moby#46661).
            let services = self
                .cmd(file, project, &["config", "--services"])
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default();
            for service in services.lines().filter(|l| !l.trim().is_empty()) {
                let _ = self
                    .cmd(file, project, &["stop", "-t", "5", service.trim()])
                    .output();
            }
            let _ = self
                .cmd(file, project, &["down", "-v", "--remove-orphans"])
                .output();
        }
    }
}

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker").args(args).output().unwrap();
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// The tickets as the containerized monitor's DB holds them.
fn tickets_inside() -> Vec<Value> {
    let (ok, out) = docker(&[
        "exec",
        "operator-61-monitor",
        "operator",
        "tickets",
        "list",
        "--json",
    ]);
    if !ok {
        return Vec::new();
    }
    serde_json::from_str(&out).unwrap_or_default()
}

#[test]
fn a_compose_cluster_is_adopted_and_its_containerized_agent_repairs_it() {
    let Some(c) = Cluster::prepare_docker(INSTANCE, "") else {
        return;
    };
    let p = Projects {
        api_dir: tempfile::tempdir().unwrap(),
    };
    run(p.cmd("ratelimiter.yml", "op61", &["up", "-d"]));

    // Adopted: every command works on it.
    let adopted = c.ok(&["adopt"]);
    assert!(
        adopted.contains("adopted ratelimiter instance 61 (6 containers"),
        "{adopted}"
    );
    let healthy = || {
        c.json(&["status"])
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "running" && n["healthy"] == true)
    };
    assert!(
        wait_for(Duration::from_secs(10), healthy),
        "{}",
        c.json(&["status"])
    );
    let out = c.ok(&["monitor", "--once", "--json"]);
    let report: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        (report["nodes_up"].as_u64(), report["violations"].as_u64()),
        (Some(4), Some(0)),
        "{report}"
    );
    // A start gets a new published port from the engine; the record follows it.
    let before = c.address("ratelimiter-3");
    let f = c.json(&["chaos", "inject", "node_kill", "--target", "ratelimiter-3"]);
    let healed = c.json(&["chaos", "heal", &f["id"].to_string()]);
    assert_eq!(healed[0]["acted"], true, "{healed}");
    assert!(healthy(), "{}", c.json(&["status"]));
    let after = c.address("ratelimiter-3");
    assert!(
        common::http("GET", &after, "/health", None, Duration::from_secs(3))
            .is_ok_and(|(s, _, _)| s == 200),
        "{before} → {after}"
    );

    // The monitor and the agent in containers, with no Docker socket of their own.
    run(p.cmd("agent.yml", "op61agent", &["up", "-d"]));
    let (_, mounts) = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Destination}} {{end}}",
        "operator-61-agent",
    ]);
    assert!(!mounts.contains("/var/run/docker.sock"), "{mounts}");
    let (ok, refused) = docker(&["exec", "operator-61-agent", "docker", "rm", "-f", "redis"]);
    assert!(
        !ok && refused.contains("removing containers is not allowed"),
        "{refused}"
    );
    assert!(
        wait_for(Duration::from_secs(30), || docker(&[
            "exec",
            "operator-61-monitor",
            "operator",
            "tickets",
            "list"
        ])
        .0),
        "the containerized monitor did not start"
    );
    let (ok, out) = docker(&["kill", "operator-61-ratelimiter-2"]);
    assert!(ok, "{out}");
    let repaired = wait_for(Duration::from_secs(60), || {
        tickets_inside().iter().any(|t| {
            t["entity"] == "ratelimiter-2"
                && t["invariant"] == "node_down"
                && t["status"] == "resolved"
                && t["resolution"] == "verified"
        })
    });
    let (_, agent_log) = docker(&["logs", "--tail", "40", "operator-61-agent"]);
    assert!(repaired, "{:#?}\n{agent_log}", tickets_inside());
    let (_, state) = docker(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "operator-61-ratelimiter-2",
    ]);
    assert_eq!(state.trim(), "running");
    assert!(
        agent_log.contains("docker start ratelimiter-2"),
        "{agent_log}"
    );

    // `down` lets go of an adopted cluster; compose is what stops it.
    let down = c.ok(&["down"]);
    assert!(down.contains("was adopted"), "{down}");
    let (_, state) = docker(&["inspect", "-f", "{{.State.Status}}", "operator-61-redis"]);
    assert_eq!(state.trim(), "running");
}
