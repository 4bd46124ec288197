//! The agent: claims a ticket, talks to a model, runs its tools through one policy and one
//! executor, and leaves a full record.

pub mod llm;
pub mod policy;
