//! The observer and the checks against PD's and TiKV's recorded answers
//! (`tests/fixtures/tikv/`, read from their source at v8.5.7): each scenario served over
//! real HTTP on loopback, nodes the scenario lists as unreachable on closed ports.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::check::{self, *};
use super::config::TikvConfig;
use super::observe::{Observer, TikvObservation};
use super::topology::{ROLE_PD, ROLE_STORE};
use crate::runtime::{Topology, TopologyNode};

#[path = "../../../tests/fixtures/tikv/render.rs"]
mod render;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tikv")
}

/// One recorded answer: status, content type and body, placeholders filled.
#[derive(Clone)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    body: String,
}

/// A scenario's answers by node and path.
struct Scenario {
    answers: HashMap<(String, String), Answer>,
    unreachable: Vec<String>,
}

fn load(name: &str, names: &HashMap<String, String>, now_s: u64) -> Scenario {
    let dir = fixtures().join(name);
    let listing = std::fs::read_to_string(dir.join("status.txt")).unwrap();
    let mut answers = HashMap::new();
    for line in listing
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, status, ctype, method, path) = (cols[0], cols[1], cols[2], cols[3], cols[4]);
        if method != "GET" {
            continue;
        }
        let body = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        let answer = Answer {
            status: status.parse().unwrap(),
            content_type: (ctype != "-").then(|| ctype.to_string()),
            body: render::render(&body, now_s, names),
        };
        // Whose answer: a node named in the file (`pd-2_metrics.txt`, `tikv-1_status`), else
        // any PD member's.
        let owner = ["pd-1", "pd-2", "pd-3", "tikv-1", "tikv-2", "tikv-3"]
            .into_iter()
            .find(|n| file.starts_with(&format!("{n}_")));
        match owner {
            Some(n) => {
                answers.insert((n.to_string(), path.to_string()), answer);
            }
            None => {
                for n in ["pd-1", "pd-2", "pd-3"] {
                    answers.insert((n.to_string(), path.to_string()), answer.clone());
                }
            }
        }
    }
    // A scenario about PD alone records no store: they answer as a healthy one does.
    for n in ["tikv-1", "tikv-2", "tikv-3"] {
        answers
            .entry((n.to_string(), "/status".to_string()))
            .or_insert(Answer {
                status: 200,
                content_type: None,
                body: String::new(),
            });
    }
    let unreachable = std::fs::read_to_string(dir.join("unreachable.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split('\t').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    Scenario {
        answers,
        unreachable,
    }
}

/// Serves `node`'s answers on `listener`; a path it has none for is a 404, as PD's mux.
fn serve(listener: tokio::net::TcpListener, node: String, scenario: Arc<Scenario>) {
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let scenario = scenario.clone();
        let node = node.clone();
        async move {
            let Some(a) = scenario.answers.get(&(node, uri.path().to_string())) else {
                return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
            };
            let mut r = Response::new(axum::body::Body::from(a.body.clone()));
            *r.status_mut() = StatusCode::from_u16(a.status).unwrap();
            if let Some(t) = &a.content_type {
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_str(t).unwrap());
            }
            r
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Runs `scenario` on loopback and looks at it `looks` times.
async fn observe(scenario: &str, looks: usize) -> (TikvObservation, TikvConfig) {
    observe_without(scenario, looks, &[]).await
}

/// The same, with the nodes `down` unreachable besides those the scenario lists.
async fn observe_without(
    scenario: &str,
    looks: usize,
    down: &[&str],
) -> (TikvObservation, TikvConfig) {
    let nodes = ["pd-1", "pd-2", "pd-3", "tikv-1", "tikv-2", "tikv-3"];
    let mut listeners = HashMap::new();
    let mut names = HashMap::new();
    for n in nodes {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let key = n.replace('-', "").to_uppercase();
        if n.starts_with("pd") {
            names.insert(key.clone(), format!("http://{addr}"));
            names.insert(format!("{key}_PEER"), "http://127.0.0.1:9".into());
        } else {
            names.insert(key.clone(), "127.0.0.1:9".into());
            names.insert(format!("{key}_STATUS"), addr.clone());
        }
        listeners.insert(n, (l, addr));
    }
    let now = chrono::Utc::now().timestamp() as u64;
    let s = Arc::new(load(scenario, &names, now));
    let mut topology = Topology {
        subject: "tikv".into(),
        instance: 0,
        runtime: "local".into(),
        nodes: Vec::new(),
    };
    for n in nodes {
        let (l, addr) = listeners.remove(n).unwrap();
        if s.unreachable.iter().any(|u| u == n) || down.contains(&n) {
            drop(l);
        } else {
            serve(l, n.to_string(), s.clone());
        }
        topology.nodes.push(TopologyNode {
            name: n.into(),
            role: if n.starts_with("pd") {
                ROLE_PD
            } else {
                ROLE_STORE
            }
            .into(),
            address: addr,
            client: None,
            advertised: None,
        });
    }
    let cfg = TikvConfig::default();
    let mut observer = Observer::new(cfg.clone());
    let mut obs = observer.observe(&topology).await;
    for _ in 1..looks {
        obs = observer.observe(&topology).await;
    }
    (obs, cfg)
}

/// The violations of a scenario's look, as `invariant entity`, sorted.
async fn violations(scenario: &str) -> (Vec<String>, crate::subjects::Assessment) {
    let (obs, cfg) = observe(scenario, 1).await;
    let a = check::assess(&obs, &cfg, &check::catalogue(&cfg));
    let mut v: Vec<String> = a
        .violations
        .iter()
        .map(|v| format!("{} {}", v.invariant, v.entity))
        .collect();
    v.sort();
    (v, a)
}

#[tokio::test]
async fn a_healthy_cluster_breaks_nothing_and_is_read_exactly() {
    let (obs, cfg) = observe("healthy", 1).await;
    assert_eq!(obs.leader.as_deref(), Some("pd-2"), "{obs:?}");
    assert!(obs.has_views(), "{obs:?}");
    let t1 = obs.stores.iter().find(|s| s.name == "tikv-1").unwrap();
    let pd = t1.pd.as_ref().unwrap();
    // Store ids as PD numbers them, sizes from its strings and exactly from metrics.
    assert_eq!((pd.id, pd.leader_count, pd.region_count), (1, 2, 4));
    assert_eq!(pd.state_name, "Up");
    assert!(pd.capacity.unwrap() > 97 * (1 << 30));
    assert!(t1.capacity.is_some() && t1.available.is_some(), "{t1:?}");
    assert!(obs.regions.values().all(Vec::is_empty), "{:?}", obs.regions);
    assert!(obs.evicting.is_empty());
    // The store's own region and leader counts, from its metrics (only tikv-1's recorded).
    assert_eq!((t1.regions, t1.leaders), (Some(4), Some(2)), "{t1:?}");
    // The leader's word on the cluster: its settings and its own statistics.
    let c = &obs.cluster;
    assert_eq!(c.bootstrapped, Some(true), "{c:?}");
    assert_eq!(c.max_replicas, Some(3));
    assert_eq!((c.region_count, c.empty_regions), (Some(4), Some(0)));
    assert_eq!(c.region_health.get("miss-peer"), Some(&0), "{c:?}");
    assert_eq!(c.region_health.len(), 10, "{c:?}");
    assert_eq!(c.store_states.get("store_up"), Some(&3), "{c:?}");
    assert_eq!(c.store_states.get("store_disconnected"), Some(&0));
    assert_eq!(c.leader_scores.get(&1), Some(&2.0), "{c:?}");
    assert_eq!(c.leader_scores.len(), 3);
    let a = check::assess(&obs, &cfg, &check::catalogue(&cfg));
    assert!(a.violations.is_empty(), "{:?}", a.violations);
}

#[tokio::test]
async fn a_dead_store_is_down_at_the_next_look_before_pd_says_so() {
    // PD still calls tikv-2 Up (its 20 s have not passed): the direct probe decides.
    let (obs, cfg) = observe_without("healthy", 1, &["tikv-2"]).await;
    let t2 = obs.stores.iter().find(|s| s.name == "tikv-2").unwrap();
    assert_eq!(t2.pd.as_ref().unwrap().state_name, "Up", "{t2:?}");
    let a = check::assess(&obs, &cfg, &check::catalogue(&cfg));
    let v: Vec<String> = a
        .violations
        .iter()
        .map(|v| format!("{} {}", v.invariant, v.entity))
        .collect();
    assert_eq!(v, [format!("{STORE_DOWN} tikv-2")], "{v:?}");
    // Once PD says Disconnected too, its word is in the ticket.
    let (v, a) = violations("store_disconnected").await;
    assert!(v.contains(&format!("{STORE_DOWN} tikv-2")), "{v:?}");
    let d = &a
        .violations
        .iter()
        .find(|v| v.invariant == STORE_DOWN)
        .unwrap()
        .detail;
    assert_eq!(d["pd_state"], "Disconnected", "{d}");
    let (v, _) = violations("store_down").await;
    assert!(v.contains(&format!("{STORE_DOWN} tikv-2")), "{v:?}");
}

#[tokio::test]
async fn regions_short_of_a_peer_are_unhealthy() {
    let (v, a) = violations("regions_unhealthy").await;
    assert!(
        v.contains(&format!("{REGION_UNHEALTHY} {CLUSTER}")),
        "{v:?}"
    );
    assert!(v.contains(&format!("{STORE_DOWN} tikv-2")), "{v:?}");
    let r = a
        .violations
        .iter()
        .find(|v| v.invariant == REGION_UNHEALTHY)
        .unwrap();
    assert!(r.detail["down_peer"].as_u64().unwrap() > 0, "{}", r.detail);
    // PD's own counts beside the lists, and no store to spare: two up, three replicas.
    assert_eq!(r.detail["pd_counts"]["down-peer"], 3, "{}", r.detail);
    assert_eq!(r.detail["pd_counts"]["miss-peer"], 1, "{}", r.detail);
    assert_eq!(
        (
            r.detail["max_replicas"].as_u64(),
            r.detail["stores_up"].as_u64()
        ),
        (Some(3), Some(2)),
        "{}",
        r.detail
    );
    assert!(r.summary.contains("no spare store"), "{}", r.summary);
}

#[tokio::test]
async fn a_pd_member_down_and_no_leader() {
    let (v, _) = violations("pd_member_down").await;
    assert_eq!(v, [format!("{PD_MEMBER_DOWN} pd-3")], "{v:?}");
    let (v, a) = violations("no_leader").await;
    assert_eq!(
        v,
        [
            format!("{PD_MEMBER_DOWN} pd-2"),
            format!("{PD_MEMBER_DOWN} pd-3"),
            format!("{PD_NO_LEADER} {CLUSTER}"),
        ],
        "{v:?}"
    );
    // What only the leader knows is unknown, not healthy.
    assert!(
        a.unknown.iter().any(|u| u.invariant == REGION_UNHEALTHY),
        "{:?}",
        a.unknown
    );
}

#[tokio::test]
async fn not_bootstrapped_is_said_and_decides_nothing_of_regions() {
    let (obs, cfg) = observe("not_bootstrapped", 1).await;
    assert!(obs.not_bootstrapped, "{obs:?}");
    // Said by the cluster's status, which PD answers before any store joined.
    assert_eq!(obs.cluster.bootstrapped, Some(false), "{obs:?}");
    assert_eq!(obs.cluster.max_replicas, Some(3));
    let a = check::assess(&obs, &cfg, &check::catalogue(&cfg));
    assert!(
        a.unknown.iter().any(|u| u.invariant == REGION_UNHEALTHY),
        "{:?}",
        a.unknown
    );
}

#[tokio::test]
async fn low_space_and_a_leftover_evict_leader_scheduler() {
    let (v, _) = violations("low_space").await;
    assert!(v.contains(&format!("{LOW_SPACE} tikv-3")), "{v:?}");
    let (v, _) = violations("evict_leader_left").await;
    assert!(v.contains(&format!("{EVICT_LEADER_LEFT} tikv-1")), "{v:?}");
}

#[tokio::test]
async fn nothing_answering_is_unreachable_and_all_else_unknown() {
    let topology = Topology {
        subject: "tikv".into(),
        instance: 0,
        runtime: "local".into(),
        nodes: ["pd-1", "tikv-1"]
            .iter()
            .map(|n| TopologyNode {
                name: (*n).into(),
                role: if n.starts_with("pd") {
                    ROLE_PD
                } else {
                    ROLE_STORE
                }
                .into(),
                address: "127.0.0.1:9".into(),
                client: None,
                advertised: None,
            })
            .collect(),
    };
    let cfg = TikvConfig::default();
    let obs = Observer::new(cfg.clone()).observe(&topology).await;
    let a = check::assess(&obs, &cfg, &check::catalogue(&cfg));
    let v: Vec<&str> = a.violations.iter().map(|v| v.invariant.as_str()).collect();
    assert_eq!(v, [SUBJECT_UNREACHABLE]);
    assert!(a.unknown.iter().any(|u| u.invariant == STORE_DOWN));
}
