//! A command's output as the agent keeps it: the head and the tail of each stream, with what
//! was left out counted, so that a command printing gigabytes costs a bounded buffer.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Keeps the first and last `limit` bytes of a stream, and counts what it drops.
#[derive(Debug)]
pub struct HeadTail {
    limit: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    total: u64,
}

impl HeadTail {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            total: 0,
        }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.limit.saturating_sub(self.head.len());
        let take = room.min(bytes.len());
        self.head.extend_from_slice(&bytes[..take]);
        bytes = &bytes[take..];
        self.tail.extend(bytes);
        while self.tail.len() > self.limit {
            self.tail.pop_front();
        }
    }

    /// The text, with a marker where the middle was left out; and how much was left out.
    pub fn finish(self) -> (String, u64) {
        let kept = (self.head.len() + self.tail.len()) as u64;
        let omitted = self.total - kept;
        let mut out = String::from_utf8_lossy(&self.head).into_owned();
        if omitted > 0 {
            out.push_str(&format!("\n[… {omitted} bytes omitted …]\n"));
        }
        let tail: Vec<u8> = self.tail.into_iter().collect();
        out.push_str(&String::from_utf8_lossy(&tail));
        (out, omitted)
    }
}

pub async fn drain(mut r: impl AsyncRead + Unpin, limit: usize) -> HeadTail {
    let mut buf = HeadTail::new(limit);
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.push(&chunk[..n]),
        }
    }
    buf
}

/// A child's stdout and stderr, each drained into a bounded buffer by a task of its own, so
/// that a child writing more than a pipe holds never blocks on its way to the end.
pub struct Drained {
    out: Option<tokio::task::JoinHandle<HeadTail>>,
    err: Option<tokio::task::JoinHandle<HeadTail>>,
}

impl Drained {
    pub fn start(child: &mut tokio::process::Child, limit: usize) -> Self {
        Self {
            out: child.stdout.take().map(|o| tokio::spawn(drain(o, limit))),
            err: child.stderr.take().map(|e| tokio::spawn(drain(e, limit))),
        }
    }

    /// Both texts and the bytes left out of them, once the pipes close; what a pipe still
    /// open after `wait` held (a grandchild keeps it) is given up.
    pub async fn finish(self, wait: std::time::Duration) -> ((String, String), u64) {
        let text = |h: Option<tokio::task::JoinHandle<HeadTail>>| async move {
            match h {
                Some(h) => match tokio::time::timeout(wait, h).await {
                    Ok(Ok(buf)) => buf.finish(),
                    _ => (String::new(), 0),
                },
                None => (String::new(), 0),
            }
        };
        let (stdout, o1) = text(self.out).await;
        let (stderr, o2) = text(self.err).await;
        ((stdout, stderr), o1 + o2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_and_tail_are_kept_with_a_marker() {
        let mut h = HeadTail::new(4);
        h.push(b"0123456789");
        h.push(b"abc");
        let (text, omitted) = h.finish();
        assert_eq!(omitted, 5);
        assert_eq!(text, "0123\n[… 5 bytes omitted …]\n9abc");
        let mut h = HeadTail::new(100);
        h.push(b"short");
        assert_eq!(h.finish(), ("short".to_string(), 0));
    }
}
