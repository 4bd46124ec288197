//! The local instance record: what `up` started, so every later command (in any process) can
//! find it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::ProcessId;
use crate::clock::Timestamp;
pub use crate::runtime::record::{InstanceLock, RECORD_FILE};
use crate::runtime::{NodeSpec, RuntimeError, record};

const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub version: u32,
    pub subject: String,
    pub instance: u32,
    pub runtime: String,
    pub created_at: Timestamp,
    pub nodes: Vec<NodeRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    pub spec: NodeSpec,
    /// The program resolved at `up`, so a later start runs the same one.
    pub program: PathBuf,
    pub log: PathBuf,
    pub process: Option<ProcessId>,
    pub started_at: Option<Timestamp>,
}

impl InstanceRecord {
    pub fn new(subject: &str, instance: u32) -> Self {
        Self {
            version: RECORD_VERSION,
            subject: subject.into(),
            instance,
            runtime: "local".into(),
            created_at: crate::clock::now(),
            nodes: Vec::new(),
        }
    }

    pub fn load(dir: &Path) -> Result<Option<Self>, RuntimeError> {
        let Some(record) = record::read::<Self>(dir)? else {
            return Ok(None);
        };
        if record.version != RECORD_VERSION {
            return Err(RuntimeError::BadRecord {
                path: dir.join(RECORD_FILE),
                message: format!(
                    "version {} (this build reads {RECORD_VERSION})",
                    record.version
                ),
            });
        }
        Ok(Some(record))
    }

    pub fn save(&self, dir: &Path) -> Result<(), RuntimeError> {
        record::write(dir, self)
    }

    pub fn node(&self, name: &str) -> Result<&NodeRecord, RuntimeError> {
        self.nodes
            .iter()
            .find(|n| n.spec.name == name)
            .ok_or_else(|| self.unknown(name))
    }

    pub fn node_mut(&mut self, name: &str) -> Result<&mut NodeRecord, RuntimeError> {
        let err = self.unknown(name);
        self.nodes
            .iter_mut()
            .find(|n| n.spec.name == name)
            .ok_or(err)
    }

    fn unknown(&self, name: &str) -> RuntimeError {
        record::unknown_node(name, self.nodes.iter().map(|n| n.spec.name.as_str()))
    }
}
