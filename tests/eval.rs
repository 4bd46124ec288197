//! The evaluation harness against the real thing: campaigns run by the `operator` binary on
//! real clusters (slots on instances 100 and up), the runbook agent, the verdicts read back
//! from the DB and checked against the audit and the ledger.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{AuditDb, Cluster, LedgerDb, TicketDb, text, wait_for};
use operator::store::EvalDb;
use operator::store::eval::{CampaignStatus, TrialRow, TrialStatus, Verdict};
use serde_json::Value;

/// Quick timeouts: the monitor sees a kill at once (pidfd) and a pause within the 300 ms
/// probe timeout of the test config.
const QUICK: &str =
    "timeouts: {healthy: 30s, detect: 5s, resolve: 30s, hold: 2s, baseline_resolve: 6s}\n";

fn campaign(c: &Cluster, name: &str, body: &str) -> String {
    let path = c.dir.path().join(format!("campaign-{name}.yaml"));
    std::fs::write(
        &path,
        format!("name: {name}\nsubjects: [ratelimiter]\n{body}"),
    )
    .unwrap();
    path.display().to_string()
}

fn variant(c: &Cluster, file: &str, body: &str) {
    std::fs::write(c.dir.path().join(file), body).unwrap();
}

/// `eval run campaign FILE --json`: the campaign's id and its last line (the scores).
fn run(c: &Cluster, file: &str) -> (i64, Value) {
    let out = c.ok(&["eval", "run", "campaign", file, "--json"]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    (last["campaign"]["id"].as_i64().unwrap(), last)
}

/// An `operator` command on another instance of the cluster's state dir.
fn at(c: &Cluster, instance: u32, args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::OPERATOR)
        .arg("--config")
        .arg(c.config_path())
        .arg("--state-dir")
        .arg(c.state_dir())
        .arg("--instance")
        .arg(instance.to_string())
        .args(args)
        .env_remove("OPERATOR_INSTANCE")
        .output()
        .unwrap()
}

fn trials(c: &Cluster, id: i64) -> Vec<TrialRow> {
    c.store().trials(id).unwrap()
}

/// Nothing of the harness is left: no slot, no live fault, no node of a slot instance.
fn nothing_left(c: &Cluster) {
    let db = c.store();
    assert!(db.slots().unwrap().is_empty(), "{:?}", db.slots().unwrap());
    let live = db.faults(None, false).unwrap();
    assert!(live.is_empty(), "faults left: {live:?}");
    for i in 100..104 {
        assert!(
            !c.state_dir()
                .join("instances")
                .join(i.to_string())
                .join("instance.json")
                .exists(),
            "instance {i} left up"
        );
        let status = at(c, i, &["status", "--json"]);
        assert!(
            !status.status.success(),
            "instance {i}: {}",
            text(&status.stdout)
        );
    }
    // No node of the slots runs any more.
    let state = c.state_dir().display().to_string();
    assert!(
        common::our_processes(&[&state]).is_empty(),
        "processes left"
    );
}

#[test]
fn a_small_campaign_is_scored_by_the_cluster_state_and_agrees_with_the_audit() {
    let c = Cluster::prepare("");
    let file = campaign(
        &c,
        "small",
        &format!(
            "chaos_types: [{{type: node_kill}}, {{type: pause}}]\ntrials_per_combination: 2\ninclude_baseline: true\ninclude_control: true\nseed: 5\n{QUICK}"
        ),
    );
    let (id, scores) = run(&c, &file);
    let ts = trials(&c, id);
    assert_eq!(
        ts.len(),
        10,
        "2 faults × 2 × (agent, baseline) + 2 controls"
    );
    assert!(ts.iter().all(|t| t.status == TrialStatus::Done));
    let db = c.store();
    for t in &ts {
        let why = format!(
            "trial {} {:?} {} {:?}: {:?}",
            t.id, t.fault, t.variant, t.verdict, t.reason
        );
        match (t.control, t.baseline) {
            (true, _) => assert_eq!(t.verdict, Some(Verdict::Clean), "{why}"),
            (false, true) => {
                // Nothing heals a killed or a frozen node by itself.
                assert_eq!(t.verdict, Some(Verdict::Unresolved), "{why}");
                assert_eq!(t.metrics.commands, 0, "{why}");
            }
            (false, false) => {
                assert_eq!(t.verdict, Some(Verdict::Resolved), "{why}");
                assert_eq!(t.won, Some(true), "{why}");
                assert_eq!(t.localized, Some(true), "{why}");
                // The times agree with the tickets, the counts with the audit.
                let injected = t.injected_at.unwrap();
                let tickets: Vec<_> = t
                    .metrics
                    .tickets
                    .iter()
                    .map(|id| db.ticket(*id).unwrap())
                    .collect();
                assert!(!tickets.is_empty(), "{why}");
                // Its tickets make incidents, and an agent's repair is never called healing
                // by itself.
                assert!(!t.metrics.incidents.is_empty(), "{why}");
                assert!(t.metrics.scoring_errors.is_empty(), "{why}");
                assert!(
                    tickets.iter().all(|k| k
                        .incident_id
                        .is_some_and(|i| t.metrics.incidents.contains(&i))),
                    "{why}"
                );
                let ttd = t.ttd_ms.unwrap() as i64;
                let ttr = t.ttr_ms.unwrap() as i64;
                assert!(ttd < 5000 && ttr >= ttd, "{why}: ttd {ttd} ttr {ttr}");
                // A later trial may reopen the same ticket: its history says when it was
                // resolved in this one.
                let ended = t.ended_at.unwrap();
                let last = tickets
                    .iter()
                    .flat_map(|k| db.ticket_events(k.id).unwrap())
                    .filter(|e| e.kind == "resolved" && e.at >= injected && e.at <= ended)
                    .map(|e| e.at)
                    .max()
                    .unwrap();
                assert_eq!((last - injected).num_milliseconds(), ttr, "{why}");
                let mut commands = 0;
                for s in &t.metrics.sessions {
                    commands += db
                        .entries(*s, 0)
                        .unwrap()
                        .iter()
                        .filter(|e| {
                            e.command.is_some()
                                && e.kind == Some(operator::agent::audit::Kind::ToolCall)
                        })
                        .count() as u32;
                }
                assert!(
                    commands > 0 && commands == t.metrics.commands,
                    "{why}: audit {commands}"
                );
                let fault = db.fault(t.fault_id.unwrap()).unwrap().unwrap();
                assert_eq!(Some(fault.target.clone()), t.target, "{why}");
                assert!(!fault.status.is_live(), "healed after the trial: {why}");
            }
        }
    }
    // The scores say the same.
    let slices = scores["slices"].as_array().unwrap();
    let slice = |fault: &str, baseline: bool| {
        slices
            .iter()
            .find(|s| s["fault"] == fault && s["baseline"] == baseline)
            .unwrap_or_else(|| panic!("no slice {fault} {baseline}"))
    };
    assert_eq!(slice("node_kill", false)["win_rate"], 1.0);
    assert_eq!(slice("node_kill", true)["win_rate"], 0.0);
    assert_eq!(slice("control", false)["wins"], 2);
    let ci = slice("node_kill", false)["win_rate_ci"]
        .as_array()
        .unwrap()
        .clone();
    assert!(ci[0].as_f64().unwrap() < 0.5 && ci[1] == 1.0, "{ci:?}");
    // The other listings read the same trials.
    let export = c.ok(&["eval", "export", &id.to_string(), "--format", "jsonl"]);
    assert_eq!(export.lines().count(), 10);
    let first: Value = serde_json::from_str(export.lines().next().unwrap()).unwrap();
    for key in [
        "id",
        "campaign_id",
        "subject",
        "fault",
        "params",
        "target",
        "variant",
        "baseline",
        "control",
        "verdict",
        "ttd_ms",
        "ttr_ms",
        "localized",
        "commands",
    ] {
        assert!(first.get(key).is_some(), "export lacks {key}: {first}");
    }
    let csv = c.ok(&["eval", "export", &id.to_string(), "--format", "csv"]);
    assert_eq!(csv.lines().count(), 11);
    let list = c.json(&["eval", "list"]);
    assert_eq!(list[0]["status"], "finished");
    let agent_trial = ts.iter().find(|t| !t.baseline && !t.control).unwrap();
    let show = c.ok(&["eval", "show", &agent_trial.id.to_string()]);
    for step in [
        "reset",
        "gate",
        "inject",
        "detect",
        "hold",
        "heal",
        "verdict",
        "agent session",
    ] {
        assert!(show.contains(step), "show lacks {step}:\n{show}");
    }
    let analyze = c.json(&["eval", "analyze", &id.to_string()]);
    assert_eq!(analyze["provenance"]["seed"], "5");
    assert!(
        analyze["provenance"]["campaign_sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64
    );
    let base = c.json(&["eval", "compare-baseline", &id.to_string()]);
    assert!(
        base["slices"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["p_value"].is_number())
    );
    nothing_left(&c);
}

#[test]
fn compare_tells_a_repairing_agent_from_one_that_only_watches_and_not_from_itself() {
    let c = Cluster::prepare("");
    variant(
        &c,
        "auto.yaml",
        "name: runbook\nbackend: runbook\nmode: auto\n",
    );
    variant(
        &c,
        "observe.yaml",
        "name: watcher\nbackend: runbook\nmode: observe\n",
    );
    let body = |v: &str, seed: u32| {
        format!(
            "chaos_types: [{{type: node_kill}}]\ntrials_per_combination: 8\nparallel: 2\nvariant: {v}\nseed: {seed}\n{QUICK}"
        )
    };
    let (a, _) = run(&c, &campaign(&c, "auto", &body("auto.yaml", 1)));
    let (b, _) = run(&c, &campaign(&c, "observe", &body("observe.yaml", 2)));
    let (again, _) = run(&c, &campaign(&c, "again", &body("auto.yaml", 3)));
    let wins = |id| {
        trials(&c, id)
            .iter()
            .filter(|t| t.won == Some(true))
            .count()
    };
    assert_eq!((wins(a), wins(b), wins(again)), (8, 0, 8));
    // The agent that may not change anything gives up, and says so.
    assert!(
        trials(&c, b)
            .iter()
            .all(|t| t.verdict == Some(Verdict::Escalated))
    );
    let diff = c.json(&["eval", "compare", &a.to_string(), &b.to_string()]);
    let s = &diff["slices"][0];
    assert_eq!(s["test"], "fisher");
    let p = s["p_value"].as_f64().unwrap();
    assert!((p - 0.000_155).abs() < 1e-5, "{s}");
    assert_eq!(s["too_small"], false);
    let same = c.json(&["eval", "compare", &a.to_string(), &again.to_string()]);
    assert!(
        same["slices"][0]["p_value"].as_f64().unwrap() > 0.5,
        "{same}"
    );
    let variants = c.json(&["eval", "compare-variants", "ratelimiter", "node_kill"]);
    assert_eq!(variants["variants"].as_array().unwrap().len(), 2);
    nothing_left(&c);
}

#[test]
fn each_verdict_is_reached_on_purpose() {
    let c = Cluster::prepare("");
    variant(
        &c,
        "observe.yaml",
        "name: watcher\nbackend: runbook\nmode: observe\n",
    );
    // Undetected: the monitor looks every 30 s, without the runtime's events, and the
    // harness waits 2 s for a ticket.
    let (u, _) = run(
        &c,
        &campaign(
            &c,
            "undetected",
            "chaos_types: [{type: node_kill}]\nmonitor: {interval: 30s, events: false}\ntimeouts: {detect: 2s, resolve: 10s}\n",
        ),
    );
    let t = &trials(&c, u)[0];
    assert_eq!(t.verdict, Some(Verdict::Undetected), "{:?}", t.reason);
    // Invalid: a gate that cannot pass (two healthy looks within a millisecond).
    let (i, scores) = run(
        &c,
        &campaign(
            &c,
            "invalid",
            "chaos_types: [{type: pause}]\ntimeouts: {healthy: 1ms}\n",
        ),
    );
    let t = &trials(&c, i)[0];
    assert_eq!(t.verdict, Some(Verdict::Invalid));
    assert!(
        t.reason.as_deref().unwrap().contains("steady-state gate"),
        "{:?}",
        t.reason
    );
    assert!(
        t.fault_id.is_none(),
        "no fault is injected after a failed gate"
    );
    let slice = &scores["slices"][0];
    assert_eq!(
        (slice["n"].as_u64(), slice["invalid"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(
        slice["win_rate"].is_null(),
        "an invalid trial is in no rate: {slice}"
    );
    // Escalated: an agent that may only look gives up.
    let (e, _) = run(
        &c,
        &campaign(
            &c,
            "escalated",
            &format!("chaos_types: [{{type: node_kill}}]\nvariant: observe.yaml\n{QUICK}"),
        ),
    );
    let t = &trials(&c, e)[0];
    assert_eq!(t.verdict, Some(Verdict::Escalated), "{:?}", t.reason);
    assert_eq!(t.won, Some(false));
    assert!(
        t.metrics.denied > 0,
        "its repair was refused: {:?}",
        t.metrics
    );
    nothing_left(&c);
}

#[test]
fn a_control_trial_with_a_ticket_is_a_false_alarm() {
    let c = Cluster::prepare("");
    let file = campaign(
        &c,
        "control",
        "include_control: true\ntimeouts: {detect: 20s, resolve: 30s, hold: 1s}\nvariant: default\n",
    );
    let child = c
        .command(&["eval", "run", "campaign", &file, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Something breaks while the control trial watches, as an unrelated outage would.
    let db = c.store();
    assert!(wait_for(Duration::from_secs(60), || {
        db.campaigns(1)
            .ok()
            .and_then(|cs| cs.first().map(|c| c.id))
            .and_then(|id| db.trials(id).ok())
            .is_some_and(|ts| ts.iter().any(|t| t.step.as_deref() == Some("watch")))
    }));
    let killed = at(&c, 100, &["node", "kill", "ratelimiter-1"]);
    assert!(killed.status.success(), "{}", text(&killed.stderr));
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let id = db.campaigns(1).unwrap()[0].id;
    let t = &trials(&c, id)[0];
    assert_eq!(t.verdict, Some(Verdict::FalseAlarm), "{:?}", t.reason);
    assert_eq!(t.won, Some(false));
    nothing_left(&c);
}

#[test]
fn a_killed_harness_leaves_nothing_behind_and_resume_counts_each_trial_once() {
    let c = Cluster::prepare("");
    let file = campaign(
        &c,
        "killed",
        "chaos_types: [{type: node_kill}, {type: pause}]\ntrials_per_combination: 2\ninclude_baseline: true\nseed: 9\ntimeouts: {detect: 5s, resolve: 30s, hold: 2s, baseline_resolve: 20s}\n",
    );
    let mut child = c
        .command(&["eval", "run", "campaign", &file, "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db = c.store();
    // Kill it while a baseline trial's fault is in effect.
    assert!(wait_for(Duration::from_secs(90), || {
        db.campaigns(1)
            .ok()
            .and_then(|cs| cs.first().map(|c| c.id))
            .and_then(|id| db.trials(id).ok())
            .is_some_and(|ts| {
                ts.iter().any(|t| {
                    t.baseline
                        && t.status == TrialStatus::Running
                        && t.step.as_deref() == Some("detect")
                })
            })
    }));
    assert!(
        !db.faults(None, false).unwrap().is_empty(),
        "a fault is in effect"
    );
    let status: Value = serde_json::from_slice(&at(&c, 100, &["status", "--json"]).stdout).unwrap();
    let pids: Vec<i32> = status
        .as_array()
        .or_else(|| status["nodes"].as_array())
        .unwrap()
        .iter()
        .filter_map(|n| n["pid"].as_i64())
        .map(|p| p as i32)
        .collect();
    assert!(pids.len() >= 4, "{status}");
    child.kill().unwrap();
    child.wait().unwrap();
    let id = db.campaigns(1).unwrap()[0].id;
    // The next command, whatever it is, cleans up after it.
    let out = c.cmd(&["eval", "list"]);
    assert!(
        text(&out.stderr).contains("tore down trial slot 0"),
        "{}",
        text(&out.stderr)
    );
    nothing_left(&c);
    for pid in pids {
        // Gone, or a zombie: dead, waiting for init (its parent, the harness, was killed) to
        // reap it.
        let gone = !operator::runtime::local::process::running(pid as u32);
        assert!(gone, "node process {pid} outlived the harness's teardown");
    }
    let row = db.campaign(id).unwrap().unwrap();
    assert_eq!(row.status, CampaignStatus::Interrupted);
    let before: Vec<TrialRow> = trials(&c, id);
    assert!(before.iter().all(|t| t.status != TrialStatus::Running));
    let done_before: Vec<i64> = before
        .iter()
        .filter(|t| t.status == TrialStatus::Done)
        .map(|t| t.id)
        .collect();
    c.ok(&[
        "eval",
        "run",
        "campaign",
        &file,
        "--resume",
        &id.to_string(),
        "--json",
    ]);
    let after = trials(&c, id);
    assert_eq!(after.len(), 8, "each trial once");
    assert!(after.iter().all(|t| t.status == TrialStatus::Done));
    for t in &after {
        if done_before.contains(&t.id) {
            assert_eq!(t.attempt, 1, "a finished trial is not run again");
        }
    }
    assert!(
        after.iter().any(|t| t.attempt == 2),
        "the interrupted trial ran again"
    );
    assert_eq!(
        db.campaign(id).unwrap().unwrap().status,
        CampaignStatus::Finished
    );
    nothing_left(&c);
}

#[test]
fn bad_campaigns_are_refused_before_any_trial() {
    let c = Cluster::prepare("");
    let bad = campaign(
        &c,
        "bad",
        "chaos_types:\n  - type: pause\n  - type: meltdown\n",
    );
    let err = c.fails(&["eval", "run", "campaign", &bad]);
    assert!(
        err.contains("campaign-bad.yaml, line 5") && err.contains("known faults"),
        "{err}"
    );
    // A variant whose backend has no API key names the variable.
    variant(&c, "claude.yaml", "name: claude\nbackend: anthropic\n");
    let keyless = campaign(
        &c,
        "keyless",
        "chaos_types: [{type: pause}]\nvariant: claude.yaml\n",
    );
    let out = c
        .command(&["eval", "run", "campaign", &keyless])
        .env_remove("ANTHROPIC_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("ANTHROPIC_API_KEY"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        c.store().campaigns(10).unwrap().is_empty(),
        "nothing was stored"
    );
}

#[test]
fn sigterm_stops_the_trials_heals_and_tears_down_and_two_runs_share_a_db() {
    let c = Cluster::prepare("");
    let slow = campaign(
        &c,
        "slow",
        "chaos_types: [{type: pause}]\ninclude_baseline: true\nseed: 4\ntimeouts: {detect: 5s, resolve: 30s, baseline_resolve: 60s}\n",
    );
    let quick = campaign(
        &c,
        "quick",
        &format!("chaos_types: [{{type: node_kill}}]\nseed: 4\n{QUICK}"),
    );
    let child = c
        .command(&["eval", "run", "campaign", &slow, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let db = c.store();
    // The baseline trial waits a minute for a paused node to heal by itself: meanwhile a
    // second run on the same DB takes the next slot and finishes.
    assert!(wait_for(Duration::from_secs(60), || {
        db.slots().is_ok_and(|s| s.len() == 1)
            && db
                .campaigns(1)
                .ok()
                .and_then(|cs| cs.first().map(|c| c.id))
                .and_then(|id| db.trials(id).ok())
                .is_some_and(|ts| {
                    ts.iter()
                        .any(|t| t.baseline && t.step.as_deref() == Some("detect"))
                })
    }));
    let (second, _) = run(&c, &quick);
    let t = &trials(&c, second)[0];
    assert_eq!((t.slot, t.instance), (Some(1), Some(101)), "the next slot");
    assert_eq!(t.verdict, Some(Verdict::Resolved), "{:?}", t.reason);
    // SIGTERM the first: its trial stops, its fault is healed, its slot torn down.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let first = db
        .campaigns(10)
        .unwrap()
        .into_iter()
        .find(|r| r.name == "slow")
        .unwrap();
    assert_eq!(first.status, CampaignStatus::Interrupted);
    assert!(first.note.contains("--resume"), "{}", first.note);
    let ts = trials(&c, first.id);
    assert!(
        ts.iter().any(|t| t.status == TrialStatus::Pending),
        "the stopped trial is to run again"
    );
    nothing_left(&c);
}

#[test]
fn a_repair_that_breaks_another_node_is_a_regression() {
    // A runbook that starts the dead node, then stops a healthy one (an allow rule lets it).
    let runbooks = tempfile::tempdir().unwrap();
    std::fs::write(
        runbooks.path().join("ratelimiter.yaml"),
        "subject: ratelimiter\nrecipes:\n  node_down:\n    diagnose:\n      - say: \"Look.\"\n        run: \"{status}\"\n    repair:\n      - say: \"Start it.\"\n        run: \"{start} {entity}\"\n      - say: \"And, wrongly, stop another.\"\n        run: \"{stop} ratelimiter-3\"\n",
    )
    .unwrap();
    let c = Cluster::prepare(&format!(
        "agent.runbooks_dir = {:?}\nagent.policy.allow = [\"operator node stop\"]\n",
        runbooks.path().display().to_string()
    ));
    let (id, _) = run(
        &c,
        &campaign(
            &c,
            "regression",
            "chaos_types: [{type: node_kill, target: ratelimiter-1}]\ntimeouts: {detect: 5s, resolve: 15s, hold: 1s}\n",
        ),
    );
    let t = &trials(&c, id)[0];
    assert_eq!(t.regression, Some(true), "{:?} {:?}", t.verdict, t.reason);
    assert_ne!(
        t.verdict,
        Some(Verdict::Resolved),
        "ratelimiter-3 stays down"
    );
    assert!(
        t.metrics.mutating >= 2 && t.metrics.destructive >= 1,
        "{:?}",
        t.metrics
    );
    nothing_left(&c);
}
