//! `operator load` against a real cluster: counts add up and the limit holds across nodes.

mod common;

use common::Cluster;

#[test]
fn load_reports_allowed_blocked_and_latency_and_the_limit_holds() {
    let c = Cluster::start("");
    // 60 requests on one key with a limit of 10, spread over three nodes.
    let out = c.ok(&[
        "load",
        "--rate",
        "40",
        "--duration",
        "1500ms",
        "--keys",
        "1",
        "--limit",
        "10",
        "--json",
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let total = lines.last().unwrap();
    assert_eq!(total["total"], true, "{out}");
    let sent = total["sent"].as_u64().unwrap();
    assert!(sent >= 50, "{total}");
    assert_eq!(total["ok"], 10, "{total}");
    assert_eq!(total["refused"].as_u64().unwrap(), sent - 10, "{total}");
    assert_eq!(total["failed"], 0);
    assert!(total["p99_ms"].as_f64().unwrap() > 0.0);
    assert!(
        lines.len() >= 2,
        "a line per second, then the totals: {out}"
    );

    // With a node down, its share fails and is counted as failed.
    c.ok(&["node", "kill", "ratelimiter-1"]);
    let total: serde_json::Value = serde_json::from_str(
        c.ok(&["load", "--rate", "30", "--duration", "1s", "--json"])
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let failed = total["failed"].as_u64().unwrap();
    let sent = total["sent"].as_u64().unwrap();
    assert!(failed > 0 && failed < sent, "{total}");
}
