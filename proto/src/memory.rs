//! The memory budget several sessions share: a server's bound on what all its peers together
//! can make it buffer.
//!
//! A session gives every peer a small initial grant (its announced SESSION_WINDOW) without
//! asking anyone; what it gives beyond that (a session window grown for speed, bytes held to
//! reassemble messages) it reserves here first, and returns when it no longer needs it or
//! ends. When the budget is spent, windows stop growing and reassembly beyond the grant is
//! refused, so the total stays under the limit however many peers misbehave.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A budget of bytes shared by sessions (cheap to clone: clones share it).
#[derive(Debug, Clone)]
pub struct MemoryBudget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    limit: u64,
    used: AtomicU64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes, none reserved.
    pub fn new(limit: u64) -> Self {
        MemoryBudget(Arc::new(Shared { limit, used: AtomicU64::new(0) }))
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Bytes reserved now by all sessions sharing the budget.
    pub fn used(&self) -> u64 {
        self.0.used.load(Ordering::Relaxed)
    }

    /// Reserves up to `want` bytes; returns how many it reserved (0 when the budget is spent).
    pub(crate) fn reserve_up_to(&self, want: u64) -> u64 {
        self.reserve(|room| want.min(room))
    }

    /// Reserves exactly `want` bytes, or nothing.
    pub(crate) fn reserve_exact(&self, want: u64) -> bool {
        want == 0 || self.reserve(|room| if room >= want { want } else { 0 }) == want
    }

    /// Reserves what `grant` makes of the room left (nothing if it says 0), atomically.
    fn reserve(&self, grant: impl Fn(u64) -> u64) -> u64 {
        let mut used = self.0.used.load(Ordering::Relaxed);
        loop {
            let n = grant(self.0.limit.saturating_sub(used));
            if n == 0 {
                return 0;
            }
            match self.0.used.compare_exchange_weak(
                used,
                used + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return n,
                Err(now) => used = now,
            }
        }
    }

    /// Gives back `n` bytes reserved earlier.
    pub(crate) fn release(&self, n: u64) {
        if n > 0 {
            self.0.used.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_never_pass_the_limit() {
        let b = MemoryBudget::new(100);
        assert_eq!(b.reserve_up_to(60), 60);
        assert_eq!(b.reserve_up_to(60), 40);
        assert_eq!(b.reserve_up_to(1), 0);
        assert!(!b.reserve_exact(1));
        b.release(50);
        assert!(!b.reserve_exact(51));
        assert!(b.reserve_exact(50));
        assert_eq!(b.used(), 100);
    }
}
