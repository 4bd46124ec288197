//! The policy's cost per command: parse the shell syntax and classify every program.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    // The corpus's instance, its endpoints known, as an agent's policy has them.
    let p = operator::properties::corpus_policy();
    let simple = "operator node start ratelimiter-2";
    let compound = "curl -sf http://127.0.0.1:8001/api/counters | jq '.counters[]' && redis-cli -p 6379 ZCARD ratelimit:k; bash -c 'operator status'";
    let mut g = c.benchmark_group("policy_classify");
    g.throughput(Throughput::Elements(1));
    g.bench_function("simple", |b| {
        b.iter(|| p.classify(std::hint::black_box(simple)))
    });
    g.bench_function("compound", |b| {
        b.iter(|| p.classify(std::hint::black_box(compound)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
