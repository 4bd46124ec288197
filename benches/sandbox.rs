//! What the local sandbox adds to a command: `true` run through the executor 100 times with
//! bubblewrap and 100 times without, alternately (so the VM's drift falls on both alike), and
//! the p50 and p90 of each, and of the difference run by run.
//!
//! `cargo bench --bench sandbox`

use std::time::{Duration, Instant};

use operator::agent::executor::{Executor, LocalEnv, LocalExecutor, operator_dirs};
use operator::agent::sandbox::{Plan, probe};
use operator::policy::Class;

const RUNS: usize = 100;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names nothing of ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with('-') && !"sandbox".contains(&a))
    {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let inst = dir.path().join("instances/0");
    std::fs::create_dir_all(inst.join("logs")).expect("instance folder");
    let db = dir.path().join("operator.db");
    let env = || LocalEnv {
        cwd: &inst,
        state_dir: dir.path(),
        db: &db,
        instance: 0,
        config: None,
        output_limit: 64 * 1024,
    };
    let plan = Plan::for_instance(
        &inst,
        operator_dirs().into_iter().next(),
        dir.path().join("instances/0.sandbox/agent-bench.sock"),
        None,
    )
    .expect("bubblewrap");
    probe(&plan).expect("a sandbox here");
    let sandboxed = LocalExecutor::new(env()).sandboxed(plan);
    let bare = LocalExecutor::new(env());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let time = |e: &LocalExecutor| {
        let t = Instant::now();
        let o = rt
            .block_on(e.run("true", Duration::from_secs(10), Class::ReadOnly))
            .expect("run");
        assert_eq!(o.exit_code, Some(0), "{o:?}");
        t.elapsed().as_secs_f64() * 1000.0
    };
    // The socket is served on the first command: not part of a command's cost.
    time(&sandboxed);
    time(&bare);
    let (mut with, mut without, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let a = time(&sandboxed);
        let b = time(&bare);
        with.push(a);
        without.push(b);
        added.push(a - b);
    }
    for v in [&mut with, &mut without, &mut added] {
        v.sort_by(f64::total_cmp);
    }
    let line = |name: &str, v: &[f64]| {
        println!(
            "{name:<28} p50 {:6.2} ms   p90 {:6.2} ms",
            percentile(v, 0.5),
            percentile(v, 0.9)
        );
    };
    println!("`true` through the executor, {RUNS} runs each, alternately:");
    line("in bubblewrap's sandbox", &with);
    line("without a sandbox", &without);
    line("added, run by run", &added);
}
