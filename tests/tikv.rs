//! TiKV as a subject on the local runtime. PD and TiKV cannot run here (no registry to pull
//! their images from, no Go to build PD), so their programs are the stand-in
//! (`examples/tikv_standin.rs`), linked as `pd-server` and `tikv-server`: real processes
//! speaking PD's and TiKV's HTTP shapes, heartbeating through the fault proxy. Where neither
//! the programs nor the images are, `up` changes nothing and names how to get them.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, cycle_until, opened, resolved, violated};

const STEP: Duration = Duration::from_millis(300);

/// The stand-in, built beside the tests (`cargo test` builds the examples).
fn standin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let p = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("examples/tikv_standin");
    assert!(
        p.is_file(),
        "{} is missing: `cargo test` builds it (cargo build --release --examples)",
        p.display()
    );
    p
}

/// `pd-server` and `tikv-server` links to the stand-in in `dir`, and the config naming them.
fn programs(dir: &Path) -> String {
    let s = standin();
    let mut config = String::new();
    for (name, key) in [("pd-server", "pd_bin"), ("tikv-server", "tikv_bin")] {
        let link = dir.join(name);
        std::os::unix::fs::symlink(&s, &link).expect("link the stand-in");
        config.push_str(&format!("tikv.{key} = {:?}\n", link.display().to_string()));
    }
    config
}

fn start() -> (Cluster, tempfile::TempDir) {
    let bin = tempfile::tempdir().unwrap();
    let c = Cluster::prepare(&programs(bin.path())).up_subject("tikv");
    (c, bin)
}

#[test]
fn without_its_programs_up_changes_nothing_and_names_how_to_get_them() {
    let home = tempfile::tempdir().unwrap();
    let c = Cluster::prepare(&format!(
        "tikv.pd_bin = \"operator-test-no-pd-server\"\ntikv.tiup_home = {:?}\n",
        home.path().display().to_string()
    ));
    let err = c.fails(&["up", "tikv"]);
    assert!(err.contains("operator-test-no-pd-server"), "{err}");
    assert!(err.contains("tiup install pd:v8.5.7"), "{err}");
    assert!(err.contains("tikv.pd_bin"), "{err}");
    assert!(err.contains("--runtime docker"), "{err}");
    // Nor does the demo, which would bring it up: it says so before it takes the screen.
    let err = c.fails(&["demo", "tikv"]);
    assert!(err.contains("tiup install pd:v8.5.7"), "{err}");
    // Nothing was started, nothing is left.
    let status = c.cmd(&["status"]);
    assert!(!status.status.success() || !common::text(&status.stdout).contains("tikv-1"));
    assert!(
        !c.state_dir().join("instances/0/instance.json").exists(),
        "a record was left"
    );
    // Nor does a campaign on it record a trial.
    let err = c.fails(&["eval", "run", "--subject", "tikv", "--chaos", "node_kill"]);
    assert!(err.contains("tiup install pd:v8.5.7"), "{err}");
    // The seed's campaign file validates, then stops at the same place.
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("campaigns/tikv.yaml");
    let err = c.fails(&["eval", "run", "campaign", &seed.display().to_string()]);
    assert!(err.contains("tiup install pd:v8.5.7"), "{err}");
    let trials = c.cmd(&["eval", "list", "--json"]);
    let listed = common::text(&trials.stdout);
    assert!(!listed.contains("\"trial"), "{listed}");
}

/// One trial of `fault` by the harness on TiKV (the runbook agent, seed 7), as its JSON line.
fn one_trial(fault: &str) -> serde_json::Value {
    let bin = tempfile::tempdir().unwrap();
    let c = Cluster::prepare(&programs(bin.path()));
    let out = c.ok(&[
        "eval",
        "run",
        "--subject",
        "tikv",
        "--chaos",
        fault,
        "--trials",
        "1",
        "--seed",
        "7",
        "--json",
    ]);
    out.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v.get("verdict").is_some())
        .unwrap_or_else(|| panic!("no trial line: {out}"))
}

/// A trial of the harness on TiKV: a store killed, the runbook agent repairs it, the
/// cluster's own state decides.
#[test]
fn a_campaign_trial_kills_a_store_and_the_runbook_agent_repairs_it() {
    let trial = one_trial("node_kill");
    assert_eq!(trial["verdict"], "resolved", "{trial:#}");
}

/// More space is a person's call: a trial of `store_low_space` is won by an escalation that
/// names the store, not by a repair.
#[test]
fn a_trial_of_a_store_short_of_space_is_won_by_a_localized_escalation() {
    let trial = one_trial("store_low_space");
    assert_eq!(trial["verdict"], "escalated", "{trial:#}");
    assert_eq!(trial["localized"], true, "{trial:#}");
    assert_eq!(trial["won"], true, "{trial:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_store_shows_at_the_next_look_and_a_scheduler_left_behind_is_seen() {
    let (c, _bin) = start();
    let mut m = c.monitor();
    let r = cycle_until(&mut m, 20, STEP, |r| violated(r).is_empty()).await;
    let s = r.snapshot.unwrap();
    assert_eq!(s.observation.nodes.len(), 6, "{:?}", s.observation.nodes);
    // PD's leader's word on the whole cluster, read from its routes and its own metrics.
    let cluster = &s.observation.facts["cluster"];
    assert_eq!(cluster["bootstrapped"], true, "{cluster}");
    assert_eq!(cluster["max_replicas"], 3, "{cluster}");
    assert_eq!(cluster["region_count"], 4, "{cluster}");
    assert_eq!(cluster["store_states"]["store_up"], 3, "{cluster}");
    assert_eq!(cluster["region_health"]["down-peer"], 0, "{cluster}");
    // Each store wrote its settings file where it starts.
    let toml = c.state_dir().join("instances/0/data/tikv-1/tikv.toml");
    let settings = std::fs::read_to_string(&toml).expect("tikv.toml");
    assert!(settings.contains("max-open-files = 1024"), "{settings}");

    // The probe decides, not PD's 20 s.
    c.ok(&["node", "kill", "tikv-2"]);
    let r = cycle_until(&mut m, 2, STEP, |r| opened(r, "store_down", "tikv-2")).await;
    assert!(
        violated(&r).contains(&("store_down".into(), "tikv-2".into())),
        "{:?}",
        violated(&r)
    );
    c.ok(&["node", "start", "tikv-2"]);
    cycle_until(&mut m, 20, STEP, |r| resolved(r, "store_down", "tikv-2")).await;

    // A PD member down is its own ticket; the leader stays with a majority.
    c.ok(&["node", "kill", "pd-3"]);
    cycle_until(&mut m, 5, STEP, |r| opened(r, "pd_member_down", "pd-3")).await;
    c.ok(&["node", "start", "pd-3"]);
    cycle_until(&mut m, 20, STEP, |r| resolved(r, "pd_member_down", "pd-3")).await;

    // TiKV's own fault: an evict-leader scheduler left on tikv-1.
    let (id, _) = c.inject(&["evict_leader", "--target", "tikv-1", "--duration", "0"]);
    cycle_until(&mut m, 5, STEP, |r| {
        opened(r, "evict_leader_left", "tikv-1")
    })
    .await;
    // The store says itself that it holds no leader now (its metrics), within a beat.
    let own_leaders = |r: &operator::monitor::CycleReport, name: &str| {
        r.snapshot.as_ref().and_then(|s| {
            s.observation.facts["stores"]
                .as_array()?
                .iter()
                .find(|st| st["name"] == name)?["leaders"]
                .as_u64()
        })
    };
    cycle_until(&mut m, 20, STEP, |r| own_leaders(r, "tikv-1") == Some(0)).await;
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("healed"), "{healed}");
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "evict_leader_left", "tikv-1")
    })
    .await;
}

#[test]
fn the_runbook_agent_starts_a_dead_store_and_removes_a_scheduler_left_behind() {
    let (c, _bin) = start();
    c.ok(&["node", "kill", "tikv-3"]);
    let out = c.runbook_agent_once();
    assert!(out.contains("operator node start tikv-3"), "{out}");
    assert!(out.contains("resolved (verified)"), "{out}");

    let (id, _) = c.inject(&["evict_leader", "--target", "tikv-2", "--duration", "0"]);
    let out = c.runbook_agent_once();
    assert!(
        out.contains("-X DELETE") && out.contains("evict-leader-scheduler-"),
        "{out}"
    );
    // Removing the scheduler is mutating: auto mode runs it; nothing needed a person.
    assert!(
        out.contains("[mutating]") && !out.contains("[destructive]"),
        "{out}"
    );
    assert!(out.contains("resolved (verified)"), "{out}");
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("already gone"), "{healed}");
    let t = c.tickets();
    assert!(
        t.iter().all(|t| t.status.as_str() == "resolved"),
        "{:?}",
        t.iter()
            .map(|t| (&t.invariant, &t.entity, t.status))
            .collect::<Vec<_>>()
    );
}

/// TiKV's `store_low_space`: the store restarted with a capacity just above what it uses.
/// The monitor sees the store short of space; more space is a person's call, so the runbook
/// agent looks, names the store and escalates; heal lifts the cap and the ticket closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_short_of_space_is_seen_escalated_and_healed() {
    let (c, _bin) = start();
    let mut m = c.monitor();
    cycle_until(&mut m, 20, STEP, |r| violated(r).is_empty()).await;
    let (id, _) = c.inject(&["store_low_space", "--target", "tikv-2", "--duration", "0"]);
    let args = c.json(&["status"]);
    let tikv2 = args
        .as_array()
        .and_then(|a| a.iter().find(|n| n["name"] == "tikv-2"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(tikv2["state"], "running", "{args:#}");
    cycle_until(&mut m, 10, STEP, |r| opened(r, "low_space", "tikv-2")).await;
    // Only that store is short.
    let r = m.cycle().await.unwrap();
    let low: Vec<_> = violated(&r)
        .into_iter()
        .filter(|(i, _)| i == "low_space")
        .collect();
    assert_eq!(low, [("low_space".to_string(), "tikv-2".to_string())]);

    let out = c.runbook_agent_once();
    assert!(out.contains("/stores"), "{out}");
    assert!(out.contains("escalated"), "{out}");

    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("without its capacity cap"), "{healed}");
    cycle_until(&mut m, 20, STEP, |r| resolved(r, "low_space", "tikv-2")).await;
}
