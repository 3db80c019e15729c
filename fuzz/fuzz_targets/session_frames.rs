//! A session fed arbitrary WebSocket messages from its peer, interleaved with the
//! application's own operations and the passing of time: no panic, and what it queues for a
//! peer that stopped reading stays within the configured bounds.
//!
//! Input: one byte choosing the side, then records `[ctrl u8][len u16 LE][len bytes]`
//! (`wsmux_fuzz::records`); `seed` writes the vectors of `proto/vectors` in this form.

#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsmux_fuzz::{records, small_config, Record};
use wsmux_proto::frame::Frame;
use wsmux_proto::{ChannelId, ErrorCode, Read, Session, Side};

fuzz_target!(|data: &[u8]| run(data));

fn run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let side = if first & 1 == 0 { Side::Server } else { Side::Client };
    let config = small_config();
    let mut now = Instant::now();
    let mut s = Session::new(side, config.clone(), now);
    let mut ids: Vec<ChannelId> = Vec::new();
    let mut app_ops = 0usize;
    let mut peer_reads = true;

    for Record { ctrl, body } in records(rest) {
        match ctrl & 7 {
            0..=3 => s.handle_message(now, Bytes::copy_from_slice(body)),
            4 => {
                now += Duration::from_millis(u64::from(ctrl >> 3) * 250 + body.len() as u64);
                s.handle_timeout(now);
            }
            5 => serve(&mut s, now, &mut ids, ctrl & 0x08 != 0, body.len()),
            6 => s.handle_text(),
            _ => {
                app_ops += 1;
                app(&mut s, now, &mut ids, ctrl >> 3, body);
            }
        }
        // The top bit: the peer stops (or resumes) reading what this end sends.
        peer_reads = ctrl & 0x80 == 0 || !peer_reads && ctrl & 0x40 != 0;
        if peer_reads {
            while s.poll_transmit(now).is_some() {}
        }
        while s.poll_event().is_some() {}
        let stats = s.stats();
        assert!(stats.open_channels as usize <= s.channel_count());
        // What the peer can make this end hold: the session window bounds it.
        assert!(stats.session_window <= u64::from(config.max_session_window));
        // Each unread part paid its bytes and its charge in credit: the window bounds them.
        assert!(stats.unread_cost as u64 <= stats.session_window, "{stats:?}");
        assert!(stats.reassembly_bytes <= u64::from(config.max_reassembly), "{stats:?}");
        assert!(
            s.pending_incoming() <= config.accept_backlog,
            "accept backlog {} over {}",
            s.pending_incoming(),
            config.accept_backlog
        );
    }

    // Whatever piled up for a peer that stopped reading is bounded: the peer-provoked control
    // frames by max_control_queue, the rest by channels and by what the application did.
    let mut control = 0usize;
    while let Some(frame) = s.poll_transmit_frame(now) {
        if !matches!(frame, Frame::Data(_) | Frame::Open(_)) {
            control += 1;
        }
    }
    let bound = config.max_control_queue + 2 * config.max_channels as usize + app_ops + 8;
    assert!(control <= bound, "{control} control frames queued, bound {bound}");
    // A session gives back everything it reserved from the memory budget.
    drop(s);
    let budget = config.memory_budget.as_ref().map(|b| b.used());
    assert_eq!(budget, Some(0), "the ended session still holds budget");
}

/// The application's side of incoming channels: accept (or refuse) what waits, then read every
/// known channel and release those that ended.
fn serve(s: &mut Session, now: Instant, ids: &mut Vec<ChannelId>, refuse: bool, max: usize) {
    while let Some(incoming) = s.accept() {
        if refuse {
            s.refuse(now, incoming.id, ErrorCode::REFUSED, "fuzz");
        } else {
            ids.push(incoming.id);
        }
    }
    // An odd `max` reads as a joining reader (`Channel::recv`) does.
    let joining = max % 2 == 1;
    ids.retain(|&id| loop {
        let read = if joining { s.read_joining(id, usize::MAX) } else { s.read(id, max.max(1)) };
        match read {
            // Read ahead as `Channel::recv` does, up to `max` bytes of whole messages.
            Ok(Read::Chunk(c)) if joining && c.eom => {
                let mut ahead = Vec::new();
                s.read_more_whole(id, max, &mut ahead);
                assert!(ahead.iter().map(|m| m.len()).sum::<usize>() <= max);
                continue;
            }
            Ok(Read::Chunk(_)) => continue,
            Ok(Read::Pending) => break true,
            Ok(Read::End) | Err(_) => {
                s.release(id);
                break false;
            }
        }
    });
}

/// One application operation, chosen by `op`, on the channel `body[0]` picks.
fn app(s: &mut Session, now: Instant, ids: &mut Vec<ChannelId>, op: u8, body: &[u8]) {
    let pick = body.first().map_or(0, |&b| b as usize);
    let id = (!ids.is_empty()).then(|| ids[pick % ids.len()]);
    let payload = Bytes::copy_from_slice(body.get(1..).unwrap_or_default());
    match (op % 8, id) {
        (0, _) => {
            if let Ok(id) = s.open("fuzz", Bytes::new(), Some(payload), pick & 1 == 1) {
                ids.push(id);
            }
        }
        (1, Some(id)) if s.poll_writable(id) == Ok(true) => {
            let _ = s.send(id, payload);
        }
        (2, Some(id)) => {
            let _ = s.finish(id);
        }
        (3, Some(id)) => s.reset(id, ErrorCode::CANCEL, "fuzz"),
        (4, Some(id)) => {
            s.release(id);
            ids.retain(|&x| x != id);
        }
        (5, _) => s.ping(now),
        (6, _) => s.close(now, ErrorCode::NO_ERROR, "fuzz"),
        _ => {}
    }
}
