//! An instance's record in its state folder, whatever the runtime: written atomically, changes
//! serialised by a lock file, and naming the runtime so later commands find it without a flag.

use std::fs::File;
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::RuntimeError;

pub const RECORD_FILE: &str = "instance.json";

/// The record in `dir`, if there is one.
pub fn read<T: DeserializeOwned>(dir: &Path) -> Result<Option<T>, RuntimeError> {
    let path = dir.join(RECORD_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RuntimeError::io(format!("reading {}", path.display()))(e)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RuntimeError::BadRecord {
            path,
            message: e.to_string(),
        })
}

/// Writes to a temporary file and renames it over the record: readers never see half.
pub fn write<T: Serialize>(dir: &Path, record: &T) -> Result<(), RuntimeError> {
    let path = dir.join(RECORD_FILE);
    let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
    let text = serde_json::to_string_pretty(record).map_err(|e| RuntimeError::BadRecord {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(RuntimeError::io(format!("writing {}", path.display())))
}

/// What identifies one write of the record (it is replaced by a rename, never edited).
type Version = (u64, std::time::SystemTime);

fn version(dir: &Path) -> Option<Version> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(dir.join(RECORD_FILE)).ok()?;
    Some((m.ino(), m.modified().ok()?))
}

/// Something made from the record, kept with the write it came from: observers ask for it
/// every cycle, and one `stat` tells whether the record changed since.
pub struct Cached<T>(std::sync::Mutex<Option<(Version, T)>>);

impl<T: Clone> Default for Cached<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(None))
    }
}

impl<T: Clone> Cached<T> {
    /// The kept value if the record in `dir` is the one it came from, else `make`'s.
    pub fn get(
        &self,
        dir: &Path,
        make: impl FnOnce() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let now = version(dir);
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let (Some(v), Some((seen, t))) = (now, kept.as_ref()) {
            if v == *seen {
                return Ok(t.clone());
            }
        }
        let t = make()?;
        *kept = now.map(|v| (v, t.clone()));
        Ok(t)
    }
}

/// The error for a node `name` that is none of `known`, naming those.
pub fn unknown_node<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> RuntimeError {
    RuntimeError::UnknownNode {
        name: name.into(),
        known: known.collect::<Vec<_>>().join(", "),
    }
}

/// The runtime an instance in `dir` was started on, if it is up.
pub fn recorded_runtime(dir: &Path) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        runtime: String,
    }
    read::<Peek>(dir).ok().flatten().map(|p| p.runtime)
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
