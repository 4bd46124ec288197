//! A real cluster for integration tests: `operator up` in a temporary state dir (own ports,
//! own DB), torn down with `operator down` when the test ends, however it ends.

#![allow(dead_code)]

pub mod fake_llm;
pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use operator::config::Config;
use operator::monitor::{CycleReport, Monitor};
use operator::paths::StateDir;
use operator::runtime::Runtime;
#[allow(unused_imports)]
pub use operator::store::{AuditDb, LedgerDb, TicketDb};
use operator::store::{Sqlite, Store};
use operator::subjects::ratelimiter::RateLimiterSubject;
use operator::tickets::{Ticket, TicketFilter};
use serde_json::Value;

pub const OPERATOR: &str = env!("CARGO_BIN_EXE_operator");
pub const RATELIMITER: &str = env!("CARGO_BIN_EXE_ratelimiter");

/// Settings that keep tests quick; each test adds its own (top-level dotted keys).
const BASE_CONFIG: &str = "ratelimiter.probe_timeout = \"300ms\"\n";

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub instance: u32,
    up: bool,
}

impl Cluster {
    /// Brings up a cluster with `extra` TOML appended to the base config: top-level dotted
    /// keys such as `ratelimiter.nodes = 2`, or tables other than those the base sets.
    pub fn start(extra: &str) -> Self {
        Self::prepare(extra).up()
    }

    /// `operator up SUBJECT` with `extra` config, taken down on drop.
    pub fn start_subject(subject: &str, extra: &str) -> Self {
        Self::prepare(extra).up_subject(subject)
    }

    /// `operator up SUBJECT`, which must succeed; taken down on drop.
    pub fn up_subject(mut self, subject: &str) -> Self {
        let out = self.cmd(&["up", subject]);
        assert!(
            out.status.success(),
            "operator up {subject} failed: {}",
            text(&out.stderr)
        );
        self.up = true;
        self
    }

    /// `operator up`, which must succeed; from then on the cluster is taken down on drop.
    fn up(mut self) -> Self {
        let out = self.cmd(&["up"]);
        assert!(
            out.status.success(),
            "operator up failed: {}",
            text(&out.stderr)
        );
        self.up = true;
        self
    }

    /// A cluster of containers on the Docker runtime as instance `instance` (container names
    /// carry it: tests that run at once use different ones), or `None`, said why, when this
    /// machine has no Docker engine.
    pub fn start_docker(instance: u32, extra: &str) -> Option<Self> {
        Some(Self::prepare_docker(instance, extra)?.up())
    }

    /// A Docker cluster's folders and config, not started; `None` without an engine.
    pub fn prepare_docker(instance: u32, extra: &str) -> Option<Self> {
        if let Err(why) = docker_engine() {
            skip(&format!("no Docker engine answers here ({why})"));
            return None;
        }
        clear_test_instance(instance);
        let mut c = Self::prepare(&format!("runtime.kind = \"docker\"\n{extra}"));
        c.instance = instance;
        Some(c)
    }

    /// A cluster's folders and config, not started.
    pub fn prepare(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = String::new();
        if !extra.contains("ratelimiter_bin") {
            config.push_str(&format!("ratelimiter.ratelimiter_bin = {RATELIMITER:?}\n"));
        }
        if !extra.contains("operator_bin") {
            config.push_str(&format!("runtime.local.operator_bin = {OPERATOR:?}\n"));
        }
        config.push_str(BASE_CONFIG);
        config.push_str(extra);
        std::fs::write(dir.path().join("operator.toml"), config).expect("write config");
        Self {
            dir,
            instance: 0,
            up: false,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("operator.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("operator.db")
    }

    pub fn config(&self) -> Config {
        Config::from_file(&self.config_path()).expect("config")
    }

    /// `operator --config … --state-dir … --instance N <args>`, with no OPERATOR_* from the
    /// environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(OPERATOR);
        for (k, _) in std::env::vars() {
            if k.starts_with("OPERATOR_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config")
            .arg(self.config_path())
            .arg("--state-dir")
            .arg(self.state_dir())
            .arg("--instance")
            .arg(self.instance.to_string())
            .args(args);
        cmd
    }

    pub fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run operator")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "operator {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            !out.status.success(),
            "operator {args:?} should have failed:\n{}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// The runbook agent on one ticket, with its own monitor, as `operator agent --once`
    /// runs it: what it printed (it must succeed).
    pub fn runbook_agent_once(&self) -> String {
        let out = self
            .command(&[
                "agent",
                "--once",
                "--with-monitor",
                "--backend",
                "runbook",
                "--interval",
                "300ms",
            ])
            .output()
            .expect("agent");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        text
    }

    /// A second of `operator load etcd` on ten keys, which the oracle then checks.
    pub fn etcd_load_ten_keys(&self) {
        self.ok(&[
            "load",
            "etcd",
            "--rate",
            "40",
            "--duration",
            "1s",
            "--keys",
            "10",
        ]);
    }

    /// The commands the agent's first session on `ticket` ran, each with its exit code
    /// (`docker start etcd-2 => 0`), from the audit.
    pub fn commands_of(&self, ticket: i64) -> Vec<String> {
        let sessions = self.json(&["audit", "list", "--ticket", &ticket.to_string()]);
        let id = sessions[0]["id"].as_i64().expect("a session");
        let v = self.json(&["audit", "show", &id.to_string()]);
        v["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["kind"] == "tool_result")
            .filter_map(|e| Some(format!("{} => {}", e["command"].as_str()?, e["exit_code"])))
            .collect()
    }

    /// `chaos inject ARGS`, which must apply the fault: its id and the tag its changes carry.
    pub fn inject(&self, args: &[&str]) -> (i64, String) {
        let mut a = vec!["chaos", "inject"];
        a.extend_from_slice(args);
        let f = self.json(&a);
        assert_eq!(f["status"], "active", "{f}");
        let id = f["id"].as_i64().expect("a fault id");
        (id, format!("fault-{id}"))
    }

    /// A node's state as `operator status` reports it (`running`, `paused`, …); `status` heals
    /// no fault, so it can watch one being healed by someone else.
    pub fn node_state(&self, node: &str) -> String {
        self.json(&["status"])
            .as_array()
            .expect("status lists the nodes")
            .iter()
            .find(|n| n["name"] == node)
            .and_then(|n| n["state"].as_str())
            .expect("the node and its state")
            .to_string()
    }

    /// Waits for the detached processes that would heal this cluster's faults on expiry, and
    /// kills them, as a crash would; then lets an expiry pass unhealed.
    pub fn kill_healers(&self) {
        let state = self.state_dir().display().to_string();
        let mut healers = Vec::new();
        assert!(wait_for(Duration::from_secs(5), || {
            healers = our_processes(&[&state, "--at-expiry"]);
            !healers.is_empty()
        }));
        for pid in healers {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(1500));
    }

    /// A ledger row as a process that crashed while injecting leaves it (long ago, still
    /// `injecting`); its id.
    pub fn fault_left_by_a_crash(&self, fault: &str, target: &str, params: &str) -> i64 {
        let runtime = self.runtime();
        // Opening the store makes the schema, should nothing have yet.
        drop(self.store());
        let db = rusqlite::Connection::open(self.db_path()).expect("the DB");
        db.execute_batch("PRAGMA busy_timeout = 5000")
            .expect("busy timeout");
        db.execute(
            "INSERT INTO chaos_faults (fault, subject, instance, runtime, target, params, status,
                    injected_at, injected_by, updated_at)
             VALUES (?1, 'ratelimiter', ?2, ?3, ?4, ?5, 'injecting',
                     '2020-01-01T00:00:00.000Z', 'crashed', '2020-01-01T00:00:00.000Z')",
            rusqlite::params![fault, self.instance, runtime.kind(), target, params],
        )
        .expect("a ledger row");
        db.last_insert_rowid()
    }

    /// The entry of `chaos list`'s catalogue for `fault`: how it is applied here, whether it
    /// is available.
    pub fn catalogue_entry(&self, fault: &str) -> Value {
        self.json(&["chaos", "list"])["catalogue"]
            .as_array()
            .expect("a catalogue")
            .iter()
            .find(|k| k["fault"] == fault)
            .cloned()
            .unwrap_or_else(|| panic!("no {fault} in the catalogue"))
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    /// The instance's runtime, as the CLI opens it.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        operator::runtime::open::open(
            &StateDir::new(self.state_dir()),
            self.instance,
            &self.config().runtime,
            None,
        )
        .expect("runtime")
    }

    /// The DB, for a test's own reads and writes (they block: call them from sync code or
    /// `spawn_blocking`).
    pub fn store(&self) -> Sqlite {
        Sqlite::open(&self.db_path()).expect("store")
    }

    /// The DB as the async parts use it.
    pub fn async_store(&self) -> Store {
        Store::new(Arc::new(self.store()), &self.db_path())
    }

    pub fn monitor(&self) -> Monitor {
        let cfg = self.config();
        let runtime = self.runtime();
        // The subject the instance runs, found through the registry like everywhere else.
        let subject: Box<dyn operator::subjects::Subject> = match runtime.topology() {
            Ok(t) => {
                operator::subjects::registry::build(&t.subject, runtime, &cfg).expect("subject")
            }
            Err(_) => Box::new(RateLimiterSubject::new(
                runtime,
                cfg.section().expect("the rate limiter's section"),
            )),
        };
        Monitor::new(subject, self.async_store(), &cfg.tickets)
    }

    pub fn address(&self, node: &str) -> String {
        self.runtime()
            .topology()
            .expect("topology")
            .nodes
            .into_iter()
            .find(|n| n.name == node)
            .unwrap_or_else(|| panic!("no node {node}"))
            .address
    }

    pub fn redis(&self) -> redis::Connection {
        let url = format!("redis://{}", self.address("redis"));
        redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("redis connection")
    }

    pub fn tickets(&self) -> Vec<Ticket> {
        self.store()
            .tickets(&TicketFilter::default())
            .expect("tickets")
    }

    pub fn active(&self) -> Vec<Ticket> {
        self.store()
            .tickets(&TicketFilter {
                active: true,
                ..Default::default()
            })
            .expect("tickets")
    }

    pub fn down(&mut self) {
        if self.up {
            let _ = self.cmd(&["down"]);
            self.up = false;
        }
    }

    pub fn mark_up(&mut self) {
        self.up = true;
    }

    /// For a test that ran `down` itself.
    pub fn mark_down(&mut self) {
        self.up = false;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Heal what a failed test left, then stop everything.
        let _ = self.cmd(&["chaos", "heal", "--all"]);
        self.down();
    }
}

/// One HTTP/1.1 request over a fresh connection: the status, the body, and how long the
/// whole answer took.
pub fn http(
    method: &str,
    address: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String, Duration)> {
    use std::io::{Read, Write};
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(address)?;
    s.set_read_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body, start.elapsed()))
}

/// Removes what an earlier run of the tests left on the engine under `instance` (a run that
/// was killed never ran its `down`): instance numbers 41 and up belong to these tests.
fn clear_test_instance(instance: u32) {
    assert!(
        instance > 40,
        "instances up to 40 are not the tests' to clear"
    );
    let label = format!("label=operator.instance={instance}");
    let list = |args: &[&str]| -> Vec<String> {
        Command::new("docker")
            .args(args)
            .args(["--filter", &label, "-q"])
            .output()
            .map(|o| text(&o.stdout).lines().map(str::to_string).collect())
            .unwrap_or_default()
    };
    for (kind, ids) in [
        ("container", list(&["ps", "-a"])),
        ("network", list(&["network", "ls"])),
        ("volume", list(&["volume", "ls"])),
    ] {
        if ids.is_empty() {
            continue;
        }
        eprintln!(
            "removing {} {kind}(s) an earlier test run left under instance {instance}",
            ids.len()
        );
        let rm: &[&str] = match kind {
            "container" => &["rm", "-f", "-v"],
            "network" => &["network", "rm"],
            _ => &["volume", "rm", "-f"],
        };
        let _ = Command::new("docker").args(rm).args(&ids).output();
    }
}

/// The file where skipped tests leave their reason, for `test.sh` to show at the end.
pub const SKIPPED: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/skipped-tests.txt");

/// A test that cannot run here says so where a person sees it: on the terminal itself (past
/// libtest's capture of `eprintln!`) and in [`SKIPPED`] (or `OPERATOR_TEST_SKIPPED`). With `OPERATOR_REQUIRE_DOCKER=1`
/// (as CI sets it) a missing engine is a failure instead.
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var("OPERATOR_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("{test} needs the Docker engine (OPERATOR_REQUIRE_DOCKER=1), but {why}");
    }
    skipped(&test, why);
}

/// A test of a system whose programs no machine here can have (TiKV and PD: no registry, no
/// Go) says it is skipped and why, as [`skip`] does, whatever CI requires of Docker.
pub fn skip_absent(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    skipped(&test, why);
}

fn skipped(test: &str, why: &str) {
    let line = format!("SKIPPED {test}: {why}\n");
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
    let file = std::env::var("OPERATOR_TEST_SKIPPED").unwrap_or_else(|_| SKIPPED.into());
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Whether a Docker engine answers here (the Docker tests run only where one does).
pub fn docker_engine() -> Result<(), String> {
    let address = operator::runtime::docker::engine::engine_address(None);
    // A thread of its own: async tests call this from inside their runtime.
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .map_err(|e| e.to_string())?
            .block_on(operator::runtime::docker::engine::connect(&address))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .join()
    .map_err(|_| "the engine check panicked".to_string())?
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Cycles the monitor until `done` holds for a report, at most `max` cycles `every` apart.
/// Returns the report that satisfied it, or panics with the last one.
pub async fn cycle_until(
    m: &mut Monitor,
    max: usize,
    every: Duration,
    mut done: impl FnMut(&CycleReport) -> bool,
) -> CycleReport {
    let mut last = None;
    for _ in 0..max {
        let r = m.cycle().await.expect("monitor cycle");
        if done(&r) {
            return r;
        }
        last = Some(r);
        tokio::time::sleep(every).await;
    }
    let last = last.expect("at least one cycle");
    panic!(
        "condition not met after {max} cycles; last: {:#?}",
        last.snapshot.map(|s| s.assessment)
    );
}

/// Whether the report opened or reopened a ticket for `invariant` on `entity`.
pub fn opened(r: &CycleReport, invariant: &str, entity: &str) -> bool {
    use operator::tickets::ChangeKind;
    r.changes.iter().any(|c| {
        c.invariant == invariant
            && c.entity == entity
            && matches!(c.change, ChangeKind::Opened | ChangeKind::Reopened)
    })
}

pub fn resolved(r: &CycleReport, invariant: &str, entity: &str) -> bool {
    use operator::tickets::ChangeKind;
    r.changes.iter().any(|c| {
        c.invariant == invariant
            && c.entity == entity
            && matches!(c.change, ChangeKind::Resolved(_))
    })
}

/// The invariants violated in a report.
pub fn violated(r: &CycleReport) -> Vec<(String, String)> {
    r.snapshot
        .as_ref()
        .map(|s| {
            s.assessment
                .violations
                .iter()
                .map(|v| (v.invariant.clone(), v.entity.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line holds all of `needles`: ours, found by our own temp paths.
pub fn our_processes(needles: &[&str]) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c).replace('\0', " ");
                    needles.iter().all(|n| c.contains(n))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A process we start for a test, killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A rate-limiter process outside the cluster's control, e.g. a misconfigured replacement.
pub fn rogue_ratelimiter(node_id: &str, address: &str, redis_url: &str, log: &Path) -> Child {
    let (host, port) = address.rsplit_once(':').expect("host:port");
    let log = std::fs::File::create(log).expect("log");
    let child = Command::new(RATELIMITER)
        .env_clear()
        .env("RATELIMITER_REDIS_URL", redis_url)
        .env("RATELIMITER_NODE_ID", node_id)
        .env("RATELIMITER_NODE_HOST", host)
        .env("RATELIMITER_NODE_PORT", port)
        .env("RATELIMITER_REDIS_TIMEOUT_MS", "200")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("spawn ratelimiter");
    let c = Child(child);
    let listening = wait_for(Duration::from_secs(10), || {
        std::net::TcpStream::connect(address).is_ok()
    });
    assert!(listening, "rogue ratelimiter did not listen on {address}");
    c
}

/// Partitions etcd `member` from its peers under eight seconds of writes, and waits until
/// `no_leader` and `member_lagging` open for it, then heals it and waits until both resolve.
/// The cluster must run with a small `etcd.thresholds.lag_entries` (20: the writes exceed it).
pub async fn etcd_partition_fires_and_clears(c: &Cluster, m: &mut Monitor, member: &str) {
    let step = Duration::from_millis(200);
    let (id, _) = c.inject(&["network_partition", "--target", member, "--duration", "0"]);
    let writes = c.command(&[
        "load",
        "etcd",
        "--rate",
        "40",
        "--duration",
        "8s",
        "--keys",
        "10",
    ]);
    let mut writes = tokio::process::Command::from(writes)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let both = ["no_leader", "member_lagging"];
    let mut seen = [false; 2];
    cycle_until(m, 60, step, |r| {
        for (s, inv) in seen.iter_mut().zip(both) {
            *s |= opened(r, inv, member);
        }
        seen == [true; 2]
    })
    .await;
    let _ = writes.wait().await;
    c.ok(&["chaos", "heal", &id.to_string()]);
    let mut seen = [false; 2];
    cycle_until(m, 60, step, |r| {
        for (s, inv) in seen.iter_mut().zip(both) {
            *s |= resolved(r, inv, member);
        }
        seen == [true; 2]
    })
    .await;
}

/// The member every member names as leader, twice a second apart (a healed fault may cost an
/// election first).
pub async fn etcd_settled_leader<'a>(c: &Cluster, names: &[&'a str]) -> &'a str {
    let gateway = operator::subjects::etcd::gateway::Gateway::new(Duration::from_secs(2));
    let mut last = None;
    for _ in 0..30 {
        let mut seen = Vec::new();
        for name in names {
            if let Ok(s) = gateway.status(&c.address(name)).await {
                seen.push((*name, s.header.member_id, s.leader));
            }
        }
        let leader = seen
            .iter()
            .find(|(_, id, leader)| id == leader)
            .map(|(name, id, _)| (*name, *id));
        let agreed = seen.len() == names.len()
            && leader.is_some_and(|(_, id)| seen.iter().all(|(_, _, l)| *l == id));
        if agreed && last == leader {
            if let Some((name, _)) = leader {
                return name;
            }
        }
        last = leader.filter(|_| agreed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("etcd's members did not settle on a leader within 30 s");
}

/// How long etcd takes to acknowledge one write sent to `via` (the median of three).
pub async fn etcd_write_time(via: &str) -> Result<Duration, String> {
    let gateway = operator::subjects::etcd::gateway::Gateway::new(Duration::from_secs(20));
    let mut times = Vec::new();
    for i in 0..3 {
        let t0 = Instant::now();
        gateway
            .put(via, "/operator/test/latency", &i.to_string())
            .await
            .map_err(|e| format!("a write through {via}: {e}"))?;
        times.push(t0.elapsed());
    }
    times.sort();
    Ok(times[1])
}

/// Delays what etcd's leader sends its peers by 300 ms: every write then waits for it (the
/// followers hear of each entry, and of its commit, that much later), as timed through another
/// member; healed, writes are quick again. Not more: where the proxy also delays what the
/// leader dials, the fault's start stalls what it hears for twice the delay, and a stall near
/// the election timeout costs it the lead (then writes are quick, without it).
pub async fn etcd_latency_slows_writes(c: &Cluster) {
    let names = ["etcd-1", "etcd-2", "etcd-3"];
    let leader = etcd_settled_leader(c, &names).await;
    let via = c.address(names.iter().find(|n| **n != leader).expect("a follower"));
    let before = etcd_write_time(&via).await.unwrap();
    let (id, fault) = c.inject(&[
        "latency",
        "--target",
        leader,
        "--delay",
        "300ms",
        "--jitter",
        "0ms",
        "--duration",
        "0",
    ]);
    let slowed = etcd_write_time(&via)
        .await
        .unwrap_or_else(|e| panic!("under {fault} on {leader}: {e}"));
    let now = etcd_settled_leader(c, &names).await;
    c.ok(&["chaos", "heal", &id.to_string()]);
    let after = etcd_write_time(&via).await.unwrap();
    assert!(
        slowed >= Duration::from_millis(300) && before < Duration::from_millis(150),
        "a write took {before:?}, then {slowed:?} under {fault} on {leader} (leader after: {now})"
    );
    assert!(
        after < Duration::from_millis(250),
        "healed, a write took {after:?}"
    );
}

/// Whether `pid` is a process that has not exited (a zombie has: only its parent has not
/// looked yet).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
