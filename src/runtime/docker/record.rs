//! What `up --runtime docker` made, kept in the instance's state folder: the containers by
//! name, the ports published on loopback, the network and volumes. The labels on the engine's
//! objects are the second source of truth, which `down` also sweeps.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::runtime::{NodeSpec, RuntimeError, record};

const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DockerRecord {
    pub version: u32,
    pub subject: String,
    pub instance: u32,
    /// Always `docker`: how later commands know which runtime to open.
    pub runtime: String,
    pub owner: String,
    pub network: String,
    pub created_at: Timestamp,
    pub nodes: Vec<ContainerRecord>,
    /// Started by someone else (`docker compose`) and taken over with `operator adopt`:
    /// `down` lets go of it rather than removing it.
    #[serde(default)]
    pub adopted: bool,
    /// The folder mounted into the toolbox for the agent's Docker API proxy, when it is not
    /// the instance's own (an adopted cluster's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub spec: NodeSpec,
    pub container: String,
    /// The port published on 127.0.0.1 for `spec.port`, for the operator's own probes.
    pub host_port: Option<u16>,
    pub volume: Option<String>,
}

impl ContainerRecord {
    /// Where the operator reaches the node from the host.
    pub fn host_address(&self) -> Option<String> {
        self.host_port.map(|p| format!("127.0.0.1:{p}"))
    }
}

impl DockerRecord {
    pub fn load(dir: &Path) -> Result<Option<Self>, RuntimeError> {
        let Some(r) = record::read::<Self>(dir)? else {
            return Ok(None);
        };
        if r.runtime != "docker" || r.version != RECORD_VERSION {
            return Err(RuntimeError::BadRecord {
                path: dir.join(record::RECORD_FILE),
                message: format!(
                    "a {} record of version {} (this runtime reads docker records of version {RECORD_VERSION})",
                    r.runtime, r.version
                ),
            });
        }
        Ok(Some(r))
    }

    pub fn save(&self, dir: &Path) -> Result<(), RuntimeError> {
        record::write(dir, self)
    }

    pub fn version() -> u32 {
        RECORD_VERSION
    }

    pub fn node(&self, name: &str) -> Result<&ContainerRecord, RuntimeError> {
        self.nodes
            .iter()
            .find(|n| n.spec.name == name)
            .ok_or_else(|| {
                record::unknown_node(name, self.nodes.iter().map(|n| n.spec.name.as_str()))
            })
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut ContainerRecord, RuntimeError> {
        let names: Vec<String> = self.nodes.iter().map(|n| n.spec.name.clone()).collect();
        self.nodes
            .iter_mut()
            .find(|n| n.spec.name == name)
            .ok_or_else(|| record::unknown_node(name, names.iter().map(String::as_str)))
    }
}
