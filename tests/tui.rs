//! The app end to end: the real binary in a real terminal (tmux) against the real local
//! cluster, in approve mode — break a node from the Chaos tab, see the ticket, approve the
//! agent's repair, see it resolved and the node up, quit, and find the terminal restored.

mod common;

use std::time::Duration;

use common::Cluster;
use common::tmux::{Tmux, app_command as tui_command, kill_approve_and_verify};

#[test]
fn break_a_node_approve_the_repair_and_quit_cleanly() {
    let c = Cluster::start("agent.verify_window = \"5s\"\n");
    let t = Tmux::start(&tui_command(&c, "tui --mode approve"), 120, 36);
    t.wait("4/4 up", 20);
    kill_approve_and_verify(&t, &c, "operator node start ratelimiter-2");
    t.keys(&["1"]);
    t.wait("4/4 up", 10);
    // Quit: it asks about the fault still in the ledger, heals it, and leaves.
    t.keys(&["q"]);
    t.wait("Before quitting", 5);
    t.keys(&["y"]);
    let s = t.wait("TERM=", 15);
    assert!(s.contains("TUI-EXIT=0"), "{s}");
    assert!(
        s.contains("TERM=COOKED"),
        "the terminal was left in raw mode:\n{s}"
    );
    assert!(
        !s.contains("2 Tickets"),
        "the app's screen is still there:\n{s}"
    );
    assert!(
        c.json(&["chaos", "list"])["faults"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // The cluster was not the app's to stop.
    assert!(
        c.json(&["status"])
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "running")
    );
}

#[test]
fn another_processs_tickets_and_sessions_show_up_live_and_sigterm_restores_the_terminal() {
    use common::{AuditDb, TicketDb};
    use operator::agent::audit::{Entry, Kind, NewSession};
    use operator::invariant::{Severity, Violation};
    use operator::tickets::{CycleInput, Observed};
    let c = Cluster::start("");
    let t = Tmux::start(&tui_command(&c, "tui --mode observe"), 110, 32);
    t.wait("4/4 up", 20);
    t.keys(&["2"]);
    // Another process writes a ticket this app's own monitor could never have made (another
    // instance), and an agent session on it.
    let store = c.store();
    let v = Observed {
        violation: Violation {
            invariant: "node_down".into(),
            entity: "ghost-node".into(),
            severity: Severity::Critical,
            summary: "ghost-node is down".into(),
            detail: serde_json::json!({}),
        },
        due: true,
    };
    store
        .apply(&CycleInput {
            subject: "ratelimiter".into(),
            instance: 7,
            at: operator::clock::now(),
            flap_window: Duration::from_secs(60),
            violations: vec![v],
            unknown: Vec::new(),
            consequences: &[],
            correlation_window: std::time::Duration::from_secs(30),
        })
        .unwrap();
    t.wait("ghost-node", 10);
    let ticket = c
        .tickets()
        .into_iter()
        .find(|t| t.entity == "ghost-node")
        .unwrap();
    let session = store
        .start_session(&NewSession {
            ticket_id: ticket.id,
            incident_id: ticket.incident_id.unwrap(),
            agent_id: "elsewhere".into(),
            backend: "runbook".into(),
            model: "runbook".into(),
            mode: "auto".into(),
            variant: "default".into(),
        })
        .unwrap();
    store
        .log_entry(
            session,
            &Entry::new(Kind::Text, "written by another process"),
        )
        .unwrap();
    t.keys(&["3"]);
    t.wait("written by another process", 10);
    // SIGTERM: the app leaves at once and the terminal is usable.
    let pid: i32 = std::fs::read_to_string(c.dir.path().join("tui.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let s = t.wait("TERM=", 10);
    assert!(s.contains("TUI-EXIT=0") && s.contains("TERM=COOKED"), "{s}");
}

#[test]
fn a_tiny_terminal_gets_a_clear_screen_and_q_still_quits() {
    let c = Cluster::start("");
    let t = Tmux::start(&tui_command(&c, "tui"), 60, 20);
    t.wait("Terminal too small", 15);
    t.keys(&["q"]);
    let s = t.wait("TERM=", 10);
    assert!(s.contains("TUI-EXIT=0") && s.contains("TERM=COOKED"), "{s}");
}

#[test]
fn a_db_from_a_newer_build_is_shown_in_the_app_not_a_crash() {
    let c = Cluster::start("");
    let db = rusqlite::Connection::open(c.db_path()).unwrap();
    db.pragma_update(None, "user_version", 999).unwrap();
    drop(db);
    let t = Tmux::start(&tui_command(&c, "tui"), 110, 32);
    let s = t.wait("The ticket DB cannot be opened", 10);
    assert!(s.contains("newer"), "{s}");
    t.keys(&["q"]);
    let s = t.wait("TERM=", 10);
    assert!(s.contains("TUI-EXIT=1") && s.contains("TERM=COOKED"), "{s}");
}

#[test]
fn a_campaign_started_from_the_campaigns_tab_runs_live_to_its_end() {
    use operator::store::EvalDb;
    let c = Cluster::start("");
    let t = Tmux::start(&tui_command(&c, "tui --mode observe"), 120, 36);
    t.wait("4/4 up", 20);
    t.keys(&["5"]);
    t.wait("No campaign yet", 5);
    // r asks first, starting on the smoke campaign.
    t.keys(&["r"]);
    let s = t.wait("Run a campaign?", 5);
    assert!(s.contains("campaigns/smoke.yaml"), "{s}");
    t.keys(&["y"]);
    // It shows live: running, a slot at work, then finished.
    t.wait("running", 20);
    t.wait("slot 0: trial", 60);
    let s = t.wait("finished", 240);
    assert!(s.contains("5/5"), "{s}");
    let db = c.store();
    let campaign = &db.campaigns(1).unwrap()[0];
    assert_eq!(campaign.name, "smoke");
    let trials = db.trials(campaign.id).unwrap();
    assert_eq!(trials.len(), 5);
    assert!(trials.iter().all(|t| t.verdict.is_some()));
    // A trial opens its timeline.
    t.keys(&["Enter", "Enter"]);
    let s = t.wait("Esc back", 10);
    assert!(s.contains("gate") && s.contains("verdict"), "{s}");
    t.keys(&["Escape", "q"]);
    t.wait("TERM=", 15);
    // The campaign ran on its own slot and left nothing: no slot, no fault.
    assert!(db.slots().unwrap().is_empty());
    assert!(
        c.json(&["chaos", "list"])["faults"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// `operator demo etcd`: the guided demo on the second subject, in a real terminal — the app
/// starts the cluster, and each step shows what really happened: load on every member, a
/// member killed, its member_down ticket, the runbook agent's repair, the monitor's proof;
/// quitting heals and stops what it started.
#[test]
fn the_guided_demo_walks_through_etcd_to_a_verified_repair() {
    let c = Cluster::prepare("");
    let t = Tmux::start(&tui_command(&c, "demo etcd"), 140, 40);
    let s = t.wait("Step 1/7", 60);
    assert!(s.contains("Three etcd members"), "{s}");
    t.wait("3/3 nodes up", 60);
    t.keys(&["Space"]);
    t.wait("requests in the last second", 15);
    t.keys(&["Space"]);
    let s = t.wait("killed etcd-", 15);
    assert!(s.contains("Step 3/7"), "{s}");
    t.keys(&["Space"]);
    t.wait("member_down etcd-", 15);
    t.keys(&["Space", "Space", "Space"]);
    let s = t.wait("resolved (verified)", 60);
    assert!(s.contains("Step 7/7") && s.contains("Space: again"), "{s}");
    t.keys(&["q"]);
    t.wait("Before quitting", 5);
    t.keys(&["y"]);
    let s = t.wait("TERM=", 30);
    assert!(s.contains("TUI-EXIT=0"), "{s}");
    // The app started the cluster, so it stopped it.
    assert!(!c.cmd(&["status", "--json"]).status.success());
}
