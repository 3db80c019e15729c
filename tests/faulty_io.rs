//! Sessions over misbehaving transports (catalogue rows F3, F4, F5, F7 and L1): an in-memory
//! pipe wrapped in [`FaultIo`], which cuts reads and writes short or to random sizes, returns
//! `Ok(0)` from writes, fails or ends reads mid-stream, and stalls on demand. Whatever the
//! transport does, nothing panics or spins, every byte that is delivered is the right one, and
//! a transport that breaks ends the session with an error on both sides.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};

use common::faulty::{duplex, FaultIo, Faults, Gate, IoEvent, Watched};
use common::*;
use wsmux::server::ServerConfig;
use wsmux::{ChannelError, Config, Error, ErrorCode, Session, SessionError};

/// Sends `messages` on a new channel to an echoing peer, finishes, and checks the echo comes
/// back identical, in order, then ends.
async fn echo_round(session: &Session, messages: Vec<Bytes>) {
    let ch = session.open("echo").await.unwrap();
    let (mut tx, mut rx) = ch.split();
    let expected = messages.clone();
    let sender = async_std::task::spawn(async move {
        for m in messages {
            tx.send(m).await.unwrap();
        }
        tx.close().await.unwrap();
    });
    for (i, want) in expected.iter().enumerate() {
        let got = rx.next().await.unwrap_or_else(|| panic!("ended before message {i}"));
        assert_eq!(checksum(&got.unwrap()), checksum(want), "message {i} differs");
    }
    assert!(rx.next().await.is_none(), "a clean end after the echo");
    sender.await;
}

/// Messages of assorted sizes (1 byte to 20 KiB: some cross a frame boundary).
fn messages(seed: u64, count: usize) -> Vec<Bytes> {
    let sizes = [1, 7, 300, 1500, 16_384, 16_385, 20_000, 42];
    (0..count)
        .map(|i| {
            Bytes::from(pattern(seed * 1000 + i as u64, sizes[(seed as usize + i) % sizes.len()]))
        })
        .collect()
}

fn faulty(faults: Faults) -> (FaultIo<common::faulty::PipeEnd>, FaultIo<common::faulty::PipeEnd>) {
    let (a, b) = duplex(64 * 1024);
    (FaultIo::new(a, faults.clone()), FaultIo::new(b, faults))
}

#[test]
fn one_byte_reads_and_writes_deliver_every_byte() {
    run(async {
        let faults = Faults { max_read: 1, max_write: 1, cut_after: 1024, ..Faults::default() };
        let (c, s) = faulty(faults);
        let (client, server, _drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        let rounds = (0..3).map(|i| echo_round(&client, messages(i, 4)));
        futures::future::join_all(rounds).await;
    });
}

#[test]
fn random_transport_chunking_keeps_every_channel_byte_identical_and_in_order() {
    // L1: the transport's bytes arrive cut at arbitrary points, on many channels at once.
    for seed in 1..=4 {
        run(async move {
            let faults = Faults {
                random_chunks: Some(seed),
                max_read: 3000,
                max_write: 3000,
                cut_after: 1024,
                ..Faults::default()
            };
            let (c, s) = faulty(faults);
            let (client, server, _drivers) =
                pair_over(c, s, Config::default(), ServerConfig::default()).await;
            async_std::task::spawn(wsmux::interop::serve(server));
            let rounds = (0..16).map(|i| echo_round(&client, messages(seed * 100 + i, 12)));
            futures::future::join_all(rounds).await;
        });
    }
}

#[test]
fn writes_returning_zero_end_the_session_without_spinning() {
    run(async {
        let (c, s) = duplex(64 * 1024);
        // Past the upgrade and a few frames, every write of the client returns Ok(0).
        let c = FaultIo::new(c, Faults { zero_writes_after: Some(4096), ..Faults::default() });
        let write_polls = c.write_polls.clone();
        let (client, server, drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        let mut ch = client.open("echo").await.unwrap();
        let block = Bytes::from(vec![5u8; 8192]);
        let err = loop {
            if let Err(e) = ch.send(block.clone()).await {
                break e.error;
            }
        };
        assert!(
            matches!(err, Error::Channel(ChannelError::Session(SessionError::ConnectionLost(_)))),
            "{err:?}"
        );
        assert!(drivers.client.await.is_err(), "the client driver reports the failed transport");
        // A writer that retried on Ok(0) would have polled without end.
        let polls = write_polls.load(Ordering::Relaxed);
        assert!(polls < 1000, "{polls} write polls: the driver spun on Ok(0)");
        // The server sees the connection end without a close: the client dropped its transport.
        assert!(drivers.server.await.is_err());
    });
}

/// Opens a channel whose peer echoes, starts a sender of `total` bytes on it and returns the
/// receiving half, so a fault can strike in the middle of the transfer.
async fn transfer(
    client: &Session,
    total: usize,
) -> impl futures::Stream<Item = Result<Bytes, Error>> {
    let ch = client.open("echo").await.unwrap();
    let (mut tx, rx) = ch.split();
    async_std::task::spawn(async move {
        let mut sent = 0;
        while sent < total {
            let m = Bytes::from(pattern(sent as u64, 4096));
            sent += m.len();
            if tx.send(m).await.is_err() {
                return;
            }
        }
        let _ = tx.close().await;
    });
    rx
}

/// Reads `rx` until it fails; panics if it ends cleanly. Returns the bytes read.
async fn read_until_error(
    mut rx: impl futures::Stream<Item = Result<Bytes, Error>> + Unpin,
) -> (usize, Error) {
    let mut read = 0;
    loop {
        match rx.next().await {
            Some(Ok(m)) => read += m.len(),
            Some(Err(e)) => return (read, e),
            None => panic!("a clean end after {read} bytes, though the transport failed"),
        }
    }
}

#[test]
fn a_read_error_mid_stream_fails_every_channel_on_both_sides() {
    run(async {
        let (c, s) = duplex(64 * 1024);
        let s = FaultIo::new(s, Faults { read_error_after: Some(300_000), ..Faults::default() });
        let (client, server, drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        let a = transfer(&client, 4 << 20).await;
        let b = transfer(&client, 4 << 20).await;
        let ((read_a, err_a), (read_b, err_b)) =
            futures::join!(read_until_error(a), read_until_error(b));
        assert!(read_a + read_b < 300_000, "only what the server read before the fault echoes");
        for err in [err_a, err_b] {
            assert!(matches!(err, Error::Channel(ChannelError::Session(_))), "{err:?}");
        }
        assert!(drivers.server.await.is_err(), "the server driver reports the read error");
        drivers.client.await.ok();
        assert!(client.is_closed());
    });
}

#[test]
fn end_of_stream_in_the_middle_of_a_frame_is_a_lost_connection() {
    run(async {
        let (c, s) = duplex(64 * 1024);
        // 100,001 bytes: the cut falls inside a WebSocket frame.
        let c = FaultIo::new(c, Faults { eof_after: Some(100_001), ..Faults::default() });
        let (client, server, drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        let (_, err) = read_until_error(transfer(&client, 4 << 20).await).await;
        assert!(
            matches!(err, Error::Channel(ChannelError::Session(SessionError::ConnectionLost(_)))),
            "{err:?}"
        );
        assert!(drivers.client.await.is_err());
    });
}

#[test]
fn a_transport_that_stalls_then_resumes_loses_nothing() {
    run(async {
        let gate = Gate::default();
        let faults = Faults { gate: gate.clone(), ..Faults::default() };
        let (c, s) = faulty(faults);
        let (client, server, _drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        // Warm up, then stall both directions with a transfer in flight.
        echo_round(&client, messages(1, 2)).await;
        gate.shut();
        let work = async_std::task::spawn({
            let client = client.clone();
            async move {
                let rounds = (0..4).map(|i| echo_round(&client, messages(10 + i, 10)));
                futures::future::join_all(rounds).await;
            }
        });
        // Once the drivers are blocked on the gate, it stays shut a while (the stall).
        gate.until_blocked(2).await;
        async_std::task::sleep(Duration::from_millis(200)).await;
        gate.open();
        work.await;
        assert!(!client.is_closed());
    });
}

#[test]
fn symmetric_pressure_through_a_tiny_pipe_completes_while_pinging() {
    // F4: both ends push 1 MiB at the other's echo through a 64-byte pipe, and ping meanwhile:
    // neither end may stop reading while it waits to write (or the two would deadlock).
    run(async {
        let (c, s) = duplex(64);
        let (client, server, _drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        let mb: Vec<Bytes> = (0..64).map(|i| Bytes::from(pattern(i, 16 * 1024))).collect();
        async_std::task::spawn(wsmux::interop::serve(client.clone()));
        async_std::task::spawn(wsmux::interop::serve(server.clone()));
        let pings = |s: Session| async move {
            for _ in 0..20 {
                s.ping().await.unwrap();
            }
        };
        futures::join!(
            echo_round(&client, mb.clone()),
            echo_round(&server, mb.clone()),
            pings(client.clone()),
            pings(server.clone()),
        );
    });
}

#[test]
fn split_halves_in_two_tasks_make_progress_under_backpressure() {
    // F5: the reader and the writer of one channel live in different tasks, with a window
    // small enough that the writer waits for credit again and again.
    run(async {
        let mut config = Config::default();
        config.protocol.initial_window = 16 * 1024;
        config.protocol.send_buffer = 16 * 1024;
        let mut server_config = ServerConfig::default();
        server_config.session = config.clone();
        let (c, s) = duplex(4096);
        let (client, server, _drivers) = pair_over(c, s, config, server_config).await;
        async_std::task::spawn(wsmux::interop::serve(server));
        let ch = client.open("echo").await.unwrap();
        let (mut tx, mut rx) = ch.split();
        let total = 2 << 20;
        let writer = async_std::task::spawn(async move {
            let mut sent = 0u64;
            let mut i = 0;
            while sent < total {
                let m = Bytes::from(pattern(i, 1000 + (i as usize % 3000)));
                sent += m.len() as u64;
                i += 1;
                tx.send(m).await.unwrap();
            }
            tx.close().await.unwrap();
            sent
        });
        let reader = async_std::task::spawn(async move {
            let mut got = 0u64;
            let mut i = 0;
            while let Some(m) = rx.next().await {
                let m = m.unwrap();
                assert_eq!(m, pattern(i, 1000 + (i as usize % 3000)), "message {i}");
                got += m.len() as u64;
                i += 1;
            }
            got
        });
        let (sent, got) = futures::join!(writer, reader);
        assert_eq!(sent, got);
    });
}

#[test]
fn fin_then_close_at_once_delivers_everything_then_the_end() {
    // F7: send, finish and close the session at once, with no round trip first; the transport
    // is a small pipe, so most of the data is still on its way when the close comes.
    run(async {
        let (c, s) = duplex(1024);
        let (client, server, drivers) =
            pair_over(c, s, Config::default(), ServerConfig::default()).await;
        let messages: Vec<Bytes> = (0..40).map(|i| Bytes::from(pattern(i, 5000))).collect();
        let mut ch = client.open("finished").await.unwrap();
        for m in &messages {
            ch.send(m.clone()).await.unwrap();
        }
        ch.finish().await.unwrap();
        drop(ch);
        client.close(ErrorCode::NO_ERROR, "done");
        drop(client);

        let mut incoming = server.accept().await.unwrap().accept();
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(&incoming.recv().await.unwrap().unwrap(), m, "message {i}");
        }
        assert_eq!(incoming.recv().await.unwrap(), None, "a clean end of stream");
        drop(incoming);
        assert_eq!(server.closed().await, None, "the session ends cleanly");
        drivers.client.await.unwrap();
        drivers.server.await.unwrap();
    });
}

#[test]
fn a_peer_that_stops_reading_is_cut_by_the_write_timeout_even_without_keepalive() {
    // S8: keepalive off on both sides, so only the write timeout can notice that the client
    // stopped reading while the server has data for it.
    run(async {
        let mut config = Config::default();
        config.protocol.keepalive_interval = None;
        let mut server_config = ServerConfig::default();
        server_config.session = config.clone();
        server_config.session.write_timeout = Some(Duration::from_millis(300));
        let gate = Gate::default();
        let (c, s) = duplex(4096);
        let c = FaultIo::new(c, Faults { gate: gate.clone(), ..Faults::default() });
        let (client, server, drivers) = pair_over(c, s, config, server_config).await;
        let _ch = client.open("download").await.unwrap();
        let mut ch = server.accept().await.unwrap().accept();
        gate.shut(); // the client reads (and writes) nothing from here on
        let block = Bytes::from(vec![9u8; 16 * 1024]);
        let err = loop {
            if let Err(e) = ch.send(block.clone()).await {
                break e.error;
            }
        };
        let Error::Channel(ChannelError::Session(SessionError::ConnectionLost(reason))) = &err
        else {
            panic!("expected a lost connection, got {err:?}");
        };
        assert!(reason.contains("write timeout"), "{reason}");
        assert!(matches!(server.closed().await, Some(SessionError::ConnectionLost(_))));
        assert!(drivers.server.await.is_err());
        gate.open();
        // The client then finds its transport gone.
        assert!(client.closed().await.is_some());
    });
}

#[test]
fn one_blocked_write_from_a_handle_still_meets_the_write_timeout() {
    // A single send whose write (made inline, by the sending handle) blocks, and nothing else
    // happening: no keepalive, no other traffic. The driver must still time the write out.
    run(async {
        let mut config = Config::default();
        config.protocol.keepalive_interval = None;
        let mut client_config = config.clone();
        client_config.write_timeout = Some(Duration::from_millis(300));
        let mut server_config = ServerConfig::default();
        server_config.session = config;
        let gate = Gate::default();
        let (c, s) = duplex(4096);
        let s = FaultIo::new(s, Faults { gate: gate.clone(), ..Faults::default() });
        let (client, server, _drivers) = pair_over(c, s, client_config, server_config).await;
        let mut ch = client.open("upload").await.unwrap();
        let _incoming = server.accept().await.unwrap();
        gate.shut(); // the server reads nothing from here on
        ch.send(Bytes::from(vec![3u8; 60 * 1024])).await.unwrap();
        match client.closed().await {
            Some(SessionError::ConnectionLost(reason)) => {
                assert!(reason.contains("write timeout"), "{reason}");
            }
            other => panic!("expected the write timeout, got {other:?}"),
        }
        gate.open();
    });
}

/// A task waiting on the session's only channel reads the socket itself (the read lease,
/// `Config::caller_reads`). If its read panics (a bug, say in the transport), the driver takes
/// the socket back: the session goes on, or fails, but does not hang. Without that, socket
/// readiness kept waking the task that was gone, and with no lease timer armed yet nothing
/// woke the driver. The drivers run on one thread, in a pool run only when the test says, so
/// the waiting reader finds the driver's task free.
#[test]
fn a_panic_in_a_waiting_readers_read_leaves_the_socket_to_the_driver() {
    use futures::executor::LocalPool;
    use futures::task::LocalSpawnExt;
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let (c, s) = duplex(64 * 1024);
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The client's transport: its next read panics once `armed` is set.
    let arm = armed.clone();
    let watch = move |event| {
        let panics = event == IoEvent::ReadStart && arm.swap(false, Ordering::SeqCst);
        assert!(!panics, "injected: the transport panics");
    };
    let client_io = Watched { inner: c, watch: std::sync::Arc::new(watch) };
    let mut config = Config::default();
    config.caller_reads = true; // the default with async-std; set for any features
    let server_config = ServerConfig::default();
    let (client, server) = pool.run_until(async {
        let (c, s) = futures::join!(
            wsmux::client::connect_on(client_io, "ws://wsmux.test/mux", config),
            wsmux::server::accept(s, &server_config),
        );
        (c.unwrap(), s.unwrap())
    });
    let ((client, client_driver), (server, server_driver)) = (client, server);
    for driver in [client_driver, server_driver] {
        spawner.spawn_local(async { drop(driver.await) }).unwrap();
    }
    spawner.spawn_local(wsmux::interop::serve(server)).unwrap();
    // The driver's own round comes last (the answer to the ping): no lease timer is armed.
    pool.run_until(client.ping()).unwrap();
    let mut ch = pool.run_until(client.open("discard")).unwrap();
    pool.run_until_stalled();

    // The pool is not run: the wait finds the driver's task free and reads the socket itself.
    armed.store(true, Ordering::SeqCst);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        let _ = ch.poll_recv(&mut cx);
    }));
    assert!(panicked.is_err(), "the waiting reader's read panicked");
    drop(ch);
    // The panic may have left the WebSocket's state broken (it did, here: the peer saw a
    // protocol violation), so the session may fail; what it must not do is hang.
    let echoed = async {
        let mut ch = client.open("echo").await?;
        ch.send(Bytes::from_static(b"still here")).await.map_err(|e| e.error)?;
        ch.recv().await
    };
    pool.run_until(async {
        match async_std::future::timeout(LIMIT, echoed).await.expect("the session hangs") {
            Ok(echo) => assert_eq!(echo.as_deref(), Some(&b"still here"[..])),
            Err(e) => assert!(client.closed().await.is_some(), "failed with {e}: an error end"),
        }
    });
}
