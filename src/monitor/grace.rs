//! Grace periods, kept per violation key: a violation opens a ticket only once it has lasted
//! its invariant's grace period without a break.

use std::collections::HashMap;
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
pub struct Grace {
    first_seen: HashMap<String, Instant>,
}

impl Grace {
    /// Notes the keys violated now (forgetting the others) and says, for each, whether its
    /// grace period is over.
    pub fn update<'a>(
        &mut self,
        now: Instant,
        violated: impl IntoIterator<Item = (&'a str, Duration)>,
    ) -> Vec<bool> {
        let mut seen = HashMap::new();
        let due = violated
            .into_iter()
            .map(|(key, grace)| {
                let since = *self.first_seen.get(key).unwrap_or(&now);
                seen.insert(key.to_string(), since);
                now.duration_since(since) >= grace
            })
            .collect();
        self.first_seen = seen;
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_after_the_grace_period_and_reset_by_a_break() {
        let mut g = Grace::default();
        let t = Instant::now();
        let two = Duration::from_secs(2);
        assert_eq!(
            g.update(t, [("a", two), ("b", Duration::ZERO)]),
            [false, true]
        );
        assert_eq!(g.update(t + Duration::from_secs(1), [("a", two)]), [false]);
        assert_eq!(g.update(t + Duration::from_secs(2), [("a", two)]), [true]);
        // A cycle without it: the clock starts again.
        assert_eq!(g.update(t + Duration::from_secs(3), []), Vec::<bool>::new());
        assert_eq!(g.update(t + Duration::from_secs(4), [("a", two)]), [false]);
    }
}
