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

/// Bytes a session holds for its peer (messages its readers hold, replies it queued): a free
/// grant, and beyond it what is reserved from the budget, given back as the bytes go.
#[derive(Debug)]
pub(crate) struct Held {
    bytes: u64,
    free: u64,
    reserved: u64,
    budget: Option<MemoryBudget>,
}

impl Held {
    pub(crate) fn new(free: u32, budget: Option<MemoryBudget>) -> Self {
        Held { bytes: 0, free: u64::from(free), reserved: 0, budget }
    }

    /// The bytes held now.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `n` more bytes; what passes the free grant is reserved. `exact`: all of it, or
    /// nothing is held and this returns `false`; otherwise as much as the budget has.
    pub(crate) fn add(&mut self, n: usize, exact: bool) -> bool {
        let bytes = self.bytes + n as u64;
        let need = bytes.saturating_sub(self.free).saturating_sub(self.reserved);
        if let Some(budget) = self.budget.as_ref().filter(|_| need > 0) {
            if exact && !budget.reserve_exact(need) {
                return false;
            }
            self.reserved += if exact { need } else { budget.reserve_up_to(need) };
        }
        self.bytes = bytes;
        true
    }

    /// Holds `n` fewer bytes: the reservation they no longer need goes back.
    pub(crate) fn remove(&mut self, n: usize) {
        self.bytes = self.bytes.saturating_sub(n as u64);
        let excess = self.reserved.saturating_sub(self.bytes.saturating_sub(self.free));
        if let Some(budget) = self.budget.as_ref().filter(|_| excess > 0) {
            self.reserved -= excess;
            budget.release(excess);
        }
    }

    /// Gives every reservation back and reserves nothing more (the session ended).
    pub(crate) fn release(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.release(std::mem::take(&mut self.reserved));
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

    #[test]
    fn held_bytes_reserve_beyond_the_free_grant_and_give_it_back() {
        let b = MemoryBudget::new(100);
        let mut h = Held::new(50, Some(b.clone()));
        assert!(h.add(50, true));
        assert_eq!(b.used(), 0, "within the free grant");
        assert!(h.add(80, true));
        assert_eq!(b.used(), 80);
        assert!(!h.add(21, true), "exact: more than the budget has");
        assert_eq!((h.bytes(), b.used()), (130, 80));
        assert!(h.add(40, false), "as much as there is");
        assert_eq!((h.bytes(), b.used()), (170, 100));
        h.remove(100);
        assert_eq!(b.used(), 20);
        h.release();
        assert_eq!(b.used(), 0);
        assert!(h.add(1000, true), "after release nothing is reserved");
        assert_eq!(b.used(), 0);
    }
}
