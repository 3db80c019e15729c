//! End-to-end channel behaviour over a loopback WebSocket.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};

use common::*;
use wsmux::{ChannelError, Error, ErrorCode, OpenError, OpenOptions, Session, SessionError};

fn serve_reference(session: Session) {
    async_std::task::spawn(wsmux::interop::serve(session));
}

#[test]
fn many_channels_interleave_without_corruption() {
    run(async {
        let (client, server) = pair().await;
        serve_reference(server);
        let mut tasks = Vec::new();
        for i in 0..100u64 {
            let client = client.clone();
            tasks.push(async_std::task::spawn(async move {
                // Sizes from 1 byte to 1 MiB, so small messages and fragmented ones mix.
                let sizes = [
                    1 + (i as usize * 7919) % 4096,
                    (i as usize * 104_729) % 65_536,
                    if i % 10 == 0 { 1 << 20 } else { 20_000 + i as usize },
                    1,
                ];
                let messages: Vec<Bytes> = sizes
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| Bytes::from(pattern(i * 16 + k as u64, n)))
                    .collect();
                let ch = client.open("echo").await.unwrap();
                let (mut tx, mut rx) = ch.split();
                let expected: Vec<u64> = messages.iter().map(|m| checksum(m)).collect();
                // Both directions at once: the echo streams back while we still send.
                let sender = async {
                    for m in messages {
                        tx.feed(m).await.unwrap();
                    }
                    tx.close().await.unwrap();
                };
                let receiver = async {
                    let mut got = Vec::new();
                    while let Some(m) = rx.next().await {
                        got.push(checksum(&m.unwrap()));
                    }
                    got
                };
                let ((), got) = futures::join!(sender, receiver);
                assert_eq!(got, expected, "channel {i}");
            }));
        }
        for t in tasks {
            t.await;
        }
        let stats = client.stats();
        assert!(stats.channels_opened >= 100);
    });
}

#[test]
fn stalled_reader_does_not_block_other_channels() {
    run(async {
        let (client, server) = pair().await;
        let window = wsmux::proto::Config::default().initial_window as usize;
        let send_buffer = wsmux::proto::Config::default().send_buffer as usize;
        // Server: accept "stalled" and never read it; serve everything else.
        let stalled_held = Arc::new(async_std::sync::Mutex::new(None));
        let held = stalled_held.clone();
        async_std::task::spawn(async move {
            while let Some(inc) = server.accept().await {
                if inc.route() == "stalled" {
                    *held.lock().await = Some(inc.accept());
                } else {
                    async_std::task::spawn(wsmux::interop::handle(inc));
                }
            }
        });
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        let mut stalled = client.open("stalled").await.unwrap();
        let blocked = async_std::task::spawn(async move {
            let block = Bytes::from(vec![7u8; 16 * 1024]);
            for _ in 0..1024 {
                stalled.send(block.clone()).await.unwrap();
                counter.fetch_add(block.len(), Ordering::SeqCst);
            }
        });
        // Meanwhile another channel moves 8 MiB through the same connection.
        let mut echo = client.open("echo").await.unwrap();
        let block = Bytes::from(pattern(3, 64 * 1024));
        for _ in 0..128 {
            echo.send(block.clone()).await.unwrap();
            assert_eq!(echo.recv().await.unwrap().unwrap(), block);
        }
        // The stalled channel holds at most one window at the peer plus our send buffer.
        let progress = sent.load(Ordering::SeqCst);
        assert!(
            progress <= window + send_buffer + 16 * 1024,
            "stalled channel sent {progress} bytes"
        );
        assert!(progress < 1024 * 16 * 1024);
        drop(blocked);
    });
}

/// A task waiting on a channel reads the socket for the whole session while it waits (the read
/// lease, `Config::caller_reads`). Woken and then never polled again while alive (the losing
/// branch of a `select`, kept aside), it must not stall the other channels: the driver takes
/// the socket back.
#[test]
fn a_waiting_reader_never_polled_again_does_not_stall_the_other_channels() {
    run(async {
        let mut config = wsmux::Config::default();
        config.caller_reads = true; // the default with async-std; set for any features
        let (client, server) = pair_with(config, wsmux::server::ServerConfig::default()).await;
        serve_reference(server);
        // Nothing ever arrives on this one.
        let mut idle = client.open("discard").await.unwrap();
        let mut kept_aside = Box::pin(idle.recv());
        for round in 0..20u8 {
            // Polled once: nothing to read, so it waits, holding the socket. What arrives next
            // wakes this task, which polls the echo below and never this future.
            assert!(futures::poll!(kept_aside.as_mut()).is_pending());
            let mut ch = client.open("echo").await.unwrap();
            ch.send(Bytes::from(vec![round; 10])).await.unwrap();
            assert_eq!(ch.recv().await.unwrap().as_deref(), Some(&[round; 10][..]));
        }
        drop(kept_aside);
        idle.finish().await.unwrap();
        assert_eq!(idle.recv().await.unwrap(), None);
    });
}

#[test]
fn both_sides_open_channels_at_the_same_time() {
    run(async {
        let (client, server) = pair().await;
        let c2 = client.clone();
        let s2 = server.clone();
        async_std::task::spawn(wsmux::interop::serve(c2));
        async_std::task::spawn(wsmux::interop::serve(s2));
        let from_client = (0..50).map(|i| {
            let s = client.clone();
            async move {
                let mut ch = s.open("echo").await.unwrap();
                assert_eq!(ch.id().0 % 2, 1, "client ids are odd");
                ch.send(Bytes::from(format!("c{i}"))).await.unwrap();
                assert_eq!(ch.recv().await.unwrap().unwrap(), format!("c{i}"));
            }
        });
        let from_server = (0..50).map(|i| {
            let s = server.clone();
            async move {
                let mut ch = s.open("echo").await.unwrap();
                assert_eq!(ch.id().0 % 2, 0, "server ids are even");
                ch.send(Bytes::from(format!("s{i}"))).await.unwrap();
                assert_eq!(ch.recv().await.unwrap().unwrap(), format!("s{i}"));
            }
        });
        futures::join!(
            futures::future::join_all(from_client),
            futures::future::join_all(from_server)
        );
    });
}

#[test]
fn open_refused_after_data_was_sent_reports_the_code() {
    run(async {
        let (client, server) = pair().await;
        serve_reference(server);
        let options = OpenOptions::new("no-such-route").message(Bytes::from(vec![1u8; 100_000]));
        let mut ch = client.open_with(options).await.unwrap();
        ch.send(Bytes::from_static(b"more")).await.ok();
        match ch.recv().await {
            Err(Error::Channel(ChannelError::Reset { code, .. })) => {
                assert_eq!(code, ErrorCode::NOT_FOUND)
            }
            other => panic!("expected NOT_FOUND, got {other:?}"),
        }
        // The session is fine.
        let mut ok = client.open("echo").await.unwrap();
        ok.send(Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(ok.recv().await.unwrap().unwrap(), "x");
    });
}

#[test]
fn a_reply_to_the_last_message_carries_the_fin_in_the_same_frame() {
    run(async {
        let (client, server) = pair().await;
        serve_reference(server.clone());
        client.ping().await.unwrap(); // the server's SETTINGS (and the PONG) are out
        let before = server.stats().frames_sent;
        let options = OpenOptions::new("echo").message(Bytes::from_static(b"one"));
        let mut ch = client.open_with(options).await.unwrap();
        ch.finish_with(Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "one");
        assert_eq!(ch.recv().await.unwrap().unwrap(), "two");
        // The echo saw the FIN behind "two" and answered with reply and FIN together.
        assert!(ch.peer_finished());
        assert_eq!(ch.recv().await.unwrap(), None);
        assert_eq!(server.stats().frames_sent - before, 2, "\"one\", then \"two\" with FIN");
    });
}

#[test]
fn half_close_in_each_direction() {
    run(async {
        let (client, server) = pair().await;
        // Client finishes first; the server keeps sending after that.
        let srv = async_std::task::spawn(async move {
            let mut a = server.accept().await.unwrap().accept();
            assert_eq!(a.recv().await.unwrap().unwrap(), "request");
            assert_eq!(a.recv().await.unwrap(), None);
            for i in 0..3 {
                a.send(Bytes::from(format!("late {i}"))).await.unwrap();
            }
            a.finish().await.unwrap();
            // Server finishes first; the client keeps sending after that.
            let mut b = server.accept().await.unwrap().accept();
            b.finish().await.unwrap();
            let mut got = Vec::new();
            while let Some(m) = b.recv().await.unwrap() {
                got.push(m);
            }
            assert_eq!(got.len(), 3);
            server
        });
        let mut a = client.open("a").await.unwrap();
        a.send(Bytes::from_static(b"request")).await.unwrap();
        a.finish().await.unwrap();
        for i in 0..3 {
            assert_eq!(a.recv().await.unwrap().unwrap(), format!("late {i}"));
        }
        assert_eq!(a.recv().await.unwrap(), None);
        let mut b = client.open("b").await.unwrap();
        assert_eq!(b.recv().await.unwrap(), None);
        for i in 0..3 {
            b.send(Bytes::from(format!("after {i}"))).await.unwrap();
        }
        b.finish().await.unwrap();
        let _server = srv.await;
    });
}

#[test]
fn reset_and_clean_end_are_distinguishable() {
    run(async {
        let (client, server) = pair().await;
        async_std::task::spawn(async move {
            let mut clean = server.accept().await.unwrap().accept();
            clean.send(Bytes::from_static(b"data")).await.unwrap();
            clean.finish().await.unwrap();
            let mut aborted = server.accept().await.unwrap().accept();
            aborted.send(Bytes::from_static(b"data")).await.unwrap();
            aborted.flush().await.unwrap();
            aborted.reset(ErrorCode(0x1234), "application gave up");
            server.closed().await;
        });
        let mut clean = client.open("clean").await.unwrap();
        assert_eq!(clean.recv().await.unwrap().unwrap(), "data");
        assert_eq!(clean.recv().await.unwrap(), None);
        let mut aborted = client.open("aborted").await.unwrap();
        let err = loop {
            match aborted.recv().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a reset must not look like a clean end"),
                Err(e) => break e,
            }
        };
        match err {
            Error::Channel(ChannelError::Reset { code, reason }) => {
                assert_eq!(code, ErrorCode(0x1234));
                assert_eq!(reason, "application gave up");
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn goaway_lets_channels_in_flight_finish_and_refuses_new_opens() {
    run(async {
        let (client, server) = pair().await;
        let srv = server.clone();
        let server_task = async_std::task::spawn(async move {
            let mut ch = srv.accept().await.unwrap().accept();
            assert_eq!(ch.recv().await.unwrap().unwrap(), "before");
            srv.close(ErrorCode::NO_ERROR, "maintenance");
            // The GOAWAY (a control frame) leaves before this message.
            ch.send(Bytes::from_static(b"goaway sent")).await.unwrap();
            while let Some(m) = ch.recv().await.unwrap() {
                ch.send(m).await.unwrap();
            }
            ch.finish().await.unwrap();
        });
        let mut ch = client.open("work").await.unwrap();
        ch.send(Bytes::from_static(b"before")).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "goaway sent");
        match client.open("new").await {
            Err(Error::Open(OpenError::GoingAway)) => {}
            other => panic!("expected GoingAway, got {other:?}"),
        }
        // The channel in flight still works both ways, then ends cleanly.
        ch.send(Bytes::from_static(b"during")).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "during");
        ch.finish().await.unwrap();
        assert_eq!(ch.recv().await.unwrap(), None);
        server_task.await;
        drop(ch);
        assert_eq!(client.closed().await, None);
        assert_eq!(server.closed().await, None);
    });
}

#[test]
fn dropping_a_channel_resets_it_for_the_peer() {
    run(async {
        let (client, server) = pair().await;
        let ch = client.open("dropped").await.unwrap();
        let mut peer = server.accept().await.unwrap().accept();
        drop(ch);
        match peer.recv().await {
            Err(Error::Channel(ChannelError::Reset { code, .. })) => {
                assert_eq!(code, ErrorCode::CANCEL)
            }
            other => panic!("expected CANCEL, got {other:?}"),
        }
        drop(peer);
        // The state is freed on both sides.
        assert_eq!(client.stats().held_channels, 0);
        assert_eq!(server.stats().held_channels, 0);
        assert_eq!(server.stats().open_channels, 0);
    });
}

#[test]
fn dropping_the_last_session_handle_closes_cleanly_on_both_sides() {
    run(async {
        let (client, server) = pair().await;
        let mut ch = client.open("last").await.unwrap();
        ch.send(Bytes::from_static(b"bye")).await.unwrap();
        let mut peer = server.accept().await.unwrap().accept();
        drop(client); // the channel keeps the connection until it ends
        assert_eq!(peer.recv().await.unwrap().unwrap(), "bye");
        peer.send(Bytes::from_static(b"still here")).await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "still here");
        ch.finish().await.unwrap();
        assert_eq!(peer.recv().await.unwrap(), None);
        peer.finish().await.unwrap();
        assert_eq!(ch.recv().await.unwrap(), None);
        drop(ch);
        drop(peer);
        assert_eq!(server.closed().await, None);
        assert_eq!(server.stats().held_channels, 0);
    });
}

#[test]
fn fin_then_transport_close_delivers_everything() {
    run(async {
        let (client, server, driver) = pair_with_killable_client().await;

        let messages: Vec<Bytes> = (0..20).map(|i| Bytes::from(pattern(i, 5000))).collect();
        let mut finished = client.open("finished").await.unwrap();
        for m in &messages {
            finished.send(m.clone()).await.unwrap();
        }
        finished.finish().await.unwrap();
        let mut unfinished = client.open("unfinished").await.unwrap();
        unfinished.send(Bytes::from_static(b"partial")).await.unwrap();
        // A round trip on a third channel proves everything before it reached the server.
        let mut barrier = client.open("barrier").await.unwrap();
        let mut a = server.accept().await.unwrap().accept();
        let mut b = server.accept().await.unwrap().accept();
        let mut c = server.accept().await.unwrap().accept();
        barrier.send(Bytes::from_static(b"sync")).await.unwrap();
        let echoed = c.recv().await.unwrap().unwrap();
        c.send(echoed).await.unwrap();
        barrier.recv().await.unwrap().unwrap();

        // The transport dies at once: no GOAWAY, no close handshake.
        driver.cancel().await;
        // Everything sent before FIN is still delivered, then a clean end.
        for m in &messages {
            assert_eq!(a.recv().await.unwrap().unwrap(), m);
        }
        assert_eq!(a.recv().await.unwrap(), None);
        // A channel without FIN gets its data, then an error, not a clean end.
        assert_eq!(b.recv().await.unwrap().unwrap(), "partial");
        match b.recv().await {
            Err(Error::Channel(ChannelError::Session(SessionError::ConnectionLost(_)))) => {}
            other => panic!("expected ConnectionLost, got {other:?}"),
        }
        drop(unfinished);
    });
}

#[test]
fn transport_dropped_mid_transfer_fails_every_channel_promptly() {
    run(async {
        let (client, server, driver) = pair_with_killable_client().await;
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..5 {
            let mut ch = client.open("bulk").await.unwrap();
            receivers.push(server.accept().await.unwrap().accept());
            senders.push(async_std::task::spawn(async move {
                let block = Bytes::from(vec![1u8; 32 * 1024]);
                loop {
                    if let Err(e) = ch.send(block.clone()).await {
                        return e.error;
                    }
                }
            }));
        }
        // Let data flow, then kill the transport.
        receivers[0].recv().await.unwrap().unwrap();
        driver.cancel().await;
        for mut r in receivers {
            let err = loop {
                match r.recv().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("a lost transport must not look like a clean end"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, Error::Channel(ChannelError::Session(_))), "{err:?}");
        }
        for s in senders {
            let err = s.await;
            assert!(matches!(err, Error::Channel(ChannelError::Session(_))), "{err:?}");
        }
        assert!(client.is_closed());
    });
}

#[test]
fn a_channel_works_as_a_byte_stream() {
    use futures::{AsyncReadExt, AsyncWriteExt};
    run(async {
        let (client, server) = pair().await;
        serve_reference(server);
        let ch = client.open("echo").await.unwrap();
        let io = ch.into_io();
        let data = pattern(9, 300_000);
        let (mut rd, mut wr) = io.split();
        let writer = async {
            wr.write_all(&data).await.unwrap();
            wr.close().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            rd.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = futures::join!(writer, reader);
        assert_eq!(checksum(&got), checksum(&data));
        assert_eq!(got.len(), data.len());
    });
}

#[test]
fn typed_channels_carry_serde_values_and_survive_garbage() {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Point {
        x: i32,
        label: String,
    }
    run(async {
        let (client, server) = pair().await;
        serve_reference(server);
        let mut typed = client.open("echo").await.unwrap().typed::<Point, Point>();
        let p = Point { x: -7, label: "seven".into() };
        typed.send(p.clone()).await.unwrap();
        assert_eq!(typed.recv().await.unwrap(), Some(p));
        // A message that is not a Point is a codec error; the channel keeps working.
        typed.channel_mut().send(Bytes::from_static(&[0xFF; 3])).await.unwrap();
        assert!(matches!(typed.recv().await, Err(Error::Codec(_))));
        let q = Point { x: 1, label: String::new() };
        typed.send(q.clone()).await.unwrap();
        assert_eq!(typed.recv().await.unwrap(), Some(q));
    });
}

#[test]
fn source_route_sends_the_requested_count() {
    run(async {
        let (client, server) = pair().await;
        serve_reference(server);
        let mut ch = client
            .open_with(OpenOptions::new("source").metadata("1000000").finish())
            .await
            .unwrap();
        let mut total = 0;
        while let Some(m) = ch.recv().await.unwrap() {
            assert!(m.len() <= wsmux::interop::SOURCE_CHUNK);
            total += m.len();
        }
        assert_eq!(total, 1_000_000);
        let mut discard = client.open("discard").await.unwrap();
        discard.send(Bytes::from(vec![0u8; 100_000])).await.unwrap();
        discard.finish().await.unwrap();
        assert_eq!(discard.recv().await.unwrap(), None);
    });
}

#[test]
fn errors_are_send_sync_and_convert_to_io_errors() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
    assert_send_sync::<wsmux::SendError<Bytes>>();
    assert_send_sync::<Session>();
    assert_send_sync::<wsmux::Channel>();
    let reset = Error::Channel(ChannelError::Reset { code: ErrorCode::CANCEL, reason: "x".into() });
    assert_eq!(std::io::Error::from(reset).kind(), std::io::ErrorKind::ConnectionReset);
    let lost = Error::Session(SessionError::ConnectionLost("gone".into()));
    assert_eq!(std::io::Error::from(lost).kind(), std::io::ErrorKind::ConnectionAborted);
}

#[test]
fn ping_measures_the_round_trip_on_demand() {
    run(async {
        let (client, server) = pair().await;
        let first = client.ping().await.unwrap();
        let second = server.ping().await.unwrap();
        assert!(first > std::time::Duration::ZERO && second > std::time::Duration::ZERO);
        assert_eq!(client.stats().rtt, Some(first));
        // Once the session has ended, ping fails instead of waiting.
        client.close(ErrorCode::NO_ERROR, "bye");
        assert_eq!(client.closed().await, None);
        assert!(client.ping().await.is_err());
    });
}

#[test]
fn accept_returns_none_as_soon_as_the_session_starts_closing() {
    run(async {
        let (client, server) = pair().await;
        // A channel in flight keeps the drain going, so only the GOAWAY can end the accept.
        let _busy = client.open("busy").await.unwrap();
        let _held = server.accept().await.unwrap().accept();
        let acceptor = server.clone();
        let waiting = async_std::task::spawn(async move { acceptor.accept().await.is_none() });
        server.close(ErrorCode::NO_ERROR, "shutting down");
        assert!(waiting.await, "accept returned a channel after close");
        assert!(!server.is_closed(), "the drain is still running");
    });
}

#[test]
fn a_255_byte_route_arrives_intact_256_is_refused_locally_and_max_metadata_0_refuses_metadata() {
    run(async {
        let mut config = wsmux::server::ServerConfig::default();
        config.session.protocol.max_metadata = 0;
        let (client, server) = pair_with(wsmux::Config::default(), config).await;
        // 127 two-byte characters and one one-byte character: 255 bytes of UTF-8.
        let route = format!("{}x", "é".repeat(127));
        assert_eq!(route.len(), 255);
        let mut ch = client.open_with(OpenOptions::new(route.clone()).message("hi")).await.unwrap();
        let incoming = server.accept().await.unwrap();
        assert_eq!(incoming.route(), route);
        assert!(incoming.metadata().is_empty());
        let mut theirs = incoming.accept();
        assert_eq!(theirs.recv().await.unwrap().unwrap(), "hi");
        theirs.send("back").await.unwrap();
        assert_eq!(ch.recv().await.unwrap().unwrap(), "back");

        // One byte more does not fit the OPEN's length octet: refused before anything is sent.
        let opened = client.stats().channels_opened;
        match client.open(&"r".repeat(256)).await {
            Err(Error::Open(OpenError::RouteTooLong(256))) => {}
            other => panic!("expected RouteTooLong(256), got {other:?}"),
        }
        assert_eq!(client.stats().channels_opened, opened);

        // max_metadata = 0: any metadata is over the limit, so the server refuses with LIMIT.
        let options = OpenOptions::new("with-metadata").metadata("x").message("dropped");
        let mut refused = client.open_with(options).await.unwrap();
        match refused.recv().await {
            Err(Error::Channel(ChannelError::Reset { code, .. })) => {
                assert_eq!(code, ErrorCode::LIMIT)
            }
            other => panic!("expected a reset with LIMIT, got {other:?}"),
        }
        // Without metadata an open goes through; the refused one never reached the application.
        let mut plain = client.open_with(OpenOptions::new("plain").message("ok")).await.unwrap();
        let incoming = server.accept().await.unwrap();
        assert_eq!(incoming.route(), "plain");
        let mut theirs = incoming.accept();
        assert_eq!(theirs.recv().await.unwrap().unwrap(), "ok");
        theirs.send("fine").await.unwrap();
        assert_eq!(plain.recv().await.unwrap().unwrap(), "fine");
        assert_eq!(server.stats().opens_refused, 1);
    });
}

#[test]
fn an_open_waiting_at_the_channel_limit_goes_out_whole_once_a_channel_ends() {
    run(async {
        let mut config = wsmux::server::ServerConfig::default();
        config.session.protocol.max_channels = 1;
        let (client, server) = pair_with(wsmux::Config::default(), config).await;
        let mut first = client.open_with(OpenOptions::new("first").message("one")).await.unwrap();
        let mut theirs = server.accept().await.unwrap().accept();
        assert_eq!(theirs.recv().await.unwrap().unwrap(), "one");

        // The server allows one channel: the second open waits, with its metadata and message.
        let options = OpenOptions::new("second").metadata("meta").message("two").finish();
        let second = async_std::task::spawn({
            let client = client.clone();
            async move { client.open_with(options).await }
        });
        // Still waiting after a round trip on the open channel (the server's SETTINGS, with
        // its limit, came before that answer).
        theirs.send("ack").await.unwrap();
        assert_eq!(first.recv().await.unwrap().unwrap(), "ack");
        assert_eq!(client.stats().channels_opened, 1, "the second open waits");

        // The first channel ends both ways: the waiting open goes out, whole.
        first.finish().await.unwrap();
        assert_eq!(theirs.recv().await.unwrap(), None);
        theirs.finish().await.unwrap();
        drop(theirs);
        assert_eq!(first.recv().await.unwrap(), None);
        drop(first);
        let mut second = second.await.unwrap();
        let incoming = server.accept().await.unwrap();
        assert_eq!((incoming.route(), &incoming.metadata()[..]), ("second", &b"meta"[..]));
        let mut theirs = incoming.accept();
        assert_eq!(theirs.recv().await.unwrap().unwrap(), "two");
        assert_eq!(theirs.recv().await.unwrap(), None);
        theirs.finish_with("done").await.unwrap();
        assert_eq!(second.recv().await.unwrap().unwrap(), "done");
    });
}

/// STOP (PROTOCOL.md section 4.9, issue 16h): a reader that stops reading ends only the peer's
/// sending direction. The peer's writer fails with `Stopped` and the code; the stopping side
/// still sends, finishes, and the peer reads it all.
#[test]
fn stop_receiving_ends_only_the_peers_sending_direction() {
    run(async {
        let (client, server) = pair().await;
        // Held to the end: the session outlives the task that serves the channel.
        let _server = server.clone();
        let served = async_std::task::spawn(async move {
            let mut ch = server.accept().await.unwrap().accept();
            // Sends until the client stops it.
            let block = Bytes::from(vec![9u8; 16 * 1024]);
            let stopped = loop {
                match ch.send(block.clone()).await {
                    Ok(()) => continue,
                    Err(e) => break e.error,
                }
            };
            // Its receiving direction goes on: everything the client sends, then its FIN.
            let mut got = Vec::new();
            while let Some(msg) = ch.recv().await.unwrap() {
                got.push(msg);
            }
            (stopped, got)
        });
        let mut ch = client.open("down").await.unwrap();
        assert_eq!(ch.recv().await.unwrap().map(|m| m.len()), Some(16 * 1024));
        ch.stop_receiving(ErrorCode(0x100), "enough");
        match ch.recv().await {
            Err(wsmux::Error::Channel(ChannelError::LocallyStopped { code, .. })) => {
                assert_eq!(code, ErrorCode(0x100))
            }
            other => panic!("expected LocallyStopped, got {other:?}"),
        }
        ch.send(Bytes::from_static(b"one")).await.unwrap();
        ch.send(Bytes::from_static(b"two")).await.unwrap();
        ch.finish().await.unwrap();
        let (stopped, got) = served.await;
        match stopped {
            wsmux::Error::Channel(ChannelError::Stopped { code, reason }) => {
                assert_eq!((code, reason.as_str()), (ErrorCode(0x100), "enough"))
            }
            other => panic!("expected Stopped, got {other:?}"),
        }
        assert_eq!(got, [Bytes::from_static(b"one"), Bytes::from_static(b"two")]);
        // Both directions are over on the wire: the server's with the STOP, the client's with
        // its FIN, transmitted before `finish` returned. Nothing is left open.
        assert_eq!(client.stats().open_channels, 0);
        drop(ch);
        assert!(client.stats().resets_sent >= 1 && !client.is_closed());
    });
}

/// Ten small messages and FIN, all arrived before the first read: a read takes the first and
/// reads the rest ahead.
async fn ten_messages_then_fin(client: &wsmux::Session, server: &wsmux::Session) -> wsmux::Channel {
    let mut tx = client.open("ten").await.unwrap();
    for i in 0..10u8 {
        tx.send(Bytes::from(vec![i; 8])).await.unwrap();
    }
    tx.finish().await.unwrap();
    let mut rx = server.accept().await.unwrap().accept();
    // Once a PING is answered, the frames sent before it are in.
    client.ping().await.unwrap();
    assert_eq!(rx.recv().await.unwrap().unwrap()[0], 0);
    rx
}

#[test]
fn stopping_after_the_peers_fin_drops_nothing_read_ahead() {
    run(async {
        let (client, server) = pair().await;
        let mut rx = ten_messages_then_fin(&client, &server).await;
        // The peer's direction is over: nothing to stop, every message stays readable.
        rx.stop_receiving(ErrorCode(0x100), "too late");
        for i in 1..10u8 {
            assert_eq!(rx.recv().await.unwrap().unwrap()[0], i);
        }
        assert_eq!(rx.recv().await.unwrap(), None);
    });
}

#[test]
fn a_byte_stream_holds_nothing_against_the_sessions_bound() {
    use futures::AsyncReadExt;
    run(async {
        let (client, server) = pair().await;
        let rx = ten_messages_then_fin(&client, &server).await;
        assert!(server.stats().reassembly_bytes > 0, "messages read and read ahead are held");
        let mut io = rx.into_io();
        assert_eq!(server.stats().reassembly_bytes, 0);
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        let want: Vec<u8> = (1..10u8).flat_map(|i| [i; 8]).collect();
        assert_eq!(rest, want);
        assert_eq!(server.stats().reassembly_bytes, 0);
    });
}
