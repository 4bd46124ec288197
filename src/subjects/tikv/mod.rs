//! TiKV: three PD members and three TiKV stores, watched through PD's HTTP API and each
//! store's status port. Built floor by floor: the shapes PD and TiKV answer in, the look,
//! the invariants; the runtime's plan, faults, runbook and registration come next.

pub mod check;
pub mod client;
pub mod config;
pub mod observe;
pub mod pd;
pub mod policy;
pub mod topology;

#[cfg(test)]
mod tests;
