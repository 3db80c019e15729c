//! Channel scenarios of the sans-IO session: framing, flow control, opening and closing
//! channels, driven through an in-memory [`Pair`] with a simulated clock. Each test is one
//! behaviour, read as a script.

mod util;

use std::time::Duration;

use bytes::Bytes;
use util::*;
use wsmux_proto::frame::{Data, Open};
use wsmux_proto::{
    ChannelError, ChannelId, Config, ErrorCode, Frame, OpenError, Read, SessionError, Side,
    PART_CHARGE,
};

// ----- framing -----

#[test]
fn open_with_data_and_fin_is_one_frame() {
    let mut pair = Pair::new();
    let id = pair.client.open("echo", b("meta"), Some(b("hello")), true).expect("open");
    pair.drive();

    let sent: Vec<&Frame> = pair.sent(Side::Client).collect();
    let expected = Frame::Open(Open {
        id,
        route: "echo".into(),
        metadata: b("meta"),
        eom: true,
        fin: true,
        payload: b("hello"),
    });
    assert_eq!(sent, [&expected]);

    let incoming = accept(&mut pair.server);
    assert_eq!(
        (incoming.id, incoming.route.as_str(), &incoming.metadata[..]),
        (id, "echo", &b"meta"[..])
    );
    assert_eq!(read_message(&mut pair.server, id), Ok(msg("hello")));
    assert_eq!(read_message(&mut pair.server, id), Ok(Got::End));
}

#[test]
fn messages_larger_than_a_frame_are_split_and_reassembled() {
    let mut pair = Pair::new();
    let id = pair.client.open("bulk", Bytes::new(), None, false).expect("open");
    pair.drive(); // the OPEN leaves empty; data queued before it would ride in it
    let big = pattern(1, 100 * KIB);
    pair.client.send(id, big.clone()).expect("send");
    pair.drive();

    let data: Vec<&Data> = pair
        .sent(Side::Client)
        .filter_map(|f| match f {
            Frame::Data(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(data.len(), 7, "100 KiB in 16 KiB frames");
    assert!(data.iter().all(|d| d.payload.len() <= 16384));
    let eoms: Vec<bool> = data.iter().map(|d| d.eom).collect();
    assert_eq!(eoms, [false, false, false, false, false, false, true]);

    accept(&mut pair.server);
    assert_eq!(read_message(&mut pair.server, id), Ok(Got::Message(big.to_vec())));
}

#[test]
fn round_robin_interleaves_channels() {
    let mut pair = Pair::new();
    let a = pair.client.open("a", Bytes::new(), None, false).expect("open a");
    let c = pair.client.open("c", Bytes::new(), None, false).expect("open c");
    pair.drive();
    pair.clear_wire();
    pair.client.send(a, pattern(1, 96 * KIB)).expect("send a");
    pair.client.send(c, pattern(2, 96 * KIB)).expect("send c");
    pair.drive();

    let order: Vec<ChannelId> =
        pair.sent(Side::Client).filter_map(payload_of).map(|(id, _)| id).collect();
    assert_eq!(order.len(), 12);
    for (i, id) in order.iter().enumerate() {
        assert_eq!(*id, if i % 2 == 0 { a } else { c }, "frame {i} of {order:?}");
    }
}

#[test]
fn control_frames_go_before_data() {
    let mut pair = Pair::new();
    let bulk = pair.client.open("bulk", Bytes::new(), None, false).expect("open bulk");
    let doomed = pair.client.open("doomed", Bytes::new(), None, false).expect("open doomed");
    let down = pair.server.open("down", Bytes::new(), None, false).expect("open down");
    pair.server.send(down, pattern(3, 100 * KIB)).expect("send down");
    pair.drive();
    assert_eq!(accept(&mut pair.client).id, down);

    // The client starts a bulk transfer: one DATA frame leaves.
    pair.client.send(bulk, pattern(4, 200 * KIB)).expect("send bulk");
    pair.clear_wire();
    pair.transmit_n(Side::Client, 1);
    // Now control frames become due: a RESET, a PING answer and WINDOWs (session, channel).
    pair.client.reset(doomed, ErrorCode::CANCEL, "no longer needed");
    pair.advance(Duration::from_secs(15));
    pair.server.handle_timeout(pair.now);
    pair.transmit(Side::Server);
    pair.deliver(Side::Server);
    read_bytes(&mut pair.client, down, 64 * KIB);
    pair.transmit_n(Side::Client, 5);

    // Four whole 16 KiB parts were read: their bytes and part charges go back.
    let credit = 64 * KIB as u32 + 4 * PART_CHARGE as u32;
    let sent: Vec<&Frame> = pair.sent(Side::Client).collect();
    assert!(matches!(sent[0], Frame::Data(d) if d.id == bulk));
    assert!(matches!(sent[1], Frame::Reset { id, code: ErrorCode::CANCEL, .. } if *id == doomed));
    assert!(matches!(sent[2], Frame::Ping { ack: true, .. }));
    assert!(
        matches!(sent[3], Frame::Window { id: ChannelId::SESSION, increment } if *increment == credit)
    );
    assert!(
        matches!(sent[4], Frame::Window { id, increment } if *id == down && *increment == credit)
    );
    assert!(matches!(sent[5], Frame::Data(d) if d.id == bulk));
}

// ----- flow control -----

#[test]
fn stalled_reader_holds_at_most_its_window_and_other_channels_flow() {
    let mut pair = Pair::new();
    let window = pair.server.config().initial_window as usize;
    let stalled = pair.client.open("stalled", Bytes::new(), None, false).expect("open");
    let lively = pair.client.open("lively", Bytes::new(), None, false).expect("open");
    // The writer respects backpressure: it sends while `poll_writable` says so.
    let mut queued = 0;
    while pair.client.poll_writable(stalled) == Ok(true) {
        pair.client.send(stalled, pattern(queued as u64, 256 * KIB)).expect("send");
        queued += 256 * KIB;
        pair.drive();
    }
    assert_eq!(queued, 2 * 256 * KIB, "the second message waits: the first filled the window");
    pair.client.send(lively, b("still moving")).expect("send");
    pair.drive();

    // Nothing was read on `stalled`, so what crossed is what the server buffers: one window.
    assert_eq!(credit_taken(pair.sent(Side::Client), stalled), window);
    assert_eq!(accept(&mut pair.server).id, stalled);
    assert_eq!(accept(&mut pair.server).id, lively);
    assert_eq!(read_message(&mut pair.server, lively), Ok(msg("still moving")));
    assert!(pair.server.error().is_none() && pair.client.error().is_none());
}

#[test]
fn credit_returns_only_when_the_application_reads() {
    let mut pair = Pair::new();
    let id = pair.client.open("up", Bytes::new(), None, false).expect("open");
    pair.client.send(id, pattern(5, 512 * KIB)).expect("send");
    pair.drive();
    accept(&mut pair.server);
    let windows = |pair: &Pair| {
        pair.sent(Side::Server)
            .filter_map(|f| match f {
                Frame::Window { id, increment } if !id.is_session() => Some((*id, *increment)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(windows(&pair), [], "arrival alone returns no channel credit");
    assert_eq!(credit_taken(pair.sent(Side::Client), id), 256 * KIB);

    // A quarter of the window is 64 KiB of credit: three whole 16 KiB parts with their part
    // charges, and most of the fourth.
    let quarter = 64 * KIB - 3 * PART_CHARGE;
    read_bytes(&mut pair.server, id, quarter - 1);
    pair.drive();
    assert_eq!(windows(&pair), [], "less than a quarter of the window read");

    read_bytes(&mut pair.server, id, 1);
    pair.drive();
    assert_eq!(windows(&pair), [(id, 64 * KIB as u32)]);
    assert_eq!(credit_taken(pair.sent(Side::Client), id), 320 * KIB);
}

#[test]
fn settings_raise_the_send_window_of_channels_opened_before_them() {
    let mut pair = Pair::unconnected(Config::default(), Config::default());
    let id = pair.client.open("early", Bytes::new(), None, false).expect("open");
    pair.client.send(id, pattern(6, 300 * KIB)).expect("send");
    pair.transmit(Side::Client);
    assert_eq!(credit_taken(pair.sent(Side::Client), id), 64 * KIB, "the spec default window");

    pair.drive();
    assert_eq!(credit_taken(pair.sent(Side::Client), id), 256 * KIB, "the server's window");
    assert!(pair.server.error().is_none());
}

#[test]
fn over_credit_is_a_flow_control_error() {
    let mut peer = Script::server();
    peer.feed(&open_frame(1, &[], false, false));
    // Sixteen parts take the whole window of 256 KiB: their bytes and a part charge each.
    let frame = [7u8; 16 * KIB];
    for _ in 0..15 {
        peer.feed(&data_frame(1, &frame, false, false));
    }
    peer.feed(&data_frame(1, &frame[..16 * KIB - 16 * PART_CHARGE], false, false));
    assert!(!peer.session.is_closed(), "exactly the window is allowed");
    peer.feed(&data_frame(1, &[7], false, false));

    assert_eq!(goaway_in(&peer.output()).map(|g| g.0), Some(ErrorCode::FLOW_CONTROL));
    assert!(peer.session.is_closed());
    assert!(matches!(
        peer.session.error(),
        Some(SessionError::PeerViolation { code: ErrorCode::FLOW_CONTROL, .. })
    ));
}

// ----- opening -----

#[test]
fn both_sides_open_at_once_without_id_clash() {
    let mut pair = Pair::new();
    let from_client = pair.client.open("c", Bytes::new(), Some(b("from client")), true);
    let from_server = pair.server.open("s", Bytes::new(), Some(b("from server")), true);
    let (c, s) = (from_client.expect("client open"), from_server.expect("server open"));
    assert_eq!((c, s), (ChannelId(1), ChannelId(2)));
    pair.drive();

    assert_eq!(accept(&mut pair.server).id, c);
    assert_eq!(accept(&mut pair.client).id, s);
    assert_eq!(read_message(&mut pair.server, c), Ok(msg("from client")));
    assert_eq!(read_message(&mut pair.client, s), Ok(msg("from server")));
    let next = (
        pair.client.open("c", Bytes::new(), None, false),
        pair.server.open("s", Bytes::new(), None, false),
    );
    assert_eq!(next, (Ok(ChannelId(3)), Ok(ChannelId(4))));
}

#[test]
fn refused_open_after_data_is_reported_to_the_opener() {
    let mut pair = Pair::new();
    let id = pair.client.open("missing", Bytes::new(), Some(b("first")), false).expect("open");
    pair.client.send(id, b("second")).expect("send");
    pair.drive();

    assert_eq!(accept(&mut pair.server).route, "missing");
    pair.server.reset(id, ErrorCode::NOT_FOUND, "no such route");
    pair.server.release(id);
    pair.drive();

    assert_eq!(
        pair.client.read(id, 100),
        Err(ChannelError::Reset { code: ErrorCode::NOT_FOUND, reason: "no such route".into() })
    );
    assert!(matches!(pair.client.send(id, b("third")), Err(ChannelError::Reset { .. })));
    assert_eq!(pair.client.open_channels(), (0, 0));
}

#[test]
fn before_settings_one_open_at_a_time_then_the_announced_cap() {
    let mut server = Config::default();
    server.max_channels = 2;
    let mut pair = Pair::unconnected(Config::default(), server);
    // Before the server's SETTINGS the client opens one channel at a time: the server may
    // announce fewer than the spec default of 100 (here 2).
    assert_eq!(pair.client.check_open("r", 0, Some(10)), Ok(()));
    let first = pair.client.open("r", Bytes::new(), Some(pattern(0, 10)), false).expect("open");
    // check_open says what open would: the cap, and before it the lengths.
    assert_eq!(pair.client.check_open("r", 0, None), Err(OpenError::TooManyChannels(1)));
    assert_eq!(
        pair.client.open("r", Bytes::new(), None, false),
        Err(OpenError::TooManyChannels(1))
    );
    assert_eq!(
        pair.client.check_open(&"r".repeat(256), 0, None),
        Err(OpenError::RouteTooLong(256))
    );
    pair.drive();
    let second = pair.client.open("r", Bytes::new(), Some(pattern(1, 10)), false).expect("open");
    assert_eq!(
        pair.client.open("r", Bytes::new(), None, false),
        Err(OpenError::TooManyChannels(2))
    );
    pair.drive();
    for (i, id) in [first, second].into_iter().enumerate() {
        assert_eq!(accept(&mut pair.server).id, id);
        assert_eq!(
            read_message(&mut pair.server, id),
            Ok(Got::Message(pattern(i as u64, 10).to_vec()))
        );
    }

    // A peer that opens beyond the cap anyway gets RESET LIMIT for the excess channel only,
    // and the session lives: vector `sessions:open-beyond-max-channels`.
}

#[test]
fn accept_backlog_is_bounded() {
    let mut server = Config::default();
    server.accept_backlog = 4;
    let mut pair = Pair::with(Config::default(), server);
    let ids: Vec<ChannelId> = (0..6)
        .map(|i| pair.client.open("r", Bytes::new(), Some(pattern(i, 10)), false).expect("open"))
        .collect();
    pair.drive();

    assert_eq!(pair.server.pending_incoming(), 4);
    for id in &ids[4..] {
        let err = pair.client.read(*id, 100).expect_err("refused");
        assert!(err.is_refused(), "{err:?}");
    }
    for (i, id) in ids[..4].iter().enumerate() {
        assert_eq!(accept(&mut pair.server).id, *id);
        assert_eq!(
            read_message(&mut pair.server, *id),
            Ok(Got::Message(pattern(i as u64, 10).to_vec()))
        );
    }
}

// ----- closing channels -----

#[test]
fn half_close_each_direction() {
    let mut pair = Pair::new();
    let id = pair.client.open("rpc", Bytes::new(), Some(b("request")), false).expect("open");
    pair.client.finish(id).expect("finish");
    pair.drive();
    accept(&mut pair.server);
    assert_eq!(read_all(&mut pair.server, id), (vec![b"request".to_vec()], Tail::End));

    // The server's direction is still open after the client's ended.
    pair.server.send(id, b("reply 1")).expect("send");
    pair.server.send(id, b("reply 2")).expect("send");
    pair.drive();
    assert_eq!(pair.client.send(id, b("late")), Err(ChannelError::Finished));
    let (msgs, tail) = read_all(&mut pair.client, id);
    assert_eq!((msgs, tail), (vec![b"reply 1".to_vec(), b"reply 2".to_vec()], Tail::Pending));

    pair.server.finish(id).expect("finish");
    pair.drive();
    assert_eq!(read_message(&mut pair.client, id), Ok(Got::End));
    assert_eq!(pair.client.open_channels(), (0, 0));
    assert_eq!(pair.server.open_channels(), (0, 0));
}

#[test]
fn reset_and_clean_end_are_distinguishable() {
    let mut pair = Pair::new();
    let clean = pair.client.open("clean", Bytes::new(), None, false).expect("open");
    let aborted = pair.client.open("aborted", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    accept(&mut pair.server);
    pair.server.send(clean, b("done")).expect("send");
    pair.server.finish(clean).expect("finish");
    pair.server.send(aborted, b("partial")).expect("send");
    pair.server.reset(aborted, ErrorCode(0x1234), "gave up");
    pair.drive();

    assert_eq!(read_all(&mut pair.client, clean), (vec![b"done".to_vec()], Tail::End));
    let reset = ChannelError::Reset { code: ErrorCode(0x1234), reason: "gave up".into() };
    assert_eq!(read_all(&mut pair.client, aborted), (vec![], Tail::Error(reset)));
}

#[test]
fn release_with_unread_data_resets_with_cancel() {
    let mut pair = Pair::new();
    let id = pair.client.open("r", Bytes::new(), Some(b("unread")), false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    pair.server.release(id);
    pair.drive();

    assert!(pair
        .sent(Side::Server)
        .any(|f| matches!(f, Frame::Reset { id: i, code: ErrorCode::CANCEL, .. } if *i == id)));
    assert!(matches!(
        pair.client.read(id, 100),
        Err(ChannelError::Reset { code: ErrorCode::CANCEL, .. })
    ));
    assert_eq!(pair.server.channel_count(), 0);
}

#[test]
fn release_after_reading_to_the_end_finishes() {
    let mut pair = Pair::new();
    let id = pair.client.open("r", Bytes::new(), Some(b("request")), true).expect("open");
    pair.drive();
    accept(&mut pair.server);
    assert_eq!(read_all(&mut pair.server, id), (vec![b"request".to_vec()], Tail::End));
    pair.server.send(id, b("reply")).expect("send");
    pair.server.release(id);
    pair.drive();

    let server_sent: Vec<&Frame> = pair.sent(Side::Server).collect();
    let reply = Frame::Data(Data { id, eom: true, fin: true, payload: b("reply") });
    assert_eq!(server_sent, [&reply], "the reply carries the FIN; no RESET");
    assert_eq!(read_all(&mut pair.client, id), (vec![b"reply".to_vec()], Tail::End));
}

#[test]
fn released_channels_are_freed_on_both_sides() {
    let mut pair = Pair::new();
    let ids: Vec<ChannelId> = (0..10)
        .map(|i| pair.client.open("r", Bytes::new(), Some(pattern(i, 100)), true).expect("open"))
        .collect();
    pair.drive();
    for id in &ids {
        accept(&mut pair.server);
        assert_eq!(read_all(&mut pair.server, *id).1, Tail::End);
        pair.server.send(*id, b("ok")).expect("send");
        pair.server.release(*id);
    }
    pair.drive();
    assert_eq!(pair.server.channel_count(), 0);
    for id in &ids {
        assert_eq!(read_all(&mut pair.client, *id), (vec![b"ok".to_vec()], Tail::End));
        pair.client.release(*id);
    }
    pair.drive();
    assert_eq!(pair.client.channel_count(), 0);
    assert_eq!((pair.client.open_channels(), pair.server.open_channels()), ((0, 0), (0, 0)));
}

#[test]
fn frames_for_a_reset_channel_are_dropped() {
    let mut pair = Pair::new();
    let id = pair.client.open("r", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);

    // Data the client sent before the server's RESET reaches it arrives after that RESET.
    pair.client.send(id, pattern(1, 40 * KIB)).expect("send");
    pair.transmit(Side::Client);
    pair.server.reset(id, ErrorCode::CANCEL, "");
    pair.deliver(Side::Client);
    // And once the channel is released, more late frames find nothing at all.
    pair.client.send(id, pattern(2, 40 * KIB)).expect("send");
    pair.transmit(Side::Client);
    pair.server.release(id);
    pair.deliver(Side::Client);
    pair.drive();

    assert!(pair.server.error().is_none() && !pair.server.is_closing());
    let resets = pair.sent(Side::Server).filter(|f| matches!(f, Frame::Reset { .. })).count();
    assert_eq!(resets, 1, "no answer to frames of a reset channel");
    assert_eq!(pair.server.channel_count(), 0);
}

#[test]
fn reset_returns_credit_so_the_session_is_not_starved() {
    let mut pair = Pair::new();
    // Many channels fill their windows, then the server drops them unread.
    let stuck: Vec<ChannelId> = (0..32)
        .map(|i| {
            let id = pair.client.open("r", Bytes::new(), None, false).expect("open");
            pair.client.send(id, pattern(i, 300 * KIB)).expect("send");
            id
        })
        .collect();
    pair.drive();
    for id in &stuck {
        accept(&mut pair.server);
        pair.server.release(*id);
    }
    pair.drive();
    for id in &stuck {
        assert!(matches!(
            pair.client.read(*id, 1),
            Err(ChannelError::Reset { code: ErrorCode::CANCEL, .. })
        ));
        pair.client.release(*id);
    }
    assert_eq!((pair.client.channel_count(), pair.server.channel_count()), (0, 0));

    // New channels move more than a window each.
    let fresh: Vec<ChannelId> = (0..8)
        .map(|i| {
            let id = pair.client.open("r", Bytes::new(), Some(pattern(100 + i, 600 * KIB)), true);
            id.expect("open")
        })
        .collect();
    let mut received: Vec<Vec<u8>> = vec![Vec::new(); fresh.len()];
    let mut ended = 0;
    for _ in 0..100 {
        pair.drive();
        while pair.server.accept().is_some() {}
        for (i, id) in fresh.iter().enumerate() {
            while let Ok(Read::Chunk(c)) = pair.server.read(*id, usize::MAX) {
                received[i].extend_from_slice(&c.data);
            }
        }
        ended = fresh.iter().filter(|id| pair.server.read(**id, 1) == Ok(Read::End)).count();
        if ended == fresh.len() {
            break;
        }
    }
    assert_eq!(ended, fresh.len());
    for (i, data) in received.iter().enumerate() {
        assert!(data[..] == pattern(100 + i as u64, 600 * KIB)[..], "channel {i}");
    }
}

#[test]
fn read_finished_once_everything_before_the_fin_is_read() {
    let mut pair = Pair::new();
    let id = pair.client.open("rpc", Bytes::new(), Some(b("first")), false).expect("open");
    pair.client.send(id, b("last")).expect("send");
    pair.client.finish(id).expect("finish");
    pair.drive();
    accept(&mut pair.server);
    assert!(!pair.server.read_finished(id), "two messages wait");
    assert!(matches!(read_message(&mut pair.server, id), Ok(Got::Message(_))));
    assert!(!pair.server.read_finished(id), "one message waits");
    assert!(matches!(read_message(&mut pair.server, id), Ok(Got::Message(_))));
    assert!(pair.server.read_finished(id), "only the end is left");
    assert!(!pair.client.read_finished(id), "the server's side is still open");
    assert_eq!(read_message(&mut pair.server, id), Ok(Got::End));
}

#[test]
fn the_application_resetting_many_channels_at_once_is_not_a_peer_violation() {
    // More channels than the control queue holds, all open on the wire, then all reset by the
    // application before anything is transmitted: every RESET must still go out.
    let mut config = Config::default();
    config.max_channels = 2000;
    config.max_control_queue = 100;
    config.accept_backlog = 1000; // the server holds every open unaccepted, refusing none
    let mut pair = Pair::with(config.clone(), config);
    let ids: Vec<_> = (0..500)
        .map(|_| pair.client.open("x", Bytes::new(), Some(b("hi")), false).unwrap())
        .collect();
    pair.drive();
    for &id in &ids {
        pair.client.reset(id, ErrorCode::CANCEL, "done");
    }
    assert!(
        !pair.client.is_closed(),
        "our own resets must not end the session: {:?}",
        pair.client.error()
    );
    pair.drive();
    assert!(!pair.server.is_closed());
    assert_eq!(pair.server.stats().resets_received, 500);
}

#[test]
fn credit_dribbled_a_byte_at_a_time_gets_no_storm_of_tiny_frames() {
    // S9: the receiver never reads, then returns credit one byte per WINDOW.
    let mut server = Config::default();
    server.initial_window = 65536;
    let mut pair = Pair::with(Config::default(), server);
    let id = pair.client.open("bulk", Bytes::new(), None, false).expect("open");
    pair.client.send(id, pattern(1, 200 * KIB)).expect("send");
    pair.drive();
    assert_eq!(credit_taken(pair.sent(Side::Client), id), 65536, "one window, then it waits");
    pair.clear_wire();

    let now = pair.now;
    for _ in 0..1000 {
        pair.client.handle_message(now, Frame::Window { id, increment: 1 }.to_bytes());
    }
    pair.transmit(Side::Client);
    assert_eq!(
        pair.sent(Side::Client).filter(|f| is_data(f)).count(),
        0,
        "1000 bytes of credit: no frame"
    );

    for _ in 0..100 {
        pair.client.handle_message(now, Frame::Window { id, increment: 1 }.to_bytes());
    }
    pair.transmit(Side::Client);
    let data: Vec<&Frame> = pair.sent(Side::Client).filter(|f| is_data(f)).collect();
    assert_eq!(data.len(), 1, "one frame for 1100 bytes of credit: {data:?}");
    assert_eq!(payload_bytes(data, id), 1100 - PART_CHARGE);
    assert!(!pair.client.is_closing());
}

#[test]
fn the_rest_of_a_message_goes_with_less_credit_than_the_minimum_chunk() {
    // The minimum chunk never holds back the tail of a message that fits the credit.
    let mut server = Config::default();
    server.initial_window = 65536;
    let mut pair = Pair::with(Config::default(), server);
    let id = pair.client.open("bulk", Bytes::new(), None, false).expect("open");
    // Four parts and 100 bytes of credit left.
    pair.client.send(id, pattern(1, 65536 - 100 - 4 * PART_CHARGE)).expect("send");
    pair.client.send(id, pattern(2, 300)).expect("send");
    pair.drive();
    pair.clear_wire();
    // The 300-byte message, one part, takes 364: it waits for 264 more, then goes whole.
    let now = pair.now;
    pair.client.handle_message(now, Frame::Window { id, increment: 263 }.to_bytes());
    pair.transmit(Side::Client);
    assert_eq!(pair.sent(Side::Client).filter(|f| is_data(f)).count(), 0);
    pair.client.handle_message(now, Frame::Window { id, increment: 1 }.to_bytes());
    pair.transmit(Side::Client);
    assert_eq!(payload_bytes(pair.sent(Side::Client), id), 300);
}

fn stall_pair() -> (Pair, ChannelId) {
    let mut client = Config::default();
    client.send_stall_timeout = Some(Duration::from_secs(8));
    let mut server = Config::default();
    server.initial_window = 65536;
    let mut pair = Pair::with(client, server);
    let id = pair.client.open("bulk", Bytes::new(), None, false).expect("open");
    pair.client.send(id, pattern(1, 400 * KIB)).expect("send");
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, id);
    (pair, id)
}

#[test]
fn a_channel_that_waits_for_credit_past_the_stall_timeout_is_reset_with_timeout() {
    // S9: zero credit forever. Checked every quarter of the 8 s timeout: blocked at 0, seen
    // blocked at 2 s, reset at the first check 8 s after that.
    let (mut pair, id) = stall_pair();
    let other = pair.client.open("other", Bytes::new(), Some(b("hi")), false).expect("open");
    pair.pass_time(Duration::from_secs(9));
    assert_eq!(pair.client.send_stopped(id), None, "still waiting at 9 s");
    pair.pass_time(Duration::from_secs(2));
    let timed_out = ChannelError::LocallyReset {
        code: ErrorCode::TIMEOUT,
        reason: "no credit to send for 8s".into(),
    };
    assert_eq!(pair.client.send_stopped(id), Some(timed_out));
    let (_, tail) = read_all(&mut pair.server, id);
    assert!(matches!(tail, Tail::Error(ChannelError::Reset { code: ErrorCode::TIMEOUT, .. })));
    // Only that channel: the other one, which never lacked credit, lives, and so does the
    // session.
    assert_eq!(pair.client.send_stopped(other), None);
    assert!(!pair.client.is_closing() && !pair.server.is_closing());
}

#[test]
fn a_slow_reader_that_keeps_returning_credit_is_never_timed_out() {
    let (mut pair, id) = stall_pair();
    // The reader takes 16 KiB every 5 s: slower than the timeout's quarter, but progress.
    for _ in 0..20 {
        pair.pass_time(Duration::from_secs(5));
        assert_eq!(read_bytes(&mut pair.server, id, 16 * KIB).len(), 16 * KIB);
        pair.drive();
        assert_eq!(pair.client.send_stopped(id), None);
    }
}

// ----- reuse of channel state -----

/// Reads `len` bytes of `id` at `side`, driving the pair whenever nothing is there: the rest
/// may wait on credit the reading returns (a part cut short by the session credit is one part
/// more, and its charge is credit the message no longer fits in).
fn read_driving(pair: &mut Pair, side: Side, id: ChannelId, len: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < len {
        match pair.session(side).read(id, usize::MAX) {
            Ok(Read::Chunk(c)) => got.extend_from_slice(&c.data),
            other => {
                assert_eq!(other, Ok(Read::Pending), "after {} bytes", got.len());
                pair.drive();
            }
        }
    }
    got
}

#[test]
fn channels_in_reused_state_start_fresh() {
    let mut pair = Pair::new();
    // Thirty channels end every way, after using credit: reset by the opener, refused by the
    // acceptor, finished both ways. Their states are kept for reuse (at most 8 per side).
    for i in 0..30u64 {
        let id = pair.client.open("old", b("meta"), Some(pattern(i, 100 * KIB)), false).unwrap();
        pair.drive();
        let incoming = accept(&mut pair.server);
        match i % 3 {
            0 => pair.client.reset(id, ErrorCode::CANCEL, "gone"),
            1 => pair.server.reset(incoming.id, ErrorCode::REFUSED, "no"),
            _ => {
                assert!(matches!(read_message(&mut pair.server, id), Ok(Got::Message(_))));
                pair.client.finish(id).unwrap();
                pair.server.finish(incoming.id).unwrap();
            }
        }
        pair.drive();
        pair.client.release(id);
        pair.server.release(incoming.id);
        pair.drive();
    }
    // New channels, in those states: a whole window each way, no error, nothing left over.
    for i in 0..10u64 {
        let id = pair.client.open("new", Bytes::new(), None, false).unwrap();
        let window = usize::try_from(Config::default().initial_window).unwrap();
        // Sixteen parts of at most 16 KiB: with their part charges, the whole window.
        let len = window - 16 * PART_CHARGE;
        pair.client.send(id, pattern(i, len)).unwrap();
        pair.drive();
        let incoming = accept(&mut pair.server);
        assert_eq!((incoming.route.as_str(), incoming.metadata.len()), ("new", 0));
        let sent = credit_taken(pair.sent(Side::Client), id);
        assert_eq!(sent, window, "a fresh send window");
        assert_eq!(read_driving(&mut pair, Side::Server, id, len), pattern(i, len));
        pair.server.send(incoming.id, pattern(i + 100, len)).unwrap();
        pair.server.finish(incoming.id).unwrap();
        pair.client.finish(id).unwrap();
        pair.drive();
        assert_eq!(read_driving(&mut pair, Side::Client, id, len), pattern(i + 100, len));
        pair.drive();
        assert_eq!(read_message(&mut pair.client, id), Ok(Got::End));
        assert_eq!(read_message(&mut pair.server, id), Ok(Got::End));
        pair.client.release(id);
        pair.server.release(incoming.id);
        pair.drive();
        pair.clear_wire();
    }
    assert_eq!(pair.client.error(), None);
    assert_eq!(pair.server.error(), None);
}
