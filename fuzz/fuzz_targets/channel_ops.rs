//! Structure-aware: two correct sessions joined by in-memory pipes run an arbitrary sequence
//! of channel operations, with delivery lagging arbitrarily and time passing. Whatever the
//! order:
//! - neither ever accuses the other of breaking the protocol (a session may end only with
//!   NO_ERROR, a keepalive TIMEOUT or a LIMIT of its abuse budgets);
//! - every byte read on a channel is the next byte its peer sent there, message boundaries
//!   included, and a clean end comes only after everything sent;
//! - once every handle is dropped and the pipes are drained, no channel state is left.

#![no_main]

#[path = "../../proto/tests/util/mod.rs"]
mod util;

use std::time::Duration;

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use util::{pattern, Pair};
use wsmux_proto::{ChannelId, ErrorCode, Read, Side};

#[derive(Arbitrary, Debug)]
enum Op {
    Open { server: bool, first: Option<u16>, fin: bool },
    Send { chan: u8, server: bool, len: u16 },
    Finish { chan: u8, server: bool },
    Reset { chan: u8, server: bool },
    Read { chan: u8, server: bool, max: u16 },
    Release { chan: u8, server: bool },
    Accept { server: bool, refuse: bool },
    Transmit { server: bool, n: u8 },
    Deliver { server: bool, n: u8 },
    Advance { ms: u16 },
    Ping { server: bool },
    Close { server: bool },
}

/// One direction of a channel: every byte sent (message ends marked), and how far the reader
/// got.
#[derive(Default, Debug)]
struct Flow {
    sent: Vec<u8>,
    /// Offsets in `sent` where a message ends.
    ends: Vec<usize>,
    finished: bool,
    read: usize,
    ended: bool,
}

#[derive(Debug)]
struct Chan {
    opener: Side,
    id: ChannelId,
    route: String,
    /// Whether the non-opener accepted it (a refused or never-accepted one has no handle there).
    accepted: bool,
    /// Indexed by the sending side.
    flows: [Flow; 2],
    /// Indexed by side: its handle is gone (released, or never had one).
    dropped: [bool; 2],
    /// Either end reset it: what follows on it is not checked.
    reset: bool,
}

fn ix(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

fn side(server: bool) -> Side {
    if server {
        Side::Server
    } else {
        Side::Client
    }
}

fuzz_target!(|ops: Vec<Op>| run(ops));

fn run(ops: Vec<Op>) {
    let config = wsmux_fuzz::small_config();
    let mut pair = Pair::with(config.clone(), config);
    pair.drive();
    let mut chans: Vec<Chan> = Vec::new();
    for op in ops.into_iter().take(512) {
        step(&mut pair, &mut chans, op);
        check_errors(&mut pair);
    }
    // Drop every handle and refuse what waits to be accepted, until the wire settles (an OPEN
    // still in flight arrives during the first drive).
    for _ in 0..2 {
        pair.drive();
        for s in [Side::Client, Side::Server] {
            let now = pair.now;
            while let Some(incoming) = pair.session(s).accept() {
                pair.session(s).refuse(now, incoming.id, ErrorCode::REFUSED, "end");
            }
        }
        for c in &mut chans {
            for s in [Side::Client, Side::Server] {
                if handle(c, s) {
                    pair.session(s).release(c.id);
                    c.dropped[ix(s)] = true;
                }
            }
        }
    }
    pair.drive();
    check_errors(&mut pair);
    // A session that ended has its driver close the WebSocket once its last frame is out: the
    // peer sees the transport end (without this, a peer whose channels wait on the closed end
    // would wait for its drain deadline, which is a real driver's business, not the harness's).
    for s in [Side::Client, Side::Server] {
        if pair.session(s).is_closed() && !pair.session(s).has_transmit() {
            pair.session(s.peer()).handle_transport_closed("the peer closed the WebSocket");
        }
    }
    pair.drive();
    for s in [Side::Client, Side::Server] {
        if pair.session(s).channel_count() != 0 && std::env::var_os("WSMUX_FUZZ_TRACE").is_some() {
            for (from, f) in &pair.wire {
                eprintln!("{from:?}: {f:?}");
            }
            eprintln!("{pair:#?}");
        }
        let session = pair.session(s);
        assert_eq!(session.channel_count(), 0, "{s:?} holds channels nobody can reach");
    }
}

/// Whether `side` holds a handle to `c`.
fn handle(c: &Chan, side: Side) -> bool {
    (side == c.opener || c.accepted) && !c.dropped[ix(side)]
}

fn pick(chans: &mut [Chan], chan: u8) -> Option<&mut Chan> {
    let n = chans.len();
    (n > 0).then(|| &mut chans[usize::from(chan) % n])
}

fn step(pair: &mut Pair, chans: &mut Vec<Chan>, op: Op) {
    match op {
        Op::Open { server, first, fin } => {
            let s = side(server);
            let route = format!("c{}", chans.len());
            let first = first.map(|len| pattern(chans.len() as u64, usize::from(len % 4096)));
            let fin = fin && first.is_some();
            let Ok(id) = pair.session(s).open(route.clone(), Bytes::new(), first.clone(), fin) else {
                return;
            };
            let mut flows: [Flow; 2] = Default::default();
            if let Some(first) = first {
                let flow = &mut flows[ix(s)];
                flow.sent.extend_from_slice(&first);
                flow.ends.push(flow.sent.len());
                flow.finished = fin;
            }
            let dropped = [false; 2];
            chans.push(Chan {
                opener: s,
                id,
                route,
                accepted: false,
                flows,
                dropped,
                reset: false,
            });
        }
        Op::Send { chan, server, len } => {
            let s = side(server);
            let Some(c) = pick(chans, chan) else { return };
            if !handle(c, s) || c.flows[ix(s)].finished || c.reset {
                return;
            }
            let msg = pattern(u64::from(len) << 8 | u64::from(chan), usize::from(len % 8192));
            // Both send paths: check then queue, or the two in one (`try_send`).
            let queued = if len % 2 == 0 {
                if pair.session(s).poll_writable(c.id) != Ok(true) {
                    return;
                }
                pair.session(s).send(c.id, msg.clone()).is_ok()
            } else {
                matches!(pair.session(s).try_send(c.id, msg.clone()), Ok(None))
            };
            if queued {
                let flow = &mut c.flows[ix(s)];
                flow.sent.extend_from_slice(&msg);
                flow.ends.push(flow.sent.len());
            }
        }
        Op::Finish { chan, server } => {
            let s = side(server);
            let Some(c) = pick(chans, chan) else { return };
            if handle(c, s) && !c.flows[ix(s)].finished && pair.session(s).finish(c.id).is_ok() {
                c.flows[ix(s)].finished = true;
            }
        }
        Op::Reset { chan, server } => {
            let s = side(server);
            let Some(c) = pick(chans, chan) else { return };
            if handle(c, s) {
                pair.session(s).reset(c.id, ErrorCode::CANCEL, "fuzz");
                c.reset = true;
            }
        }
        Op::Read { chan, server, max } => {
            let s = side(server);
            let Some(c) = pick(chans, chan) else { return };
            if handle(c, s) {
                read(pair, c, s, usize::from(max).max(1));
            }
        }
        Op::Release { chan, server } => {
            let s = side(server);
            let Some(c) = pick(chans, chan) else { return };
            if handle(c, s) {
                // Releasing finishes this end's direction if the peer's has ended, and resets
                // the channel if the peer may still send.
                let peer_done = pair.session(s).fin_received(c.id);
                pair.session(s).release(c.id);
                c.dropped[ix(s)] = true;
                if peer_done {
                    c.flows[ix(s)].finished = true;
                } else {
                    c.reset = true;
                }
            }
        }
        Op::Accept { server, refuse } => {
            let s = side(server);
            while let Some(incoming) = pair.session(s).accept() {
                let c = chans
                    .iter_mut()
                    .find(|c| c.route == incoming.route)
                    .expect("an incoming channel some op opened");
                assert_eq!((c.id, c.opener), (incoming.id, s.peer()), "{}", c.route);
                if refuse {
                    let now = pair.now;
                    pair.session(s).refuse(now, incoming.id, ErrorCode::REFUSED, "fuzz");
                    c.reset = true;
                } else {
                    c.accepted = true;
                }
            }
        }
        Op::Transmit { server, n } => {
            pair.transmit_n(side(server), usize::from(n % 16));
        }
        Op::Deliver { server, n } => {
            pair.deliver_n(side(server), usize::from(n % 16));
        }
        Op::Advance { ms } => {
            pair.advance(Duration::from_millis(u64::from(ms % 3000)));
            pair.fire_timers();
        }
        Op::Ping { server } => {
            let now = pair.now;
            pair.session(side(server)).ping(now);
        }
        Op::Close { server } => {
            let now = pair.now;
            pair.session(side(server)).close(now, ErrorCode::NO_ERROR, "fuzz");
        }
    }
    let _ = pair.events(Side::Client);
    let _ = pair.events(Side::Server);
}

/// Reads at most `max` bytes of `c` at `s` and checks them against what the peer sent.
fn read(pair: &mut Pair, c: &mut Chan, s: Side, max: usize) {
    let flow = &mut c.flows[ix(s.peer())];
    match pair.session(s).read(c.id, max) {
        Ok(Read::Chunk(chunk)) => {
            if c.reset {
                return;
            }
            let end = flow.read + chunk.data.len();
            assert!(end <= flow.sent.len(), "{}: read past what was sent", c.route);
            assert!(chunk.data[..] == flow.sent[flow.read..end], "{}: bytes differ", c.route);
            assert_eq!(chunk.eom, flow.ends.contains(&end), "{}: message end moved", c.route);
            flow.read = end;
        }
        Ok(Read::Pending) => {}
        Ok(Read::End) => {
            assert!(flow.finished, "{}: an end the sender never sent", c.route);
            if !c.reset {
                assert_eq!(flow.read, flow.sent.len(), "{}: ended before all arrived", c.route);
            }
            flow.ended = true;
        }
        Err(_) => {}
    }
}

/// Two correct peers never accuse each other of a protocol or flow-control violation.
fn check_errors(pair: &mut Pair) {
    for s in [Side::Client, Side::Server] {
        if let Some(e) = pair.session(s).error() {
            let allowed = [ErrorCode::NO_ERROR, ErrorCode::TIMEOUT, ErrorCode::LIMIT];
            assert!(allowed.contains(&e.code()), "{s:?} ended with {e}");
        }
    }
}
