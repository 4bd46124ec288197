//! `operator`: the one binary. Parses the command line and reports errors plainly.

// No panics on bad input or a failed call outside tests: errors with context instead (proven
// invariants say so with `#[expect]`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Inside the agent's sandbox `operator` is only a client of the agent's socket: it reads
    // no config and no DB.
    if let Some(socket) =
        std::env::var_os(operator::agent::sandbox::protocol::SOCKET_VAR).filter(|s| !s.is_empty())
    {
        let code = operator::agent::sandbox::protocol::client(&socket.to_string_lossy());
        return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let _ = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .install();
    // Chaos reads the subjects' own faults back from the ledger by name: tell it them first.
    operator::subjects::registry::teach_chaos();
    let cli = cli::Cli::parse();
    let verbose = cli.global.verbose > 0;
    // A daemon that mostly waits (the monitor, the proxies) runs on one thread: fewer wake-ups
    // and less memory. The app, the agent and the rest get a worker per core.
    // Its blocking threads (SQLite, files) stay a minute rather than tokio's 10 s: a daemon
    // that needs one every few seconds would otherwise make a new thread each time.
    let runtime = if cli.single_threaded() {
        let mut b = tokio::runtime::Builder::new_current_thread();
        b.thread_keep_alive(std::time::Duration::from_secs(60));
        b
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<cli::Exit>().is_some() => {
            std::process::ExitCode::from(e.downcast_ref::<cli::Exit>().map_or(1, |x| x.0))
        }
        Err(e) if verbose => {
            eprintln!("{e:?}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
