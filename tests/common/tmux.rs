//! A real terminal for the app and for line-mode commands: tmux, driven with send-keys and
//! read with capture-pane.

use std::process::Command;
use std::time::{Duration, Instant};

use super::Cluster;

pub struct Tmux(String);

impl Tmux {
    pub fn start(cmd: &str, w: u16, h: u16) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("op-tui-{}-{n}", std::process::id());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                cmd,
            ])
            .status()
            .expect("tmux is installed")
            .success();
        assert!(ok);
        Self(name)
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen with its scrollback: all a line-mode program printed.
    pub fn history(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-S", "-500", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits, without holding up the test's runtime, until `what` stands `count` times in the
    /// scrollback (at most 30 s).
    pub async fn wait_history(&self, what: &str, count: usize) -> String {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.history();
            if s.matches(what).count() >= count {
                return s;
            }
            assert!(
                Instant::now() < end,
                "`{what}` (x{count}) never appeared:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            Command::new("tmux")
                .args(["send-keys", "-t", &self.0, k])
                .status()
                .unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn wait(&self, what: &str, secs: u64) -> String {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if s.contains(what) {
                return s;
            }
            assert!(
                Instant::now() < end,
                "`{what}` never appeared; the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

/// The app's command line for tmux, on `c`'s config, state dir and instance: it records its
/// pid, runs, then reports how it ended and whether the terminal is back in cooked mode.
pub fn app_command(c: &Cluster, args: &str) -> String {
    format!(
        "sh -c 'echo $$ > {pid}; exec env -u ANTHROPIC_API_KEY -u OPERATOR_CONFIG {} --config {} --state-dir {} --instance {} {args}'; echo TUI-EXIT=$?; if stty -a | grep -q ' icanon'; then echo TERM=COOKED; else echo TERM=RAW; fi; sleep 300",
        super::OPERATOR,
        c.config_path().display(),
        c.state_dir().display(),
        c.instance,
        pid = c.dir.path().join("tui.pid").display(),
    )
}

/// In the app, in approve mode: kills ratelimiter-2 from the Chaos tab, waits for the agent to
/// ask to run `repair`, approves it, and checks the monitor verified the fix.
pub fn kill_approve_and_verify(t: &Tmux, c: &Cluster, repair: &str) {
    use operator::tickets::{Resolution, Status};
    // Chaos tab: node_kill on ratelimiter-2, confirmed.
    t.keys(&["4", "Right", "Down", "Down", "i"]);
    t.wait("Inject a fault?", 5);
    t.keys(&["y"]);
    // The ticket shows up; the runbook agent reads, then asks to start the node.
    t.keys(&["2"]);
    t.wait("node_down", 10);
    t.wait("waiting for your approval", 20);
    t.keys(&["3"]);
    let s = t.wait("Approval needed", 5);
    assert!(s.contains(repair), "{s}");
    t.keys(&["y"]);
    // The monitor confirms the fix.
    t.keys(&["2"]);
    t.wait("resolved (verified)", 30);
    let ticket = c
        .tickets()
        .into_iter()
        .find(|t| t.entity == "ratelimiter-2")
        .expect("a ticket for ratelimiter-2");
    assert_eq!(
        (ticket.status, ticket.resolution),
        (Status::Resolved, Some(Resolution::Verified))
    );
}
