//! The Docker runtime: each node a container on a private network per instance, through the
//! Engine API (bollard; never the docker CLI). Everything it makes carries the labels
//! `operator.subject`, `operator.instance` and `operator.owner` (containers also
//! `operator.node`), data sits on size-bounded tmpfs volumes, and each node's port is
//! published on 127.0.0.1 only, for the operator's own probes. No restart policy: a dead
//! container stays dead until someone starts it, as a local process does.

pub mod adopt;
pub mod api_proxy;
pub mod disk;
pub mod egress;
pub mod engine;
pub mod events;
mod faults;
pub mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, EndpointSettings, HostConfig,
    NetworkCreateRequest, NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures::StreamExt;
use tokio::sync::OnceCell;
use tracing::{info, instrument, warn};

use self::engine::{
    LABEL_INSTANCE, LABEL_NODE, LABEL_OWNER, LABEL_ROLE, LABEL_SUBJECT, engine_error, is_not_found,
};
use self::record::{ContainerRecord, DockerRecord};
use super::health::{Starting, wait_until_healthy};
use super::record::InstanceLock;
use super::{
    ClusterPlan, DownReport, Impairment, NodeAction, NodeFile, NodeSpec, NodeStatus,
    ROLE_FAULTPROXY, ROLE_TOOLBOX, RunState, Runtime, RuntimeError, TOOLBOX, Topology,
    TopologyNode, UpReport,
};
use crate::config::{DockerRuntimeConfig, Reach};
use crate::paths::StateDir;
use crate::runtime::proxy::token;

const LOCK_WAIT: Duration = Duration::from_secs(60);
/// Where the fault proxy's token appears inside its container.
const PROXY_TOKEN: &str = "/run/faultproxy/token";
/// The memory (bytes, swap included) and processes of the toolbox, where all the agent's
/// commands on Docker run.
const TOOLBOX_MEMORY: i64 = 1 << 30;
const TOOLBOX_PIDS: i64 = 256;

/// Where the filtering Docker API proxy's socket appears inside the toolbox.
pub const TOOLBOX_API_DIR: &str = "/run/operator";
/// Where a node's settings files are, in its container: the folder its program starts in.
pub const NODE_FILES_DIR: &str = "/run/operator-node";

pub struct DockerRuntime {
    state: StateDir,
    instance: u32,
    config: DockerRuntimeConfig,
    docker: OnceCell<Docker>,
    /// Whether the kernel offers `sch_netem` (asked once, of a throwaway namespace).
    netem: OnceCell<Result<(), String>>,
    /// Where each volume lives on the host, asked of the engine once: the monitor reads a
    /// node's disk every cycle, and a volume's mountpoint never moves.
    mountpoints: std::sync::Mutex<HashMap<String, PathBuf>>,
    record: super::record::Cached<DockerRecord>,
}

impl DockerRuntime {
    pub fn new(state: StateDir, instance: u32, config: DockerRuntimeConfig) -> Self {
        Self {
            state,
            instance,
            config,
            docker: OnceCell::new(),
            netem: OnceCell::new(),
            mountpoints: std::sync::Mutex::new(HashMap::new()),
            record: super::record::Cached::default(),
        }
    }

    /// The engine, connected on first use.
    pub async fn docker(&self) -> Result<&Docker, RuntimeError> {
        self.docker
            .get_or_try_init(|| async {
                engine::connect(&engine::engine_address(self.config.host.as_deref())).await
            })
            .await
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.state.instance(self.instance)
    }

    /// The folder bind-mounted into the toolbox, where the Docker API proxy's socket lives.
    pub fn api_dir(&self) -> PathBuf {
        DockerRecord::load(&self.dir())
            .ok()
            .flatten()
            .and_then(|r| r.api_dir)
            .unwrap_or_else(|| self.dir().join("docker-api"))
    }

    pub fn container_name(&self, node: &str) -> String {
        format!("operator-{}-{node}", self.instance)
    }

    fn network_name(&self) -> String {
        format!("operator-{}", self.instance)
    }

    fn volume_name(&self, node: &str) -> String {
        format!("operator-{}-{node}-data", self.instance)
    }

    /// Where the operator reaches a node: its port published on loopback, or its name on
    /// the instance's network (`runtime.docker.reach`); `None` for a node that serves nothing.
    pub fn reach(&self, node: &ContainerRecord) -> Option<String> {
        match self.config.reach {
            Reach::Loopback => node.host_address(),
            Reach::Network => (node.spec.port != 0).then(|| node.spec.address()),
        }
    }

    /// Whose labels this instance's things carry: the record's owner (an adopted cluster
    /// keeps the one it was started with), else this state dir's identity, made on first use.
    pub fn owner(&self) -> Result<String, RuntimeError> {
        if let Ok(Some(r)) = DockerRecord::load(&self.dir()) {
            return Ok(r.owner);
        }
        let path = self.state.root().join("owner");
        if let Ok(id) = std::fs::read_to_string(&path) {
            let id = id.trim().to_string();
            if !id.is_empty() {
                return Ok(id);
            }
        }
        std::fs::create_dir_all(self.state.root()).map_err(RuntimeError::io(format!(
            "creating {}",
            self.state.root().display()
        )))?;
        let id = format!("{:016x}", rand::random::<u64>());
        std::fs::write(&path, &id)
            .map_err(RuntimeError::io(format!("writing {}", path.display())))?;
        Ok(id)
    }

    /// The labels of everything this instance makes.
    pub fn labels(&self, subject: &str) -> Result<HashMap<String, String>, RuntimeError> {
        Ok(HashMap::from([
            (LABEL_SUBJECT.to_string(), subject.to_string()),
            (LABEL_INSTANCE.to_string(), self.instance.to_string()),
            (LABEL_OWNER.to_string(), self.owner()?),
        ]))
    }

    /// Filters that find exactly this instance's objects.
    fn ours(&self) -> Result<HashMap<String, Vec<String>>, RuntimeError> {
        Ok(HashMap::from([(
            "label".to_string(),
            engine::instance_labels(self.instance, &self.owner()?),
        )]))
    }

    pub(crate) async fn lock(&self) -> Result<InstanceLock, RuntimeError> {
        InstanceLock::acquire(&self.dir(), self.instance, LOCK_WAIT).await
    }

    fn load(&self) -> Result<DockerRecord, RuntimeError> {
        let dir = self.dir();
        self.record.get(&dir, || {
            DockerRecord::load(&dir)?.ok_or_else(|| RuntimeError::NotUp {
                instance: self.instance,
                dir: dir.clone(),
            })
        })
    }

    /// Whether the labels say `owner`'s instance made it.
    fn is_ours(&self, owner: &str, labels: Option<&HashMap<String, String>>) -> bool {
        labels.is_some_and(|l| {
            l.get(LABEL_INSTANCE) == Some(&self.instance.to_string())
                && l.get(LABEL_OWNER).map(String::as_str) == Some(owner)
        })
    }

    /// Refuses names taken by things we did not make; removes our own leftovers (from an
    /// `up` that died half way) and says so.
    async fn clear_the_way(
        &self,
        docker: &Docker,
        plan: &[NodeSpec],
        notes: &mut Vec<String>,
    ) -> Result<(), RuntimeError> {
        let owner = self.owner()?;
        for spec in plan {
            let name = self.container_name(&spec.name);
            match docker.inspect_container(&name, None).await {
                Ok(c)
                    if self.is_ours(&owner, c.config.as_ref().and_then(|c| c.labels.as_ref())) =>
                {
                    notes.push(format!("removed container {name}, left by an earlier run"));
                    self.remove_container(docker, &name).await?;
                }
                Ok(_) => {
                    return Err(RuntimeError::NameClash {
                        kind: "container",
                        name,
                    });
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine_error(format!("inspecting {name}"))(e)),
            }
            if spec.data_dir.is_some() {
                let vol = self.volume_name(&spec.name);
                match docker.inspect_volume(&vol).await {
                    Ok(v) if self.is_ours(&owner, Some(&v.labels)) => {
                        notes.push(format!("removed volume {vol}, left by an earlier run"));
                        let _ = docker
                            .remove_volume(
                                &vol,
                                None::<bollard::query_parameters::RemoveVolumeOptions>,
                            )
                            .await;
                    }
                    Ok(_) => {
                        return Err(RuntimeError::NameClash {
                            kind: "volume",
                            name: vol,
                        });
                    }
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => return Err(engine_error(format!("inspecting volume {vol}"))(e)),
                }
            }
        }
        let net = self.network_name();
        match docker.inspect_network(&net, None).await {
            Ok(n) if self.is_ours(&owner, n.labels.as_ref()) => {
                notes.push(format!("removed network {net}, left by an earlier run"));
                let _ = docker.remove_network(&net).await;
            }
            Ok(_) => {
                return Err(RuntimeError::NameClash {
                    kind: "network",
                    name: net,
                });
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(engine_error(format!("inspecting network {net}"))(e)),
        }
        Ok(())
    }

    async fn check_images(&self, docker: &Docker, plan: &[NodeSpec]) -> Result<(), RuntimeError> {
        let mut images: Vec<&str> = plan.iter().filter_map(|n| n.image.as_deref()).collect();
        images.push(&self.config.toolbox_image);
        images.sort_unstable();
        images.dedup();
        for image in images {
            match docker.inspect_image(image).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {
                    let hint = plan
                        .iter()
                        .find(|n| n.image.as_deref() == Some(image))
                        .and_then(|n| n.install_hint.as_deref());
                    return Err(RuntimeError::missing_image(image, hint));
                }
                Err(e) => return Err(engine_error(format!("inspecting image {image}"))(e)),
            }
        }
        Ok(())
    }

    async fn remove_container(&self, docker: &Docker, name: &str) -> Result<(), RuntimeError> {
        match docker
            .remove_container(
                name,
                Some(
                    RemoveContainerOptionsBuilder::default()
                        .force(true)
                        .v(true)
                        .build(),
                ),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(format!("removing {name}"))(e)),
        }
    }

    /// The toolbox: the agent's sandbox on the instance's network, with the folder where the
    /// operator serves its filtering Docker API proxy, and nothing else of the host.
    fn toolbox_spec(&self) -> NodeSpec {
        NodeSpec {
            install_hint: None,
            name: TOOLBOX.into(),
            role: ROLE_TOOLBOX.into(),
            host: TOOLBOX.into(),
            port: 0,
            program: "sleep".into(),
            args: vec!["infinity".into()],
            env: vec![(
                "DOCKER_HOST".into(),
                format!("unix://{TOOLBOX_API_DIR}/docker.sock"),
            )],
            health: super::HealthCheck::Running,
            client: None,
            image: Some(self.config.toolbox_image.clone()),
            data_dir: None,
            durable: false,
            files: Vec::new(),
        }
    }

    /// Where a node's settings files are kept on this machine, bound into its container.
    fn files_dir(&self, node: &str) -> PathBuf {
        self.dir().join("files").join(node)
    }

    fn create_body(
        &self,
        spec: &NodeSpec,
        host_port: Option<u16>,
        volume: Option<&str>,
        labels: &HashMap<String, String>,
    ) -> ContainerCreateBody {
        let mut labels = labels.clone();
        labels.insert(LABEL_NODE.into(), spec.name.clone());
        labels.insert(LABEL_ROLE.into(), spec.role.clone());
        let port_key = format!("{}/tcp", spec.port);
        let port_bindings = host_port.map(|hp| {
            HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(hp.to_string()),
                }]),
            )])
        });
        let mut binds = Vec::new();
        if let (Some(vol), Some(dir)) = (volume, &spec.data_dir) {
            binds.push(format!("{vol}:{dir}"));
        }
        if spec.role == ROLE_TOOLBOX {
            binds.push(format!("{}:{TOOLBOX_API_DIR}", self.api_dir().display()));
        }
        if spec.role == ROLE_FAULTPROXY {
            binds.push(format!(
                "{}:{PROXY_TOKEN}:ro",
                token::path(&self.dir()).display()
            ));
        }
        // Settings files, read-only, in the folder the program starts in.
        let working_dir = (!spec.files.is_empty()).then(|| {
            binds.push(format!(
                "{}:{NODE_FILES_DIR}:ro",
                self.files_dir(&spec.name).display()
            ));
            NODE_FILES_DIR.to_string()
        });
        let network = self.network_name();
        ContainerCreateBody {
            image: spec.image.clone(),
            working_dir,
            hostname: Some(spec.name.clone()),
            entrypoint: Some(vec![spec.program.display().to_string()]),
            cmd: Some(spec.args.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: host_port.map(|_| vec![port_key]),
            host_config: Some(HostConfig {
                port_bindings,
                binds: Some(binds),
                network_mode: Some(network.clone()),
                init: Some(true),
                // The agent's commands run here: bounded together, as the local sandbox
                // bounds each, so that a command cannot take the host's memory or fill its
                // process table.
                memory: (spec.role == ROLE_TOOLBOX).then_some(TOOLBOX_MEMORY),
                memory_swap: (spec.role == ROLE_TOOLBOX).then_some(TOOLBOX_MEMORY),
                pids_limit: (spec.role == ROLE_TOOLBOX).then_some(TOOLBOX_PIDS),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network,
                    EndpointSettings {
                        aliases: Some(vec![spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }

    /// Creates and starts one node and waits until it is healthy.
    #[instrument(skip_all, fields(node = %node.spec.name))]
    async fn start_new(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
        labels: &HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        if let Some(vol) = &node.volume {
            // A tmpfs is bounded but gone at every stop; a durable node's data goes on an
            // ext4 image of our own, else on the engine's disk (the subject bounds it then,
            // as etcd's backend quota does, and no fault fills it).
            let mut opts = if node.spec.durable {
                match self.bounded_disk(&node.spec.name).await {
                    Ok(device) => HashMap::from([
                        ("type".to_string(), "ext4".to_string()),
                        ("device".to_string(), device),
                    ]),
                    Err(why) => {
                        warn!(node = %node.spec.name, reason = %why, "its volume is on the engine's disk, unbounded");
                        HashMap::new()
                    }
                }
            } else {
                HashMap::from([
                    ("type".to_string(), "tmpfs".to_string()),
                    ("device".to_string(), "tmpfs".to_string()),
                    (
                        "o".to_string(),
                        format!("size={},mode=1777", self.config.volume_size),
                    ),
                ])
            };
            opts.retain(|_, v| !v.is_empty());
            let bounded_disk = opts.get("type").map(String::as_str) == Some("ext4");
            docker
                .create_volume(VolumeCreateRequest {
                    name: Some(vol.clone()),
                    driver: Some("local".into()),
                    driver_opts: Some(opts),
                    labels: Some(labels.clone()),
                    ..Default::default()
                })
                .await
                .map_err(engine_error(format!("creating volume {vol}")))?;
            if bounded_disk {
                self.own_disk(docker, node, vol, labels).await?;
            }
        }
        NodeFile::write_all(&node.spec, &self.files_dir(&node.spec.name))?;
        let image = node.spec.image.clone().unwrap_or_default();
        docker
            .create_container(
                Some(engine::named(&node.container)),
                self.create_body(&node.spec, node.host_port, node.volume.as_deref(), labels),
            )
            .await
            .map_err(|e| {
                engine::missing_image_or(&image, e, &format!("creating {}", node.container))
            })?;
        self.start_existing(docker, node).await
    }

    /// A fresh bounded disk for `node`'s durable volume: its loop device.
    async fn bounded_disk(&self, node: &str) -> Result<String, String> {
        if let Some(why) = disk::unavailable(&engine::engine_address(self.config.host.as_deref())) {
            return Err(why);
        }
        let bytes = crate::config::size_in_bytes(&self.config.durable_volume_size)
            .ok_or_else(|| format!("`{}` is not a size", self.config.durable_volume_size))?;
        let image = disk::image_path(&self.dir(), node);
        tokio::task::spawn_blocking(move || disk::make(&image, bytes))
            .await
            .map_err(|e| e.to_string())?
    }

    /// A fresh file system's root is root's: give it the owner and mode the node's image
    /// gives its data folder (etcd runs as its own user), as the engine does when it fills
    /// an empty volume from the image.
    async fn own_disk(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
        volume: &str,
        labels: &HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let (Some(image), Some(dir)) = (&node.spec.image, &node.spec.data_dir) else {
            return Ok(());
        };
        let out = engine::run_helper(
            docker,
            engine::Helper {
                image,
                script: format!(
                    "set -e\nchown \"$(stat -c %u:%g {dir})\" /operator-volume\nchmod \"$(stat -c %a {dir})\" /operator-volume"
                ),
                network_mode: Some("none".into()),
                cap_add: vec![],
                binds: vec![format!("{volume}:/operator-volume")],
                labels: labels.clone(),
            },
        )
        .await?;
        if out.exit_code != 0 {
            return Err(RuntimeError::Engine {
                message: format!(
                    "giving {volume} the owner of {dir} in {image} failed: {}",
                    out.output.trim()
                ),
            });
        }
        Ok(())
    }

    /// The loop device under `node`'s volume, if it is one of our bounded disks.
    async fn loop_device(&self, docker: &Docker, node: &ContainerRecord) -> Option<String> {
        let v = docker.inspect_volume(node.volume.as_deref()?).await.ok()?;
        let device = v.options.get("device")?;
        (v.options.get("type").map(String::as_str) == Some("ext4")
            && device.starts_with("/dev/loop"))
        .then(|| device.clone())
    }

    /// Attaches a bounded disk's image to its loop device again if it is not (after a
    /// reboot), so that the engine can mount the volume when the node starts.
    async fn attach_disk(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
    ) -> Result<(), RuntimeError> {
        let Some(device) = self.loop_device(docker, node).await else {
            return Ok(());
        };
        let image = disk::image_path(&self.dir(), &node.spec.name);
        let attached = tokio::task::spawn_blocking(move || disk::attach(&image, &device))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r)
            .map_err(|message| RuntimeError::Engine {
                message: format!("{}'s volume: {message}", node.spec.name),
            })?;
        if attached {
            info!(node = %node.spec.name, "attached its volume's image again");
        }
        Ok(())
    }

    /// Starts a created or stopped container and waits until it is healthy.
    async fn start_existing(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
    ) -> Result<(), RuntimeError> {
        self.attach_disk(docker, node).await?;
        docker
            .start_container(&node.container, None)
            .await
            .map_err(engine_error(format!("starting {}", node.container)))?;
        // Its network namespace is new: its way out is closed again before anything runs.
        if node.spec.role == ROLE_TOOLBOX {
            if let Ok(record) = self.load() {
                egress::confine(self, docker, &record, node).await;
            }
        }
        let node = self.refresh_port(docker, node).await?;
        self.wait_healthy(docker, &node).await
    }

    /// A container published on a port the engine picks (compose's `127.0.0.1::8000`) gets
    /// a new one each start: the record follows it. Ports `up` chose stay as they are.
    async fn refresh_port(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
    ) -> Result<ContainerRecord, RuntimeError> {
        let mut record = self.load()?;
        if !record.adopted || node.spec.port == 0 {
            return Ok(node.clone());
        }
        let inspected = docker
            .inspect_container(&node.container, None)
            .await
            .map_err(engine_error(format!("inspecting {}", node.container)))?;
        let port = inspected
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|p| p.get(&format!("{}/tcp", node.spec.port)).cloned())
            .flatten()
            .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse().ok()));
        let Some(entry) = record
            .nodes
            .iter_mut()
            .find(|n| n.spec.name == node.spec.name)
        else {
            return Ok(node.clone());
        };
        if entry.host_port != port {
            entry.host_port = port;
            let updated = entry.clone();
            record.save(&self.dir())?;
            return Ok(updated);
        }
        Ok(node.clone())
    }

    async fn wait_healthy(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
    ) -> Result<(), RuntimeError> {
        let look = || async {
            match self.state_of(docker, &node.container).await {
                Err(e) => Starting::Waiting(e.to_string()),
                Ok((RunState::Exited, _, _)) => Starting::Gone("the container exited".into()),
                Ok((state @ RunState::Paused, _, _)) => {
                    Starting::Waiting(format!("the container is {}", state.as_str()))
                }
                Ok((RunState::Running, _, _)) => match self.reach(node) {
                    None => Starting::Healthy,
                    Some(address) => match node
                        .spec
                        .health
                        .probe(&address, Duration::from_millis(500))
                        .await
                    {
                        Ok(()) => {
                            info!(container = %node.container, %address, "node healthy");
                            Starting::Healthy
                        }
                        Err(e) => Starting::Waiting(e),
                    },
                },
            }
        };
        let Err(last) = wait_until_healthy(
            self.config.startup_timeout,
            Duration::from_millis(100),
            look,
        )
        .await
        else {
            return Ok(());
        };
        Err(RuntimeError::StartFailed {
            node: node.spec.name.clone(),
            reason: last,
            log: PathBuf::from(format!("docker logs {}", node.container)),
            log_tail: self
                .tail(docker, &node.container, 15)
                .await
                .unwrap_or_default(),
        })
    }

    /// The container's state, pid and start time; a removed container counts as exited.
    async fn state_of(
        &self,
        docker: &Docker,
        container: &str,
    ) -> Result<(RunState, Option<u32>, Option<crate::clock::Timestamp>), RuntimeError> {
        let c = match docker.inspect_container(container, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Ok((RunState::Exited, None, None)),
            Err(e) => return Err(engine_error(format!("inspecting {container}"))(e)),
        };
        let s = c.state.unwrap_or_default();
        let state = match s.status {
            Some(ContainerStateStatusEnum::RUNNING | ContainerStateStatusEnum::RESTARTING) => {
                RunState::Running
            }
            Some(ContainerStateStatusEnum::PAUSED) => RunState::Paused,
            _ => RunState::Exited,
        };
        let pid = s
            .pid
            .filter(|p| *p > 0 && state != RunState::Exited)
            .and_then(|p| u32::try_from(p).ok());
        let started = s
            .started_at
            .filter(|_| state != RunState::Exited)
            .and_then(|t| crate::clock::parse(&t).ok());
        Ok((state, pid, started))
    }

    async fn tail(
        &self,
        docker: &Docker,
        container: &str,
        lines: usize,
    ) -> Result<String, RuntimeError> {
        let logs = docker.logs(
            container,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .tail(&lines.to_string())
                    .build(),
            ),
        );
        let chunks: Vec<Result<String, RuntimeError>> = logs
            .map(|l| {
                l.map(|l| l.to_string())
                    .map_err(engine_error(format!("reading the logs of {container}")))
            })
            .collect()
            .await;
        let text: String = chunks.into_iter().collect::<Result<Vec<_>, _>>()?.concat();
        Ok(text.trim_end().to_string())
    }

    async fn status_of(
        &self,
        docker: &Docker,
        node: &ContainerRecord,
    ) -> Result<NodeStatus, RuntimeError> {
        let (state, pid, started_at) = self.state_of(docker, &node.container).await?;
        let healthy = match (state, self.reach(node)) {
            (RunState::Running, Some(a)) => Some(
                node.spec
                    .health
                    .probe(&a, Duration::from_millis(300))
                    .await
                    .is_ok(),
            ),
            (RunState::Running, None) => Some(true),
            _ => None,
        };
        Ok(NodeStatus {
            name: node.spec.name.clone(),
            role: node.spec.role.clone(),
            state,
            pid,
            address: self.reach(node).unwrap_or_else(|| node.spec.address()),
            log: PathBuf::from(format!("docker logs {}", node.container)),
            started_at,
            healthy,
        })
    }

    /// Removes every container, volume and network of this instance that carries our
    /// labels (whether or not the record knows it), and nothing else.
    async fn sweep(&self, docker: &Docker) -> Result<Vec<String>, RuntimeError> {
        let mut removed = Vec::new();
        let containers = engine::containers_of(docker, self.instance, &self.owner()?)
            .await
            .map_err(engine_error("listing this instance's containers"))?;
        for c in containers {
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            if let Some(id) = c.id {
                self.remove_container(docker, &id).await?;
                removed.push(name);
            }
        }
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&self.ours()?)
                    .build(),
            ))
            .await
            .map_err(engine_error("listing this instance's volumes"))?;
        for v in volumes.volumes.unwrap_or_default() {
            match docker
                .remove_volume(
                    &v.name,
                    Some(RemoveVolumeOptionsBuilder::default().force(true).build()),
                )
                .await
            {
                Ok(()) => removed.push(format!("volume {}", v.name)),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine_error(format!("removing volume {}", v.name))(e)),
            }
        }
        let images = self.dir().join("volumes");
        let detached = tokio::task::spawn_blocking(move || disk::remove_all(&images))
            .await
            .unwrap_or_default();
        removed.extend(detached.into_iter().map(|d| format!("loop device {d}")));
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&self.ours()?)
                    .build(),
            ))
            .await
            .map_err(engine_error("listing this instance's networks"))?;
        for n in networks {
            let Some(name) = n.name else { continue };
            match docker.remove_network(&name).await {
                Ok(()) => removed.push(format!("network {name}")),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(engine_error(format!("removing network {name}"))(e)),
            }
        }
        Ok(removed)
    }

    async fn wait_state(
        &self,
        docker: &Docker,
        container: &str,
        want: RunState,
    ) -> Result<(), RuntimeError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if self.state_of(docker, container).await?.0 == want {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RuntimeError::WrongState {
                    node: container.into(),
                    message: format!("did not become {} in time", want.as_str()),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn wrong_state(node: &str, message: impl Into<String>) -> RuntimeError {
        RuntimeError::WrongState {
            node: node.into(),
            message: message.into(),
        }
    }

    /// Bytes used and size of a node's data volume: from the volume's mount on this machine
    /// when the engine is local (free), else by `df` inside the node's container.
    pub async fn disk_of(&self, node: &str) -> Result<Option<super::DiskUsage>, RuntimeError> {
        let record = self.load()?;
        let n = record.node(node)?;
        let (Some(dir), Some(volume)) = (&n.spec.data_dir, &n.volume) else {
            return Ok(None);
        };
        let docker = self.docker().await?;
        // Volumes may be out of reach (through the agent's proxy): then `df` it is.
        if let Some(at) = self.mountpoint(docker, volume).await {
            if let Some(usage) = mounted_usage(&at) {
                return Ok(Some(usage));
            }
        }
        // A durable volume is either our ext4 image, mounted on this machine while its node
        // runs, or a folder on the engine's disk, which is not the node's to fill: `df` in
        // the container would measure that disk.
        if n.spec.durable {
            return Ok(None);
        }
        let out = faults::exec(
            docker,
            &n.container,
            &["df", "-B1", "--output=size,used", dir],
        )
        .await?;
        Ok(faults::parse_df(&out))
    }
}

impl DockerRuntime {
    async fn mountpoint(&self, docker: &Docker, volume: &str) -> Option<PathBuf> {
        let known = self
            .mountpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(volume)
            .cloned();
        if known.is_some() {
            return known;
        }
        let at = PathBuf::from(docker.inspect_volume(volume).await.ok()?.mountpoint);
        self.mountpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(volume.to_string(), at.clone());
        Some(at)
    }
}

/// The usage of the file system mounted at `path`, if one is: the engine mounts a volume's
/// tmpfs or disk only while a container uses it; otherwise `path` is a plain folder on the
/// host's disk, on the same device as its parent.
fn mounted_usage(path: &Path) -> Option<super::DiskUsage> {
    use std::os::unix::fs::MetadataExt;
    let here = std::fs::metadata(path).ok()?.dev();
    let parent = std::fs::metadata(path.parent()?).ok()?.dev();
    if here == parent {
        return None;
    }
    let v = nix::sys::statvfs::statvfs(path).ok()?;
    let frag = v.fragment_size() as u64;
    Some(super::DiskUsage {
        size_bytes: v.blocks() as u64 * frag,
        used_bytes: (v.blocks() as u64).saturating_sub(v.blocks_free() as u64) * frag,
    })
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn kind(&self) -> &'static str {
        "docker"
    }

    fn instance(&self) -> u32 {
        self.instance
    }

    fn instance_dir(&self) -> PathBuf {
        self.dir()
    }

    fn allocate_ports(&self, names: &[&str]) -> Result<Vec<u16>, RuntimeError> {
        super::local::ports::allocate("127.0.0.1", names, None, self.instance)
    }

    fn startup_timeout(&self) -> Duration {
        self.config.startup_timeout
    }

    #[instrument(skip_all, fields(instance = self.instance, subject = %plan.subject))]
    async fn check_plan(&self, plan: &ClusterPlan) -> Result<(), RuntimeError> {
        let docker = self.docker().await?;
        self.check_images(docker, &plan.nodes).await
    }

    async fn up(&self, plan: ClusterPlan) -> Result<UpReport, RuntimeError> {
        let docker = self.docker().await?;
        let _lock = self.lock().await?;
        let dir = self.dir();
        let mut notes = Vec::new();
        if let Some(old) = DockerRecord::load(&dir)? {
            let mut running = Vec::new();
            let mut stopped = Vec::new();
            for n in &old.nodes {
                match self.state_of(docker, &n.container).await?.0 {
                    RunState::Exited => stopped.push(n.spec.name.clone()),
                    _ => running.push(n.spec.name.clone()),
                }
            }
            if stopped.is_empty() {
                return Err(RuntimeError::AlreadyUp {
                    instance: self.instance,
                    running: running.join(", "),
                });
            }
            if !running.is_empty() {
                return Err(RuntimeError::PartlyUp {
                    instance: self.instance,
                    running: running.join(", "),
                    stopped: stopped.join(", "),
                });
            }
            for r in self.sweep(docker).await? {
                notes.push(format!("removed {r}, left by an earlier run"));
            }
        } else if super::record::recorded_runtime(&dir).is_some() {
            return Err(RuntimeError::BadRecord {
                path: dir.join(super::record::RECORD_FILE),
                message: "the instance runs on another runtime; `operator down` it first".into(),
            });
        }
        let mut specs = plan.nodes;
        specs.push(self.toolbox_spec());
        // The fault proxy's control token, mounted into it alone: the agent's toolbox shares
        // its network but cannot read the token, so cannot change toxics.
        token::create(&dir).map_err(RuntimeError::io("writing the fault proxy's token"))?;
        for spec in &mut specs {
            token::require(spec, PROXY_TOKEN);
        }
        self.check_images(docker, &specs).await?;
        self.clear_the_way(docker, &specs, &mut notes).await?;
        let labels = self.labels(&plan.subject)?;
        let network = self.network_name();
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                ..Default::default()
            })
            .await
            .map_err(engine_error(format!("creating network {network}")))?;
        std::fs::create_dir_all(self.api_dir()).map_err(RuntimeError::io(format!(
            "creating {}",
            self.api_dir().display()
        )))?;
        let published: Vec<&str> = specs
            .iter()
            .filter(|s| s.port != 0)
            .map(|s| s.name.as_str())
            .collect();
        let mut ports = self.allocate_ports(&published)?.into_iter();
        let nodes = specs
            .iter()
            .map(|spec| ContainerRecord {
                container: self.container_name(&spec.name),
                host_port: if spec.port != 0 { ports.next() } else { None },
                volume: spec.data_dir.as_ref().map(|_| self.volume_name(&spec.name)),
                spec: spec.clone(),
            })
            .collect();
        let record = DockerRecord {
            version: DockerRecord::version(),
            subject: plan.subject.clone(),
            instance: self.instance,
            runtime: "docker".into(),
            owner: self.owner()?,
            network,
            created_at: crate::clock::now(),
            nodes,
            adopted: false,
            api_dir: None,
        };
        // Record first: if this process dies half way, `down` still finds what was made.
        record.save(&dir)?;
        let mut statuses = Vec::new();
        for node in &record.nodes {
            if let Err(e) = self.start_new(docker, node, &labels).await {
                warn!(error = %e, node = %node.spec.name, "start failed; removing what was made");
                let _ = self.sweep(docker).await;
                let _ = std::fs::remove_file(dir.join(super::record::RECORD_FILE));
                return Err(e);
            }
            statuses.push(self.status_of(docker, node).await?);
        }
        Ok(UpReport {
            nodes: statuses,
            notes,
        })
    }

    #[instrument(skip_all, fields(instance = self.instance))]
    async fn down(&self) -> Result<DownReport, RuntimeError> {
        let docker = self.docker().await?;
        let _lock = self.lock().await?;
        let record = self.load()?;
        let mut report = DownReport::default();
        let dir = self.dir();
        if record.adopted {
            // Not ours to remove: let go of it, and say who stops it.
            let _ = std::fs::remove_dir_all(&dir);
            token::remove(&dir);
            report.removed.push(dir);
            report.notes.push(format!(
                "instance {} was adopted, not started here: its containers run on; stop them where they were started (docker compose -f compose/ratelimiter.yml down)",
                self.instance
            ));
            return Ok(report);
        }
        // Stop gracefully first (limiters deregister on SIGTERM), then remove. One at a time:
        // engines before 20.10.27 can deadlock their network controller when containers leave
        // one network at once as it empties (moby/moby#46661), and then answer nothing more.
        for n in record.nodes.iter().rev() {
            let state = self.state_of(docker, &n.container).await.map(|s| s.0);
            if matches!(state, Ok(RunState::Paused)) {
                let _ = docker.unpause_container(&n.container).await;
            }
            if matches!(state, Ok(RunState::Running | RunState::Paused)) {
                let t = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(5);
                let _ = docker
                    .stop_container(
                        &n.container,
                        Some(StopContainerOptionsBuilder::default().t(t).build()),
                    )
                    .await;
                report.stopped.push(n.spec.name.clone());
            }
        }
        self.sweep(docker).await?;
        let _ = std::fs::remove_dir_all(self.api_dir());
        let _ = std::fs::remove_file(dir.join(super::record::RECORD_FILE));
        std::fs::remove_dir_all(&dir)
            .map_err(RuntimeError::io(format!("removing {}", dir.display())))?;
        token::remove(&dir);
        report.removed.push(dir);
        Ok(report)
    }

    async fn status(&self) -> Result<Vec<NodeStatus>, RuntimeError> {
        let record = self.load()?;
        let docker = self.docker().await?;
        let all = record.nodes.iter().map(|n| self.status_of(docker, n));
        futures::future::join_all(all).await.into_iter().collect()
    }

    #[instrument(skip_all, fields(instance = self.instance, node = name, action = action.as_str()))]
    async fn act(&self, name: &str, action: NodeAction) -> Result<NodeStatus, RuntimeError> {
        let docker = self.docker().await?;
        let _lock = self.lock().await?;
        let record = self.load()?;
        let node = record.node(name)?;
        let c = &node.container;
        let (state, _, _) = self.state_of(docker, c).await?;
        let t = i32::try_from(self.config.stop_timeout.as_secs()).unwrap_or(5);
        match (action, state) {
            (NodeAction::Start, RunState::Exited) => self.start_existing(docker, node).await?,
            (NodeAction::Start, s) => {
                return Err(Self::wrong_state(
                    name,
                    format!("is already {}", s.as_str()),
                ));
            }
            (NodeAction::Stop | NodeAction::Kill | NodeAction::Pause, RunState::Exited) => {
                return Err(Self::wrong_state(name, "is already down (not running)"));
            }
            (NodeAction::Stop, s) => {
                if s == RunState::Paused {
                    docker
                        .unpause_container(c)
                        .await
                        .map_err(engine_error(format!("unpausing {c}")))?;
                }
                docker
                    .stop_container(c, Some(StopContainerOptionsBuilder::default().t(t).build()))
                    .await
                    .map_err(engine_error(format!("stopping {c}")))?;
            }
            (NodeAction::Restart, s) => {
                if s == RunState::Paused {
                    docker
                        .unpause_container(c)
                        .await
                        .map_err(engine_error(format!("unpausing {c}")))?;
                }
                if s != RunState::Exited {
                    docker
                        .stop_container(
                            c,
                            Some(StopContainerOptionsBuilder::default().t(t).build()),
                        )
                        .await
                        .map_err(engine_error(format!("stopping {c}")))?;
                }
                self.start_existing(docker, node).await?;
            }
            (NodeAction::Kill, _) => {
                docker
                    .kill_container(
                        c,
                        Some(
                            KillContainerOptionsBuilder::default()
                                .signal("SIGKILL")
                                .build(),
                        ),
                    )
                    .await
                    .map_err(engine_error(format!("killing {c}")))?;
                self.wait_state(docker, c, RunState::Exited).await?;
            }
            (NodeAction::Pause, RunState::Paused) => {
                return Err(Self::wrong_state(name, "is already paused"));
            }
            (NodeAction::Pause, _) => {
                docker
                    .pause_container(c)
                    .await
                    .map_err(engine_error(format!("pausing {c}")))?;
                self.wait_state(docker, c, RunState::Paused).await?;
            }
            (NodeAction::Resume, RunState::Paused) => {
                docker
                    .unpause_container(c)
                    .await
                    .map_err(engine_error(format!("unpausing {c}")))?;
                self.wait_state(docker, c, RunState::Running).await?;
            }
            (NodeAction::Resume, s) => {
                return Err(Self::wrong_state(
                    name,
                    format!("is not paused (it is {})", s.as_str()),
                ));
            }
        }
        // The record may have followed a new port.
        let record = self.load()?;
        self.status_of(docker, record.node(name)?).await
    }

    /// A container's command is fixed when it is made: a new one replaces it, on the same
    /// volume, network, name and port, and starts at the next `start`.
    #[instrument(skip_all, fields(instance = self.instance, node = name))]
    async fn respec(
        &self,
        name: &str,
        edit: &(dyn for<'a> Fn(&'a mut Vec<String>) + Send + Sync),
    ) -> Result<Vec<String>, RuntimeError> {
        let docker = self.docker().await?;
        let _lock = self.lock().await?;
        let mut record = self.load()?;
        if record.adopted {
            return Err(RuntimeError::Unsupported {
                what: format!("changing {name}'s arguments"),
                runtime: "docker",
                reason: "the instance was adopted: its containers are its compose file's".into(),
            });
        }
        let labels = self.labels(&record.subject)?;
        let node = record.node_mut(name)?;
        let (state, _, _) = self.state_of(docker, &node.container).await?;
        if state != RunState::Exited {
            return Err(Self::wrong_state(
                name,
                "is running: stop it before changing its arguments",
            ));
        }
        let before = node.spec.args.clone();
        edit(&mut node.spec.args);
        if node.spec.args == before {
            // Only read: the container stays as it is.
            return Ok(before);
        }
        let node = node.clone();
        self.remove_container(docker, &node.container).await?;
        let create = |spec: &NodeSpec| {
            docker.create_container(
                Some(engine::named(&node.container)),
                self.create_body(spec, node.host_port, node.volume.as_deref(), &labels),
            )
        };
        if let Err(e) = create(&node.spec).await {
            // Put the node back as it was, so that the record still describes it.
            let mut old = node.spec.clone();
            old.args = before;
            if let Err(again) = create(&old).await {
                warn!(error = %again, node = name, "could not re-make the container as it was");
            }
            let image = node.spec.image.clone().unwrap_or_default();
            return Err(engine::missing_image_or(
                &image,
                e,
                &format!("re-creating {}", node.container),
            ));
        }
        record.save(&self.dir())?;
        Ok(node.spec.args)
    }

    async fn logs(&self, name: &str, lines: usize) -> Result<String, RuntimeError> {
        let record = self.load()?;
        let node = record.node(name)?;
        self.tail(self.docker().await?, &node.container, lines)
            .await
    }

    fn topology(&self) -> Result<Topology, RuntimeError> {
        let record = self.load()?;
        Ok(Topology {
            subject: record.subject.clone(),
            instance: record.instance,
            runtime: "docker".into(),
            nodes: record
                .nodes
                .iter()
                .map(|n| TopologyNode {
                    name: n.spec.name.clone(),
                    role: n.spec.role.clone(),
                    address: self.reach(n).unwrap_or_else(|| n.spec.address()),
                    client: None,
                    advertised: Some(n.spec.address()),
                })
                .collect(),
        })
    }

    async fn mechanism(&self, imp: &Impairment) -> Result<String, String> {
        faults::mechanism(self, imp).await
    }

    async fn impair(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        faults::impair(self, target, imp, tag).await
    }

    async fn restore(
        &self,
        target: &str,
        imp: &Impairment,
        tag: &str,
    ) -> Result<String, RuntimeError> {
        faults::restore(self, target, imp, tag).await
    }

    async fn disk_usage(&self, node: &str) -> Result<Option<super::DiskUsage>, RuntimeError> {
        self.disk_of(node).await
    }

    fn sandbox(&self) -> Result<Option<super::Sandbox>, RuntimeError> {
        Ok(Some(super::Sandbox {
            engine: engine::engine_address(self.config.host.as_deref()),
            container: self.container_name(TOOLBOX),
            api_dir: self.api_dir(),
            api_dir_inside: TOOLBOX_API_DIR.into(),
            instance: self.instance,
            owner: self.owner()?,
            egress_open: egress::open_because(&self.dir()),
        }))
    }

    fn events(&self) -> Option<futures::stream::BoxStream<'static, super::NodeEvent>> {
        if !self.config.events {
            return None;
        }
        let owner = self.owner().ok()?;
        Some(events::stream(
            engine::engine_address(self.config.host.as_deref()),
            self.instance,
            owner,
        ))
    }
}
