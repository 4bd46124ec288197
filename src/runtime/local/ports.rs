//! Loopback ports for nodes: free ones picked by the kernel, or fixed ones checked.

use std::net::TcpListener;

use crate::runtime::RuntimeError;

/// Ports per instance when they are fixed: enough for 9 limiter nodes with their links.
pub const SPACING: u32 = 32;

pub fn is_free(host: &str, port: u16) -> bool {
    TcpListener::bind((host, port)).is_ok()
}

/// One port per name: `base + SPACING*instance + i` when a base is set (refused if taken),
/// else ports the kernel says are free now.
pub fn allocate(
    host: &str,
    names: &[&str],
    base: Option<u16>,
    instance: u32,
) -> Result<Vec<u16>, RuntimeError> {
    match base {
        Some(base) => names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let port = u32::from(base) + SPACING * instance + i as u32;
                let port = u16::try_from(port).map_err(|_| RuntimeError::PortInUse {
                    port: u16::MAX,
                    node: (*name).into(),
                })?;
                if is_free(host, port) {
                    Ok(port)
                } else {
                    Err(RuntimeError::PortInUse {
                        port,
                        node: (*name).into(),
                    })
                }
            })
            .collect(),
        None => {
            // Hold every listener until all are chosen, so no two nodes get the same port.
            let listeners = names
                .iter()
                .map(|_| TcpListener::bind((host, 0)))
                .collect::<std::io::Result<Vec<_>>>()
                .map_err(RuntimeError::io("finding free loopback ports"))?;
            listeners
                .iter()
                .map(|l| {
                    l.local_addr()
                        .map(|a| a.port())
                        .map_err(RuntimeError::io("reading a listener's port"))
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct_and_free() {
        let ports = allocate("127.0.0.1", &["a", "b", "c", "d"], None, 0).unwrap();
        let mut sorted = ports.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 4);
        assert!(ports.iter().all(|p| is_free("127.0.0.1", *p)));
    }

    #[test]
    fn a_taken_fixed_port_is_named() {
        let held = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let err = allocate("127.0.0.1", &["redis"], Some(port), 0).unwrap_err();
        assert!(
            matches!(err, RuntimeError::PortInUse { port: p, ref node } if p == port && node == "redis")
        );
    }
}
