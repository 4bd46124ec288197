//! Where subject nodes live and how they are started, stopped, killed, paused and read.
//!
//! The trait assumes neither processes nor containers: `local` runs detached processes with
//! pid files and logs under the state dir; Docker and Kubernetes runtimes plug in beside it.

pub mod commands;
pub mod docker;
pub mod health;
pub mod impair;
pub mod local;
pub mod open;
pub mod proxy;
pub mod record;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use health::HealthCheck;
pub use impair::Impairment;

use crate::clock::Timestamp;

/// The fault proxy's node name and role: part of the test rig in the data path, not of
/// the subject; observers and random fault targets pass it by.
pub const FAULTPROXY: &str = "faultproxy";
pub const ROLE_FAULTPROXY: &str = "faultproxy";
/// The agent's sandbox on the Docker runtime.
pub const TOOLBOX: &str = "toolbox";
pub const ROLE_TOOLBOX: &str = "toolbox";

/// Whether a role belongs to the test rig (the fault proxy, the agent's toolbox) rather than
/// to the subject: never a fault's target, never observed as part of the subject.
pub fn is_rig(role: &str) -> bool {
    role == ROLE_FAULTPROXY || role == ROLE_TOOLBOX
}

/// Starts every subject node that is down and resumes every one that is paused (never the
/// rig's); says what it did, e.g. `start etcd-2`.
pub async fn bring_back(runtime: &dyn Runtime, roles: Option<&str>) -> Result<Vec<String>, String> {
    let status = runtime.status().await.map_err(|e| e.to_string())?;
    let mut did = Vec::new();
    for n in status
        .iter()
        .filter(|n| !is_rig(&n.role) && roles.is_none_or(|r| n.role == r))
    {
        let action = match n.state {
            RunState::Exited => NodeAction::Start,
            RunState::Paused => NodeAction::Resume,
            RunState::Running => continue,
        };
        runtime
            .act(&n.name, action)
            .await
            .map_err(|e| format!("cannot {} {}: {e}", action.as_str(), n.name))?;
        did.push(format!("{} {}", action.as_str(), n.name));
    }
    Ok(did)
}

/// How full a node's data volume is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskUsage {
    pub size_bytes: u64,
    pub used_bytes: u64,
}

impl DiskUsage {
    pub fn used_percent(&self) -> f64 {
        if self.size_bytes == 0 {
            return 0.0;
        }
        self.used_bytes as f64 * 100.0 / self.size_bytes as f64
    }

    /// When fuller than `limit` percent: the `low_disk_space` violation's summary and detail
    /// for `node`, whichever subject it belongs to.
    pub fn over(&self, node: &str, limit: f64) -> Option<(String, serde_json::Value)> {
        let used = self.used_percent();
        (used > limit).then(|| {
            (
                format!(
                    "{node}'s data volume is {used:.0}% full ({} of {} bytes; the limit is {limit:.0}%)",
                    self.used_bytes, self.size_bytes
                ),
                serde_json::json!({
                    "used_bytes": self.used_bytes,
                    "size_bytes": self.size_bytes,
                    "used_percent": used,
                    "threshold_percent": limit,
                }),
            )
        })
    }
}

/// How to run one node, whatever the runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    /// What the node is in its subject (`redis`, `ratelimiter`).
    pub role: String,
    pub host: String,
    pub port: u16,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// The node's whole environment (besides `PATH`): nothing else leaks into it.
    pub env: Vec<(String, String)>,
    pub health: HealthCheck,
    /// How to get `program` when it is missing (the subject's words); records written before
    /// it existed have none, and then the advice is general.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
    /// Where clients reach the node, when that is not `address()`: through the fault proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The image a container runtime runs `program` in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The folder that holds the node's data, for a runtime that gives it a bounded volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Whether the data must outlive a stop of the node (a Raft member's log): then a
    /// runtime keeps it on disk rather than on a size-bounded tmpfs, and the subject bounds it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub durable: bool,
    /// Files the program reads from its working folder (settings with no flag), written
    /// there before it starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<NodeFile>,
}

/// A file in a node's working folder, by its name there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFile {
    /// A plain file name, no folder.
    pub name: String,
    pub contents: String,
}

impl NodeFile {
    /// Writes every file of `spec` into `dir` (made if missing).
    pub fn write_all(spec: &NodeSpec, dir: &std::path::Path) -> Result<(), RuntimeError> {
        if spec.files.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(dir)
            .map_err(RuntimeError::io(format!("creating {}", dir.display())))?;
        for f in &spec.files {
            // The plan's own names; a folder in one would write outside the node's folder.
            let plain = std::path::Path::new(&f.name)
                .file_name()
                .is_some_and(|n| n == f.name.as_str());
            if !plain {
                return Err(RuntimeError::io(format!("writing {}'s file", spec.name))(
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("`{}` is not a plain file name", f.name),
                    ),
                ));
            }
            let path = dir.join(&f.name);
            std::fs::write(&path, &f.contents)
                .map_err(RuntimeError::io(format!("writing {}", path.display())))?;
        }
        Ok(())
    }
}

impl NodeSpec {
    /// Where the node listens, as its peers reach it.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The nodes of one subject instance, in start order.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterPlan {
    pub subject: String,
    pub nodes: Vec<NodeSpec>,
}

/// A node's process (or container) as the runtime sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Paused,
    Exited,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    pub state: RunState,
    pub pid: Option<u32>,
    pub address: String,
    pub log: PathBuf,
    pub started_at: Option<Timestamp>,
    /// Whether the node answered its health check (only asked of running nodes).
    pub healthy: Option<bool>,
}

/// One node of an instance's expected topology, as an observer needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopologyNode {
    pub name: String,
    pub role: String,
    /// Where the operator reaches the node directly (monitor probes, health checks).
    pub address: String,
    /// Where clients send traffic, when not `address`: through the fault proxy, so that
    /// network faults reach them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The address the node announces to its peers, when not `address` (a container's name
    /// on its network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertised: Option<String>,
}

impl TopologyNode {
    pub fn client_address(&self) -> &str {
        self.client.as_deref().unwrap_or(&self.address)
    }

    pub fn advertised_address(&self) -> &str {
        self.advertised.as_deref().unwrap_or(&self.address)
    }
}

/// What is running for an instance: its subject and nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Topology {
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub nodes: Vec<TopologyNode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeAction {
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Resume,
}

impl NodeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Restart => "restart",
            Self::Kill => "kill",
            Self::Pause => "pause",
            Self::Resume => "resume",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "instance {instance} is not up (nothing recorded in {dir}); start it with `operator up`"
    )]
    NotUp { instance: u32, dir: PathBuf },
    #[error(
        "instance {instance} is already up ({running}); stop it with `operator down`, or use `--instance N` for another copy"
    )]
    AlreadyUp { instance: u32, running: String },
    #[error(
        "instance {instance} is partly running ({running} running; {stopped} not); start the missing nodes with `operator node start NODE`, or `operator down` first"
    )]
    PartlyUp {
        instance: u32,
        running: String,
        stopped: String,
    },
    #[error("unknown node `{name}`; nodes of this instance: {known}")]
    UnknownNode { name: String, known: String },
    #[error("`{program}` was not found. {hint}")]
    MissingProgram { program: String, hint: String },
    #[error(
        "port {port} (for {node}) is already in use by another program; choose another `runtime.local.base_port` or `--instance`"
    )]
    PortInUse { port: u16, node: String },
    #[error("{node} did not become healthy: {reason}\n--- last lines of {log} ---\n{log_tail}")]
    StartFailed {
        node: String,
        reason: String,
        log: PathBuf,
        log_tail: String,
    },
    #[error("the {subject} cluster started but does not serve (it was taken down again): {reason}")]
    NotServing { subject: String, reason: String },
    #[error("{0}")]
    UnknownSubject(String),
    /// The subject's section of the config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("{node} {message}")]
    WrongState { node: String, message: String },
    #[error("another operator command is changing instance {instance}; try again when it is done")]
    Busy { instance: u32 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("instance record {path} is unreadable: {message}; remove the folder if no node runs")]
    BadRecord { path: PathBuf, message: String },
    #[error("{what} is not possible on the {runtime} runtime: {reason}")]
    Unsupported {
        what: String,
        runtime: &'static str,
        reason: String,
    },
    #[error("{target}: {message}")]
    Impair { target: String, message: String },
    #[error("{message}")]
    Engine { message: String },
    #[error(
        "instance {instance} runs on the {recorded} runtime, not {wanted}; leave out --runtime, or `operator down` it first"
    )]
    OtherRuntime {
        instance: u32,
        recorded: &'static str,
        wanted: &'static str,
    },
    #[error("image {image} is missing; {hint}")]
    MissingImage { image: String, hint: String },
    #[error(
        "a {kind} named {name} exists that this operator did not make; it will not touch it: remove or rename it yourself, or use `--instance N` for other names"
    )]
    NameClash { kind: &'static str, name: String },
}

impl RuntimeError {
    /// An image the engine lacks, with how to get it: the plan's advice for its node, else
    /// ours (every image of our own is built here).
    pub fn missing_image(image: &str, hint: Option<&str>) -> Self {
        Self::MissingImage {
            image: image.to_string(),
            hint: hint
                .unwrap_or("build the images with ./scripts/build-images.sh")
                .to_string(),
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// Something that happened to a node, as the runtime saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEvent {
    pub node: String,
    /// The engine's word: `die`, `oom`, `pause`, `unpause`, `start`, `health_status: …`.
    pub action: String,
}

/// Where an agent's commands run when not on this machine: a container on the subject's
/// network, with a folder of this machine mounted in it for the operator's Docker API proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The engine's address.
    pub engine: String,
    pub container: String,
    /// On this machine: where the proxy's socket goes.
    pub api_dir: PathBuf,
    /// The same folder inside the container.
    pub api_dir_inside: String,
    pub instance: u32,
    /// The label value that marks this state dir's containers.
    pub owner: String,
    /// Why the toolbox may reach more than its instance, or `None` when it cannot.
    pub egress_open: Option<String>,
}

/// What `up` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpReport {
    pub nodes: Vec<NodeStatus>,
    /// Things a person should know, e.g. stale state that was cleaned up.
    pub notes: Vec<String>,
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DownReport {
    pub stopped: Vec<String>,
    pub removed: Vec<PathBuf>,
    /// Things a person should know, e.g. that an adopted cluster was only let go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The operations every runtime offers.
#[async_trait]
pub trait Runtime: Send + Sync {
    fn kind(&self) -> &'static str;
    fn instance(&self) -> u32;
    /// The instance's folder in the state dir: its record, and what subjects keep beside it
    /// (a load's acknowledged writes). `down` removes it.
    fn instance_dir(&self) -> std::path::PathBuf;
    /// Ports for the nodes of a plan, in order: free, or fixed by configuration.
    fn allocate_ports(&self, names: &[&str]) -> Result<Vec<u16>, RuntimeError>;
    /// Starts every node of the plan and waits until each is healthy; on failure, stops
    /// what it started and removes what it made.
    async fn up(&self, plan: ClusterPlan) -> Result<UpReport, RuntimeError>;
    /// Whether every program or image `plan` needs is here, starting and recording
    /// nothing: what a campaign asks before it records a trial.
    async fn check_plan(&self, _plan: &ClusterPlan) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Stops every node and removes everything `up` made.
    async fn down(&self) -> Result<DownReport, RuntimeError>;
    async fn status(&self) -> Result<Vec<NodeStatus>, RuntimeError>;
    async fn act(&self, node: &str, action: NodeAction) -> Result<NodeStatus, RuntimeError>;
    async fn logs(&self, node: &str, lines: usize) -> Result<String, RuntimeError>;
    /// The recorded topology of the instance, for observers.
    fn topology(&self) -> Result<Topology, RuntimeError>;
    /// How `imp` is applied on this runtime and machine, or why it cannot be.
    async fn mechanism(&self, imp: &Impairment) -> Result<String, String>;
    /// Applies `imp` to `target`, its changes owned by `tag`; says what it did.
    async fn impair(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError>;
    /// Removes what `impair` did under `tag` (only that), and checks it is gone.
    async fn restore(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError>;
    /// Rewrites a stopped node's arguments in its record (`edit` changes them in place) and
    /// returns them: how a subject re-makes a member, say with a fresh data dir. The next
    /// start runs the new arguments.
    async fn respec(
        &self,
        node: &str,
        _edit: &(dyn for<'a> Fn(&'a mut Vec<String>) + Send + Sync),
    ) -> Result<Vec<String>, RuntimeError> {
        Err(RuntimeError::Unsupported {
            what: format!("changing {node}'s arguments"),
            runtime: self.kind(),
            reason: "its nodes' commands are fixed when they are made".into(),
        })
    }
    /// How full `node`'s data volume is, where the runtime gives it a bounded one.
    async fn disk_usage(&self, _node: &str) -> Result<Option<DiskUsage>, RuntimeError> {
        Ok(None)
    }
    /// Node events as the runtime reports them (a death, a pause), for observers that want
    /// to look at once rather than at their next tick; `None` when the runtime has none.
    fn events(&self) -> Option<futures::stream::BoxStream<'static, NodeEvent>> {
        None
    }
    /// Where the agent's commands run, when not as local processes.
    fn sandbox(&self) -> Result<Option<Sandbox>, RuntimeError> {
        Ok(None)
    }
    /// How long node starts may take.
    fn startup_timeout(&self) -> Duration;
}
