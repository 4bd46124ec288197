//! The engine's event stream, narrowed to this instance's containers and to what a monitor
//! cares about (a container dying, running out of memory, pausing, failing its health check),
//! so that a dead container becomes a ticket without waiting for the next poll.

use std::collections::HashMap;

use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;
use futures::stream::BoxStream;
use tracing::{debug, warn};

use super::engine::{self, LABEL_NODE};
use crate::runtime::NodeEvent;

/// The actions that change what the monitor would see (not `kill`: a signal is sent, but the
/// `die` that may follow is what changes anything).
pub const WATCHED: &[&str] = &["die", "oom", "pause", "unpause", "start", "health_status"];

/// Events of the containers labelled with `instance` and `owner`. Ends when the engine
/// closes the stream; an observer falls back to polling then.
pub fn stream(address: String, instance: u32, owner: String) -> BoxStream<'static, NodeEvent> {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "label".to_string(),
            engine::instance_labels(instance, &owner),
        ),
        (
            "event".to_string(),
            WATCHED.iter().map(|s| s.to_string()).collect(),
        ),
    ]);
    futures::stream::once(async move { engine::connect(&address).await })
        .flat_map(move |docker| match docker {
            Ok(d) => d
                .events(Some(
                    EventsOptionsBuilder::default().filters(&filters).build(),
                ))
                .filter_map(|e| async move {
                    match e {
                        Ok(msg) => {
                            let attrs = msg.actor.and_then(|a| a.attributes).unwrap_or_default();
                            let node = attrs.get(LABEL_NODE)?.clone();
                            let action = msg.action?;
                            debug!(%node, %action, "engine event");
                            Some(NodeEvent { node, action })
                        }
                        Err(e) => {
                            warn!(error = %engine::describe(&e), "engine event stream failed");
                            None
                        }
                    }
                })
                .boxed(),
            Err(e) => {
                warn!(error = %e, "no engine events; the monitor polls only");
                futures::stream::empty().boxed()
            }
        })
        .boxed()
}
