//! Flow control: how much the peer may still send us, and how much we may send, per channel
//! and for the session as a whole.
//!
//! Credit is consumed by payload bytes, plus [`PART_CHARGE`] for each message part (headers,
//! OPEN routes and metadata are free), and given back when the APPLICATION reads, never when
//! bytes merely arrive: a channel whose reader stalls stops its sender after one window, and
//! nothing else stops with it. The session window bounds the sum: what one peer can make this
//! end hold unread, on all channels, parts and all.

use std::time::{Duration, Instant};

use crate::memory::MemoryBudget;

/// The credit a message part takes beyond its bytes (PROTOCOL.md section 8): what keeping it
/// apart costs the receiver (a queue slot, a buffer handle, an allocation). Because a part pays
/// for itself, a window full of tiny or empty messages holds no more memory than the window,
/// and a sender that keeps within its credit is never reset for sending them.
pub const PART_CHARGE: usize = 64;

/// The credit a DATA frame or OPEN data part with `len` payload bytes takes: a frame that
/// carries bytes or ends a message is a part, `len + PART_CHARGE`; one that carries neither (an
/// OPEN without data, a lone FIN) is free.
pub fn credit_cost(len: usize, eom: bool) -> usize {
    match len > 0 || eom {
        true => len + PART_CHARGE,
        false => 0,
    }
}

/// The receiving side's view: what the peer may still send on one channel.
///
/// The window starts at the announced INITIAL_WINDOW. With a `max` above it, it doubles (up
/// to `max`) when the application read a whole window in less than two smoothed round trips:
/// then the window, not the reader, limits the channel, which moves one window per round trip.
/// Growth costs no memory beyond the session window's bound: every unread byte also holds
/// session credit.
#[derive(Debug, Clone)]
pub(crate) struct RecvWindow {
    /// The window we aim to keep open (our announced initial window, or more once grown).
    size: u32,
    /// The most `size` grows to.
    max: u32,
    /// Bytes the peer may send before it needs more credit.
    available: u32,
    /// Bytes the application consumed that we have not yet given back.
    unreturned: u32,
    /// When the current measuring epoch began, and the bytes read since (growth only).
    epoch: Option<(Instant, u32)>,
}

impl RecvWindow {
    pub(crate) fn new(size: u32, max: u32) -> Self {
        RecvWindow { size, max: max.max(size), available: size, unreturned: 0, epoch: None }
    }

    /// The window now, in bytes.
    #[cfg(test)]
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    /// Accounts for `len` bytes of credit (see [`credit_cost`]) a received frame took; `false`
    /// if the peer exceeded its credit.
    pub(crate) fn consume(&mut self, len: usize) -> bool {
        match u32::try_from(len) {
            Ok(len) if len <= self.available => {
                self.available -= len;
                true
            }
            _ => false,
        }
    }

    /// Records that the application read what took `len` bytes of credit at `now` (`rtt`: the
    /// smoothed round trip, once measured). Returns the credit to send now, if any.
    ///
    /// Credit is batched until a quarter of the window is owed: small enough that the sender
    /// never runs dry while the WINDOW frame is in flight, large enough that a reader pulling
    /// one byte at a time does not answer each byte with a frame (CVE-2019-9511).
    pub(crate) fn on_read(
        &mut self,
        len: usize,
        now: Instant,
        rtt: Option<Duration>,
    ) -> Option<u32> {
        // `len` came out of bytes that `consume` admitted, so it fits in the window.
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.unreturned = self.unreturned.saturating_add(len);
        if self.size < self.max {
            self.maybe_grow(len, now, rtt);
        }
        if self.unreturned >= (self.size / 4).max(1) {
            let credit = self.unreturned;
            self.unreturned = 0;
            self.available = self.available.saturating_add(credit);
            Some(credit)
        } else {
            None
        }
    }

    /// Doubles the window when a whole one was read within two round trips; the growth is
    /// credit owed like what was read.
    fn maybe_grow(&mut self, len: u32, now: Instant, rtt: Option<Duration>) {
        match &mut self.epoch {
            // The first read starts the first epoch: how long its bytes took is not known.
            None => self.epoch = Some((now, 0)),
            Some((_, read)) => *read = read.saturating_add(len),
        }
        let Some((start, _)) = self.epoch.filter(|&(_, read)| read >= self.size) else { return };
        self.epoch = Some((now, 0));
        if rtt.is_some_and(|rtt| now.saturating_duration_since(start) < 2 * rtt) {
            let grown = self.size.min(self.max - self.size);
            self.size += grown;
            self.unreturned = self.unreturned.saturating_add(grown);
        }
    }
}

/// The receiving side's view of the whole session: what the peer may still send on all
/// channels together, and how large that window is now.
///
/// The window starts at the announced SESSION_WINDOW, the grant every peer has. It doubles, up
/// to `max`, when the peer has used three quarters of it (a few channels hold unread data and
/// the others need room), and when the application read a whole window in less than two round
/// trips: then the window, not the reader, limits the peer (its credit is on the way back while
/// it waits; the bandwidth × round trip product is larger than the window). What it grows
/// beyond the initial grant is reserved from the shared [`MemoryBudget`] first (the credit pays
/// for the parts too, so the window is what unread data costs), so growth stops when the
/// budget is spent; [`SessionWindow::release`] gives it back when the session ends. A
/// grown window is not shrunk: credit once given is the peer's to use.
#[derive(Debug)]
pub(crate) struct SessionWindow {
    initial: u64,
    size: u64,
    max: u64,
    available: u64,
    unreturned: u64,
    budget: Option<MemoryBudget>,
    /// When the current measuring epoch began, and the bytes read since (see `on_read`).
    epoch: Option<(Instant, u64)>,
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
            epoch: None,
        }
    }

    /// The window now, in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Accounts for `len` bytes of credit a received frame took; `false` if the peer exceeded
    /// its credit.
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
        if self.available >= self.size / 4 {
            return 0;
        }
        self.double()
    }

    /// Doubles the window (up to `max`) as far as the budget allows; returns the growth.
    fn double(&mut self) -> u32 {
        if self.size >= self.max {
            return 0;
        }
        let want = self.size.min(self.max - self.size);
        let grown = match &self.budget {
            Some(budget) => budget.reserve_up_to(want),
            None => want,
        };
        self.size += grown;
        self.available += grown;
        // `size` never passes `max`, a u32.
        u32::try_from(grown).unwrap_or(u32::MAX)
    }

    /// Records that `len` received bytes were read (or discarded) at `now`; `rtt` is the
    /// smoothed round trip, once measured. Returns the credit to send now, if any: batched until
    /// a quarter of the window is owed, as for channels, plus the growth when a whole window
    /// was read within two round trips.
    pub(crate) fn on_read(
        &mut self,
        len: usize,
        now: Instant,
        rtt: Option<Duration>,
    ) -> Option<u32> {
        self.unreturned += len as u64;
        match &mut self.epoch {
            // The first read starts the first epoch: how long its bytes took is not known.
            None => self.epoch = Some((now, 0)),
            Some((_, read)) => *read += len as u64,
        }
        if let Some((start, _)) = self.epoch.filter(|&(_, read)| read >= self.size) {
            let fast = rtt.is_some_and(|rtt| now.saturating_duration_since(start) < 2 * rtt);
            self.epoch = Some((now, 0));
            if fast {
                let grown = u64::from(self.double());
                // The growth is credit too: it goes out with what is owed.
                self.available -= grown;
                self.unreturned += grown;
            }
        }
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
            budget.release(self.size - self.initial);
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
        let mut w = RecvWindow::new(1000, 1000);
        let now = Instant::now();
        assert!(w.consume(1000));
        assert!(!w.consume(1));
        assert_eq!(w.on_read(249, now, None), None);
        assert_eq!(w.on_read(1, now, None), Some(250));
        assert!(w.consume(250));
        assert!(!w.consume(1));
    }

    #[test]
    fn a_channel_window_doubles_up_to_its_max_when_read_within_two_round_trips() {
        let (t0, rtt) = (Instant::now(), Some(Duration::from_millis(10)));
        let mut w = RecvWindow::new(100, 400);
        assert!(w.consume(100));
        // The first read starts the measure; a window read in 100 ms (ten round trips): the
        // reader limits, no growth.
        assert_eq!(w.on_read(100, t0, rtt), Some(100));
        assert!(w.consume(100));
        assert_eq!(w.on_read(100, t0 + Duration::from_millis(100), rtt), Some(100));
        assert_eq!(w.size(), 100);
        // The next window in 15 ms: doubled, the growth sent as credit with what was read.
        assert!(w.consume(100));
        assert_eq!(w.on_read(100, t0 + Duration::from_millis(115), rtt), Some(200));
        assert_eq!(w.size(), 200);
        assert!(w.consume(200), "the peer has the grown window");
        assert!(!w.consume(1));
        // Twice more quickly: 400, the max, and no further.
        assert_eq!(w.on_read(200, t0 + Duration::from_millis(120), rtt), Some(400));
        assert_eq!(w.size(), 400);
        assert!(w.consume(400));
        assert_eq!(w.on_read(400, t0 + Duration::from_millis(121), rtt), Some(400));
        assert_eq!(w.size(), 400);
        // Without a max above the initial window it never grows.
        let mut fixed = RecvWindow::new(100, 0);
        for i in 0..10 {
            assert!(fixed.consume(100));
            assert_eq!(fixed.on_read(100, t0 + Duration::from_micros(i), rtt), Some(100));
        }
        assert_eq!(fixed.size(), 100);
    }

    #[test]
    fn the_session_window_grows_when_nearly_used_and_within_the_budget() {
        let budget = MemoryBudget::new(150);
        let mut w = SessionWindow::new(100, 1000, Some(budget.clone()));
        assert!(w.consume(75));
        assert_eq!(w.grow(), 0, "a quarter is left");
        assert!(w.consume(1));
        assert_eq!(w.grow(), 100, "less than a quarter left: doubled, the growth reserved");
        assert_eq!((w.size(), budget.used()), (200, 100));
        assert!(w.consume(124));
        assert!(!w.consume(1));
        assert_eq!(w.grow(), 50, "what the budget's rest covers");
        assert!(w.consume(50));
        assert_eq!(w.grow(), 0, "the budget is spent");
        assert_eq!((w.size(), budget.used()), (250, 150));
        // Reads return credit in quarters of the window.
        let now = Instant::now();
        assert_eq!(w.on_read(61, now, None), None);
        assert_eq!(w.on_read(1, now, None), Some(62));
        w.release();
        w.release();
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_session_window_doubles_when_a_window_is_read_within_two_round_trips() {
        let budget = MemoryBudget::new(1000);
        let mut w = SessionWindow::new(100, 1000, Some(budget.clone()));
        let rtt = Some(Duration::from_millis(20));
        let t0 = Instant::now();
        // A window read slowly (in 100 ms, five round trips): the reader limits, no growth.
        assert!(w.consume(100));
        assert_eq!(w.on_read(100, t0, rtt), Some(100));
        assert!(w.consume(100));
        assert_eq!(w.on_read(100, t0 + Duration::from_millis(100), rtt), Some(100));
        assert_eq!(w.size(), 100);
        // The next one in 30 ms (under two round trips): doubled, the growth sent as credit.
        assert!(w.consume(100));
        assert_eq!(w.on_read(100, t0 + Duration::from_millis(130), rtt), Some(200));
        assert_eq!((w.size(), budget.used()), (200, 100));
        assert!(w.consume(200), "the peer may now have 200 in flight");
        assert!(!w.consume(1));
        // No round trip measured yet: no growth by time.
        let mut fresh = SessionWindow::new(100, 1000, None);
        assert!(fresh.consume(100));
        assert_eq!(fresh.on_read(100, t0, None), Some(100));
        assert!(fresh.consume(100));
        assert_eq!(fresh.on_read(100, t0, None), Some(100));
        assert_eq!(fresh.size(), 100);
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
