//! What chaos needs of a subject: the faults it adds to the generic catalogue, and where a
//! fault aims when no target is named.
//!
//! Chaos owns this small trait and each subject implements it; whoever makes a [`Chaos`]
//! hands it the instance's subject, so chaos never looks a subject up.
//!
//! [`Chaos`]: super::Chaos

use async_trait::async_trait;

use super::FaultKind;
use super::faults::SubjectFault;
use crate::runtime::{Runtime, is_rig};

/// A subject as chaos sees it.
pub trait SubjectFaults: Send + Sync {
    /// The subject's name, as instances record it.
    fn name(&self) -> &'static str;
    /// The faults it adds to the generic catalogue.
    fn own(&self) -> &'static [SubjectFault] {
        &[]
    }
    /// The node a generic fault aims at when none is named (the one with a data volume, for
    /// `disk_pressure`); `None`: a random node that [`Self::random_target_fits`].
    fn default_target(&self, _fault: FaultKind) -> Option<&'static str> {
        None
    }
    /// Whether a node of `role` may be drawn as a random target (the test rig never is).
    fn random_target_fits(&self, role: &str) -> bool {
        !is_rig(role)
    }
}

/// How a subject applies and undoes one of its own faults: its own code, reached through the
/// fault's type rather than by matching its name.
#[async_trait]
pub trait FaultAction: Send + Sync {
    /// Applies the fault to `target`; says what it did.
    async fn inject(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String>;
    /// Undoes it on `target`, and checks it is undone.
    async fn heal(&self, target: &str, runtime: &dyn Runtime) -> Result<String, String>;
}
