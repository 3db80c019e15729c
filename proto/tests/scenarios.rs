//! Scenario tests of the sans-IO session: two sessions (or one and a scripted peer) driven
//! through an in-memory [`Pair`] with a simulated clock. Each test is one behaviour, read as a
//! script: what the applications do, what crosses the wire, what each end then sees.

mod util;

use std::time::Duration;

use bytes::Bytes;
use util::*;
use wsmux_proto::frame::{Data, Open};
use wsmux_proto::{
    ChannelError, ChannelId, Config, ErrorCode, Event, Frame, OpenError, Read, SessionError, Side,
};

const KIB: usize = 1024;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn msg(s: &str) -> Got {
    Got::Message(s.as_bytes().to_vec())
}

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
    pair.client.send(a, pattern(1, 128 * KIB)).expect("send a");
    pair.client.send(c, pattern(2, 128 * KIB)).expect("send c");
    pair.drive();

    let order: Vec<ChannelId> =
        pair.sent(Side::Client).filter_map(payload_of).map(|(id, _)| id).collect();
    assert_eq!(order.len(), 16);
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
    // Now three control frames become due: a RESET, a PING answer and a WINDOW.
    pair.client.reset(doomed, ErrorCode::CANCEL, "no longer needed");
    pair.advance(Duration::from_secs(15));
    pair.server.handle_timeout(pair.now);
    pair.transmit(Side::Server);
    pair.deliver(Side::Server);
    read_bytes(&mut pair.client, down, 64 * KIB);
    pair.transmit_n(Side::Client, 4);

    let sent: Vec<&Frame> = pair.sent(Side::Client).collect();
    assert!(matches!(sent[0], Frame::Data(d) if d.id == bulk));
    assert!(matches!(sent[1], Frame::Reset { id, code: ErrorCode::CANCEL, .. } if *id == doomed));
    assert!(matches!(sent[2], Frame::Ping { ack: true, .. }));
    assert!(
        matches!(sent[3], Frame::Window { id, increment } if *id == down && *increment == 65536)
    );
    assert!(matches!(sent[4], Frame::Data(d) if d.id == bulk));
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
    assert_eq!(payload_bytes(pair.sent(Side::Client), stalled), window);
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
                Frame::Window { id, increment } => Some((*id, *increment)),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(windows(&pair), [], "arrival alone returns no credit");
    assert_eq!(payload_bytes(pair.sent(Side::Client), id), 256 * KIB);

    read_bytes(&mut pair.server, id, 64 * KIB - 1);
    pair.drive();
    assert_eq!(windows(&pair), [], "less than a quarter of the window read");

    read_bytes(&mut pair.server, id, 1);
    pair.drive();
    assert_eq!(windows(&pair), [(id, 64 * KIB as u32)]);
    assert_eq!(payload_bytes(pair.sent(Side::Client), id), 320 * KIB);
}

#[test]
fn settings_raise_the_send_window_of_channels_opened_before_them() {
    let mut pair = Pair::unconnected(Config::default(), Config::default());
    let id = pair.client.open("early", Bytes::new(), None, false).expect("open");
    pair.client.send(id, pattern(6, 300 * KIB)).expect("send");
    pair.transmit(Side::Client);
    assert_eq!(payload_bytes(pair.sent(Side::Client), id), 64 * KIB, "the spec default window");

    pair.drive();
    assert_eq!(payload_bytes(pair.sent(Side::Client), id), 256 * KIB, "the server's window");
    assert!(pair.server.error().is_none());
}

#[test]
fn over_credit_is_a_flow_control_error() {
    let mut peer = Script::server();
    peer.feed(&open_frame(1, &[], false, false));
    let frame = [7u8; 16 * KIB];
    for _ in 0..16 {
        peer.feed(&data_frame(1, &frame, false, false));
    }
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
fn channel_cap_refuses_excess_with_limit_and_session_lives() {
    let mut server = Config::default();
    server.max_channels = 2;
    let mut pair = Pair::unconnected(Config::default(), server);
    // Before the server's SETTINGS the client assumes the default of 100 channels.
    let ids: Vec<ChannelId> = (0..3)
        .map(|i| pair.client.open("r", Bytes::new(), Some(pattern(i, 10)), false).expect("open"))
        .collect();
    pair.drive();

    let refused = pair.client.read(ids[2], 100);
    assert!(
        matches!(refused, Err(ChannelError::Reset { code: ErrorCode::LIMIT, .. })),
        "{refused:?}"
    );
    assert_eq!(
        pair.client.open("r", Bytes::new(), None, false),
        Err(OpenError::TooManyChannels(2))
    );
    for (i, id) in ids[..2].iter().enumerate() {
        assert_eq!(accept(&mut pair.server).id, *id);
        assert_eq!(
            read_message(&mut pair.server, *id),
            Ok(Got::Message(pattern(i as u64, 10).to_vec()))
        );
    }
    assert!(pair.server.accept().is_none());
    assert!(!pair.server.is_closing() && !pair.client.is_closing());
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

// ----- closing the session -----

#[test]
fn goaway_lets_channels_in_flight_finish_and_refuses_new_opens() {
    let mut pair = Pair::new();
    let a = pair.client.open("a", Bytes::new(), Some(b("question")), false).expect("open a");
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, a);

    // The client opens C while the server's GOAWAY is already on its way: they cross.
    let c = pair.client.open("c", Bytes::new(), Some(b("too late")), false).expect("open c");
    pair.transmit(Side::Client);
    pair.server.close(pair.now, ErrorCode::NO_ERROR, "restarting");
    pair.transmit(Side::Server);
    pair.drive();

    let goaway = pair.sent(Side::Server).find_map(|f| match f {
        Frame::GoAway { last_id, code, .. } => Some((*last_id, *code)),
        _ => None,
    });
    assert_eq!(goaway, Some((a, ErrorCode::NO_ERROR)));
    assert!(pair.events(Side::Client).iter().any(|e| matches!(e, Event::GoAway { .. })));
    assert_eq!(pair.client.open("d", Bytes::new(), None, false), Err(OpenError::GoingAway));
    let refused = pair.client.read(c, 100).expect_err("C is refused");
    assert!(refused.is_refused(), "{refused:?}");
    assert!(pair
        .sent(Side::Server)
        .any(|f| matches!(f, Frame::Reset { id, code: ErrorCode::REFUSED, .. } if *id == c)));

    // A, opened before the GOAWAY, completes in both directions.
    assert_eq!(read_message(&mut pair.server, a), Ok(msg("question")));
    pair.server.send(a, b("answer")).expect("send");
    pair.server.finish(a).expect("finish");
    pair.client.finish(a).expect("finish");
    pair.drive();
    assert_eq!(read_all(&mut pair.client, a), (vec![b"answer".to_vec()], Tail::End));
    assert_eq!(read_message(&mut pair.server, a), Ok(Got::End));

    assert!(pair.client.is_closed() && pair.server.is_closed());
    assert_eq!((pair.client.error(), pair.server.error()), (None, None));
    assert_eq!((pair.client.close_code(), pair.server.close_code()), (1000, 1000));
}

#[test]
fn drain_deadline_ends_a_stuck_drain() {
    let mut pair = Pair::new();
    let id = pair.client.open("stuck", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    pair.server.close(pair.now, ErrorCode::NO_ERROR, "bye");
    pair.drive();
    let drain = pair.server.config().drain_timeout;

    pair.pass_time(drain - Duration::from_millis(1));
    assert!(pair.server.is_closing() && !pair.server.is_closed());
    assert!(pair.client.is_closing() && !pair.client.is_closed());

    pair.pass_time(Duration::from_millis(1));
    assert!(pair.server.is_closed() && pair.client.is_closed());
    assert_eq!((pair.client.error(), pair.server.error()), (None, None));
    assert_eq!(pair.server.read(id, 100), Err(ChannelError::Session(SessionError::LocallyClosed)));
    assert!(matches!(pair.client.read(id, 100), Err(ChannelError::Session(_))));
}

#[test]
fn fin_then_transport_close_delivers_everything() {
    let mut pair = Pair::new();
    let done = pair.client.open("done", Bytes::new(), None, false).expect("open");
    let sent: Vec<Bytes> = vec![b("one"), pattern(1, 40 * KIB), Bytes::new(), b("last")];
    for m in &sent {
        pair.client.send(done, m.clone()).expect("send");
    }
    pair.client.finish(done).expect("finish");
    let open = pair.client.open("open", Bytes::new(), Some(b("unfinished")), false).expect("open");
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, done);
    assert_eq!(accept(&mut pair.server).id, open);

    pair.server.handle_transport_closed("connection reset by peer");

    let expected: Vec<Vec<u8>> = sent.iter().map(|m| m.to_vec()).collect();
    assert_eq!(read_all(&mut pair.server, done), (expected, Tail::End));
    let lost = SessionError::ConnectionLost("connection reset by peer".into());
    let (_, tail) = read_all(&mut pair.server, open);
    assert_eq!(tail, Tail::Error(ChannelError::Session(lost.clone())));
    assert!(pair.server.is_closed());
    assert_eq!(pair.server.error(), Some(&lost));
}

// ----- keepalive -----

#[test]
fn keepalive_measures_rtt() {
    let mut pair = Pair::unconnected(Config::default(), Config::default());
    let delay = Duration::from_millis(42);
    pair.transmit(Side::Client); // SETTINGS, PING
    pair.advance(delay);
    pair.deliver(Side::Client);
    pair.transmit(Side::Server); // SETTINGS, the answer, its own PING
    pair.deliver(Side::Server);

    let stats = pair.client.stats();
    assert_eq!((stats.rtt, stats.smoothed_rtt), (Some(delay), Some(delay)));
}

#[test]
fn unanswered_ping_ends_the_session_after_the_timeout() {
    let mut pair = Pair::new();
    pair.set_hook(|from, _| if from == Side::Server { Verdict::Drop } else { Verdict::Deliver });
    let config = pair.client.config().clone();
    let interval = config.keepalive_interval.expect("keepalive is on by default");
    let limit = interval + config.keepalive_timeout;

    pair.pass_time(limit - Duration::from_millis(1));
    assert!(!pair.client.is_closed());
    pair.pass_time(Duration::from_millis(1));
    assert!(pair.client.is_closed());
    assert_eq!(
        pair.client.error(),
        Some(&SessionError::KeepaliveTimeout(config.keepalive_timeout))
    );
    assert_eq!(pair.client.close_code(), 1011);
}

// ----- abuse -----

#[test]
fn rapid_reset_exhausts_the_budget_and_ends_the_session() {
    let mut peer = Script::server();
    let config = peer.session.config().clone();
    let burst = config.remote_reset_budget.burst;
    let mut resets = 0;
    for i in 0..2 * burst {
        let id = 2 * i + 1;
        peer.feed(&open_frame(id, b"x", false, false));
        peer.feed(&reset_frame(id, ErrorCode::CANCEL));
        resets += 1;
        assert!(peer.session.channel_count() <= config.accept_backlog, "at reset {resets}");
        if peer.session.is_closed() {
            break;
        }
    }
    assert_eq!(resets, burst + 1);
    assert_eq!(goaway_in(&peer.output()).map(|g| g.0), Some(ErrorCode::LIMIT));
    assert!(matches!(
        peer.session.error(),
        Some(SessionError::PeerViolation { code: ErrorCode::LIMIT, .. })
    ));
    assert_eq!(peer.session.close_code(), 1008);
}

#[test]
fn ping_flood_gets_one_pong() {
    let mut peer = Script::server();
    for i in 0..1000u64 {
        peer.feed(&Frame::Ping { ack: false, payload: i.to_be_bytes() });
    }
    let answers: Vec<Frame> =
        peer.output().into_iter().filter(|f| matches!(f, Frame::Ping { ack: true, .. })).collect();
    assert_eq!(answers, [Frame::Ping { ack: true, payload: 999u64.to_be_bytes() }]);
    assert!(!peer.session.is_closing());
}

#[test]
fn empty_data_flood_ends_the_session() {
    let mut peer = Script::server();
    let max = peer.session.config().max_empty_frames;
    peer.feed(&open_frame(1, &[], false, false));
    for _ in 0..max {
        peer.feed(&data_frame(1, &[], false, false));
    }
    assert!(!peer.session.is_closing(), "{max} empty frames are tolerated");
    peer.feed(&data_frame(1, &[], false, false));

    assert_eq!(goaway_in(&peer.output()).map(|g| g.0), Some(ErrorCode::LIMIT));
    assert!(peer.session.is_closed());
}

#[test]
fn data_after_fin_resets_only_that_channel() {
    let mut peer = Script::server();
    peer.feed(&open_frame(1, b"whole", true, true));
    peer.feed(&open_frame(3, b"first", true, false));
    peer.feed(&data_frame(1, b"after fin", true, false));
    peer.feed(&data_frame(3, b"second", true, false));

    assert_eq!(resets_in(&peer.output()), [(ChannelId(1), ErrorCode::STREAM_CLOSED)]);
    assert!(!peer.session.is_closing());
    // The reset channel is skipped by accept; the other one carries on.
    assert_eq!(accept(&mut peer.session).id, ChannelId(3));
    let got = read_all(&mut peer.session, ChannelId(3));
    assert_eq!(got, (vec![b"first".to_vec(), b"second".to_vec()], Tail::Pending));
}

#[test]
fn a_flood_of_empty_messages_resets_the_channel_with_limit() {
    let mut peer = Script::server();
    let max_empty = peer.session.config().max_empty_frames;
    peer.feed(&open_frame(1, &[], false, false));
    // Each round: as many empty messages as the empty-frame budget allows, then one byte to
    // restart its count. The reader never reads, so only the unread-chunk cost can stop this.
    for _ in 0..20 {
        for _ in 0..max_empty {
            peer.feed(&data_frame(1, &[], true, false));
        }
        peer.feed(&data_frame(1, b"x", true, false));
    }

    assert_eq!(resets_in(&peer.output()), [(ChannelId(1), ErrorCode::LIMIT)]);
    assert!(!peer.session.is_closing());
    assert!(matches!(
        peer.session.read(ChannelId(1), 100),
        Err(ChannelError::LocallyReset { code: ErrorCode::LIMIT, .. })
    ));
}

#[test]
fn a_session_error_before_settings_went_out_still_sends_settings_first() {
    let mut pair = Pair::unconnected(Config::default(), Config::default());
    pair.server.handle_text();
    pair.drive();

    let sent: Vec<&Frame> = pair.sent(Side::Server).collect();
    assert!(
        matches!(sent[..], [Frame::Settings(_), Frame::GoAway { code: ErrorCode::PROTOCOL, .. }]),
        "{sent:?}"
    );
    let events = pair.events(Side::Client);
    assert!(
        events.iter().any(|e| matches!(e, Event::GoAway { code: ErrorCode::PROTOCOL, .. })),
        "the client learns the code: {events:?}"
    );
}

#[test]
fn release_while_finishing_delivers_the_data_then_cancels() {
    let mut pair = Pair::new();
    let id = pair.client.open("upload", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    let upload = pattern(9, 100 * KIB);
    pair.client.send(id, upload.clone()).expect("send");
    pair.client.finish(id).expect("finish");
    pair.client.release(id); // the server may still send: CANCEL, but only after the FIN
    pair.drive();

    let tail: Vec<&Frame> =
        pair.sent(Side::Client).skip_while(|f| !matches!(f, Frame::Data(d) if d.fin)).collect();
    assert!(
        matches!(tail[..], [Frame::Data(_), Frame::Reset { code: ErrorCode::CANCEL, .. }]),
        "{tail:?}"
    );
    assert_eq!(read_all(&mut pair.server, id), (vec![upload.to_vec()], Tail::End));
    assert!(matches!(
        pair.server.send(id, b("reply")),
        Err(ChannelError::Reset { code: ErrorCode::CANCEL, .. })
    ));
    assert_eq!(pair.client.channel_count(), 0);
}

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
                let id =
                    pair.session(p.opener).open(&p.route, Bytes::new(), first, fin).expect("open");
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

// ----- bugs found while writing these scenarios -----

#[test]

fn a_goaway_with_an_error_code_is_the_sessions_error() {
    let mut pair = Pair::new();
    pair.server.handle_text(); // the server ends the session with PROTOCOL
    pair.drive();

    assert!(pair.client.is_closed());
    assert!(
        matches!(
            pair.client.error(),
            Some(SessionError::PeerGoAway { code: ErrorCode::PROTOCOL, .. })
        ),
        "client error: {:?}",
        pair.client.error()
    );
    assert_eq!(pair.client.close_code(), 1002);
}

#[test]

fn a_finished_channel_waiting_to_be_accepted_survives_transport_close() {
    let mut pair = Pair::new();
    let id = pair.client.open("notify", Bytes::new(), Some(b("event")), true).expect("open");
    pair.drive();
    pair.server.handle_transport_closed("gone");

    let incoming = pair.server.accept().map(|i| i.id);
    assert_eq!(incoming, Some(id), "the finished channel can still be accepted");
    assert_eq!(read_all(&mut pair.server, id), (vec![b"event".to_vec()], Tail::End));
}

#[test]

fn channels_cut_by_the_peers_drain_deadline_do_not_blame_this_end() {
    let mut pair = Pair::new();
    let id = pair.client.open("stuck", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    pair.server.close(pair.now, ErrorCode::NO_ERROR, "bye");
    pair.drive();
    pair.pass_time(pair.client.config().drain_timeout);

    assert!(pair.client.is_closed());
    let err = pair.client.read(id, 100);
    assert!(
        matches!(
            err,
            Err(ChannelError::Session(SessionError::PeerGoAway { code: ErrorCode::NO_ERROR, .. }))
        ),
        "{err:?}"
    );
}

#[test]

fn close_puts_no_open_on_the_wire_after_its_goaway() {
    let mut pair = Pair::new();
    let id = pair.client.open("late", Bytes::new(), Some(b("hello")), false).expect("open");
    pair.client.close(pair.now, ErrorCode::NO_ERROR, "bye");
    pair.drive();

    let sent: Vec<&Frame> = pair.sent(Side::Client).collect();
    let goaway = sent.iter().position(|f| matches!(f, Frame::GoAway { .. })).expect("GOAWAY");
    assert!(!sent[goaway..].iter().any(|f| matches!(f, Frame::Open(_))), "client sent {sent:?}");
    // The application learns at once that the channel will not happen.
    assert!(pair.client.read(id, 100).is_err());
}
