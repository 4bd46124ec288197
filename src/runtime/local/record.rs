//! The instance record: what `up` started, so every later command (in any process) can find
//! it. Written atomically; changes are serialised by a lock file.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::process::ProcessId;
use crate::clock::Timestamp;
use crate::runtime::{NodeSpec, RuntimeError};

pub const RECORD_FILE: &str = "instance.json";
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
        let path = dir.join(RECORD_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RuntimeError::io(format!("reading {}", path.display()))(e)),
        };
        let record: Self = serde_json::from_str(&text).map_err(|e| RuntimeError::BadRecord {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if record.version != RECORD_VERSION {
            return Err(RuntimeError::BadRecord {
                path,
                message: format!(
                    "version {} (this build reads {RECORD_VERSION})",
                    record.version
                ),
            });
        }
        Ok(Some(record))
    }

    /// Writes to a temporary file and renames it over the record: readers never see half.
    pub fn save(&self, dir: &Path) -> Result<(), RuntimeError> {
        let path = dir.join(RECORD_FILE);
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| RuntimeError::BadRecord {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(RuntimeError::io(format!("writing {}", path.display())))
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
        RuntimeError::UnknownNode {
            name: name.into(),
            known: self
                .nodes
                .iter()
                .map(|n| n.spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// An exclusive lock on an instance folder, held while a command changes the instance.
pub struct InstanceLock {
    _lock: Flock<File>,
}

impl InstanceLock {
    /// Takes the lock, waiting (without blocking a thread) up to `wait` for another command.
    pub async fn acquire(
        dir: &Path,
        instance: u32,
        wait: std::time::Duration,
    ) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(dir)
            .map_err(RuntimeError::io(format!("creating {}", dir.display())))?;
        let path = dir.join("lock");
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let file = File::options()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(RuntimeError::io(format!("opening {}", path.display())))?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Self { _lock: lock }),
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(RuntimeError::Busy { instance });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err((_, e)) => {
                    return Err(RuntimeError::io(format!("locking {}", path.display()))(
                        e.into(),
                    ));
                }
            }
        }
    }
}
