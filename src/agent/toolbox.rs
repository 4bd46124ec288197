//! Where the agent's commands run on the Docker runtime: `bash -c` inside the instance's
//! toolbox container, on the subject's network, through the Engine API's exec. The toolbox
//! holds no credentials and no Docker socket; its only way to Docker is the operator's
//! filtering proxy, served here for as long as this executor lives. Output is bounded as it
//! is locally, and `timeout -s KILL` inside the container ends a command that runs too long,
//! with everything it started (it signals its whole process group).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures::StreamExt;
use tokio::sync::Mutex;
use tracing::instrument;

use super::executor::{ExecError, ExecOutput, Executor};
use super::output::HeadTail;
use crate::runtime::Sandbox;
use crate::runtime::docker::api_proxy::{ApiProxy, Scope};
use crate::runtime::docker::engine;

/// Exit status of a process killed by SIGKILL, as `timeout -s KILL` reports it.
const KILLED: i64 = 128 + 9;

pub struct ToolboxExecutor {
    sandbox: Sandbox,
    limit: usize,
    /// The socket's name, one per agent process.
    socket: String,
    live: Mutex<Option<Live>>,
}

/// The engine connection and the proxy, made on first use (the cluster may not be up yet
/// when the agent is built) and made again if `down` took the proxy's folder away.
struct Live {
    docker: Docker,
    proxy: ApiProxy,
}

impl ToolboxExecutor {
    pub fn new(sandbox: Sandbox, output_limit: usize) -> Self {
        Self {
            sandbox,
            limit: output_limit,
            socket: format!("agent-{}.sock", std::process::id()),
            live: Mutex::new(None),
        }
    }

    fn socket_path(&self) -> PathBuf {
        self.sandbox.api_dir.join(&self.socket)
    }

    /// Where the toolbox's `docker` goes: the proxy's socket, as the toolbox sees it.
    fn docker_endpoint(&self) -> String {
        format!("unix://{}/{}", self.sandbox.api_dir_inside, self.socket)
    }

    /// The environment of every command: nothing of this process's.
    pub fn env(&self) -> Vec<String> {
        vec![
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "HOME=/work".into(),
            "LANG=C.UTF-8".into(),
            "TERM=dumb".into(),
            "NO_COLOR=1".into(),
            format!("DOCKER_HOST={}", self.docker_endpoint()),
        ]
    }

    async fn docker(&self) -> Result<Docker, ExecError> {
        let mut live = self.live.lock().await;
        if let Some(l) = live.as_ref() {
            if l.proxy.socket().exists() {
                return Ok(l.docker.clone());
            }
        }
        let sandbox = |e: crate::runtime::RuntimeError| ExecError::Sandbox(e.to_string());
        let docker = engine::connect(&self.sandbox.engine)
            .await
            .map_err(sandbox)?;
        // The old proxy (if any) goes first: it would remove the new socket when dropped.
        *live = None;
        let proxy = ApiProxy::serve(
            &self.socket_path(),
            Scope {
                instance: self.sandbox.instance,
                owner: self.sandbox.owner.clone(),
                engine: self.sandbox.engine.clone(),
            },
        )
        .await
        .map_err(sandbox)?;
        *live = Some(Live {
            docker: docker.clone(),
            proxy,
        });
        Ok(docker)
    }
}

#[async_trait]
impl Executor for ToolboxExecutor {
    #[instrument(skip(self), fields(container = %self.sandbox.container, timeout_ms = timeout.as_millis() as u64))]
    async fn run(
        &self,
        command: &str,
        timeout: Duration,
        // The toolbox reaches nodes through the engine's proxy, which judges by itself.
        _grant: crate::policy::Class,
    ) -> Result<ExecOutput, ExecError> {
        let docker = self.docker().await?;
        let start = Instant::now();
        let c = &self.sandbox.container;
        // `timeout 0` would mean no limit at all.
        let secs = format!("{:.3}", timeout.as_secs_f64().max(0.001));
        let cmd = [
            "timeout",
            "-s",
            "KILL",
            &secs,
            "bash",
            "--noprofile",
            "--norc",
            "-c",
            command,
        ];
        let not_there = |e: bollard::errors::Error| {
            ExecError::Sandbox(format!(
                "the toolbox container {c} cannot run commands ({}); is the cluster up?",
                engine::describe(&e)
            ))
        };
        let exec = docker
            .create_exec(
                c,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    env: Some(self.env()),
                    working_dir: Some("/work".to_string()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(false),
                    tty: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(not_there)?;
        let mut stdout = HeadTail::new(self.limit);
        let mut stderr = HeadTail::new(self.limit);
        let started = docker.start_exec(&exec.id, None).await.map_err(not_there)?;
        let mut stuck = false;
        let mut lost = None;
        if let StartExecResults::Attached { mut output, .. } = started {
            // `timeout` inside ends the command; this only guards against a stream that
            // never closes.
            let deadline = tokio::time::Instant::now() + timeout + Duration::from_secs(5);
            loop {
                match tokio::time::timeout_at(deadline, output.next()).await {
                    Ok(Some(Ok(LogOutput::StdOut { message }))) => stdout.push(&message),
                    Ok(Some(Ok(LogOutput::StdErr { message }))) => stderr.push(&message),
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(e))) => {
                        lost = Some(engine::describe(&e));
                        break;
                    }
                    Ok(None) => break,
                    Err(_) => {
                        stuck = true;
                        break;
                    }
                }
            }
        }
        let code = match docker.inspect_exec(&exec.id).await {
            Ok(i) => i.exit_code,
            Err(e) => {
                lost.get_or_insert(engine::describe(&e));
                None
            }
        };
        if stuck {
            lost.get_or_insert(
                "its output did not end in time; it may still be running in the toolbox".into(),
            );
        }
        if let Some(why) = &lost {
            stderr.push(format!("\n[operator: {why}]\n").as_bytes());
        }
        let elapsed = start.elapsed();
        let timed_out = stuck || (code == Some(KILLED) && elapsed >= timeout);
        let (stdout, o1) = stdout.finish();
        let (stderr, o2) = stderr.finish();
        Ok(ExecOutput {
            exit_code: if timed_out {
                None
            } else {
                code.and_then(|c| i32::try_from(c).ok())
            },
            signal: timed_out.then_some(9),
            stdout,
            stderr,
            duration_ms: elapsed.as_millis() as u64,
            timed_out,
            omitted_bytes: o1 + o2,
        })
    }

    fn unsandboxed(&self) -> Option<String> {
        self.sandbox.egress_open.clone()
    }

    fn describe(&self) -> String {
        format!(
            "bash -c in the toolbox container {} on the subject's network; `docker` there reaches only the operator's filtering proxy",
            self.sandbox.container
        )
    }

    fn docker_host(&self) -> Option<String> {
        Some(self.docker_endpoint())
    }
}
