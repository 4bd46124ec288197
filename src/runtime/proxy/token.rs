//! The fault proxy's control token: without it, toxics can be read but not changed, so that
//! the agent — which shares a network with the proxy — cannot heal or add faults by calling
//! the proxy itself. It lives beside the instance's folder, not in it: the agent's commands
//! run in that folder, and a recursive read of it (`grep -r "" .`) must not find the token.
//! The policy guards the state around the folder locally; the toolbox does not mount it on
//! Docker.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The token's file name, after the instance's: `instances/0.faultproxy.token`.
pub const FILE: &str = "faultproxy.token";

pub fn path(instance_dir: &Path) -> PathBuf {
    let name = instance_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    instance_dir.with_file_name(format!("{name}.{FILE}"))
}

/// Where earlier versions kept it: inside the instance's folder.
fn old_path(instance_dir: &Path) -> PathBuf {
    instance_dir.join(FILE)
}

/// Removes the instance's token, with the instance.
pub fn remove(instance_dir: &Path) {
    let _ = std::fs::remove_file(path(instance_dir));
}

/// A fresh token, written with only its owner allowed to read it.
pub fn create(instance_dir: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let token = format!(
        "{:016x}{:016x}",
        rand::random::<u64>(),
        rand::random::<u64>()
    );
    std::fs::create_dir_all(instance_dir)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path(instance_dir))?;
    f.write_all(token.as_bytes())?;
    Ok(token)
}

/// The instance's token, if it has one (an adopted cluster's proxy may have none).
pub fn read(instance_dir: &Path) -> Option<String> {
    std::fs::read_to_string(path(instance_dir))
        .or_else(|_| std::fs::read_to_string(old_path(instance_dir)))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Tells the fault proxy's node to require the token at `path` (as that node sees it).
pub fn require(spec: &mut crate::runtime::NodeSpec, path: &str) {
    if spec.role == crate::runtime::ROLE_FAULTPROXY {
        spec.args.push("--token-file".into());
        spec.args.push(path.into());
    }
}
