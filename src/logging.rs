//! Logs go to a file under the state dir, never to the terminal (which the TUI owns).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Lines waiting for the log file's writer thread, at most.
const LOG_QUEUE_LINES: usize = 4096;

/// Logs to `<dir>/operator.log` at `level` unless `OPERATOR_LOG` says otherwise. Keep the
/// guard alive: dropping it flushes the log.
pub fn init(dir: &Path, level: &str) -> std::io::Result<WorkerGuard> {
    std::fs::create_dir_all(dir)?;
    let file = tracing_appender::rolling::never(dir, "operator.log");
    // tracing-appender's default queue is 128 000 lines, made and touched up front: 4 MiB
    // of every process's memory. A burst beyond this bound drops lines, never blocks.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .finish(file);
    let filter = EnvFilter::try_from_env("OPERATOR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("operator={level},warn")));
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
    Ok(guard)
}

/// Logs to stderr, for processes run as nodes (the fault proxy): their runtime keeps stderr
/// in the node's log, and they must not write into a state dir they were not given.
pub fn init_stderr(level: &str) {
    let filter = EnvFilter::try_from_env("OPERATOR_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("operator={level},warn")));
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
