//! etcd as a subject, against three real members of Debian's etcd: every invariant that can
//! be made to break here fires and clears, and the runbook agent repairs what it can.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::{Cluster, cycle_until, opened, resolved, violated};
use operator::store::EvalDb;
use operator::subjects::etcd::gateway::Gateway;

const STEP: Duration = Duration::from_millis(200);

fn member_addresses(c: &Cluster) -> Vec<String> {
    (1..=3).map(|i| c.address(&format!("etcd-{i}"))).collect()
}

fn gateway() -> Gateway {
    Gateway::new(Duration::from_secs(10))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_down_and_quorum_lost_fire_and_clear() {
    let c = Cluster::start_subject("etcd", "");
    let mut m = c.monitor();
    let r = m.cycle().await.unwrap();
    assert!(violated(&r).is_empty(), "{:?}", violated(&r));

    // A dead member is down, probed directly: it does not vanish.
    c.ok(&["node", "kill", "etcd-2"]);
    let r = cycle_until(&mut m, 3, STEP, |r| opened(r, "member_down", "etcd-2")).await;
    assert_eq!(
        violated(&r),
        [("member_down".to_string(), "etcd-2".to_string())]
    );
    c.ok(&["node", "start", "etcd-2"]);
    cycle_until(&mut m, 10, STEP, |r| resolved(r, "member_down", "etcd-2")).await;

    // A frozen one too, with the reason.
    c.ok(&["node", "pause", "etcd-3"]);
    let r = cycle_until(&mut m, 5, STEP, |r| opened(r, "member_down", "etcd-3")).await;
    let s = r.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.entity == "etcd-3")
        .unwrap();
    assert_eq!(v.detail["state"], "unresponsive", "{v:?}");
    c.ok(&["node", "resume", "etcd-3"]);
    cycle_until(&mut m, 10, STEP, |r| resolved(r, "member_down", "etcd-3")).await;

    // quorum_loss kills two of three: the quorum's ticket opens within two looks. First a
    // clean look: a member that came back may have cost an election, and its brief
    // quorum_lost ticket must be closed before this one is counted.
    cycle_until(&mut m, 20, STEP, |r| violated(r).is_empty()).await;
    let (id, _) = c.inject(&["quorum_loss", "--target", "etcd-1", "--duration", "0"]);
    let r = cycle_until(&mut m, 2, Duration::from_secs(1), |r| {
        opened(r, "quorum_lost", "cluster")
    })
    .await;
    let v = violated(&r);
    assert!(
        v.contains(&("member_down".into(), "etcd-1".into())),
        "{v:?}"
    );
    assert!(
        v.contains(&("member_down".into(), "etcd-2".into())),
        "{v:?}"
    );
    c.ok(&["chaos", "heal", &id.to_string()]);
    cycle_until(&mut m, 20, STEP, |r| resolved(r, "quorum_lost", "cluster")).await;
    let r = cycle_until(&mut m, 20, STEP, |r| violated(r).is_empty()).await;
    assert!(r.snapshot.unwrap().assessment.unknown.is_empty());
}

/// A member cut off from its peers on the local runtime: the proxy holds the links its peers
/// dial it by and, told by the kernel's tables, the connections it dials them by. It loses
/// the leader and falls behind the writes the others take; both clear when the partition
/// heals, and no acknowledged write is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_member_loses_the_leader_and_falls_behind_until_healed() {
    // Eight seconds of writes at 40/s: well past a lag of 20 entries.
    let c = Cluster::start_subject("etcd", "[etcd.thresholds]\nlag_entries = 20\n");
    let mut m = c.monitor();
    cycle_until(&mut m, 20, STEP, |r| violated(r).is_empty()).await;
    common::etcd_partition_fires_and_clears(&c, &mut m, "etcd-3").await;
    // The heal took it off the other members' links too: what etcd-3 dials was held.
    let healed = c.json(&["chaos", "list", "--all"])["faults"][0]["note"].to_string();
    assert!(healed.contains("peers>etcd-1, peers>etcd-2"), "{healed}");
    // Latency on the leader's peer links: every write waits for it, until healed.
    common::etcd_latency_slows_writes(&c).await;
    c.ok(&["load", "etcd", "--verify"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alarms_fire_per_alarm_and_clear_when_disarmed() {
    let c = Cluster::start_subject("etcd", "");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let addresses = member_addresses(&c);
    let g = gateway();
    let s = g.status(&addresses[0]).await.unwrap();
    g.alarm_activate(&addresses[0], s.header.member_id, "CORRUPT")
        .await
        .unwrap();
    cycle_until(&mut m, 5, STEP, |r| opened(r, "alarm_active", "CORRUPT")).await;
    g.disarm_all(&addresses[0]).await.unwrap();
    cycle_until(&mut m, 5, STEP, |r| resolved(r, "alarm_active", "CORRUPT")).await;

    // nospace fills the backend until etcd itself raises NOSPACE: one ticket, the alarm's
    // (the backend past its quota is the same incident).
    let (id, _) = c.inject(&["nospace", "--duration", "0"]);
    let r = cycle_until(&mut m, 5, STEP, |r| opened(r, "alarm_active", "NOSPACE")).await;
    assert_eq!(
        violated(&r),
        [("alarm_active".to_string(), "NOSPACE".to_string())]
    );
    let s = r.snapshot.unwrap();
    let v = &s.assessment.violations[0];
    assert!(v.detail["revision"].as_u64().unwrap() > 1, "{v:?}");
    // A member's backend past the threshold is the alarm's ticket (unknown here); one under
    // it holds, as it would after a compaction.
    let quota = 16.0 * 1024.0 * 1024.0;
    for m in s.observation.facts["members"].as_array().unwrap() {
        let name = m["name"].as_str().unwrap();
        let size = m["status"]["dbSize"].as_f64().unwrap();
        let unknown = s.assessment.is_unknown("backend_near_quota", name);
        assert_eq!(unknown, size > 0.8 * quota, "{name}: {size} bytes");
    }
    // A put is refused, as a client would see it.
    let err = g.put(&addresses[1], "/operator/x", "y").await.unwrap_err();
    assert!(err.to_string().contains("space"), "{err}");
    c.ok(&["chaos", "heal", &id.to_string()]);
    cycle_until(&mut m, 10, STEP, |r| resolved(r, "alarm_active", "NOSPACE")).await;
    g.put(&addresses[1], "/operator/x", "y").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_near_quota_slow_commits_and_flapping_fire_on_low_thresholds_and_clear() {
    // Thresholds a real cluster crosses here: a backend of a few pages, any commit at all,
    // any leader change; windows short enough to pass within the test.
    let c = Cluster::start_subject(
        "etcd",
        "[etcd.thresholds]\nquota_used_percent = 0.3\ncommit_p99_ms = 0.0\nfsync_p99_ms = 0.0\nlatency_window = \"2s\"\nlatency_min_samples = 1\nleader_changes = 0\nleader_window = \"3s\"\n",
    );
    let mut m = c.monitor();
    let addresses = member_addresses(&c);
    let g = gateway();
    // Elections at start count as leader changes: let the window pass.
    tokio::time::sleep(Duration::from_secs(4)).await;
    cycle_until(&mut m, 30, STEP, |r| violated(r).is_empty()).await;

    // 100 kB of values: past 0.3 % of 16 MiB.
    let big = "v".repeat(10_000);
    for i in 0..10 {
        g.put(&addresses[0], &format!("/operator/big/{i}"), &big)
            .await
            .unwrap();
    }
    let r = cycle_until(&mut m, 10, STEP, |r| {
        violated(r).iter().any(|(i, _)| i == "backend_near_quota")
            && violated(r).iter().any(|(i, _)| i == "slow_commits")
    })
    .await;
    // Members' backends differ by a page or two: the first to cross may be any of them.
    let v = violated(&r);
    assert!(
        v.iter()
            .any(|(i, e)| i == "backend_near_quota" && e.starts_with("etcd-")),
        "{v:?}"
    );
    // Compact and defragment: the backend shrinks back; no writes: no commits to judge.
    g.delete_prefix(&addresses[0], "/operator/").await.unwrap();
    let s = g.status(&addresses[0]).await.unwrap();
    g.compact(&addresses[0], s.header.revision).await.unwrap();
    for a in &addresses {
        g.defragment(a).await.unwrap();
    }
    cycle_until(&mut m, 30, STEP, |r| {
        !violated(r)
            .iter()
            .any(|(i, _)| i == "backend_near_quota" || i == "slow_commits")
    })
    .await;

    // Kill the leader: the others elect another, a change over the threshold of none.
    let leader = {
        let s = g.status(&addresses[0]).await.unwrap();
        let mut name = None;
        for (i, a) in addresses.iter().enumerate() {
            if g.status(a).await.unwrap().header.member_id == s.leader {
                name = Some(format!("etcd-{}", i + 1));
            }
        }
        name.expect("a leader")
    };
    c.ok(&["node", "kill", &leader]);
    cycle_until(&mut m, 20, STEP, |r| {
        opened(r, "leader_flapping", "cluster")
    })
    .await;
    c.ok(&["node", "start", &leader]);
    cycle_until(&mut m, 40, STEP, |r| {
        resolved(r, "leader_flapping", "cluster")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_mismatch_names_a_member_the_topology_does_not_run() {
    let c = Cluster::start_subject("etcd", "");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    let addresses = member_addresses(&c);
    let g = gateway();
    // Added, never started: the member list no longer matches the topology. etcd refuses
    // changes of membership until every member has been connected for a few seconds.
    let mut tries = 0;
    let id = loop {
        match g.member_add(&addresses[0], "http://127.0.0.1:9").await {
            Ok(id) => break id,
            Err(e) if tries < 50 && e.to_string().contains("unhealthy cluster") => {
                tries += 1;
                tokio::time::sleep(STEP).await;
            }
            Err(e) => panic!("member add: {e}"),
        }
    };
    let entity = format!("member {id:x}");
    let r = cycle_until(&mut m, 20, STEP, |r| {
        opened(r, "membership_mismatch", &entity)
    })
    .await;
    assert_eq!(
        violated(&r),
        [("membership_mismatch".to_string(), entity.clone())]
    );
    g.member_remove(&addresses[0], id).await.unwrap();
    cycle_until(&mut m, 20, STEP, |r| {
        resolved(r, "membership_mismatch", &entity)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_unreachable_when_the_instance_is_gone() {
    let mut c = Cluster::start_subject("etcd", "");
    let mut m = c.monitor();
    m.cycle().await.unwrap();
    c.down();
    let r = cycle_until(&mut m, 3, STEP, |r| {
        opened(r, "subject_unreachable", "cluster")
    })
    .await;
    assert_eq!(
        violated(&r),
        [("subject_unreachable".to_string(), "cluster".to_string())]
    );
    c.ok(&["up", "etcd"]);
    c.mark_up();
    cycle_until(&mut m, 10, STEP, |r| {
        resolved(r, "subject_unreachable", "cluster")
    })
    .await;
}

#[test]
fn the_runbook_agent_repairs_a_dead_member_and_a_full_backend() {
    let c = Cluster::start_subject("etcd", "");
    c.ok(&["node", "kill", "etcd-3"]);
    let out = c.runbook_agent_once();
    assert!(out.contains("operator node start etcd-3"), "{out}");
    assert!(out.contains("resolved (verified)"), "{out}");

    let (id, _) = c.inject(&["nospace", "--duration", "0"]);
    let out = c.runbook_agent_once();
    for step in [" compact ", " defrag", "/v3/maintenance/alarm"] {
        assert!(out.contains(step), "{step}: {out}");
    }
    // Only the out-of-space alarm, member by member: `alarm disarm` would clear CORRUPT too.
    assert!(!out.contains("alarm disarm"), "{out}");
    assert!(
        out.contains("[mutating]") && !out.contains("[destructive]"),
        "{out}"
    );
    assert!(out.contains("resolved (verified)"), "{out}");
    let t = c.tickets();
    assert!(
        t.iter().all(|t| t.status.as_str() == "resolved"),
        "{:?}",
        t.iter()
            .map(|t| (&t.invariant, &t.entity, t.status))
            .collect::<Vec<_>>()
    );
    // The fault's own heal finds nothing left to do but checks it.
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("healed"), "{healed}");
}

#[test]
fn unknown_subjects_and_foreign_faults_are_refused_by_name() {
    let c = Cluster::prepare("");
    let err = c.fails(&["up", "zookeeper"]);
    assert!(err.contains("ratelimiter, etcd"), "{err}");
    let mut c = Cluster::start_subject("ratelimiter", "");
    let err = c.fails(&["chaos", "inject", "nospace"]);
    assert!(err.contains("nospace is a fault of etcd"), "{err}");
    c.down();
}

/// `operator load etcd` and its oracle: each acknowledged write is recorded, a member's
/// death under load loses nothing, and a write taken away behind the load's back is named.
#[test]
fn load_records_acknowledged_writes_and_verify_names_a_lost_one() {
    let c = Cluster::start_subject("etcd", "");
    let run = |args: &[&str]| -> serde_json::Value {
        let out = c.ok(args);
        serde_json::from_str(out.lines().last().unwrap()).unwrap()
    };
    let total = run(&[
        "load",
        "etcd",
        "--rate",
        "60",
        "--duration",
        "2s",
        "--keys",
        "20",
        "--json",
    ]);
    assert_eq!(total["total"], true, "{total}");
    let (sent, ok) = (
        total["sent"].as_u64().unwrap(),
        total["ok"].as_u64().unwrap(),
    );
    assert!(sent >= 100 && ok == sent, "{total}");
    let v = run(&["load", "etcd", "--verify", "--json"]);
    assert_eq!(
        (v["ok"].as_bool(), v["checked"].as_u64()),
        (Some(true), Some(20)),
        "{v}"
    );

    // A member killed under load: its share fails, and no acknowledged write is lost.
    let load = c
        .command(&[
            "load",
            "--rate",
            "60",
            "--duration",
            "3s",
            "--keys",
            "20",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    c.ok(&["node", "kill", "etcd-1"]);
    let out = load.wait_with_output().unwrap();
    assert!(out.status.success());
    let total: serde_json::Value =
        serde_json::from_str(common::text(&out.stdout).lines().last().unwrap()).unwrap();
    assert!(total["failed"].as_u64().unwrap() > 0, "{total}");
    c.ok(&["node", "start", "etcd-1"]);
    let v = run(&["load", "etcd", "--verify", "--json"]);
    assert_eq!(v["ok"], true, "{v}");

    // A key deleted behind the load's back: the oracle names it and exits 1.
    let g = gateway();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(g.delete_prefix(&c.address("etcd-2"), "/operator/load/k0007"))
        .unwrap();
    let out = c.cmd(&["load", "etcd", "--verify"]);
    let text = common::text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("1 of 20 keys lost") && text.contains("/operator/load/k0007"),
        "{text}"
    );
    // Another subject's load is refused by name: this instance runs etcd.
    let err = c.fails(&["load", "ratelimiter", "--verify"]);
    assert!(err.contains("runs `etcd`"), "{err}");
}

/// member_removed: the member list loses a member, the monitor names it, and the runbook
/// agent re-makes it — a destructive step, approved by a person on the terminal — and the
/// data written before is all there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_removed_is_repaired_by_a_reset_a_person_approves() {
    let c = Cluster::start_subject("etcd", "");
    c.etcd_load_ten_keys();
    let mut m = c.monitor();
    let (id, _) = c.inject(&["member_removed", "--target", "etcd-2", "--duration", "0"]);
    let r = cycle_until(&mut m, 20, STEP, |r| {
        opened(r, "membership_mismatch", "etcd-2")
    })
    .await;
    // A removed member is not also reported down: its ticket is the membership's.
    let v = violated(&r);
    assert!(
        !v.contains(&("member_down".to_string(), "etcd-2".to_string())),
        "{v:?}"
    );
    let s = r.snapshot.unwrap();
    let v = s
        .assessment
        .violations
        .iter()
        .find(|v| v.invariant == "membership_mismatch")
        .unwrap();
    assert_eq!(v.detail["problem"], "removed", "{v:?}");
    // Removing the member that led costs an election: a quorum_lost or no_leader ticket may
    // have opened meanwhile. A clean look closes it, so the agent is given only this one.
    let membership = [("membership_mismatch".to_string(), "etcd-2".to_string())];
    cycle_until(&mut m, 40, STEP, |r| violated(r) == membership).await;
    drop(m);

    let cmd = format!(
        "env -u OPERATOR_CONFIG {} --config {} --state-dir {} agent --once --backend runbook --with-monitor --interval 300ms; echo AGENT-EXIT=$?; sleep 120",
        common::OPERATOR,
        c.config_path().display(),
        c.state_dir().display()
    );
    let t = Tmux::start(&cmd, 200, 60);
    let screen = t.wait_history("approval needed", 1).await;
    assert!(screen.contains("operator node reset etcd-2"), "{screen}");
    assert!(screen.contains("destructive"), "{screen}");
    t.keys(&["y", "Enter"]);
    let screen = t.wait_history("AGENT-EXIT=", 1).await;
    assert!(screen.contains("AGENT-EXIT=0"), "{screen}");
    assert!(screen.contains("resolved (verified)"), "{screen}");
    let members = gateway().members(&c.address("etcd-1")).await.unwrap();
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["etcd-1", "etcd-2", "etcd-3"]);
    // The re-made member serves the data written before it was removed.
    let v = c.json(&["load", "etcd", "--verify"]);
    assert_eq!(
        (v["ok"].as_bool(), v["checked"].as_u64()),
        (Some(true), Some(10)),
        "{v}"
    );
    let entry = gateway()
        .get(&c.address("etcd-2"), "/operator/load/k0003")
        .await
        .unwrap();
    assert!(entry.is_some(), "etcd-2 has the data again");
    // The fault's heal finds the member back and leaves it be.
    let healed = c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(healed.contains("serving member again"), "{healed}");
}

/// The eval harness runs an etcd campaign: each of etcd's faults is repaired by the runbook
/// agent (the reset allowed by the config, as the campaign file says), and after each
/// trial the oracle finds every acknowledged write of the background load.
#[test]
fn the_eval_harness_runs_an_etcd_campaign_and_verifies_the_data() {
    // Disks here are shared by every test running beside this one: slow commits are not
    // what this test is about.
    let c = Cluster::prepare(
        "[agent.policy]\nallow = [\"operator node reset\"]\n[etcd.thresholds]\ncommit_p99_ms = 10000.0\nfsync_p99_ms = 10000.0\n",
    );
    let file = c.dir.path().join("campaign-etcd.yaml");
    std::fs::write(
        &file,
        "name: etcd-small\nsubjects: [etcd]\nchaos_types: [{type: node_kill}, {type: nospace}, {type: member_removed}]\ntrials_per_combination: 1\ninclude_baseline: false\ninclude_control: true\nseed: 7\ntimeouts: {healthy: 30s, detect: 10s, resolve: 40s, hold: 2s, baseline_resolve: 6s}\n",
    )
    .unwrap();
    let out = c.ok(&[
        "eval",
        "run",
        "campaign",
        &file.display().to_string(),
        "--json",
    ]);
    let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let id = last["campaign"]["id"].as_i64().unwrap();
    let db = c.store();
    let trials = db.trials(id).unwrap();
    assert_eq!(trials.len(), 4, "three faults and a control");
    for t in &trials {
        let events = db.trial_events(t.id).unwrap();
        let why = format!(
            "trial {} {:?}: {:?} {:?}\n{:#?}",
            t.id,
            t.fault,
            t.verdict,
            t.reason,
            events
                .iter()
                .map(|e| (&e.step, &e.detail))
                .collect::<Vec<_>>()
        );
        let expected = if t.control { "clean" } else { "resolved" };
        assert_eq!(
            t.verdict.map(|v| v.to_string()).as_deref(),
            Some(expected),
            "{why}"
        );
        let verified = events
            .iter()
            .find(|e| e.step == "verify")
            .unwrap_or_else(|| panic!("no verify step: {why}"));
        assert!(
            verified.detail.starts_with("every acknowledged write of ")
                && !verified.detail.contains(" of 0 keys"),
            "{why}"
        );
    }
}
