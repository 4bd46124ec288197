//! What both streaming backends share: server-sent events from any byte stream (the HTTP
//! body, or a recording for tests and fuzzing), each read or failed the same way.

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc::UnboundedSender;

use super::retry::Failure;
use super::{ModelError, ModelEvent, Turn};

/// The events of a byte stream; a transport error is a cut stream (retried), anything
/// else malformed a protocol error.
pub fn events<B, E>(
    bytes: impl Stream<Item = Result<B, E>> + Unpin,
) -> impl Stream<Item = Result<Event, Failure>> + Unpin
where
    B: AsRef<[u8]>,
    E: std::error::Error,
{
    bytes.eventsource().map(|item| match item {
        Ok(e) => Ok(e),
        Err(EventStreamError::Transport(e)) => {
            Err(Failure::cut(crate::runtime::health::error_chain(&e)))
        }
        Err(e) => Err(Failure::protocol(format!("malformed event stream: {e}"))),
    })
}

/// A recorded stream delivered in `chunks` (cut anywhere, as the network may), read by a
/// backend's `read` — the same code the live path runs.
pub fn decode_recorded<'a, R, F>(chunks: &'a [&'a [u8]], read: R) -> Result<Turn, ModelError>
where
    R: FnOnce(
        futures::stream::Iter<std::vec::IntoIter<Result<Vec<u8>, std::convert::Infallible>>>,
        UnboundedSender<ModelEvent>,
    ) -> F,
    F: std::future::Future<Output = Result<Turn, Failure>>,
{
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let bytes: Vec<_> = chunks.iter().map(|c| Ok(c.to_vec())).collect();
    futures::executor::block_on(read(futures::stream::iter(bytes), tx)).map_err(Failure::into_error)
}
