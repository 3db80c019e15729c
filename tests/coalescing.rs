//! Write coalescing: the driver writes every ready frame and flushes once, not once per frame;
//! a handle that sends while the driver is idle writes at once, at most once per driver poll,
//! and never strands another handle's frames; one that sends while the driver polls has its
//! frames written by the driver as that poll ends.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::executor::block_on;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use futures::FutureExt;

use common::{FlushHook, TestIo};
use wsmux::server::ServerConfig;
use wsmux::{Config, OpenOptions, Session};

/// A client and a server session whose drivers run in `pool` (one thread: nothing runs between
/// our commands unless we run the pool), settled, with the client transport's flush counter
/// and flush hook.
struct Pair {
    client: Session,
    server: Session,
    flushes: Arc<AtomicUsize>,
    hook: FlushHook,
    /// Polls of the client's driver so far: the one under way, while it runs.
    driver_polls: Arc<AtomicUsize>,
}

fn settled_pair(pool: &mut LocalPool) -> Pair {
    settled_pair_with(pool, Config::default())
}

fn settled_pair_with(pool: &mut LocalPool, config: Config) -> Pair {
    let spawner = pool.spawner();
    let flushes = Arc::new(AtomicUsize::new(0));
    let hook = FlushHook::default();
    let (counter, client_hook) = (flushes.clone(), hook.clone());
    let (client, server) = pool.run_until(async move {
        let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accept = async {
            let (tcp, _) = listener.accept().await.unwrap();
            wsmux::server::accept(tcp, &ServerConfig::default()).await.unwrap()
        };
        let connect = async {
            let tcp = async_std::net::TcpStream::connect(addr).await.unwrap();
            let mut tcp = TestIo::new(tcp);
            tcp.flushes = counter;
            tcp.flush_hook = client_hook;
            wsmux::client::connect_on(tcp, &format!("ws://{addr}/mux"), config).await.unwrap()
        };
        futures::join!(connect, accept)
    });
    let (client, client_driver) = client;
    let (server, server_driver) = server;
    let driver_polls = Arc::new(AtomicUsize::new(0));
    let mut client_driver = client_driver;
    let polls = driver_polls.clone();
    let counted = futures::future::poll_fn(move |cx| {
        polls.fetch_add(1, Ordering::SeqCst);
        client_driver.poll_unpin(cx)
    });
    spawner.spawn_local(async { counted.await.unwrap() }).unwrap();
    spawner
        .spawn_local(async {
            let _ = server_driver.await;
        })
        .unwrap();
    // A round trip proves the server's SETTINGS (its first frame) arrived: until then at most
    // 100 channels may be opened, the spec default.
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    Pair { client, server, flushes, hook, driver_polls }
}

#[test]
fn frames_ready_together_leave_with_one_flush() {
    let mut pool = LocalPool::new();
    let Pair { client, server, flushes, .. } = settled_pair(&mut pool);
    let before = flushes.load(Ordering::SeqCst);

    // 200 requests, each an OPEN with a message and FIN: 200 frames ready at once.
    let channels: Vec<_> = (0..200)
        .map(|i| {
            let options =
                OpenOptions::new("echo").message(Bytes::from(format!("request {i}"))).finish();
            client.try_open(options).unwrap()
        })
        .collect();
    pool.run_until(async {
        for _ in 0..200 {
            let mut ch = server.accept().await.unwrap().accept();
            assert!(ch.recv().await.unwrap().is_some());
        }
    });
    let flushed = flushes.load(Ordering::SeqCst) - before;
    let frames = client.stats().frames_sent;
    assert!(frames >= 200, "{frames} frames");
    // A flush per frame would be 200; the write buffer may force a few more, not dozens.
    assert!(flushed <= 4, "{flushed} flushes for {frames} frames");
    drop(channels);
}

#[test]
fn a_message_sent_while_the_driver_is_idle_leaves_at_once_and_the_next_ones_are_batched() {
    let mut pool = LocalPool::new();
    let Pair { client, server, flushes, .. } = settled_pair(&mut pool);
    let mut ch = client.try_open(OpenOptions::new("echo")).unwrap();
    // The OPEN was the handle's write since the driver's last poll; a round trip has the
    // driver poll again (as any frame from the peer does).
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    let before = flushes.load(Ordering::SeqCst);

    // The pool is not run: only the sending handle can write.
    block_on(ch.send(Bytes::from_static(b"one"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 1, "the first message left at once");
    block_on(ch.send(Bytes::from_static(b"two"))).unwrap();
    block_on(ch.send(Bytes::from_static(b"three"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 1, "the next ones wait for the driver");
    pool.run_until_stalled();
    assert_eq!(flushes.load(Ordering::SeqCst), before + 2, "the driver flushed them together");

    let got = pool.run_until(async {
        let mut ch = server.accept().await.unwrap().accept();
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(ch.recv().await.unwrap().unwrap());
        }
        got
    });
    assert_eq!(got, [&b"one"[..], b"two", b"three"]);
}

/// Handle B queues a frame while handle A's inline write is between its last look at proto and
/// re-parking the driver's waker (here: inside A's flush, from another thread). B finds no
/// waker to take; A must then wake the driver itself.
#[test]
fn a_frame_queued_during_an_inline_flush_is_not_stranded() {
    let mut pool = LocalPool::new();
    let Pair { client, server, hook, .. } = settled_pair(&mut pool);
    let mut a = client.try_open(OpenOptions::new("a")).unwrap();
    let b = client.try_open(OpenOptions::new("b")).unwrap();
    // A round trip: the OPENs are out and the driver polled again (inline writes re-armed).
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();

    let b = Arc::new(Mutex::new(b));
    let b2 = b.clone();
    *hook.lock().unwrap() = Some(Box::new(move || {
        std::thread::spawn(move || b2.lock().unwrap().start_send(Bytes::from_static(b"from b")))
            .join()
            .unwrap()
            .unwrap();
    }));
    // The pool is not run: A writes inline, and the hook runs inside its flush.
    block_on(a.send(Bytes::from_static(b"from a"))).unwrap();
    assert!(hook.lock().unwrap().is_none(), "the hook ran");

    let got = pool.run_until(async {
        let recv = async {
            let mut x = server.accept().await.unwrap().accept();
            let mut y = server.accept().await.unwrap().accept();
            (x.recv().await.unwrap().unwrap(), y.recv().await.unwrap().unwrap())
        };
        // Nothing else would wake the client's driver: a stranded frame shows as a timeout.
        let timeout = futures_timer::Delay::new(Duration::from_secs(2));
        match futures::future::select(Box::pin(recv), timeout).await {
            futures::future::Either::Left((got, _)) => Some(got),
            futures::future::Either::Right(_) => None,
        }
    });
    let (from_a, from_b) = got.expect("B's message never left: the driver was not woken");
    assert_eq!((&from_a[..], &from_b[..]), (&b"from a"[..], &b"from b"[..]));
}

/// A handle queues a frame while the driver is in the middle of its poll (here: inside the
/// driver's flush of a PONG, after it took its frames), so it finds the driver's task busy.
/// The driver writes that frame as it lets go of the task, in the same poll: no wake, no second
/// poll (on a multi-threaded runtime that second poll was often another thread's: 2 futex calls
/// more per RPC call).
#[test]
fn a_frame_queued_while_the_driver_polls_leaves_in_that_same_poll() {
    let mut pool = LocalPool::new();
    let Pair { client, server, hook, driver_polls, .. } = settled_pair(&mut pool);
    let a = client.try_open(OpenOptions::new("a")).unwrap();
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();

    // In the driver's next flush: queue a message, and note the poll in which the flush after
    // it (the message's) comes.
    let queued_in = Arc::new(AtomicUsize::new(0));
    let flushed_in = Arc::new(AtomicUsize::new(0));
    let a = Arc::new(Mutex::new(a));
    *hook.lock().unwrap() = Some(Box::new({
        let (a, hook, polls) = (a.clone(), hook.clone(), driver_polls.clone());
        let (queued_in, flushed_in) = (queued_in.clone(), flushed_in.clone());
        move || {
            queued_in.store(polls.load(Ordering::SeqCst), Ordering::SeqCst);
            a.lock().unwrap().start_send(Bytes::from_static(b"late")).unwrap();
            *hook.lock().unwrap() = Some(Box::new(move || {
                flushed_in.store(polls.load(Ordering::SeqCst), Ordering::SeqCst);
            }));
        }
    }));
    // The server's PING has the client's driver answer PONG: a write and a flush of its own.
    pool.run_until(server.ping()).unwrap();
    let got = pool.run_until(async {
        let mut a = server.accept().await.unwrap().accept();
        a.recv().await.unwrap().unwrap()
    });
    assert_eq!(&got[..], b"late");
    let queued = queued_in.load(Ordering::SeqCst);
    assert_ne!(queued, 0, "the hook ran");
    assert_eq!(flushed_in.load(Ordering::SeqCst), queued, "written in the poll that queued it");
}

/// With the read lease on (`Config::caller_reads`), a task waiting on the session's only
/// channel runs the driver's rounds itself. A message a handle leaves for the next round (it
/// wrote once already) wakes that task, and its round writes the message: it is not left for
/// the driver, which nothing wakes until the lease's 10 ms timer.
#[test]
fn a_message_left_for_the_next_round_is_written_by_the_waiting_readers_round() {
    use std::task::{Context, Poll};
    let mut pool = LocalPool::new();
    let mut config = Config::default();
    config.caller_reads = true; // the default with async-std; set for any features
    let Pair { client, server, flushes, driver_polls, .. } = settled_pair_with(&mut pool, config);
    let mut ch = client.try_open(OpenOptions::new("echo")).unwrap();
    pool.run_until(client.ping()).unwrap();
    pool.run_until_stalled();
    let (flushes_before, polls_before) =
        (flushes.load(Ordering::SeqCst), driver_polls.load(Ordering::SeqCst));

    // The pool is not run from here: the client's driver is not polled.
    let mut cx = Context::from_waker(futures::task::noop_waker_ref());
    assert!(ch.poll_recv(&mut cx).is_pending()); // the reader now holds the lease
    block_on(ch.send(Bytes::from_static(b"one"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), flushes_before + 1, "written at once");
    block_on(ch.send(Bytes::from_static(b"two"))).unwrap();
    assert_eq!(flushes.load(Ordering::SeqCst), flushes_before + 1, "left for the next round");
    assert!(matches!(ch.poll_recv(&mut cx), Poll::Pending)); // woken: its round runs
    assert_eq!(flushes.load(Ordering::SeqCst), flushes_before + 2, "the reader's round wrote it");
    assert_eq!(driver_polls.load(Ordering::SeqCst), polls_before, "the driver was not polled");

    let got = pool.run_until(async {
        let mut ch = server.accept().await.unwrap().accept();
        vec![ch.recv().await.unwrap().unwrap(), ch.recv().await.unwrap().unwrap()]
    });
    assert_eq!(got, [&b"one"[..], b"two"]);
}
