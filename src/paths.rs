//! Where Operator keeps its state: the ticket DB, logs and one folder per cluster instance.

use std::path::{Path, PathBuf};

/// The state directory and the paths inside it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `$XDG_STATE_HOME/operator`, else `~/.local/state/operator`, else a folder in the
    /// system temp dir (a user with no home still gets a working default).
    pub fn default_root() -> PathBuf {
        dirs::state_dir()
            .or_else(|| dirs::home_dir().map(|h| h.join(".local").join("state")))
            .unwrap_or_else(std::env::temp_dir)
            .join("operator")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn default_db(&self) -> PathBuf {
        self.root.join("operator.db")
    }

    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }

    /// One folder per cluster instance: its record, pid files, node logs and data.
    pub fn instance(&self, instance: u32) -> PathBuf {
        self.instances().join(instance.to_string())
    }
}
