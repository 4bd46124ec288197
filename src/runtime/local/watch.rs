//! Hearing a node die when it happens, as Docker's event stream tells of a container: one
//! pidfd per running node process (readable the moment it exits), and the instance record
//! watched (inotify) for nodes started again under new pids. Where the kernel has no pidfd,
//! there is no stream and the monitor polls.

use std::ffi::OsStr;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use futures::stream::{BoxStream, FuturesUnordered};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info_span, warn};

use super::process::ProcessId;
use super::record::{InstanceRecord, RECORD_FILE};
use crate::readable::{self, Readable};
use crate::runtime::NodeEvent;

/// How often the record is looked at (one `stat`) for nodes started again, where it cannot
/// be watched.
const RESCAN: Duration = Duration::from_secs(1);

/// A pidfd for `pid`: readable once the process has exited.
fn pidfd(pid: u32) -> std::io::Result<OwnedFd> {
    let pid = nix::libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: the descriptor was just returned to us and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether this kernel has pidfds.
pub fn available() -> bool {
    pidfd(std::process::id()).is_ok()
}

/// The deaths of `dir`'s nodes, as they happen; `None` without pidfds or a tokio runtime.
pub fn stream(dir: PathBuf) -> Option<BoxStream<'static, NodeEvent>> {
    if !available() {
        warn!("this kernel has no pidfd: the monitor hears of dead nodes at its next look");
        return None;
    }
    let handle = tokio::runtime::Handle::try_current().ok()?;
    let (tx, rx) = mpsc::unbounded_channel();
    handle.spawn(watch(dir, tx).instrument(info_span!("node_watch")));
    Some(tokio_stream_from(rx))
}

fn tokio_stream_from(mut rx: mpsc::UnboundedReceiver<NodeEvent>) -> BoxStream<'static, NodeEvent> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

type Exit = std::pin::Pin<Box<dyn std::future::Future<Output = (String, ProcessId)> + Send>>;

async fn watch(dir: PathBuf, tx: mpsc::UnboundedSender<NodeEvent>) {
    let mut watched: Vec<(String, ProcessId)> = Vec::new();
    let mut exits: FuturesUnordered<Exit> = FuturesUnordered::new();
    // Watched before the first read, so that no write falls between the two.
    let mut changes = RecordChanges::new(&dir);
    let mut rescan = true;
    loop {
        if rescan {
            for (node, id) in running(&dir).await {
                if watched.iter().any(|(n, w)| *n == node && *w == id) {
                    continue;
                }
                match exit_of(node.clone(), id) {
                    Ok(exit) => {
                        watched.retain(|(n, _)| *n != node);
                        watched.push((node, id));
                        exits.push(exit);
                    }
                    Err(e) => debug!(%node, error = %e, "cannot watch the node"),
                }
            }
        }
        rescan = tokio::select! {
            _ = tx.closed() => break,
            Some((node, id)) = exits.next(), if !exits.is_empty() => {
                watched.retain(|(n, w)| !(*n == node && *w == id));
                if tx.send(NodeEvent { node, action: "die".into() }).is_err() {
                    break;
                }
                false
            }
            () = changes.next(&dir) => true,
        };
    }
}

/// Tells when the record may have been written again. The record is only ever replaced by a
/// rename, so inotify's "moved in" on the instance's folder says it without a timer waking
/// the process every second; where the folder cannot be watched (gone, or no inotify), a
/// `stat` every `RESCAN` does.
enum RecordChanges {
    Watched(AsyncFd<Readable<Inotify>>),
    Polled { seen: Option<SystemTime> },
}

impl RecordChanges {
    fn new(dir: &Path) -> Self {
        let watched = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .and_then(|i| {
                i.add_watch(
                    dir,
                    AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_DELETE_SELF
                        | AddWatchFlags::IN_MOVE_SELF,
                )?;
                Ok(i)
            })
            .map_err(std::io::Error::from)
            .and_then(readable::register);
        match watched {
            Ok(fd) => Self::Watched(fd),
            Err(e) => {
                debug!(dir = %dir.display(), error = %e, "cannot watch the record; looking every second");
                Self::polled(dir)
            }
        }
    }

    fn polled(dir: &Path) -> Self {
        Self::Polled {
            seen: modified(dir),
        }
    }

    /// Resolves once the record may have changed since the last time it did.
    async fn next(&mut self, dir: &Path) {
        loop {
            match self {
                Self::Watched(fd) => {
                    let Ok(mut ready) = fd.readable().await else {
                        *self = Self::polled(dir);
                        return;
                    };
                    match ready.try_io(|fd| fd.get_ref().0.read_events().map_err(Into::into)) {
                        Ok(Ok(events)) => {
                            let record = events
                                .iter()
                                .any(|e| e.name.as_deref() == Some(OsStr::new(RECORD_FILE)));
                            // The folder itself went (the instance was taken down).
                            let gone = events.iter().any(|e| {
                                e.mask.intersects(
                                    AddWatchFlags::IN_IGNORED
                                        | AddWatchFlags::IN_DELETE_SELF
                                        | AddWatchFlags::IN_MOVE_SELF,
                                )
                            });
                            if gone {
                                *self = Self::polled(dir);
                                return;
                            }
                            if record {
                                return;
                            }
                        }
                        Ok(Err(e)) => {
                            warn!(error = %e, "reading the record's watch; looking every second");
                            *self = Self::polled(dir);
                            return;
                        }
                        Err(_would_block) => {}
                    }
                }
                Self::Polled { seen } => {
                    tokio::time::sleep(RESCAN).await;
                    let now = modified(dir);
                    if now != *seen || now.is_none() {
                        // A folder made again (the instance brought up anew) is watched again.
                        *self = match now {
                            Some(_) => Self::new(dir),
                            None => Self::Polled { seen: now },
                        };
                        return;
                    }
                }
            }
        }
    }
}

/// Resolves when the process exits; an error if it is not the recorded one any more.
fn exit_of(node: String, id: ProcessId) -> std::io::Result<Exit> {
    let fd = readable::register(pidfd(id.pid)?)?;
    // Opened on the pid: make sure it is still the recorded process, not a recycled pid.
    if !id.is_alive() {
        return Err(std::io::Error::other("the recorded process is gone"));
    }
    Ok(Box::pin(async move {
        let _ = fd.readable().await;
        (node, id)
    }))
}

/// When the record last changed: one `stat` of a local file, cheap enough for the loop (the
/// record itself is read off the workers, and only when this changed).
fn modified(dir: &Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join(RECORD_FILE))
        .and_then(|m| m.modified())
        .ok()
}

/// The nodes the record says are running, with their processes.
async fn running(dir: &Path) -> Vec<(String, ProcessId)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || match InstanceRecord::load(&dir) {
        Ok(Some(r)) => r
            .nodes
            .into_iter()
            .filter_map(|n| n.process.map(|p| (n.spec.name, p)))
            .collect(),
        _ => Vec::new(),
    })
    .await
    .unwrap_or_default()
}
