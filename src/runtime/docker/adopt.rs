//! Taking over a cluster that someone else started with the operator's labels — `docker
//! compose -f compose/ratelimiter.yml up` — so that every command works on it: its record is
//! written from what the engine says of its containers. `down` then lets go of it rather
//! than removing what it did not make.

use tracing::instrument;

use super::DockerRuntime;
use super::engine::{
    LABEL_INSTANCE, LABEL_NODE, LABEL_OWNER, LABEL_ROLE, LABEL_SUBJECT, engine_error,
};
use super::record::{ContainerRecord, DockerRecord};
use crate::runtime::{HealthCheck, NodeSpec, ROLE_FAULTPROXY, ROLE_TOOLBOX, RuntimeError, record};

/// The port a node serves, for containers not made by `up` (compose sets it).
pub const LABEL_PORT: &str = "operator.port";
/// The folder its data volume is mounted at.
pub const LABEL_DATA: &str = "operator.data";

/// What the subject says of a node of `role` it would have planned: its health check and its
/// place in the start order; `None`: a node served over HTTP. The caller looks the subject
/// (named by the containers' labels) up.
pub type AdoptedRole<'a> = &'a (dyn Fn(&str, &str) -> Option<(HealthCheck, u8)> + Sync);

/// How a node of `role` is checked, and its place in the start order: what `up` would have
/// planned for it (the subject says, for its own roles).
fn planned(roles: AdoptedRole<'_>, subject: Option<&str>, role: &str) -> (HealthCheck, u8) {
    match role {
        ROLE_FAULTPROXY => (
            HealthCheck::Http {
                path: "/health".into(),
            },
            1,
        ),
        ROLE_TOOLBOX => (HealthCheck::Running, 3),
        _ => subject.and_then(|s| roles(s, role)).unwrap_or((
            HealthCheck::Http {
                path: "/health".into(),
            },
            2,
        )),
    }
}

#[instrument(skip(rt, roles), fields(instance = rt.instance))]
pub async fn adopt(
    rt: &DockerRuntime,
    owner: &str,
    roles: AdoptedRole<'_>,
) -> Result<DockerRecord, RuntimeError> {
    let docker = rt.docker().await?;
    let _lock = rt.lock().await?;
    let dir = rt.dir();
    if let Some(runtime) = record::recorded_runtime(&dir) {
        return Err(RuntimeError::AlreadyUp {
            instance: rt.instance,
            running: format!("recorded on the {runtime} runtime"),
        });
    }
    let listed = super::engine::containers_of(docker, rt.instance, owner)
        .await
        .map_err(engine_error("listing containers to adopt"))?;
    if listed.is_empty() {
        return Err(RuntimeError::Engine {
            message: format!(
                "no container labelled {LABEL_INSTANCE}={} and {LABEL_OWNER}={owner} to adopt; start one with `OPERATOR_INSTANCE={} docker compose -f compose/ratelimiter.yml up -d`",
                rt.instance, rt.instance
            ),
        });
    }
    let mut subject = None;
    let mut network = None;
    let mut api_dir = None;
    let mut nodes = Vec::new();
    for c in listed {
        let Some(id) = c.id else { continue };
        let inspected = docker
            .inspect_container(&id, None)
            .await
            .map_err(engine_error(format!("inspecting {id}")))?;
        let config = inspected.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let (Some(node), Some(role)) = (labels.get(LABEL_NODE), labels.get(LABEL_ROLE)) else {
            continue;
        };
        subject = subject.or_else(|| labels.get(LABEL_SUBJECT).cloned());
        let settings = inspected.network_settings.unwrap_or_default();
        network = network.or_else(|| {
            settings
                .networks
                .as_ref()
                .and_then(|n| n.keys().next().cloned())
        });
        let port: u16 = labels
            .get(LABEL_PORT)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let host_port = settings
            .ports
            .as_ref()
            .and_then(|p| p.get(&format!("{port}/tcp")))
            .and_then(|b| b.as_ref())
            .and_then(|b| b.iter().find_map(|b| b.host_port.as_deref()?.parse().ok()));
        let data_dir = labels.get(LABEL_DATA).cloned();
        let volume = data_dir.as_ref().and_then(|d| {
            inspected.mounts.as_ref()?.iter().find_map(|m| {
                (m.destination.as_deref() == Some(d.as_str())).then(|| m.name.clone())?
            })
        });
        if role == ROLE_TOOLBOX {
            api_dir = inspected.mounts.as_ref().and_then(|ms| {
                ms.iter()
                    .find(|m| m.destination.as_deref() == Some(super::TOOLBOX_API_DIR))
                    .and_then(|m| m.source.clone())
                    .map(std::path::PathBuf::from)
            });
        }
        let mut command = config.entrypoint.unwrap_or_default();
        command.extend(config.cmd.unwrap_or_default());
        let mut command = command.into_iter();
        nodes.push(ContainerRecord {
            spec: NodeSpec {
                install_hint: None,
                name: node.clone(),
                role: role.clone(),
                host: node.clone(),
                port,
                program: command.next().unwrap_or_default().into(),
                args: command.collect(),
                env: vec![],
                health: planned(roles, subject.as_deref(), role).0,
                client: None,
                image: config.image,
                data_dir,
                // Compose's volumes are its own: nothing here makes or fills them.
                durable: false,
                files: Vec::new(),
            },
            container: inspected
                .name
                .unwrap_or(id)
                .trim_start_matches('/')
                .to_string(),
            host_port: if port == 0 { None } else { host_port },
            volume,
        });
    }
    let rank = |role: &str| planned(roles, subject.as_deref(), role).1;
    nodes.sort_by(|a, b| {
        (rank(&a.spec.role), &a.spec.name).cmp(&(rank(&b.spec.role), &b.spec.name))
    });
    let record = DockerRecord {
        version: DockerRecord::version(),
        subject: subject.ok_or_else(|| RuntimeError::Engine {
            message: format!(
                "the containers of instance {} carry no operator.subject label: which subject they run is unknown",
                rt.instance
            ),
        })?,
        instance: rt.instance,
        runtime: "docker".into(),
        owner: owner.to_string(),
        network: network.unwrap_or_default(),
        created_at: crate::clock::now(),
        nodes,
        adopted: true,
        api_dir,
    };
    record.save(&dir)?;
    // Its toolbox was started by compose, not by us: its way out is closed here.
    if let Some(toolbox) = record.nodes.iter().find(|n| n.spec.role == ROLE_TOOLBOX) {
        super::egress::confine(rt, docker, &record, toolbox).await;
    }
    Ok(record)
}
