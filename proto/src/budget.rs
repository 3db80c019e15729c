//! Token buckets for abuse budgets: a burst, refilled at a steady rate.

use std::time::Instant;

/// A budget of events: at most `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Events allowed at once.
    pub burst: u32,
    /// Events added back each second.
    pub per_second: u32,
}

/// The running state of a [`Budget`].
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    budget: Budget,
    tokens: u32,
    last: Instant,
}

impl Bucket {
    pub(crate) fn new(budget: Budget, now: Instant) -> Self {
        Bucket { budget, tokens: budget.burst, last: now }
    }

    /// Spends one token; `false` when the budget is exhausted.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    fn refill(&mut self, now: Instant) {
        if self.budget.per_second == 0 {
            return;
        }
        let elapsed = now.saturating_duration_since(self.last);
        let earned = elapsed.as_micros() * u128::from(self.budget.per_second) / 1_000_000;
        if earned == 0 {
            return;
        }
        // Advance `last` only by the time the whole tokens took, so fractions are not lost.
        let used = std::time::Duration::from_micros(
            (earned * 1_000_000 / u128::from(self.budget.per_second)) as u64,
        );
        self.last += used;
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(self.budget.burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill_at_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(Budget { burst: 3, per_second: 10 }, t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_millis(99)));
        assert!(b.take(t0 + Duration::from_millis(100)));
        assert!(!b.take(t0 + Duration::from_millis(150)));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
    }
}
