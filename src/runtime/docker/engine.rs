//! The Docker engine, through bollard: connecting (with version negotiation, as engines
//! older than bollard's API speak an older dialect), errors in words a person can act on,
//! and the short-lived helper containers that network and disk faults run in.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use tracing::{debug, instrument};

use crate::runtime::RuntimeError;

/// Labels on everything the Docker runtime makes.
pub const LABEL_SUBJECT: &str = "operator.subject";
pub const LABEL_INSTANCE: &str = "operator.instance";
pub const LABEL_NODE: &str = "operator.node";
pub const LABEL_ROLE: &str = "operator.role";
/// Which state dir made it: two state dirs on one engine never touch each other's things.
pub const LABEL_OWNER: &str = "operator.owner";
/// A short-lived fault helper.
pub const LABEL_HELPER: &str = "operator.helper";

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// The label selectors of one instance of one state dir: they match exactly what it made.
pub fn instance_labels(instance: u32, owner: &str) -> Vec<String> {
    vec![
        format!("{LABEL_INSTANCE}={instance}"),
        format!("{LABEL_OWNER}={owner}"),
    ]
}

/// Every container, running or not, of one instance of one state dir.
pub async fn containers_of(
    docker: &Docker,
    instance: u32,
    owner: &str,
) -> Result<Vec<bollard::models::ContainerSummary>, DockerError> {
    let filters = HashMap::from([("label".to_string(), instance_labels(instance, owner))]);
    docker
        .list_containers(Some(
            bollard::query_parameters::ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
}

/// Where the engine is: as configured, else `DOCKER_HOST`, else the local socket.
pub fn engine_address(configured: Option<&str>) -> String {
    configured
        .map(str::to_string)
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string())
}

/// Connects and agrees on an API version with the engine.
pub async fn connect(address: &str) -> Result<Docker, RuntimeError> {
    let unreachable = |why: String| RuntimeError::Engine {
        message: format!(
            "no Docker engine answers at {address}: {why}. Start the engine (or set \
             `runtime.docker.host` / DOCKER_HOST), or use the local runtime: `--runtime local`"
        ),
    };
    let docker = if let Some(rest) = address.strip_prefix("tcp://") {
        Docker::connect_with_http(&format!("http://{rest}"), 120, bollard::API_DEFAULT_VERSION)
    } else if address.starts_with("http://") {
        Docker::connect_with_http(address, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_socket(address, 120, bollard::API_DEFAULT_VERSION)
    }
    .map_err(|e| unreachable(e.to_string()))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable(describe(&e)))
}

/// The engine's own message when it gave one, else the error.
pub fn describe(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => format!("the engine said {status_code}: {message}"),
        other => crate::runtime::health::error_chain(other),
    }
}

pub fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

/// An engine error, with what was being done.
pub fn engine_error(doing: impl Into<String>) -> impl FnOnce(DockerError) -> RuntimeError {
    let doing = doing.into();
    move |e| RuntimeError::Engine {
        message: format!("{doing}: {}", describe(&e)),
    }
}

/// A fault helper: a container that runs one script and is removed.
pub struct Helper<'a> {
    pub image: &'a str,
    pub script: String,
    /// `container:<id>` to share a target's network namespace.
    pub network_mode: Option<String>,
    pub cap_add: Vec<String>,
    /// Docker volume mounts, `volume:/path`.
    pub binds: Vec<String>,
    pub labels: HashMap<String, String>,
}

impl Helper<'_> {
    /// Whom the script runs as: root, whatever the image's own `USER` (a node's image is
    /// used to read how it wants its data folder owned).
    const USER: &'static str = "0";
}

/// What a helper printed and how it ended.
#[derive(Debug)]
pub struct HelperOutput {
    pub exit_code: i64,
    pub output: String,
}

/// Runs `helper` to completion and removes it, whatever happens.
#[instrument(skip_all, fields(network = ?helper.network_mode))]
pub async fn run_helper(docker: &Docker, helper: Helper<'_>) -> Result<HelperOutput, RuntimeError> {
    let mut labels = helper.labels;
    labels.insert(LABEL_HELPER.into(), "true".into());
    let body = ContainerCreateBody {
        image: Some(helper.image.to_string()),
        user: Some(Helper::USER.into()),
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        cmd: Some(vec![helper.script]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: helper.network_mode,
            cap_add: Some(helper.cap_add),
            binds: Some(helper.binds),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map_err(|e| missing_image_or(helper.image, e, "creating a fault helper"))?;
    let id = created.id;
    let result = async {
        docker
            .start_container(&id, None)
            .await
            .map_err(engine_error("starting a fault helper"))?;
        let mut wait =
            docker.wait_container(&id, Some(WaitContainerOptionsBuilder::default().build()));
        let exit_code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // A non-zero exit arrives as an error carrying the code.
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(engine_error("waiting for a fault helper")(e)),
            None => -1,
        };
        let logs = docker.logs(
            &id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        );
        let output: Vec<String> = logs
            .filter_map(|l| async move { l.ok().map(|l| l.to_string()) })
            .collect()
            .await;
        Ok(HelperOutput {
            exit_code,
            output: output.concat(),
        })
    }
    .await;
    let _ = docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await;
    debug!(?result, "helper done");
    result
}

/// A create that failed for want of an image says how to build it.
pub fn missing_image_or(image: &str, e: DockerError, doing: &str) -> RuntimeError {
    if is_not_found(&e) && describe(&e).contains("image") {
        RuntimeError::missing_image(image, None)
    } else {
        engine_error(doing)(e)
    }
}

/// Create options that name the container.
pub fn named(name: &str) -> bollard::query_parameters::CreateContainerOptions {
    CreateContainerOptionsBuilder::default().name(name).build()
}
