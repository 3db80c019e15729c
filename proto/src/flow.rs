//! Flow control: how much the peer may still send us, and how much we may send, per channel
//! and for the session as a whole.
//!
//! Credit is consumed by payload bytes (headers, OPEN routes and metadata are free) and given
//! back when the APPLICATION reads, never when bytes merely arrive: a channel whose reader
//! stalls stops its sender after one window, and nothing else stops with it. The session
//! window bounds the sum: what one peer can make this end hold unread, on all channels.

use crate::memory::MemoryBudget;

/// The receiving side's view: what the peer may still send on one channel.
#[derive(Debug, Clone)]
pub(crate) struct RecvWindow {
    /// The window we aim to keep open (our announced initial window).
    size: u32,
    /// Bytes the peer may send before it needs more credit.
    available: u32,
    /// Bytes the application consumed that we have not yet given back.
    unreturned: u32,
}

impl RecvWindow {
    pub(crate) fn new(size: u32) -> Self {
        RecvWindow { size, available: size, unreturned: 0 }
    }

    /// Accounts for `len` received payload bytes; `false` if the peer exceeded its credit.
    pub(crate) fn consume(&mut self, len: usize) -> bool {
        match u32::try_from(len) {
            Ok(len) if len <= self.available => {
                self.available -= len;
                true
            }
            _ => false,
        }
    }

    /// Records that the application read `len` bytes. Returns the credit to send now, if any.
    ///
    /// Credit is batched until a quarter of the window is owed: small enough that the sender
    /// never runs dry while the WINDOW frame is in flight, large enough that a reader pulling
    /// one byte at a time does not answer each byte with a frame (CVE-2019-9511).
    pub(crate) fn on_read(&mut self, len: usize) -> Option<u32> {
        // `len` came out of bytes that `consume` admitted, so it fits in the window.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.unreturned = self.unreturned.saturating_add(len);
        if self.unreturned >= (self.size / 4).max(1) {
            let credit = self.unreturned;
            self.unreturned = 0;
            self.available = self.available.saturating_add(credit);
            Some(credit)
        } else {
            None
        }
    }
}

/// The receiving side's view of the whole session: what the peer may still send on all
/// channels together, and how large that window is now.
///
/// The window starts at the announced SESSION_WINDOW, the grant every peer has. When the peer
/// has used three quarters of it (the window, not the reader, may be what limits it; or a few
/// channels hold unread data and the others need room), it doubles, up to `max`. What it grows
/// beyond the initial grant is reserved from the shared [`MemoryBudget`] first (twice: the bytes
/// and the most their unread parts cost beyond them), so growth stops
/// when the budget is spent; [`SessionWindow::release`] gives it back when the session ends. A
/// grown window is not shrunk: credit once given is the peer's to use.
#[derive(Debug)]
pub(crate) struct SessionWindow {
    initial: u64,
    size: u64,
    max: u64,
    available: u64,
    unreturned: u64,
    budget: Option<MemoryBudget>,
}

impl SessionWindow {
    pub(crate) fn new(initial: u32, max: u32, budget: Option<MemoryBudget>) -> Self {
        let initial = u64::from(initial);
        SessionWindow {
            initial,
            size: initial,
            max: u64::from(max).max(initial),
            available: initial,
            unreturned: 0,
            budget,
        }
    }

    /// The window now, in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Accounts for `len` received payload bytes; `false` if the peer exceeded its credit.
    pub(crate) fn consume(&mut self, len: usize) -> bool {
        match u64::try_from(len) {
            Ok(len) if len <= self.available => {
                self.available -= len;
                true
            }
            _ => false,
        }
    }

    /// Grows the window if the peer has less than a quarter of it left and the budget has
    /// room; returns the credit to send for the growth (0 if none).
    pub(crate) fn grow(&mut self) -> u32 {
        if self.available >= self.size / 4 || self.size >= self.max {
            return 0;
        }
        let want = self.size.min(self.max - self.size);
        // Twice the growth is reserved: the bytes, and what their unread parts may cost beyond
        // them (at most as much again, see `Session::handle_message`).
        let grown = match &self.budget {
            Some(budget) => budget.reserve_up_to(2 * want) / 2,
            None => want,
        };
        self.size += grown;
        self.available += grown;
        // `size` never passes `max`, a u32.
        u32::try_from(grown).unwrap_or(u32::MAX)
    }

    /// Records that `len` received bytes were read (or discarded). Returns the credit to send
    /// now, if any: batched until a quarter of the window is owed, as for channels.
    pub(crate) fn on_read(&mut self, len: usize) -> Option<u32> {
        self.unreturned += len as u64;
        if self.unreturned < (self.size / 4).max(1) {
            return None;
        }
        let credit = std::mem::take(&mut self.unreturned);
        self.available += credit;
        Some(u32::try_from(credit).unwrap_or(u32::MAX))
    }

    /// Gives the growth reserved from the budget back (the session ended); idempotent.
    pub(crate) fn release(&mut self) {
        if let Some(budget) = self.budget.take() {
            budget.release(2 * (self.size - self.initial));
        }
    }
}

/// The sending side's view: bytes the peer allows us to send on one channel, or on the whole
/// session.
#[derive(Debug, Clone)]
pub(crate) struct SendCredit {
    available: u64,
}

impl SendCredit {
    pub(crate) fn new(initial: u32) -> Self {
        SendCredit { available: u64::from(initial) }
    }

    pub(crate) fn available(&self) -> usize {
        usize::try_from(self.available).unwrap_or(usize::MAX)
    }

    pub(crate) fn spend(&mut self, len: usize) {
        self.available -= len as u64;
    }

    /// Adds credit; `false` if the total would pass 2^32-1 (a FLOW_CONTROL error).
    pub(crate) fn grant(&mut self, increment: u32) -> bool {
        let total = self.available + u64::from(increment);
        if total > u64::from(u32::MAX) {
            return false;
        }
        self.available = total;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_returns_only_after_a_quarter_is_read() {
        let mut w = RecvWindow::new(1000);
        assert!(w.consume(1000));
        assert!(!w.consume(1));
        assert_eq!(w.on_read(249), None);
        assert_eq!(w.on_read(1), Some(250));
        assert!(w.consume(250));
        assert!(!w.consume(1));
    }

    #[test]
    fn the_session_window_grows_when_nearly_used_and_within_the_budget() {
        let budget = MemoryBudget::new(300);
        let mut w = SessionWindow::new(100, 1000, Some(budget.clone()));
        assert!(w.consume(75));
        assert_eq!(w.grow(), 0, "a quarter is left");
        assert!(w.consume(1));
        assert_eq!(w.grow(), 100, "less than a quarter left: doubled, twice that reserved");
        assert_eq!((w.size(), budget.used()), (200, 200));
        assert!(w.consume(124));
        assert!(!w.consume(1));
        assert_eq!(w.grow(), 50, "what the budget's rest covers twice");
        assert!(w.consume(50));
        assert_eq!(w.grow(), 0, "the budget is spent");
        assert_eq!((w.size(), budget.used()), (250, 300));
        // Reads return credit in quarters of the window.
        assert_eq!(w.on_read(61), None);
        assert_eq!(w.on_read(1), Some(62));
        w.release();
        w.release();
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn credit_never_passes_u32_max() {
        let mut c = SendCredit::new(u32::MAX - 1);
        assert!(c.grant(1));
        assert!(!c.grant(1));
        assert_eq!(c.available(), u32::MAX as usize);
    }
}
