//! PING scheduling, liveness and round-trip time.
//!
//! The liveness deadline runs from the moment a PING is DUE, not from when it is sent: a peer
//! that stops reading blocks our writes, so the PING may never leave, and that peer must be
//! detected all the same (within interval + timeout).

use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct Keepalive {
    interval: Option<Duration>,
    timeout: Duration,
    /// When the next PING is due; `None` while one is due or outstanding, or keepalive is off.
    next_ping: Option<Instant>,
    /// A PING should go out with the next transmit.
    pub(crate) due: bool,
    /// The PING in flight and when it was sent (for the round-trip time).
    outstanding: Option<([u8; 8], Instant)>,
    /// When the session fails unless the due or outstanding PING is answered.
    deadline: Option<Instant>,
    counter: u64,
    /// Mixed into every payload, so a peer that does not read cannot forge the answer.
    secret: u64,
    pub(crate) latest_rtt: Option<Duration>,
    /// PINGs answered so far.
    pub(crate) answered: u64,
    pub(crate) smoothed_rtt: Option<Duration>,
}

/// The payload of PING number `n`: a keyed permutation of `n` (the splitmix64 finalizer), so
/// consecutive PINGs differ and a peer that never reads the connection cannot guess one and
/// keep a dead session alive with forged answers.
fn payload(secret: u64, n: u64) -> u64 {
    let mut z = n.wrapping_add(secret).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Keepalive {
    /// The first PING goes out at once, so the RTT is known after one round trip.
    /// `secret` keys the payloads (wsmux seeds it at random per session).
    pub(crate) fn new(
        interval: Option<Duration>,
        timeout: Duration,
        secret: u64,
        now: Instant,
    ) -> Self {
        Keepalive {
            interval,
            timeout,
            next_ping: None,
            due: interval.is_some(),
            outstanding: None,
            deadline: interval.map(|_| now + timeout),
            counter: 0,
            secret,
            latest_rtt: None,
            answered: 0,
            smoothed_rtt: None,
        }
    }

    /// The PING to transmit now, recorded as outstanding.
    pub(crate) fn take_ping(&mut self, now: Instant) -> [u8; 8] {
        self.due = false;
        self.counter += 1;
        let payload = payload(self.secret, self.counter).to_be_bytes();
        self.outstanding = Some((payload, now));
        self.deadline.get_or_insert(now + self.timeout);
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
        self.deadline = None;
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

    /// Asks for a PING now, unless one is already due or on its way (its answer will do).
    pub(crate) fn ping_now(&mut self, now: Instant) {
        if self.outstanding.is_none() && !self.due {
            self.due = true;
            self.next_ping = None;
            self.deadline = Some(now + self.timeout);
        }
    }

    /// `Err(timeout)` if the due or outstanding PING has waited too long.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> Result<(), Duration> {
        if self.deadline.is_some_and(|d| now >= d) {
            return Err(self.timeout);
        }
        if self.next_ping.is_some_and(|at| now >= at) {
            self.next_ping = None;
            self.due = true;
            self.deadline = Some(now + self.timeout);
        }
        Ok(())
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        match (self.deadline, self.next_ping) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ping_that_cannot_leave_still_times_out() {
        let t0 = Instant::now();
        let (interval, timeout) = (Duration::from_secs(15), Duration::from_secs(15));
        let mut k = Keepalive::new(Some(interval), timeout, 7, t0);
        // The first PING is due at once but never taken (our writes are blocked).
        assert_eq!(k.next_timeout(), Some(t0 + timeout));
        assert!(k.on_timeout(t0 + timeout - Duration::from_millis(1)).is_ok());
        assert_eq!(k.on_timeout(t0 + timeout), Err(timeout));
    }

    #[test]
    fn an_answered_ping_schedules_the_next_and_clears_the_deadline() {
        let t0 = Instant::now();
        let mut k = Keepalive::new(Some(Duration::from_secs(10)), Duration::from_secs(5), 7, t0);
        let payload = k.take_ping(t0);
        assert!(k.on_pong(t0 + Duration::from_millis(3), payload));
        assert_eq!(k.latest_rtt, Some(Duration::from_millis(3)));
        assert_eq!(k.next_timeout(), Some(t0 + Duration::from_secs(10)));
        // Due at 10 s, never sent: the session fails at 15 s.
        assert!(k.on_timeout(t0 + Duration::from_secs(10)).is_ok());
        assert!(k.due);
        assert_eq!(k.next_timeout(), Some(t0 + Duration::from_secs(15)));
        assert!(k.on_timeout(t0 + Duration::from_secs(15)).is_err());
    }

    #[test]
    fn a_peer_that_does_not_read_cannot_forge_the_answer() {
        let t0 = Instant::now();
        let timeout = Duration::from_secs(5);
        let mut k = Keepalive::new(Some(Duration::from_secs(10)), timeout, 0xDEAD_BEEF, t0);
        let sent = k.take_ping(t0);
        // Guesses a peer could make without reading: small counters, zero, all ones.
        for guess in (0..1000u64).chain([u64::MAX]) {
            assert!(!k.on_pong(t0, guess.to_be_bytes()), "guessed {guess}");
        }
        assert_eq!(k.on_timeout(t0 + timeout), Err(timeout));
        // Payloads differ from one PING to the next and between sessions.
        let other = Keepalive::new(Some(Duration::from_secs(10)), timeout, 1, t0).secret;
        assert_ne!(payload(other, 1).to_be_bytes(), sent);
        assert_ne!(payload(0xDEAD_BEEF, 2).to_be_bytes(), sent);
    }
}
