//! An agent for one instance, put together from the configuration: the model, the executor
//! (a subprocess in the instance's folder, or the runtime's sandbox: the toolbox container on
//! Docker), the policy protecting the operator's own state, the audit. The CLI and the TUI
//! build their agents here and differ only in who approves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc};

use super::approval::Approver;
use super::audit::Audit;
use super::executor::{Executor, LocalEnv, LocalExecutor, operator_dirs};
use super::llm::ModelError;
use super::redact::Redactor;
use super::sandbox::{Plan, probe};
use super::session::{AgentEvent, Deps, Settings};
use super::toolbox::ToolboxExecutor;
use super::variant::Variant;
use super::{Agent, build_model, prompt};
use crate::config::{AgentConfig, Config, Mode};
use crate::paths::StateDir;
use crate::policy::{Endpoints, Policy, Protected, SubjectWords};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::subjects::Subject;

pub struct LocalAgent<'a> {
    /// The agent's configuration, variant and flags already applied.
    pub config: &'a AgentConfig,
    pub variant: Option<&'a Variant>,
    pub subject: Box<dyn Subject>,
    /// The instance's runtime: it says where commands run.
    pub runtime: Arc<dyn Runtime>,
    pub store: Store,
    pub state: &'a StateDir,
    pub db: &'a Path,
    pub instance: u32,
    /// The config file named on the command line, for the agent's own `operator` calls and
    /// where "always allow" answers are kept (else the default config file).
    pub config_path: Option<PathBuf>,
    pub approver: Arc<dyn Approver>,
    pub events: Option<mpsc::UnboundedSender<AgentEvent>>,
    pub guidance: Option<mpsc::UnboundedReceiver<String>>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the agent's sandbox: {0}")]
    Sandbox(#[from] crate::runtime::RuntimeError),
    #[error(
        "auto mode runs commands only in a sandbox, and {0}. Run with --mode approve (a person sees every command that is not read-only, and each is marked unsandboxed), or set `agent.sandbox = false` in the config to run commands unsandboxed"
    )]
    NoSandbox(String),
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Where an agent's commands run: the runtime's sandbox (the toolbox container on Docker);
/// locally, subprocesses in bubblewrap's sandbox of the instance's folder when `local_sandbox`
/// (an agent's commands; `policy check` runs none). Where bubblewrap cannot run, auto mode
/// refuses and the other modes run commands unsandboxed, saying so; `agent.sandbox = false`
/// is the explicit way out.
pub fn executor(
    cfg: &AgentConfig,
    runtime: &dyn Runtime,
    local: LocalEnv,
    local_sandbox: bool,
) -> Result<Arc<dyn Executor>, BuildError> {
    if !cfg.sandbox {
        return Ok(Arc::new(LocalExecutor::new(local)));
    }
    if let Some(sandbox) = runtime.sandbox()? {
        if let (Some(why), Mode::Auto) = (&sandbox.egress_open, cfg.mode) {
            return Err(BuildError::NoSandbox(why.clone()));
        }
        return Ok(Arc::new(ToolboxExecutor::new(
            sandbox,
            cfg.budgets.output_bytes,
        )));
    }
    let cwd = local.cwd.to_path_buf();
    let exec = LocalExecutor::new(local);
    if !local_sandbox {
        return Ok(Arc::new(exec));
    }
    let plan = Plan::for_instance(
        &cwd,
        operator_dirs().into_iter().next(),
        verb_socket(&cwd),
        cfg.bwrap.as_deref(),
    )
    .and_then(|p| probe(&p).map(|()| p));
    match plan {
        Ok(plan) => Ok(Arc::new(exec.sandboxed(plan))),
        Err(why) if cfg.mode == Mode::Auto => Err(BuildError::NoSandbox(why)),
        Err(why) => {
            tracing::warn!(why = %why, "the agent's commands run unsandboxed");
            Ok(Arc::new(exec.unsandboxed_because(why)))
        }
    }
}

/// The verb socket of one agent, beside the instance's folder (not in it: the folder is
/// what commands see): `instances/0.sandbox/agent-PID-N.sock`, N counting this process's
/// agents, so that one going away never removes the socket of the next.
fn verb_socket(instance_dir: &Path) -> PathBuf {
    static AGENTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = AGENTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = instance_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    instance_dir
        .with_file_name(format!("{name}.sandbox"))
        .join(format!("agent-{}-{n}.sock", std::process::id()))
}

/// The policy an agent of `instance` works under: the configured allow and deny rules, the
/// operator's state protected, and the words of `subjects` (the instance's own: its programs,
/// URL schemes, variables, data folders; a program of another subject is unknown to it). Its
/// endpoints come from the instance's topology ([`endpoints`]), given before each session.
pub fn policy(
    cfg: &AgentConfig,
    (state, db, config_file): (&StateDir, &Path, Option<&Path>),
    instance: u32,
    subjects: Vec<&'static dyn SubjectWords>,
) -> Policy {
    let (config_dir, home) = Protected::user_dirs();
    Policy::new(
        &cfg.policy.allow,
        &cfg.policy.deny,
        Protected {
            state_dir: absolute(state.root()),
            db: absolute(db),
            cwd: absolute(&state.instance(instance)),
            config_dir,
            home,
            config_file: config_file.map(absolute),
        },
        subjects,
    )
}

/// Where commands' `docker` goes, when the instance's nodes are containers: the executor's
/// `DOCKER_HOST`, else the client's default socket. Where they are processes, nowhere.
pub fn docker_endpoint(runtime: &dyn Runtime, executor: &dyn Executor) -> Option<String> {
    (runtime.kind() != "local").then(|| {
        executor
            .docker_host()
            .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
    })
}

/// The instance's endpoints as its topology records them now (ports move when it comes up
/// again); none while it is down.
pub fn endpoints(runtime: &dyn Runtime, docker: Option<String>) -> Endpoints {
    match runtime.topology() {
        Ok(t) => Endpoints::from_topology(&t, docker),
        Err(e) => {
            tracing::warn!(error = %e, "no topology: no endpoint is the instance's");
            Endpoints::new([], docker)
        }
    }
}

impl LocalAgent<'_> {
    pub fn build(self) -> Result<Agent, BuildError> {
        let cfg = self.config;
        let kind = self.subject.kind();
        let model = build_model(cfg, kind)?;
        let instance_dir = self.state.instance(self.instance);
        // Commands run there; it exists once the cluster is up, but must exist regardless.
        let _ = std::fs::create_dir_all(&instance_dir);
        // The file this agent was configured from, also when it is the default one: the
        // `operator` its commands call (in the sandbox, through its socket) reads the same.
        let config_file = self
            .config_path
            .clone()
            .or_else(Config::default_path)
            .filter(|p| p.is_file());
        let executor = executor(
            cfg,
            self.runtime.as_ref(),
            LocalEnv {
                cwd: &instance_dir,
                state_dir: self.state.root(),
                db: self.db,
                instance: self.instance,
                config: config_file.as_deref(),
                output_limit: cfg.budgets.output_bytes,
            },
            true,
        )?;
        let policy = policy(
            cfg,
            (self.state, self.db, config_file.as_deref()),
            self.instance,
            vec![kind.words()],
        );
        let docker = docker_endpoint(self.runtime.as_ref(), executor.as_ref());
        let keep_file = self.config_path.clone().or_else(Config::default_path);
        let keep_allowed = Arc::new(move |prefix: &str| match &keep_file {
            Some(p) => crate::config::remember_allowed(p, prefix),
            None => Err("no config file to keep it in".into()),
        });
        let deps = Deps {
            audit: Audit::new(self.store.clone(), Redactor::from_env()),
            store: self.store,
            model,
            executor,
            policy: Arc::new(Mutex::new(policy)),
            approver: self.approver,
            keep_allowed,
            events: self.events,
            guidance: self.guidance.map(|g| Arc::new(Mutex::new(g))),
        };
        let settings = Settings {
            agent_id: format!("agent-{}", std::process::id()),
            mode: cfg.mode,
            budgets: cfg.budgets.clone(),
            lease: cfg.lease.max(Duration::from_secs(1)),
            verify_window: cfg.verify_window,
            tools: cfg.tools.clone(),
            system_prompt: self
                .variant
                .and_then(|v| v.system_prompt.clone())
                .unwrap_or_else(|| prompt::DEFAULT_SYSTEM.to_string()),
            variant: self.variant.map_or("default".into(), |v| v.name.clone()),
            prices: cfg.prices.clone(),
        };
        Ok(Agent {
            deps,
            settings,
            subject: self.subject,
            poll: cfg.poll_interval,
            runtime: self.runtime,
            docker,
        })
    }
}
