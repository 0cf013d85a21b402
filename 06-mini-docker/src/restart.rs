//! `--restart`: the monitor is the container's parent, so it is the one that sees
//! it end, and the one that starts it again. The rules and the back-off are
//! Docker's restart manager's: 100 ms before the first restart, twice as long
//! before each next one, at most a minute; back to 100 ms once a run lasted 10 s.

use std::time::Duration;

use crate::container::RestartPolicy;

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long was a success: the back-off starts over.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// What the monitor knows between runs: the policy, the last delay, the count.
#[derive(Debug, Clone)]
pub struct Restarts {
    policy: RestartPolicy,
    delay: Duration,
    pub count: u32,
}

impl Restarts {
    pub fn new(policy: RestartPolicy) -> Restarts {
        Restarts {
            policy,
            delay: Duration::ZERO,
            count: 0,
        }
    }

    // ANCHOR: restarts
    /// After a run that ended with `code` and lasted `ran`: how long to wait before
    /// the restart, or `None` for no restart. `by_hand`: `stop` or `kill` ended it.
    pub fn next(&mut self, code: i32, ran: Duration, by_hand: bool) -> Option<Duration> {
        // ANCHOR: hole_restarts
        if by_hand {
            return None;
        }
        let restart = match self.policy.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                let max = self.policy.maximum_retry_count;
                code != 0 && (max == 0 || self.count < max)
            }
            _ => false,
        };
        if !restart {
            return None;
        }
        self.delay = match self.delay {
            _ if ran >= RESET_AFTER => FIRST_DELAY,
            Duration::ZERO => FIRST_DELAY,
            delay => (delay * 2).min(MAX_DELAY),
        };
        self.count += 1;
        Some(self.delay)
        // ANCHOR_END: hole_restarts
    }
    // ANCHOR_END: restarts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(text: &str) -> Restarts {
        Restarts::new(RestartPolicy::parse(text).unwrap())
    }

    #[test]
    fn dockers_rules() {
        let quick = Duration::from_millis(5);
        assert_eq!(policy("no").next(1, quick, false), None);
        let mut on_failure = policy("on-failure:2");
        assert_eq!(on_failure.next(0, quick, false), None, "a success");
        assert_eq!(on_failure.next(3, quick, false), Some(FIRST_DELAY));
        assert_eq!(on_failure.next(3, quick, false), Some(FIRST_DELAY * 2));
        assert_eq!(
            on_failure.next(3, quick, false),
            None,
            "two retries at most"
        );
        let mut always = policy("always");
        assert_eq!(always.next(0, quick, true), None, "stopped by hand");
        let delays: Vec<_> = (0..12)
            .filter_map(|_| always.next(0, quick, false))
            .collect();
        assert_eq!(delays[..3], [FIRST_DELAY, FIRST_DELAY * 2, FIRST_DELAY * 4]);
        assert_eq!(delays[11], MAX_DELAY);
        assert_eq!(always.next(0, RESET_AFTER, false), Some(FIRST_DELAY));
        for bad in ["sometimes", "always:3", "on-failure:x"] {
            assert!(RestartPolicy::parse(bad).is_err(), "{bad}");
        }
    }
}
