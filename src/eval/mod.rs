//! The evaluation harness: campaigns of trials, each on a slot of its own, scored by the
//! cluster's state (never the agent's word), compared with honest statistics.
//!
//! `campaign` reads and plans campaign files; `harness` runs them on slots (`slot`), one
//! trial at a time per slot (`trial`); `score` counts what an agent did from its audit;
//! `analyze` groups trials into slices and compares them with the tests in `stats`.

pub mod analyze;
pub mod campaign;
pub mod harness;
pub mod score;
pub mod slot;
pub mod stats;
pub mod trial;

pub use crate::store::eval::{CampaignRow, CampaignStatus, TrialRow, Verdict};
pub use campaign::Campaign;
