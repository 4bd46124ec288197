//! `operator faultproxy`: the proxy process itself. `up` starts it as a node of the cluster;
//! chaos drives it through its control API.

use std::net::SocketAddr;

use clap::Args;
use color_eyre::eyre::{Result, WrapErr};
use operator::runtime::proxy::{LinkSpec, server};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  operator faultproxy --control 127.0.0.1:7000 \\\n    --link 'ratelimiter-1>redis=127.0.0.1:7001>127.0.0.1:6379'\n\nControl API: GET /links; PUT /links/{link}/toxics/{tag} with a toxic such as\n{\"type\":\"latency\",\"delay_ms\":200,\"jitter_ms\":50}; DELETE the same path to remove it."
)]
pub struct FaultProxyArgs {
    /// Where the HTTP control API listens.
    #[arg(long, value_name = "ADDR")]
    pub control: SocketAddr,
    /// A link, NAME=LISTEN>UPSTREAM; repeat for each.
    #[arg(long = "link", value_name = "LINK", value_parser = LinkSpec::parse)]
    pub links: Vec<LinkSpec>,
    /// A file holding the token that changing toxics needs (without it, anyone who reaches
    /// the control address may change them).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
}

pub async fn run(args: FaultProxyArgs) -> Result<()> {
    let token = match &args.token_file {
        Some(f) => Some(
            std::fs::read_to_string(f)
                .wrap_err_with(|| format!("reading the token file {}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    server::run(args.control, args.links, token)
        .await
        .wrap_err("the fault proxy stopped")
}
