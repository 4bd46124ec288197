//! The local runtime: each node a detached process on a loopback port, with its pid, log
//! and data under `<state dir>/instances/<N>/`. Nothing restarts a node by itself, exactly
//! like a container with no restart policy.

pub mod ports;
pub mod process;
pub mod record;
pub mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use nix::sys::signal::Signal;
use tracing::{info, instrument, warn};

use self::process::ProcessId;
use self::record::{InstanceLock, InstanceRecord, NodeRecord};
use super::health::{Starting, wait_until_healthy};
use super::{
    ClusterPlan, DownReport, FAULTPROXY, Impairment, NodeAction, NodeStatus, ROLE_FAULTPROXY,
    RunState, Runtime, RuntimeError, Topology, TopologyNode, UpReport,
};
use crate::config::LocalRuntimeConfig;
use crate::paths::StateDir;
use crate::runtime::proxy::{ProxyClient, token};

const HOST: &str = "127.0.0.1";
/// How long a command waits for another one changing the same instance.
const LOCK_WAIT: Duration = Duration::from_secs(60);

pub struct LocalRuntime {
    state: StateDir,
    instance: u32,
    config: LocalRuntimeConfig,
    topology: crate::runtime::record::Cached<Topology>,
}

impl LocalRuntime {
    pub fn new(state: StateDir, instance: u32, config: LocalRuntimeConfig) -> Self {
        Self {
            state,
            instance,
            config,
            topology: crate::runtime::record::Cached::default(),
        }
    }

    fn read_topology(&self) -> Result<Topology, RuntimeError> {
        let record = self.load()?;
        Ok(Topology {
            subject: record.subject.clone(),
            instance: record.instance,
            runtime: record.runtime.clone(),
            nodes: record
                .nodes
                .iter()
                .map(|n| TopologyNode {
                    name: n.spec.name.clone(),
                    role: n.spec.role.clone(),
                    address: n.spec.address(),
                    client: n.spec.client.clone(),
                    advertised: None,
                })
                .collect(),
        })
    }

    pub fn host() -> &'static str {
        HOST
    }

    fn dir(&self) -> PathBuf {
        self.state.instance(self.instance)
    }

    async fn lock(&self) -> Result<InstanceLock, RuntimeError> {
        InstanceLock::acquire(&self.dir(), self.instance, LOCK_WAIT).await
    }

    fn load(&self) -> Result<InstanceRecord, RuntimeError> {
        InstanceRecord::load(&self.dir())?.ok_or_else(|| RuntimeError::NotUp {
            instance: self.instance,
            dir: self.dir(),
        })
    }

    /// The node's program as found on disk, or why not with the plan's advice.
    fn resolve_program(spec: &crate::runtime::NodeSpec) -> Result<PathBuf, RuntimeError> {
        process::find_program(&spec.program).ok_or_else(|| RuntimeError::MissingProgram {
            program: spec.program.to_string_lossy().to_string(),
            hint: spec
                .install_hint
                .clone()
                .unwrap_or_else(|| "Install it or give its full path in the config.".to_string()),
        })
    }

    fn status_of(node: &NodeRecord) -> NodeStatus {
        let state = node.process.map_or(RunState::Exited, ProcessId::state);
        NodeStatus {
            name: node.spec.name.clone(),
            role: node.spec.role.clone(),
            state,
            pid: node
                .process
                .filter(|_| state != RunState::Exited)
                .map(|p| p.pid),
            address: node.spec.address(),
            log: node.log.clone(),
            started_at: node.started_at.filter(|_| state != RunState::Exited),
            healthy: None,
        }
    }

    /// Starts one node and waits until it is healthy; on failure kills it again.
    #[instrument(skip_all, fields(node = %node.spec.name))]
    async fn start_node(&self, node: &mut NodeRecord) -> Result<(), RuntimeError> {
        let spec = &node.spec;
        if !ports::is_free(&spec.host, spec.port) {
            return Err(RuntimeError::PortInUse {
                port: spec.port,
                node: spec.name.clone(),
            });
        }
        let workdir = self.dir().join("data").join(&spec.name);
        std::fs::create_dir_all(&workdir)
            .map_err(RuntimeError::io(format!("creating {}", workdir.display())))?;
        crate::runtime::NodeFile::write_all(spec, &workdir)?;
        let program = node.program.clone();
        let id = {
            let spec = spec.clone();
            let log = node.log.clone();
            tokio::task::spawn_blocking(move || {
                process::spawn_detached(&spec, &program, &log, &workdir)
            })
        };
        let id = id
            .await
            .map_err(|e| RuntimeError::io("starting a node")(std::io::Error::other(e)))?
            .map_err(RuntimeError::io(format!(
                "starting {} ({})",
                spec.name,
                node.program.display()
            )))?;
        node.process = Some(id);
        node.started_at = Some(crate::clock::now());
        let look = || async {
            if !id.is_alive() {
                return Starting::Gone("the process exited during start".into());
            }
            match spec
                .health
                .probe(&spec.address(), Duration::from_millis(500))
                .await
            {
                Ok(()) => {
                    info!(pid = id.pid, address = %spec.address(), "node healthy");
                    Starting::Healthy
                }
                Err(e) => Starting::Waiting(e),
            }
        };
        let Err(last) =
            wait_until_healthy(self.config.startup_timeout, Duration::from_millis(50), look).await
        else {
            return Ok(());
        };
        let _ = id.signal(Signal::SIGKILL);
        id.wait_gone(Duration::from_secs(2)).await;
        node.process = None;
        Err(RuntimeError::StartFailed {
            node: spec.name.clone(),
            reason: last,
            log: node.log.clone(),
            log_tail: process::tail(&node.log, 15).unwrap_or_default(),
        })
    }

    /// SIGTERM, then SIGKILL after the stop timeout. A paused node is continued so that
    /// it can handle the SIGTERM.
    async fn stop_node(&self, node: &mut NodeRecord) {
        if let Some(id) = node.process.filter(|p| p.is_alive()) {
            let _ = id.signal(Signal::SIGTERM);
            let _ = id.signal(Signal::SIGCONT);
            if !id.wait_gone(self.config.stop_timeout).await {
                warn!(node = %node.spec.name, "did not stop on SIGTERM; killing");
                let _ = id.signal(Signal::SIGKILL);
                id.wait_gone(Duration::from_secs(5)).await;
            }
        }
        node.process = None;
    }

    fn wrong_state(node: &str, message: impl Into<String>) -> RuntimeError {
        RuntimeError::WrongState {
            node: node.into(),
            message: message.into(),
        }
    }

    async fn signal_and_wait(
        id: ProcessId,
        signal: Signal,
        want: RunState,
    ) -> Result<(), RuntimeError> {
        id.signal(signal)
            .map_err(|e| RuntimeError::io(format!("sending {signal}"))(e.into()))?;
        if id.wait_until(Duration::from_secs(5), |s| s == want).await {
            Ok(())
        } else {
            Err(RuntimeError::io(format!("waiting for {}", want.as_str()))(
                std::io::Error::other(format!("process {} did not change state", id.pid)),
            ))
        }
    }

    async fn health_of(status: &mut NodeStatus, node: &NodeRecord) {
        if status.state == RunState::Running {
            status.healthy = Some(
                node.spec
                    .health
                    .probe(&node.spec.address(), Duration::from_millis(300))
                    .await
                    .is_ok(),
            );
        }
    }
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn kind(&self) -> &'static str {
        "local"
    }

    fn instance(&self) -> u32 {
        self.instance
    }

    fn instance_dir(&self) -> PathBuf {
        self.dir()
    }

    fn allocate_ports(&self, names: &[&str]) -> Result<Vec<u16>, RuntimeError> {
        ports::allocate(HOST, names, self.config.base_port, self.instance)
    }

    fn startup_timeout(&self) -> Duration {
        self.config.startup_timeout
    }

    fn events(&self) -> Option<futures::stream::BoxStream<'static, super::NodeEvent>> {
        if !self.config.events {
            return None;
        }
        watch::stream(self.dir())
    }

    #[instrument(skip_all, fields(instance = self.instance, subject = %plan.subject))]
    async fn up(&self, plan: ClusterPlan) -> Result<UpReport, RuntimeError> {
        let _lock = self.lock().await?;
        let dir = self.dir();
        let mut notes = Vec::new();
        if let Some(old) = InstanceRecord::load(&dir)? {
            let (alive, dead): (Vec<_>, Vec<_>) = old
                .nodes
                .iter()
                .partition(|n| n.process.is_some_and(ProcessId::is_alive));
            let names = |v: &[&NodeRecord]| {
                v.iter()
                    .map(|n| n.spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if dead.is_empty() {
                return Err(RuntimeError::AlreadyUp {
                    instance: self.instance,
                    running: names(&alive),
                });
            }
            if !alive.is_empty() {
                return Err(RuntimeError::PartlyUp {
                    instance: self.instance,
                    running: names(&alive),
                    stopped: names(&dead),
                });
            }
            notes.push(format!(
                "found the record of an earlier run of instance {} with no process alive; replaced it",
                self.instance
            ));
            remove_contents(&dir)?;
        }
        let mut record = InstanceRecord::new(&plan.subject, self.instance);
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(RuntimeError::io(format!("creating {}", logs.display())))?;
        token::create(&dir).map_err(RuntimeError::io("writing the fault proxy's token"))?;
        for mut spec in plan.nodes {
            token::require(&mut spec, &token::path(&dir).display().to_string());
            let program = match Self::resolve_program(&spec) {
                Ok(p) => p,
                Err(e) => {
                    remove_contents(&dir)?;
                    return Err(e);
                }
            };
            record.nodes.push(NodeRecord {
                log: logs.join(format!("{}.log", spec.name)),
                spec,
                program,
                process: None,
                started_at: None,
            });
        }
        // Record first: if this process dies half way, `down` still finds what was started.
        record.save(&dir)?;
        for i in 0..record.nodes.len() {
            let mut node = record.nodes[i].clone();
            let started = self.start_node(&mut node).await;
            record.nodes[i] = node;
            record.save(&dir)?;
            if let Err(e) = started {
                for n in record.nodes.iter_mut().rev() {
                    self.stop_node(n).await;
                }
                remove_contents(&dir)?;
                return Err(e);
            }
        }
        // Every node passed its health check above.
        let nodes = record
            .nodes
            .iter()
            .map(|n| NodeStatus {
                healthy: Some(true),
                ..Self::status_of(n)
            })
            .collect();
        Ok(UpReport { nodes, notes })
    }

    async fn check_plan(&self, plan: &ClusterPlan) -> Result<(), RuntimeError> {
        plan.nodes
            .iter()
            .try_for_each(|n| Self::resolve_program(n).map(drop))
    }

    #[instrument(skip_all, fields(instance = self.instance))]
    async fn down(&self) -> Result<DownReport, RuntimeError> {
        let _lock = self.lock().await?;
        let mut record = self.load()?;
        let mut report = DownReport::default();
        for node in record.nodes.iter_mut().rev() {
            if node.process.is_some_and(ProcessId::is_alive) {
                report.stopped.push(node.spec.name.clone());
            }
            self.stop_node(node).await;
        }
        let dir = self.dir();
        remove_contents(&dir)?;
        // The lock goes last, while still held; the folder with it.
        std::fs::remove_dir_all(&dir)
            .map_err(RuntimeError::io(format!("removing {}", dir.display())))?;
        token::remove(&dir);
        report.removed.push(dir);
        Ok(report)
    }

    async fn status(&self) -> Result<Vec<NodeStatus>, RuntimeError> {
        let record = self.load()?;
        let probes = record.nodes.iter().map(|n| async move {
            let mut s = Self::status_of(n);
            Self::health_of(&mut s, n).await;
            s
        });
        Ok(futures::future::join_all(probes).await)
    }

    #[instrument(skip_all, fields(instance = self.instance, node = name, action = action.as_str()))]
    async fn act(&self, name: &str, action: NodeAction) -> Result<NodeStatus, RuntimeError> {
        let _lock = self.lock().await?;
        let mut record = self.load()?;
        let mut node = record.node(name)?.clone();
        let state = node.process.map_or(RunState::Exited, ProcessId::state);
        let id = node.process.filter(|_| state != RunState::Exited);
        match (action, id) {
            (NodeAction::Start, Some(_)) => {
                return Err(Self::wrong_state(
                    name,
                    format!("is already {}", state.as_str()),
                ));
            }
            (NodeAction::Start, None) => self.start_node(&mut node).await?,
            (NodeAction::Stop | NodeAction::Kill | NodeAction::Pause, None) => {
                return Err(Self::wrong_state(name, "is already down (not running)"));
            }
            (NodeAction::Stop, Some(_)) => self.stop_node(&mut node).await,
            (NodeAction::Restart, _) => {
                self.stop_node(&mut node).await;
                self.start_node(&mut node).await?;
            }
            (NodeAction::Kill, Some(id)) => {
                id.signal(Signal::SIGKILL)
                    .map_err(|e| RuntimeError::io("sending SIGKILL")(e.into()))?;
                id.wait_gone(Duration::from_secs(5)).await;
                node.process = None;
            }
            (NodeAction::Pause, Some(_)) if state == RunState::Paused => {
                return Err(Self::wrong_state(name, "is already paused"));
            }
            (NodeAction::Pause, Some(id)) => {
                Self::signal_and_wait(id, Signal::SIGSTOP, RunState::Paused).await?;
            }
            (NodeAction::Resume, Some(id)) if state == RunState::Paused => {
                Self::signal_and_wait(id, Signal::SIGCONT, RunState::Running).await?;
            }
            (NodeAction::Resume, _) => {
                return Err(Self::wrong_state(
                    name,
                    format!("is not paused (it is {})", state.as_str()),
                ));
            }
        }
        *record.node_mut(name)? = node.clone();
        record.save(&self.dir())?;
        let mut status = Self::status_of(&node);
        Self::health_of(&mut status, &node).await;
        Ok(status)
    }

    async fn respec(
        &self,
        name: &str,
        edit: &(dyn for<'a> Fn(&'a mut Vec<String>) + Send + Sync),
    ) -> Result<Vec<String>, RuntimeError> {
        let _lock = self.lock().await?;
        let mut record = self.load()?;
        let node = record.node_mut(name)?;
        if node.process.is_some_and(|p| p.state() != RunState::Exited) {
            return Err(Self::wrong_state(
                name,
                "is running: stop it before changing its arguments",
            ));
        }
        edit(&mut node.spec.args);
        let args = node.spec.args.clone();
        record.save(&self.dir())?;
        Ok(args)
    }

    async fn logs(&self, name: &str, lines: usize) -> Result<String, RuntimeError> {
        let record = self.load()?;
        let node = record.node(name)?;
        process::tail(&node.log, lines)
            .map_err(RuntimeError::io(format!("reading {}", node.log.display())))
    }

    fn topology(&self) -> Result<Topology, RuntimeError> {
        self.topology.get(&self.dir(), || self.read_topology())
    }

    async fn mechanism(&self, imp: &Impairment) -> Result<String, String> {
        match imp {
            Impairment::DiskFill { .. } => Err(NO_BOUNDED_DISK.into()),
            _ => Ok(
                "the fault proxy, on the node's links (clients → node, node → its peers) and on the connections it dials through its peers' links"
                    .into(),
            ),
        }
    }

    #[instrument(skip_all, fields(instance = self.instance, target, tag))]
    async fn impair(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        let Some(toxic) = imp.toxic() else {
            return Err(RuntimeError::Unsupported {
                what: imp.describe(),
                runtime: "local",
                reason: NO_BOUNDED_DISK.into(),
            });
        };
        let record = self.load()?;
        let spec = &record.node(target)?.spec;
        // Where the node listens tells the proxy which connections it dials (see its
        // `dialer`): every process here dials from 127.0.0.1.
        let dialer = spec
            .host
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| std::net::SocketAddr::new(ip, spec.port));
        let proxy = self.proxy(&record, true)?;
        let links = proxy
            .impair_node(target, tag, toxic, dialer)
            .await
            .map_err(|e| impair_error(target, e))?;
        if links.is_empty() {
            return Err(RuntimeError::Impair {
                target: target.into(),
                message: "no link of the fault proxy touches it".into(),
            });
        }
        Ok(format!(
            "{} on {} (fault proxy)",
            imp.describe(),
            links.join(", ")
        ))
    }

    #[instrument(skip_all, fields(instance = self.instance, target, tag))]
    async fn restore(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        if imp.toxic().is_none() {
            return Ok("nothing was applied".into());
        }
        let record = self.load()?;
        let Ok(proxy) = self.proxy(&record, false) else {
            return Ok("the fault proxy is not running; its toxics went with it".into());
        };
        let links = proxy
            .clear_tag(tag)
            .await
            .map_err(|e| impair_error(target, e))?;
        Ok(if links.is_empty() {
            "the fault proxy held nothing of it any more".into()
        } else {
            format!(
                "removed {} from {}; the proxy shows none left",
                imp.describe(),
                links.join(", ")
            )
        })
    }
}

const NO_BOUNDED_DISK: &str = "the local runtime has no size-bounded data volume (its Redis keeps no data on disk), and filling a folder would fill the host's own disk; use `--runtime docker`";

fn impair_error(target: &str, e: crate::runtime::proxy::ProxyError) -> RuntimeError {
    RuntimeError::Impair {
        target: target.into(),
        message: e.to_string(),
    }
}

impl LocalRuntime {
    /// The fault proxy's control client; an error if it is not running (`Err` quietly when
    /// `!loud`, for heal, where a dead proxy means nothing is left to remove).
    fn proxy(&self, record: &InstanceRecord, loud: bool) -> Result<ProxyClient, RuntimeError> {
        let node = record
            .nodes
            .iter()
            .find(|n| n.spec.role == ROLE_FAULTPROXY)
            .ok_or_else(|| RuntimeError::Impair {
                target: FAULTPROXY.into(),
                message: "this instance was started without a fault proxy; `operator down` and `up` again".into(),
            })?;
        if !node.process.is_some_and(ProcessId::is_alive) {
            return Err(RuntimeError::Impair {
                target: FAULTPROXY.into(),
                message: if loud {
                    "the fault proxy is not running; start it with `operator node start faultproxy`"
                        .into()
                } else {
                    "not running".into()
                },
            });
        }
        Ok(ProxyClient::new(node.spec.address()).with_token(token::read(&self.dir())))
    }
}

/// Empties an instance folder but keeps the folder and its lock file, which another command
/// may be waiting on.
fn remove_contents(dir: &Path) -> Result<(), RuntimeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(RuntimeError::io(format!("reading {}", dir.display()))(e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "lock") {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(RuntimeError::io(format!("removing {}", path.display())))?;
    }
    Ok(())
}
