//! Network faults on the local runtime, through the fault proxy in the data path: each one
//! injected through the real binary, its effect checked from outside (a request's latency, a
//! refused connection, a slow download, the proxy's own state), and its heal checked the same
//! way — also after the process that should have healed it was killed.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Cluster, cycle_until, violated, wait_for};
use serde_json::Value;

/// `GET path` over a fresh connection; the status and how long the whole answer took.
fn get(address: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, Duration, String)> {
    let start = Instant::now();
    let mut s = TcpStream::connect(address)?;
    s.set_read_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    let status = body
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, start.elapsed(), body))
}

fn node(c: &Cluster, name: &str) -> Value {
    c.json(&["status"])
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap()
}

/// Where clients reach `name`: its link through the fault proxy.
fn client_address(c: &Cluster, name: &str) -> String {
    c.runtime()
        .topology()
        .unwrap()
        .nodes
        .into_iter()
        .find(|n| n.name == name)
        .and_then(|n| n.client)
        .expect("a client link")
}

/// The fault proxy's links as its control API reports them.
fn links(c: &Cluster) -> Vec<Value> {
    let (status, _, body) =
        get(&c.address("faultproxy"), "/links", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200, "{body}");
    let json = body.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(json).unwrap()
}

/// The links that carry a toxic of `tag` on every connection.
fn links_with(c: &Cluster, tag: &str) -> Vec<String> {
    links_scoped(c, tag, None)
}

/// The links that carry a toxic of `tag` at all.
fn links_any(c: &Cluster, tag: &str) -> Vec<String> {
    links(c)
        .iter()
        .filter(|l| l["toxics"].get(tag).is_some())
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

/// The links that carry a toxic of `tag`, on every connection (`dialed_by` None) or only on
/// those dialed by the node listening at `dialed_by`.
fn links_scoped(c: &Cluster, tag: &str, dialed_by: Option<&str>) -> Vec<String> {
    links(c)
        .iter()
        .filter(|l| {
            l["toxics"]
                .get(tag)
                .is_some_and(|t| t["dialed_by"].as_str() == dialed_by)
        })
        .map(|l| l["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn latency_slows_what_clients_and_the_node_see_until_healed() {
    let c = Cluster::start("");
    let client = client_address(&c, "ratelimiter-1");
    let direct = c.address("ratelimiter-1");
    let (_, clean, _) = get(&client, "/health", Duration::from_secs(5)).unwrap();
    let (id, tag) = c.inject(&[
        "latency",
        "--target",
        "ratelimiter-1",
        "--delay",
        "300ms",
        "--jitter",
        "0ms",
    ]);
    assert_eq!(
        links_with(&c, &tag),
        vec!["clients>ratelimiter-1", "ratelimiter-1>redis"]
    );
    // And on whatever the node dials through the others' links (here: nothing it dials).
    assert_eq!(
        links_scoped(&c, &tag, Some(&direct)),
        vec!["ratelimiter-2>redis", "ratelimiter-3>redis"]
    );
    // Through the client link: Redis's answer to the node and the node's answer are delayed.
    let (status, slow, _) = get(&client, "/health", Duration::from_secs(5)).unwrap();
    assert_eq!(status, 200);
    assert!(slow >= Duration::from_millis(590), "{slow:?}");
    // Asked directly, the node is still slow: its own link to Redis is.
    let (_, slow_direct, _) = get(&direct, "/health", Duration::from_secs(5)).unwrap();
    assert!(slow_direct >= Duration::from_millis(295), "{slow_direct:?}");
    // Other nodes are untouched.
    let other = client_address(&c, "ratelimiter-2");
    let (_, fast, _) = get(&other, "/health", Duration::from_secs(5)).unwrap();
    assert!(fast < Duration::from_millis(250), "{fast:?}");

    let healed = c.json(&["chaos", "heal", &id.to_string()]);
    assert_eq!(healed[0]["acted"], true, "{healed}");
    assert!(links_any(&c, &tag).is_empty());
    let (_, after, _) = get(&client, "/health", Duration::from_secs(5)).unwrap();
    assert!(
        after < Duration::from_millis(250),
        "{after:?} (before the fault: {clean:?})"
    );
}

#[test]
fn a_refusing_partition_refuses_clients_and_cuts_the_node_from_redis() {
    let c = Cluster::start("");
    let client = client_address(&c, "ratelimiter-2");
    let direct = c.address("ratelimiter-2");
    let (id, tag) = c.inject(&[
        "network_partition",
        "--target",
        "ratelimiter-2",
        "--mode",
        "refuse",
    ]);
    assert_eq!(links_with(&c, &tag).len(), 2);
    let err = TcpStream::connect(&client).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    // The node itself lives, and says Redis is out of its reach.
    assert!(wait_for(Duration::from_secs(5), || {
        get(&direct, "/health", Duration::from_secs(3))
            .is_ok_and(|(s, _, b)| s == 503 && b.contains("unreachable"))
    }));
    assert_eq!(node(&c, "ratelimiter-2")["state"], "running");

    c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(links_any(&c, &tag).is_empty());
    assert!(TcpStream::connect(&client).is_ok());
    assert!(wait_for(Duration::from_secs(5), || {
        get(&direct, "/health", Duration::from_secs(3)).is_ok_and(|(s, _, _)| s == 200)
    }));
}

#[test]
fn a_black_hole_swallows_requests_until_healed() {
    let c = Cluster::start("");
    let client = client_address(&c, "ratelimiter-3");
    let (id, _) = c.inject(&["network_partition", "--target", "ratelimiter-3"]);
    // Connected, but no answer comes.
    let err = get(&client, "/health", Duration::from_millis(800)).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    c.ok(&["chaos", "heal", &id.to_string()]);
    assert!(wait_for(Duration::from_secs(5), || {
        get(&client, "/health", Duration::from_secs(3)).is_ok_and(|(s, _, _)| s == 200)
    }));
}

#[test]
fn bandwidth_slows_a_download_until_healed() {
    let c = Cluster::start("");
    let client = client_address(&c, "ratelimiter-1");
    let (_, _, body) = get(&client, "/metrics", Duration::from_secs(5)).unwrap();
    let size = body.len();
    assert!(size > 2000, "metrics are {size} bytes");
    let (id, _) = c.inject(&["bandwidth", "--target", "ratelimiter-1", "--rate", "2000"]);
    let (_, slow, _) = get(&client, "/metrics", Duration::from_secs(10)).unwrap();
    let least = Duration::from_secs_f64(size as f64 / 2000.0 * 0.9);
    assert!(slow >= least, "{size} bytes in {slow:?}");
    c.ok(&["chaos", "heal", &id.to_string()]);
    let (_, fast, _) = get(&client, "/metrics", Duration::from_secs(5)).unwrap();
    assert!(fast < Duration::from_millis(300), "{fast:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monitor_sees_a_partitioned_node_and_its_recovery() {
    let c = Cluster::start("");
    let mut m = c.monitor();
    let every = Duration::from_millis(200);
    cycle_until(&mut m, 20, every, |r| violated(r).is_empty()).await;
    let (id, _) = c.inject(&[
        "network_partition",
        "--target",
        "ratelimiter-1",
        "--mode",
        "refuse",
    ]);
    let r = cycle_until(&mut m, 30, every, |r| {
        violated(r).contains(&("node_degraded".into(), "ratelimiter-1".into()))
    })
    .await;
    assert!(
        !violated(&r).iter().any(|(_, e)| e == "redis"),
        "Redis itself is fine: {:?}",
        violated(&r)
    );
    c.ok(&["chaos", "heal", &id.to_string()]);
    cycle_until(&mut m, 30, every, |r| violated(r).is_empty()).await;
}

#[test]
fn a_network_fault_whose_healer_died_is_healed_by_the_next_command() {
    let c = Cluster::start("");
    let (id, tag) = c.inject(&["latency", "--target", "ratelimiter-2", "--duration", "1s"]);
    c.kill_healers();
    assert_eq!(links_with(&c, &tag).len(), 2, "nobody healed it yet");
    c.ok(&["chaos", "list"]);
    assert!(links_any(&c, &tag).is_empty());
    let all = c.json(&["chaos", "list", "--all"]);
    let f = all["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .unwrap();
    assert_eq!(f["status"], "healed", "{f}");
    assert!(f["note"].as_str().unwrap().contains("none left"), "{f}");
}

#[test]
fn a_toxic_left_by_a_crash_mid_injection_is_healed_and_only_it() {
    let c = Cluster::start("");
    // Someone else's toxic on the same link, which heal must leave alone.
    let (other, other_tag) = c.inject(&["latency", "--target", "ratelimiter-3", "--duration", "0"]);
    let id = c.fault_left_by_a_crash(
        "network_partition",
        "ratelimiter-1",
        r#"{"impairment":{"type":"partition","mode":"refuse"}}"#,
    );
    // The crashed process got as far as one link.
    let proxy = operator::runtime::proxy::ProxyClient::new(c.address("faultproxy")).with_token(
        operator::runtime::proxy::token::read(&c.state_dir().join("instances/0")),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(proxy.set(
        "clients>ratelimiter-1",
        &format!("fault-{id}"),
        operator::runtime::proxy::Toxic::Partition {
            mode: operator::runtime::proxy::PartitionMode::Refuse,
        },
    ))
    .unwrap();
    assert!(TcpStream::connect(client_address(&c, "ratelimiter-1")).is_err());
    c.ok(&["chaos", "list"]);
    assert!(links_any(&c, &format!("fault-{id}")).is_empty());
    assert!(TcpStream::connect(client_address(&c, "ratelimiter-1")).is_ok());
    assert_eq!(
        links_with(&c, &other_tag).len(),
        2,
        "fault #{other} is untouched"
    );
}

#[test]
fn faults_the_local_runtime_cannot_do_or_that_make_no_sense_are_refused_clearly() {
    let c = Cluster::start("");
    let err = c.fails(&["chaos", "inject", "disk_pressure"]);
    assert!(
        err.contains("disk_pressure is not available on the local runtime")
            && err.contains("--runtime docker"),
        "{err}"
    );
    let disk = c.catalogue_entry("disk_pressure");
    assert_eq!(disk["available"], false, "{disk}");
    let err = c.fails(&["chaos", "inject", "latency", "--target", "faultproxy"]);
    assert!(err.contains("test rig"), "{err}");
    let err = c.fails(&["chaos", "inject", "latency", "--rate", "10"]);
    assert!(err.contains("--rate applies to bandwidth"), "{err}");
    c.ok(&["chaos", "inject", "node_kill", "--target", "ratelimiter-1"]);
    let err = c.fails(&["chaos", "inject", "latency", "--target", "ratelimiter-1"]);
    assert!(err.contains("already down; nothing to slow down"), "{err}");
    // Nothing refused was recorded.
    let all = c.json(&["chaos", "list", "--all"]);
    assert_eq!(all["faults"].as_array().unwrap().len(), 1, "{all}");
}
