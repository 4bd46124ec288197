//! Operator watches a distributed system, opens tickets when its invariants break, and lets
//! an agent repair it under a person's eye. The README's *Architecture* is the map of the
//! parts and their floors.

// No panics on bad input or a failed call outside tests: errors with context instead (proven
// invariants say so with `#[expect]`).
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod chaos;
pub mod clock;
pub mod config;
pub mod eval;
pub mod invariant;
pub mod load;
pub mod logging;
pub mod monitor;
pub mod paths;
pub mod policy;
pub mod properties;
pub mod readable;
pub mod runtime;
pub mod shutdown;
pub mod store;
pub mod subjects;
pub mod tickets;
pub mod tui;
