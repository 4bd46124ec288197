//! Which process dialed a connection into the proxy, told by the address it listens on.
//!
//! A node cut off from its peers must lose the connections it dials as well as those it
//! accepts, and on one host every process dials from 127.0.0.1: only the kernel knows whose a
//! connection is. Its tables say it: `/proc/net/tcp` gives the socket's inode for the
//! connection's two ends, and `/proc/PID/fd` which process holds that inode beside the
//! listening socket of the node's address. Only on Linux, for processes of this network
//! namespace that this user may look into (the local runtime's nodes are ours); anywhere else
//! a connection is never taken for the node's, and a scoped toxic does nothing.
//!
//! Every call reads the kernel's tables: it blocks, so callers run it off the async workers.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

/// `st` of a listening socket in `/proc/net/tcp`.
const LISTEN: u8 = 0x0A;

/// One line of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Socket {
    local: SocketAddr,
    remote: SocketAddr,
    state: u8,
    inode: u64,
}

/// The process last found listening on each address, so that a node's own retries are told
/// apart without walking every process again.
#[derive(Default)]
pub struct Dialers {
    pids: Mutex<HashMap<SocketAddr, u32>>,
}

impl Dialers {
    /// Whether the connection from `peer` to the proxy's `local` end was dialed by the process
    /// listening on `node`. False whenever the kernel's tables cannot say.
    pub fn dialed_by(&self, peer: SocketAddr, local: SocketAddr, node: SocketAddr) -> bool {
        let sockets = sockets();
        let Some(conn) = sockets
            .iter()
            // A socket no process holds any more (TIME_WAIT) shows inode 0.
            .find(|s| s.local == peer && s.remote == local && s.state != LISTEN && s.inode != 0)
            .map(|s| s.inode)
        else {
            return false;
        };
        let listening: HashSet<u64> = sockets
            .iter()
            .filter(|s| s.state == LISTEN && listens_on(s.local, node))
            .map(|s| s.inode)
            .collect();
        if listening.is_empty() {
            return false;
        }
        let cached = self.pids.lock().ok().and_then(|p| p.get(&node).copied());
        if let Some(pid) = cached {
            let held = socket_inodes(pid);
            if held.iter().any(|i| listening.contains(i)) {
                // Still the node's process: the answer is whether it holds this connection.
                return held.contains(&conn);
            }
        }
        let Some((pid, held)) = owner(conn) else {
            return false;
        };
        let ours = held.iter().any(|i| listening.contains(i));
        if ours && let Ok(mut p) = self.pids.lock() {
            p.insert(node, pid);
        }
        ours
    }
}

/// Whether a socket bound to `bound` listens on `addr` (a wildcard bind listens on all).
fn listens_on(bound: SocketAddr, addr: SocketAddr) -> bool {
    bound.port() == addr.port() && (bound.ip() == addr.ip() || bound.ip().is_unspecified())
}

/// The process holding socket `inode`, and every socket it holds.
fn owner(inode: u64) -> Option<(u32, HashSet<u64>)> {
    let procs = std::fs::read_dir("/proc").ok()?;
    procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find_map(|pid| {
            let held = socket_inodes(pid);
            held.contains(&inode).then_some((pid, held))
        })
}

/// The inodes of the sockets `pid` holds open; empty if it cannot be read.
fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    fds.flatten()
        .filter_map(|fd| {
            let target = std::fs::read_link(fd.path()).ok()?;
            let s = target.to_str()?;
            s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Every TCP socket of this network namespace, v4 and v6.
fn sockets() -> Vec<Socket> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(parse_line)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `  0: 0100007F:1F90 00000000:0000 0A … inode …`.
fn parse_line(line: &str) -> Option<Socket> {
    let mut f = line.split_whitespace();
    let _slot = f.next()?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    // tx:rx queues, timer, retransmits, uid, timeout, then the inode.
    let inode = f.nth(5)?.parse().ok()?;
    Some(Socket {
        local,
        remote,
        state,
        inode,
    })
}

/// `0100007F:1F90`: the address as the kernel holds it, printed word by word in this
/// machine's byte order; the port in hex.
fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = (0..addr.len() / 8)
        .map(|i| {
            let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(w.to_ne_bytes())
        })
        .collect::<Option<Vec<_>>>()?;
    let ip = match words.as_slice() {
        [a] => IpAddr::V4(Ipv4Addr::from(*a)),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (chunk, w) in bytes.chunks_mut(4).zip([a, b, c, d]) {
                chunk.copy_from_slice(w);
            }
            // A v4 connection on a v6 socket shows as ::ffff:a.b.c.d.
            IpAddr::V6(Ipv6Addr::from(bytes)).to_canonical()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_lines_read_in_this_machines_byte_order() {
        let v4 = "   3: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1";
        let s = parse_line(v4).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(s.local, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(s.remote, "127.0.0.1:54321".parse().unwrap());
        }
        assert_eq!((s.state, s.inode), (1, 4242));
        let v6 = "   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        let s = parse_line(v6).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(s.local, "127.0.0.1:8080".parse().unwrap());
        }
        assert_eq!((s.state, s.inode), (LISTEN, 77));
        assert!(parse_line("  sl  local_address rem_address").is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_connection_is_told_by_the_listener_of_the_process_that_dialed_it() {
        let ours = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let node = ours.local_addr().unwrap();
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dialed = std::net::TcpStream::connect(proxy.local_addr().unwrap()).unwrap();
        let (accepted, peer) = proxy.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        assert_eq!(peer, dialed.local_addr().unwrap());
        let d = Dialers::default();
        assert!(d.dialed_by(peer, local, node), "found by walking /proc");
        assert!(d.dialed_by(peer, local, node), "found again from the cache");
        // Another address: nobody listens there, so nobody dialed from it.
        let gone = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let elsewhere = gone.local_addr().unwrap();
        drop(gone);
        assert!(!d.dialed_by(peer, local, elsewhere));
        // A connection that does not exist is no one's.
        assert!(!d.dialed_by("127.0.0.1:1".parse().unwrap(), local, node));
    }
}
