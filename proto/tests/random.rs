//! Seeded random traffic on many channels through an in-memory [`Pair`]: every byte arrives,
//! in order, and every channel is freed.

mod util;

use std::time::Duration;

use bytes::Bytes;
use util::*;
use wsmux_proto::{ChannelId, Read, Side};

// ----- randomised -----

/// One direction of one channel in the random test: what its sender sends, what its receiver
/// got.
#[derive(Debug, Default)]
struct Flow {
    messages: Vec<Bytes>,
    next: usize,
    finished: bool,
    received: Vec<Vec<u8>>,
    partial: Vec<u8>,
    ended: bool,
}

/// One channel of the random test, opened by either side, carrying messages both ways.
#[derive(Debug)]
struct Plan {
    route: String,
    opener: Side,
    id: Option<ChannelId>,
    accepted: bool,
    /// Indexed by the SENDING side: 0 client to server, 1 server to client.
    flows: [Flow; 2],
    released: [bool; 2],
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Client => 0,
        Side::Server => 1,
    }
}

impl Plan {
    fn id_at(&self, side: Side) -> Option<ChannelId> {
        if side == self.opener || self.accepted {
            self.id
        } else {
            None
        }
    }
}

fn random_traffic(seed: u64, channels: usize) {
    let mut rng = Rng::new(seed);
    let mut pair = Pair::new();
    let mut plans: Vec<Plan> = (0..channels)
        .map(|i| {
            let mut flows: [Flow; 2] = Default::default();
            for (dir, flow) in flows.iter_mut().enumerate() {
                flow.messages = (0..rng.below(4))
                    .map(|m| {
                        let len = if rng.one_in(8) { 0 } else { rng.below(200 * KIB) };
                        pattern(seed ^ ((i * 8 + dir * 4 + m) as u64) << 20, len)
                    })
                    .collect();
            }
            let opener = if rng.one_in(3) { Side::Server } else { Side::Client };
            Plan {
                route: format!("ch{i}"),
                opener,
                id: None,
                accepted: false,
                flows,
                released: [false; 2],
            }
        })
        .collect();

    for step in 0.. {
        assert!(step < 1_000_000, "random traffic did not complete");
        if plans.iter().all(|p| p.released == [true, true]) {
            break;
        }
        match rng.below(16) {
            0 => {
                // Open a channel, sometimes with its first message and FIN in the OPEN.
                let Some(p) = plans.iter_mut().find(|p| p.id.is_none()) else { continue };
                let flow = &mut p.flows[side_index(p.opener)];
                let first =
                    (!flow.messages.is_empty() && rng.one_in(2)).then(|| flow.messages[0].clone());
                flow.next = usize::from(first.is_some());
                let fin = first.is_some() && flow.messages.len() == 1 && rng.one_in(2);
                flow.finished = fin;
                let id = pair
                    .session(p.opener)
                    .open(p.route.clone(), Bytes::new(), first, fin)
                    .expect("open");
                p.id = Some(id);
            }
            1 => {
                for side in [Side::Client, Side::Server] {
                    while let Some(inc) = pair.session(side).accept() {
                        let p =
                            plans.iter_mut().find(|p| p.route == inc.route).expect("known route");
                        assert_eq!((p.id, p.opener), (Some(inc.id), side.peer()));
                        p.accepted = true;
                    }
                }
            }
            2..=5 => {
                // Send the next message, or finish, on a random channel end.
                let p = &mut plans[rng.below(channels)];
                let side = if rng.one_in(2) { Side::Client } else { Side::Server };
                let Some(id) = p.id_at(side) else { continue };
                if p.released[side_index(side)] {
                    continue;
                }
                let flow = &mut p.flows[side_index(side)];
                let s = pair.session(side);
                if flow.next < flow.messages.len() {
                    if s.poll_writable(id).expect("writable") {
                        s.send(id, flow.messages[flow.next].clone()).expect("send");
                        flow.next += 1;
                    }
                } else if !flow.finished {
                    s.finish(id).expect("finish");
                    flow.finished = true;
                }
            }
            6..=9 => {
                // Read a random amount on a random channel end; release it once it is done.
                let p = &mut plans[rng.below(channels)];
                let side = if rng.one_in(2) { Side::Client } else { Side::Server };
                let Some(id) = p.id_at(side) else { continue };
                if p.released[side_index(side)] {
                    continue;
                }
                let inbound = &mut p.flows[side_index(side.peer())];
                let max = 1 + rng.below(40 * KIB);
                match pair.session(side).read(id, max).expect("read") {
                    Read::Chunk(c) => {
                        inbound.partial.extend_from_slice(&c.data);
                        if c.eom {
                            inbound.received.push(std::mem::take(&mut inbound.partial));
                        }
                    }
                    Read::Pending => {}
                    Read::End => {
                        assert!(inbound.partial.is_empty());
                        inbound.ended = true;
                    }
                }
                if inbound.ended && p.flows[side_index(side)].finished {
                    pair.session(side).release(id);
                    p.released[side_index(side)] = true;
                }
            }
            10..=11 => {
                let side = if rng.one_in(2) { Side::Client } else { Side::Server };
                pair.transmit_n(side, rng.below(6));
            }
            12..=13 => {
                // Delivery lags transmission by a random number of frames.
                let side = if rng.one_in(2) { Side::Client } else { Side::Server };
                pair.deliver_n(side, rng.below(6));
            }
            14 => {
                pair.advance(Duration::from_millis(rng.below(20) as u64));
                pair.fire_timers();
            }
            _ => {
                if rng.one_in(4) {
                    pair.drive();
                }
                pair.events(Side::Client);
                pair.events(Side::Server);
            }
        }
    }
    pair.drive();

    let total: usize =
        plans.iter().flat_map(|p| &p.flows).flat_map(|f| &f.received).map(Vec::len).sum();
    assert!(total > 5_000_000, "seed {seed} moved only {total} bytes");
    for p in &plans {
        for (dir, flow) in p.flows.iter().enumerate() {
            let sent: Vec<Vec<u8>> = flow.messages.iter().map(|m| m.to_vec()).collect();
            assert!(flow.received == sent, "{} direction {dir}: messages differ", p.route);
        }
    }
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (0, 0));
    assert!(pair.client.error().is_none() && pair.server.error().is_none());
}

#[test]
fn random_traffic_on_many_channels_arrives_in_order() {
    for seed in [1, 2, 3] {
        random_traffic(seed, 50);
    }
}
