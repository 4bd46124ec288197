//! A stand-in for `pd-server` and `tikv-server`, for tests on machines where neither can run
//! (no registry to pull their images from, no Go to build PD). Linked or copied under either
//! name, it takes that program's flags and answers its HTTP routes in the shapes PD and TiKV
//! v8.5 use (`tests/fixtures/tikv/`), from a state it keeps as they would:
//!
//! - a store beats to every PD endpoint it was given each second; PD calls a store
//!   `Disconnected` when no beat came for `--standin-disconnect` seconds (PD: 20), and its
//!   regions then have a peer down;
//! - a PD member is alive when its peer port answers; the lowest-numbered alive member of a
//!   majority leads; with no leader, cluster routes answer 503 as a follower does;
//! - schedulers can be added and removed (an evict-leader scheduler takes a store's leaders),
//!   and the leader tells each store at its beat how many leaders it holds, which the store
//!   reports in its metrics;
//! - a store's space is its disk's (a fixed 97.87 GiB, 1.6 GiB used) unless `--capacity`
//!   caps it, as TiKV's does: then what is left is the cap less what is used.
//!
//! It speaks no gRPC: there is no load against it. Not part of the product.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

fn flags() -> BTreeMap<String, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = BTreeMap::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if let Some(name) = a.strip_prefix("--") {
            match name.split_once('=') {
                Some((k, v)) => {
                    out.insert(k.to_string(), v.to_string());
                }
                None => {
                    let v = args.get(i + 1).cloned().unwrap_or_default();
                    out.insert(name.to_string(), v);
                    i += 1;
                }
            }
        }
        i += 1;
    }
    out
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}

/// A size as TiKV's `ReadableSize` reads it (`1KB` is 1024 bytes; `B` or no unit is bytes).
fn readable_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let at = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if at == 0 {
        return None;
    }
    let (n, unit) = s.split_at(at);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KB" | "KiB" => 10,
        "M" | "MB" | "MiB" => 20,
        "G" | "GB" | "GiB" => 30,
        "T" | "TB" | "TiB" => 40,
        _ => return None,
    };
    let n: f64 = n.parse().ok()?;
    Some((n * (1u64 << shift) as f64) as u64)
}

/// A size as PD writes it: base 1024, four significant digits (`"97.87GiB"`, `"1.6GiB"`).
fn pd_size(bytes: u64) -> String {
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < 4 {
        v /= 1024.0;
        unit += 1;
    }
    let digits = if v >= 1.0 {
        v.log10().floor() as usize + 1
    } else {
        1
    };
    let text = format!("{v:.*}", 4usize.saturating_sub(digits));
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{}", ["B", "KiB", "MiB", "GiB", "TiB"][unit])
}

/// A store's space: its disk's, capped by `--capacity`.
#[derive(Clone, Copy)]
struct Space {
    capacity: u64,
    available: u64,
    used: u64,
}

impl Space {
    const DISK: u64 = 105_087_385_600;
    const DISK_FREE: u64 = 47_578_873_856;
    const USED: u64 = 1_717_986_918;

    fn capped(capacity: Option<u64>) -> Self {
        match capacity.filter(|c| *c > 0) {
            Some(cap) => Self {
                capacity: cap,
                available: cap.saturating_sub(Self::USED).min(Self::DISK_FREE),
                used: Self::USED,
            },
            None => Self {
                capacity: Self::DISK,
                available: Self::DISK_FREE,
                used: Self::USED,
            },
        }
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[tokio::main]
async fn main() {
    let program = std::env::args()
        .next()
        .and_then(|a| a.rsplit('/').next().map(str::to_string))
        .unwrap_or_default();
    let f = flags();
    if program.contains("pd") {
        pd(f).await;
    } else {
        tikv(f).await;
    }
}

// ---------------------------------------------------------------- PD

struct Store {
    id: u64,
    address: String,
    status_address: String,
    last_beat: Instant,
    space: Space,
}

struct Pd {
    name: String,
    members: Vec<(String, String)>,
    disconnect: Duration,
    stores: Mutex<BTreeMap<String, Store>>,
    evicting: Mutex<BTreeSet<u64>>,
    /// When the first store beat, in RFC 3339: PD's `raft_bootstrap_time`.
    bootstrapped: Mutex<Option<String>>,
    http: reqwest::Client,
}

const REGIONS: [u64; 4] = [2, 8, 12, 16];
const DEFAULT_SCHEDULERS: [&str; 5] = [
    "balance-hot-region-scheduler",
    "evict-slow-store-scheduler",
    "balance-leader-scheduler",
    "evict-stopping-store-scheduler",
    "balance-region-scheduler",
];

fn member_id(name: &str) -> u64 {
    // Stable, and above 2^53 as PD's are.
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Pd {
    async fn alive(&self) -> Vec<bool> {
        let checks = self.members.iter().map(|(name, peer)| async move {
            if *name == self.name {
                return true;
            }
            self.http
                .get(format!("{peer}/ping"))
                .timeout(Duration::from_millis(300))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        });
        futures::future::join_all(checks).await
    }

    async fn leader(&self) -> Option<usize> {
        let alive = self.alive().await;
        let up = alive.iter().filter(|a| **a).count();
        (up > self.members.len() / 2).then(|| alive.iter().position(|a| *a))?
    }

    fn member_json(&self, i: usize) -> Value {
        let (name, peer) = &self.members[i];
        json!({ "name": name, "member_id": member_id(name), "peer_urls": [peer], "client_urls": [] })
    }

    /// Each store's leaders: the regions dealt out in turn among the stores Up that no
    /// evict-leader scheduler empties.
    fn leader_counts(&self) -> BTreeMap<u64, usize> {
        let evicting = self.evicting.lock().map(|e| e.clone()).unwrap_or_default();
        let Ok(stores) = self.stores.lock() else {
            return BTreeMap::new();
        };
        let leading: Vec<u64> = stores
            .values()
            .filter(|s| self.state_name(s) == "Up" && !evicting.contains(&s.id))
            .map(|s| s.id)
            .collect();
        stores
            .values()
            .map(|s| {
                let n = match leading.iter().position(|l| *l == s.id) {
                    Some(i) => {
                        REGIONS.len() / leading.len()
                            + usize::from(i < REGIONS.len() % leading.len())
                    }
                    None => 0,
                };
                (s.id, n)
            })
            .collect()
    }

    fn state_name(&self, s: &Store) -> &'static str {
        if s.last_beat.elapsed() > self.disconnect {
            "Disconnected"
        } else {
            "Up"
        }
    }
}

fn no_leader() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader\n",
    )
        .into_response()
}

fn json_answer(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
    )
        .into_response()
}

async fn pd(f: BTreeMap<String, String>) {
    let name = f.get("name").cloned().unwrap_or_else(|| "pd".into());
    let client = f
        .get("client-urls")
        .map(|u| host_port(u))
        .unwrap_or_default();
    let peer = f.get("peer-urls").map(|u| host_port(u)).unwrap_or_default();
    let members: Vec<(String, String)> = f
        .get("initial-cluster")
        .map(|c| {
            c.split(',')
                .filter_map(|m| m.split_once('='))
                .map(|(n, u)| (n.to_string(), u.trim_end_matches('/').to_string()))
                .collect()
        })
        .unwrap_or_default();
    let disconnect = f
        .get("standin-disconnect")
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(20), Duration::from_secs_f64);
    let state = Arc::new(Pd {
        name,
        members,
        disconnect,
        stores: Mutex::new(BTreeMap::new()),
        evicting: Mutex::new(BTreeSet::new()),
        bootstrapped: Mutex::new(None),
        http: operator::runtime::health::http_client(),
    });
    let peer_app = axum::Router::new().route("/ping", get(|| async { "" }));
    let app = axum::Router::new()
        .route("/pd/api/v1/health", get(health))
        .route("/pd/api/v1/leader", get(leader))
        .route("/pd/api/v1/members", get(members_route))
        .route("/pd/api/v1/stores", get(stores))
        .route("/pd/api/v1/regions/check/{kind}", get(region_check))
        .route("/pd/api/v1/schedulers", get(schedulers).post(add_scheduler))
        .route("/pd/api/v1/schedulers/{name}", delete(remove_scheduler))
        .route(
            "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
            get(evict_list),
        )
        .route("/pd/api/v1/cluster/status", get(cluster_status))
        .route("/pd/api/v1/config/replicate", get(replicate))
        .route("/pd/api/v1/stats/region", get(region_stats))
        .route("/standin/heartbeat", post(heartbeat))
        .route("/metrics", get(pd_metrics))
        .with_state(state);
    let (Ok(c), Ok(p)) = (
        tokio::net::TcpListener::bind(&client).await,
        tokio::net::TcpListener::bind(&peer).await,
    ) else {
        eprintln!("cannot listen on {client} and {peer}");
        std::process::exit(1);
    };
    tokio::spawn(async move { axum::serve(p, peer_app).await });
    let _ = axum::serve(c, app).await;
}

async fn health(State(pd): State<Arc<Pd>>) -> Response {
    let alive = pd.alive().await;
    let list: Vec<Value> = pd
        .members
        .iter()
        .zip(alive)
        .map(|((name, _), up)| {
            json!({ "name": name, "member_id": member_id(name), "client_urls": [], "health": up })
        })
        .collect();
    json_answer(Value::Array(list))
}

async fn leader(State(pd): State<Arc<Pd>>) -> Response {
    match pd.leader().await {
        Some(i) => json_answer(pd.member_json(i)),
        None => no_leader(),
    }
}

async fn members_route(State(pd): State<Arc<Pd>>) -> Response {
    let Some(l) = pd.leader().await else {
        return no_leader();
    };
    let members: Vec<Value> = (0..pd.members.len()).map(|i| pd.member_json(i)).collect();
    json_answer(
        json!({ "header": { "cluster_id": 7_412_685_237_829_504_117u64 }, "members": members, "leader": pd.member_json(l), "etcd_leader": pd.member_json(l) }),
    )
}

async fn stores(State(pd): State<Arc<Pd>>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    let stores = pd.stores.lock().map(|s| {
        s.values()
            .map(|s| {
                (
                    s.id,
                    s.address.clone(),
                    s.status_address.clone(),
                    pd.state_name(s),
                    s.space,
                )
            })
            .collect::<Vec<_>>()
    });
    let stores = stores.unwrap_or_default();
    let leader_counts = pd.leader_counts();
    let list: Vec<Value> = stores
        .iter()
        .map(|(id, address, status, state, space)| {
            let leaders = leader_counts.get(id).copied().unwrap_or(0);
            json!({
                "store": {
                    "id": id, "address": address, "version": "8.5.7", "peer_address": address,
                    "status_address": status, "last_heartbeat": now_ns() as u64, "node_state": 1,
                    "state_name": state
                },
                "status": {
                    "capacity": pd_size(space.capacity), "available": pd_size(space.available),
                    "used_size": pd_size(space.used),
                    "leader_count": leaders, "region_count": REGIONS.len()
                }
            })
        })
        .collect();
    json_answer(json!({ "count": list.len(), "stores": list }))
}

async fn region_check(State(pd): State<Arc<Pd>>, Path(kind): Path<String>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    let down: Vec<u64> = pd
        .stores
        .lock()
        .map(|s| {
            s.values()
                .filter(|s| pd.state_name(s) != "Up")
                .map(|s| s.id)
                .collect()
        })
        .unwrap_or_default();
    let regions: Vec<Value> = if kind == "down-peer" && !down.is_empty() {
        REGIONS
            .iter()
            .map(|r| {
                json!({ "id": r, "peers": [], "down_peers": down.iter().map(|d| json!({"peer": {"id": r * 10 + d, "store_id": d}, "down_seconds": 30})).collect::<Vec<_>>() })
            })
            .collect()
    } else {
        Vec::new()
    };
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        json!({ "count": regions.len(), "regions": regions }).to_string(),
    )
        .into_response()
}

async fn schedulers(State(pd): State<Arc<Pd>>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    let mut list: Vec<&str> = DEFAULT_SCHEDULERS.to_vec();
    if pd.evicting.lock().is_ok_and(|e| !e.is_empty()) {
        list.push("evict-leader-scheduler");
    }
    json_answer(json!(list))
}

async fn add_scheduler(State(pd): State<Arc<Pd>>, Json(body): Json<Value>) -> Response {
    if body["name"] != "evict-leader-scheduler" {
        return (StatusCode::BAD_REQUEST, "\"unknown scheduler\"\n").into_response();
    }
    let Some(id) = body["store_id"].as_u64() else {
        return (StatusCode::BAD_REQUEST, "\"missing store_id\"\n").into_response();
    };
    if let Ok(mut e) = pd.evicting.lock() {
        e.insert(id);
    }
    json_answer(json!("The scheduler is created."))
}

async fn remove_scheduler(State(pd): State<Arc<Pd>>, Path(name): Path<String>) -> Response {
    let Some(id) = name
        .strip_prefix("evict-leader-scheduler-")
        .and_then(|i| i.parse::<u64>().ok())
    else {
        return (StatusCode::NOT_FOUND, "\"scheduler not found\"\n").into_response();
    };
    let removed = pd.evicting.lock().is_ok_and(|mut e| e.remove(&id));
    if removed {
        json_answer(Value::Null)
    } else {
        (StatusCode::NOT_FOUND, "\"scheduler not found\"\n").into_response()
    }
}

async fn evict_list(State(pd): State<Arc<Pd>>) -> Response {
    let ids = pd.evicting.lock().map(|e| e.clone()).unwrap_or_default();
    if ids.is_empty() {
        return (StatusCode::NOT_FOUND, "404 page not found\n").into_response();
    }
    let ranges: serde_json::Map<String, Value> = ids
        .iter()
        .map(|id| (id.to_string(), json!([{ "end-key": "", "start-key": "" }])))
        .collect();
    json_answer(json!({ "store-id-ranges": ranges, "batch": 3 }))
}

async fn heartbeat(State(pd): State<Arc<Pd>>, Json(body): Json<Value>) -> Response {
    let (Some(address), Some(status)) = (body["address"].as_str(), body["status_address"].as_str())
    else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let space = Space::capped(body["capacity"].as_u64());
    if let Ok(mut stores) = pd.stores.lock() {
        let next = stores.len() as u64 + 1;
        let s = stores.entry(status.to_string()).or_insert(Store {
            id: next,
            address: address.to_string(),
            status_address: status.to_string(),
            last_beat: Instant::now(),
            space,
        });
        s.last_beat = Instant::now();
        s.space = space;
    }
    if let Ok(mut b) = pd.bootstrapped.lock() {
        b.get_or_insert_with(|| {
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        });
    }
    // The leader tells the store how many leaders it holds, which it then reports in its
    // own metrics (TiKV knows its own; a follower PD says nothing).
    let own = pd
        .leader()
        .await
        .is_some_and(|l| pd.members[l].0 == pd.name);
    let id = pd
        .stores
        .lock()
        .ok()
        .and_then(|s| s.get(status).map(|s| s.id));
    match id.filter(|_| own) {
        Some(id) => Json(json!({ "leaders": pd.leader_counts().get(&id).copied().unwrap_or(0) }))
            .into_response(),
        None => Json(json!({})).into_response(),
    }
}

async fn cluster_status(State(pd): State<Arc<Pd>>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    let at = pd.bootstrapped.lock().ok().and_then(|b| b.clone());
    let stores = pd.stores.lock().map_or(0, |s| s.len());
    json_answer(json!({
        "raft_bootstrap_time": at.as_deref().unwrap_or("0001-01-01T00:00:00Z"),
        "is_initialized": stores >= 3,
        "replication_status": ""
    }))
}

async fn replicate(State(pd): State<Arc<Pd>>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    json_answer(json!({
        "max-replicas": 3, "location-labels": "", "strictly-match-label": "false",
        "enable-placement-rules": "true", "enable-placement-rules-cache": "false",
        "isolation-level": ""
    }))
}

async fn region_stats(State(pd): State<Arc<Pd>>) -> Response {
    if pd.leader().await.is_none() {
        return no_leader();
    }
    if pd.bootstrapped.lock().is_ok_and(|b| b.is_none()) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            "\"[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped, please start TiKV first\"\n",
        )
            .into_response();
    }
    let leaders: serde_json::Map<String, Value> = pd
        .leader_counts()
        .into_iter()
        .map(|(id, n)| (id.to_string(), json!(n)))
        .collect();
    json_answer(json!({
        "count": REGIONS.len(), "empty_count": 0, "storage_size": 1, "user_storage_size": 0,
        "storage_keys": 0, "store_leader_count": leaders
    }))
}

/// PD's own statistics, as its leader keeps them: regions by check, stores by state, and
/// each store's leader score.
async fn pd_metrics(State(pd): State<Arc<Pd>>) -> String {
    let stores: Vec<(u64, String, &'static str, bool)> = pd
        .stores
        .lock()
        .map(|s| {
            s.values()
                .map(|s| {
                    let low = s.space.available * 5 < s.space.capacity;
                    (s.id, s.address.clone(), pd.state_name(s), low)
                })
                .collect()
        })
        .unwrap_or_default();
    let down = stores.iter().any(|(_, _, st, _)| *st != "Up");
    let mut out = String::from("# TYPE pd_regions_status gauge\n");
    for kind in [
        "down-peer",
        "miss-peer",
        "pending-peer",
        "offline-peer",
        "extra-peer",
    ] {
        let n = if kind == "down-peer" && down {
            REGIONS.len()
        } else {
            0
        };
        out.push_str(&format!(
            "pd_regions_status{{type=\"{kind}-region-count\"}} {n}\n"
        ));
    }
    out.push_str("# TYPE pd_cluster_status gauge\n");
    for (id, _, state, low) in &stores {
        for (kind, n) in [
            ("store_up_count", *state == "Up"),
            ("store_disconnected_count", *state == "Disconnected"),
            ("store_low_space_count", *low),
        ] {
            out.push_str(&format!(
                "pd_cluster_status{{engine=\"tikv\",store=\"{id}\",type=\"{kind}\"}} {}\n",
                u8::from(n)
            ));
        }
    }
    out.push_str("# TYPE pd_scheduler_store_status gauge\n");
    let leaders = pd.leader_counts();
    for (id, address, _, _) in &stores {
        out.push_str(&format!(
            "pd_scheduler_store_status{{address=\"{address}\",store=\"{id}\",type=\"leader_score\"}} {}\n",
            leaders.get(id).copied().unwrap_or(0)
        ));
    }
    out
}

// ---------------------------------------------------------------- TiKV

async fn tikv(f: BTreeMap<String, String>) {
    let addr = f.get("addr").cloned().unwrap_or_default();
    let advertise = f
        .get("advertise-addr")
        .cloned()
        .unwrap_or_else(|| addr.clone());
    let status = f.get("status-addr").cloned().unwrap_or_default();
    let advertise_status = f
        .get("advertise-status-addr")
        .cloned()
        .unwrap_or_else(|| status.clone());
    let capacity = match f.get("capacity") {
        Some(c) => match readable_size(c) {
            Some(c) => Some(c),
            None => {
                eprintln!("invalid --capacity {c:?}");
                std::process::exit(1);
            }
        },
        None => None,
    };
    let space = Space::capped(capacity);
    let pds: Vec<String> = f
        .get("pd")
        .map(|p| p.split(',').map(host_port).collect())
        .unwrap_or_default();
    let (Ok(server), Ok(status_l)) = (
        tokio::net::TcpListener::bind(&addr).await,
        tokio::net::TcpListener::bind(&status).await,
    ) else {
        eprintln!("cannot listen on {addr} and {status}");
        std::process::exit(1);
    };
    // The gRPC port accepts and says nothing: only that it listens matters here.
    tokio::spawn(async move {
        while let Ok((conn, _)) = server.accept().await {
            drop(conn);
        }
    });
    let http = operator::runtime::health::http_client();
    // The leaders it holds, as PD's leader last answered its beat.
    let leaders = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let told = leaders.clone();
    tokio::spawn(async move {
        loop {
            for pd in &pds {
                let answer = http
                    .post(format!("http://{pd}/standin/heartbeat"))
                    .timeout(Duration::from_millis(500))
                    .json(&json!({
                        "address": advertise, "status_address": advertise_status,
                        "capacity": capacity.unwrap_or(0)
                    }))
                    .send()
                    .await;
                if let Ok(r) = answer {
                    let v: Value = r.json().await.unwrap_or_default();
                    if let Some(n) = v["leaders"].as_u64() {
                        told.store(n, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let app = axum::Router::new()
        .route("/status", get(|| async { StatusCode::OK }))
        .route(
            "/metrics",
            get(move || async move {
                format!(
                    "# TYPE tikv_store_size_bytes gauge\n\
                     tikv_store_size_bytes{{type=\"available\"}} {}\n\
                     tikv_store_size_bytes{{type=\"capacity\"}} {}\n\
                     tikv_store_size_bytes{{type=\"used\"}} {}\n\
                     # TYPE tikv_raftstore_region_count gauge\n\
                     tikv_raftstore_region_count{{type=\"leader\"}} {}\n\
                     tikv_raftstore_region_count{{type=\"region\"}} {}\n",
                    space.available,
                    space.capacity,
                    space.used,
                    leaders.load(std::sync::atomic::Ordering::Relaxed),
                    REGIONS.len()
                )
            }),
        );
    let _ = axum::serve(status_l, app).await;
}
