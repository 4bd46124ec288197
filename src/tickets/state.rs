//! The ticket state machine as one pure function, so every writer obeys the same rules.

use super::model::{Resolution, Status};

/// Something that can happen to a ticket's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// An agent takes it (with a lease).
    Claim,
    /// An agent gives it back, or its lease ran out.
    Release,
    /// An agent says it is fixed; the monitor will check.
    Verify,
    /// The monitor still sees the violation after the verify window: back to the agent.
    VerifyFailed,
    /// The agent gave up or spent its budget; a person decides.
    Escalate,
    Resolve(Resolution),
    /// The violation came back within the flap window.
    Reopen,
}

/// The status after `t`, or why `t` cannot happen from `from`.
pub fn next(from: Status, t: Transition) -> Result<Status, &'static str> {
    use Status::*;
    use Transition::*;
    match (from, t) {
        (Open, Claim) => Ok(InProgress),
        (InProgress, Release) => Ok(Open),
        (InProgress, Verify) => Ok(Verifying),
        (Verifying, VerifyFailed) => Ok(InProgress),
        (Open | InProgress | Verifying, Escalate) => Ok(Escalated),
        (Verifying, Resolve(Resolution::Verified)) => Ok(Resolved),
        (Open | InProgress | Escalated, Resolve(Resolution::SelfHealed)) => Ok(Resolved),
        (Open | InProgress | Verifying | Escalated, Resolve(Resolution::Manual)) => Ok(Resolved),
        (Resolved, Reopen) => Ok(Open),
        (Resolved, _) => Err("it is already resolved"),
        (_, Claim) => Err("only an open ticket can be claimed"),
        (_, Release | Verify) => Err("no agent is working on it"),
        (_, VerifyFailed) => Err("it is not being verified"),
        (_, Escalate) => Err("it is already escalated"),
        (_, Resolve(Resolution::Verified)) => Err("only a ticket being verified is verified"),
        (_, Resolve(_)) => Err("a ticket being verified resolves as verified"),
        (_, Reopen) => Err("only a resolved ticket can be reopened"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;
    use Transition::*;

    #[test]
    fn the_happy_path() {
        let s = next(Open, Claim).unwrap();
        let s = next(s, Verify).unwrap();
        let s = next(s, Resolve(Resolution::Verified)).unwrap();
        assert_eq!(s, Resolved);
        assert_eq!(next(s, Reopen), Ok(Open));
    }

    #[test]
    fn a_model_saying_fixed_does_not_resolve() {
        assert_eq!(next(InProgress, Verify), Ok(Verifying));
        assert!(next(InProgress, Resolve(Resolution::Verified)).is_err());
        assert!(next(Open, Resolve(Resolution::Verified)).is_err());
    }

    #[test]
    fn verification_can_fail_back_to_the_agent() {
        assert_eq!(next(Verifying, VerifyFailed), Ok(InProgress));
        assert!(next(Open, VerifyFailed).is_err());
    }

    #[test]
    fn self_healing_only_while_nobody_claims_to_have_fixed_it() {
        for s in [Open, InProgress, Escalated] {
            assert_eq!(
                next(s, Resolve(Resolution::SelfHealed)),
                Ok(Resolved),
                "{s}"
            );
        }
        assert!(next(Verifying, Resolve(Resolution::SelfHealed)).is_err());
    }

    #[test]
    fn people_can_close_anything_open_and_escalated_stays_put() {
        for s in [Open, InProgress, Verifying, Escalated] {
            assert_eq!(next(s, Resolve(Resolution::Manual)), Ok(Resolved));
        }
        assert!(
            next(Escalated, Claim).is_err(),
            "escalated tickets are not retried forever"
        );
        assert!(next(Resolved, Resolve(Resolution::Manual)).is_err());
        assert!(next(Resolved, Claim).is_err());
        assert!(next(Open, Reopen).is_err());
    }
}
