//! Session scenarios: GOAWAY and drain, keepalive, transport loss, and abuse budgets, driven
//! through an in-memory [`Pair`] or a scripted peer with a simulated clock.

mod util;

use std::time::Duration;

use bytes::Bytes;
use util::*;
use wsmux_proto::{
    ChannelError, ChannelId, Config, ErrorCode, Event, Frame, OpenError, SessionError, Side,
    PART_CHARGE,
};

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

/// A pair whose server has sent GOAWAY while a client channel it accepted stays open.
fn draining_with_a_stuck_channel() -> (Pair, ChannelId) {
    let mut pair = Pair::new();
    let id = pair.client.open("stuck", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    pair.server.close(pair.now, ErrorCode::NO_ERROR, "bye");
    pair.drive();
    (pair, id)
}

#[test]
fn drain_deadline_ends_a_stuck_drain() {
    let (mut pair, id) = draining_with_a_stuck_channel();
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
fn close_within_bounds_the_drain_and_shortens_one_under_way() {
    // A fresh close with a short drain: over in 2 s, not the configured 10 s.
    let mut pair = Pair::new();
    let id = pair.client.open("stuck", Bytes::new(), None, false).expect("open");
    pair.drive();
    accept(&mut pair.server);
    let now = pair.now;
    pair.server.close_within(now, ErrorCode::NO_ERROR, "shutdown", Duration::from_secs(2));
    pair.drive();
    assert!(goaway_in(&pair.sent(Side::Server).cloned().collect::<Vec<_>>()).is_some());
    pair.pass_time(Duration::from_millis(1999));
    assert!(!pair.server.is_closed());
    pair.pass_time(Duration::from_millis(1));
    assert!(pair.server.is_closed());
    assert_eq!(pair.server.read(id, 100), Err(ChannelError::Session(SessionError::LocallyClosed)));

    // A drain already under way (the plain close above, 10 s) is cut to the shorter deadline;
    // a longer one does not extend it.
    let (mut pair, _) = draining_with_a_stuck_channel();
    pair.pass_time(Duration::from_secs(1));
    let now = pair.now;
    pair.server.close_within(now, ErrorCode::NO_ERROR, "sooner", Duration::from_secs(1));
    pair.server.close_within(now, ErrorCode::NO_ERROR, "later", Duration::from_secs(60));
    pair.pass_time(Duration::from_millis(999));
    assert!(!pair.server.is_closed());
    pair.pass_time(Duration::from_millis(1));
    assert!(pair.server.is_closed());
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
fn a_flood_of_empty_messages_runs_out_of_credit() {
    let mut peer = Script::server();
    let window = peer.session.config().initial_window as usize;
    peer.feed(&open_frame(1, &[], false, false));
    // An empty message is a part: it takes the part charge of credit, so a window holds
    // `window / PART_CHARGE` of them (the empty-frame budget does not count them).
    for _ in 0..window / PART_CHARGE {
        peer.feed(&data_frame(1, &[], true, false));
    }
    assert!(!peer.session.is_closing(), "a window of empty messages is within credit");
    assert!(resets_in(&peer.output()).is_empty());
    peer.feed(&data_frame(1, &[], true, false));
    assert_eq!(goaway_in(&peer.output()).map(|g| g.0), Some(ErrorCode::FLOW_CONTROL));
}

#[test]
fn tiny_messages_within_credit_are_never_reset_however_slowly_they_are_read() {
    // The sender runs far ahead of a reader that takes one message per round: byte credit
    // alone would let 256 Ki one-byte messages in; the part charge keeps it to the window.
    let mut pair = Pair::new();
    let id = pair.client.open("ticks", Bytes::new(), None, false).expect("open");
    let total = 20_000;
    for i in 0..total {
        pair.client.send(id, Bytes::from(vec![i as u8])).expect("send");
    }
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, id);
    let mut got = 0;
    while got < total {
        match read_message(&mut pair.server, id).expect("never reset") {
            Got::Message(m) => {
                assert_eq!(m, [got as u8]);
                got += 1;
            }
            Got::Pending => {}
            Got::End => panic!("no FIN was sent"),
        }
        let unread = pair.server.stats().unread_cost;
        assert!(unread <= pair.server.config().initial_window as usize, "{unread}");
        pair.drive();
    }
    assert_eq!(pair.server.stats().resets_sent, 0);
    assert!(pair.client.error().is_none() && pair.server.error().is_none());
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

// ----- regressions: bugs these scenarios found -----

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
    let (mut pair, id) = draining_with_a_stuck_channel();
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

#[test]
fn a_peers_clean_goaway_then_transport_loss_ends_cleanly_but_fails_open_channels() {
    let mut pair = Pair::new();
    let id = pair.client.open("work", Bytes::new(), Some(b("x")), false).expect("open");
    pair.drive();
    let _server_side = accept(&mut pair.server);
    pair.server.close(pair.now, ErrorCode::NO_ERROR, "restart");
    pair.drive();
    pair.client.handle_transport_closed("gone");
    assert!(pair.client.is_closed());
    // The peer announced a clean end: the session did not fail...
    assert_eq!(pair.client.error(), None);
    // ...but the channel it cut off did, distinguishably from a clean end.
    assert!(matches!(
        pair.client.read(id, usize::MAX),
        Err(ChannelError::Session(SessionError::ConnectionLost(_)))
    ));
}

#[test]
fn refusals_by_the_application_count_against_the_reset_budget() {
    let mut config = Config::default();
    config.local_reset_budget = wsmux_proto::Budget { burst: 5, per_second: 1 };
    let mut pair = Pair::with(Config::default(), config);
    for _ in 0..10 {
        if pair.client.open("nope", Bytes::new(), None, true).is_err() {
            break;
        }
    }
    pair.drive();
    for _ in 0..10 {
        match pair.server.accept() {
            Some(incoming) => pair.server.refuse(pair.now, incoming.id, ErrorCode::NOT_FOUND, "no"),
            None => break,
        }
        pair.drive();
    }
    // Past the burst of 5, the peer that only opens refused channels loses the session.
    assert!(pair.server.is_closed());
    assert!(matches!(
        pair.server.error(),
        Some(SessionError::PeerViolation { code: ErrorCode::LIMIT, .. })
    ));
}

#[test]
fn a_peer_that_provokes_resets_without_reading_hits_the_control_queue_bound() {
    // S4: with a reset budget too large to trip, what stops a peer that provokes a RESET per
    // frame and never reads the answers is the bound on queued replies.
    let mut config = Config::default();
    config.max_channels = 0; // every OPEN is refused with a RESET
    config.local_reset_budget = wsmux_proto::Budget { burst: 1_000_000, per_second: 0 };
    config.max_control_queue = 16;
    let mut peer = Script::server_with(config);
    for i in 0..16 {
        peer.feed(&open_frame(2 * i + 1, b"x", true, false));
    }
    assert!(!peer.session.is_closing(), "16 queued replies are within the bound");
    peer.feed(&open_frame(33, b"x", true, false));
    assert!(peer.session.is_closed(), "the 17th reply overflows the queue");
    let out = peer.output();
    assert_eq!(goaway_in(&out).map(|g| g.0), Some(ErrorCode::LIMIT));
    assert!(resets_in(&out).is_empty(), "on a session error the queued replies are dropped");
}

#[test]
fn whole_messages_read_ahead_are_held_until_the_next_joining_read() {
    let mut pair = Pair::new();
    let id = pair.client.open("batch", Bytes::new(), None, false).expect("open");
    for m in ["one", "two", "three", "four"] {
        pair.client.send(id, b(m)).expect("send");
    }
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, id);
    let first = match pair.server.read_joining(id, usize::MAX) {
        Ok(wsmux_proto::Read::Chunk(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!((&first.data[..], first.eom), (&b"one"[..], true));
    // Up to 136 bytes more, each message counted with its part charge of 64: "two" and
    // "three" (67 + 69), not "four".
    let mut ahead = Vec::new();
    assert_eq!(pair.server.read_more_whole(id, 136, &mut ahead), 2);
    assert_eq!(ahead, [b("two"), b("three")]);
    // All three are held (against max_reassembly) until the reader asks for the next one.
    assert_eq!(pair.server.stats().reassembly_bytes, 11);
    let last = match pair.server.read_joining(id, usize::MAX) {
        Ok(wsmux_proto::Read::Chunk(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(&last.data[..], b"four");
    assert_eq!(pair.server.stats().reassembly_bytes, 4);
    // Nothing more waits.
    assert_eq!(pair.server.read_more_whole(id, 136, &mut ahead), 0);
}

#[test]
fn a_reader_gets_one_readable_event_per_run_of_frames_not_one_per_frame() {
    let mut pair = Pair::new();
    let id = pair.client.open("events", Bytes::new(), None, false).expect("open");
    pair.drive();
    assert_eq!(accept(&mut pair.server).id, id);
    let readable = |pair: &mut Pair| {
        let events = pair.events(Side::Server);
        events.iter().filter(|e| matches!(e, Event::Readable(i) if *i == id)).count()
    };
    readable(&mut pair);
    for m in ["a", "b", "c"] {
        pair.client.send(id, b(m)).expect("send");
    }
    pair.drive();
    assert_eq!(readable(&mut pair), 1, "the queue stopped being empty once");
    assert_eq!(read_message(&mut pair.server, id), Ok(msg("a")));
    pair.client.send(id, b("d")).expect("send");
    pair.drive();
    assert_eq!(readable(&mut pair), 0, "the reader has not emptied the queue: it reads on");
    for m in ["b", "c", "d"] {
        assert_eq!(read_message(&mut pair.server, id), Ok(msg(m)));
    }
    pair.client.finish(id).expect("finish");
    pair.drive();
    assert_eq!(readable(&mut pair), 1, "the end on an empty queue is news");
}
