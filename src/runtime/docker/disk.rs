//! A durable volume's bounded disk: an ext4 file system in a sparse image file on a loop
//! device, which the engine's `local` driver mounts like any block device. A tmpfs is bounded
//! but empty after every stop; the engine's own disk keeps data but is not ours to fill. The
//! image lives in the instance's folder; the loop device does not survive a reboot, so every
//! start attaches the image again to the device the volume names. Blocking: call these from
//! a blocking thread.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where `node`'s image lives in the instance's folder `dir`.
pub fn image_path(dir: &Path, node: &str) -> PathBuf {
    dir.join("volumes").join(format!("{node}.ext4"))
}

/// Why a bounded disk cannot be made here, if it cannot: loop devices need root, and the
/// engine must run on this machine to see them.
pub fn unavailable(engine_address: &str) -> Option<String> {
    if engine_address.starts_with("tcp://") || engine_address.starts_with("http") {
        return Some(format!(
            "the engine at {engine_address} is not on this machine"
        ));
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("loop devices need root".into());
    }
    for tool in ["losetup", "mkfs.ext4"] {
        if which(tool).is_none() {
            return Some(format!(
                "`{tool}` is missing (Debian: util-linux, e2fsprogs)"
            ));
        }
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn run(tool: &str, args: &[&str]) -> Result<String, String> {
    let program = which(tool).ok_or_else(|| format!("`{tool}` is missing"))?;
    let out = Command::new(&program)
        .args(args)
        .output()
        .map_err(|e| format!("running {tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{tool} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Makes a fresh file system of `bytes` in `image` (a leftover one is detached and replaced)
/// and attaches it; returns its loop device.
pub fn make(image: &Path, bytes: u64) -> Result<String, String> {
    let shown = image.display().to_string();
    detach(image)?;
    if let Some(dir) = image.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(image);
    let file = std::fs::File::create(image).map_err(|e| format!("creating {shown}: {e}"))?;
    file.set_len(bytes)
        .map_err(|e| format!("sizing {shown}: {e}"))?;
    // No blocks reserved for root: a full volume is full for the node too.
    run(
        "mkfs.ext4",
        &["-q", "-F", "-m", "0", "-L", "operator", &shown],
    )?;
    let device = run("losetup", &["--find", "--show", &shown])?;
    Ok(device.trim().to_string())
}

/// The loop devices `image` is attached to.
fn devices_of(image: &Path) -> Result<Vec<String>, String> {
    let out = run("losetup", &["--associated", &image.display().to_string()])?;
    // `/dev/loop3: [2049]:1234 (/path/to/image)`, one a line.
    Ok(out
        .lines()
        .filter_map(|l| l.split_once(':').map(|(d, _)| d.to_string()))
        .collect())
}

/// Attaches `image` to `device` unless it already is (after a reboot it is not).
pub fn attach(image: &Path, device: &str) -> Result<bool, String> {
    if !image.is_file() {
        return Err(format!("{} is gone", image.display()));
    }
    if devices_of(image)?.iter().any(|d| d == device) {
        return Ok(false);
    }
    run("losetup", &[device, &image.display().to_string()]).map_err(|e| {
        format!("{e} (the volume names {device}; another file may hold it now: `losetup {device}`)")
    })?;
    Ok(true)
}

/// Detaches every loop device `image` is attached to.
pub fn detach(image: &Path) -> Result<Vec<String>, String> {
    if !image.exists() {
        return Ok(vec![]);
    }
    let devices = devices_of(image)?;
    for d in &devices {
        run("losetup", &["--detach", d])?;
    }
    Ok(devices)
}

/// Detaches the images in `dir` (an instance's `volumes` folder) and deletes them; what it
/// detached.
pub fn remove_all(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut gone = Vec::new();
    for image in entries.flatten().map(|e| e.path()) {
        match detach(&image) {
            Ok(devices) => gone.extend(devices),
            Err(e) => tracing::warn!(image = %image.display(), error = %e, "could not detach"),
        }
        let _ = std::fs::remove_file(&image);
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_is_made_attached_again_after_a_detach_and_removed() {
        if let Some(why) = unavailable("unix:///var/run/docker.sock") {
            // Where Docker is required (CI), so is what its durable volumes stand on.
            assert!(
                std::env::var_os("OPERATOR_REQUIRE_DOCKER").is_none(),
                "no bounded disk here: {why}"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = image_path(dir.path(), "etcd-1");
        let device = make(&image, 16 << 20).unwrap();
        assert!(device.starts_with("/dev/loop"), "{device}");
        // Sparse: 16 MiB long, far less written.
        let meta = std::fs::metadata(&image).unwrap();
        assert_eq!(meta.len(), 16 << 20);
        assert!(
            std::os::unix::fs::MetadataExt::blocks(&meta) * 512 < 8 << 20,
            "{meta:?}"
        );
        assert!(!attach(&image, &device).unwrap(), "already attached");
        assert_eq!(detach(&image).unwrap(), vec![device.clone()]);
        // As after a reboot: attached again to the device the volume names.
        assert!(attach(&image, &device).unwrap());
        assert_eq!(devices_of(&image).unwrap(), vec![device.clone()]);
        assert_eq!(remove_all(image.parent().unwrap()), vec![device]);
        assert!(!image.exists());
    }
}
