//! Per-channel flow control: how much the peer may still send us, and how much we may send.
//!
//! Credit is consumed by payload bytes (headers, OPEN routes and metadata are free) and given
//! back when the APPLICATION reads, never when bytes merely arrive: a channel whose reader
//! stalls stops its sender after one window, and nothing else stops with it.

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

/// The sending side's view: bytes the peer allows us to send on one channel.
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
    fn credit_never_passes_u32_max() {
        let mut c = SendCredit::new(u32::MAX - 1);
        assert!(c.grant(1));
        assert!(!c.grant(1));
        assert_eq!(c.available(), u32::MAX as usize);
    }
}
