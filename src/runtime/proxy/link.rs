//! One proxied link: a listener, and for each accepted connection a pair of pumps to the
//! upstream that apply the link's toxics as they change.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{Instrument, debug, info_span, warn};

use super::dialer::Dialers;
use super::toxic::{Effect, PartitionMode, Rule};

const CHUNK: usize = 16 * 1024;
/// Chunks held per direction while a link is slow or black-holed; then the reader stops, and
/// TCP flow control pushes back on the sender, as a congested network would.
const QUEUE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `name=listen>upstream`, e.g. `ratelimiter-1>redis=127.0.0.1:7001>127.0.0.1:6379`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkSpec {
    pub name: String,
    pub listen: SocketAddr,
    /// `host:port`, resolved at each connection (a container name on Docker).
    pub upstream: String,
}

impl LinkSpec {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "link `{s}`: expected NAME=LISTEN>UPSTREAM, e.g. a=127.0.0.1:7001>127.0.0.1:6379"
            )
        };
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        // The name may itself hold '>' (`ratelimiter-1>redis`): split the addresses from the right.
        let (listen, upstream) = rest.rsplit_once('>').ok_or_else(bad)?;
        let listen = listen
            .parse()
            .map_err(|e| format!("link `{name}`: listen address `{listen}`: {e}"))?;
        if name.is_empty() || upstream.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            name: name.into(),
            listen,
            upstream: upstream.into(),
        })
    }

    pub fn to_arg(&self) -> String {
        format!("{}={}>{}", self.name, self.listen, self.upstream)
    }
}

/// A link as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkView {
    pub name: String,
    pub listen: SocketAddr,
    pub upstream: String,
    /// Connections open through the link now.
    pub connections: usize,
    /// Whether the link accepts connections now (not while a refusing partition is on).
    pub listening: bool,
    /// By owner tag.
    pub toxics: BTreeMap<String, Rule>,
}

type Rules = BTreeMap<String, Rule>;

pub struct Link {
    pub spec: LinkSpec,
    toxics: watch::Sender<Rules>,
    connections: AtomicUsize,
    listening: watch::Sender<bool>,
    dialers: Arc<Dialers>,
}

impl Link {
    pub fn new(spec: LinkSpec) -> Arc<Self> {
        Arc::new(Self {
            spec,
            toxics: watch::Sender::new(BTreeMap::new()),
            connections: AtomicUsize::new(0),
            listening: watch::Sender::new(false),
            dialers: Arc::default(),
        })
    }

    pub fn view(&self) -> LinkView {
        LinkView {
            name: self.spec.name.clone(),
            listen: self.spec.listen,
            upstream: self.spec.upstream.clone(),
            connections: self.connections.load(Ordering::Relaxed),
            listening: *self.listening.borrow(),
            toxics: self.toxics.borrow().clone(),
        }
    }

    pub fn set_toxic(&self, tag: &str, rule: impl Into<Rule>) {
        let rule = rule.into();
        self.toxics.send_modify(|t| {
            t.insert(tag.to_string(), rule);
        });
    }

    /// True if `tag` had a toxic here.
    pub fn remove_toxic(&self, tag: &str) -> bool {
        let mut removed = false;
        self.toxics
            .send_modify(|t| removed = t.remove(tag).is_some());
        removed
    }

    /// Waits until the listener is in the wanted state (it follows the toxics asynchronously).
    pub async fn wait_listening(&self, want: bool, timeout: Duration) -> bool {
        let mut rx = self.listening.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|l| *l == want))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// What every connection suffers: the listener follows this.
    fn effect(rx: &watch::Receiver<Rules>) -> Effect {
        Effect::of(
            rx.borrow()
                .values()
                .filter(|r| r.dialed_by.is_none())
                .map(|r| &r.toxic),
        )
    }

    /// The link's effect on one connection, kept current as the rules change until the
    /// connection's last receiver is dropped.
    async fn effect_on(
        self: &Arc<Self>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> watch::Receiver<Effect> {
        let mut rules = self.toxics.subscribe();
        // Whether this connection was dialed by the node at each address asked about so far.
        let mut dialed_by = HashMap::new();
        let now = rules.borrow_and_update().clone();
        let first = self.effect_for(&now, peer, local, &mut dialed_by).await;
        let (tx, rx) = watch::channel(first);
        let link = Arc::clone(self);
        tokio::spawn(
            async move {
                loop {
                    tokio::select! {
                        _ = tx.closed() => return,
                        changed = rules.changed() => {
                            if changed.is_err() {
                                return;
                            }
                            let now = rules.borrow_and_update().clone();
                            let e = link.effect_for(&now, peer, local, &mut dialed_by).await;
                            tx.send_if_modified(|cur| std::mem::replace(cur, e) != e);
                        }
                    }
                }
            }
            .in_current_span(),
        );
        rx
    }

    async fn effect_for(
        &self,
        rules: &Rules,
        peer: SocketAddr,
        local: SocketAddr,
        dialed_by: &mut HashMap<SocketAddr, bool>,
    ) -> Effect {
        let unknown: BTreeSet<SocketAddr> = rules
            .values()
            .filter_map(|r| r.dialed_by)
            .filter(|a| !dialed_by.contains_key(a))
            .collect();
        if !unknown.is_empty() {
            let dialers = Arc::clone(&self.dialers);
            let asked = tokio::task::spawn_blocking(move || {
                unknown
                    .into_iter()
                    .map(|node| (node, dialers.dialed_by(peer, local, node)))
                    .collect::<Vec<_>>()
            })
            .await;
            match asked {
                Ok(found) => dialed_by.extend(found),
                Err(e) => warn!(error = %e, "could not tell who dialed a connection"),
            }
        }
        Effect::of(
            rules
                .values()
                .filter(|r| {
                    r.dialed_by
                        .is_none_or(|node| dialed_by.get(&node).copied().unwrap_or(false))
                })
                .map(|r| &r.toxic),
        )
    }

    /// Accepts connections for as long as the process lives. While a refusing partition is
    /// on, the listener is closed, so a connect is refused by the kernel itself.
    pub async fn serve(self: Arc<Self>) {
        let span = info_span!("link", name = %self.spec.name, listen = %self.spec.listen);
        async move {
            let mut toxics = self.toxics.subscribe();
            loop {
                if Self::effect(&toxics).partition == Some(PartitionMode::Refuse) {
                    self.listening.send_replace(false);
                    if toxics.changed().await.is_err() {
                        return;
                    }
                    continue;
                }
                let listener = match TcpListener::bind(self.spec.listen).await {
                    Ok(l) => l,
                    Err(e) => {
                        warn!(error = %e, "cannot listen; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                };
                self.listening.send_replace(true);
                loop {
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((client, peer)) => {
                                let link = Arc::clone(&self);
                                tokio::spawn(link.carry(client).instrument(info_span!("connection", %peer)));
                            }
                            Err(e) => warn!(error = %e, "accept failed"),
                        },
                        changed = toxics.changed() => {
                            if changed.is_err() { return; }
                            if Self::effect(&toxics).partition == Some(PartitionMode::Refuse) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        .instrument(span)
        .await;
    }

    /// One client connection, through to the upstream and back.
    async fn carry(self: Arc<Self>, client: TcpStream) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        let _count = Count(&self.connections);
        let (Ok(peer), Ok(local)) = (client.peer_addr(), client.local_addr()) else {
            return;
        };
        let mut effect = self.effect_on(peer, local).await;
        // A black-holed link accepts (the kernel does) but goes no further until it heals.
        // A client that gives up meanwhile is let go, so held connections do not pile up.
        let usable = tokio::select! {
            u = effect.wait_for(|e| e.partition != Some(PartitionMode::Blackhole)) => {
                u.map(|e| e.partition.is_none())
            }
            _ = closed_by_peer(&client) => return,
        };
        if !matches!(usable, Ok(true)) {
            reset(&client);
            return;
        }
        let upstream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.spec.upstream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    debug!(error = %e, "upstream refused");
                    reset(&client);
                    return;
                }
                Err(_) => {
                    debug!("upstream did not answer");
                    reset(&client);
                    return;
                }
            };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (cr, cw) = client.into_split();
        let (ur, uw) = upstream.into_split();
        let (to_upstream, to_client) = (effect.clone(), effect.clone());
        let both = async {
            tokio::try_join!(
                pump(cr, uw, to_upstream, false),
                pump(ur, cw, to_client, true)
            )
        };
        tokio::select! {
            done = both => if let Err(e) = done { debug!(error = %e, "connection ended with an error") },
            _ = effect.wait_for(|e| e.partition == Some(PartitionMode::Refuse)) => {
                // The halves were dropped with the `both` future: a reset would need them, and
                // the peers see the close at once, which is what a refusal promises.
                debug!("partition (refuse): connection cut");
            }
        }
    }
}

/// Keeps the connection count true however a connection ends.
struct Count<'a>(&'a AtomicUsize);

impl Drop for Count<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Returns when the peer has closed its side before sending anything; never, once it has sent
/// something (that cannot be told from a close without reading it).
async fn closed_by_peer(s: &TcpStream) {
    let mut b = [0u8; 1];
    match s.peek(&mut b).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// Closes with RST rather than FIN: the peer's next read fails at once.
fn reset(s: &TcpStream) {
    let _ = s.set_zero_linger();
}

/// Copies one direction, pacing it to the link's bandwidth and holding everything while the
/// link is black-holed. Latency is added downstream only (answers back to the client), as
/// toxiproxy does and as `netem` on the node's interface would: one delay per round trip.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut toxics: watch::Receiver<Effect>,
    downstream: bool,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let read = async move {
        loop {
            let mut buf = vec![0; CHUNK];
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.truncate(n);
            if tx.send((Instant::now(), buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let write = async move {
        let mut last_due = Instant::now();
        let mut link_free = Instant::now();
        while let Some((arrived, chunk)) = rx.recv().await {
            let effect = loop {
                let e = *toxics.borrow();
                if e.partition != Some(PartitionMode::Blackhole) {
                    break e;
                }
                if toxics.changed().await.is_err() {
                    return Ok(());
                }
            };
            if downstream && (!effect.delay.is_zero() || !effect.jitter.is_zero()) {
                let unit = rand::random::<f64>() * 2.0 - 1.0;
                // Never before the previous chunk: jitter must not reorder a stream.
                let due = (arrived + effect.delay_for(unit)).max(last_due);
                // A heal meanwhile lets the chunk go at once.
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due) => {
                            last_due = due;
                            break;
                        }
                        r = toxics.changed() => {
                            let now = *toxics.borrow();
                            if r.is_err() || (now.delay.is_zero() && now.jitter.is_zero()) {
                                last_due = Instant::now();
                                break;
                            }
                        }
                    }
                }
            }
            // Each piece occupies the link for its transfer time, and goes when the link is
            // free again: a steady trickle, however big the chunk. The limit is read again for
            // each piece, so that a heal frees what is left of the chunk.
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let Some(rate) = toxics.borrow().bytes_per_sec else {
                    to.write_all(rest).await?;
                    break;
                };
                let piece = usize::try_from(rate / 20)
                    .unwrap_or(CHUNK)
                    .clamp(64, CHUNK)
                    .min(rest.len());
                let (part, after) = rest.split_at(piece);
                link_free =
                    link_free.max(Instant::now()) + toxics.borrow().transfer_time(part.len());
                tokio::select! {
                    _ = tokio::time::sleep_until(link_free) => {}
                    _ = toxics.changed() => {
                        link_free = Instant::now();
                        continue;
                    }
                }
                to.write_all(part).await?;
                rest = after;
            }
        }
        // A close is held like data while the link is black-holed.
        while toxics.borrow().partition == Some(PartitionMode::Blackhole) {
            if toxics.changed().await.is_err() {
                break;
            }
        }
        to.shutdown().await
    };
    tokio::try_join!(read, write).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs_parse_with_arrows_in_names() {
        let l = LinkSpec::parse("ratelimiter-1>redis=127.0.0.1:7001>redis:6379").unwrap();
        assert_eq!(l.name, "ratelimiter-1>redis");
        assert_eq!(l.listen, "127.0.0.1:7001".parse().unwrap());
        assert_eq!(l.upstream, "redis:6379");
        assert_eq!(LinkSpec::parse(&l.to_arg()).unwrap(), l);
        let err = LinkSpec::parse("nonsense").unwrap_err();
        assert!(err.contains("NAME=LISTEN>UPSTREAM"), "{err}");
        let err = LinkSpec::parse("a=localhost>b:1").unwrap_err();
        assert!(err.contains("listen address"), "{err}");
    }
}
