//! PING scheduling, liveness and round-trip time.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    /// When the next PING is due; `None` while one is outstanding or keepalive is off.
    next_ping: Option<Instant>,
    /// A PING should go out with the next transmit.
    pub(crate) due: bool,
    outstanding: Option<([u8; 8], Instant)>,
    counter: u64,
    pub(crate) latest_rtt: Option<Duration>,
    /// PINGs answered so far.
    pub(crate) answered: u64,
    pub(crate) smoothed_rtt: Option<Duration>,
}

impl Keepalive {
    /// The first PING goes out at once, so the RTT is known after one round trip.
    pub(crate) fn new(interval: Option<Duration>, timeout: Duration) -> Self {
        Keepalive {
            interval,
            timeout,
            next_ping: None,
            due: interval.is_some(),
            outstanding: None,
            counter: 0,
            latest_rtt: None,
            answered: 0,
            smoothed_rtt: None,
        }
    }

    /// The PING to transmit now, recorded as outstanding.
    pub(crate) fn take_ping(&mut self, now: Instant) -> [u8; 8] {
        self.due = false;
        self.counter += 1;
        let payload = self.counter.to_be_bytes();
        self.outstanding = Some((payload, now));
        payload
    }

    /// Handles an answer; answers to PINGs we did not send (or no longer wait for) are ignored.
    /// Returns whether the answer was the one awaited (an RTT was measured).
    pub(crate) fn on_pong(&mut self, now: Instant, payload: [u8; 8]) -> bool {
        let Some((expected, sent)) = self.outstanding else { return false };
        if expected != payload {
            return false;
        }
        self.outstanding = None;
        self.answered += 1;
        let rtt = now.saturating_duration_since(sent);
        self.latest_rtt = Some(rtt);
        self.smoothed_rtt = Some(match self.smoothed_rtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
        self.next_ping = self.interval.map(|i| sent + i);
        true
    }

    /// Asks for a PING now, unless one is already on its way (its answer will do).
    pub(crate) fn ping_now(&mut self) {
        if self.outstanding.is_none() {
            self.due = true;
            self.next_ping = None;
        }
    }

    /// `Err(timeout)` if the outstanding PING has waited too long.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some((_, sent)) = self.outstanding {
            if now >= sent + self.timeout {
                return Err(self.timeout);
            }
        }
        if let Some(at) = self.next_ping {
            if now >= at {
                self.next_ping = None;
                self.due = true;
            }
        }
        Ok(())
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        let expiry = self.outstanding.map(|(_, sent)| sent + self.timeout);
        match (expiry, self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
