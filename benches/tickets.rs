//! Ticket upserts per second on a real SQLite file (WAL): a cycle that refreshes existing
//! tickets, and one that opens and resolves tickets (churn).

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use operator::clock;
use operator::invariant::{Severity, Violation};
use operator::store::{Sqlite, TicketDb};
use operator::tickets::{CycleInput, Observed};

fn violations(n: usize) -> Vec<Observed> {
    (0..n)
        .map(|i| Observed {
            violation: Violation {
                invariant: "node_down".into(),
                entity: format!("node-{i}"),
                severity: Severity::Critical,
                summary: format!("node-{i} is down"),
                detail: serde_json::json!({ "state": "down" }),
            },
            due: true,
        })
        .collect()
}

fn apply(store: &Sqlite, seen: &[Observed]) {
    store
        .apply(&CycleInput {
            subject: "ratelimiter".into(),
            instance: 0,
            at: clock::now(),
            flap_window: Duration::ZERO,
            violations: seen.to_vec(),
            unknown: Vec::new(),
            consequences: &[],
            correlation_window: std::time::Duration::from_secs(30),
        })
        .unwrap();
}

fn bench_upserts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = Sqlite::open(&dir.path().join("bench.db")).unwrap();
    let mut group = c.benchmark_group("ticket_upserts");
    for n in [1usize, 10, 100] {
        let seen = violations(n);
        apply(&store, &seen);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("refresh_{n}_per_cycle"), |b| {
            b.iter(|| apply(&store, &seen))
        });
    }
    // Open 10 then resolve them: 20 ticket transitions per iteration.
    let seen = violations(10);
    group.throughput(Throughput::Elements(20));
    group.bench_function("open_and_resolve_10", |b| {
        b.iter_batched(
            || (),
            |()| {
                apply(&store, &seen);
                apply(&store, &[]);
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_upserts);
criterion_main!(benches);
