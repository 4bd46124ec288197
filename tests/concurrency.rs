//! A monitor, the CLI and a second writer on one DB for a minute: no `database is locked`
//! surfaces anywhere. `OPERATOR_SOAK_SECS` changes the length.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Child, Cluster, text};
use operator::invariant::{Severity, Violation};
use operator::store::{Sqlite, TicketDb};
use operator::tickets::{CycleInput, Observed};

#[test]
fn monitor_cli_and_a_second_writer_share_one_db() {
    let secs: u64 = std::env::var("OPERATOR_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let c = Cluster::start("");
    let mut monitor = c
        .command(&["monitor", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    for pipe in [
        Box::new(monitor.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(monitor.stderr.take().unwrap()),
    ] {
        let sink = lines.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(l);
            }
        });
    }
    let _monitor = Child(monitor);

    // A second writer: a flapping violation on another instance, every 10ms.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let db = c.db_path();
        std::thread::spawn(move || {
            let store = Sqlite::open(&db).unwrap();
            let mut writes = 0u64;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = Observed {
                    violation: Violation {
                        invariant: "node_down".into(),
                        entity: format!("node-{}", i % 5),
                        severity: Severity::Critical,
                        summary: "soak".into(),
                        detail: serde_json::json!({}),
                    },
                    due: true,
                };
                let seen = if i % 3 == 0 { vec![] } else { vec![v] };
                store
                    .apply(&CycleInput {
                        subject: "ratelimiter".into(),
                        instance: 7,
                        at: operator::clock::now(),
                        flap_window: Duration::from_secs(60),
                        violations: seen,
                        unknown: Vec::new(),
                        consequences: &[],
                        correlation_window: std::time::Duration::from_secs(30),
                    })
                    .expect("second writer");
                writes += 1;
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            writes
        })
    };

    // The CLI: break and mend nodes, read and hold tickets, inject and heal faults.
    let end = Instant::now() + Duration::from_secs(secs);
    let mut commands = 0;
    let mut problems = Vec::new();
    let mut round = 0;
    while Instant::now() < end {
        let node = format!("ratelimiter-{}", round % 3 + 1);
        let mut run = |args: &[&str]| {
            let out = c.cmd(args);
            commands += 1;
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            if all.contains("locked") || all.contains("busy") {
                problems.push(format!("{args:?}: {all}"));
            }
            out
        };
        run(&["node", "kill", &node]);
        let list = run(&["tickets", "list", "--active", "--json"]);
        assert!(list.status.success(), "{}", text(&list.stderr));
        let tickets: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        if let Some(id) = tickets[0]["id"].as_i64() {
            run(&["tickets", "hold", &id.to_string()]);
            run(&["tickets", "show", &id.to_string(), "--json"]);
            run(&["tickets", "unhold", &id.to_string()]);
        }
        run(&["node", "start", &node]);
        run(&[
            "chaos",
            "inject",
            "pause",
            "--target",
            &node,
            "--duration",
            "0",
        ]);
        run(&["chaos", "heal", "--all"]);
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().expect("the second writer failed");
    std::thread::sleep(Duration::from_millis(300));
    let out = lines.lock().unwrap().join("\n");
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(!out.contains("locked") && !out.contains("failed"), "{out}");
    let cycles = out
        .lines()
        .filter(|l| l.starts_with("20") && l.contains(" #"))
        .count() as u64;
    assert!(
        cycles >= secs * 5,
        "only {cycles} monitor cycles in {secs}s"
    );
    assert!(writes >= secs * 20, "only {writes} writes");
    assert!(commands > 20, "only {commands} commands");
    eprintln!(
        "{secs}s: {cycles} monitor cycles, {writes} second-writer cycles, {commands} CLI commands"
    );
}
