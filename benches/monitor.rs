//! Cost of one monitor cycle (observe a real 3-node cluster, check every invariant, apply
//! the verdict to a real SQLite DB): the rate limiter healthy and with 1000 live counter
//! keys, etcd's three members healthy, and TiKV's three PD members and three stores healthy
//! (the stand-in `examples/tikv_standin.rs` as pd-server and tikv-server: build it first with
//! `cargo build --release --examples`). Each subject is brought up through the registry, as
//! `operator up` does.

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use operator::config::Config;
use operator::monitor::Monitor;
use operator::paths::StateDir;
use operator::runtime::Runtime;
use operator::runtime::local::LocalRuntime;
use operator::store::{Sqlite, Store};
use operator::subjects::ratelimiter::config::RateLimiterConfig;
use operator::subjects::tikv::config::TikvConfig;

struct Bench {
    _dir: tempfile::TempDir,
    runtime: Arc<LocalRuntime>,
    config: Config,
    store: Store,
    subject: &'static str,
}

fn cluster(rt: &tokio::runtime::Runtime, subject: &'static str) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    let limiter = RateLimiterConfig {
        ratelimiter_bin: Some(env!("CARGO_BIN_EXE_ratelimiter").into()),
        ..RateLimiterConfig::default()
    };
    config.set_section(&limiter).unwrap();
    let standin = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("examples/tikv_standin");
    if subject == "tikv" {
        assert!(
            standin.is_file(),
            "{} is missing: cargo build --release --examples",
            standin.display()
        );
        let mut programs = TikvConfig::default();
        for (name, key) in [
            ("pd-server", &mut programs.pd_bin),
            ("tikv-server", &mut programs.tikv_bin),
        ] {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(&standin, &link).unwrap();
            *key = link.display().to_string();
        }
        config.set_section(&programs).unwrap();
    }
    config.runtime.local.operator_bin = Some(env!("CARGO_BIN_EXE_operator").into());
    let runtime = Arc::new(LocalRuntime::new(
        StateDir::new(dir.path()),
        0,
        config.runtime.local.clone(),
    ));
    let kind = operator::subjects::registry::kind(subject).unwrap();
    let plan = kind.plan(runtime.as_ref(), &config).unwrap();
    rt.block_on(runtime.up(plan)).unwrap();
    rt.block_on(kind.settle(runtime.as_ref(), &config)).unwrap();
    let db = dir.path().join("operator.db");
    let store = Store::new(Arc::new(Sqlite::open(&db).unwrap()), &db);
    Bench {
        _dir: dir,
        runtime,
        config,
        store,
        subject,
    }
}

fn monitor(b: &Bench) -> Monitor {
    let runtime: Arc<dyn Runtime> = b.runtime.clone();
    let kind = operator::subjects::registry::kind(b.subject).unwrap();
    Monitor::new(
        kind.build(runtime, &b.config).unwrap(),
        b.store.clone(),
        &b.config.tickets,
    )
}

fn bench_cycle(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let b = cluster(&rt, "ratelimiter");
    let mut m = monitor(&b);
    let mut group = c.benchmark_group("monitor_cycle");
    group.bench_function("healthy_3_nodes", |bench| {
        bench.iter(|| rt.block_on(m.cycle()).unwrap())
    });
    // 1000 keys with traffic: every node and Redis report 1000 counters each cycle.
    let addr = b.runtime.topology().unwrap().nodes[1].address.clone();
    rt.block_on(async {
        let http = operator::runtime::health::http_client();
        for i in 0..1000 {
            http.post(format!("http://{addr}/check"))
                .json(&serde_json::json!({ "key": format!("bench-{i}") }))
                .send()
                .await
                .unwrap();
        }
    });
    group.bench_function("1000_keys_3_nodes", |bench| {
        bench.iter(|| rt.block_on(m.cycle()).unwrap())
    });
    rt.block_on(b.runtime.down()).unwrap();

    // etcd: per member its status, its metrics and the member list, through the gateway.
    healthy_cycle(&rt, &mut group, "etcd", "etcd_healthy_3_members");
    // TiKV: PD's stores, members, health, region checks, schedulers and metrics, and each
    // store's own status port, against the stand-in.
    healthy_cycle(&rt, &mut group, "tikv", "tikv_healthy_3_pd_3_stores");
    group.finish();
}

/// Brings `subject` up, checks one cycle finds it healthy, measures its cycle as `name`, and
/// brings it down.
fn healthy_cycle(
    rt: &tokio::runtime::Runtime,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    subject: &'static str,
    name: &str,
) {
    let b = cluster(rt, subject);
    let mut m = monitor(&b);
    let r = rt.block_on(m.cycle()).unwrap();
    let healthy = r
        .snapshot
        .is_some_and(|s| s.assessment.violations.is_empty());
    assert!(
        healthy,
        "the {subject} cluster is healthy before it is measured"
    );
    group.bench_function(name, |bench| bench.iter(|| rt.block_on(m.cycle()).unwrap()));
    rt.block_on(b.runtime.down()).unwrap();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench_cycle
}
criterion_main!(benches);
