//! The rate-limiter node: the subject Operator watches by default.

// No panics on bad input or a failed call outside tests: errors with context instead (proven
// invariants say so with `#[expect]`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use operator::subjects::ratelimiter::service::{Settings, run};

#[tokio::main]
async fn main() -> color_eyre::Result<()> {
    color_eyre::install()?;
    tracing_subscriber::fmt()
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RATELIMITER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    run(Settings::parse()).await
}
