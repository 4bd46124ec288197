//! `operator docker-api`: the filtering Docker API proxy on its own. The agent serves one
//! itself; this is for a containerized agent (`compose/agent.yml`) and for a person who
//! wants to see what the agent may and may not do.

use std::path::PathBuf;

use clap::Args;
use color_eyre::eyre::{Result, eyre};
use operator::runtime::docker::api_proxy::{ApiProxy, Scope};

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Example:
  operator docker-api --socket /tmp/agent-docker.sock &
  DOCKER_HOST=unix:///tmp/agent-docker.sock docker ps            this instance's containers
  DOCKER_HOST=unix:///tmp/agent-docker.sock docker rm -f redis   refused, with the reason

Allowed: inspect, logs, stats, top, start, stop, restart, kill, pause, unpause and exec on the
containers of this instance (the test rig's only read), and `docker ps` narrowed to them.")]
pub struct DockerApiArgs {
    /// Where to serve it. Default: <state dir>/instances/<N>/docker-api/docker.sock, the
    /// folder mounted into the instance's toolbox.
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

pub async fn run(ctx: &Context, args: DockerApiArgs) -> Result<()> {
    let runtime = ctx.runtime()?;
    let sandbox = runtime.sandbox()?.ok_or_else(|| {
        eyre!(
            "instance {} is on the {} runtime, which has no Docker sandbox; use --runtime docker",
            ctx.instance,
            runtime.kind()
        )
    })?;
    let socket = args
        .socket
        .unwrap_or_else(|| sandbox.api_dir.join("docker.sock"));
    let _proxy = ApiProxy::serve(
        &socket,
        Scope {
            instance: sandbox.instance,
            owner: sandbox.owner,
            engine: sandbox.engine,
        },
    )
    .await?;
    eprintln!(
        "serving the filtering Docker API proxy for instance {} on {} (Ctrl-C or SIGTERM stops it)",
        ctx.instance,
        socket.display()
    );
    operator::shutdown::signal().await;
    Ok(())
}
