//! The local sandbox, judged by what happened: commands run through the real executor under
//! bubblewrap, and each test looks at the machine afterwards — canaries never printed, files
//! never written, processes still alive or gone, nodes repaired through the verb socket.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::alive;
use operator::agent::executor::{ExecOutput, Executor, LocalEnv, LocalExecutor, operator_dirs};
use operator::agent::sandbox::{Plan, probe};
use operator::policy::Class;

/// A state dir laid out as the operator's: config, DB, the fault proxy's token, an instance
/// folder with a node's log.
struct State {
    dir: tempfile::TempDir,
    canary: String,
}

impl State {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let canary = format!("canary-{:016x}", rand_u64());
        let s = Self { dir, canary };
        let inst = s.instance();
        std::fs::create_dir_all(inst.join("logs")).unwrap();
        std::fs::write(inst.join("logs/redis.log"), "ready to accept connections\n").unwrap();
        std::fs::write(inst.join("instance.json"), &s.canary).unwrap();
        std::fs::write(s.state().join("operator.db"), &s.canary).unwrap();
        std::fs::write(s.state().join("instances/0.faultproxy.token"), &s.canary).unwrap();
        std::fs::write(s.dir.path().join("config.toml"), &s.canary).unwrap();
        s
    }
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }
    fn instance(&self) -> PathBuf {
        self.state().join("instances/0")
    }
    fn executor(&self) -> LocalExecutor {
        let inst = self.instance();
        let plan = Plan::for_instance(
            &inst,
            operator_dirs().into_iter().next(),
            self.state().join("instances/0.sandbox/agent-test.sock"),
            None,
        )
        .expect("bubblewrap is installed (scripts/setup.sh installs it)");
        probe(&plan).expect("bubblewrap makes a sandbox here");
        LocalExecutor::new(LocalEnv {
            cwd: &inst,
            state_dir: &self.state(),
            db: &self.state().join("operator.db"),
            instance: 0,
            config: Some(&self.dir.path().join("config.toml")),
            output_limit: 64 * 1024,
        })
        .sandboxed(plan)
    }
}

fn rand_u64() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.as_nanos() as u64 ^ (u64::from(std::process::id()) << 32)
}

async fn run(e: &LocalExecutor, command: &str) -> ExecOutput {
    e.run(command, Duration::from_secs(20), Class::ReadOnly)
        .await
        .unwrap()
}

fn all(o: &ExecOutput) -> String {
    format!("{}{}", o.stdout, o.stderr)
}

#[tokio::test]
async fn nothing_of_the_operators_state_or_home_can_be_read() {
    let s = State::new();
    let e = s.executor();
    // A canary in HOME, and one in this process's environment.
    let home = dirs::home_dir().unwrap();
    let home_canary = home.join(format!(".operator-sandbox-canary-{}", std::process::id()));
    std::fs::write(&home_canary, &s.canary).unwrap();
    let state = s.state();
    let attempts = [
        format!("cat {}/config.toml", s.dir.path().display()),
        format!("cat {}/operator.db", state.display()),
        format!("cat {}/instances/0.faultproxy.token", state.display()),
        format!("cat {}/instances/0/instance.json", state.display()),
        "cat instance.json ../0.faultproxy.token ../../operator.db".into(),
        format!("cat {}", home_canary.display()),
        "grep -ra canary- / 2>/dev/null | head -3".into(),
        "cat /proc/*/environ | tr '\\0' '\\n' | grep -i -e canary -e key".into(),
        "ls -la /run /var/run /root /home 2>&1".into(),
        "curl -s --max-time 2 --unix-socket /run/docker.sock http://x/version; curl -s --max-time 2 --unix-socket /var/run/docker.sock http://x/version".into(),
    ];
    for a in &attempts {
        let o = run(&e, a).await;
        assert!(
            !all(&o).contains(&s.canary),
            "`{a}` read a canary: {}",
            all(&o)
        );
        if a.contains("docker.sock") {
            assert!(
                !o.stdout.contains("ApiVersion"),
                "`{a}` reached the Docker engine: {}",
                o.stdout
            );
        }
    }
    // What a command may read: the nodes' logs.
    let o = run(&e, "cat logs/redis.log && df -h . >/dev/null && echo ok").await;
    assert!(
        o.stdout.contains("ready to accept") && o.stdout.contains("ok"),
        "{o:?}"
    );
    let _ = std::fs::remove_file(&home_canary);
}

#[tokio::test]
async fn writes_go_only_to_scratch_and_nothing_remounts() {
    let s = State::new();
    let e = s.executor();
    let inst = s.instance();
    let targets = [
        inst.join("written"),
        inst.join("logs/written"),
        s.state().join("written"),
        PathBuf::from("/usr/local/operator-sandbox-written"),
        PathBuf::from("/etc/operator-sandbox-written"),
    ];
    for t in &targets {
        run(
            &e,
            &format!("echo x > {} ; touch {}", t.display(), t.display()),
        )
        .await;
        assert!(!t.exists(), "the sandbox wrote {}", t.display());
    }
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    let o = run(
        &e,
        "mount -o remount,rw /usr; unshare -r sh -c 'mount -o remount,rw /usr; touch /usr/operator-sandbox-written'; echo '|/bin/sh' > /proc/sys/kernel/core_pattern; echo x > /proc/sysrq-trigger; echo done",
    )
    .await;
    assert!(o.stdout.contains("done"), "{o:?}");
    assert!(!Path::new("/usr/operator-sandbox-written").exists());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        pattern,
        "the sandbox changed a kernel setting"
    );
    // No user namespace (every capability over mounts of its own), no keyring (nobody's is
    // shared by every sandbox and outlives each command): refused by the seccomp filter.
    let o = run(
        &e,
        "unshare -r true; echo unshare=$?; python3 -c 'import ctypes; l = ctypes.CDLL(None); print(\"add_key=%d\" % l.syscall(248, b\"user\", b\"operator-test\", b\"v\", 1, -4))'; cat /proc/keys",
    )
    .await;
    assert!(o.stdout.contains("unshare=1"), "{o:?}");
    assert!(o.stdout.contains("add_key=-1"), "{o:?}");
    assert!(!o.stdout.contains("operator-test"), "{o:?}");
    // Ordinary programs (which fork, spawn threads, and use clone3 where the C library has
    // it) still run.
    let o = run(&e, "sort logs/redis.log | head -1; python3 -c 'import threading; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join()'").await;
    assert!(
        o.stdout.contains("ready") && o.stdout.contains("thread"),
        "{o:?}"
    );
    // Scratch is the one writable folder, and /tmp a private one.
    let o = run(
        &e,
        "echo kept > scratch/note && echo t > /tmp/t && cat /tmp/t",
    )
    .await;
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    assert_eq!(
        std::fs::read_to_string(inst.join("scratch/note")).unwrap(),
        "kept\n"
    );
    assert!(!Path::new("/tmp/t").exists() || std::fs::read_to_string("/tmp/t").unwrap() != "t\n");
}

/// Processes on this machine whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) && alive(pid) {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn a_command_signals_nothing_outside_and_leaves_nothing_behind() {
    let s = State::new();
    let e = s.executor();
    // A process of the operator's (as a node is): the sandbox cannot see or signal it.
    let mut node = std::process::Command::new("sleep")
        .arg("301")
        .spawn()
        .unwrap();
    let node_pid = node.id() as i32;
    let me = std::process::id();
    let o = run(
        &e,
        &format!("kill -9 {node_pid} {me}; pkill -9 sleep; echo $$; ls /proc | grep -c '^[0-9]'"),
    )
    .await;
    assert!(
        alive(node_pid),
        "the sandbox killed a process outside: {o:?}"
    );
    // Its own namespace holds only itself.
    let count: usize = o.stdout.lines().last().unwrap().trim().parse().unwrap();
    assert!(count < 10, "the sandbox sees {count} processes: {o:?}");
    let _ = node.kill();
    let _ = node.wait();

    // Left running in the background, in a session of its own, or past a timeout: gone.
    let marker = format!("{}.{}", 300, std::process::id());
    let o = run(
        &e,
        &format!("setsid sleep {marker} & nohup sleep {marker} >/dev/null 2>&1 & (sleep {marker} &) ; echo started"),
    )
    .await;
    assert!(o.stdout.contains("started"), "{o:?}");
    let o = e
        .run(
            &format!("sleep {marker} & setsid sleep {marker} & sleep {marker}"),
            Duration::from_millis(500),
            Class::ReadOnly,
        )
        .await
        .unwrap();
    assert!(o.timed_out, "{o:?}");
    let gone = common::wait_for(Duration::from_secs(5), || {
        processes_with(&marker).is_empty()
    });
    assert!(gone, "left behind: {:?}", processes_with(&marker));
}

#[tokio::test]
async fn the_sandboxed_operator_reads_no_state_and_changes_only_with_its_commands_token() {
    let s = State::new();
    let e = s.executor();
    // The client takes none of the operator's own options, and serves no other verb.
    for refused in [
        "operator --config /etc/passwd status",
        "operator status --db /tmp/x.db",
        "operator node start redis --instance 7",
        "operator down",
        "operator chaos heal --all",
        "operator tickets resolve 1",
    ] {
        let o = run(&e, refused).await;
        assert_ne!(o.exit_code, Some(0), "`{refused}` was served: {o:?}");
    }
    // No token: a read-only command cannot start or stop a node.
    let o = run(&e, "operator node stop redis").await;
    assert_eq!(o.exit_code, Some(2), "{o:?}");
    assert!(o.stderr.contains("no token"), "{o:?}");
    // A command allowed as mutating cannot take a node out of service.
    let o = e
        .run(
            "operator node kill redis",
            Duration::from_secs(20),
            Class::Mutating,
        )
        .await
        .unwrap();
    assert!(o.stderr.contains("no token"), "{o:?}");
    // Another process cannot borrow a finished command's token.
    let o = e
        .run(
            "echo $OPERATOR_VERB_TOKEN",
            Duration::from_secs(20),
            Class::Destructive,
        )
        .await
        .unwrap();
    let token = o.stdout.trim().to_string();
    assert_eq!(token.len(), 48, "{o:?}");
    let o = run(
        &e,
        &format!("OPERATOR_VERB_TOKEN={token} operator node stop redis"),
    )
    .await;
    assert!(o.stderr.contains("no token"), "{o:?}");
}

/// The whole path: a real cluster, a node killed, `operator node start` run in the sandbox
/// with a mutating grant, and the node healthy again; `kill` needs a destructive grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandboxed_operator_node_start_repairs_a_killed_node() {
    let c = common::Cluster::start("");
    let state = c.state_dir();
    let inst = state.join("instances/0");
    let plan = Plan::for_instance(
        &inst,
        operator_dirs().into_iter().next(),
        state.join("instances/0.sandbox/agent-test.sock"),
        None,
    )
    .unwrap();
    probe(&plan).unwrap();
    let cfg = c.config_path();
    let db = c.db_path();
    let e = LocalExecutor::new(LocalEnv {
        cwd: &inst,
        state_dir: &state,
        db: &db,
        instance: 0,
        config: Some(&cfg),
        output_limit: 64 * 1024,
    })
    .sandboxed(plan);
    let o = run(&e, "operator status").await;
    assert!(o.stdout.contains("ratelimiter-2"), "{o:?}");
    // Read-only: a kill is refused and the node stays up.
    let o = run(&e, "operator node kill ratelimiter-2").await;
    assert_ne!(o.exit_code, Some(0), "{o:?}");
    assert!(c.ok(&["status"]).contains("running"));
    let o = e
        .run(
            "operator node kill ratelimiter-2",
            Duration::from_secs(30),
            Class::Destructive,
        )
        .await
        .unwrap();
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    let status = c.ok(&["status", "--json"]);
    let nodes: serde_json::Value = serde_json::from_str(&status).unwrap();
    let state_of = |nodes: &serde_json::Value, n: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == n)
            .map(|x| x["state"].as_str().unwrap_or_default().to_string())
            .unwrap()
    };
    assert_ne!(state_of(&nodes, "ratelimiter-2"), "running", "{status}");
    let o = e
        .run(
            "operator node start ratelimiter-2",
            Duration::from_secs(60),
            Class::Mutating,
        )
        .await
        .unwrap();
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    // The node outlives the command's sandbox: it was started by this process, outside.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = c.ok(&["status", "--json"]);
    let nodes: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(state_of(&nodes, "ratelimiter-2"), "running", "{status}");
    let healthy = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "ratelimiter-2")
        .unwrap()["healthy"]
        .as_bool();
    assert_eq!(healthy, Some(true), "{status}");
    // A pause is lifted the same way.
    c.ok(&["node", "pause", "ratelimiter-2"]);
    let nodes: serde_json::Value = serde_json::from_str(&c.ok(&["status", "--json"])).unwrap();
    assert_eq!(state_of(&nodes, "ratelimiter-2"), "paused");
    let o = e
        .run(
            "operator node resume ratelimiter-2",
            Duration::from_secs(60),
            Class::Mutating,
        )
        .await
        .unwrap();
    assert_eq!(o.exit_code, Some(0), "{o:?}");
    let nodes: serde_json::Value = serde_json::from_str(&c.ok(&["status", "--json"])).unwrap();
    assert_eq!(state_of(&nodes, "ratelimiter-2"), "running");
}

/// Where bubblewrap cannot run, auto mode refuses to start and says why and what to do; approve
/// mode starts, saying its commands run unsandboxed.
#[test]
fn without_bubblewrap_auto_refuses_and_approve_says_unsandboxed() {
    use std::io::{BufRead, BufReader};
    let c = common::Cluster::prepare("agent.bwrap = \"/nonexistent/bwrap\"\n");
    let out = c.cmd(&["agent", "--once", "--backend", "runbook"]);
    let err = common::text(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("auto mode runs commands only in a sandbox")
            && err.contains("/nonexistent/bwrap")
            && err.contains("--mode approve")
            && err.contains("agent.sandbox = false"),
        "{err}"
    );
    let mut agent = c
        .command(&["agent", "--backend", "runbook", "--mode", "approve"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut said = String::new();
    for line in BufReader::new(agent.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("Ctrl-C stops") {
            break;
        }
    }
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        said.contains("UNSANDBOXED") && said.contains("/nonexistent/bwrap"),
        "{said}"
    );
}

/// The socket's calls run outside the sandbox, so a command cannot start more than a few at
/// once, a call ends with the command that made it, and help shows none of the operator's
/// paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verb_calls_are_few_at_once_end_with_their_command_and_hide_the_state() {
    let s = State::new();
    let e = s.executor();
    let o = run(&e, "operator status --help").await;
    let state = s.state().display().to_string();
    assert!(o.stdout.contains("--state-dir"), "{o:?}");
    assert!(
        !o.stdout.contains(&state),
        "help showed the state dir: {}",
        o.stdout
    );
    // Forty calls at once from one command: the operator's processes on this machine never
    // pass the limit (four), and none outlives the command.
    let running = tokio::spawn({
        let e = e.clone();
        async move {
            e.run(
                "for i in $(seq 40); do operator policy check -- 'ls' >/dev/null & done; sleep 1",
                Duration::from_millis(1500),
                Class::ReadOnly,
            )
            .await
        }
    });
    let needle = "policy\0check\0--\0ls";
    // The calls' processes are this user's; the clients in the sandbox are nobody's.
    let calls = || {
        use std::os::unix::fs::MetadataExt;
        let me = std::fs::metadata("/proc/self").unwrap().uid();
        processes_with(needle)
            .into_iter()
            .filter(|p| std::fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() == me))
            .count()
    };
    let mut most = 0;
    while !running.is_finished() {
        most = most.max(calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.await.unwrap().unwrap();
    assert!(most >= 1, "no call was seen running");
    assert!(most <= 4, "{most} operator processes at once");
    let gone = common::wait_for(Duration::from_secs(5), || processes_with(needle).is_empty());
    assert!(
        gone,
        "calls outlived their command: {:?}",
        processes_with(needle)
    );
}

/// A reader that builds a string without end fails at the command's memory bound inside the
/// sandbox too, and the bound is one the command cannot raise.
#[tokio::test]
async fn a_string_that_doubles_stops_at_the_memory_bound_the_command_cannot_raise() {
    let s = State::new();
    let e = s.executor();
    let o = run(
        &e,
        r#"awk 'BEGIN{s="x"; for(i=0;i<40;i++) s=s s; print length(s)}'"#,
    )
    .await;
    assert!(!o.success() && !o.timed_out, "{o:?}");
    assert!(all(&o).to_lowercase().contains("memory"), "{o:?}");
    let o = run(&e, "ulimit -d; ulimit -d unlimited && echo raised").await;
    assert_eq!(
        o.stdout.trim(),
        (operator::agent::executor::COMMAND_MEMORY / 1024).to_string(),
        "{o:?}"
    );
}
