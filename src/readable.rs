//! A descriptor the process owns (a pidfd, an inotify, a timerfd), waited on by tokio's
//! reactor: the one place that registers one, and so the one `unsafe` that says why it may.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Owns `T` and lends its descriptor, as `AsyncFd` wants it (`AsRawFd`, which nix's types
/// do not implement).
pub struct Readable<T>(pub T);

impl<T: AsFd> AsRawFd for Readable<T> {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// `inner`, registered with the reactor for readability.
pub fn register<T: AsFd>(inner: T) -> std::io::Result<AsyncFd<Readable<T>>> {
    // SAFETY: `Readable` owns `inner` and the AsyncFd owns `Readable`: the descriptor stays
    // open, and the same, for as long as it is registered.
    unsafe { AsyncFd::register_with_interest(Readable(inner), Interest::READABLE) }
        .map_err(Into::into)
}
