//! The Docker runtime against the real engine: a cluster of containers brought up, observed,
//! broken and healed through the real binary, each effect checked from outside with the
//! docker CLI (`inspect`, `iptables -S` in the node's namespace, `df` in its volume, a
//! request's latency, a refused connection), and nothing left behind by `down`.
//! Skipped, saying so, only where no engine answers. Each test uses its own instance number:
//! container names carry it, and tests run at once.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cluster, cycle_until, http, text, violated, wait_for};
use serde_json::Value;

/// `docker ARGS` (the CLI, as a person would check); stdout, and whether it succeeded.
fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

fn container(c: &Cluster, node: &str) -> String {
    format!("operator-{}-{node}", c.instance)
}

fn state_of(c: &Cluster, node: &str) -> String {
    let (_, s) = docker(&["inspect", "-f", "{{.State.Status}}", &container(c, node)]);
    s.trim().to_string()
}

/// Everything on the engine labelled with this cluster's instance and owner.
fn leftovers(c: &Cluster) -> Vec<String> {
    let owner = std::fs::read_to_string(c.state_dir().join("owner")).unwrap_or_default();
    let filters = [
        "--filter".to_string(),
        format!("label=operator.instance={}", c.instance),
        "--filter".to_string(),
        format!("label=operator.owner={}", owner.trim()),
    ];
    let mut found = Vec::new();
    for kind in [
        &["ps", "-a", "--format", "{{.Names}}"][..],
        &["network", "ls", "--format", "{{.Name}}"][..],
        &["volume", "ls", "--format", "{{.Name}}"][..],
    ] {
        let mut args: Vec<&str> = kind.to_vec();
        args.extend(filters.iter().map(String::as_str));
        let (ok, out) = docker(&args);
        assert!(ok, "{out}");
        found.extend(out.lines().map(str::to_string));
    }
    found
}

fn heal(c: &Cluster, id: i64) -> Value {
    let healed = c.json(&["chaos", "heal", &id.to_string()]);
    assert_eq!(healed[0]["acted"], true, "{healed}");
    healed[0]["fault"].clone()
}

/// `iptables -S` in `node`'s network namespace.
fn iptables(c: &Cluster, node: &str) -> String {
    iptables_run(c, node, &["-S"])
}

/// `iptables ARGS` in `node`'s network namespace, from a container sharing it.
fn iptables_run(c: &Cluster, node: &str, args: &[&str]) -> String {
    let net = format!("container:{}", container(c, node));
    let mut all = vec![
        "run",
        "--rm",
        "--network",
        &net,
        "--cap-add",
        "NET_ADMIN",
        "operator/toolbox",
        "iptables",
    ];
    all.extend_from_slice(args);
    let (ok, out) = docker(&all);
    assert!(ok, "{out}");
    out
}

/// A rule of someone else's in `node`'s namespace (comment `someone-else`), which heal must
/// leave alone.
fn someone_elses_rule(c: &Cluster, node: &str) {
    let _ = iptables_run(
        c,
        node,
        &[
            "-A",
            "INPUT",
            "-s",
            "192.0.2.1",
            "-m",
            "comment",
            "--comment",
            "someone-else",
            "-j",
            "DROP",
        ],
    );
}

/// curl from the toolbox, a peer on the instance's network: its exit code (7: refused,
/// 28: timed out) and the HTTP status.
fn from_a_peer(c: &Cluster, url: &str) -> (i32, String) {
    let out = Command::new("docker")
        .args([
            "exec",
            &container(c, "toolbox"),
            "curl",
            "-s",
            "-m",
            "2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            url,
        ])
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), text(&out.stdout))
}

/// Bytes used and size of a data volume, by `df` in a container mounting it.
fn volume_usage(volume: &str) -> (u64, u64) {
    let mount = format!("{volume}:/data");
    let (ok, out) = docker(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "operator/toolbox",
        "df",
        "-B1",
        "--output=used,size",
        "/data",
    ]);
    assert!(ok, "{out}");
    let nums: Vec<u64> = out
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    (nums[0], nums[1])
}

/// `POST /check` on a node, timed.
fn check(address: &str) -> Duration {
    let (status, body, took) = http(
        "POST",
        address,
        "/check",
        Some(r#"{"key":"docker-test"}"#),
        Duration::from_secs(10),
    )
    .expect("check");
    assert!(status == 200 || status == 429, "{status} {body}");
    took
}

#[test]
fn up_status_and_down_leave_nothing_behind() {
    let Some(mut c) = Cluster::start_docker(41, "") else {
        return;
    };
    let status = c.json(&["status"]);
    let nodes = status.as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "redis",
            "faultproxy",
            "ratelimiter-1",
            "ratelimiter-2",
            "ratelimiter-3",
            "toolbox"
        ]
    );
    assert!(
        nodes
            .iter()
            .all(|n| n["state"] == "running" && n["healthy"] == true),
        "{status:#}"
    );
    // The record names the runtime: later commands need no flag, and refuse another one.
    let err = c.fails(&["--runtime", "local", "status"]);
    assert!(
        err.contains("runs on the docker runtime, not local"),
        "{err}"
    );
    let mut made = leftovers(&c);
    made.sort();
    assert_eq!(
        made,
        [
            "operator-41",
            "operator-41-faultproxy",
            "operator-41-ratelimiter-1",
            "operator-41-ratelimiter-2",
            "operator-41-ratelimiter-3",
            "operator-41-redis",
            "operator-41-redis-data",
            "operator-41-toolbox"
        ]
    );
    // Only loopback sees the published ports.
    let (_, ports) = docker(&["port", &container(&c, "ratelimiter-1")]);
    assert!(
        ports.trim().starts_with("8000/tcp -> 127.0.0.1:"),
        "{ports}"
    );
    // The monitor sees a healthy cluster through them.
    let out = c.ok(&["monitor", "--once", "--json"]);
    let report: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["nodes_up"], 4, "{report}");
    assert_eq!(report["violations"], 0, "{report}");

    let down = c.json(&["down"]);
    c.mark_down();
    assert_eq!(down["stopped"].as_array().unwrap().len(), 6, "{down}");
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    assert!(!c.state_dir().join("instances/41").exists());
    let again = c.ok(&["down"]);
    assert!(again.contains("not up"), "{again}");
}

#[test]
fn containers_we_did_not_make_are_never_touched() {
    let Some(c) = Cluster::prepare_docker(42, "") else {
        return;
    };
    let name = container(&c, "ratelimiter-2");
    // An earlier run killed half way may have left it.
    docker(&["rm", "-f", &name]);
    let (ok, out) = docker(&["create", "--name", &name, "operator/toolbox", "true"]);
    assert!(ok, "{out}");
    let err = c.fails(&["up"]);
    assert!(
        err.contains(&format!(
            "a container named {name} exists that this operator did not make"
        )),
        "{err}"
    );
    // It is still there, and nothing of ours is.
    assert!(docker(&["inspect", &name]).0, "our refusal removed it");
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    docker(&["rm", "-f", &name]);
}

#[test]
fn a_missing_image_or_engine_is_said_clearly_and_leaves_nothing() {
    let Some(c) = Cluster::prepare_docker(43, "ratelimiter.image = \"operator/nowhere\"\n") else {
        return;
    };
    let err = c.fails(&["up"]);
    assert!(
        err.contains("image operator/nowhere is missing")
            && err.contains("./scripts/build-images.sh"),
        "{err}"
    );
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
    let c = Cluster::prepare(
        "runtime.kind = \"docker\"\nruntime.docker.host = \"unix:///nonexistent/docker.sock\"\n",
    );
    let err = c.fails(&["up"]);
    assert!(
        err.contains("no Docker engine answers at unix:///nonexistent/docker.sock")
            && err.contains("--runtime local"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_kill_and_pause_go_through_the_engine_and_heal() {
    let Some(c) = Cluster::start_docker(44, "") else {
        return;
    };
    let mut m = c.monitor();
    let every = Duration::from_millis(200);
    cycle_until(&mut m, 20, every, |r| violated(r).is_empty()).await;

    let (kill, _) = c.inject(&["node_kill", "--target", "ratelimiter-2"]);
    assert_eq!(state_of(&c, "ratelimiter-2"), "exited");
    cycle_until(&mut m, 10, every, |r| {
        violated(r).contains(&("node_down".into(), "ratelimiter-2".into()))
    })
    .await;
    let err = c.fails(&["chaos", "inject", "pause", "--target", "ratelimiter-2"]);
    assert!(
        err.contains("ratelimiter-2 is already down; nothing to pause"),
        "{err}"
    );
    let healed = heal(&c, kill);
    assert!(
        healed["note"]
            .as_str()
            .unwrap()
            .contains("started ratelimiter-2 again")
    );
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");

    let (pause, _) = c.inject(&["pause", "--target", "ratelimiter-1"]);
    assert_eq!(state_of(&c, "ratelimiter-1"), "paused");
    let r = cycle_until(&mut m, 10, every, |r| {
        violated(r).contains(&("node_down".into(), "ratelimiter-1".into()))
    })
    .await;
    let out = &r.nodes_out;
    assert!(
        out.iter()
            .any(|(n, s)| n == "ratelimiter-1" && s.as_str() == "unresponsive"),
        "{out:?}"
    );
    heal(&c, pause);
    assert_eq!(state_of(&c, "ratelimiter-1"), "running");
    cycle_until(&mut m, 30, every, |r| violated(r).is_empty()).await;

    // The rig is not a target.
    for rig in ["toolbox", "faultproxy"] {
        let err = c.fails(&["chaos", "inject", "node_kill", "--target", rig]);
        assert!(err.contains("part of the test rig"), "{err}");
    }
}

#[test]
fn latency_slows_the_nodes_requests_until_healed() {
    let Some(c) = Cluster::start_docker(45, "") else {
        return;
    };
    let address = c.address("ratelimiter-3");
    check(&address);
    let clean = check(&address);
    let (id, _) = c.inject(&[
        "latency",
        "--target",
        "ratelimiter-3",
        "--delay",
        "300ms",
        "--jitter",
        "0ms",
    ]);
    let how = c.catalogue_entry("latency")["how"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        how.contains("netem") || how.contains("fault proxy"),
        "{how}"
    );
    let slow = check(&address);
    assert!(slow >= Duration::from_millis(300), "{slow:?}");
    // Another node is untouched.
    assert!(check(&c.address("ratelimiter-1")) < Duration::from_millis(250));
    let healed = heal(&c, id);
    assert!(
        healed["note"].as_str().unwrap().contains("none left")
            || healed["note"].as_str().unwrap().contains("qdisc"),
        "{healed}"
    );
    let after = check(&address);
    assert!(
        after < Duration::from_millis(250),
        "{after:?} (before: {clean:?})"
    );
}

#[test]
fn a_partition_cuts_the_node_off_from_every_peer_until_healed() {
    let Some(c) = Cluster::start_docker(46, "") else {
        return;
    };
    assert_eq!(
        from_a_peer(&c, "http://ratelimiter-1:8000/health"),
        (0, "200".into())
    );
    someone_elses_rule(&c, "ratelimiter-1");
    let (id, tag) = c.inject(&[
        "network_partition",
        "--target",
        "ratelimiter-1",
        "--mode",
        "refuse",
    ]);
    let rules = iptables(&c, "ratelimiter-1");
    // The instance's whole subnet both ways (every peer, whatever address it has now or
    // gets later), but for the gateway, through which this machine probes.
    assert_eq!(
        rules.matches(&format!("--comment {tag} ")).count(),
        4,
        "{rules}"
    );
    assert_eq!(from_a_peer(&c, "http://ratelimiter-1:8000/health").0, 7);
    // A peer that restarts, and may come back at another address, is still cut off.
    docker(&["restart", "-t", "1", &container(&c, "toolbox")]);
    assert_eq!(from_a_peer(&c, "http://ratelimiter-1:8000/health").0, 7);
    // The node lives, and says Redis is out of its reach.
    let direct = c.address("ratelimiter-1");
    assert!(wait_for(Duration::from_secs(10), || {
        http("GET", &direct, "/health", None, Duration::from_secs(3))
            .is_ok_and(|(_, b, _)| b.contains("unreachable"))
    }));
    // Other nodes are not cut off.
    assert_eq!(
        from_a_peer(&c, "http://ratelimiter-2:8000/health"),
        (0, "200".into())
    );

    let healed = heal(&c, id);
    assert!(
        healed["note"].as_str().unwrap().contains("none left"),
        "{healed}"
    );
    let rules = iptables(&c, "ratelimiter-1");
    assert!(!rules.contains(&tag), "{rules}");
    assert!(
        rules.contains("someone-else"),
        "heal removed a rule that was not its own: {rules}"
    );
    assert_eq!(
        from_a_peer(&c, "http://ratelimiter-1:8000/health"),
        (0, "200".into())
    );

    // A black hole: the connection is not refused, it just never answers.
    let (id, _) = c.inject(&["network_partition", "--target", "ratelimiter-2"]);
    assert_eq!(from_a_peer(&c, "http://ratelimiter-2:8000/health").0, 28);
    heal(&c, id);
    assert_eq!(
        from_a_peer(&c, "http://ratelimiter-2:8000/health"),
        (0, "200".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_pressure_fills_redis_volume_the_monitor_sees_it_and_heal_frees_it() {
    let Some(c) = Cluster::start_docker(47, "") else {
        return;
    };
    let mut m = c.monitor();
    let every = Duration::from_millis(200);
    cycle_until(&mut m, 20, every, |r| violated(r).is_empty()).await;
    let volume = format!("{}-data", container(&c, "redis"));
    let (used, size) = volume_usage(&volume);
    assert!(size <= 64 * 1024 * 1024, "the volume is bounded: {size}");
    assert!(used * 10 < size, "{used} of {size}");
    let (id, _) = c.inject(&["disk_pressure", "--percent", "85"]);
    let (used, size) = volume_usage(&volume);
    let pct = used as f64 * 100.0 / size as f64;
    assert!((84.0..=90.0).contains(&pct), "{pct:.1}%");
    let r = cycle_until(&mut m, 10, every, |r| {
        violated(r).contains(&("low_disk_space".into(), "redis".into()))
    })
    .await;
    let v = &r.snapshot.unwrap().assessment.violations;
    assert!(v[0].summary.contains("% full"), "{v:?}");
    heal(&c, id);
    let (used, size) = volume_usage(&volume);
    assert!(used * 10 < size, "{used} of {size} after heal");
    cycle_until(&mut m, 10, every, |r| violated(r).is_empty()).await;
}

#[test]
fn a_fault_whose_healer_died_is_healed_by_the_next_command() {
    let Some(c) = Cluster::start_docker(48, "") else {
        return;
    };
    let (id, tag) = c.inject(&[
        "network_partition",
        "--target",
        "ratelimiter-3",
        "--duration",
        "1s",
    ]);
    c.kill_healers();
    assert!(
        iptables(&c, "ratelimiter-3").contains(&tag),
        "nobody healed it yet"
    );
    c.ok(&["chaos", "list"]);
    assert!(!iptables(&c, "ratelimiter-3").contains(&tag));
    let all = c.json(&["chaos", "list", "--all"]);
    let f = all["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(f["status"], "healed", "{f}");
}

/// Settings that keep agent tests quick.
const FAST: &str = "agent.verify_window = \"5s\"\nagent.poll_interval = \"100ms\"\n";

/// Injects `fault` on `node`, lets the monitor open its ticket, runs the runbook agent once
/// (with its own monitor) and returns the ticket as it ends.
async fn repaired(c: &Cluster, fault: &str, node: &str) -> operator::tickets::Ticket {
    c.inject(&[fault, "--target", node, "--duration", "0"]);
    let mut m = c.monitor();
    let every = Duration::from_millis(200);
    cycle_until(&mut m, 20, every, |r| common::opened(r, "node_down", node)).await;
    let mut cmd = c.command(&["agent", "--once", "--with-monitor", "--interval", "200ms"]);
    cmd.env_remove("ANTHROPIC_API_KEY");
    let out = tokio::time::timeout(
        Duration::from_secs(90),
        tokio::process::Command::from(cmd)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the agent finished within 90s")
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    c.tickets()
        .into_iter()
        .find(|t| t.entity == node && t.invariant == "node_down")
        .expect("a ticket")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_agent_repairs_kill_and_pause_from_its_sandbox() {
    use operator::tickets::{Resolution, Status};
    let Some(c) = Cluster::start_docker(49, FAST) else {
        return;
    };
    let t = repaired(&c, "node_kill", "ratelimiter-2").await;
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified)),
        "{t:?}"
    );
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");
    assert_eq!(
        c.commands_of(t.id),
        [
            "docker ps -a => 0",
            "docker logs --tail 20 ratelimiter-2 => 0",
            "docker start ratelimiter-2 => 0"
        ]
    );

    let t = repaired(&c, "pause", "ratelimiter-1").await;
    assert_eq!(
        (t.status, t.resolution),
        (Status::Resolved, Some(Resolution::Verified)),
        "{t:?}"
    );
    assert_eq!(state_of(&c, "ratelimiter-1"), "running");
    let ran = c.commands_of(t.id);
    assert_eq!(
        ran.last().unwrap(),
        "docker unpause ratelimiter-1 => 0",
        "{ran:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_has_no_secrets_and_ends_what_runs_too_long() {
    use operator::agent::executor::Executor;
    use operator::agent::toolbox::ToolboxExecutor;
    use operator::policy::Class;
    let Some(c) = Cluster::start_docker(50, "") else {
        return;
    };
    let sandbox = c.runtime().sandbox().unwrap().expect("a sandbox on docker");
    let exec = ToolboxExecutor::new(sandbox, 4096);
    // Only what the executor gives it, whatever this process holds.
    let o = exec
        .run("env; pwd; id -u", Duration::from_secs(10), Class::ReadOnly)
        .await
        .unwrap();
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    let mut keys: Vec<&str> = o
        .stdout
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "DOCKER_HOST",
            "HOME",
            "HOSTNAME",
            "LANG",
            "NO_COLOR",
            "PATH",
            "PWD",
            "SHLVL",
            "TERM",
            "_"
        ],
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("\n/work\n"), "{}", o.stdout);
    // Its docker reaches the filtering proxy, and the instance's nodes by name.
    let o = exec
        .run(
            "docker inspect -f '{{.State.Status}}' redis && curl -s ratelimiter-1:8000/health",
            Duration::from_secs(10),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    assert!(
        o.stdout.starts_with("running\n") && o.stdout.contains("\"status\":\"ok\""),
        "{o:?}"
    );
    // A command past its time is killed with what it started; the result comes back on time.
    let start = std::time::Instant::now();
    let o = exec
        .run(
            "sleep 30 & sleep 31; echo never",
            Duration::from_secs(1),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert!(o.timed_out && o.exit_code.is_none(), "{o:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // Only the toolbox's own `sleep infinity` is left.
    let toolbox = container(&c, "toolbox");
    assert!(wait_for(Duration::from_secs(5), || {
        let (_, ps) = docker(&["exec", &toolbox, "ps", "-eo", "args"]);
        ps.lines().filter(|l| l.starts_with("sleep")).count() == 1
    }));
    // Memory and processes are bounded, as the engine sees the toolbox; a string that
    // doubles is ended there, not on the host.
    let (_, limits) = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.PidsLimit}}",
        &toolbox,
    ]);
    assert_eq!(limits.trim(), "1073741824 1073741824 256");
    let o = exec
        .run(
            r#"awk 'BEGIN{s="x"; for(i=0;i<40;i++) s=s s; print length(s)}'"#,
            Duration::from_secs(60),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert!(!o.success() && !o.timed_out, "{o:?}");
    // Big output is bounded.
    let o = exec
        .run("seq 1 100000", Duration::from_secs(10), Class::ReadOnly)
        .await
        .unwrap();
    assert!(
        o.stdout.len() < 9000 && o.omitted_bytes > 500_000,
        "{}",
        o.stdout.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docker_api_proxy_allows_the_instances_containers_and_nothing_else() {
    use operator::runtime::docker::api_proxy::{ApiProxy, Scope};
    let Some(c) = Cluster::start_docker(51, "") else {
        return;
    };
    let sandbox = c.runtime().sandbox().unwrap().unwrap();
    let _proxy = ApiProxy::serve(
        &sandbox.api_dir.join("test.sock"),
        Scope {
            instance: sandbox.instance,
            owner: sandbox.owner.clone(),
            engine: sandbox.engine.clone(),
        },
    )
    .await
    .unwrap();
    // A container of someone else's, on the same engine.
    let bystander = format!("bystander-{}", std::process::id());
    let (ok, out) = docker(&[
        "create",
        "--name",
        &bystander,
        "operator/toolbox",
        "sleep",
        "60",
    ]);
    assert!(ok, "{out}");
    let bystander_id = out.trim().to_string();
    /// Removes the bystander however the test ends.
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            docker(&["rm", "-f", &self.0]);
        }
    }
    let _remove = Remove(bystander.clone());
    let toolbox = container(&c, "toolbox");
    // The docker CLI inside the toolbox, as the agent runs it.
    let agent = |cmd: &str| {
        let out = Command::new("docker")
            .args([
                "exec",
                "-e",
                &format!("DOCKER_HOST=unix://{}/test.sock", sandbox.api_dir_inside),
                &toolbox,
                "sh",
                "-c",
                cmd,
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!("{}{}", text(&out.stdout), text(&out.stderr)),
        )
    };
    let refused = [
        ("docker rm -f ratelimiter-1", "removing containers"),
        ("docker container prune -f", "removing containers"),
        (
            "docker run --rm operator/toolbox true",
            "creating containers",
        ),
        ("docker create operator/toolbox", "creating containers"),
        ("docker volume ls", "volumes"),
        (
            &format!("docker volume rm {}-data", container(&c, "redis")),
            "volumes",
        ),
        ("docker network ls", "networks"),
        (
            "docker network disconnect operator-51 operator-51-redis",
            "networks",
        ),
        ("docker images", "images"),
        ("docker pull debian", "images"),
        ("docker system prune -f", "removing containers"),
        ("docker system df", "system calls"),
        (
            "docker cp ratelimiter-1:/etc/passwd /tmp/p",
            "not among the allowed",
        ),
        ("docker update --memory 8m ratelimiter-1", "`update`"),
        ("docker exec faultproxy true", "part of the test rig"),
        ("docker exec -u root redis id", "another user"),
        ("docker exec --privileged redis true", "privileged"),
        ("DOCKER_API_VERSION=1.23 docker start redis", "before 1.24"),
        ("docker stop toolbox", "part of the test rig"),
        ("docker kill faultproxy", "part of the test rig"),
        (&format!("docker start {bystander}"), "no container"),
        (&format!("docker start {bystander_id}"), "no container"),
        (
            &format!("docker inspect --type container {bystander}"),
            "no container",
        ),
    ];
    // Nor can it reach around the proxy to the fault proxy's controls: they need a token.
    let (_, out) = agent(
        "curl -s -X DELETE http://faultproxy:7000/links/ratelimiter-1%3Eredis/toxics/fault-1",
    );
    assert!(out.contains("needs the proxy's token"), "{out}");
    // Raw calls a CLI would not make: a second `filters` that would widen a listing is
    // refused; a body on a start (host settings, to an old engine) never reaches the engine,
    // which would refuse it with a 400, so the start of a running node is a plain 304.
    let raw = |how: &str| {
        agent(&format!(
            "curl -s -o /dev/null -w '%{{http_code}}' --unix-socket {}/test.sock {how}",
            sandbox.api_dir_inside
        ))
        .1
    };
    assert_eq!(
        raw("'http://docker/v1.41/containers/json?filters=%7B%7D&filters=%7B%7D'"),
        "403"
    );
    assert_eq!(
        raw(
            "-X POST -H 'Content-Type: application/json' -d '{\"Binds\":[\"/:/host\"]}' http://docker/v1.41/containers/ratelimiter-3/start"
        ),
        "304"
    );
    for (cmd, why) in refused {
        let (ok, out) = agent(cmd);
        assert!(
            !ok && out.contains(why),
            "`{cmd}` was not refused for {why}: {out}"
        );
    }
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Status}}", &bystander])
            .1
            .trim(),
        "created"
    );
    // What the agent may do, by node name or by container name.
    let (ok, ps) = agent("docker ps -a --format '{{.Names}}'");
    assert!(ok, "{ps}");
    let mut names: Vec<&str> = ps.lines().collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "operator-51-faultproxy",
            "operator-51-ratelimiter-1",
            "operator-51-ratelimiter-2",
            "operator-51-ratelimiter-3",
            "operator-51-redis",
            "operator-51-toolbox"
        ],
        "only this instance's containers are listed"
    );
    let allowed = [
        (
            "docker inspect -f '{{.State.Status}}' ratelimiter-1",
            "running",
        ),
        ("docker logs --tail 1 redis", "Ready to accept connections"),
        ("docker logs --tail 1 faultproxy", ""),
        (
            "docker stats --no-stream --format '{{.Name}}' operator-51-redis",
            "operator-51-redis",
        ),
        ("docker top redis", "redis-server"),
        ("docker exec redis redis-cli PING", "PONG"),
        ("echo piped | docker exec -i ratelimiter-3 cat", "piped"),
        ("docker pause ratelimiter-3", "ratelimiter-3"),
        ("docker unpause ratelimiter-3", "ratelimiter-3"),
        ("docker stop -t 1 ratelimiter-3", "ratelimiter-3"),
        ("docker start ratelimiter-3", "ratelimiter-3"),
        ("docker kill ratelimiter-2", "ratelimiter-2"),
        (
            "docker start operator-51-ratelimiter-2",
            "operator-51-ratelimiter-2",
        ),
        ("docker restart -t 1 ratelimiter-1", "ratelimiter-1"),
        // The environment's names, never its values (which the engine itself has).
        (
            "docker inspect -f '{{json .Config.Env}}' ratelimiter-1",
            "RATELIMITER_NODE_ID=<hidden by the operator's proxy>",
        ),
    ];
    for (cmd, expect) in allowed {
        let (ok, out) = agent(cmd);
        assert!(ok && out.contains(expect), "`{cmd}` failed: {out}");
    }
    assert_eq!(state_of(&c, "ratelimiter-2"), "running");
    let (_, direct) = docker(&[
        "inspect",
        "-f",
        "{{json .Config.Env}}",
        &container(&c, "ratelimiter-1"),
    ]);
    assert!(
        direct.contains("RATELIMITER_NODE_ID=ratelimiter-1"),
        "{direct}"
    );
    let (_, through) = agent("docker inspect ratelimiter-1");
    assert!(
        !through.contains("RATELIMITER_NODE_ID=ratelimiter-1") && through.contains("\"Image\""),
        "{through}"
    );
}

#[test]
fn rules_left_by_a_crash_mid_injection_are_swept_and_only_they() {
    let Some(c) = Cluster::start_docker(52, "") else {
        return;
    };
    let id = c.fault_left_by_a_crash(
        "network_partition",
        "ratelimiter-2",
        r#"{"impairment":{"type":"partition","mode":"refuse"}}"#,
    );
    let tag = format!("fault-{id}");
    // The crashed process got as far as one rule; someone else has one too.
    let _ = iptables_run(
        &c,
        "ratelimiter-2",
        &[
            "-I",
            "OUTPUT",
            "-d",
            "192.0.2.7",
            "-m",
            "comment",
            "--comment",
            &tag,
            "-j",
            "DROP",
        ],
    );
    someone_elses_rule(&c, "ratelimiter-2");
    c.ok(&["chaos", "list"]);
    let rules = iptables(&c, "ratelimiter-2");
    assert!(
        !rules.contains(&tag),
        "the sweep left the crashed fault's rule: {rules}"
    );
    assert!(rules.contains("someone-else"), "{rules}");
    let all = c.json(&["chaos", "list", "--all"]);
    assert_eq!(all["faults"][0]["status"], "healed", "{all}");
}

#[test]
fn the_app_starts_a_docker_cluster_repairs_it_with_approval_and_stops_it() {
    use common::tmux::{Tmux, app_command, kill_approve_and_verify};
    let Some(mut c) = Cluster::prepare_docker(53, FAST) else {
        return;
    };
    // The app starts it; should the test fail, `down` still runs when `c` goes.
    c.mark_up();
    let t = Tmux::start(&app_command(&c, "tui --mode approve"), 120, 36);
    // The app brings the cluster up itself, on the runtime the config names.
    t.wait("4/4 up", 60);
    assert_eq!(state_of(&c, "toolbox"), "running");
    kill_approve_and_verify(&t, &c, "docker start ratelimiter-2");
    // Quit, stopping the cluster the app started: nothing of it is left.
    t.keys(&["q"]);
    t.wait("Before quitting", 5);
    t.keys(&["y"]);
    let s = t.wait("TERM=", 30);
    assert!(s.contains("TUI-EXIT=0") && s.contains("TERM=COOKED"), "{s}");
    assert!(leftovers(&c).is_empty(), "{:?}", leftovers(&c));
}

/// `curl` on a unix socket: the HTTP status and the body of one request.
fn over_socket(socket: &str, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut child = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            socket,
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
            &format!("http://docker{path}"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("curl");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let out = text(&out.stdout);
    let (body, code) = out.rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}

/// What the engine made of an exec: `(privileged, user, command)` from `GET /exec/{id}/json`.
fn exec_as_made(engine: &str, id: &str) -> (bool, String, String) {
    let (code, v) = over_socket(engine, "GET", &format!("/exec/{id}/json"), b"");
    assert_eq!(code, 200, "{v}");
    let p = &v["ProcessConfig"];
    (
        p["privileged"].as_bool().unwrap_or(false),
        p["user"].as_str().unwrap_or("").to_string(),
        format!(
            "{} {}",
            p["entrypoint"].as_str().unwrap_or(""),
            p["arguments"]
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_an_exec_body_gets_past_the_proxy_as_the_engine_reads_it() {
    use operator::runtime::docker::api_proxy::{ApiProxy, Scope};
    let Some(c) = Cluster::start_docker(54, "") else {
        return;
    };
    let sandbox = c.runtime().sandbox().unwrap().unwrap();
    let socket = sandbox.api_dir.join("corpus.sock");
    let _proxy = ApiProxy::serve(
        &socket,
        Scope {
            instance: sandbox.instance,
            owner: sandbox.owner.clone(),
            engine: sandbox.engine.clone(),
        },
    )
    .await
    .unwrap();
    let socket = socket.display().to_string();
    let engine = sandbox
        .engine
        .strip_prefix("unix://")
        .expect("the engine on a unix socket")
        .to_string();
    let redis = container(&c, "redis");
    // The user an exec runs as when it asks for none: the container's own.
    let own = docker(&["inspect", "-f", "{{.Config.User}}", &redis])
        .1
        .trim()
        .to_string();
    // Bodies that ask, in some spelling, for a privileged exec or one as another user. Each
    // is sent to the engine directly too: where the engine honours it, the spelling is a real
    // attack, and the proxy must refuse it or strip it.
    let dangerous: &[&[u8]] = &[
        br#"{"Cmd":["id"],"Privileged":true}"#,
        br#"{"Cmd":["id"],"privileged":true}"#,
        br#"{"Cmd":["id"],"PRIVILEGED":true}"#,
        br#"{"Cmd":["id"],"pRIVILEGED":true}"#,
        br#"{"Cmd":["id"],"Privileged":false,"privileged":true}"#,
        br#"{"Cmd":["id"],"\u0050rivileged":true}"#,
        br#"{"Cmd":["id"],"\u0070rivileged":true}"#,
        br#"{"Cmd":["id"],"User":"root"}"#,
        br#"{"Cmd":["id"],"user":"root"}"#,
        br#"{"Cmd":["id"],"uSeR":"0"}"#,
        "{\"Cmd\":[\"id\"],\"U\u{17f}er\":\"0\"}".as_bytes(),
        br#"{"Cmd":["id"],"U\u017fer":"0"}"#,
        br#"{"Cmd":["id"],"User":"","USER":"root"}"#,
        br#"{"Cmd":["id"],"User":"","user":"1:1"}"#,
        br#"{"Cmd":["id"],"User":"\u0072oot"}"#,
        br#"{"Cmd":["id"],"User":"0:0","Privileged":true}"#,
        br#"{"Cmd":["id"],"PrIvIlEgEd":true,"UsEr":"root"}"#,
    ];
    // Bodies the engine would take but we do not allow, or garbage.
    let odd: &[&[u8]] = &[
        br#"{"Cmd":["id"],"HostConfig":{"Privileged":true}}"#,
        br#"{"Cmd":["id"],"Privileged":"true"}"#,
        br#"{"Cmd":["id"],"Privileged":1}"#,
        "{\"Cmd\":[\"id\"],\"Us\u{e9}r\":\"root\"}".as_bytes(),
        b"{\"Cmd\":[\"id\"],\"User\":\"\xff\"}",
        br#"{"Cmd":["id"]} {"Privileged":true}"#,
        br#"{"Cmd":["id"],"Privileged":true"#,
        br#"[{"Cmd":["id"],"Privileged":true}]"#,
        b"",
    ];
    let path = |who: &str| format!("/v1.41/containers/{who}/exec");
    let mut engine_honoured = 0;
    for body in dangerous {
        let shown = String::from_utf8_lossy(body);
        let (code, v) = over_socket(&engine, "POST", &path(&redis), body);
        assert_eq!(code, 201, "the engine refused {shown}: {v}");
        let (privileged, user, _) = exec_as_made(&engine, v["Id"].as_str().unwrap());
        if privileged || user != own {
            engine_honoured += 1;
        }
    }
    assert_eq!(
        engine_honoured,
        dangerous.len(),
        "every dangerous spelling is one the engine honours"
    );
    for body in dangerous.iter().chain(odd) {
        let shown = String::from_utf8_lossy(body);
        let (code, v) = over_socket(&socket, "POST", &path("redis"), body);
        if code == 201 {
            let made = exec_as_made(&engine, v["Id"].as_str().unwrap());
            panic!("the proxy let {shown} through; the engine made {made:?}");
        }
        assert_eq!(code, 403, "{shown}: {v}");
    }
    // What the CLI sends is let through, written anew, and made as asked: unprivileged, as
    // the container's user, running the command given.
    let cli = br#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["redis-cli","PING"]}"#;
    for body in [
        &cli[..],
        br#"{"cmd":["redis-cli","PING"],"privileged":false,"user":""}"#,
    ] {
        let (code, v) = over_socket(&socket, "POST", &path("redis"), body);
        assert_eq!(code, 201, "{v}");
        let (privileged, user, cmd) = exec_as_made(&engine, v["Id"].as_str().unwrap());
        assert!(!privileged && user == own, "{privileged} {user}");
        assert!(
            cmd.starts_with("redis-cli") && cmd.contains("PING"),
            "{cmd}"
        );
        // Its start, in a spelling of its own, is parsed and written anew too.
        let id = v["Id"].as_str().unwrap();
        let (code, v) = over_socket(
            &socket,
            "POST",
            &format!("/v1.41/exec/{id}/start"),
            br#"{"detach":true,"TTY":false}"#,
        );
        assert_eq!(code, 200, "{v}");
        let (code, v) = over_socket(
            &socket,
            "POST",
            &format!("/v1.41/exec/{id}/start"),
            br#"{"Detach":true,"HostConfig":{}}"#,
        );
        assert_eq!(code, 403, "{v}");
    }
}

/// Runs one test of this file in a child process of this very test binary, with an engine
/// address that answers nothing.
fn without_an_engine(test: &str, require: bool) -> std::process::Output {
    let skipped = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", test, "--test-threads=1"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("OPERATOR_TEST_SKIPPED", skipped.path());
    if require {
        cmd.env("OPERATOR_REQUIRE_DOCKER", "1");
    } else {
        cmd.env_remove("OPERATOR_REQUIRE_DOCKER");
    }
    let out = cmd.output().unwrap();
    let noted = std::fs::read_to_string(skipped.path()).unwrap_or_default();
    assert_eq!(
        noted.is_empty(),
        require,
        "a skip is noted for test.sh only when it is allowed: {noted:?}"
    );
    out
}

#[test]
fn a_missing_engine_is_a_visible_skip_or_when_required_a_failure() {
    let test = "up_status_and_down_leave_nothing_behind";
    let out = without_an_engine(test, false);
    assert!(out.status.success(), "{out:?}");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("SKIPPED {test}: no Docker engine answers here")),
        "the reason is on stderr, past libtest's capture: {err}"
    );
    let out = without_an_engine(test, true);
    assert!(!out.status.success(), "{out:?}");
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        all.contains("needs the Docker engine (OPERATOR_REQUIRE_DOCKER=1)"),
        "{all}"
    );
}

/// A listener of the test's own on this machine, at `ip`: whether anything ever connected.
struct Listener {
    socket: std::net::TcpListener,
    port: u16,
}

impl Listener {
    fn at(ip: &str) -> Self {
        let socket = std::net::TcpListener::bind((ip, 0)).expect("listen at the gateway");
        socket.set_nonblocking(true).unwrap();
        let port = socket.local_addr().unwrap().port();
        Self { socket, port }
    }
    fn reached(&self) -> bool {
        self.socket.accept().is_ok()
    }
}

/// The gateway (this machine) of a Docker network.
fn gateway_of(network: &str) -> String {
    let (ok, out) = docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        network,
    ]);
    assert!(ok, "{out}");
    out.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_toolbox_reaches_its_nodes_and_resolver_and_nothing_else() {
    use operator::agent::executor::Executor;
    use operator::agent::toolbox::ToolboxExecutor;
    use operator::policy::Class;
    let Some(c) = Cluster::start_docker(55, "") else {
        return;
    };
    let sandbox = c.runtime().sandbox().unwrap().expect("a sandbox on docker");
    assert_eq!(sandbox.egress_open, None, "the rules were not set");
    let exec = ToolboxExecutor::new(sandbox, 4096);
    let network = format!("operator-{}", c.instance);
    // This machine at the instance network's gateway, and at another network's.
    let host = Listener::at(&gateway_of(&network));
    let other_net = format!("operator-test-other-{}", std::process::id());
    let (ok, out) = docker(&["network", "create", &other_net]);
    assert!(ok, "{out}");
    let other = Listener::at(&gateway_of(&other_net));
    let o = exec
        .run(
            &format!(
                "getent hosts ratelimiter-1 && curl -s --max-time 5 ratelimiter-1:8000/health; \
                 curl -s --max-time 3 http://{}:{}/ ; echo host=$?; \
                 curl -s --max-time 3 http://{}:{}/ ; echo other=$?",
                gateway_of(&network),
                host.port,
                gateway_of(&other_net),
                other.port
            ),
            Duration::from_secs(30),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    let _ = docker(&["network", "rm", &other_net]);
    // Its resolver and its nodes answer.
    assert!(o.stdout.contains("\"status\":\"ok\""), "{o:?}");
    // Nothing reached either listener.
    assert!(
        !o.stdout.contains("host=0") && !o.stdout.contains("other=0"),
        "{o:?}"
    );
    assert!(
        !host.reached(),
        "the toolbox reached this machine at its gateway"
    );
    assert!(
        !other.reached(),
        "the toolbox reached another network's gateway"
    );
    // A toolbox started again is confined again.
    c.ok(&["node", "restart", "toolbox"]);
    let host2 = Listener::at(&gateway_of(&network));
    let o = exec
        .run(
            &format!(
                "curl -s --max-time 3 http://{}:{}/ ; echo host=$?",
                gateway_of(&network),
                host2.port
            ),
            Duration::from_secs(30),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert!(!o.stdout.contains("host=0"), "{o:?}");
    assert!(!host2.reached(), "a restarted toolbox reached this machine");
}
