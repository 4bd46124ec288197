//! The local runtime through the real binary: up, status, down, node actions, and the bad
//! inputs a user will hit.

mod common;

use std::time::Duration;

use common::{Cluster, text};
use serde_json::Value;

fn nodes(c: &Cluster) -> Vec<Value> {
    c.json(&["status"]).as_array().unwrap().clone()
}

fn node<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter().find(|n| n["name"] == name).unwrap()
}

fn pid_alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s[s.rfind(')').unwrap() + 2..].chars().next().unwrap();
            state != 'Z' && state != 'X'
        })
        .unwrap_or(false)
}

fn port_free(address: &str) -> bool {
    std::net::TcpListener::bind(address).is_ok()
}

/// Holds the first port of a block of 32 that are all free (an instance's whole range), below
/// the kernel's ephemeral range: there, other tests' outgoing connections would take ports of
/// the block between this check and `up`'s.
fn free_block() -> std::net::TcpListener {
    // Test binaries running at once start their search at different blocks.
    let first = (std::process::id() % 256) as u16;
    (0..256u16)
        .map(|i| 20_000 + (first + i) % 256 * 32)
        .find_map(|base| {
            (base..base + 32)
                .all(|p| port_free(&format!("127.0.0.1:{p}")))
                .then(|| std::net::TcpListener::bind(("127.0.0.1", base)).ok())
                .flatten()
        })
        .expect("a free block of 32 ports between 20000 and 28192")
}

#[test]
fn up_status_and_down_leave_nothing_behind() {
    let mut c = Cluster::start("");
    let all = nodes(&c);
    let names: Vec<&str> = all.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "redis",
            "faultproxy",
            "ratelimiter-1",
            "ratelimiter-2",
            "ratelimiter-3"
        ]
    );
    for n in &all {
        assert_eq!(n["state"], "running", "{n}");
        assert_eq!(n["healthy"], true, "{n}");
        assert!(pid_alive(n["pid"].as_u64().unwrap()));
    }
    // The nodes outlived `operator up`, and the table names every node.
    let table = c.ok(&["status"]);
    for name in &names {
        assert!(table.contains(name), "{table}");
    }
    // `down` takes the subject as `up` does, and refuses one it does not know.
    let err = c.fails(&["down", "etcd2"]);
    assert!(
        err.contains("unknown subject `etcd2`") && err.contains("ratelimiter"),
        "{err}"
    );
    c.down();
    let instance = c.state_dir().join("instances").join("0");
    assert!(!instance.exists(), "{} is left behind", instance.display());
    for n in &all {
        assert!(!pid_alive(n["pid"].as_u64().unwrap()), "{n} still runs");
        assert!(
            port_free(n["address"].as_str().unwrap()),
            "{n} port still taken"
        );
    }
    // Down again: nothing to do, and it says so (naming the subject as `up` does, too).
    assert!(c.ok(&["down"]).contains("not up"));
    assert!(c.ok(&["down", "ratelimiter"]).contains("not up"));
    assert!(c.fails(&["status"]).contains("not up"));
}

#[test]
fn a_second_up_is_refused_and_changes_nothing() {
    let c = Cluster::start("");
    let before = nodes(&c);
    let err = c.fails(&["up"]);
    assert!(err.contains("already up"), "{err}");
    let after = nodes(&c);
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(b["pid"], a["pid"]);
    }
}

#[test]
fn a_stale_record_with_no_process_alive_is_replaced() {
    let c = Cluster::start("");
    for n in nodes(&c) {
        let pid = n["pid"].as_u64().unwrap() as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    assert!(common::wait_for(Duration::from_secs(5), || {
        nodes(&c).iter().all(|n| n["state"] == "exited")
    }));
    let out = c.cmd(&["up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("earlier run"),
        "{}",
        text(&out.stderr)
    );
    assert!(nodes(&c).iter().all(|n| n["state"] == "running"));
}

#[test]
fn up_of_a_partly_running_instance_is_refused() {
    let c = Cluster::start("");
    c.ok(&["node", "kill", "ratelimiter-1"]);
    let err = c.fails(&["up"]);
    assert!(
        err.contains("partly running") && err.contains("ratelimiter-1"),
        "{err}"
    );
}

#[test]
fn a_taken_port_is_named_and_nothing_is_left_half_started() {
    let held = free_block();
    let port = held.local_addr().unwrap().port();
    // redis would get `port`, which we hold.
    let c = Cluster::prepare(&format!("runtime.local.base_port = {port}\n"));
    let err = c.fails(&["up"]);
    assert!(
        err.contains(&format!("port {port}")) && err.contains("redis"),
        "{err}"
    );
    // ratelimiter-2's port taken instead: redis and ratelimiter-1 start, then all is undone.
    drop(held);
    let base = port;
    let blocker = std::net::TcpListener::bind(("127.0.0.1", base + 2)).unwrap();
    let err = c.fails(&["up"]);
    assert!(err.contains(&format!("port {}", base + 2)), "{err}");
    drop(blocker);
    let instance = c.state_dir().join("instances").join("0");
    let left: Vec<_> = std::fs::read_dir(&instance)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.iter().all(|f| f == "lock"), "left behind: {left:?}");
    assert!(port_free(&format!("127.0.0.1:{base}")), "redis still runs");
}

#[test]
fn a_missing_redis_server_says_how_to_install_it() {
    let c = Cluster::prepare("ratelimiter.redis_server = \"/nonexistent/redis-server\"\n");
    let err = c.fails(&["up"]);
    assert!(err.contains("apt-get install redis-server"), "{err}");
    assert!(c.fails(&["status"]).contains("not up"));
}

#[test]
fn a_node_that_cannot_start_is_reported_with_its_log_and_everything_is_undone() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken-ratelimiter");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'boom: cannot read my settings' >&2\nexit 3\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = Cluster::prepare(&format!("ratelimiter.ratelimiter_bin = {:?}\n", script));
    let err = c.fails(&["up"]);
    assert!(
        err.contains("ratelimiter-1 did not become healthy"),
        "{err}"
    );
    assert!(err.contains("boom: cannot read my settings"), "{err}");
    assert!(c.fails(&["status"]).contains("not up"));
}

#[test]
fn node_actions_and_no_restart_by_itself() {
    let c = Cluster::start("");
    c.ok(&["node", "kill", "ratelimiter-2"]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        node(&nodes(&c), "ratelimiter-2")["state"],
        "exited",
        "nothing restarts a killed node"
    );
    assert!(
        c.fails(&["node", "kill", "ratelimiter-2"])
            .contains("already down")
    );
    let started = c.json(&["node", "start", "ratelimiter-2"]);
    assert_eq!(
        (started["state"].as_str(), started["healthy"].as_bool()),
        (Some("running"), Some(true))
    );
    assert!(
        c.fails(&["node", "start", "ratelimiter-2"])
            .contains("already running")
    );

    c.ok(&["node", "pause", "ratelimiter-3"]);
    assert_eq!(node(&nodes(&c), "ratelimiter-3")["state"], "paused");
    assert!(
        c.fails(&["node", "pause", "ratelimiter-3"])
            .contains("already paused")
    );
    c.ok(&["node", "resume", "ratelimiter-3"]);
    assert!(
        c.fails(&["node", "resume", "ratelimiter-3"])
            .contains("not paused")
    );

    let before = node(&nodes(&c), "redis")["pid"].clone();
    c.ok(&["node", "restart", "redis"]);
    let after = node(&nodes(&c), "redis")["pid"].clone();
    assert_ne!(before, after);

    c.ok(&["node", "stop", "ratelimiter-1"]);
    assert_eq!(node(&nodes(&c), "ratelimiter-1")["state"], "exited");
    let logs = c.ok(&["node", "logs", "ratelimiter-1", "-n", "200"]);
    assert!(logs.contains("started by operator"), "{logs}");
    assert!(
        logs.contains("deregistered"),
        "a graceful stop deregisters: {logs}"
    );

    let err = c.fails(&["node", "kill", "ratelimiter-9"]);
    assert!(
        err.contains("unknown node `ratelimiter-9`") && err.contains("ratelimiter-3"),
        "{err}"
    );
}

#[test]
fn a_second_instance_runs_beside_the_first() {
    let c0 = Cluster::start("");
    let mut c1 = Cluster::prepare("");
    // Same state dir and config as c0, instance 1.
    let state = c0.state_dir();
    let run = |instance: &str, args: &[&str]| {
        let mut cmd = std::process::Command::new(common::OPERATOR);
        cmd.arg("--config")
            .arg(c0.config_path())
            .arg("--state-dir")
            .arg(&state)
            .arg("--instance")
            .arg(instance)
            .args(args);
        cmd.output().unwrap()
    };
    let out = run("1", &["up"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    c1.mark_up();
    let s1: Vec<Value> = serde_json::from_slice(&run("1", &["status", "--json"]).stdout).unwrap();
    let s0 = nodes(&c0);
    for (a, b) in s0.iter().zip(&s1) {
        assert_ne!(a["address"], b["address"]);
    }
    assert!(run("1", &["down"]).status.success());
    assert!(nodes(&c0).iter().all(|n| n["state"] == "running"));
}

#[test]
fn unknown_subjects_list_the_known_ones() {
    let c = Cluster::prepare("");
    let err = c.fails(&["up", "cassandra"]);
    assert!(
        err.contains("unknown subject `cassandra`") && err.contains("ratelimiter, etcd, tikv"),
        "{err}"
    );
}

#[test]
fn an_invalid_config_names_file_line_and_key() {
    let c = Cluster::prepare("\n[monitor]\ninterval = \"fast\"\n");
    let err = c.fails(&["status"]);
    assert!(err.contains("operator.toml"), "{err}");
    // Three lines of base config come first.
    assert!(
        err.contains("line 6") && err.contains("monitor.interval"),
        "{err}"
    );
}
