//! Another process holding the DB's write lock (`BEGIN EXCLUSIVE`, as a backup or a stuck
//! writer would) for 5 s: the app in a real terminal still switches tabs at once, and the
//! headless monitor keeps its interval — its verdicts go into the DB once the lock is gone.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::tmux::{Tmux, app_command};
use common::{Child, Cluster};
use serde_json::Value;

/// Holds `db`'s write lock for `secs` from a process of its own; returns once it is held.
fn lock_db(db: &std::path::Path, secs: u64) -> Child {
    let script = format!(
        "import sqlite3, sys, time\n\
         c = sqlite3.connect({db:?}, isolation_level=None, timeout=30)\n\
         c.execute('BEGIN EXCLUSIVE')\n\
         print('locked', flush=True)\n\
         time.sleep({secs})\n\
         c.execute('COMMIT')\n",
        db = db.display().to_string()
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup.sh installs it)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    Child(child)
}

/// How long until one of `what` is on the screen after the keys are sent.
fn switch(t: &Tmux, key: &str, what: &[&str]) -> Duration {
    let sent = Instant::now();
    t.keys(&[key]);
    loop {
        let screen = t.screen();
        if what.iter().any(|w| screen.contains(w)) {
            return sent.elapsed();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{what:?} never appeared after `{key}`:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_locked_db_freezes_neither_the_app_nor_the_monitors_cycles() {
    let c = Cluster::start("");
    // The headless monitor, each report stamped as it arrives.
    let mut monitor = c
        .command(&["monitor", "--interval", "500ms", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = monitor.stdout.take().unwrap();
    let _monitor = Child(monitor);
    let lines: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
    {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    lines.lock().unwrap().push((Instant::now(), v));
                }
            }
        });
    }
    let t = Tmux::start(&app_command(&c, "tui --mode observe"), 120, 36);
    t.wait("4/4 up", 20);
    // Every cycle from now on has a verdict to write: a node is down.
    c.ok(&["node", "kill", "ratelimiter-2"]);
    std::thread::sleep(Duration::from_millis(300));
    let lock = lock_db(&c.db_path(), 5);
    let locked_at = Instant::now();
    let mut took = Vec::new();
    for (key, what) in [
        ("2", &["┌ Tickets"][..]),
        // The agent's pane, or the session it has started on the ticket by now.
        ("3", &["┌ Agent", "┌ Session"]),
        ("4", &["┌ Fault"]),
        ("1", &["┌ Nodes"]),
    ] {
        took.push(switch(&t, key, what));
        std::thread::sleep(Duration::from_millis(300));
    }
    let worst = took.iter().max().copied().unwrap_or_default();
    eprintln!("tab switches while the DB was locked: {took:?}");
    assert!(
        locked_at.elapsed() < Duration::from_secs(5),
        "the switches were measured while the lock was held"
    );
    assert!(worst < Duration::from_millis(1000), "{took:?}");
    drop(lock);
    std::thread::sleep(Duration::from_secs(5));
    let lines = lines.lock().unwrap().clone();
    let during: Vec<&(Instant, Value)> = lines
        .iter()
        .filter(|(at, _)| {
            *at >= locked_at && at.duration_since(locked_at) <= Duration::from_millis(4800)
        })
        .collect();
    let gaps: Vec<Duration> = during
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0))
        .collect();
    eprintln!(
        "monitor cycles while the DB was locked: {}, gaps {gaps:?}",
        during.len()
    );
    assert!(
        during.len() >= 7,
        "{} cycles in 4.8s at 500ms",
        during.len()
    );
    assert!(
        gaps.iter().all(|g| *g < Duration::from_millis(1200)),
        "{gaps:?}"
    );
    // The lock was real: the DB took none of those verdicts while it lasted…
    assert!(
        during
            .iter()
            .any(|(_, v)| v["pending_writes"].as_u64() >= Some(2)),
        "{:?}",
        during
            .iter()
            .map(|(_, v)| &v["pending_writes"])
            .collect::<Vec<_>>()
    );
    // …and all of them once it was gone: the ticket is open, and nothing is pending.
    let last = &lines.last().unwrap().1;
    assert_eq!(last["pending_writes"], Value::Null, "{last}");
    let ticket = c
        .tickets()
        .into_iter()
        .find(|t| t.entity == "ratelimiter-2")
        .expect("the ticket was written once the lock was gone");
    assert!(ticket.observations >= 7, "{ticket:?}");
}
