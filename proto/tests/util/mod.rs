//! A deterministic harness for two sessions, in the style of quinn-proto's test `Pair`.
//!
//! [`Pair`] owns a client and a server [`Session`] and a simulated clock. Nothing here reads
//! the real clock after the first `Instant::now()`, sleeps, or spawns: time moves only when a
//! test says so, and frames move only when a test (or [`Pair::drive`]) moves them. Every frame
//! a session transmits is decoded and kept in [`Pair::wire`], so tests can assert on what
//! crossed; a hook may drop or replace frames in flight. [`Script`] plays a hand-written peer
//! that speaks raw frames, for the abuse cases a well-behaved session never produces.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wsmux_proto::frame::{Data, Open};
use wsmux_proto::{
    ChannelError, ChannelId, Config, ErrorCode, Event, Frame, Incoming, Read, Session, Settings,
    Side,
};

/// Rounds after which [`Pair::drive`] gives up: a pair that has not settled by then loops.
const MAX_ROUNDS: usize = 10_000;

/// What the hook decides for one frame in flight.
#[derive(Debug)]
pub enum Verdict {
    /// Deliver it unchanged.
    Deliver,
    /// Lose it.
    Drop,
    /// Deliver these bytes instead.
    Replace(Bytes),
}

/// Sees every frame as it leaves its sender (`Side` is the sender).
pub type Hook = Box<dyn FnMut(Side, &Frame) -> Verdict>;

fn index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

/// Two sessions joined by two ordered in-memory pipes, and the clock they share.
pub struct Pair {
    /// The instant the pair was made; `now` only moves forward from it.
    pub t0: Instant,
    /// The simulated present, passed to every session call.
    pub now: Instant,
    /// The client session (opens odd channel ids).
    pub client: Session,
    /// The server session (opens even channel ids).
    pub server: Session,
    /// Every frame transmitted so far, decoded, with its sender, in transmit order.
    pub wire: Vec<(Side, Frame)>,
    /// Messages transmitted but not delivered yet, by sender. Order is kept: a WebSocket is.
    in_flight: [VecDeque<Bytes>; 2],
    hook: Option<Hook>,
}

impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("elapsed", &(self.now - self.t0))
            .field("client", &self.client)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

impl Pair {
    /// Two sessions with default configs whose SETTINGS and first PINGs have been exchanged;
    /// `wire` starts empty after that handshake.
    pub fn new() -> Self {
        Pair::with(Config::default(), Config::default())
    }

    /// Like [`Pair::new`] with the given configs.
    pub fn with(client: Config, server: Config) -> Self {
        let mut pair = Pair::unconnected(client, server);
        pair.drive();
        pair.wire.clear();
        pair
    }

    /// Two fresh sessions; nothing has been transmitted yet.
    pub fn unconnected(client: Config, server: Config) -> Self {
        let t0 = Instant::now();
        Pair {
            t0,
            now: t0,
            client: Session::new(Side::Client, client, t0),
            server: Session::new(Side::Server, server, t0),
            wire: Vec::new(),
            in_flight: [VecDeque::new(), VecDeque::new()],
            hook: None,
        }
    }

    /// The session of `side`.
    pub fn session(&mut self, side: Side) -> &mut Session {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Installs a hook that sees (and may drop or replace) every frame transmitted from now on.
    pub fn set_hook(&mut self, hook: impl FnMut(Side, &Frame) -> Verdict + 'static) {
        self.hook = Some(Box::new(hook));
    }

    /// Removes the hook: every frame is delivered as sent.
    pub fn clear_hook(&mut self) {
        self.hook = None;
    }

    /// Moves every frame `side` wants to send into its pipe. Returns how many it sent.
    pub fn transmit(&mut self, side: Side) -> usize {
        self.transmit_n(side, usize::MAX)
    }

    /// Moves at most `n` frames `side` wants to send into its pipe.
    pub fn transmit_n(&mut self, side: Side, n: usize) -> usize {
        let mut sent = 0;
        while sent < n {
            let now = self.now;
            let Some(bytes) = self.session(side).poll_transmit(now) else { break };
            sent += 1;
            let frame = Frame::decode(bytes.clone())
                .unwrap_or_else(|e| panic!("{side:?} transmitted an undecodable frame: {e}"));
            let verdict = match &mut self.hook {
                Some(hook) => hook(side, &frame),
                None => Verdict::Deliver,
            };
            self.wire.push((side, frame));
            match verdict {
                Verdict::Deliver => self.in_flight[index(side)].push_back(bytes),
                Verdict::Drop => {}
                Verdict::Replace(other) => self.in_flight[index(side)].push_back(other),
            }
        }
        sent
    }

    /// Frames sent by `from` and not yet delivered.
    pub fn in_flight(&self, from: Side) -> usize {
        self.in_flight[index(from)].len()
    }

    /// Delivers everything in `from`'s pipe to its peer. Returns how many frames.
    pub fn deliver(&mut self, from: Side) -> usize {
        self.deliver_n(from, usize::MAX)
    }

    /// Delivers at most `n` frames of `from`'s pipe, oldest first.
    pub fn deliver_n(&mut self, from: Side, n: usize) -> usize {
        let mut delivered = 0;
        while delivered < n {
            let Some(bytes) = self.in_flight[index(from)].pop_front() else { break };
            let now = self.now;
            self.session(from.peer()).handle_message(now, bytes);
            delivered += 1;
        }
        delivered
    }

    /// Moves frames both ways until neither session has anything to send and both pipes are
    /// empty. Panics if that does not happen within a bounded number of rounds.
    pub fn drive(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let moved = self.transmit(Side::Client)
                + self.transmit(Side::Server)
                + self.deliver(Side::Client)
                + self.deliver(Side::Server);
            if moved == 0 {
                return;
            }
        }
        panic!("the pair did not settle within {MAX_ROUNDS} rounds");
    }

    /// Moves the clock forward by `d` and nothing else: no timer fires.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    /// Lets `d` pass: each timer that falls due on the way fires at its own instant, and the
    /// pair is driven after it, as a real driver would.
    pub fn pass_time(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..MAX_ROUNDS {
            let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.fire_timers();
                    self.drive();
                }
                _ => {
                    self.now = end;
                    return;
                }
            }
        }
        panic!("timers kept firing without time passing");
    }

    /// Calls `handle_timeout` on each session whose timer is due at `now`.
    pub fn fire_timers(&mut self) {
        let now = self.now;
        for side in [Side::Client, Side::Server] {
            let s = self.session(side);
            if s.poll_timeout().is_some_and(|at| at <= now) {
                s.handle_timeout(now);
            }
        }
    }

    /// The frames `side` transmitted, in order.
    pub fn sent(&self, side: Side) -> impl Iterator<Item = &Frame> + '_ {
        self.wire.iter().filter(move |(s, _)| *s == side).map(|(_, f)| f)
    }

    /// Forgets the frames recorded so far.
    pub fn clear_wire(&mut self) {
        self.wire.clear();
    }

    /// Drains the events of `side`.
    pub fn events(&mut self, side: Side) -> Vec<Event> {
        let s = self.session(side);
        std::iter::from_fn(|| s.poll_event()).collect()
    }
}

// ----- frames -----

/// The channel a frame belongs to, if any.
pub fn channel_of(frame: &Frame) -> Option<ChannelId> {
    match frame {
        Frame::Data(d) => Some(d.id),
        Frame::Open(o) => Some(o.id),
        Frame::Window { id, .. } | Frame::Reset { id, .. } => Some(*id),
        _ => None,
    }
}

/// The payload a DATA or OPEN frame carries on its channel.
pub fn payload_of(frame: &Frame) -> Option<(ChannelId, &Bytes)> {
    match frame {
        Frame::Data(d) => Some((d.id, &d.payload)),
        Frame::Open(o) => Some((o.id, &o.payload)),
        _ => None,
    }
}

/// Whether a frame carries channel data (DATA or OPEN), as opposed to control.
pub fn is_data(frame: &Frame) -> bool {
    payload_of(frame).is_some()
}

/// Payload bytes that `frames` carry on `id`.
pub fn payload_bytes<'a>(frames: impl IntoIterator<Item = &'a Frame>, id: ChannelId) -> usize {
    frames.into_iter().filter_map(payload_of).filter(|(c, _)| *c == id).map(|(_, p)| p.len()).sum()
}

/// The credit that `frames` took on `id`: payload bytes plus the part charge of each frame
/// that carries bytes or ends a message (PROTOCOL.md section 8).
pub fn credit_taken<'a>(frames: impl IntoIterator<Item = &'a Frame>, id: ChannelId) -> usize {
    let part = |frame: &Frame| match frame {
        Frame::Data(d) => Some((d.id, d.payload.len(), d.eom)),
        Frame::Open(o) => Some((o.id, o.payload.len(), o.eom)),
        _ => None,
    };
    let parts = frames.into_iter().filter_map(part).filter(|&(c, ..)| c == id);
    parts.map(|(_, len, eom)| wsmux_proto::credit_cost(len, eom)).sum()
}

// ----- reading -----

/// One step of reading a channel message by message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// A whole message.
    Message(Vec<u8>),
    /// The peer finished and everything was read.
    End,
    /// Nothing to read now.
    Pending,
}

/// Reads one whole message: the `Read::Chunk`s up to the one with `eom`, concatenated.
/// Panics if the message is only partly there (tests call it once it has all arrived).
pub fn read_message(s: &mut Session, id: ChannelId) -> Result<Got, ChannelError> {
    let mut msg = Vec::new();
    let mut started = false;
    loop {
        match s.read(id, usize::MAX)? {
            Read::Chunk(c) => {
                started = true;
                msg.extend_from_slice(&c.data);
                if c.eom {
                    return Ok(Got::Message(msg));
                }
            }
            Read::Pending if !started => return Ok(Got::Pending),
            Read::End if !started => return Ok(Got::End),
            other => panic!("message on {id:?} cut short by {other:?} after {} bytes", msg.len()),
        }
    }
}

/// How reading a channel stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// No more for now.
    Pending,
    /// Clean end of stream.
    End,
    /// The channel failed.
    Error(ChannelError),
}

/// Reads every message available on `id`, and how reading stopped.
pub fn read_all(s: &mut Session, id: ChannelId) -> (Vec<Vec<u8>>, Tail) {
    let mut msgs = Vec::new();
    loop {
        match read_message(s, id) {
            Ok(Got::Message(m)) => msgs.push(m),
            Ok(Got::End) => return (msgs, Tail::End),
            Ok(Got::Pending) => return (msgs, Tail::Pending),
            Err(e) => return (msgs, Tail::Error(e)),
        }
    }
}

/// Reads exactly `n` bytes of `id` (in chunks as they come), returning them.
pub fn read_bytes(s: &mut Session, id: ChannelId, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match s.read(id, n - out.len()) {
            Ok(Read::Chunk(c)) => out.extend_from_slice(&c.data),
            other => panic!("wanted {} more bytes on {id:?}, got {other:?}", n - out.len()),
        }
    }
    out
}

/// The next incoming channel; panics if there is none.
pub fn accept(s: &mut Session) -> Incoming {
    s.accept().unwrap_or_else(|| panic!("{:?} has no incoming channel", s.side()))
}

// ----- data -----

/// `len` bytes that differ with `seed` and with position, so misordering shows.
pub fn pattern(seed: u64, len: usize) -> Bytes {
    let mut rng = Rng::new(seed);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len);
    Bytes::from(v)
}

/// xorshift64*: small, seeded, good enough to pick actions and sizes.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value, 0 included).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
}

// ----- a scripted peer -----

/// One session under test, fed raw frames by the test, which plays the peer by hand.
#[derive(Debug)]
pub struct Script {
    /// The simulated present.
    pub now: Instant,
    /// The session under test.
    pub session: Session,
}

impl Script {
    /// A session of `side` under test; the test plays the other side.
    pub fn new(side: Side, config: Config) -> Self {
        let now = Instant::now();
        Script { now, session: Session::new(side, config, now) }
    }

    /// A server under test with the default config, already past the peer's SETTINGS, with
    /// its own first frames (SETTINGS, PING) drained.
    pub fn server() -> Self {
        Script::server_with(Config::default())
    }

    /// Like [`Script::server`] with `config`.
    pub fn server_with(config: Config) -> Self {
        let mut s = Script::new(Side::Server, config);
        s.feed(&settings());
        let first = s.output();
        assert!(matches!(first.first(), Some(Frame::Settings(_))), "{first:?}");
        s
    }

    /// Delivers one frame to the session.
    pub fn feed(&mut self, frame: &Frame) {
        self.session.handle_message(self.now, frame.to_bytes());
    }

    /// Everything the session transmits now, decoded.
    pub fn output(&mut self) -> Vec<Frame> {
        let now = self.now;
        std::iter::from_fn(|| self.session.poll_transmit(now))
            .map(|b| Frame::decode(b).expect("the session transmits valid frames"))
            .collect()
    }
}

/// A SETTINGS frame with the spec defaults.
pub fn settings() -> Frame {
    Frame::Settings(Settings::DEFAULT)
}

/// An OPEN frame for channel `id` on route "r" without metadata.
pub fn open_frame(id: u32, payload: &[u8], eom: bool, fin: bool) -> Frame {
    Frame::Open(Open {
        id: ChannelId(id),
        route: "r".into(),
        metadata: Bytes::new(),
        eom,
        fin,
        payload: Bytes::copy_from_slice(payload),
    })
}

/// A DATA frame.
pub fn data_frame(id: u32, payload: &[u8], eom: bool, fin: bool) -> Frame {
    Frame::Data(Data { id: ChannelId(id), eom, fin, payload: Bytes::copy_from_slice(payload) })
}

/// A RESET frame.
pub fn reset_frame(id: u32, code: ErrorCode) -> Frame {
    Frame::Reset { id: ChannelId(id), code, reason: String::new() }
}

/// The RESET frames among `frames`: (channel, code).
pub fn resets_in(frames: &[Frame]) -> Vec<(ChannelId, ErrorCode)> {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Reset { id, code, .. } => Some((*id, *code)),
            _ => None,
        })
        .collect()
}

/// The GOAWAY among `frames`, if any: (code, last id).
pub fn goaway_in(frames: &[Frame]) -> Option<(ErrorCode, ChannelId)> {
    frames.iter().find_map(|f| match f {
        Frame::GoAway { code, last_id, .. } => Some((*code, *last_id)),
        _ => None,
    })
}

/// A KiB.
pub const KIB: usize = 1024;

/// `s` as message bytes.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// `s` as the message a helper reads.
pub fn msg(s: &str) -> Got {
    Got::Message(s.as_bytes().to_vec())
}
