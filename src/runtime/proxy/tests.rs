//! The proxy against real sockets on loopback: an echo server upstream, a client in front.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::link::{Link, LinkSpec};
use super::toxic::{PartitionMode, Rule, Toxic};

async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn link() -> Arc<Link> {
    let upstream = echo_server().await;
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen = free.local_addr().unwrap();
    drop(free);
    let link = Link::new(LinkSpec {
        name: "a>b".into(),
        listen,
        upstream: upstream.to_string(),
    });
    tokio::spawn(Arc::clone(&link).serve());
    assert!(link.wait_listening(true, Duration::from_secs(5)).await);
    link
}

/// Sends `n` bytes and reads them back; returns how long the round trip took.
async fn round_trip(s: &mut TcpStream, n: usize) -> Duration {
    let start = Instant::now();
    let data = vec![7u8; n];
    s.write_all(&data).await.unwrap();
    let mut back = vec![0u8; n];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, data);
    start.elapsed()
}

#[tokio::test]
async fn a_clean_link_carries_bytes_both_ways() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut s, 100_000).await;
    assert_eq!(l.view().connections, 1);
}

#[tokio::test]
async fn latency_delays_the_answer_and_goes_away_on_removal() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    let clean = round_trip(&mut s, 10).await;
    l.set_toxic(
        "fault-1",
        Toxic::Latency {
            delay_ms: 200,
            jitter_ms: 0,
        },
    );
    let slow = round_trip(&mut s, 10).await;
    assert!(slow >= Duration::from_millis(200), "{slow:?}");
    assert!(l.remove_toxic("fault-1"));
    assert!(!l.remove_toxic("fault-1"), "removing twice finds nothing");
    let fast = round_trip(&mut s, 10).await;
    assert!(
        fast < Duration::from_millis(150),
        "{fast:?} (clean: {clean:?})"
    );
}

#[tokio::test]
async fn refuse_closes_the_listener_and_cuts_open_connections() {
    let l = link().await;
    let mut open = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut open, 10).await;
    l.set_toxic(
        "fault-2",
        Toxic::Partition {
            mode: PartitionMode::Refuse,
        },
    );
    assert!(l.wait_listening(false, Duration::from_secs(5)).await);
    let err = TcpStream::connect(l.spec.listen).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(5), open.read(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "the open connection was cut: {n:?}"
    );
    l.remove_toxic("fault-2");
    assert!(l.wait_listening(true, Duration::from_secs(5)).await);
    let mut again = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut again, 10).await;
}

#[tokio::test]
async fn a_black_hole_holds_bytes_until_it_heals_and_loses_none() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut s, 10).await;
    l.set_toxic(
        "fault-3",
        Toxic::Partition {
            mode: PartitionMode::Blackhole,
        },
    );
    s.write_all(b"held").await.unwrap();
    let mut buf = [0u8; 4];
    let waited = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf)).await;
    assert!(waited.is_err(), "nothing gets through a black hole");
    // New connections are accepted but go nowhere either.
    let mut late = TcpStream::connect(l.spec.listen).await.unwrap();
    late.write_all(b"late").await.unwrap();
    l.remove_toxic("fault-3");
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"held");
    late.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"late");
}

#[tokio::test]
async fn bandwidth_paces_the_bytes() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    l.set_toxic(
        "fault-4",
        Toxic::Bandwidth {
            bytes_per_sec: 20_000,
        },
    );
    // 10 kB each way at 20 kB/s: at least half a second.
    let t = round_trip(&mut s, 10_000).await;
    assert!(t >= Duration::from_millis(450), "{t:?}");
    l.remove_toxic("fault-4");
    let t = round_trip(&mut s, 10_000).await;
    assert!(t < Duration::from_millis(400), "{t:?}");
}

#[tokio::test]
async fn the_control_api_sets_lists_and_removes_toxics_by_tag() {
    let l = link().await;
    let links = std::sync::Arc::new(std::collections::BTreeMap::from([(l.spec.name.clone(), l)]));
    let api = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = api.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(api, super::server::router(links, Some("s3cret".into()))).await
    });
    // Without the token, toxics can be read and not changed.
    let stranger = super::ProxyClient::new(addr.to_string());
    assert_eq!(stranger.links().await.unwrap().len(), 1);
    let err = stranger
        .set(
            "a>b",
            "fault-8",
            Toxic::Partition {
                mode: PartitionMode::Refuse,
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains("needs the proxy's token"),
        "{err}"
    );
    let wrong = super::ProxyClient::new(addr.to_string()).with_token(Some("guess".into()));
    assert!(wrong.remove("a>b", "fault-8").await.is_err());
    let c = super::ProxyClient::new(addr.to_string()).with_token(Some("s3cret".into()));
    let toxic = Toxic::Latency {
        delay_ms: 10,
        jitter_ms: 1,
    };
    assert_eq!(
        c.impair_node("b", "fault-9", toxic, None).await.unwrap(),
        vec!["a>b"]
    );
    assert!(
        c.impair_node("c", "fault-9", toxic, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        c.links().await.unwrap()[0].toxics.get("fault-9"),
        Some(&toxic.into())
    );
    // A node the link does not touch, cut off both ways: its own connections only.
    let c_listens: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    assert_eq!(
        c.impair_node("c", "fault-10", toxic, Some(c_listens))
            .await
            .unwrap(),
        vec!["a>b (what c dials)"]
    );
    assert_eq!(
        c.links().await.unwrap()[0].toxics.get("fault-10"),
        Some(&Rule {
            toxic,
            dialed_by: Some(c_listens)
        })
    );
    assert_eq!(c.clear_tag("fault-10").await.unwrap(), vec!["a>b"]);
    let err = c
        .set("nope", "fault-9", toxic)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no link `nope`; links: a>b"), "{err}");
    assert_eq!(c.clear_tag("fault-9").await.unwrap(), vec!["a>b"]);
    assert!(c.clear_tag("fault-9").await.unwrap().is_empty());
    assert!(c.links().await.unwrap()[0].toxics.is_empty());
}

#[test]
fn a_node_owns_the_links_at_either_end() {
    use super::{client_link, peer_link, touches};
    assert!(touches(&client_link("ratelimiter-1"), "ratelimiter-1"));
    assert!(touches(
        &peer_link("ratelimiter-1", "redis"),
        "ratelimiter-1"
    ));
    assert!(touches(&peer_link("ratelimiter-1", "redis"), "redis"));
    assert!(!touches(
        &peer_link("ratelimiter-1", "redis"),
        "ratelimiter-10"
    ));
    assert!(!touches(&client_link("ratelimiter-2"), "ratelimiter-1"));
}

#[tokio::test]
async fn a_heal_frees_a_chunk_that_is_still_trickling() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut s, 10).await;
    l.set_toxic(
        "fault-5",
        Toxic::Bandwidth {
            bytes_per_sec: 1_000,
        },
    );
    // 16 kB at 1 kB/s would take 16 s each way; the heal after 300 ms frees it.
    let healer = {
        let l = Arc::clone(&l);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            l.remove_toxic("fault-5");
        })
    };
    let t = round_trip(&mut s, 16_000).await;
    healer.await.unwrap();
    assert!(t < Duration::from_secs(3), "{t:?}");
}

#[tokio::test]
async fn a_black_hole_holds_a_close_until_it_heals() {
    let l = link().await;
    let mut s = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut s, 10).await;
    l.set_toxic(
        "fault-6",
        Toxic::Partition {
            mode: PartitionMode::Blackhole,
        },
    );
    // The client closes its side: the echo server must not hear of it, so does not close
    // back, while the link is a black hole.
    s.shutdown().await.unwrap();
    let mut buf = [0u8; 1];
    let waited = tokio::time::timeout(Duration::from_millis(400), s.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "the close got through the black hole: {waited:?}"
    );
    l.remove_toxic("fault-6");
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .expect("after the heal the close goes through and comes back")
        .unwrap();
    assert_eq!(n, 0);
}

/// Another process listening on loopback, and where.
fn listener_elsewhere() -> (std::process::Child, SocketAddr) {
    use std::io::BufRead;
    let script = "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\nprint(s.getsockname()[1],flush=True)\ntime.sleep(120)";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (the set-up script installs it)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    (child, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Writes a byte and says whether it came back within `wait`.
async fn echoes_within(s: &mut TcpStream, wait: Duration) -> bool {
    s.write_all(b"x").await.unwrap();
    let mut b = [0u8; 1];
    tokio::time::timeout(wait, s.read_exact(&mut b))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// A rule scoped to a dialer is told by the kernel's tables, after the connection is made.
const SETTLE: Duration = Duration::from_millis(500);

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toxic_scoped_to_a_dialer_reaches_only_the_connections_it_dialed() {
    let l = link().await;
    let mut before = TcpStream::connect(l.spec.listen).await.unwrap();
    round_trip(&mut before, 10).await;
    let blackhole = Toxic::Partition {
        mode: PartitionMode::Blackhole,
    };

    // Scoped to another process: this one's connections, old and new, are left alone.
    let (mut other, elsewhere) = listener_elsewhere();
    l.set_toxic(
        "fault-1",
        Rule {
            toxic: blackhole,
            dialed_by: Some(elsewhere),
        },
    );
    tokio::time::sleep(SETTLE).await;
    assert!(echoes_within(&mut before, Duration::from_secs(2)).await);
    let mut after = TcpStream::connect(l.spec.listen).await.unwrap();
    assert!(echoes_within(&mut after, Duration::from_secs(2)).await);

    // Scoped to this process (it listens on `mine`): its connections are held, the listener
    // stays open for everyone else, and the heal lets the held bytes through.
    let mine = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.set_toxic(
        "fault-2",
        Rule {
            toxic: blackhole,
            dialed_by: Some(mine.local_addr().unwrap()),
        },
    );
    tokio::time::sleep(SETTLE).await;
    assert!(!echoes_within(&mut before, Duration::from_millis(400)).await);
    assert!(l.view().listening);
    let mut held = TcpStream::connect(l.spec.listen).await.unwrap();
    assert!(!echoes_within(&mut held, Duration::from_millis(400)).await);

    l.remove_toxic("fault-2");
    let mut b = [0u8; 1];
    tokio::time::timeout(Duration::from_secs(2), before.read_exact(&mut b))
        .await
        .expect("the held bytes come back after the heal")
        .unwrap();
    assert!(echoes_within(&mut held, Duration::from_secs(2)).await);

    // A refusal scoped to it cuts its connections and resets new ones, and the listener
    // stays open for everyone else.
    l.set_toxic(
        "fault-3",
        Rule {
            toxic: Toxic::Partition {
                mode: PartitionMode::Refuse,
            },
            dialed_by: Some(mine.local_addr().unwrap()),
        },
    );
    tokio::time::sleep(SETTLE).await;
    let mut b = [0u8; 1];
    let cut = tokio::time::timeout(Duration::from_secs(2), after.read(&mut b)).await;
    assert!(
        matches!(cut, Ok(Ok(0)) | Ok(Err(_))),
        "a refused connection ends: {cut:?}"
    );
    assert!(l.view().listening);
    let mut refused = TcpStream::connect(l.spec.listen).await.unwrap();
    assert!(!echoes_within(&mut refused, Duration::from_secs(1)).await);
    l.remove_toxic("fault-3");
    tokio::time::sleep(SETTLE).await;
    let mut again = TcpStream::connect(l.spec.listen).await.unwrap();
    assert!(echoes_within(&mut again, Duration::from_secs(2)).await);
    let _ = other.kill();
    let _ = other.wait();
}
